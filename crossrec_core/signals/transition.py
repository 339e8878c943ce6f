"""transition: how strongly the user's categories lead to the item's category in the logs.

Categories are data.cat_flow (the level set by settings.behaviour.transition_level). For each user, the first
touch of each category is taken from data.events; a pair A → B (A ≠ B) counts for the user when
their first touch of A is strictly earlier than their first touch of B.

    users_from[A]   users who touched A           users_pair[A, B]  users with A → B
    P(B | A)        users_pair / users_from       P(B)              users who touched B / all users
    lift            P(B | A) / P(B)

Strength (the matrix the score uses): T[A, B] = p̃ · max(lift̃ − 1, 0), with
p̃ = (users_pair + m·P(B)) / (users_from + m) — P(B | A) shrunk towards the base rate by m pseudo
users (m = `shrink`, default 10) — and lift̃ = p̃ / P(B). So a flow needs both a real chance of
happening and more of it than chance; a pair seen in 2 users cannot dominate, and a category
everyone touches anyway (lift ≈ 1) gets ≈ 0. T[A, A] = 0.

score[u, i] = within[i] · Σ_A aff_u[A] · T[A, cat(i)], aff_u = category_affinity(ctx.X) (confidence
share per category of the *current* history, so a new event moves the scores without a refit), and
within[i] = max(sqrt(popularity_i / top popularity in cat(i)), 0.05): the flow into a category is
shared out by each item's standing there, so the signal ranks items, not only categories (the bare
category score ranks every item of a category alike).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import Interactions
from ..profiles import category_affinity
from .base import Context, EvidenceBatch, Flow, Signal, Words

_PAIR_CHUNK = 8_000_000  # user pairs generated at once (memory cap)


def first_touch(events: pd.DataFrame, cat_codes: np.ndarray, n_cats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, category, first time as int64 ns) of every (user, category) touched, sorted by user then time."""
    if len(events) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    u = events["u"].to_numpy(np.int64)
    c = cat_codes[events["i"].to_numpy(np.int64)].astype(np.int64)
    t = pd.to_datetime(events["ts"]).to_numpy("datetime64[ns]").view(np.int64)
    key = u * n_cats + c
    order = np.lexsort((t, key))
    key_s, t_s = key[order], t[order]
    first = np.ones(len(key_s), dtype=bool)
    first[1:] = key_s[1:] != key_s[:-1]
    key_f, t_f = key_s[first], t_s[first]
    fu, fc = key_f // n_cats, key_f % n_cats
    order = np.lexsort((t_f, fu))
    return fu[order], fc[order], t_f[order]


def pair_counts(fu: np.ndarray, fc: np.ndarray, ft: np.ndarray, n_cats: int, chunk: int = _PAIR_CHUNK) -> np.ndarray:
    """n_cats × n_cats: users whose first touch of A precedes their first touch of B.

    Rows are grouped by user; every ordered pair of a user's rows is generated with index
    arithmetic (no Python loop over users or categories), a chunk of users at a time.
    """
    counts = np.zeros(n_cats * n_cats, dtype=np.int64)
    if len(fu) == 0:
        return counts.reshape(n_cats, n_cats)
    bounds = np.flatnonzero(np.r_[True, fu[1:] != fu[:-1], True])
    starts, sizes = bounds[:-1], np.diff(bounds)
    sq = sizes.astype(np.int64) ** 2
    cum = np.cumsum(sq)
    g = 0
    while g < len(starts):
        base = cum[g - 1] if g else 0
        h = int(np.searchsorted(cum, base + chunk, side="right"))
        h = max(h, g + 1)
        st, sz = starts[g:h], sizes[g:h]
        rows = np.arange(st[0], st[-1] + sz[-1])  # rows of these users
        row_size = np.repeat(sz, sz)
        row_start = np.repeat(st, sz)
        left = np.repeat(rows, row_size)
        offs = np.arange(len(left)) - np.repeat(np.cumsum(row_size) - row_size, row_size)
        right = np.repeat(row_start, row_size) + offs
        ok = ft[left] < ft[right]
        counts += np.bincount(fc[left[ok]] * n_cats + fc[right[ok]], minlength=n_cats * n_cats)
        g = h
    return counts.reshape(n_cats, n_cats)


class TransitionSignal(Signal, name="transition", label="category flow", color="#ea580c", default_weight=0.1,
                       state_fields=("cat_flow_", "cat_names_", "users_from_", "users_pair_", "base_", "p_", "lift_",
                                     "strength_", "n_users_", "within_")):
    """Category flow A → B (first touches), weighted by the user's category affinity."""

    def __init__(self, *, shrink: float = 10.0):
        self.shrink = shrink

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "TransitionSignal":
        n = len(data.cat_flow_names)
        cat = np.asarray(data.cat_flow, dtype=np.int64)
        fu, fc, ft = first_touch(data.events, cat, n)
        pair = pair_counts(fu, fc, ft, n)
        np.fill_diagonal(pair, 0)
        users_cat = np.bincount(fc, minlength=n).astype(np.float64)  # users who touched each category
        n_users = float(len(np.unique(fu)))
        base = users_cat / n_users if n_users else np.zeros(n)
        frm = users_cat[:, None]
        p = np.divide(pair, frm, out=np.zeros((n, n)), where=frm > 0)
        lift = np.divide(p, base[None, :], out=np.zeros((n, n)), where=base[None, :] > 0)
        m = float(self.shrink)
        p_s = np.divide(pair + m * base[None, :], frm + m, out=np.zeros((n, n)), where=(frm + m) > 0)
        lift_s = np.divide(p_s, base[None, :], out=np.zeros((n, n)), where=base[None, :] > 0)
        T = p_s * np.clip(lift_s - 1.0, 0.0, None)
        T[pair == 0] = 0.0  # no observed flow, no strength
        np.fill_diagonal(T, 0.0)
        self.cat_flow_ = cat
        self.cat_names_ = np.asarray(data.cat_flow_names, dtype=object)
        self.users_from_ = np.repeat(users_cat[:, None], n, axis=1)  # n × n: users who touched A (row)
        self.users_pair_ = pair
        self.base_ = base
        self.p_ = p
        self.lift_ = lift
        self.strength_ = T
        self.n_users_ = int(n_users)
        # Within a category, items carry the flow in proportion to their standing there (sqrt of the
        # share of the category's top item's popularity), so the signal ranks items, not just
        # categories; items without events keep a small floor and can still surface.
        pop = np.clip(np.nan_to_num(np.asarray(data.popularity, dtype=np.float64)), 0, None)
        top_in_cat = np.zeros(n)
        np.maximum.at(top_in_cat, cat, pop)
        share = np.divide(pop, top_in_cat[cat], out=np.zeros_like(pop), where=top_in_cat[cat] > 0)
        self.within_ = np.maximum(np.sqrt(share), 0.05).astype(np.float32)
        return self

    @property
    def n_cats(self) -> int:
        return len(self.cat_names_)

    def category_scores(self, ctx: Context) -> np.ndarray:
        """B × n_cats: Σ_A aff[A] · T[A, B]."""
        aff = category_affinity(ctx.X, self.cat_flow_, self.n_cats)
        return aff @ self.strength_

    def score(self, ctx: Context) -> np.ndarray:
        per_cat = self.category_scores(ctx).astype(np.float32)
        out = np.take(per_cat, self.cat_flow_, axis=1)  # B × n_items, one float32 allocation
        out *= self.within_[None, :]
        return out

    def block_scorer(self, ctx: Context):
        per_cat = self.category_scores(ctx).astype(np.float32)

        def block(a: int, b: int) -> np.ndarray:
            out = np.take(per_cat, self.cat_flow_[a:b], axis=1)
            out *= self.within_[None, a:b]
            return out
        return block

    def _per_cat(self, ctx: Context) -> np.ndarray:
        return ctx.cached((id(self), "per_cat"), lambda: self.category_scores(ctx).astype(np.float32))

    def _walk(self) -> tuple[np.ndarray, np.ndarray]:
        """Each category's items best first (within-category standing descending, ties by item), as CSR-like
        (pointers, items): what retrieval walks."""
        walk = self.__dict__.get("_walk_lists")
        if walk is None:
            order = np.lexsort((np.arange(len(self.within_)), -self.within_, self.cat_flow_))
            ptr = np.r_[0, np.cumsum(np.bincount(self.cat_flow_, minlength=self.n_cats))].astype(np.int64)
            walk = self.__dict__["_walk_lists"] = (ptr, order.astype(np.int64))
        return walk

    def retrieve(self, ctx: Context, allowed: np.ndarray, n: int) -> np.ndarray:
        """The n best allowed items of the categories the shopper's categories flow into."""
        from ..retrieval_kernels import category_top

        ptr, items = self._walk()
        out = np.full((ctx.n, n), -1, np.int64)
        category_top(self._per_cat(ctx), ptr, items, self.within_, allowed, n, out)
        return out

    def row_range(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """Per row, over the categories that have items: its flow into the category times the category's
        lowest (highest) item standing (flows are never negative, so these are the row's extremes)."""
        n = self.n_cats
        lo_w = np.full(n, np.inf, np.float32)
        hi_w = np.full(n, -np.inf, np.float32)
        np.minimum.at(lo_w, self.cat_flow_, self.within_)
        np.maximum.at(hi_w, self.cat_flow_, self.within_)
        has = np.isfinite(lo_w)
        per_cat = self._per_cat(ctx)[:, has]
        if not has.any():
            return np.zeros(ctx.n, np.float32), np.zeros(ctx.n, np.float32)
        return (per_cat * lo_w[has]).min(axis=1), (per_cat * hi_w[has]).max(axis=1)

    def score_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, np.int64)
        return self._per_cat(ctx)[np.asarray(rows, np.int64), self.cat_flow_[items]] * self.within_[items]

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Per pair: the category A of the user's history contributing most to the flow into the item's
        category (with P(B | A) and lift); no flow when no category of the history leads there."""
        items = np.asarray(items, dtype=np.int64)
        out = EvidenceBatch.empty(len(items))
        out.flows = [None] * len(items)
        if not len(items) or not self.n_cats:
            return out
        users, inverse = np.unique(np.asarray(rows), return_inverse=True)
        aff = category_affinity(ctx.X[users], self.cat_flow_, self.n_cats)
        b = self.cat_flow_[items].astype(np.int64)
        contrib = aff[inverse] * self.strength_[:, b].T  # pairs × categories
        a = contrib.argmax(axis=1)
        found = contrib[np.arange(len(a)), a] > 0
        names = self.cat_names_.astype(str)
        for p, src, dst, prob, lift in zip(np.flatnonzero(found).tolist(), names[a[found]].tolist(),
                                           names[b[found]].tolist(), self.p_[a, b][found].tolist(),
                                           self.lift_[a, b][found].tolist()):
            out.flows[p] = Flow(src, dst, prob, lift)
        return out

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return [self.label if f is None else
                f"people who buy {f.source} often go on to {f.target} (lift {round(f.lift, 2):.1f})"
                for f in (ev.flows or [None] * len(ev))]

    def flows(self, min_users: int = 5, top: int | None = None) -> pd.DataFrame:
        """Category flows with at least `min_users` users, strongest first (for the sankey)."""
        a, b = np.nonzero(self.users_pair_ >= max(int(min_users), 1))
        keep = a != b
        a, b = a[keep], b[keep]
        df = pd.DataFrame({
            "from": self.cat_names_[a].astype(str),
            "to": self.cat_names_[b].astype(str),
            "users_from": self.users_from_[a, b].astype(np.int64),
            "users_both": self.users_pair_[a, b].astype(np.int64),
            "p": self.p_[a, b],
            "lift": self.lift_[a, b],
            "strength": self.strength_[a, b],
        }, columns=["from", "to", "users_from", "users_both", "p", "lift", "strength"])
        df = df.sort_values(["strength", "users_both"], ascending=False, kind="stable").reset_index(drop=True)
        return df.head(top) if top is not None else df
