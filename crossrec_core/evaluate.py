"""Offline evaluation: every model's top-K lists on the time split's slices (`split`), scored with the
metrics (`metrics`), per-user values kept for paired bootstrap intervals against the baselines
(`baselines`). The names of `split` and `metrics` stay importable from here."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .baselines import fit_baselines  # noqa: F401 - importable from here as before
from .bounds import check_k
from .errors import CrossRecError
from .metrics import (  # noqa: F401 - the metrics stay importable from here
    METRICS,
    coverage,
    cross_positives,
    hit_matrix,
    intra_list_diversity,
    model_top_k,
    mrr_at_k,
    ndcg_at_k,
    ndcg_for_scores,
    novelty,
    ranking_metrics,
    recall_at_k,
    auc_pairs,
    sample_negatives,
    sampled_auc,
    sampled_auc_at,
    top_k_items,
)
from .progress import Progress
from .split import SLICES, Split, carve_validation, make_split, prepare_events, time_split  # noqa: F401
from .vectors import unit_rows



class _Accumulator:
    """Per-user metric values of one model on one slice, gathered batch by batch."""

    def __init__(self, n_items: int):
        self.n_items = n_items
        self.parts: dict[str, list[np.ndarray]] = {m: [] for m in
                                                    ("recall", "ndcg", "hit_rate", "mrr", "auc", "diversity",
                                                     "novelty", "cross_recall", "cross_hit_rate")}
        self.recommended = np.zeros(n_items, dtype=bool)
        self.users = 0

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts[name].append(np.asarray(values, np.float64))

    def per_user(self, name: str) -> np.ndarray:
        return np.concatenate(self.parts[name]) if self.parts[name] else np.zeros(0)

    def result(self) -> dict:
        def mean(name: str):
            if not self.parts[name]:
                return None
            v = np.concatenate(self.parts[name])
            v = v[~np.isnan(v)]
            return float(v.mean()) if len(v) else None

        out = {m: mean(m) for m in ("recall", "ndcg", "hit_rate", "mrr", "auc")}
        out["coverage"] = float(self.recommended.sum()) / self.n_items if self.users and self.n_items else None
        out["diversity"] = mean("diversity")
        out["novelty"] = mean("novelty")
        out["cross_recall"] = mean("cross_recall")
        out["cross_hit_rate"] = mean("cross_hit_rate")
        out["users"] = int(self.users)
        return out


def _lists(m_name: str, model, ctx, excl: np.ndarray, k: int, pos, negs, n_items: int):
    """A model's top-k lists and per-user sampled AUC on a batch, and its B × n scores (None when the model
    gave its lists without them: `held_out`, the fused model's block-at-a-time path)."""
    held = getattr(model, "held_out", None)
    if held is not None:
        got = held(ctx, excl, k, auc_pairs(pos, negs))
        if got is not None:
            return got[0], sampled_auc_at(got[1], pos, negs), None
    scores = model.score(ctx)
    scores = np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)
    if scores.shape != (ctx.n, n_items):
        raise CrossRecError(f"model '{m_name}' returned scores of shape {scores.shape}, "
                            f"expected {(ctx.n, n_items)}")
    return model_top_k(model, scores, excl, k), sampled_auc(scores, pos, negs), scores


def _cross_lists(model, scores: np.ndarray | None, sel: np.ndarray, context, new_only: np.ndarray, k: int) -> np.ndarray:
    """The cross-mode top-k of the rows `sel`: the model's own cross scores (`score_cross`, or `held_out` in
    cross mode) when it has them, else its scores."""
    held = getattr(model, "held_out", None)
    got = None if held is None else held(context(), new_only, k, (np.zeros(0, np.int64), np.zeros(0, np.int64)),
                                         mode="cross")
    if got is not None:
        return got[0]
    score_cross = getattr(model, "score_cross", None)
    cross_scores = scores[sel] if score_cross is None else np.asarray(score_cross(context()), dtype=np.float32)
    return model_top_k(model, cross_scores, new_only, k)


def evaluate(
    models: dict[str, object],
    split: Split,
    embeddings: np.ndarray | None = None,
    k: int | None = None,
    progress: Progress | None = None,
    batch_size: int = 256,
    per_user: bool = False,
) -> dict:
    """Metrics of fitted models (each with `score(ctx) -> B × n_items`) on every slice of `split`.

    Returns the `eval --json` shape: {"k": k, "slices": {slice: {model: {metric: value, ..., "users": n}}}};
    a metric that cannot be computed (no users, no embeddings, no cross-category positives) is None.
    `per_user=True` adds "per_user": {model: {metric: values over the "all" slice's users}} (same users
    and order for every model, so deltas can be paired; cross metrics over users with cross positives)."""
    settings = split.settings
    k = check_k(settings.evaluation.k if k is None else k, settings)
    train = split.train
    n_items = train.n_items
    unit_emb = unit_rows(embeddings, np.float32) if embeddings is not None else None
    sizes = {s: len(split.users(s)) for s in SLICES}
    total = sum(math.ceil(n / batch_size) for n in sizes.values()) * max(len(models), 1)
    done = 0
    result: dict[str, dict] = {}
    for s_no, name in enumerate(SLICES):
        users = split.users(name)
        acc = {m: _Accumulator(n_items) for m in models}
        for b_no, start in enumerate(range(0, len(users), batch_size)):
            batch = list(users[start:start + batch_size])
            ctx = split.context(batch, embeddings)
            excl = split.slice_exclusions(batch, name)
            pos = split.positives(batch, name)
            cross = split.cross_positives(batch, name)
            has_cross = np.fromiter((len(c) > 0 for c in cross), dtype=bool, count=len(cross))
            rng = np.random.default_rng([settings.seed, s_no, b_no])
            negs = sample_negatives(n_items, split.positives(batch, None), excl, settings.evaluation.auc_negatives, rng)
            for m_name, model in models.items():
                topk, auc, scores = _lists(m_name, model, ctx, excl, k, pos, negs, n_items)
                a = acc[m_name]
                for key, val in ranking_metrics(topk, pos, k).items():
                    a.add(key, val)
                a.add("auc", auc)
                a.add("diversity", intra_list_diversity(topk, unit_emb))
                a.add("novelty", novelty(topk, split.item_users, train.n_users))
                if has_cross.any():
                    # Cross metrics rank each model's list in cross mode: items of top-level
                    # categories new to the user only (the same filter for every model).
                    sel = np.flatnonzero(has_cross)
                    new_only = split.cross_exclusions([batch[j] for j in sel], excl[sel])
                    cross_topk = _cross_lists(model, scores, sel, lambda: split.context([batch[j] for j in sel], embeddings),
                                              new_only, k)
                    cm = ranking_metrics(cross_topk, [cross[j] for j in sel], k)
                    a.add("cross_recall", cm["recall"])
                    a.add("cross_hit_rate", cm["hit_rate"])
                a.recommended[topk[topk >= 0]] = True
                a.users += len(batch)
                done += 1
                if progress:
                    progress(done / total, f"{name}: {m_name} ({min(start + len(batch), len(users)):,}/{len(users):,} users)")
        result[name] = {m: acc[m].result() for m in models}
        sampled_from = split.population.get(name, len(users))
        if sampled_from > len(users):  # a big shop: figures on a seeded sample (Settings.evaluation.max_users)
            for r in result[name].values():
                r["users_sampled_from"] = int(sampled_from)
        if name == "all" and per_user:
            kept = {m: {metric: acc[m].per_user(metric) for metric in acc[m].parts} for m in models}
        if name == "all" and "crossrec" in models and len(models) > 1:
            # cross_recall: over the shoppers with a discovery in a new category (the same ones for every model)
            intervals = {metric: best_baseline_interval({m: acc[m].per_user(metric) for m in models}, settings.seed)
                         for metric in ("recall", "ndcg", "cross_recall")}
    if progress:
        progress(1.0, "evaluated")
    out = {"k": k, "slices": result}
    if per_user:
        out["per_user"] = kept
    if "crossrec" in models and len(models) > 1 and len(split.users("all")):
        out["intervals"] = intervals
    return out


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 42, n_boot: int = 1000,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a - b over the same users and its paired-bootstrap interval (users resampled)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for j in range(0, n_boot, 100):  # in chunks: B × n_users index matrices stay small
        idx = rng.integers(0, len(d), size=(min(100, n_boot - j), len(d)))
        means[j:j + len(idx)] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(lo), float(hi)


def best_baseline_interval(per_user: dict[str, np.ndarray], seed: int = 42) -> dict:
    """crossrec minus the best baseline (by mean) on one metric: difference, 95 % paired interval, ratio."""
    base = {m: v for m, v in per_user.items() if m != "crossrec" and len(v)}
    if not base or not len(per_user.get("crossrec", [])):
        return {}
    best = max(base, key=lambda m: base[m].mean())
    diff, lo, hi = paired_interval(per_user["crossrec"], base[best], seed)
    mean_best = float(base[best].mean())
    return {"best": best, "diff": round(diff, 6), "low": round(lo, 6), "high": round(hi, 6),
            "ratio": round(float(per_user["crossrec"].mean()) / mean_best, 4) if mean_best > 0 else None}


def metrics_table(result: dict) -> pd.DataFrame:
    """One row per (slice, model) with every metric (None -> NaN), for printing and the dashboard."""
    rows = []
    for slice_name, models in result.get("slices", {}).items():
        for model, metrics in models.items():
            row = {"slice": slice_name, "model": model}
            for m in METRICS:
                v = metrics.get(m)
                row[m] = np.nan if v is None else v
            rows.append(row)
    df = pd.DataFrame(rows, columns=["slice", "model", *METRICS])
    df["users"] = df["users"].fillna(0).astype(int)
    return df
