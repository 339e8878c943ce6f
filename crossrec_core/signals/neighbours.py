"""neighbours: shopper similarity, as TIFU-KNN does (Hu et al. 2020): what shoppers who shop like you buy.

Each shopper's history vector v_u is the decayed mean of their baskets: events grouped by (shopper, day)
(the logs have no basket id), each group's items weighted by event type, the most recent group by 1 and
each older one by `decay` once more, divided by the sum of those group weights. The `k` shoppers most like
u are the largest cosines between those vectors, found at fit time a block of shoppers at a time on the
sparse vectors (never a shoppers × shoppers or shoppers × items dense matrix; items of more than
`max_item_users` shoppers left out of the likeness) and kept as two arrays (`neighbours_`, `similarity_`).
Then

    score(u, ·) = alpha · v_u + (1 − alpha) · mean of v_n over u's neighbours n

one sparse product of a batch × shoppers weight matrix with the vectors. A shopper unknown to the fit (a
typed profile, a cart, a shopper who arrived after it) has neither vector nor neighbours: a zero row.

Evidence: how many of the shopper's neighbours bought (or carted) the item, out of how many neighbours:
"bought by 12 of the 100 shoppers who shop most like this one".
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit

from ..data import OWNING_EVENTS, Interactions
from .base import Context, EvidenceBatch, Words
from .cooc import ProductSignal, item_item, row_of


def history_vectors(events: pd.DataFrame, n_users: int, n_items: int, event_weights: dict[str, float],
                    decay: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """(users × items decayed mean basket vectors (float32 CSR, sorted indices), a flag per stored entry:
    whether the user carted or bought the item). `events` has columns u, i, ts, event_type (coded)."""
    if not len(events):
        return sp.csr_matrix((n_users, n_items), dtype=np.float32), np.zeros(0, np.int8)
    u = events["u"].to_numpy(np.int64)
    i = events["i"].to_numpy(np.int64)
    day = pd.to_datetime(events["ts"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    day = day - day.min()
    groups, g_of = np.unique(u * (int(day.max()) + 1) + day, return_inverse=True)  # sorted by (user, day)
    g_user = groups // (int(day.max()) + 1)
    last = np.searchsorted(g_user, g_user, side="right") - 1
    age = last - np.arange(len(groups))  # 0: the user's most recent group
    g_weight = np.power(float(decay), age.astype(np.float64))
    norm = np.bincount(g_user, weights=g_weight, minlength=n_users)  # Σ of a user's group weights
    base = events["event_type"].map(event_weights).fillna(1.0).to_numpy(np.float64)
    # an item counts once per group, at its strongest event there
    frame = pd.DataFrame({"g": g_of, "i": i, "w": base, "own": events["event_type"].isin(OWNING_EVENTS).to_numpy()})
    per = frame.groupby(["g", "i"], sort=False).agg(w=("w", "max"), own=("own", "max"))
    gi = per.index.get_level_values("g").to_numpy(np.int64)
    ii = per.index.get_level_values("i").to_numpy(np.int64)
    rows = g_user[gi]
    V = sp.csr_matrix((per["w"].to_numpy(np.float64) * g_weight[gi], (rows, ii)), shape=(n_users, n_items))
    V.sum_duplicates()  # a user's groups summed per item
    V.data /= norm[row_of(V)]
    V.eliminate_zeros()
    V.sort_indices()
    owned = per["own"].to_numpy(bool)
    own_keys = np.unique(rows[owned] * n_items + ii[owned])
    keys = row_of(V).astype(np.int64) * n_items + V.indices
    return sp.csr_matrix(V, dtype=np.float32), np.isin(keys, own_keys).astype(np.int8)


def nearest_shoppers(V: sp.csr_matrix, k: int, max_item_users: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each user's `k` most similar other users by cosine of their rows of V (users × k rows, best first,
    equal similarities by the lower row; -1 / 0 pad where fewer than k share an item): the sparse top-k of
    V̂ V̂ᵀ computed a block of users at a time. Items held by more than `max_item_users` users are left out of
    the likeness (what nearly everyone buys says little about taste, and each such item would pair every
    one of its users with every other: the product's cost)."""
    n = V.shape[0]
    if max_item_users is not None and V.nnz:
        common = np.bincount(V.indices, minlength=V.shape[1]) > int(max_item_users)
        if common.any():
            V = V.copy()
            V.data[common[V.indices]] = 0.0
            V.eliminate_zeros()
    norms = np.sqrt(np.asarray(V.multiply(V).sum(axis=1)).ravel())
    Vn = sp.csr_matrix(sp.diags(np.divide(1.0, norms, out=np.zeros(n), where=norms > 0)) @ V, dtype=np.float32)

    def finish(block: sp.csr_matrix, a: int, b: int) -> sp.csr_matrix:
        block.data[block.indices == a + row_of(block)] = 0.0  # not one's own neighbour
        return block

    S = item_item(Vn, Vn.T.tocsr(), int(k), finish) if n else sp.csr_matrix((0, 0), dtype=np.float32)
    S.eliminate_zeros()
    nbr = np.full((n, int(k)), -1, np.int32)
    sim = np.zeros((n, int(k)), np.float32)
    if S.nnz:
        r = row_of(S).astype(np.int64)
        order = np.lexsort((S.indices, -S.data, r))
        pos = np.arange(S.nnz) - S.indptr[r[order]]
        nbr[r[order], pos] = S.indices[order]
        sim[r[order], pos] = S.data[order]
    return nbr, sim


@njit(cache=True)
def _peer_counts(indptr, indices, owned, nbr, users, items, out):
    """out[p] = how many of user users[p]'s neighbours carted or bought items[p] (V's indices sorted per row)."""
    for p in range(len(items)):
        u = users[p]
        if u < 0:
            continue
        c = 0
        for j in range(nbr.shape[1]):
            v = nbr[u, j]
            if v < 0:
                break
            lo, hi = indptr[v], indptr[v + 1]
            q = lo + np.searchsorted(indices[lo:hi], items[p])
            if q < hi and indices[q] == items[p] and owned[q]:
                c += 1
        out[p] = c


class NeighbourSignal(ProductSignal, name="neighbours", label="shoppers like you", color="#ca8a04",
                      default_weight=0.1, state_fields=("vectors_", "owned_", "neighbours_", "similarity_")):
    """TIFU-KNN's user-neighbour score: alpha · own decayed history + (1 − alpha) · the neighbours' mean."""

    def __init__(self, *, k: int = 100, alpha: float = 0.7, decay: float = 0.9, max_item_users: int | None = 5000):
        self.k = k
        self.alpha = alpha
        self.decay = decay
        self.max_item_users = max_item_users  # items of more users are left out of the likeness (None: none)

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "NeighbourSignal":
        if int(self.k) < 1:
            raise ValueError(f"neighbours k must be at least 1, got {self.k}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"neighbours alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 < float(self.decay) <= 1.0:
            raise ValueError(f"neighbours decay must be in (0, 1], got {self.decay}")
        self.vectors_, self.owned_ = history_vectors(data.events, data.n_users, data.n_items,
                                                     data.settings.behaviour.event_weights, float(self.decay))
        self.neighbours_, self.similarity_ = nearest_shoppers(self.vectors_, int(self.k), self.max_item_users)
        return self

    def _users(self, ctx: Context) -> np.ndarray:
        """The batch's rows in the fitted shoppers (-1: unknown to the fit, or no rows given)."""
        if ctx.user_rows is None:
            return np.full(ctx.n, -1, np.int64)
        rows = np.asarray(ctx.user_rows, np.int64)
        return np.where((rows >= 0) & (rows < self.vectors_.shape[0]), rows, -1)

    def weights(self, ctx: Context) -> sp.csr_matrix:
        """B × fitted shoppers: alpha on the shopper's own row, (1 − alpha) / (their neighbour count) on each
        neighbour's (all of it on the neighbours when the shopper has no vector of their own)."""
        users = self._users(ctx)
        known = np.flatnonzero(users >= 0)
        nbr = self.neighbours_[users[known]].astype(np.int64)
        has = nbr >= 0
        count = has.sum(axis=1)
        alpha = np.float64(self.alpha)
        r, c = np.nonzero(has)
        rows = np.r_[known, known[r]]
        cols = np.r_[users[known], nbr[r, c]]
        vals = np.r_[np.full(len(known), alpha), ((1.0 - alpha) / np.maximum(count, 1))[r]]
        return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(ctx.n, self.vectors_.shape[0]))

    def product(self, ctx: Context) -> sp.spmatrix:
        return self.weights(ctx) @ self.vectors_

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Per pair: (the shopper's neighbours who carted or bought the item, the shopper's neighbours)."""
        rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
        out = EvidenceBatch.empty(len(items))
        users = self._users(ctx)[rows] if len(rows) else np.zeros(0, np.int64)
        bought = np.zeros(len(items), np.int64)
        V = self.vectors_
        _peer_counts(V.indptr, V.indices, self.owned_, self.neighbours_, users, items, bought)
        of = np.where(users >= 0, (self.neighbours_[np.maximum(users, 0)] >= 0).sum(axis=1), 0)
        out.peers = np.stack([bought, of], axis=1).astype(np.int64)
        return out

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        if ev.peers is None:
            return [self.label] * len(ev)
        return [f"bought by {b} of the {n} shoppers who shop most like this one" if b > 0 else
                "what shoppers like this one buy" if n > 0 else self.label for b, n in ev.peers.tolist()]
