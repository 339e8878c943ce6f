"""Compiled loops (numba) behind retrieval: each shopper's n best allowed items from a sparse row, a dense
row, a fixed order or a category walk, in one pass per row and without sorting the row.

Every kernel writes into `out` (B × n item positions, best first, -1 padded) and breaks equal scores by
the lower item position, as `topk.top_k` does, so a retrieval that reaches the whole catalogue finds the
very items the dense top-k finds. Compiled on first use and cached beside this module. The kernels that
stop a walk early run serially: numba 0.68's parallel loops corrupted memory with a `break` inside them."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _take(vals, items, cnt, n, out_row):
    """The n best of the first `cnt` (value, item) pairs into `out_row`: value descending, then item ascending."""
    if cnt == 0:
        return
    v = vals[:cnt]
    it = items[:cnt]
    if cnt > n:
        kth = -np.partition(-v, n - 1)[n - 1]  # the n-th largest value
        room = n
        for j in range(cnt):
            if v[j] > kth:
                room -= 1
        keep = np.zeros(cnt, np.bool_)
        for j in range(cnt):
            if v[j] > kth:
                keep[j] = True
        # ties at the cut: the lowest items first
        tie_items = it[v == kth]
        tie_items = np.sort(tie_items)
        if room > 0:
            limit = tie_items[room - 1]
            for j in range(cnt):
                if v[j] == kth and it[j] <= limit:
                    keep[j] = True
        v = v[keep]
        it = it[keep]
    # sort by item, then stably by value descending
    o = np.argsort(it, kind="mergesort")
    it = it[o]
    v = v[o]
    o = np.argsort(-v, kind="mergesort")
    m = min(len(o), n)
    for j in range(m):
        out_row[j] = it[o[j]]


@njit(cache=True, inline="always")
def _worse(hv, hi, a, b):
    """Whether heap entry a ranks below entry b (lower value; equal values: the higher item)."""
    return hv[a] < hv[b] or (hv[a] == hv[b] and hi[a] > hi[b])


@njit(cache=True, inline="always")
def _sift(hv, hi, size, j):
    """Restore the heap (worst entry on top) below position j."""
    while True:
        left = 2 * j + 1
        if left >= size:
            return
        w = left
        if left + 1 < size and _worse(hv, hi, left + 1, left):
            w = left + 1
        if not _worse(hv, hi, w, j):
            return
        hv[j], hv[w] = hv[w], hv[j]
        hi[j], hi[w] = hi[w], hi[j]
        j = w


@njit(cache=True, inline="always")
def _offer(hv, hi, size, n, v, i):
    """Offer (value v, item i) to a heap of the n best seen so far; returns the new size."""
    if size < n:
        hv[size] = v
        hi[size] = i
        j = size
        size += 1
        while j > 0:  # sift up
            parent = (j - 1) // 2
            if _worse(hv, hi, j, parent):
                hv[j], hv[parent] = hv[parent], hv[j]
                hi[j], hi[parent] = hi[parent], hi[j]
                j = parent
            else:
                break
        return size
    if v > hv[0] or (v == hv[0] and i < hi[0]):
        hv[0] = v
        hi[0] = i
        _sift(hv, hi, size, 0)
    return size


@njit(cache=True, inline="always")
def _emit(hv, hi, size, out_row):
    """The heap's entries into out_row, best first (value descending, then item ascending)."""
    o = np.argsort(hi[:size], kind="mergesort")
    v = hv[:size][o]
    it = hi[:size][o]
    o2 = np.argsort(-v, kind="mergesort")
    for j in range(size):
        out_row[j] = it[o2[j]]


@njit(cache=True, parallel=True)
def sparse_top(indptr, indices, data, allowed, n, out):
    """Row r's entries indices[indptr[r]:indptr[r+1]] (in any column order) with a positive value and
    allowed[r, item]."""
    for r in prange(len(indptr) - 1):
        hv = np.empty(n, np.float64)
        hi = np.empty(n, np.int64)
        size = 0
        for p in range(indptr[r], indptr[r + 1]):
            i = indices[p]
            if data[p] > 0 and allowed[r, i]:
                size = _offer(hv, hi, size, n, data[p], i)
        _emit(hv, hi, size, out[r])


@njit(cache=True, parallel=True)
def dense_top(scores, cols, allowed, n, out):
    """Row r of a dense B × m block whose column j is item cols[j], allowed items only: one pass that keeps
    the n best in a heap (most values are rejected by one comparison with the heap's worst)."""
    m = scores.shape[1]
    for r in prange(scores.shape[0]):
        hv = np.empty(n, np.float64)
        hi = np.empty(n, np.int64)
        size = 0
        for j in range(m):
            i = cols[j]
            s = scores[r, j]
            if s == s and allowed[r, i]:
                size = _offer(hv, hi, size, n, s, i)
        _emit(hv, hi, size, out[r])


@njit(cache=True)
def ordered_top(order, allowed, n, out):
    """The first n allowed items of a fixed best-first order (one list for every shopper)."""
    for r in range(allowed.shape[0]):
        got = 0
        for j in range(len(order)):
            i = order[j]
            if allowed[r, i]:
                out[r, got] = i
                got += 1
                if got == n:
                    break


@njit(cache=True)
def category_top(per_cat, cat_ptr, cat_items, within, allowed, n, out):
    """Scores per_cat[r, c] · within[i] (item i of category c): each category with a positive score is
    walked in its own best-first order (`cat_items[cat_ptr[c]:cat_ptr[c+1]]`, within descending, ties by
    item) for its first n allowed items; the n best of those are the row's."""
    C = per_cat.shape[1]
    for r in range(per_cat.shape[0]):
        live = 0
        for c in range(C):
            if per_cat[r, c] > 0:
                live += 1
        vals = np.empty(live * n, np.float64)
        items = np.empty(live * n, np.int64)
        cnt = 0
        for c in range(C):
            w = per_cat[r, c]
            if w <= 0:
                continue
            got = 0
            for p in range(cat_ptr[c], cat_ptr[c + 1]):
                i = cat_items[p]
                if allowed[r, i]:
                    vals[cnt] = np.float32(w * within[i])
                    items[cnt] = i
                    cnt += 1
                    got += 1
                    if got == n:
                        break
        _take(vals, items, cnt, n, out[r])


@njit(cache=True)
def csr_values_grouped(indptr, indices, data, rows, items, order, scratch, out):
    """out[p] = the CSR's entry (rows[p], items[p]) (0 where none), column indices in any order: the pairs
    are visited row by row (`order` sorts them by row), each row's entries scattered into `scratch` (a zeroed
    vector over the columns, zeroed again after the row), so nothing is sorted."""
    p = 0
    n = len(order)
    while p < n:
        r = rows[order[p]]
        for q in range(indptr[r], indptr[r + 1]):
            scratch[indices[q]] = data[q]
        while p < n and rows[order[p]] == r:
            out[order[p]] = scratch[items[order[p]]]
            p += 1
        for q in range(indptr[r], indptr[r + 1]):
            scratch[indices[q]] = 0
