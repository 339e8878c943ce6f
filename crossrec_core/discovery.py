"""What the cross-mode ranker knows about category exploration: facts computed once per fit from its events
(vectorised, saved with the run as named arrays) and the per-(shopper, candidate) features they give.

A shopper *enters* a top-level category at their first cart or purchase in it; an entry counts only when it
comes at least `ENTRY_WARMUP_DAYS` after the shopper's first event (before that, every category looks new
because the history has just begun). From the entries:
- per shopper: entries per active week (`entry_rate`) and entries in the last `RECENT_DAYS` days;
- per item: how many newcomers bought it on entering its category (`entry_users`), that count over the
  category's newcomers (`entry_share`, the "entry items"), and the count among recent newcomers;
- per category: the share of recently active shoppers who entered it lately (`cat_entry_rate`);
- per category pair A → B: the lift of entering B after having A (`log_lift`, shrunk towards 1).
The shopper's breadth (distinct top-level categories) and their lift into the candidate's category come
from the request's own history. Every feature reports as "context" in the explanations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import Interactions
from .signals.base import Context

ENTRY_WARMUP_DAYS = 28.0
RECENT_DAYS = 91.0
LIFT_SHRINK = 10.0  # pseudo-shoppers pulling a category pair's lift towards 1
FEATURES = ("breadth", "entry_rate", "recent_entries", "lift_mean", "lift_max", "entry_share", "entry_users",
            "entry_recent", "cat_entry_rate")


def _days(ts: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_datetime(ts).to_numpy().astype("datetime64[s]").astype(np.int64) / 86400.0, np.float64)


def _first_per_key(key: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys and the earliest day of each."""
    order = np.lexsort((day, key))
    k = key[order]
    first = np.r_[True, k[1:] != k[:-1]] if len(k) else np.zeros(0, bool)
    return k[first], day[order][first]


@dataclass
class DiscoveryStats:
    """Exploration facts of one fit (arrays in the fit's item, user and top-level category order)."""

    entry_users: np.ndarray  # items: newcomers who bought the item on entering its category
    entry_share: np.ndarray  # items: entry_users over the category's newcomers
    entry_recent: np.ndarray  # items: entry_users among entries of the last RECENT_DAYS
    cat_entry_rate: np.ndarray  # tops: recent entrants over recently active shoppers
    log_lift: np.ndarray  # tops × tops: log lift of entering B after having A
    entry_rate: np.ndarray  # users: entries per active week
    recent_entries: np.ndarray  # users: entries in the last RECENT_DAYS

    ARRAYS = ("entry_users", "entry_share", "entry_recent", "cat_entry_rate", "log_lift", "entry_rate",
              "recent_entries")

    @classmethod
    def from_data(cls, data: Interactions, positive_types: tuple[str, ...]) -> "DiscoveryStats":
        n_items, n_users, n_top = data.n_items, data.n_users, len(data.cat_top_names)
        ev = data.events
        pos = ev[ev["event_type"].isin(positive_types)] if "event_type" in ev else ev
        if not len(pos):  # a shop without carts or purchases: every event type counts, as the split does
            pos = ev
        u = pos["u"].to_numpy(np.int64)
        i = pos["i"].to_numpy(np.int64)
        t = np.asarray(data.cat_top, np.int64)[i]
        day = _days(pos["ts"])
        now = float(_days(pd.Series([data.now]))[0])
        user_first = np.full(n_users, np.inf)
        np.minimum.at(user_first, u, day)
        ut, ut_day = _first_per_key(u * n_top + t, day)  # each (shopper, category)'s first cart or purchase
        ut_u, ut_t = ut // n_top, ut % n_top
        entered = ut_day >= user_first[ut_u] + ENTRY_WARMUP_DAYS
        recent = entered & (ut_day >= now - RECENT_DAYS)
        # the events of an entry: on the entry's day, in the entered category
        at = np.searchsorted(ut, u * n_top + t)
        is_entry = entered[at] & (np.floor(day) == np.floor(ut_day[at]))
        pairs = np.unique(u[is_entry] * n_items + i[is_entry])
        entry_users = np.bincount(pairs % n_items, minlength=n_items).astype(np.float32)
        rec_pairs = np.unique((u * n_items + i)[is_entry & recent[at]])
        entry_recent = np.bincount(rec_pairs % n_items, minlength=n_items).astype(np.float32)
        entrants = np.bincount(ut_t[entered], minlength=n_top).astype(np.float32)
        entry_share = (entry_users / (entrants[data.cat_top] + 10.0)).astype(np.float32)
        active_recent = max(int(np.unique(u[day >= now - RECENT_DAYS]).size), 1)
        cat_entry_rate = (np.bincount(ut_t[recent], minlength=n_top) / active_recent).astype(np.float32)
        weeks = np.unique(u * 100_000 + np.floor(day / 7.0).astype(np.int64) % 100_000)
        active_weeks = np.bincount(weeks // 100_000, minlength=n_users).astype(np.float32)
        entries = np.bincount(ut_u[entered], minlength=n_users).astype(np.float32)
        entry_rate = entries / np.maximum(active_weeks, 1.0)
        recent_entries = np.bincount(ut_u[recent], minlength=n_users).astype(np.float32)
        return cls(entry_users=entry_users, entry_share=entry_share, entry_recent=entry_recent,
                   cat_entry_rate=cat_entry_rate,
                   log_lift=_log_lift(ut_u, ut_t, ut_day, entered, n_users, n_top),
                   entry_rate=entry_rate.astype(np.float32), recent_entries=recent_entries)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "DiscoveryStats":
        return cls(**{k: np.asarray(a[k]) for k in cls.ARRAYS})


def _log_lift(ut_u: np.ndarray, ut_t: np.ndarray, ut_day: np.ndarray, entered: np.ndarray, n_users: int,
              n_top: int) -> np.ndarray:
    """tops × tops: log of P(enter B after having A) / P(enter B), counted over shoppers a chunk at a time
    (the chunk's shoppers × tops × tops comparison stays near 4M cells)."""
    after = np.zeros((n_top, n_top), np.float64)
    has = np.bincount(ut_t, minlength=n_top).astype(np.float64)
    chunk = max(1, 4_000_000 // max(n_top * n_top, 1))
    bounds = np.searchsorted(ut_u, np.arange(0, n_users + chunk, chunk))
    for lo, hi, a, b in zip(range(0, n_users, chunk), range(chunk, n_users + chunk, chunk), bounds[:-1], bounds[1:]):
        if a == b:
            continue
        first = np.full((min(hi, n_users) - lo, n_top), np.inf)
        first[ut_u[a:b] - lo, ut_t[a:b]] = ut_day[a:b]
        ent = np.zeros(first.shape, bool)
        ent[ut_u[a:b] - lo, ut_t[a:b]] = entered[a:b]
        after += ((first[:, :, None] < first[:, None, :]) & ent[:, None, :]).sum(axis=0)
    p_b = np.bincount(ut_t[entered], minlength=n_top) / max(n_users, 1)
    p_b_given_a = (after + LIFT_SHRINK * p_b[None, :]) / (has[:, None] + LIFT_SHRINK)
    lift = np.log(np.maximum(p_b_given_a, 1e-9) / np.maximum(p_b, 1e-9)[None, :])
    lift[p_b[None, :].repeat(n_top, 0) <= 0] = 0.0
    np.fill_diagonal(lift, 0.0)
    return lift.astype(np.float32)


def user_rows(ctx: Context, data: Interactions) -> np.ndarray:
    """The batch's rows in the fitted data (-1: unknown): the context's own, else looked up by shopper id."""
    if ctx.user_rows is not None:
        return np.asarray(ctx.user_rows, np.int64)
    ids = getattr(ctx, "user_ids", None)
    if ids is None:
        return np.full(ctx.n, -1, np.int64)
    return np.asarray(data.user_rows(list(ids)), np.int64)


def discovery_features(rows: np.ndarray, items: np.ndarray, ctx: Context, stats: DiscoveryStats,
                       cat_top: np.ndarray, n_top: int, urows: np.ndarray) -> np.ndarray:
    """pairs × len(FEATURES) float32, in FEATURES order, for candidate pairs (rows, items); `urows` are the
    batch's rows in the fitted data (`user_rows`)."""
    owned = ctx.owned_items().tocsr()
    counts = np.zeros((ctx.n, n_top), np.float32)  # the shopper's carted or bought items per top category
    nz = owned.data != 0
    np.add.at(counts, (np.repeat(np.arange(ctx.n), np.diff(owned.indptr))[nz], cat_top[owned.indices[nz]]), 1.0)
    has = counts > 0
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    L = stats.log_lift
    t = cat_top[items]
    lift_mean = (share @ L)[rows, t]
    lift_max = np.zeros(len(rows), np.float32)
    for a in range(0, ctx.n, 256):  # rows × tops × tops a block at a time
        blk = np.where(has[a:a + 256, :, None], L[None], -np.inf).max(axis=1)
        sel = np.flatnonzero((rows >= a) & (rows < a + 256))
        v = blk[rows[sel] - a, t[sel]]
        lift_max[sel] = np.where(np.isfinite(v), v, 0.0)
    known = urows >= 0
    safe = np.maximum(urows, 0)
    rate = np.where(known, stats.entry_rate[safe] if len(stats.entry_rate) else 0.0, 0.0)[rows]
    recent = np.where(known, stats.recent_entries[safe] if len(stats.recent_entries) else 0.0, 0.0)[rows]
    cols = [np.log1p(has.sum(axis=1))[rows], rate, np.log1p(recent), lift_mean, lift_max,
            stats.entry_share[items], np.log1p(stats.entry_users[items]), np.log1p(stats.entry_recent[items]),
            stats.cat_entry_rate[t]]
    if not len(rows):
        return np.zeros((0, len(FEATURES)), np.float32)
    return np.column_stack(cols).astype(np.float32)


def with_discovery(cands, ctx: Context, stats: DiscoveryStats, data: Interactions):
    """The candidates (a `ranker.Candidates`) with the FEATURES columns appended: the cross-mode ranker's
    input, the general features first, as it was trained."""
    from .ranker import Candidates

    extra = discovery_features(cands.rows, cands.items, ctx, stats, np.asarray(data.cat_top, np.int64),
                               len(data.cat_top_names), user_rows(ctx, data))
    return Candidates(rows=cands.rows, items=cands.items, X=np.hstack([cands.X, extra]).astype(np.float32))
