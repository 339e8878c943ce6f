"""Baselines the fused model is compared with, in the signals' interface: settings in the constructor,
`fit(data, embeddings=None) -> self`, `score(ctx) -> B × n_items float32` from the batch's histories ctx.X.

- popularity: train users per item (the same list for everyone).
- itemknn: cosine item-item on the binary user × item matrix, with a shrink term, pruned to the top
  `itemknn_neighbours` source items of every target item; score = binary(ctx.X) @ S.
- ease: Steck's closed form B = I - P · diagMat(1 / diag(P)), P = (XᵀX + λI)⁻¹, on the binary matrix of the
  `ease_max_items` items with most train users.
- als, rp3beta, content: the ALS, graph (RP3beta) and content signals, imported lazily.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .config import Settings
from .data import Interactions
from .errors import CrossRecError
from .signals.base import Context, Signal, item_evidence, top_k_per_row


def binary(X: sp.spmatrix) -> sp.csr_matrix:
    """1 where X > 0, float32 CSR."""
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    return B


class PopularityBaseline(Signal):
    """Number of train users who touched each item."""

    name = "popularity"

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "PopularityBaseline":
        self.counts_ = np.diff(binary(data.X).tocsc().indptr).astype(np.float32)
        return self

    def score(self, ctx: Context) -> np.ndarray:
        return np.tile(self.counts_, (ctx.n, 1))


class ItemKNN(Signal):
    """Item-based kNN: sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink), top neighbours per item."""

    name = "itemknn"

    def __init__(self, settings: Settings | None = None, *, neighbours: int | None = None,
                 shrink: float | None = None, block: int = 2048):
        super().__init__(settings)
        self.neighbours = int(neighbours if neighbours is not None else self.settings.itemknn_neighbours)
        self.shrink = float(shrink if shrink is not None else self.settings.itemknn_shrink)
        self.block = block

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "ItemKNN":
        X = binary(data.X)
        n = X.shape[1]
        norms = np.sqrt(np.diff(X.tocsc().indptr).astype(np.float64))
        Xt = X.T.tocsr()  # items × users
        blocks = []
        for start in range(0, n, self.block):
            stop = min(start + self.block, n)
            co = (Xt[start:stop] @ X).tocoo()  # target block × source items: co-counts
            keep = co.row + start != co.col
            r, c, v = co.row[keep], co.col[keep], co.data[keep].astype(np.float64)
            v = v / (norms[r + start] * norms[c] + self.shrink + 1e-12)
            m = sp.csr_matrix((v.astype(np.float32), (r, c)), shape=(stop - start, n))
            blocks.append(top_k_per_row(m, self.neighbours))
        S_t = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n), dtype=np.float32)
        self.sim_ = S_t.T.tocsr().astype(np.float32)  # source × target
        return self

    def score(self, ctx: Context) -> np.ndarray:
        return np.asarray((binary(ctx.X) @ self.sim_).toarray(), dtype=np.float32)

    def evidence(self, ctx: Context, row: int, items: np.ndarray) -> list[list[tuple[int, float]]]:
        return item_evidence(binary(ctx.X[row]), self.sim_, np.asarray(items))


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


class EASE(Signal):
    """EASE (Steck 2019) on the `max_items` items with most train users.

    Items outside that set cannot be scored; they get a score below every scored item of the row (the
    row's minimum - 1), so they only fill lists after every scorable item."""

    name = "ease"

    def __init__(self, settings: Settings | None = None, *, lam: float | None = None, max_items: int | None = None):
        super().__init__(settings)
        self.lam = float(lam if lam is not None else self.settings.ease_lambda)
        self.max_items = int(max_items if max_items is not None else self.settings.ease_max_items)

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "EASE":
        X = binary(data.X)
        self.n_items_ = X.shape[1]
        counts = np.diff(X.tocsc().indptr)
        cand = np.flatnonzero(counts > 0)
        order = np.argsort(-counts[cand], kind="stable")[: self.max_items]
        self.items_ = np.sort(cand[order])
        Xs = X[:, self.items_]
        G = (Xs.T @ Xs).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = _spd_inverse(G)
        B = P / (-np.diag(P))[None, :]
        np.fill_diagonal(B, 0.0)
        self.B_ = B.astype(np.float32)
        return self

    def score(self, ctx: Context) -> np.ndarray:
        Xs = binary(ctx.X)[:, self.items_]
        inner = np.asarray(Xs @ self.B_, dtype=np.float32)
        floor = (inner.min(axis=1, keepdims=True) if inner.shape[1] else np.zeros((ctx.n, 1), np.float32))
        out = np.broadcast_to(np.minimum(floor, 0.0) - 1.0, (ctx.n, self.n_items_)).astype(np.float32)
        out[:, self.items_] = inner
        return out

    def evidence(self, ctx: Context, row: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        pos = np.full(self.n_items_, -1, dtype=np.int64)
        pos[self.items_] = np.arange(len(self.items_))
        hist = binary(ctx.X[row]).indices
        hist = hist[pos[hist] >= 0]
        out = []
        for it in np.asarray(items):
            if len(hist) == 0 or pos[it] < 0:
                out.append([])
                continue
            c = np.maximum(self.B_[pos[hist], pos[it]], 0.0)
            total = c.sum()
            order = np.argsort(-c)[:top]
            out.append([(int(hist[j]), float(c[j] / total)) for j in order if c[j] > 0] if total > 0 else [])
        return out


def _als(settings: Settings):
    from .signals import ALSSignal

    return ALSSignal(settings)


def _rp3beta(settings: Settings):
    from .signals import GraphSignal

    return GraphSignal(settings)


def _content(settings: Settings):
    from .signals import ContentSignal

    return ContentSignal(settings)


BASELINES: dict[str, Callable[[Settings], Signal]] = {
    "popularity": PopularityBaseline,
    "itemknn": ItemKNN,
    "als": _als,
    "ease": EASE,
    "rp3beta": _rp3beta,
    "content": _content,
}
