"""Scoring with the learned ranker: candidates of the allowed items, the ranker's score for each, the
linear fusion below them as a fallback, and per-signal TreeSHAP contributions for the listed items.

Shoppers with no history in the context (a typed profile, a query, a cold user) are scored by the
linear fusion (its cold weights): the ranker learned from shoppers with a history.
"""
from __future__ import annotations

import numpy as np

from .ranker import CONTEXT, Candidates, build_candidates, candidate_features
from .signals.base import Context
from .signals.registry import names as signal_names

RULES = "rules"


def _candidates(scorer, ctx: Context, allowed: np.ndarray) -> tuple[Candidates, dict[str, np.ndarray]]:
    names = scorer.ranker_.signals_
    raw = {s: scorer.signals_[s].score(ctx) for s in names}
    data = scorer.data_
    cands = build_candidates(raw, allowed, ctx, scorer.stats_, data.cat_top, len(data.cat_top_names),
                             scorer.ranker_.n_candidates, names)
    return cands, raw


def rows_of(ctx: Context, rows: np.ndarray) -> Context:
    """The batch's rows `rows` as a context of their own (segment rules still know the shoppers)."""
    sub = Context(X=ctx.X[rows], profile=None if ctx.profile is None else ctx.profile[rows],
                  user_rows=None if ctx.user_rows is None else ctx.user_rows[rows],
                  owned=None if ctx.owned is None else ctx.owned[rows])
    if getattr(ctx, "user_ids", None) is not None:
        sub.user_ids = np.asarray(ctx.user_ids, dtype=object)[rows]
    return sub


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
    sub = rows_of(ctx, rows)
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
               lin: dict[str, np.ndarray], ranker=None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Contributions (signal -> B × k) and base (B × k) of the listed items `idx` (B × k, -1 pads), given
    their scores `total` and linear-fusion parts `lin` (each B × k, at the listed items).

    Ranker items: TreeSHAP per signal + the booster's base value (+ the pair rules' log multiplier);
    fallback items and rows without history: the linear fusion's parts (base 0). `ranker`: the one that
    scored `cands` (default the general one)."""
    ranker = ranker or scorer.ranker_
    B, k = idx.shape
    names = [*ranker.signals_, CONTEXT, RULES]
    parts = {s: np.zeros((B, k)) for s in names}
    base = np.zeros((B, k))
    valid = idx >= 0
    r_all, c_all = np.nonzero(valid)
    items = idx[r_all, c_all]
    for s, v in lin.items():
        parts.setdefault(s, np.zeros((B, k)))
        parts[s][r_all, c_all] = v[r_all, c_all]
    n_items = scorer.data_.n_items
    key = cands.rows * n_items + cands.items
    order = np.argsort(key)
    want = r_all * n_items + items
    pos = np.searchsorted(key[order], want)
    pos = np.minimum(pos, max(len(key) - 1, 0))
    hit = (key[order][pos] == want) if len(key) else np.zeros(len(want), bool)
    if hit.any():
        X = cands.X[order[pos[hit]]]
        contrib, b = ranker.contributions(X)
        rr, cc = r_all[hit], c_all[hit]
        for s in lin:
            parts[s][rr, cc] = 0.0
        for s, v in contrib.items():
            parts[s][rr, cc] = v
        base[rr, cc] = b
        rest = total[rr, cc] - b - sum(v for v in contrib.values())
        parts[RULES][rr, cc] = np.where(np.abs(rest) > 1e-4, rest, 0.0)
        base[rr, cc] += np.where(np.abs(rest) > 1e-4, 0.0, rest)
    fb_r, fb_c = r_all[~hit], c_all[~hit]
    if len(fb_r):  # fallback items: their score is the rescaled fusion; the difference goes to base
        base[fb_r, fb_c] = total[fb_r, fb_c] - sum(parts[s][fb_r, fb_c] for s in parts)
    return parts, base


def _signal_tops(scorer, ctx: Context, allowed: np.ndarray, names: list[str], n: int, block: int
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The ranker's candidates, a block of the catalogue at a time: each signal's `n` best allowed items
    (equal scores in item order, as `ranker._top_n`), unioned per row. Returns (rows, items) row-major with
    items ascending, as `np.nonzero` of the dense union gives them, and every signal's raw score there."""
    from .blocked import _merge, block_fns

    fns = block_fns(scorer, ctx, names)
    B, n_items = ctx.n, scorer.data_.n_items
    empty = (np.full((B, 0), -1, np.int64), np.zeros((B, 0), np.float32), {t: np.zeros((B, 0), np.float32) for t in names})
    best = {s: empty for s in names}
    for a in range(0, n_items, block):
        b = min(a + block, n_items)
        raw = {t: np.asarray(fns[t](a, b), dtype=np.float32) for t in names}
        idx = np.broadcast_to(np.arange(a, b, dtype=np.int64), (B, b - a))
        ok = allowed[:, a:b]
        for s in names:
            val = np.where(ok, raw[s], -np.inf).astype(np.float32)
            best[s] = _merge(*best[s], idx, val, raw, min(n, n_items), own=True)
    idx = np.concatenate([best[s][0] for s in names], axis=1)
    r, c = np.nonzero(idx >= 0)
    key = r * n_items + idx[r, c]
    key, first = np.unique(key, return_index=True)
    raw_at = {t: np.concatenate([best[s][2][t] for s in names], axis=1)[r, c][first] for t in names}
    return key // n_items, key % n_items, raw_at


def ranked_lists(scorer, ctx: Context, allowed: np.ndarray, mode: str, keep: int, extra: np.ndarray):
    """`ranked_scores`' order without a B × catalogue array: each row's `keep` best allowed items (rules'
    buries applied) as a blocked.Scan whose values are the ranker's scores (the rescaled fusion below the
    candidates), plus the candidates (rows in batch positions) for `explain_at`.

    Three scans of the catalogue: the fusion's row range (the rows without history get its lists apart), the
    candidates (each signal's top-N), then the ranked order (the fallback needs the fusion's row range and
    the candidates' lowest prediction)."""
    from .blocked import Scan, block_fns, scan

    warm = np.diff(ctx.X.indptr) > 0
    none = Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
    if not warm.any():
        return scorer.scan(ctx, mode, allowed, keep, extra=extra), none
    rows = np.flatnonzero(warm)
    sub = rows_of(ctx, rows)
    found = scorer.scan(sub, mode, allowed[rows], 0, ranges=True)  # the fusion's row ranges only
    names = scorer.ranker_.signals_
    block = scorer.block_size(len(rows))
    c_rows, c_items, raw_at = _signal_tops(scorer, sub, allowed[rows], names, scorer.ranker_.n_candidates, block)
    data = scorer.data_
    cands = candidate_features(c_rows, c_items, raw_at, sub, scorer.stats_, data.cat_top, len(data.cat_top_names),
                               names)
    pred = scorer.ranker_.predict(cands.X).astype(np.float32)
    lo = np.full(len(rows), np.inf, np.float32)
    np.minimum.at(lo, cands.rows, pred)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    fmin, fmax = found.fmin, found.fmax
    order = np.argsort(cands.items, kind="stable")
    cut = np.searchsorted(cands.items[order], np.arange(0, data.n_items + block, block))

    def value(total: np.ndarray, a: int, b: int, mult) -> np.ndarray:
        out = (lo[:, None] - 2.0 + (total - fmin) / np.maximum(fmax - fmin, 1e-12)).astype(np.float32)
        sel = order[cut[a // block]:cut[a // block + 1]]
        out[cands.rows[sel], cands.items[sel] - a] = pred[sel]
        if mult is not None:
            out += np.log(np.maximum(mult, 1e-12)).astype(np.float32)
        return out

    engine = scorer.rule_engine() if scorer.rules else None
    row_w = scorer.row_weights(sub, mode)
    ranked = scan(block_fns(scorer, sub, list(row_w)), row_w, allowed[rows], data.n_items, keep, block,
                  mult=None if engine is None else engine.multiplier_blocks(sub),
                  buried=None if engine is None else engine.item_blocks("bury", sub), extra=extra,
                  value=value, bounds=(found.lo, found.hi))
    cands.rows = rows[cands.rows]
    if warm.all():
        return ranked, cands
    cold = np.flatnonzero(~warm)  # shoppers without history: the linear fusion's lists (its cold weights)
    fused = scorer.scan(rows_of(ctx, cold), mode, allowed[cold], keep, extra=extra)
    B = ctx.n
    out = {}
    for name in ("idx", "val", "extra_val"):
        part = getattr(ranked, name)
        out[name] = np.zeros((B,) + part.shape[1:], part.dtype)
        out[name][rows], out[name][cold] = part, getattr(fused, name)
    for name in ("parts", "extra_parts"):  # a signal one group is not weighted by has no part in its rows
        w, c = getattr(ranked, name), getattr(fused, name)
        out[name] = {}
        for s in [t for t in signal_names() if t in w or t in c]:
            some = w.get(s, c.get(s))
            arr = np.zeros((B,) + some.shape[1:], np.float32)
            if s in w:
                arr[rows] = w[s]
            if s in c:
                arr[cold] = c[s]
            out[name][s] = arr
    return Scan(out["idx"], out["val"], out["parts"], ranked.at, ranked.allowed_max, out["extra_val"],
                out["extra_parts"], {}, {}, found.fmin, found.fmax), cands
