"""The one top-k of CrossRec: serving (scorer), export and evaluation pick lists with it, so the list a
merchandiser sees is the list that was evaluated, ties included."""
from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, allowed: np.ndarray | None, k: int, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the k best allowed items per row, best first; equal scores in item
    order (the lower position first), at the cut too. NaN scores and disallowed items are never
    picked; -1 (score -inf) pads rows with fewer candidates. Returns two B × k arrays.

    Vectorised: one partition finds each row's k-th score; the items above it and the first ones equal
    to it (a cumulative count) make exactly k per row, which are then sorted. `copy=False` lets a caller
    that owns a float32 `scores` have it overwritten instead of copied (the block scans)."""
    s = np.array(scores, dtype=np.float32, copy=copy or scores.dtype != np.float32)
    s[np.isnan(s)] = -np.inf
    if allowed is not None:
        np.copyto(s, -np.inf, where=~np.asarray(allowed, dtype=bool))
    B, n = s.shape
    k = max(int(k), 0)
    k_eff = min(k, n)
    idx = np.full((B, k), -1, dtype=np.int64)
    val = np.full((B, k), -np.inf, dtype=np.float32)
    if k_eff == 0 or B == 0:
        return idx, val
    kth = np.partition(s, n - k_eff, axis=1)[:, n - k_eff:n - k_eff + 1]  # B × 1: each row's k-th largest
    above = s > kth
    tied = s == kth
    room = k_eff - above.sum(axis=1)
    pick = above | tied
    over = np.flatnonzero(tied.sum(axis=1) > room)  # rows with more ties at the cut than room: first ones only
    if len(over):
        pick[over] = above[over] | (tied[over] & (np.cumsum(tied[over], axis=1) <= room[over, None]))
    cols = np.nonzero(pick)[1].reshape(B, k_eff)  # item order within each row
    vals = np.take_along_axis(s, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")  # score desc; ties keep item order
    cols = np.take_along_axis(cols, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx[:, :k_eff] = np.where(np.isfinite(vals), cols, -1)
    val[:, :k_eff] = vals
    return idx, val
