"""The fused top-k without a (users × catalogue) array: the catalogue is scored a block of items at a time.

The fusion is Σ_s w_s · (raw_s − lo_s) / (hi_s − lo_s) per user, with lo/hi each signal's row minimum and
maximum over the whole catalogue. So two passes over column blocks: the first finds lo and hi (each
signal's block scorer, `Signal.block_scorer`), the second computes the fused block with exactly the
dense path's float32 operations and merges it into each user's running best `keep` items (the ones a
list may be picked from: k, or 3k + 10 when product families are capped or lists diversified). The
candidate set of each user is therefore provably the dense top-`keep`: the lists are the dense ones,
ties included (equal scores in item order), and memory per batch is O(batch × (block + keep)).
Raw blocks of the first pass are kept for the second while they fit `Settings.retrieval.score_cache_mb`.

Rules go through the same scan: multipliers scale each block (the dense path's float32 operations),
exclusions are part of `allowed`, buried items are kept in a second running set listed after the first,
pins are placed on the finished lists (FusedScorer.rank). The learned ranker's lists use the same scan
with a `value` hook (crossrec_core.ranked.ranked_lists); evaluation reads its lists and the sampled-AUC
scores through it too (FusedScorer.held_out). Only `score()`/`score_cross()` (the ranker's evaluation, the
baselines, ranker training) still build B × catalogue arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .signals.base import Context
from .topk import top_k

BlockFn = Callable[[int, int], np.ndarray]


def _merge(best_idx: np.ndarray, best_val: np.ndarray, best_parts: dict[str, np.ndarray], idx: np.ndarray,
           val: np.ndarray, parts: dict[str, np.ndarray], keep: int, own: bool = False):
    """The `keep` best of the running set and a block (both in item order; ties: the lower item), returned
    in item order again so the next merge breaks ties as the dense top-k does. The block's own `keep` best
    are taken first (the best of a union are among the best of its parts), so only small arrays are joined.
    `own`: `val` is the caller's scratch array, overwritten instead of copied."""
    pos, _ = top_k(val, None, min(keep, val.shape[1]), copy=not own)  # (only a NaN of `val` is overwritten)
    pos = np.sort(np.where(pos >= 0, pos, np.iinfo(np.int64).max), axis=1)  # item order, pads last
    pos = np.where(pos == np.iinfo(np.int64).max, -1, pos)
    safe = np.maximum(pos, 0)
    blk_idx = np.where(pos >= 0, np.take_along_axis(idx, safe, axis=1), -1)
    blk_val = np.where(pos >= 0, np.take_along_axis(val, safe, axis=1), -np.inf).astype(np.float32)
    blk_parts = {s: np.take_along_axis(parts[s], safe, axis=1) for s in parts}
    cand_idx = np.concatenate([best_idx, blk_idx], axis=1)
    cand_val = np.concatenate([best_val, blk_val], axis=1)
    pos, _ = top_k(cand_val, None, keep)
    chosen = np.where(pos >= 0, np.take_along_axis(cand_idx, np.maximum(pos, 0), axis=1), -1)
    order = np.argsort(np.where(chosen >= 0, chosen, np.iinfo(np.int64).max), axis=1, kind="stable")
    pos = np.take_along_axis(pos, order, axis=1)
    safe = np.maximum(pos, 0)
    out_idx = np.take_along_axis(chosen, order, axis=1)
    out_val = np.where(pos >= 0, np.take_along_axis(cand_val, safe, axis=1), -np.inf).astype(np.float32)
    out_parts = {s: np.take_along_axis(np.concatenate([best_parts[s], blk_parts[s]], axis=1), safe, axis=1)
                 for s in parts}
    return out_idx, out_val, out_parts


@dataclass
class Scan:
    """What one two-pass scan of the catalogue found for a batch: each row's `keep` best allowed items, best
    first (-1 pads), their fused scores and each signal's contribution (B × keep), the fused score at the
    asked (row, item) pairs, the batch's largest fused score of an allowed item (NaN when none or not asked
for) and the fused scores and parts of the `extra` items (pinned items, scored wherever they rank)."""

    idx: np.ndarray
    val: np.ndarray
    parts: dict[str, np.ndarray]
    at: np.ndarray
    allowed_max: float
    extra_val: np.ndarray  # B × len(extra): the fused score of the `extra` items asked for
    extra_parts: dict[str, np.ndarray]
    lo: dict[str, np.ndarray]  # each signal's row minimum and maximum over the catalogue (B × 1)
    hi: dict[str, np.ndarray]
    fmin: np.ndarray  # the fused score's row minimum and maximum over the whole catalogue (B × 1)
    fmax: np.ndarray


def _best(best_idx: np.ndarray, best_val: np.ndarray, best_parts: dict[str, np.ndarray], keep: int):
    """The running set (item order) as the final best-first lists: top_k ties keep item order."""
    pos, val = top_k(best_val, None, keep)
    safe = np.maximum(pos, 0)
    idx = np.where(pos >= 0, np.take_along_axis(best_idx, safe, axis=1), -1)
    parts = {s: np.where(pos >= 0, np.take_along_axis(v, safe, axis=1), 0.0) for s, v in best_parts.items()}
    return idx, np.where(pos >= 0, val, 0.0).astype(np.float32), parts


def _after(first: tuple, then: tuple, keep: int) -> tuple:
    """Each row's lists `first` followed by `then` (both best first, -1 pads), cut to `keep`: buried items
    come after every other allowed item."""
    idx = np.concatenate([first[0], then[0]], axis=1)
    order = np.argsort(idx < 0, axis=1, kind="stable")[:, :keep]  # listed items first, their order kept
    out = np.take_along_axis(idx, order, axis=1)
    val = np.take_along_axis(np.concatenate([first[1], then[1]], axis=1), order, axis=1)
    parts = {s: np.take_along_axis(np.concatenate([first[2][s], then[2][s]], axis=1), order, axis=1)
             for s in first[2]}
    return out, val, parts


def scan(block_fns: dict[str, BlockFn], row_w: dict[str, np.ndarray], allowed: np.ndarray, n_items: int,
         keep: int, block: int, cache_bytes: int = 0, mult: BlockFn | None = None,
         buried: BlockFn | None = None, at: tuple[np.ndarray, np.ndarray] | None = None,
         extra: np.ndarray | None = None, value: Callable | None = None, bounds: tuple | None = None,
         ranges: bool = False) -> Scan:
    """Each row's `keep` best allowed items by the fused score, in two passes over column blocks.

    `mult(a, b)`: B × (b − a) rule multipliers of the fused score and its parts (None: none);
    `buried(a, b)`: B × (b − a) bool, items listed only after every other allowed item (in score order);
    `at`: (rows, items) pairs whose fused score is returned too (held-out AUC); `extra`: items whose fused
    score and parts are returned for every row; `value(total, a, b, mult)`: what the lists are ranked by
    instead of the fused score (the learned ranker's order, crossrec_core.ranked); `bounds`: the signals'
    (lo, hi) of an earlier scan of these rows, which skips the first pass; `ranges`: find the fused score's
    row minimum and maximum (`fmin`, `fmax`; infinite otherwise)."""
    B = allowed.shape[0]
    names = list(block_fns)
    spans = [(a, min(a + block, n_items)) for a in range(0, n_items, max(int(block), 1))]
    lo = {s: np.full((B, 1), np.inf, np.float32) for s in names}
    hi = {s: np.full((B, 1), -np.inf, np.float32) for s in names}
    cache: dict[tuple[str, int], np.ndarray] = {}
    used = 0
    if bounds is not None:
        lo, hi = bounds
    for a, b in spans if bounds is None else ():  # pass 1: each signal's row minimum and maximum
        for s in names:
            raw = np.asarray(block_fns[s](a, b), dtype=np.float32)
            np.minimum(lo[s], raw.min(axis=1, keepdims=True), out=lo[s])
            np.maximum(hi[s], raw.max(axis=1, keepdims=True), out=hi[s])
            if used + raw.nbytes <= cache_bytes:
                cache[(s, a)] = raw
                used += raw.nbytes
    span = {s: hi[s] - lo[s] for s in names}
    flat = {s: bool((span[s] <= 0).any()) for s in names}
    empty = (np.full((B, 0), -1, np.int64), np.zeros((B, 0), np.float32), {s: np.zeros((B, 0), np.float32) for s in names})
    best = {"up": empty, "down": empty}  # running sets (item order): not buried, buried
    rows_at, items_at = (np.zeros(0, np.int64), np.zeros(0, np.int64)) if at is None else at
    order_at = np.argsort(items_at, kind="stable")
    cut_at = np.searchsorted(items_at[order_at], [a for a, _ in spans] + [n_items])
    vals_at = np.full(len(items_at), np.nan, np.float32)
    top = -np.inf
    fmin = np.full((B, 1), np.inf, np.float32)
    fmax = np.full((B, 1), -np.inf, np.float32)
    extra = np.zeros(0, np.int64) if extra is None else np.asarray(extra, np.int64)
    extra_val = np.zeros((B, len(extra)), np.float32)
    extra_parts = {s: np.zeros((B, len(extra)), np.float32) for s in names}
    for j, (a, b) in enumerate(spans):  # pass 2: the fused block (the dense path's operations), merged
        total = np.zeros((B, b - a), np.float32)
        parts = {}
        for s in names:
            raw = cache.pop((s, a), None)
            raw = np.asarray(block_fns[s](a, b), dtype=np.float32) if raw is None else raw
            out = np.subtract(raw, lo[s], dtype=np.float32)
            if flat[s]:  # constant rows become 0 (what a division by their zero span gave is overwritten)
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.divide(out, span[s], out=out)
                out[np.broadcast_to(span[s] <= 0, out.shape)] = 0.0
            else:
                np.divide(out, span[s], out=out)
            parts[s] = np.multiply(out, row_w[s], out=out)
            total += parts[s]
        m = None if mult is None else mult(a, b)
        if m is not None:
            total *= m
            parts = {s: v * m for s, v in parts.items()}
        sel = order_at[cut_at[j]:cut_at[j + 1]]
        vals_at[sel] = total[rows_at[sel], items_at[sel] - a]
        if b > a and ranges:
            np.minimum(fmin, total.min(axis=1, keepdims=True), out=fmin)
            np.maximum(fmax, total.max(axis=1, keepdims=True), out=fmax)
        ranked = total if value is None else value(total, a, b, m)
        here = np.flatnonzero((extra >= a) & (extra < b))
        if len(here):
            extra_val[:, here] = ranked[:, extra[here] - a]
            for s in names:
                extra_parts[s][:, here] = parts[s][:, extra[here] - a]
        ok = allowed[:, a:b]
        if at is not None and ok.any():
            top = max(top, float(total[ok].max()))
        if keep <= 0:  # only the row ranges were asked for
            continue
        down = None if buried is None else buried(a, b)
        idx = np.broadcast_to(np.arange(a, b, dtype=np.int64), total.shape)
        for key, where in (("up", ok if down is None else ok & ~down), ("down", None if down is None else ok & down)):
            if where is None:
                continue
            val = np.where(where, ranked, np.float32(-np.inf))
            best[key] = _merge(*best[key], idx, val, parts, keep, own=True)
    lists = _best(*best["up"], keep)
    if buried is not None:
        lists = _after(lists, _best(*best["down"], keep), keep)
    return Scan(*lists, at=vals_at, allowed_max=top if np.isfinite(top) else float("nan"), extra_val=extra_val,
                extra_parts=extra_parts, lo=lo, hi=hi, fmin=fmin, fmax=fmax)


def fused_top(block_fns: dict[str, BlockFn], row_w: dict[str, np.ndarray], allowed: np.ndarray, n_items: int,
              keep: int, block: int, cache_bytes: int = 0
              ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each row's `keep` best allowed items by the fused score, best first (ties in item order, -1 pads):
    (idx B × keep, score B × keep, each signal's contribution B × keep). `row_w[s]` is B × 1 (float32)."""
    out = scan(block_fns, row_w, allowed, n_items, keep, block, cache_bytes)
    return out.idx, out.val, out.parts


def block_fns(scorer, ctx: Context, names: list[str]) -> dict[str, BlockFn]:
    """Each named signal's block scorer for this batch (`Signal.block_scorer`)."""
    return {s: scorer.signals_[s].block_scorer(ctx) for s in names}
