"""The in-memory view every model works on: integer-indexed users × items matrices and item facts.

Built from store frames (`store.items()`, `store.events(...)`) so the same code serves training (events
before a cut) and serving (all events). Confidence of a (user, item) pair = Σ event weight × recency
decay, so a purchase last week counts more than a view three months ago.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import Settings


@dataclass
class Interactions:
    """Users × items behaviour plus the item facts models need (all arrays in catalog order)."""

    item_ids: np.ndarray  # str, catalog order (store.items() order)
    item_index: pd.Index  # item_id -> position
    user_ids: np.ndarray  # str
    user_index: pd.Index
    X: sp.csr_matrix  # users × items confidence (event weight × recency decay), float32
    bought: sp.csr_matrix  # users × items, 1 where the user purchased (for exclusion), float32
    touched: sp.csr_matrix  # users × items, 1 where the user had any event, float32
    cat_top: np.ndarray  # int code of each item's top-level category
    cat_top_names: np.ndarray
    cat_flow: np.ndarray  # int code of each item's category at the transition level
    cat_flow_names: np.ndarray
    popularity: np.ndarray  # time-decayed event-weighted popularity per item, float64
    events: pd.DataFrame  # u, i (int codes), w (weight), ts, event_type — oldest first
    now: pd.Timestamp  # reference time for recency (the last event or the split cut)
    settings: Settings

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_rows(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Row positions of users (-1 for users unknown to this data)."""
        return self.user_index.get_indexer(list(user_ids))

    def item_rows(self, item_ids: list[str] | np.ndarray) -> np.ndarray:
        return self.item_index.get_indexer(list(item_ids))

    _STATE_FIELDS = ("item_ids", "user_ids", "X", "bought", "touched", "cat_top", "cat_top_names", "cat_flow",
                     "cat_flow_names", "popularity", "events", "now")

    def to_state(self, state) -> None:
        """Write into a modelio.State (the settings belong to the owner and are not repeated)."""
        state.put_attrs(self, self._STATE_FIELDS)

    @classmethod
    def from_state(cls, state, settings: Settings) -> "Interactions":
        values = {name: state.get(name) for name in cls._STATE_FIELDS}
        return cls(**values, item_index=pd.Index(values["item_ids"]), user_index=pd.Index(values["user_ids"]),
                   settings=settings)

    def history_matrix(self, events: pd.DataFrame, n_rows: int | None = None, row_key: str = "u") -> sp.csr_matrix:
        """Confidence matrix for arbitrary (already coded) events, with this data's weighting."""
        return _confidence(events, n_rows or (int(events[row_key].max()) + 1 if len(events) else 0), self.n_items,
                           self.settings, self.now, row_key)


def event_weights(event_type: pd.Series, ts: pd.Series, settings: Settings, now: pd.Timestamp) -> np.ndarray:
    """Event-type weight × exponential recency decay (half-life in days)."""
    base = event_type.map(settings.behaviour.event_weights).fillna(1.0).to_numpy(np.float64)
    age_days = (now - ts).dt.total_seconds().to_numpy() / 86400.0
    decay = np.power(0.5, np.clip(age_days, 0, None) / settings.behaviour.recency_half_life_days)
    return base * decay


def _confidence(ev: pd.DataFrame, n_rows: int, n_items: int, settings: Settings, now: pd.Timestamp,
                row_key: str = "u") -> sp.csr_matrix:
    if len(ev) == 0:
        return sp.csr_matrix((n_rows, n_items), dtype=np.float32)
    w = event_weights(ev["event_type"], ev["ts"], settings, now)
    m = sp.coo_matrix((w, (ev[row_key].to_numpy(), ev["i"].to_numpy())), shape=(n_rows, n_items)).tocsr()
    m.sum_duplicates()
    return m.astype(np.float32)


OWNING_EVENTS = ("cart", "purchase")


def owned_matrix(coded: pd.DataFrame, n_rows: int, n_items: int, row_key: str = "u") -> sp.csr_matrix:
    """rows × items, 1 where the row carted or bought the item: what makes a category not "new" to a
    shopper (a view does not), the same in evaluation, serving and export."""
    sel = coded[coded["event_type"].isin(OWNING_EVENTS)] if len(coded) else coded
    m = sp.csr_matrix((np.ones(len(sel), np.float32), (sel[row_key].to_numpy(np.int64), sel["i"].to_numpy(np.int64))),
                      shape=(n_rows, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def code_events(events: pd.DataFrame, item_index: pd.Index, user_index: pd.Index | None = None) -> pd.DataFrame:
    """Attach integer codes u, i to store events; drops events of items outside `item_index`."""
    ev = events.copy()
    ev["i"] = item_index.get_indexer(ev["item_id"])
    if user_index is not None:
        ev["u"] = user_index.get_indexer(ev["user_id"])
        ev = ev[ev["u"] >= 0]
    ev = ev[ev["i"] >= 0]
    ts = pd.to_datetime(ev["ts"])
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    ev["ts"] = ts
    return ev.reset_index(drop=True)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    cat = pd.Categorical(values.fillna(""))
    return cat.codes.astype(np.int32), np.asarray(cat.categories, dtype=object)


def build_interactions(
    items: pd.DataFrame,
    events: pd.DataFrame,
    settings: Settings,
    *,
    users: list[str] | np.ndarray | None = None,
    now: pd.Timestamp | None = None,
) -> Interactions:
    """Index the catalog and the events. `users` fixes the user list (else: users with events)."""
    items = items.sort_values("item_id").reset_index(drop=True)
    item_ids = items["item_id"].to_numpy(dtype=object)
    item_index = pd.Index(item_ids)
    if users is None:
        users = np.sort(events["user_id"].unique()) if len(events) else np.array([], dtype=object)
    user_ids = np.asarray(users, dtype=object)
    user_index = pd.Index(user_ids)
    ev = code_events(events, item_index, user_index)
    if now is None:
        now = ev["ts"].max() if len(ev) else pd.Timestamp("1970-01-01")
    now = pd.Timestamp(now)
    if now.tzinfo is not None:
        now = now.tz_convert("UTC").tz_localize(None)
    ev["w"] = event_weights(ev["event_type"], ev["ts"], settings, now) if len(ev) else np.zeros(0)
    n_u, n_i = len(user_ids), len(item_ids)
    X = _confidence(ev, n_u, n_i, settings, now)
    bought_ev = ev[ev["event_type"] == "purchase"]
    bought = sp.csr_matrix(
        (np.ones(len(bought_ev), np.float32), (bought_ev["u"], bought_ev["i"])), shape=(n_u, n_i)
    )
    bought.data[:] = 1.0
    touched = (X > 0).astype(np.float32).tocsr()
    cat_top, cat_top_names = _codes(items["cat_top"])
    level = settings.behaviour.transition_level
    flow_col = "cat_top" if level <= 1 else ("cat_sub" if level == 2 else "category")
    cat_flow, cat_flow_names = _codes(items[flow_col])
    popular = settings.replace({"behaviour.recency_half_life_days": settings.behaviour.popularity_half_life_days})
    pop_w = event_weights(ev["event_type"], ev["ts"], popular, now) if len(ev) else np.zeros(0)
    popularity = np.bincount(ev["i"].to_numpy(), weights=pop_w, minlength=n_i).astype(np.float64)
    return Interactions(
        item_ids=item_ids, item_index=item_index, user_ids=user_ids, user_index=user_index,
        X=X, bought=bought.tocsr(), touched=touched,
        cat_top=cat_top, cat_top_names=cat_top_names, cat_flow=cat_flow, cat_flow_names=cat_flow_names,
        popularity=popularity, events=ev[["u", "i", "w", "ts", "event_type"]], now=now, settings=settings,
    )
