"""The served list, in stages over the retrieved candidates only — the one pipeline serving, export,
evaluation (`held_out`), what-if and the ranker's validation read:

    retrieve (crossrec_core.retrieval) → value (the learned ranker on candidate features, or the linear
    fusion of each signal normalised by its row range) → rules (boosts and damps; buried after the rest;
    exclusions are simply not allowed) → select (the list pool, product families, pins) → explain
    (TreeSHAP of the listed items only, or the fusion's own parts)

No stage holds a score per shopper × catalogue. Shoppers without history in the context (a typed profile,
a query, a cold user) are ranked by the linear fusion's cold weights: the ranker learned from shoppers
with a history. The fusion's normalisation uses each signal's exact row minimum and maximum over the
catalogue (`Signal.row_range`), so a candidate's fused score is the one-stage path's, digit for digit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ranked import explain_at, rows_of
from .ranker import Candidates, candidate_features
from .retrieval import Retrieved, retrieve
from .signals.base import Context

FILLER = "popularity"  # always retrieved: one fixed list that fills every shopper's candidates


@dataclass
class Ranked:
    """A batch's candidates with the value that orders them and whether a bury rule takes them."""

    rows: np.ndarray
    items: np.ndarray
    val: np.ndarray
    buried: np.ndarray
    cands: Candidates | None = None  # the ranker's features (None: fusion)
    parts: dict[str, np.ndarray] | None = None  # the fusion's parts per candidate (None: ranker)
    ranker: object = None  # the learned ranker that valued them (None: fusion)


def _names(scorer, signals: list[str]) -> list[str]:
    """The signals that retrieve: the given ones and the filler list."""
    extra = [FILLER] if FILLER in (scorer.signals_ or {}) and FILLER not in signals else []
    return [*signals, *extra]


def _pins(scorer) -> np.ndarray:
    """Items every shopper's candidates hold: those pin rules place and item boosts lift."""
    return scorer.rule_engine().named_items() if scorer.rules else np.zeros(0, np.int64)


def ranker_candidates(scorer, ctx: Context, allowed: np.ndarray, extra: np.ndarray | None = None,
                      mode: str = "all") -> tuple[Retrieved, Candidates]:
    """The batch's retrieved candidates and the features of the ranker that orders `mode` (the cross-mode
    ranker's add the exploration facts, crossrec_core.discovery)."""
    ranker = scorer.ranker_for(mode)
    names = ranker.signals_
    found = retrieve(scorer.signals_, _names(scorer, names), ctx, allowed, ranker.n_candidates, extra)
    data = scorer.data_
    feats = candidate_features(found.rows, found.items, found.raw, ctx, scorer.stats_, data.cat_top,
                               len(data.cat_top_names), names)
    if ranker.extra_features_:
        from .discovery import with_discovery

        feats = with_discovery(feats, ctx, scorer.discovery_, data)
    return found, feats


def normalised_at(scorer, ctx: Context, names: list[str], rows: np.ndarray, items: np.ndarray,
                  raw: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each named signal's (raw − lo) / (hi − lo) at (row, item) pairs, lo and hi its row's minimum and
    maximum over the whole catalogue (0 on a constant row): the one-stage scan's float32 operations."""
    out = {}
    for s in names:
        sig = scorer.signals_[s]
        lo, hi = ctx.cached((id(sig), "range"), lambda sig=sig: sig.row_range(ctx))
        r = raw[s] if raw is not None and s in raw else np.asarray(sig.score_at(ctx, rows, items), np.float32)
        v = np.subtract(r, lo[rows], dtype=np.float32)
        span = (hi - lo).astype(np.float32)[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(v, span, out=v)
        v[span <= 0] = 0.0
        out[s] = v
    return out


def fusion_values(scorer, ctx: Context, mode: str, rows: np.ndarray, items: np.ndarray,
                  raw: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The linear fusion at (row, item) pairs: Σ_s w_s · normalised_s, times the pairs' boosts and damps,
    and each signal's part (they sum to it); the values of the one-stage scan, digit for digit."""
    row_w = scorer.row_weights(ctx, mode)
    parts = normalised_at(scorer, ctx, list(row_w), rows, items, raw)
    total = np.zeros(len(rows), np.float32)
    for s, w in row_w.items():
        parts[s] = np.multiply(parts[s], w[rows, 0], out=parts[s])
        total += parts[s]
    if scorer.rules:
        mult = scorer.rule_engine().multipliers_at(ctx, rows, items)
        if mult is not None:
            total *= mult
            parts = {s: v * mult for s, v in parts.items()}
    return total, parts


def _buried(scorer, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    if not scorer.rules:
        return np.zeros(len(rows), bool)
    return scorer.rule_engine().items_at("bury", ctx, rows, items)


def ranked(scorer, ctx: Context, mode: str, allowed: np.ndarray, use_ranker: bool) -> Ranked:
    """Retrieve and value the batch's candidates: by the learned ranker (its score plus the log of the
    boosts and damps) or by the linear fusion of the mode's weights."""
    pins = _pins(scorer)
    if use_ranker:
        ranker = scorer.ranker_for(mode)
        _, cands = ranker_candidates(scorer, ctx, allowed, pins, mode)
        val = ranker.predict(cands.X).astype(np.float32)
        if scorer.rules:
            mult = scorer.rule_engine().multipliers_at(ctx, cands.rows, cands.items)
            if mult is not None:
                val = val + np.log(np.maximum(mult, 1e-12)).astype(np.float32)
        return Ranked(cands.rows, cands.items, val, _buried(scorer, ctx, cands.rows, cands.items), cands=cands,
                      ranker=ranker)
    names = list(scorer.row_weights(ctx, mode))
    found = retrieve(scorer.signals_, _names(scorer, names), ctx, allowed, int(scorer.settings.retrieval.candidates),
                     pins)
    val, parts = fusion_values(scorer, ctx, mode, found.rows, found.items, found.raw)
    return Ranked(found.rows, found.items, val, _buried(scorer, ctx, found.rows, found.items), parts=parts)


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


def find(rows: np.ndarray, items: np.ndarray, n_items: int, want_rows: np.ndarray, want_items: np.ndarray
         ) -> np.ndarray:
    """Positions of the pairs `want_*` among candidate pairs (row-major, items ascending: sorted keys);
    len(rows) where a pair is not a candidate."""
    key = rows * n_items + items
    want = np.asarray(want_rows, np.int64) * n_items + np.asarray(want_items, np.int64)
    pos = np.searchsorted(key, want)
    hit = pos < len(key)
    hit[hit] = key[pos[hit]] == want[hit]
    return np.where(hit, pos, len(key))


def select(scorer, ctx: Context, allowed: np.ndarray, got: Ranked, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The listed items (B × k, -1 pads: the pool's picks with product families capped, pins placed) and
    their scores."""
    n_items = scorer.data_.n_items
    pool = best(got.rows, got.items, got.val, got.buried, ctx.n, min(n_items, scorer._pool(k)))
    idx = scorer._pick(pool, k)
    if scorer.rules:
        idx = scorer.rule_engine().place_pins(idx, allowed, ctx)
    r, c = np.nonzero(idx >= 0)
    score = np.zeros(idx.shape)
    score[r, c] = got.val[find(got.rows, got.items, n_items, r, idx[r, c])]
    return idx, score


def explain(scorer, idx: np.ndarray, score: np.ndarray, got: Ranked) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Contributions (signal -> B × k) and base (B × k) of the listed items: TreeSHAP per signal for the
    ranker (only these items), the fusion's own parts (base 0) otherwise."""
    if got.cands is not None:
        return explain_at(scorer, idx, score, got.cands, {}, got.ranker)
    r, c = np.nonzero(idx >= 0)
    at = find(got.rows, got.items, scorer.data_.n_items, r, idx[r, c])
    parts = {}
    for s, v in got.parts.items():
        parts[s] = np.zeros(idx.shape)
        parts[s][r, c] = v[at]
    return parts, np.zeros(idx.shape)


def _groups(scorer, ctx: Context):
    """(rows, uses the ranker) groups of the batch: rows with history go to the ranker when one serves."""
    if scorer.ranker_ is None:
        return [(np.arange(ctx.n), False)]
    warm = np.diff(ctx.X.indptr) > 0
    return [(np.flatnonzero(g), use) for g, use in ((warm, True), (~warm, False)) if g.any()]


def _sub(ctx: Context, rows: np.ndarray) -> Context:
    return ctx if len(rows) == ctx.n else rows_of(ctx, rows)


def rank(scorer, ctx: Context, mode: str, allowed: np.ndarray, k: int):
    """FusedScorer.rank: (idx B × k, -1 pads; scores; contributions signal -> B × k; base),
    Σ contributions + base == score for every listed item."""
    B = ctx.n
    idx = np.full((B, k), -1, np.int64)
    score, base = np.zeros((B, k)), np.zeros((B, k))
    parts: dict[str, np.ndarray] = {}
    for rows, use_ranker in _groups(scorer, ctx):
        sub = _sub(ctx, rows)
        got = ranked(scorer, sub, mode, allowed[rows], use_ranker)
        i, s = select(scorer, sub, allowed[rows], got, k)
        p, b = explain(scorer, i, s, got)
        idx[rows], score[rows], base[rows] = i, s, b
        for name, v in p.items():
            parts.setdefault(name, np.zeros((B, k)))[rows] = v
    return idx, score, parts, base


def held_out(scorer, ctx: Context, exclude: np.ndarray, k: int, at: tuple[np.ndarray, np.ndarray],
             mode: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """What evaluation reads: the served top-k lists (rules applied) with `exclude` (B × n bool) not allowed,
    and the score at each (row, item) pair of `at` for the sampled AUC — a candidate's ranked score, a pair
    outside the candidates below every candidate of its row (the fusion's own value where the fusion
    ranks), buried pairs below the rest; NaN where a rule excludes the item."""
    allowed = ~np.asarray(exclude, bool)
    if scorer.rules:
        excluded = scorer.rule_engine().excluded(ctx)
        if excluded is not None:
            allowed &= ~excluded
    rows, items = np.asarray(at[0], np.int64), np.asarray(at[1], np.int64)
    idx = np.full((ctx.n, k), -1, np.int64)
    vals = np.full(len(rows), np.nan, np.float32)
    local = np.full(ctx.n, -1, np.int64)
    for group, use_ranker in _groups(scorer, ctx):
        sub = _sub(ctx, group)
        got = ranked(scorer, sub, mode, allowed[group], use_ranker)
        idx[group] = select(scorer, sub, allowed[group], got, k)[0]
        local[group] = np.arange(len(group))
        mine = np.flatnonzero(np.isin(rows, group))
        if not len(mine):
            continue
        lr, li = local[rows[mine]], items[mine]
        if use_ranker:
            val = got.val - np.where(got.buried, np.float32(1e6), np.float32(0.0))
            lo = np.full(len(group), np.inf, np.float32)
            np.minimum.at(lo, got.rows, val)
            lo = np.where(np.isfinite(lo), lo, 0.0).astype(np.float32)
            pos = find(got.rows, got.items, scorer.data_.n_items, lr, li)
            vals[mine] = np.where(pos < len(val), np.r_[val, np.float32(0.0)][pos], lo[lr] - 1.0)
        else:
            v, _ = fusion_values(scorer, sub, mode, lr, li)
            vals[mine] = v - np.where(_buried(scorer, sub, lr, li), np.float32(1e6), np.float32(0.0))
    if len(rows):
        vals[~allowed[rows, items]] = np.nan
    return idx, vals
