"""ease: Steck's closed-form item-item model (EASE, 2019), the strongest single model on the logs here,
so the fused model and the learned ranker can use it.

B = I - P · diagMat(1 / diag(P)), P = (XᵀX + λI)⁻¹, on the binary users × items matrix of the
`ease_max_items` items with most users (the inverse is cubic in items, so large catalogues are capped);
score = binary(ctx.X) @ B from the user's current history.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..data import Interactions
from ..errors import CrossRecError
from .base import Context, EvidenceBatch, Signal, Words, cited, ranked_shares


def binary(X: sp.spmatrix) -> sp.csr_matrix:
    """1 where X > 0, float32 CSR."""
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    return B


def _spd_inverse(G: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix (float64, Cholesky); an empty matrix for an empty one."""
    if G.shape[0] == 0:  # LAPACK rejects a 0 × 0 matrix
        return np.zeros((0, 0))
    c, info = lapack.dpotrf(G, lower=0, overwrite_a=1)
    if info == 0:
        inv, info = lapack.dpotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise CrossRecError(f"EASE cannot invert its {G.shape[0]} × {G.shape[0]} item matrix (LAPACK info {info}); "
                            "ease_lambda must be above 0")
    upper = np.triu(inv)
    return upper + np.triu(upper, 1).T


class EASE(Signal, name="ease", label="basket affinity", color="#db2777", default_weight=0.25,
           state_fields=("n_items_", "items_", "B_")):
    """EASE (Steck 2019) on the `max_items` items with most train users.

    Items outside that set cannot be scored; they get a score below every scored item of the row (the
    row's minimum - 1), so they only fill lists after every scorable item."""

    def __init__(self, *, lam: float = 500.0, max_items: int = 6000):
        self.lam = lam  # the L2 penalty λ
        self.max_items = max_items

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "EASE":
        lam, max_items = float(self.lam), int(self.max_items)
        X = binary(data.X)
        self.n_items_ = X.shape[1]
        counts = np.diff(X.tocsc().indptr)
        cand = np.flatnonzero(counts > 0)
        order = np.argsort(-counts[cand], kind="stable")[:max_items]
        self.items_ = np.sort(cand[order])
        if len(self.items_) == 0:  # no events: nothing to model, every score is 0
            self.B_ = np.zeros((0, 0), np.float32)
            return self
        Xs = X[:, self.items_]
        G = (Xs.T @ Xs).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += lam
        P = _spd_inverse(G)
        B = P / (-np.diag(P))[None, :]
        np.fill_diagonal(B, 0.0)
        self.B_ = B.astype(np.float32)
        return self

    def score(self, ctx: Context) -> np.ndarray:
        Xs = self._modelled(ctx.X)
        inner = np.asarray(Xs @ self.B_, dtype=np.float32)
        floor = (inner.min(axis=1, keepdims=True) if inner.shape[1] else np.zeros((ctx.n, 1), np.float32))
        out = np.broadcast_to(np.minimum(floor, 0.0) - 1.0, (ctx.n, self.n_items_)).astype(np.float32)
        out[:, self.items_] = inner
        out[np.diff(Xs.indptr) == 0] = 0.0  # no history among the modelled items: no evidence, not a floor
        return out

    def _modelled(self, X: sp.spmatrix) -> sp.csr_matrix:
        """binary(X) restricted to the modelled items' columns (in `items_` order), from X's non-zeros alone:
        a fancy column index of a wide CSR costs more than the product."""
        B = binary(X)
        pos = self.__dict__.get("_pos")
        if pos is None:
            pos = np.full(self.n_items_, -1, np.int64)
            pos[self.items_] = np.arange(len(self.items_))
            self.__dict__["_pos"] = pos
        col = pos[B.indices]
        keep = col >= 0
        rows = np.repeat(np.arange(B.shape[0]), np.diff(B.indptr))
        indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=B.shape[0]))]
        out = sp.csr_matrix((B.data[keep], col[keep], indptr), shape=(B.shape[0], len(self.items_)))
        out.sort_indices()
        return out

    def block_scorer(self, ctx: Context):
        Xs = self._modelled(ctx.X)
        inner = np.asarray(Xs @ self.B_, dtype=np.float32)  # B × (at most ease_max_items)
        floor = (inner.min(axis=1, keepdims=True) if inner.shape[1] else np.zeros((ctx.n, 1), np.float32))
        fill = (np.minimum(floor, 0.0) - 1.0).astype(np.float32)
        cold = np.diff(Xs.indptr) == 0

        def block(a: int, b: int) -> np.ndarray:
            out = np.repeat(fill, b - a, axis=1)
            lo, hi = np.searchsorted(self.items_, [a, b])
            out[:, self.items_[lo:hi] - a] = inner[:, lo:hi]
            out[cold] = 0.0
            return out
        return block

    def _inner(self, ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(history @ B over the modelled items, each row's floor, rows without modelled history), once per batch."""
        def make():
            Xs = self._modelled(ctx.X)
            inner = np.asarray(Xs @ self.B_, dtype=np.float32)
            floor = (inner.min(axis=1, keepdims=True) if inner.shape[1] else np.zeros((ctx.n, 1), np.float32))
            return inner, (np.minimum(floor, 0.0) - 1.0).astype(np.float32)[:, 0], np.diff(Xs.indptr) == 0
        return ctx.cached((id(self), "inner"), make)

    def retrieve(self, ctx: Context, allowed: np.ndarray, n: int) -> np.ndarray:
        """The n best allowed modelled items (items outside the model only sit below them)."""
        from ..retrieval_kernels import dense_top

        inner, _, cold = self._inner(ctx)
        out = np.full((ctx.n, n), -1, np.int64)
        if inner.shape[1]:
            dense_top(inner, np.asarray(self.items_, np.int64), allowed, n, out)
        out[cold] = -1  # no modelled history: every item scores 0, none is a candidate of this signal
        return out

    def row_range(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """The floor below the model (while some item is outside it) and the best modelled item; 0 and 0
        for rows without modelled history."""
        inner, floor, cold = self._inner(ctx)
        lo = floor.copy() if len(self.items_) < self.n_items_ or not inner.shape[1] else inner.min(axis=1)
        hi = inner.max(axis=1) if inner.shape[1] else floor.copy()
        lo[cold], hi[cold] = 0.0, 0.0
        return lo.astype(np.float32), hi.astype(np.float32)

    def score_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        inner, floor, cold = self._inner(ctx)
        pos = self.__dict__.get("_pos")
        if pos is None:
            self._modelled(ctx.X)
            pos = self.__dict__["_pos"]
        rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
        p = pos[items]
        out = np.where(p >= 0, inner[rows, np.maximum(p, 0)] if inner.shape[1] else 0.0, floor[rows])
        out[cold[rows]] = 0.0
        return out.astype(np.float32)

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Each modelled history item h's term B[h, i] of each pair (u, i) (0 for an item outside the model)."""
        from .evidence_kernels import by_shopper, dense_top, outputs

        pos = np.full(self.n_items_, -1, dtype=np.int64)  # catalogue position -> row of B (-1: not modelled)
        pos[self.items_] = np.arange(len(self.items_))
        X = binary(ctx.X)
        out = outputs(len(items), 3, np.float64)
        dense_top(X.indptr, X.indices, pos, self.B_, np.asarray(items, np.int64), *by_shopper(rows), *out)
        return ranked_shares(*out)

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return cited(ev, words, "goes with {} in other shoppers' baskets", self.label)
