"""popularity: recent, time-decayed popularity — a prior and the fallback for users with nothing else.

data.popularity holds Σ event weight × 0.5^(age / popularity_half_life_days) per item, age counted
from data.now (the last event, or the split cut). The score is log1p of it, the same row for every
user; items without events score 0.
"""
from __future__ import annotations

import numpy as np

from ..data import Interactions
from .base import Context, EvidenceBatch, Signal, Words


class PopularitySignal(Signal, name="popularity", label="popular now", color="#9ca3af", default_weight=0.15,
                       state_fields=("popularity_", "scores_")):
    """score[u, i] = log1p(decayed popularity of i), identical for every user."""

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "PopularitySignal":
        pop = np.nan_to_num(np.asarray(data.popularity, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        self.popularity_ = pop
        self.scores_ = np.log1p(np.clip(pop, 0, None)).astype(np.float32)
        return self

    def score(self, ctx: Context) -> np.ndarray:
        return np.tile(self.scores_, (ctx.n, 1))

    def block_scorer(self, ctx: Context):
        return lambda a, b: np.broadcast_to(self.scores_[a:b], (ctx.n, b - a))

    def retrieve(self, ctx: Context, allowed: np.ndarray, n: int) -> np.ndarray:
        """The n most popular allowed items: one fixed list, read until each row has n."""
        from ..retrieval_kernels import ordered_top

        order = self.__dict__.get("_order")
        if order is None:
            order = self.__dict__["_order"] = np.argsort(-self.scores_, kind="stable").astype(np.int64)
        out = np.full((ctx.n, n), -1, np.int64)
        ordered_top(order, allowed, n, out)
        return out

    def score_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.scores_[np.asarray(items, np.int64)]

    def row_range(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = (self.scores_.min(), self.scores_.max()) if len(self.scores_) else (0.0, 0.0)
        return np.full(ctx.n, lo, np.float32), np.full(ctx.n, hi, np.float32)

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return [f"popular right now in {c}" for c in words.items["cat_top"][np.asarray(items, dtype=np.int64)].astype(str).tolist()]
