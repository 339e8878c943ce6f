"""The fused top-k without a (users × catalogue) array: the catalogue is scored a block of items at a time.

The fusion is Σ_s w_s · (raw_s − lo_s) / (hi_s − lo_s) per user, with lo/hi each signal's row minimum and
maximum over the whole catalogue. So two passes over column blocks: the first finds lo and hi (each
signal's block scorer, `Signal.block_scorer`), the second computes the fused block with exactly the
dense path's float32 operations and merges it into each user's running best `keep` items (the ones a
list may be picked from: k, or 3k + 10 when product families are capped or lists diversified). The
candidate set of each user is therefore provably the dense top-`keep`: the lists are the dense ones,
ties included (equal scores in item order), and memory per batch is O(batch × (block + keep)).
Raw blocks of the first pass are kept for the second while they fit `Settings.score_cache_mb`.

Rules (multipliers, buries, pins) and the learned ranker still score densely (FusedScorer.rank).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .signals.base import Context
from .topk import top_k

BlockFn = Callable[[int, int], np.ndarray]


def _merge(best_idx: np.ndarray, best_val: np.ndarray, best_parts: dict[str, np.ndarray], idx: np.ndarray,
           val: np.ndarray, parts: dict[str, np.ndarray], keep: int):
    """The `keep` best of the running set and a block (both in item order; ties: the lower item), returned
    in item order again so the next merge breaks ties as the dense top-k does."""
    cand_idx = np.concatenate([best_idx, idx], axis=1)
    cand_val = np.concatenate([best_val, val], axis=1)
    pos, _ = top_k(cand_val, None, keep)
    chosen = np.where(pos >= 0, np.take_along_axis(cand_idx, np.maximum(pos, 0), axis=1), -1)
    order = np.argsort(np.where(chosen >= 0, chosen, np.iinfo(np.int64).max), axis=1, kind="stable")
    pos = np.take_along_axis(pos, order, axis=1)
    safe = np.maximum(pos, 0)
    out_idx = np.take_along_axis(chosen, order, axis=1)
    out_val = np.where(pos >= 0, np.take_along_axis(cand_val, safe, axis=1), -np.inf).astype(np.float32)
    out_parts = {s: np.take_along_axis(np.concatenate([best_parts[s], parts[s]], axis=1), safe, axis=1)
                 for s in parts}
    return out_idx, out_val, out_parts


def fused_top(block_fns: dict[str, BlockFn], row_w: dict[str, np.ndarray], allowed: np.ndarray, n_items: int,
              keep: int, block: int, cache_bytes: int = 0
              ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Each row's `keep` best allowed items by the fused score, best first (ties in item order, -1 pads):
    (idx B × keep, score B × keep, each signal's contribution B × keep). `row_w[s]` is B × 1 (float32)."""
    B = allowed.shape[0]
    names = list(block_fns)
    spans = [(a, min(a + block, n_items)) for a in range(0, n_items, block)]
    lo = {s: np.full((B, 1), np.inf, np.float32) for s in names}
    hi = {s: np.full((B, 1), -np.inf, np.float32) for s in names}
    cache: dict[tuple[str, int], np.ndarray] = {}
    used = 0
    for a, b in spans:  # pass 1: each signal's row minimum and maximum over the catalogue
        for s in names:
            raw = np.asarray(block_fns[s](a, b), dtype=np.float32)
            np.minimum(lo[s], raw.min(axis=1, keepdims=True), out=lo[s])
            np.maximum(hi[s], raw.max(axis=1, keepdims=True), out=hi[s])
            if used + raw.nbytes <= cache_bytes:
                cache[(s, a)] = raw
                used += raw.nbytes
    span = {s: hi[s] - lo[s] for s in names}
    best_idx = np.full((B, 0), -1, np.int64)
    best_val = np.zeros((B, 0), np.float32)
    best_parts = {s: np.zeros((B, 0), np.float32) for s in names}
    for a, b in spans:  # pass 2: the fused block (the dense path's operations), merged into the best
        total = np.zeros((B, b - a), np.float32)
        parts = {}
        for s in names:
            raw = cache.pop((s, a), None)
            raw = np.asarray(block_fns[s](a, b), dtype=np.float32) if raw is None else raw
            out = np.subtract(raw, lo[s], dtype=np.float32)
            np.divide(out, span[s], out=out, where=span[s] > 0)
            out[np.broadcast_to(span[s] <= 0, out.shape)] = 0.0
            parts[s] = row_w[s] * out
            total += parts[s]
        total[~allowed[:, a:b]] = -np.inf
        idx = np.broadcast_to(np.arange(a, b, dtype=np.int64), total.shape)
        best_idx, best_val, best_parts = _merge(best_idx, best_val, best_parts, idx, total, parts, keep)
    pos, val = top_k(best_val, None, keep)  # best first; ties keep item order
    safe = np.maximum(pos, 0)
    idx = np.where(pos >= 0, np.take_along_axis(best_idx, safe, axis=1), -1)
    parts = {s: np.where(pos >= 0, np.take_along_axis(v, safe, axis=1), 0.0) for s, v in best_parts.items()}
    return idx, np.where(pos >= 0, val, 0.0).astype(np.float32), parts


def block_fns(scorer, ctx: Context, names: list[str]) -> dict[str, BlockFn]:
    """Each named signal's block scorer for this batch (`Signal.block_scorer`)."""
    return {s: scorer.signals_[s].block_scorer(ctx) for s in names}
