"""What-if experiments: category-pair boosts/damps and new fusion weights against the serving run.

The scenario reuses the serving run's fitted signals (no refit), so it answers in seconds: which
items enter and leave users' lists, how many users are affected, and — on the held-out period of
the time split — what the change costs or gains.
"""
from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .bounds import check_k
from .config import Settings
from .scorer import Rules
from .progress import Progress

if TYPE_CHECKING:
    from .recommender import Recommender


DELTA_METRICS = ("recall", "ndcg", "hit_rate", "cross_recall", "cross_hit_rate", "coverage", "novelty")


@dataclass
class WhatIfResult:
    """What a scenario changes: how many of the sampled shoppers' lists, which items enter and leave them
    (with the number of lists), per shopper, and the held-out metrics with their deltas."""

    users_total: int
    users_affected: int
    items_in: pd.DataFrame  # item_id, title, category, users
    items_out: pd.DataFrame
    per_user: pd.DataFrame  # user_id, entered, left
    metric_delta: dict[str, tuple[float, float]] = field(default_factory=dict)
    deltas: dict = field(default_factory=dict)  # metric -> deltas.Delta: the difference with its 95 % interval

    def to_dict(self) -> dict:
        return {
            "users_total": self.users_total,
            "users_affected": self.users_affected,
            "items_in": self.items_in.head(50).to_dict(orient="records"),
            "items_out": self.items_out.head(50).to_dict(orient="records"),
            "metric_delta": {k: list(v) for k, v in self.metric_delta.items()},
            "deltas": {k: d.to_dict() for k, d in self.deltas.items()},
        }


def sample_users(rec: Recommender, n: int, seed: int) -> list[str]:
    """Up to n users with history, seeded."""
    users = rec.store.user_summary()
    users = users[users["events"] > 0]["user_id"].to_numpy()
    if len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    return list(users)


def _item_table(rec: Recommender, counts: Counter) -> pd.DataFrame:
    if not counts:
        return pd.DataFrame(columns=["item_id", "title", "category", "users"])
    df = pd.DataFrame(counts.most_common(), columns=["item_id", "users"])
    meta = rec.items_.set_index("item_id")[["title", "category"]]
    df = df.join(meta, on="item_id")
    return df[["item_id", "title", "category", "users"]]


def simulate(
    rec: Recommender,
    rules: Rules,
    weights: dict[str, float] | None = None,
    *,
    users: list[str] | None = None,
    k: int = 20,
    mode: str = "all",
    evaluate: bool = True,
    n_users: int = 500,
    progress: Progress | None = None,
) -> WhatIfResult:
    """Compare the serving lists with the scenario's lists for a set of users."""
    settings: Settings = rec.settings
    k = check_k(k, settings)
    users = users if users is not None else sample_users(rec, n_users, settings.seed)
    scenario = rec.with_weights(weights if weights is not None else rec.weights, rec.rules.plus(rules))
    half = 0.6 if evaluate else 1.0
    base = {u: df["item_id"].tolist() for u, df in rec.recommend_batch(users, k=k, mode=mode, explain=False)}
    if progress:
        progress(half / 2, "scored the serving lists")
    new = {u: df["item_id"].tolist() for u, df in scenario.recommend_batch(users, k=k, mode=mode, explain=False)}
    if progress:
        progress(half, "scored the scenario lists")
    entered_c, left_c = Counter(), Counter()
    rows = []
    for u in users:
        b, s = set(base[u]), set(new[u])
        entered, left = [i for i in new[u] if i not in b], [i for i in base[u] if i not in s]
        entered_c.update(entered)
        left_c.update(left)
        rows.append((u, len(entered), len(left)))
    per_user = pd.DataFrame(rows, columns=["user_id", "entered", "left"])
    affected = int(((per_user["entered"] > 0) | (per_user["left"] > 0)).sum()) if len(per_user) else 0
    delta: dict[str, tuple[float, float]] = {}
    deltas: dict = {}
    if evaluate:
        delta, deltas = held_out_deltas(rec, rules, weights, k=k, progress=(
            lambda f, m: progress(half + (1 - half) * f, m)) if progress else None)
    if progress:
        progress(1.0, "done")
    return WhatIfResult(len(users), affected, _item_table(rec, entered_c), _item_table(rec, left_c), per_user, delta,
                        deltas)


def held_out_deltas(rec: Recommender, rules: Rules, weights: dict[str, float] | None, *, k: int,
                    progress: Progress | None = None) -> tuple[dict[str, tuple[float, float]], dict]:
    """(serving, scenario) metric means and the scenario's deltas with their 95 % paired intervals
    (metric -> deltas.Delta), from one pass over the test period."""
    from .deltas import paired_deltas
    from .evaluate import evaluate

    state = eval_state(rec, progress)
    if state is None:
        return {}, {}
    split, fused = state
    scenario = fused.with_weights(weights if weights is not None else rec.weights, rec.rules.plus(rules),
                                  None if weights is not None else rec.cross_weights)
    base = fused.with_weights(rec.weights, rec.rules, rec.cross_weights)
    res = evaluate({"base": base, "scenario": scenario}, split, rec.embeddings_, k, per_user=True)
    out = {}
    for m in DELTA_METRICS:
        a = res["slices"]["all"]["base"].get(m)
        b = res["slices"]["all"]["scenario"].get(m)
        if a is not None and b is not None:
            out[m] = (float(a), float(b))
    return out, paired_deltas(res["per_user"], "base", "scenario", k=k, seed=rec.settings.seed)


_EVAL_STATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # recommender -> (split, fused)


def eval_state(rec: Recommender, progress: Progress | None = None):
    """The time split and a fused scorer fitted on its training period with the serving run's inputs
    (`fitting.fit_on_split`, profile texts included), computed once per recommender and held here,
    not on the recommender."""
    cached = _EVAL_STATES.get(rec)
    if cached is not None:
        return cached
    from .fitting import fit_on_split

    items, events = rec.store.items(), rec.store.events()
    if events.empty:
        return None
    split, fused = fit_on_split(items, events, rec.settings, rec.weights, cross_weights=rec.cross_weights,
                                rules=rec.rules, embeddings=rec.embeddings_,
                                profile_texts=rec.store.profile_texts(), progress=progress)
    if len(split.users("all")) == 0:
        return None
    _EVAL_STATES[rec] = (split, fused)
    return split, fused
