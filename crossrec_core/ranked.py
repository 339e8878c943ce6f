"""Scoring with the learned ranker: candidates of the allowed items, the ranker's score for each, the
linear fusion below them as a fallback, and per-signal TreeSHAP contributions for the listed items.

Shoppers with no history in the context (a typed profile, a query, a cold user) are scored by the
linear fusion (its cold weights): the ranker learned from shoppers with a history.
"""
from __future__ import annotations

import numpy as np

from .ranker import CONTEXT, Candidates, build_candidates
from .signals.base import Context

RULES = "rules"


def _candidates(scorer, ctx: Context, allowed: np.ndarray) -> tuple[Candidates, dict[str, np.ndarray]]:
    names = scorer.ranker_.signals_
    raw = {s: scorer.signals_[s].score(ctx) for s in names}
    data = scorer.data_
    cands = build_candidates(raw, allowed, ctx, scorer.stats_, data.cat_top, len(data.cat_top_names),
                             scorer.ranker_.n_candidates, names)
    return cands, raw


def ranked_scores(scorer, ctx: Context, allowed: np.ndarray, mode: str = "all"
                  ) -> tuple[np.ndarray, Candidates, dict[str, np.ndarray]]:
    """B × n scores: the ranker's score on each candidate, the linear fusion (rescaled) below every
    candidate for the other items, and the linear fusion alone for rows without history."""
    fused, lin = scorer.contributions(ctx, mode)  # the fallback order, and its parts for `explain_at`
    warm = np.diff(ctx.X.indptr) > 0
    out = fused.astype(np.float32, copy=True)
    if not warm.any():
        return out, Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32)), lin
    rows = np.flatnonzero(warm)
    sub = Context(X=ctx.X[rows], profile=None if ctx.profile is None else ctx.profile[rows],
                  user_rows=None if ctx.user_rows is None else ctx.user_rows[rows],
                  owned=None if ctx.owned is None else ctx.owned[rows])
    cands, _ = _candidates(scorer, sub, allowed[rows])
    pred = scorer.ranker_.predict(cands.X).astype(np.float32)
    f = fused[rows]
    fmin, fmax = f.min(axis=1, keepdims=True), f.max(axis=1, keepdims=True)
    lo = np.full(len(rows), np.inf, np.float32)
    np.minimum.at(lo, cands.rows, pred)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    block = (lo[:, None] - 2.0 + (f - fmin) / np.maximum(fmax - fmin, 1e-12)).astype(np.float32)
    block[cands.rows, cands.items] = pred
    mult = scorer.multipliers(sub)
    if mult is not None:
        block += np.log(np.maximum(mult, 1e-12)).astype(np.float32)
    out[rows] = block
    cands.rows = rows[cands.rows]
    return out, cands, lin


def explain_at(scorer, idx: np.ndarray, total: np.ndarray, cands: Candidates,
               lin: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Contributions (signal -> B × k) and base (B × k) of the listed items `idx` (B × k, -1 pads).

    Ranker items: TreeSHAP per signal + the booster's base value (+ the pair rules' log multiplier);
    fallback items and rows without history: the linear fusion's parts (base 0)."""
    B, k = idx.shape
    names = [*scorer.ranker_.signals_, CONTEXT, RULES]
    parts = {s: np.zeros((B, k)) for s in names}
    base = np.zeros((B, k))
    valid = idx >= 0
    r_all, c_all = np.nonzero(valid)
    items = idx[r_all, c_all]
    for s, v in lin.items():
        parts.setdefault(s, np.zeros((B, k)))
        parts[s][r_all, c_all] = v[r_all, items]
    n_items = total.shape[1]
    key = cands.rows * n_items + cands.items
    order = np.argsort(key)
    want = r_all * n_items + items
    pos = np.searchsorted(key[order], want)
    pos = np.minimum(pos, max(len(key) - 1, 0))
    hit = (key[order][pos] == want) if len(key) else np.zeros(len(want), bool)
    if hit.any():
        X = cands.X[order[pos[hit]]]
        contrib, b = scorer.ranker_.contributions(X)
        rr, cc = r_all[hit], c_all[hit]
        for s in lin:
            parts[s][rr, cc] = 0.0
        for s, v in contrib.items():
            parts[s][rr, cc] = v
        base[rr, cc] = b
        rest = total[rr, idx[rr, cc]] - b - sum(v for v in contrib.values())
        parts[RULES][rr, cc] = np.where(np.abs(rest) > 1e-4, rest, 0.0)
        base[rr, cc] += np.where(np.abs(rest) > 1e-4, 0.0, rest)
    fb_r, fb_c = r_all[~hit], c_all[~hit]
    if len(fb_r):  # fallback items: their score is the rescaled fusion; the difference goes to base
        base[fb_r, fb_c] = total[fb_r, idx[fb_r, fb_c]] - sum(parts[s][fb_r, fb_c] for s in parts)
    return parts, base
