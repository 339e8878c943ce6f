"""Honest deltas: every metric difference between two models (a what-if scenario against the live
lists, one run against another, one rule of a scenario) with its 95 % paired-bootstrap interval over
the held-out period's shoppers (`evaluate.paired_interval`) and a "within noise" flag when it crosses 0."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import Settings
from .errors import CrossRecError
from .metric_names import NOISE, label
from .progress import Progress

if TYPE_CHECKING:
    from .recommender import Recommender
    from .store import Store


DELTA_METRICS = ("recall", "ndcg", "hit_rate", "mrr", "cross_recall", "cross_hit_rate", "novelty")


@dataclass
class Delta:
    """`other` minus `base` on one metric, averaged over the same shoppers, with its 95 % interval."""

    metric: str
    label: str
    base: float
    other: float
    diff: float
    low: float
    high: float
    users: int

    @property
    def within_noise(self) -> bool:
        return bool(self.low <= 0 <= self.high) or not np.isfinite(self.diff)

    def verdict(self) -> str:
        """"+0.0123 [95 % −0.0040, +0.0290]: within noise" in one line."""
        state = NOISE if self.within_noise else ("up" if self.diff > 0 else "down")
        return f"{self.diff:+.4f} [95 % {self.low:+.4f}, {self.high:+.4f}]: {state}"

    def to_dict(self) -> dict:
        return {**asdict(self), "within_noise": self.within_noise}


def paired_deltas(per_user: dict[str, dict[str, np.ndarray]], base: str, other: str, *, k: int,
                  seed: int = 42, metrics: tuple[str, ...] = DELTA_METRICS) -> dict[str, Delta]:
    """Deltas of model `other` against `base` from `evaluate(..., per_user=True)["per_user"]`; shoppers a
    metric is undefined for (NaN in either) are left out of that metric's pair."""
    from .evaluate import paired_interval

    out = {}
    for m in metrics:
        a, b = per_user[base].get(m), per_user[other].get(m)
        if a is None or b is None or len(a) != len(b):
            continue
        keep = np.isfinite(a) & np.isfinite(b)
        if not keep.any():
            continue
        diff, lo, hi = paired_interval(b[keep], a[keep], seed)
        out[m] = Delta(m, label(m, k), float(a[keep].mean()), float(b[keep].mean()), diff, lo, hi, int(keep.sum()))
    return out


def compare_models(models: dict[str, object], split, embeddings, *, base: str, k: int, seed: int = 42,
                   progress: Progress | None = None) -> dict[str, dict[str, Delta]]:
    """Each model other than `base` against `base` on the held-out period, in one evaluation pass."""
    from .evaluate import evaluate

    res = evaluate(models, split, embeddings, k, progress=progress, per_user=True)
    return {name: paired_deltas(res["per_user"], base, name, k=k, seed=seed) for name in models if name != base}


def rule_breakdown(rec: Recommender, rules, weights: dict[str, float] | None = None, *, k: int | None = None,
                   progress: Progress | None = None) -> list[dict]:
    """Which rule of a scenario moved what: per rule, the held-out deltas of the live lists plus that
    rule alone against the live lists (weights as the scenario's), one evaluation pass for all."""
    from .rules import Rules
    from .whatif import eval_state

    state = eval_state(rec, progress)
    if state is None:
        return []
    split, fused = state
    k = int(k or rec.settings.evaluation.k)
    w = weights if weights is not None else rec.weights
    cross = None if weights is not None else rec.cross_weights
    scenario = rules.all()
    models = {"live": fused.with_weights(rec.weights, rec.rules, rec.cross_weights)}
    for j, rule in enumerate(scenario):
        models[f"rule {j}"] = fused.with_weights(w, rec.rules.plus(Rules(managed=[rule], segments=rules.segments)),
                                                 cross)
    deltas = compare_models(models, split, rec.embeddings_, base="live", k=k, seed=rec.settings.seed)
    return [{"rule": rule.label().split(" by ", 1)[-1], "what": rule.what(), "kind": rule.kind,
             "deltas": {m: d.to_dict() for m, d in deltas[f"rule {j}"].items()}} for j, rule in enumerate(scenario)]


def compare_runs_heldout(store: Store, name_a: str, name_b: str, settings: Settings | None = None,
                         progress: Progress | None = None) -> dict[str, Delta]:
    """Run `name_b` against run `name_a` on today's held-out period, both refitted on its training
    period with their own weights (and rankers), so the deltas pair the same shoppers."""
    from .fitting import fit_on_split
    from .ranker import ItemStats, sub_codes
    from .runs import load_run

    if name_a == name_b:
        raise CrossRecError("choose two different runs to compare")
    recs = {n: load_run(store, n, rules=False) for n in (name_a, name_b)}
    settings = settings or recs[name_a].settings
    items = store.items().sort_values("item_id").reset_index(drop=True)
    emb = recs[name_a].embeddings_
    # the one split-and-fit of training, what-if and the ranker's windows (profile texts included); each run's
    # signals with the values it was trained with (tuned on its own validation period), one fit per distinct set
    keys = {n: json.dumps(rec.settings.signals, sort_keys=True) for n, rec in recs.items()}
    fits: dict[str, tuple] = {}
    for n, rec in recs.items():
        if keys[n] not in fits:
            fits[keys[n]] = fit_on_split(items, store.events(), settings.replace({"signals": rec.settings.signals}),
                                         embeddings=emb, profile_texts=store.profile_texts(), progress=progress)
    split = fits[keys[name_a]][0]  # the same cut and shoppers for both (signal values do not change a split)
    if len(split.users("all")) == 0:
        raise CrossRecError("no held-out shoppers to compare the runs on")
    models = {}
    for n, rec in recs.items():
        fitted = fits[keys[n]][1]
        m = fitted.with_weights(rec.weights, cross_weights=rec.cross_weights)
        m.ranker_ = m.stats_ = None
        if rec.scorer_.ranker_ is not None:
            m.attach_ranker(rec.scorer_.ranker_, ItemStats.from_data(split.train, sub_codes(items)))
        models[n] = m
    return compare_models(models, split, emb, base=name_a, k=settings.evaluation.k, seed=settings.seed)[name_b]
