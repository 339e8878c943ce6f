"""Compiled loops (numba) behind batch evidence: for each (shopper, item) pair, walk the shopper's history
once, keep the running sum of the positive terms and the `top` largest (ties: the earlier history item).

An export asks for ~20 pairs × a few hundred history items per shopper; as NumPy passes over arrays of
that size, the lookups and the per-pair top-3 cost more than scoring the lists, so the walk is one
compiled loop. The arithmetic is the old per-shopper code's: terms and sums in the terms' dtype (float32
for the item-item signals, float64 otherwise), added in history order. Compiled on first use and cached
beside this module; import numba only from here, lazily."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _push(best, hist, t, h, top):
    """Insert term t of history item h into a pair's best list (descending; equal terms keep arrival order)."""
    k = top
    while k > 0 and (hist[k - 1] < 0 or t > best[k - 1]):
        k -= 1
    if k >= top:
        return
    for m in range(top - 1, k, -1):
        best[m] = best[m - 1]
        hist[m] = hist[m - 1]
    best[k] = t
    hist[k] = h


@njit(cache=True)
def item_item_top(q_ptr, q_idx, q_val, s_ptr, s_idx, s_val, items, rows, order, starts, out_hist, out_best,
                  out_total):
    """Pair p = (rows[p], items[p]): terms q[u, h] · S[h, i] over the history row u of the CSR q (history
    order). Pairs come grouped by shopper (`order[starts[g]:starts[g + 1]]`), so each history row h of S is
    read once per shopper: scanned against a mark of the shopper's listed items when they are several,
    else binary-searched for each (sorted column indices)."""
    top = out_hist.shape[1]
    mark = np.full(len(s_ptr) - 1, -1, np.int64)
    for g in range(len(starts) - 1):
        u = rows[order[starts[g]]]
        scan = starts[g + 1] - starts[g] >= 12  # a scan of the row beats a dozen binary searches
        for n in range(starts[g], starts[g + 1]):
            if mark[items[order[n]]] >= 0:  # an item listed twice: search instead
                scan = False
            mark[items[order[n]]] = order[n]
        for j in range(q_ptr[u], q_ptr[u + 1]):
            h = q_idx[j]
            a, b = s_ptr[h], s_ptr[h + 1]
            if scan:
                for m in range(a, b):
                    p = mark[s_idx[m]]
                    if p >= 0:
                        t = s_val[m] * q_val[j]
                        if t > 0:
                            out_total[p] += t
                            _push(out_best[p], out_hist[p], t, h, top)
                continue
            for n in range(starts[g], starts[g + 1]):
                p = order[n]
                i = items[p]
                lo, hi = a, b
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if s_idx[mid] < i:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < b and s_idx[lo] == i:
                    t = s_val[lo] * q_val[j]
                    if t > 0:
                        out_total[p] += t
                        _push(out_best[p], out_hist[p], t, h, top)
        for n in range(starts[g], starts[g + 1]):
            mark[items[order[n]]] = -1


@njit(cache=True)
def dense_top(x_ptr, x_idx, pos, B, items, rows, order, starts, out_hist, out_best, out_total):
    """Pair p: terms B[pos[h], pos[i]] (as float64) over the history row u of the CSR x (items with pos -1 are
    outside B); pairs grouped by shopper as in `item_item_top`, so each row of B is visited once per shopper."""
    top = out_hist.shape[1]
    for g in range(len(starts) - 1):
        u = rows[order[starts[g]]]
        for j in range(x_ptr[u], x_ptr[u + 1]):
            h = x_idx[j]
            r = pos[h]
            if r < 0:
                continue
            for n in range(starts[g], starts[g + 1]):
                p = order[n]
                col = pos[items[p]]
                if col < 0:
                    continue
                t = np.float64(B[r, col])  # B is float32; the old terms were float64
                if t > 0:
                    out_total[p] += t
                    _push(out_best[p], out_hist[p], t, h, top)


@njit(cache=True)
def terms_top(pair, hist, terms, out_hist, out_best, out_total):
    """Terms already computed: term j belongs to pair pair[j] (each pair's terms in history order)."""
    top = out_hist.shape[1]
    for j in range(len(terms)):
        t = terms[j]
        if t > 0:
            p = pair[j]
            out_total[p] += t
            _push(out_best[p], out_hist[p], t, hist[j], top)


def by_shopper(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, order, starts): the pairs grouped by shopper row for the kernels (pairs of a row keep their order)."""
    rows = np.asarray(rows, np.int64)
    order = np.argsort(rows, kind="stable")
    starts = np.flatnonzero(np.r_[True, rows[order][1:] != rows[order][:-1], True]) if len(rows) else np.zeros(1, np.int64)
    return rows, order, starts.astype(np.int64)


def outputs(n_pairs: int, top: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty (hist, best, total) arrays for a kernel: hist -1 (none), best and total 0 in the terms' dtype."""
    return np.full((n_pairs, top), -1, np.int64), np.zeros((n_pairs, top), dtype), np.zeros(n_pairs, dtype)
