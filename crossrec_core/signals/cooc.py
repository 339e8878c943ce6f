"""cooc: item-to-item collaborative signal from co-occurrence in user histories.

B = the users × items matrix of data.X under `weighting` (binary | log | raw). C = BᵀB;
S_ji = C_ji / (sqrt(n_j · n_i) + shrink) with n_j = Σ_u B_uj² (the shrunk cosine; n_j is the
number of users of j when B is binary); zero diagonal; the `neighbours` largest entries of each
row j kept. Row j = a history item, column i = a candidate:

    score = q(ctx.X) @ S        q = `query` mapping of the current history (default log1p)

so event type and recency (already in the confidence of data.X / ctx.X) weigh each history item's
vote, dampened by log1p. The defaults (binary S, log query) were chosen on held-out logs, where raw
counts did worst (a few items bought 30+ times swamp them).

`co_share(j, i)` counts people exactly from the binary user × item incidence (who touched what), so
"bought by 38 % of people who bought X" is a count of people, whatever the weighting of S. It is
computed on demand (two sorted index lists intersected), not from a stored co-count matrix, which on
big logs would be far larger than S.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from .base import Context, EvidenceBatch, Signal, Words, ranked_shares, sparse_blocks, top_k_per_row

WEIGHTINGS = ("binary", "log", "raw")

# Upper bound on the non-zeros of one block of an item × item product before top-k (memory cap).
_BLOCK_NNZ = 20_000_000


def check_weightings(*weightings: str) -> None:
    """Refuse an unknown weighting name (signals validate their options in fit, scikit-learn style)."""
    for w in weightings:
        if w not in WEIGHTINGS:
            raise ValueError(f"unknown weighting '{w}' (one of {', '.join(WEIGHTINGS)})")


def weigh(X: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """A copy of a confidence matrix with its values mapped: binary (1), log (log1p) or raw."""
    check_weightings(weighting)
    out = sp.csr_matrix(X, dtype=np.float32, copy=True)
    out.data[out.data < 0] = 0
    out.eliminate_zeros()
    if weighting == "binary":
        out.data[:] = 1.0
    elif weighting == "log":
        out.data = np.log1p(out.data).astype(np.float32)
    return out


def _blocks(left: sp.csr_matrix, right: sp.csr_matrix, budget: int = _BLOCK_NNZ) -> list[tuple[int, int]]:
    """Row ranges of `left @ right` whose product non-zeros stay (by an upper bound) under budget."""
    n = left.shape[0]
    if n == 0:
        return []
    row_nnz = np.diff(right.indptr).astype(np.float64)
    pattern = left.copy()
    pattern.data = np.ones_like(pattern.data, dtype=np.float64)
    bound = np.asarray(pattern @ row_nnz).ravel()  # per output row: Σ over its users of their item counts
    bound = np.minimum(bound, right.shape[1])
    cum = np.cumsum(bound)
    out, start = [], 0
    while start < n:
        base = cum[start - 1] if start else 0.0
        stop = int(np.searchsorted(cum, base + budget, side="right"))
        stop = max(stop, start + 1)
        out.append((start, min(stop, n)))
        start = stop
    return out


def row_of(m: sp.csr_matrix) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))


def item_item(left: sp.csr_matrix, right: sp.csr_matrix, k: int, finish, budget: int | None = None) -> sp.csr_matrix:
    """top-k rows of finish(left[a:b] @ right, a, b), computed a row block at a time.

    `left` is items × users (CSR), `right` users × items (CSR); `finish(block, a, b)` returns the
    block (CSR, rows a..b) normalised, with the diagonal set to 0 (zeros are dropped by the top-k).
    Keeps memory bounded on big data.
    """
    parts = []
    for a, b in _blocks(left, right, budget or _BLOCK_NNZ):
        block = (left[a:b] @ right).tocsr()
        block.sort_indices()  # the top-k's ties then fall the same way whatever computed the block
        block = finish(block, a, b)
        parts.append(top_k_per_row(block, k))
    if not parts:
        return sp.csr_matrix((left.shape[0], right.shape[1]), dtype=np.float32)
    out = sp.vstack(parts, format="csr").astype(np.float32)
    out.sort_indices()
    return out


def from_pair_counts(chunks, n_items: int, k: int, finish) -> sp.csr_matrix:
    """top-k rows of finish(C) from pair counts given as row-complete chunks of (row, col, n): the same
    matrix `item_item` builds from the products, one chunk's rows at a time."""
    parts = []
    for chunk in chunks:
        rows, cols = chunk["row"].to_numpy(np.int64), chunk["col"].to_numpy(np.int64)
        block = sp.csr_matrix((chunk["n"].to_numpy(np.float32), (rows, cols)), shape=(n_items, n_items))
        block.sort_indices()
        parts.append(top_k_per_row(finish(block, 0, n_items), k))
    out = sum(parts[1:], parts[0]) if parts else sp.csr_matrix((n_items, n_items), dtype=np.float32)
    out = sp.csr_matrix(out, dtype=np.float32)
    out.sort_indices()
    return out


class ProductSignal(Signal):
    """A signal whose scores for a batch are one sparse non-negative B × n_items product (`product(ctx)`): cooc
    and graph (history @ an item × item matrix), neighbours (shopper weights @ their history vectors). Scoring,
    retrieval, score_at and row_range all read that product, computed once per batch."""

    def product(self, ctx: Context) -> sp.spmatrix:
        """The batch's B × n_items scores as a sparse matrix (entries never negative; absent ones score 0)."""
        raise NotImplementedError

    def score(self, ctx: Context) -> np.ndarray:
        return np.asarray(sp.csr_matrix(self.product(ctx)).toarray(), dtype=np.float32)

    def block_scorer(self, ctx: Context):
        return sparse_blocks(self.product(ctx))

    def _product(self, ctx: Context) -> sp.csr_matrix:
        """`product(ctx)` as float32 CSR (its column indices left unsorted), once per batch."""
        return ctx.cached((id(self), "product"), lambda: sp.csr_matrix(self.product(ctx), dtype=np.float32))

    def retrieve(self, ctx: Context, allowed: np.ndarray, n: int) -> np.ndarray:
        """The n best allowed items among the product's entries (items it does not reach score 0)."""
        from ..retrieval_kernels import sparse_top

        P = self._product(ctx)
        out = np.full((ctx.n, n), -1, np.int64)
        sparse_top(P.indptr, P.indices, P.data, allowed, n, out)
        return out

    def row_range(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """Scores are never negative and 0 off the product's entries: (0, row maximum) unless a row reaches
        every item."""
        P = self._product(ctx)
        nnz = np.diff(P.indptr)
        lo, hi = np.zeros(ctx.n, np.float32), np.zeros(ctx.n, np.float32)
        some = np.flatnonzero(nnz > 0)
        if len(some):
            starts = P.indptr[:-1][some]
            hi[some] = np.maximum(np.maximum.reduceat(P.data, starts), 0)
            full = nnz[some] >= P.shape[1]
            lo[some[full]] = np.minimum.reduceat(P.data, starts)[full]
        return lo, hi

    def score_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        from ..retrieval_kernels import csr_values_grouped

        P = self._product(ctx)
        rows, items = np.asarray(rows, np.int64), np.asarray(items, np.int64)
        out = np.zeros(len(rows), np.float32)
        csr_values_grouped(P.indptr, P.indices, P.data, rows, items, np.argsort(rows, kind="stable"),
                           np.zeros(P.shape[1], np.float32), out)
        return out


class ItemItemSignal(ProductSignal):
    """A signal scored as (the query-weighted current history) @ a fitted item × item matrix (cooc, graph);
    it keeps each item's `neighbours` strongest neighbours; `weighting` and `query` weigh the fitting
    histories and the query."""

    def __init__(self, *, neighbours: int = 200, weighting: str = "binary", query: str = "log"):
        self.neighbours = neighbours
        self.weighting = weighting
        self.query = query

    def similarity(self) -> sp.csr_matrix:
        """The fitted item × item matrix."""
        raise NotImplementedError

    def _query(self, X: sp.csr_matrix) -> sp.csr_matrix:
        return weigh(X, self.query)

    def product(self, ctx: Context) -> sp.spmatrix:
        return self._query(ctx.X) @ self.similarity()

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Each history item h's term q(x)[u, h] · S[h, i] of each pair (u, i), gathered for all pairs at once."""
        from .evidence_kernels import by_shopper, item_item_top, outputs

        Q, S = self._query(ctx.X), self.similarity()
        if not S.has_sorted_indices:
            S = S.sorted_indices()
        out = outputs(len(items), 3, np.result_type(Q.dtype, S.dtype))
        item_item_top(Q.indptr, Q.indices, Q.data, S.indptr, S.indices, S.data, np.asarray(items, np.int64),
                      *by_shopper(rows), *out)
        return ranked_shares(*out)


class CoocSignal(ItemItemSignal, name="cooc", label="bought together", color="#2563eb", default_weight=0.25,
                 state_fields=("S_", "item_users_", "n_users_", "n_items_")):
    """Shrunk-cosine item kNN on co-occurrence; score = (weighted current history) @ S."""

    def __init__(self, *, neighbours: int = 200, shrink: float = 10.0, weighting: str = "binary",
                 query: str = "log"):
        super().__init__(neighbours=neighbours, weighting=weighting, query=query)
        self.shrink = shrink

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "CoocSignal":
        """S from BᵀB, computed here a row block at a time; or, when an engine counts pairs (`crossrec
        train --engine ray`) and B is binary (so BᵀB is a count of shoppers), from its pair counts."""
        from ..engine import pair_counter

        check_weightings(self.weighting, self.query)
        B = weigh(data.X, self.weighting)
        norms = np.asarray(B.multiply(B).sum(axis=0)).ravel().astype(np.float64)  # n_j = Σ_u B_uj²
        root = np.sqrt(norms).astype(np.float32)
        shrink = np.float32(self.shrink)

        def finish(block: sp.csr_matrix, a: int, b: int) -> sp.csr_matrix:
            rows = a + row_of(block)
            denom = root[rows] * root[block.indices] + shrink
            block.data = np.divide(block.data, denom, out=np.zeros(block.nnz, np.float32), where=denom > 0)
            block.data[block.indices == rows] = 0.0  # zero diagonal (removed by top-k)
            return block

        counter = pair_counter()
        if counter is not None and self.weighting == "binary":
            self.S_ = from_pair_counts(counter(B), B.shape[1], int(self.neighbours), finish)
        else:
            self.S_ = item_item(B.T.tocsr(), B, int(self.neighbours), finish)
        # binary incidence (items × users) for exact people counts in co_share
        self.item_users_ = (data.touched.T.tocsr() > 0).astype(np.int8).tocsr()
        self.item_users_.sort_indices()
        self.n_users_ = np.diff(self.item_users_.indptr).astype(np.int64)  # users who touched each item
        self.n_items_ = data.n_items
        return self

    def similarity(self) -> sp.csr_matrix:
        return self.S_

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        src = ev.first
        found = src >= 0
        share = np.zeros(len(src))
        share[found] = self.co_shares(src[found], np.asarray(items)[found])
        titles = words.titles(np.where(found, src, 0))
        return [self.label if not f else f"{s:.0%} of shoppers who bought {t} also bought this" if s > 0
                else f"often bought with {t}" for f, s, t in zip(found.tolist(), share.tolist(), titles)]

    # ---- counts for sentences -----------------------------------------------------------------

    def co_count(self, j: int, i: int) -> int:
        """Number of users who touched both item j and item i."""
        ip = self.item_users_.indptr
        a = self.item_users_.indices[ip[j]:ip[j + 1]]
        b = self.item_users_.indices[ip[i]:ip[i + 1]]
        if len(a) == 0 or len(b) == 0:
            return 0
        return int(np.intersect1d(a, b, assume_unique=True).size)

    def co_shares(self, j: np.ndarray, i: np.ndarray) -> np.ndarray:
        """`co_share` of many pairs (j[t], i[t]) at once: the people counts of each distinct pair from one
        element-wise product of the two items' incidence rows."""
        j, i = np.asarray(j, dtype=np.int64), np.asarray(i, dtype=np.int64)
        n = self.n_users_[j]
        if not len(j):
            return np.zeros(0)
        key, inverse = np.unique(j * self.n_items_ + i, return_inverse=True)
        uj, ui = key // self.n_items_, key % self.n_items_
        both = self.item_users_[uj].multiply(self.item_users_[ui]).tocsr()
        both.eliminate_zeros()
        count = np.diff(both.indptr)[inverse]
        out = np.divide(count, n, out=np.zeros(len(j)), where=n > 0)
        out[(j == i) & (n > 0)] = 1.0
        return out

    def co_share(self, j: int, i: int) -> float:
        """Fraction of the users who touched item j who also touched item i (0 when j has no users)."""
        n = int(self.n_users_[j])
        if n == 0 or j == i:
            return 0.0 if n == 0 else 1.0
        return self.co_count(j, i) / n
