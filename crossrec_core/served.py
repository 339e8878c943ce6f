"""A served list with the learned ranker, in stages over the retrieved candidates only:

    retrieve (crossrec_core.retrieval) → features (ranker.candidate_features) → rank (LightGBM) →
    rules (boost / damp as log multipliers, bury after the rest; exclusions are not allowed items) →
    select (the list pool, product families, pins) → explain (TreeSHAP of the listed items only)

No step holds a score per shopper × catalogue. Shoppers without history in the context (a typed profile,
a query, a cold user) are ranked by the linear fusion's cold weights, as before: the ranker learned from
shoppers with a history.
"""
from __future__ import annotations

import numpy as np

from .ranked import explain_at, rows_of
from .ranker import Candidates, candidate_features
from .retrieval import Retrieved, retrieve
from .signals.base import Context


def candidates(scorer, ctx: Context, allowed: np.ndarray, extra: np.ndarray | None = None
               ) -> tuple[Retrieved, Candidates]:
    """The batch's retrieved candidates and their ranker features."""
    names = scorer.ranker_.signals_
    found = retrieve(scorer.signals_, names, ctx, allowed, scorer.ranker_.n_candidates, extra)
    data = scorer.data_
    feats = candidate_features(found.rows, found.items, found.raw, ctx, scorer.stats_, data.cat_top,
                               len(data.cat_top_names), names)
    return found, feats


def ranked_values(scorer, ctx: Context, cands: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's score (the ranker's, plus the log of its boosts and damps) and whether a bury rule
    takes it."""
    val = scorer.ranker_.predict(cands.X).astype(np.float32)
    buried = np.zeros(len(val), bool)
    if scorer.rules:
        engine = scorer.rule_engine()
        mult = engine.multipliers_at(ctx, cands.rows, cands.items)
        if mult is not None:
            val = val + np.log(np.maximum(mult, 1e-12)).astype(np.float32)
        buried = engine.items_at("bury", ctx, cands.rows, cands.items)
    return val, buried


def best(rows: np.ndarray, items: np.ndarray, val: np.ndarray, buried: np.ndarray, B: int, keep: int
         ) -> np.ndarray:
    """B × keep: each row's best candidates (score descending, equal scores in item order), buried ones
    after all others; -1 pads."""
    order = np.lexsort((items, -val, buried, rows))
    r = rows[order]
    first = np.searchsorted(r, np.arange(B))
    pos = np.arange(len(r)) - first[r]
    sel = pos < keep
    out = np.full((B, keep), -1, np.int64)
    out[r[sel], pos[sel]] = items[order][sel]
    return out


def _warm(scorer, ctx: Context, allowed: np.ndarray, k: int, pins: np.ndarray):
    """The lists of shoppers with history: (idx B × k, their scores, the candidates, every candidate's score
    and bury flag)."""
    _, cands = candidates(scorer, ctx, allowed, pins)
    val, buried = ranked_values(scorer, ctx, cands)
    n_items = scorer.data_.n_items
    pool = best(cands.rows, cands.items, val, buried, ctx.n, min(n_items, scorer._pool(k)))
    idx = scorer._pick(pool, k)
    if scorer.rules:
        idx = scorer.rule_engine().place_pins(idx, allowed, ctx)
    r, c = np.nonzero(idx >= 0)
    score = np.zeros(idx.shape)
    score[r, c] = val[_find(cands, n_items, r, idx[r, c])]
    return idx, score, cands, val, buried


def _find(cands: Candidates, n_items: int, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Positions of (row, item) pairs among the candidates (row-major, items ascending: sorted keys);
    len(cands) where a pair is not a candidate."""
    key = cands.rows * n_items + cands.items
    want = np.asarray(rows, np.int64) * n_items + np.asarray(items, np.int64)
    pos = np.searchsorted(key, want)
    hit = pos < len(key)
    hit[hit] = key[pos[hit]] == want[hit]
    return np.where(hit, pos, len(key))


def _explained(scorer, ctx: Context, allowed: np.ndarray, k: int, pins: np.ndarray):
    idx, score, cands, _, _ = _warm(scorer, ctx, allowed, k, pins)
    parts, base = explain_at(scorer, idx, score, cands, {})
    return idx, score, parts, base


def held_out(scorer, ctx: Context, exclude: np.ndarray, k: int, at: tuple[np.ndarray, np.ndarray],
             mode: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """What evaluation reads: the served top-k lists (rules applied) with `exclude` (B × n bool) not allowed,
    and the score at each (row, item) pair of `at` for the sampled AUC: a candidate's ranked score (buried
    ones below every other candidate), a non-candidate's below every candidate of its row, NaN where a rule
    excludes the item. Shoppers without history are scored by the fusion's cold weights, as when served."""
    allowed = ~np.asarray(exclude, bool)
    engine = scorer.rule_engine() if scorer.rules else None
    excluded = engine.excluded(ctx) if engine is not None else None
    if excluded is not None:
        allowed &= ~excluded
    pins = engine.pinned_items() if engine is not None else np.zeros(0, np.int64)
    rows, items = np.asarray(at[0], np.int64), np.asarray(at[1], np.int64)
    warm = np.diff(ctx.X.indptr) > 0
    idx = np.full((ctx.n, k), -1, np.int64)
    vals = np.full(len(rows), np.nan, np.float32)
    w = np.flatnonzero(warm)
    if len(w):
        sub = ctx if warm.all() else rows_of(ctx, w)
        got, _, cands, val, buried = _warm(scorer, sub, allowed[w], k, pins)
        idx[w] = got
        val = val - np.where(buried, np.float32(1e6), np.float32(0.0))
        lo = np.full(len(w), np.inf, np.float32)
        np.minimum.at(lo, cands.rows, val)
        lo = np.where(np.isfinite(lo), lo, 0.0).astype(np.float32)
        local = np.full(ctx.n, -1, np.int64)
        local[w] = np.arange(len(w))
        mine = warm[rows]
        lr = local[rows[mine]]
        pos = _find(cands, scorer.data_.n_items, lr, items[mine])
        ext = np.r_[val, np.float32(0.0)]
        vals[mine] = np.where(pos < len(val), ext[pos], lo[lr] - 1.0)
    cold = np.flatnonzero(~warm)
    if len(cold):
        sub = rows_of(ctx, cold)
        local = np.full(ctx.n, -1, np.int64)
        local[cold] = np.arange(len(cold))
        mine = ~warm[rows]
        got, at_vals = scorer.fusion_held_out(sub, np.asarray(exclude, bool)[cold], k,
                                              (local[rows[mine]], items[mine]), mode)
        idx[cold] = got
        vals[mine] = at_vals
    if len(rows):
        vals[~allowed[rows, items]] = np.nan
    return idx, vals


def rank(scorer, ctx: Context, mode: str, allowed: np.ndarray, k: int):
    """FusedScorer.rank with the learned ranker: (idx B × k, -1 pads; scores; contributions signal -> B × k;
    base), Σ contributions + base == score for every listed item."""
    engine = scorer.rule_engine() if scorer.rules else None
    pins = engine.pinned_items() if engine is not None else np.zeros(0, np.int64)
    warm = np.diff(ctx.X.indptr) > 0
    if warm.all():
        return _explained(scorer, ctx, allowed, k, pins)
    cold = np.flatnonzero(~warm)
    if not warm.any():
        return scorer._rank_blocked(ctx, mode, allowed, k)
    rows = np.flatnonzero(warm)
    got = {"warm": (rows, _explained(scorer, rows_of(ctx, rows), allowed[rows], k, pins)),
           "cold": (cold, scorer._rank_blocked(rows_of(ctx, cold), mode, allowed[cold], k))}
    B = ctx.n
    idx = np.full((B, k), -1, np.int64)
    score, base = np.zeros((B, k)), np.zeros((B, k))
    parts: dict[str, np.ndarray] = {}
    for at, (i, s, p, b) in got.values():
        idx[at], score[at], base[at] = i, s, b
        for name, v in p.items():
            parts.setdefault(name, np.zeros((B, k)))[at] = v
    return idx, score, parts, base
