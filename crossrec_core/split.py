"""The global time split of offline evaluation: the cut, the train Interactions, the slices and their positives.

Protocol (the one of the datasets README):
- one global cut at (1 - test_fraction) of the event time range; train = events before it, test = events
  at/after it. The train `Interactions` is built from pre-cut events only (`now` = the cut), over the whole
  catalog, for the users with train events.
- a user's positives = distinct test items with an event in `settings.evaluation.positive_types` (all event types
  when the data has none of those, recorded in `Split.positive_fallback`), minus the items the user
  touched in train (discovery: train items are also excluded from every list).
- slices: `all` (users with train history and >= 1 positive), `cold_users` (no train event, >= 1 positive;
  context = their profile text only, when given) and `cold_items` (users with history whose positives
  include items without any train event; positives restricted to those items, and lists ranked among
  those items only: a top-K of the whole catalogue almost never holds a cold item, so the slice read 0).
- metrics at K from each user's top-K list (see the pure functions below): recall, ndcg, hit_rate, mrr,
  sampled auc, coverage, diversity, novelty, cross_recall, cross_hit_rate, users. The cross metrics
  rank each model's list in cross mode (only top-level categories the user has no train events in),
  against the positives in those categories — the same filter for every model.

`carve_validation` applies the same split inside the training period (cut at 1 - val_fraction of its
range), so weights and hyper-parameters are learned without ever seeing the test period.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import Settings
from .data import Interactions, build_interactions, code_events, owned_matrix
from .errors import CrossRecError
from .profiles import make_context
from .metrics import cross_positives
from .signals.base import Context

SLICES: tuple[str, ...] = ("all", "cold_users", "cold_items")


# ---- events and the cut ---------------------------------------------------------------------------


def _naive_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        ts = pd.to_datetime(values, unit="s", utc=True)
    elif pd.api.types.is_datetime64_any_dtype(values):
        ts = values if getattr(values.dt, "tz", None) is not None else values.dt.tz_localize("UTC")
    else:
        ts = pd.to_datetime(values, utc=True, format="ISO8601")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None)


def prepare_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events with a UTC-naive datetime `ts` column (store frames already have one; files may carry
    `timestamp` as ISO strings or Unix seconds). Returns the frame itself when nothing needs changing."""
    if "ts" not in events.columns:
        if "timestamp" not in events.columns:
            raise CrossRecError("events need a 'ts' (or 'timestamp') column")
        ev = events.copy()
        ev["ts"] = _naive_utc(ev["timestamp"])
        return ev
    ts = events["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts) and getattr(ts.dt, "tz", None) is None:
        return events
    ev = events.copy()
    ev["ts"] = _naive_utc(ts)
    return ev


def time_split(events: pd.DataFrame, settings: Settings, fraction: float | None = None) -> pd.Timestamp:
    """The global cut at (1 - fraction) of the event time range (fraction: settings.evaluation.test_fraction)."""
    f = settings.evaluation.test_fraction if fraction is None else float(fraction)
    if not 0.0 < f < 1.0:
        raise CrossRecError(f"the held-out fraction must be between 0 and 1, got {f}")
    ts = prepare_events(events)["ts"]
    if len(ts) == 0:
        raise CrossRecError("no events to split: ingest events first")
    lo, hi = ts.min(), ts.max()
    if lo == hi:
        raise CrossRecError("all events have the same timestamp: a time split is impossible")
    return pd.Timestamp(lo + (hi - lo) * (1.0 - f))


# ---- the split ------------------------------------------------------------------------------------


@dataclass
class Split:
    """Train `Interactions` (pre-cut only) plus per-slice users and positives of the test period."""

    items: pd.DataFrame  # catalog, sorted by item_id (= train item order)
    train: Interactions
    cut: pd.Timestamp
    settings: Settings
    train_events: pd.DataFrame  # raw events before the cut (for carve_validation)
    test_events: pd.DataFrame  # raw events at/after the cut
    positive_types: tuple[str, ...]
    positive_fallback: bool  # True: the data has no event of settings.evaluation.positive_types, all types count
    slice_users: dict[str, np.ndarray]  # slice -> sorted user ids
    slice_positives: dict[str, dict[str, np.ndarray]]  # slice -> user -> item positions
    all_positives: dict[str, np.ndarray]  # every evaluable user (warm or cold) -> all discovery positives
    item_users: np.ndarray  # train users per item (popularity for novelty; 0 = cold item)
    user_tops: sp.csr_matrix  # train users × top-level categories: 1 where the user carted or bought in train
    text_vecs: dict[str, np.ndarray] = field(default_factory=dict)  # user -> profile text vector
    owned: sp.csr_matrix | None = None  # train users × items: 1 where carted or bought in train
    population: dict[str, int] = field(default_factory=dict)  # slice -> evaluable shoppers before sampling

    # -- who and what ---------------------------------------------------------------------------

    def users(self, slice_name: str = "all") -> np.ndarray:
        """The user ids of a slice, sorted."""
        if slice_name not in self.slice_users:
            raise CrossRecError(f"unknown slice '{slice_name}' (slices: {', '.join(SLICES)})")
        return self.slice_users[slice_name]

    def positives(self, users: Sequence[str], slice_name: str | None = "all") -> list[np.ndarray]:
        """Item positions each user's list is judged against (`None`: all of the user's positives)."""
        table = self.all_positives if slice_name is None else self.slice_positives[slice_name]
        empty = np.zeros(0, dtype=np.int64)
        return [table.get(u, empty) for u in users]

    def user_rows(self, users: Sequence[str]) -> np.ndarray:
        """Rows of users in the train data (-1: no train event)."""
        return self.train.user_rows(list(users))

    def history(self, users: Sequence[str]) -> sp.csr_matrix:
        """B × n_items train confidence of users (empty rows for users without train events)."""
        rows = self.user_rows(users)
        X = self.train.X[np.maximum(rows, 0)] if self.train.n_users else sp.csr_matrix(
            (len(rows), self.train.n_items), dtype=np.float32)
        if (rows < 0).any():
            X = sp.diags((rows >= 0).astype(np.float32)) @ X
            X.eliminate_zeros()
        return sp.csr_matrix(X, dtype=np.float32)

    def exclusions(self, users: Sequence[str]) -> np.ndarray:
        """B × n_items bool: the items each user touched in train (never recommended, never positive)."""
        rows = self.user_rows(users)
        out = np.zeros((len(rows), self.train.n_items), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        if len(known):
            t = self.train.touched[rows[known]].tocoo()
            out[known[t.row], t.col] = True
        return out

    def slice_exclusions(self, users: Sequence[str], slice_name: str = "all") -> np.ndarray:
        """`exclusions(users)`, plus, on the cold-item slice, every item with a training event: that slice
        ranks the catalogue's new items only (as the cross metrics rank new categories only), so it
        measures how well a model reaches items nobody had bought yet, instead of reading 0 for every
        model because no cold item makes a top-K of the whole catalogue."""
        ex = self.exclusions(users)
        if slice_name == "cold_items":
            ex |= (self.item_users > 0)[None, :]
        return ex

    def tops(self, users: Sequence[str]) -> np.ndarray:
        """B × n_top_categories bool: top-level categories the user had train events in."""
        rows = self.user_rows(users)
        out = np.zeros((len(rows), len(self.train.cat_top_names)), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        if len(known):
            out[known] = self.user_tops[rows[known]].toarray() > 0
        return out

    def cross_exclusions(self, users: Sequence[str], exclusions: np.ndarray) -> np.ndarray:
        """`exclusions` (B × n_items, the users' own) plus every item of a top-level category each user already
        has: what a cross-mode list leaves out (only categories new to the shopper), in evaluation, weight
        learning and the cross-mode ranker's window alike."""
        return exclusions | self.tops(users)[:, self.train.cat_top]

    def cross_positives(self, users: Sequence[str], slice_name: str = "all") -> list[np.ndarray]:
        """Positives whose top-level category the user had no train event in."""
        return cross_positives(self.positives(users, slice_name), self.train.cat_top, self.tops(users))

    def context(self, users: Sequence[str], embeddings: np.ndarray | None = None) -> Context:
        """What the models see for these users: train histories (+ profile text vectors when known)."""
        users = list(users)
        X = self.history(users)
        text = None
        if embeddings is not None and self.text_vecs:
            dim = embeddings.shape[1]
            zero = np.zeros(dim, np.float32)
            text = np.stack([np.asarray(self.text_vecs.get(u, zero), np.float32) for u in users]) if users else None
        rows = self.user_rows(users)
        owned = None
        if self.owned is not None:
            owned = self.owned[np.maximum(rows, 0)] if self.train.n_users else sp.csr_matrix(X.shape, dtype=np.float32)
            if (rows < 0).any():
                owned = sp.csr_matrix(sp.diags((rows >= 0).astype(np.float32)) @ owned)
        return make_context(self.train, X, embeddings, text_vecs=text, user_rows=rows, owned=owned)

    def summary(self) -> dict:
        """Counts for reports: cut, positive types, users per slice, positives, cold-item share."""
        n_pos = sum(len(v) for v in self.slice_positives["all"].values())
        n_cold = sum(len(v) for v in self.slice_positives["cold_items"].values())
        return {
            "cut": str(self.cut),
            "positive_types": list(self.positive_types),
            "positive_fallback": self.positive_fallback,
            "train_events": int(len(self.train_events)),
            "test_events": int(len(self.test_events)),
            "train_users": int(self.train.n_users),
            "users": {s: int(len(self.slice_users[s])) for s in SLICES},
            "positives_all": int(n_pos),
            "cold_item_positive_share": (n_cold / n_pos) if n_pos else None,
        }


def _group(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    """user id per row + item position per row -> {user: sorted distinct items}."""
    if len(users) == 0:
        return {}
    frame = pd.DataFrame({"u": users, "i": items}).drop_duplicates().sort_values(["u", "i"], kind="stable")
    u = frame["u"].to_numpy()
    i = frame["i"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    return {u[s]: i[s:e] for s, e in zip(starts, ends)}


def make_split(
    items: pd.DataFrame,
    events: pd.DataFrame,
    settings: Settings,
    *,
    cut: pd.Timestamp | None = None,
    fraction: float | None = None,
    profile_texts: pd.DataFrame | None = None,
    embed_texts: Callable[[list[str]], np.ndarray] | None = None,
) -> Split:
    """Split `events` at `cut` (default: `time_split(events, settings, fraction)`) into train
    Interactions and per-slice test positives. `profile_texts` (user_id, profile_text) and `embed_texts`
    give users' typed profiles as vectors (used in the contexts of every evaluated user who has one)."""
    events = prepare_events(events)
    if "cat_top" not in items.columns:
        raise CrossRecError("items need a cat_top column (use ingest.split_category on 'category')")
    items = items.sort_values("item_id").reset_index(drop=True)
    if cut is None:
        cut = time_split(events, settings, fraction)
    cut = pd.Timestamp(cut)
    if cut.tzinfo is not None:
        cut = cut.tz_convert("UTC").tz_localize(None)
    before = (events["ts"] < cut).to_numpy()
    train_events = events[before]
    test_events = events[~before]
    item_index = pd.Index(items["item_id"].to_numpy(dtype=object))
    # users of train = users with a train event on a catalog item
    known = item_index.get_indexer(train_events["item_id"]) >= 0
    train_users = np.sort(pd.unique(train_events.loc[known, "user_id"])) if len(train_events) else np.array([], object)
    train = build_interactions(items, train_events, settings, users=train_users, now=cut)
    if not (train.X.data > 0).any():
        # nothing to learn from: no events before the cut, or (an outlier timestamp stretching the time range)
        # all of them so far before it that their recency weight is 0
        lo, hi = events["ts"].min(), events["ts"].max()
        what = (f"the training period (before {cut:%Y-%m-%d}) has no events" if len(train_events) == 0 else
                f"the {len(train_events):,} events of the training period (before {cut:%Y-%m-%d}) are so old that "
                "their recency weight is 0")
        raise CrossRecError(f"{what}; events span {lo:%Y-%m-%d} .. {hi:%Y-%m-%d}: an outlier timestamp? remove it "
                            "with `crossrec events delete --before/--after`")
    n_items = train.n_items

    pos_types = tuple(settings.evaluation.positive_types)
    fallback = not events["event_type"].isin(pos_types).any()
    if fallback:
        pos_types = tuple(sorted(events["event_type"].unique()))
    test = code_events(test_events[test_events["event_type"].isin(pos_types)], train.item_index)
    t_users = test["user_id"].to_numpy(dtype=object)
    t_items = test["i"].to_numpy(np.int64)
    rows = train.user_rows(t_users) if len(t_users) else np.zeros(0, np.int64)
    # discovery: drop (user, item) pairs the user touched in train
    tc = train.touched.tocoo()
    touched_keys = tc.row.astype(np.int64) * n_items + tc.col
    keys = rows.astype(np.int64) * n_items + t_items
    seen = (rows >= 0) & np.isin(keys, touched_keys)
    t_users, t_items, rows = t_users[~seen], t_items[~seen], rows[~seen]

    item_users = np.asarray(train.touched.sum(axis=0)).ravel().astype(np.int64)
    warm = rows >= 0
    all_pos = _group(t_users, t_items)
    warm_pos = _group(t_users[warm], t_items[warm])
    cold_user_pos = _group(t_users[~warm], t_items[~warm])
    cold_item = warm & (item_users[t_items] == 0)
    cold_item_pos = _group(t_users[cold_item], t_items[cold_item])
    slice_positives = {"all": warm_pos, "cold_users": cold_user_pos, "cold_items": cold_item_pos}
    slice_users = {s: np.array(sorted(p), dtype=object) for s, p in slice_positives.items()}
    population = {s: len(u) for s, u in slice_users.items()}
    cap = int(settings.evaluation.max_users)
    slice_users = {s: sample_users(u, cap, settings.seed) for s, u in slice_users.items()}

    n_tops = len(train.cat_top_names)
    onehot = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), train.cat_top)), shape=(n_items, n_tops))
    owned = owned_matrix(train.events, train.n_users, n_items)
    user_tops = ((owned @ onehot) > 0).astype(np.float32).tocsr()

    text_vecs: dict[str, np.ndarray] = {}
    if embed_texts is not None and profile_texts is not None and len(profile_texts):
        wanted = set(slice_users["all"]) | set(slice_users["cold_users"])
        pt = profile_texts[profile_texts["user_id"].isin(wanted)]
        pt = pt[pt["profile_text"].fillna("").str.strip() != ""]
        if len(pt):
            vecs = np.asarray(embed_texts(pt["profile_text"].str.strip().tolist()), dtype=np.float32)
            text_vecs = dict(zip(pt["user_id"], vecs))

    return Split(items=items, train=train, cut=cut, settings=settings, train_events=train_events,
                 test_events=test_events, positive_types=pos_types, positive_fallback=bool(fallback),
                 slice_users=slice_users, slice_positives=slice_positives, all_positives=all_pos,
                 item_users=item_users, user_tops=user_tops, text_vecs=text_vecs, owned=owned, population=population)


def sample_users(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of the sorted `users` (a seeded random sample, sorted; all of them when limit is 0)."""
    if limit <= 0 or len(users) <= limit:
        return users
    rng = np.random.default_rng([seed, len(users)])
    return users[np.sort(rng.choice(len(users), limit, replace=False))]


def carve_validation(
    split_or_items: Split | pd.DataFrame,
    train_events: pd.DataFrame | Settings | None = None,
    settings: Settings | None = None,
    **kwargs,
) -> Split:
    """The same split applied inside the training period, cut at (1 - val_fraction) of its range.

    Call as `carve_validation(split, settings)` or `carve_validation(items, train_events, settings)`;
    extra keyword arguments go to `make_split` (profile_texts, embed_texts)."""
    if isinstance(split_or_items, Split):
        items = split_or_items.items
        events = split_or_items.train_events
        settings = train_events if isinstance(train_events, Settings) else (settings or split_or_items.settings)
    else:
        items, events = split_or_items, train_events
        if not isinstance(events, pd.DataFrame) or settings is None:
            raise TypeError("carve_validation(items, train_events, settings) or carve_validation(split, settings)")
    events = prepare_events(events)
    cut = time_split(events, settings, settings.evaluation.val_fraction)
    return make_split(items, events, settings, cut=cut, **kwargs)


