"""The learned second stage: candidates from every signal, features, a LightGBM LambdaRank model,
and exact per-signal explanations from its TreeSHAP contributions.

Candidates are the union of each fitted signal's top `n_candidates` allowed items per shopper. Each
(shopper, candidate) gets features: every signal's raw score, its score relative to the shopper's best
and its log-rank among the candidates; item popularity over four horizons, its trend, age and days
since last sold; the popularity of its level-2 category; the shopper's share of history in the item's
top-level and level-2 category and whether the top level is new to them; the shopper's activity.

Training uses rolling cut points inside the period it is given (never later events): fold j has its
signals fitted on the events before cut_j = V - j·L and its labels = the discoveries in [cut_j, cut_j + L),
with V the validation cut (`Settings.evaluation.val_fraction`) and L the validation window. Folds 1..n train the
model; fold 0 (the latest) is split by shopper into an early-stopping half and a selection half, on
which the ranker, the linear fusion and the best single signal are compared: the serving model is the
best of them, so CrossRec is never knowingly worse than its strongest part. The booster is saved as
LightGBM's own text format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data import Interactions
from .errors import CrossRecError
from .signals.base import Context
from .signals.ease import binary

DAY = pd.Timedelta(days=1)
# Generic (shopper or item) features: their SHAP share is reported as "context".
CONTEXT = "context"
# Item popularity features explain through the popularity signal.
_POPULARITY_FEATURES = ("pop_users", "pop_7d", "pop_28d", "pop_91d", "trend", "item_age", "days_since_sold",
                        "sub_pop_28d")
_CONTEXT_FEATURES = ("aff_top", "aff_sub", "new_top", "user_items", "user_activity")
FORMAT = 1


@dataclass
class ItemStats:
    """Per-item facts the ranker reads (arrays in catalog order), computed from a fit's events."""

    pop_users: np.ndarray
    pop_7d: np.ndarray
    pop_28d: np.ndarray
    pop_91d: np.ndarray
    item_age: np.ndarray
    days_since_sold: np.ndarray
    cat_sub: np.ndarray
    n_sub: int

    @classmethod
    def from_data(cls, data: Interactions, cat_sub: np.ndarray) -> "ItemStats":
        n = data.n_items
        ev = data.events
        now = data.now
        pairs = ev.drop_duplicates(["u", "i"], keep="last")

        def users_since(days: float) -> np.ndarray:
            recent = ev[ev["ts"] >= now - days * DAY].drop_duplicates(["u", "i"])
            return np.bincount(recent["i"].to_numpy(), minlength=n).astype(np.float32)

        g = ev.groupby("i")["ts"]
        age = np.full(n, 10_000.0, np.float32)
        since = np.full(n, 10_000.0, np.float32)
        if len(ev):
            first, last = g.min(), g.max()
            age[first.index.to_numpy()] = ((now - first).dt.total_seconds() / 86400.0).to_numpy()
            since[last.index.to_numpy()] = ((now - last).dt.total_seconds() / 86400.0).to_numpy()
        cat_sub = np.asarray(cat_sub, np.int64)
        return cls(pop_users=np.bincount(pairs["i"].to_numpy(), minlength=n).astype(np.float32),
                   pop_7d=users_since(7), pop_28d=users_since(28), pop_91d=users_since(91),
                   item_age=age, days_since_sold=since, cat_sub=cat_sub,
                   n_sub=int(cat_sub.max(initial=-1)) + 1)

    ARRAYS = ("pop_users", "pop_7d", "pop_28d", "pop_91d", "item_age", "days_since_sold", "cat_sub")

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.ARRAYS}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "ItemStats":
        cat_sub = np.asarray(a["cat_sub"], np.int64)
        return cls(**{k: np.asarray(a[k]) for k in cls.ARRAYS if k != "cat_sub"},
                   cat_sub=cat_sub, n_sub=int(cat_sub.max(initial=-1)) + 1)


def sub_codes(items: pd.DataFrame) -> np.ndarray:
    """Level-2 category code of each item (catalog order)."""
    items = items.sort_values("item_id")
    col = items["cat_sub"] if "cat_sub" in items.columns else items["cat_top"]
    return pd.Categorical(col.fillna("")).codes.astype(np.int64)


def feature_names(signals: list[str], extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Feature order for a set of signals, then `extra` ones (the cross-mode ranker's exploration facts,
    crossrec_core.discovery): the booster is trained and applied in this order."""
    per_signal = [f"{s}{suffix}" for s in signals for suffix in ("", "_rel", "_rank")]
    return per_signal + list(_POPULARITY_FEATURES) + list(_CONTEXT_FEATURES) + list(extra)


def feature_signal(name: str, signals: list[str]) -> str:
    """Which signal a feature's contribution is reported under ("context" for shopper/item facts)."""
    for s in signals:
        if name == s or name.startswith(s + "_rel") or name.startswith(s + "_rank"):
            return s
    if name in _POPULARITY_FEATURES and "popularity" in signals:
        return "popularity"
    return CONTEXT


@dataclass
class Candidates:
    """The (row, item) pairs scored for a batch and their feature matrix."""

    rows: np.ndarray  # batch row of each pair
    items: np.ndarray  # item position of each pair
    X: np.ndarray  # pairs × features, float32


def _top_n(scores: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """B × n_items bool: the n best allowed items of each row (fewer where fewer are allowed); equal
    scores in item order, as `topk.top_k` (so a block-at-a-time scan finds the same candidates)."""
    from .topk import top_k

    out = np.zeros(scores.shape, dtype=bool)
    idx, _ = top_k(scores, allowed, min(n, scores.shape[1]))
    r, c = np.nonzero(idx >= 0)
    out[r, idx[r, c]] = True
    return out


def _rank_within(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """0-based rank of each value among the values of its row (descending; ties by order)."""
    order = np.lexsort((-values, rows))
    r = rows[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    pos = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    out = np.empty(len(r), np.float32)
    out[order] = pos
    return out


def build_candidates(raw: dict[str, np.ndarray], allowed: np.ndarray, ctx: Context, stats: ItemStats,
                     cat_top: np.ndarray, n_top: int, n_candidates: int, signals: list[str]) -> Candidates:
    """Candidates (the union of each signal's top-N allowed items) and their features, vectorised."""
    cand = np.zeros(allowed.shape, dtype=bool)
    for s in signals:
        cand |= _top_n(raw[s], allowed, n_candidates)
    rows, items = np.nonzero(cand)
    return candidate_features(rows, items, {s: raw[s][rows, items] for s in signals}, ctx, stats, cat_top, n_top,
                              signals)


def candidate_features(rows: np.ndarray, items: np.ndarray, raw_at: dict[str, np.ndarray], ctx: Context,
                       stats: ItemStats, cat_top: np.ndarray, n_top: int, signals: list[str]) -> Candidates:
    """The features of candidate pairs (rows, items), row-major with items ascending, from each signal's raw
    score at the pairs (`raw_at`): what `build_candidates` computes, without a B × catalogue array."""
    cols: list[np.ndarray] = []
    for s in signals:
        v = np.asarray(raw_at[s]).astype(np.float32)
        top = np.full(ctx.n, -np.inf, np.float32)
        np.maximum.at(top, rows, v)
        scale = np.where(np.isfinite(top) & (np.abs(top) > 1e-12), np.abs(top), 1.0).astype(np.float32)
        cols += [v, v / scale[rows], np.log1p(_rank_within(rows, v))]
    st = stats
    p91 = st.pop_91d[items]
    cols += [np.log1p(st.pop_users[items]), np.log1p(st.pop_7d[items]), np.log1p(st.pop_28d[items]),
             np.log1p(p91), np.log1p(st.pop_28d[items]) - np.log1p(p91 * (28.0 / 91.0)),
             np.minimum(st.item_age[items], 10_000.0), np.minimum(st.days_since_sold[items], 10_000.0)]
    sub_pop = np.bincount(st.cat_sub, weights=st.pop_28d, minlength=st.n_sub).astype(np.float32)
    cols.append(np.log1p(sub_pop[st.cat_sub[items]]))
    Xb = binary(ctx.X)
    n_items = Xb.shape[1]
    n_hist = np.asarray(Xb.sum(axis=1)).ravel().astype(np.float32)
    top_oh = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), cat_top)), shape=(n_items, n_top))
    sub_oh = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), st.cat_sub)),
                           shape=(n_items, st.n_sub))
    denom = np.maximum(n_hist, 1.0)
    aff_top = np.asarray((Xb @ top_oh)[rows, cat_top[items]]).ravel() / denom[rows]
    aff_sub = np.asarray((Xb @ sub_oh)[rows, st.cat_sub[items]]).ravel() / denom[rows]
    activity = np.asarray(ctx.X.sum(axis=1)).ravel().astype(np.float32)
    cols += [aff_top.astype(np.float32), aff_sub.astype(np.float32), (aff_top == 0).astype(np.float32),
             np.log1p(n_hist[rows]), np.log1p(activity[rows])]
    X = np.column_stack(cols).astype(np.float32) if len(rows) else np.zeros((0, len(cols)), np.float32)
    return Candidates(rows=rows.astype(np.int64), items=items.astype(np.int64), X=X)


def training_frames(parts: list[tuple[Candidates, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, group sizes) of (candidates, labels) batches as LightGBM's ranking objective takes
    them: a group is one shopper of one batch, and groups without a positive are left out (they teach nothing)."""
    X = np.vstack([c.X for c, _ in parts])
    y = np.concatenate([lab for _, lab in parts]).astype(np.float32)
    groups, keep = [], []
    offset = 0
    for c, lab in parts:
        starts = np.flatnonzero(np.r_[True, c.rows[1:] != c.rows[:-1]])
        sizes = np.diff(np.r_[starts, len(c.rows)])
        for s0, n0 in zip(starts, sizes):
            if lab[s0:s0 + n0].any():
                groups.append(n0)
                keep.append(np.arange(offset + s0, offset + s0 + n0))
        offset += len(c.rows)
    idx = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    return X[idx], y[idx], np.asarray(groups, np.int64)


class LearnedRanker:
    """LightGBM LambdaRank over signal features (hyper-parameters as keyword arguments, implicit-style).

    `fit_frames` learns from labelled candidate frames; `predict`/`contributions` apply it. Fitted
    attributes end in `_`; `to_state`/`from_state` give JSON only (the booster in LightGBM's text format).
    """

    def __init__(self, *, n_candidates: int = 100, num_leaves: int = 15, learning_rate: float = 0.05,
                 max_rounds: int = 400, min_data_in_leaf: int = 100, early_stopping: int = 40,
                 objective: str = "lambdarank", seed: int = 42):
        self.n_candidates = n_candidates
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.min_data_in_leaf = min_data_in_leaf
        self.early_stopping = early_stopping
        self.objective = objective
        self.seed = seed
        self.extra_features_: list[str] = []
        # the ranker of the cross-mode list, trained on discoveries in new categories with the exploration
        # features (crossrec_core.discovery); None: the cross-mode list is ranked by this one
        self.cross_: "LearnedRanker | None" = None

    def _params(self, n_rows: int) -> dict:
        import os

        params = dict(objective=self.objective, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                      min_data_in_leaf=int(max(5, min(self.min_data_in_leaf, n_rows // 50))),
                      feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1, lambda_l2=10.0,
                      verbose=-1, seed=self.seed, deterministic=True, force_col_wise=True,
                      num_threads=max(1, min(os.cpu_count() or 1, 8)))
        if self.objective == "lambdarank":
            params.update(lambdarank_truncation_level=40, eval_at=[20], metric="ndcg")
        return params

    def fit_frames(self, signals: list[str], train: list[tuple[Candidates, np.ndarray]],
                   valid: list[tuple[Candidates, np.ndarray]] | None = None,
                   rounds: int | None = None, callbacks: list | None = None,
                   extra: tuple[str, ...] = ()) -> "LearnedRanker":
        """Train on (candidates, labels) batches; early-stop on `valid` when given, else `rounds` (or when
        one of `callbacks`, LightGBM's, stops it). `extra` names the feature columns past the signals' own
        (the cross-mode ranker's)."""
        import lightgbm as lgb

        X, y, g = training_frames(train)
        if len(g) == 0 or y.sum() == 0:
            raise CrossRecError("no shopper made a discovery in the training windows: the ranker cannot learn")
        names = feature_names(signals, extra)
        params = self._params(len(y))
        dtrain = lgb.Dataset(X, y, group=g if self.objective == "lambdarank" else None, feature_name=names,
                             free_raw_data=True)
        callbacks, valid_sets = list(callbacks or []), []
        if valid and rounds is None:
            Xv, yv, gv = training_frames(valid)
            if len(gv):
                valid_sets = [lgb.Dataset(Xv, yv, group=gv if self.objective == "lambdarank" else None,
                                          reference=dtrain, feature_name=names)]
                callbacks.append(lgb.early_stopping(self.early_stopping, verbose=False))
        booster = lgb.train(params, dtrain, num_boost_round=int(rounds or self.max_rounds),
                            valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.booster_ = booster
        self.signals_ = list(signals)
        self.feature_names_ = names
        self.extra_features_ = list(extra)
        self.train_rows_ = int(len(y))
        self.train_groups_ = int(len(g))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, np.float64)
        return self.booster_.predict(X, num_iteration=self.best_iteration_)

    def contributions(self, X: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """TreeSHAP per signal (features summed by the signal they come from) and the base value;
        for each row, Σ contributions + base == predict(row)."""
        out = {s: np.zeros(len(X)) for s in [*self.signals_, CONTEXT]}
        if len(X) == 0:
            return out, np.zeros(0)
        phi = self.booster_.predict(X, num_iteration=self.best_iteration_, pred_contrib=True)
        for j, name in enumerate(self.feature_names_):
            out[feature_signal(name, self.signals_)] += phi[:, j]
        return out, phi[:, -1]

    def importance(self) -> dict[str, float]:
        """Gain per signal (share of the total), for run reports."""
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        per: dict[str, float] = {}
        for name, g in zip(self.feature_names_, gain):
            key = feature_signal(name, self.signals_)
            per[key] = per.get(key, 0.0) + float(g)
        total = sum(per.values()) or 1.0
        return {k: round(v / total, 4) for k, v in sorted(per.items(), key=lambda kv: -kv[1])}

    # ---- persistence: JSON only ---------------------------------------------------------------

    def to_state(self) -> dict:
        state = {"format": FORMAT, "params": self.get_params(), "signals": self.signals_,
                 "feature_names": self.feature_names_, "best_iteration": self.best_iteration_,
                 "train_rows": self.train_rows_, "train_groups": self.train_groups_,
                 "booster": self.booster_.model_to_string(num_iteration=self.best_iteration_)}
        if self.extra_features_:
            state["extra_features"] = self.extra_features_
        if self.cross_ is not None:  # the cross-mode ranker rides along (crossrec_core.ranker_fit)
            state["cross"] = self.cross_.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict) -> "LearnedRanker":
        import lightgbm as lgb

        if state.get("format") != FORMAT:
            raise CrossRecError("the learned ranker was saved by another version of CrossRec; retrain with "
                                "`crossrec train`")
        r = cls(**state["params"])
        r.booster_ = lgb.Booster(model_str=state["booster"])
        r.signals_ = list(state["signals"])
        r.feature_names_ = list(state["feature_names"])
        r.best_iteration_ = int(state["best_iteration"])
        r.train_rows_ = int(state["train_rows"])
        r.train_groups_ = int(state["train_groups"])
        r.extra_features_ = list(state.get("extra_features", []))
        r.cross_ = cls.from_state(state["cross"]) if state.get("cross") else None
        return r

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("n_candidates", "num_leaves", "learning_rate", "max_rounds",
                                              "min_data_in_leaf", "early_stopping", "objective", "seed")}

    def __repr__(self) -> str:
        return f"LearnedRanker({json.dumps(self.get_params())})"
