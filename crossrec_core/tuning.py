"""Each signal's hyper-parameters chosen on the validation period, inside a time box (settings `tuning`).

The validation carve-out is the one weight learning uses (`split.carve_validation` of the *training*
events: the held-out period is never read here). For each signal with a grid (EASE λ, ALS regularisation
and factors, RP3beta β and α, co-occurrence shrink), the signal is fitted *alone* on the carve-out's
training part with the settings' value and then with each value of the grid, one parameter at a time (the
others at their best so far), and each fit is scored alone: NDCG@K of its top-K allowed items
(`Signal.retrieve`, as a served list's candidates) against the validation positives of a seeded sample of
shoppers, the same for every trial. A value replaces the settings' one only when it beats it by
`tuning.margin` (relative), so noise does not move a setting.

Signals go cheapest first (`ORDER`); each gets an equal share of the time still left, and a trial starts
only when its share still holds one more trial as long as the signal's earlier ones. The report lists every
trial (values, validation NDCG and recall, seconds), the values chosen and what was skipped for time.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .config import Settings
from .errors import CrossRecError
from .metrics import ranking_metrics
from .progress import Progress

# cheapest trials first (one fit on the completejourney carve-out: ALS ≈ 3 s, RP3beta and co-occurrence ≈ 7 s,
# EASE on 6,000 items ≈ 8 s); a signal named in `tuning.grids` but not here comes after these, by name
ORDER: tuple[str, ...] = ("als", "ease", "graph", "cooc")
BATCH = 256  # validation shoppers scored at a time (allowed items: batch × catalogue booleans)
_clock = time.perf_counter  # the tests' stand-in for time


def _plan(settings: Settings, embeddings: np.ndarray | None) -> list[tuple[type, dict[str, list]]]:
    """(signal class, its grid) in tuning order; an unknown signal or parameter is a one-line error. A signal the
    shop cannot have (`Signal.available`: item embeddings, a tuned encoder) is left out, as training leaves it."""
    from .signals.registry import classes

    known = classes()
    grids = settings.tuning.grids
    out = []
    for name in sorted(grids, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        if name not in known:
            raise CrossRecError(f"setting tuning.grids names '{name}', not a signal (signals: {', '.join(known)})")
        cls = known[name]
        params = cls.params()
        for param in grids[name]:
            if param not in params:
                raise CrossRecError(f"setting tuning.grids.{name}.{param} is not a parameter of {name} "
                                    f"(its parameters: {', '.join(params)})")
        if grids[name] and cls.available(settings, embeddings):
            out.append((cls, grids[name]))
    return out


class _Judge:
    """Scores one fitted signal alone on the validation sample: mean NDCG@K and Recall@K of its top-K."""

    def __init__(self, val, users: np.ndarray, embeddings: np.ndarray | None, k: int):
        self.val, self.k, self.embeddings = val, k, embeddings
        self.batches = [users[a:a + BATCH] for a in range(0, len(users), BATCH)]
        self.positives = [val.positives(b) for b in self.batches]

    def __call__(self, signal) -> tuple[float, float]:
        ndcg, recall = [], []
        for batch, pos in zip(self.batches, self.positives):
            ctx = self.val.context(batch, self.embeddings)  # a fresh one: a context caches by the signal's id
            top = signal.retrieve(ctx, ~self.val.exclusions(batch), self.k)
            m = ranking_metrics(top, pos, self.k)
            ndcg.append(m["ndcg"])
            recall.append(m["recall"])
        return float(np.concatenate(ndcg).mean()), float(np.concatenate(recall).mean())


def _plain(value: Any) -> Any:
    """A parameter value as JSON keeps it (numpy scalars as Python numbers)."""
    return value.item() if hasattr(value, "item") else value


def tune_signals(
    items: pd.DataFrame,
    train_events: pd.DataFrame,
    settings: Settings,
    embeddings: np.ndarray | None = None,
    *,
    progress: Progress | None = None,
    keep: dict | None = None,
) -> tuple[Settings, dict]:
    """The settings with each tuned signal's chosen values (`settings.replace`), and the report.

    `train_events` are the events before the held-out cut; only they are read. With `tuning.seconds` 0 the
    settings come back unchanged and the report says so. `keep`, a dict, receives each tuned signal as fitted
    at its chosen values on the carve-out's training period (weight learning fits the same signals on the same
    data: `learn_weights(fitted=...)` takes them instead)."""
    cfg = settings.tuning
    if cfg.seconds <= 0:
        return settings, {"ran": False, "reason": "tuning.seconds is 0: the signals keep the settings' values"}
    plan = _plan(settings, embeddings)  # errors in the grids before any work
    t0 = _clock()
    deadline = t0 + float(cfg.seconds)
    from .split import carve_validation, sample_users

    if progress:
        progress(0.0, "tuning the signals: carving the validation period")
    try:
        val = carve_validation(items, train_events, settings)
    except CrossRecError as exc:  # a training period too short to carve: the settings stay, and why
        return settings, {"ran": False, "reason": f"no validation period to tune on: {exc}"}
    users = sample_users(val.users("all"), int(cfg.max_users), settings.seed)
    report: dict[str, Any] = {
        "ran": True, "budget_seconds": float(cfg.seconds), "margin": float(cfg.margin), "k": int(settings.evaluation.k),
        "validation": {"from": str(val.cut), "to": str(val.test_events["ts"].max()) if len(val.test_events) else None,
                       "shoppers": int(len(users))},
        "signals": {}, "skipped_for_time": [],
    }
    if len(users) == 0:
        report.update(ran=False, reason="the validation period has no shopper with a positive")
        return settings, report
    judge = _Judge(val, users, embeddings, int(settings.evaluation.k))
    changes: dict[str, Any] = {}
    for done, (cls, grid) in enumerate(plan):
        name = cls.name
        start = {p: _plain({**cls.params(), **settings.signals.get(name, {})}[p]) for p in grid}
        share_end = _clock() + (deadline - _clock()) / (len(plan) - done)  # this signal's share of what is left
        entry, fitted = _tune_one(cls, grid, start, settings, val, judge, share_end, deadline, progress,
                                  (done / len(plan), (done + 1) / len(plan)))
        if keep is not None and fitted is not None:
            keep[name] = fitted
        report["signals"][name] = entry
        report["skipped_for_time"] += [f"{name}: " + ", ".join(f"{p} {v:g}" for p, v in s.items())
                                       for s in entry["skipped"]]
        changes.update({f"signals.{name}.{p}": v for p, v in entry["chosen"].items() if v != start[p]})
    report["seconds"] = round(_clock() - t0, 2)
    report["changed"] = {path.removeprefix("signals."): v for path, v in changes.items()}
    if progress:
        progress(1.0, "tuned the signals: " + (", ".join(f"{p} {v:g}" for p, v in report["changed"].items())
                                              or "every signal keeps its value"))
    return settings.replace(changes), report


def _tune_one(cls, grid: dict[str, list], start: dict[str, Any], settings: Settings, val, judge: _Judge,
              share_end: float, deadline: float, progress: Progress | None, span: tuple[float, float]) -> tuple:
    """One signal's coordinate search: its settings' values, then each parameter's grid with the others at
    their best so far; a value is kept when it beats the best by the margin. Returns (its report, the signal
    fitted at the chosen values; None when not even the settings' values were tried)."""
    name = cls.name
    given = settings.signals.get(name, {})
    trials: list[dict] = []
    skipped: list[dict] = []
    t0 = _clock()
    n_todo = 1 + sum(len(values) for values in grid.values())

    def run(params: dict[str, Any]) -> tuple[dict, Any]:
        if progress:
            what = ", ".join(f"{p} {v:g}" for p, v in params.items())
            progress(span[0] + (span[1] - span[0]) * len(trials) / n_todo,
                     f"tuning {cls.label} ({name}): trying {what}")
        t = _clock()
        trial: dict[str, Any] = {"params": dict(params)}
        try:
            signal = cls.build(settings, {**given, **params}).fit(val.train, judge.embeddings)
            trial["ndcg"], trial["recall"] = judge(signal)
        except (CrossRecError, ValueError, np.linalg.LinAlgError) as exc:  # an impossible value: reported, not chosen
            trial.update(ndcg=None, recall=None, error=str(exc))
            signal = None  # a fit that could not be scored is not kept either
        trial["seconds"] = round(_clock() - t, 2)
        trials.append(trial)
        return trial, signal

    def affordable() -> bool:
        now = _clock()
        if now >= deadline:
            return False
        if not trials:  # the settings' values are always measured while any time is left
            return True
        per_trial = sum(t["seconds"] for t in trials) / len(trials)
        return now + per_trial <= min(share_end, deadline)

    best, best_score, best_signal = dict(start), None, None
    if affordable():
        first, best_signal = run(best)
        if first["ndcg"] is None:  # the settings' own values do not fit: the training would fail on them too
            raise CrossRecError(f"signal {name} does not fit with its settings' values: {first['error']}")
        best_score = first["ndcg"]
    else:
        skipped.append(dict(best))
    for param in grid:
        found, found_signal = None, None
        for value in grid[param]:
            params = {**best, param: value}
            if value == best[param] or any(t["params"] == params for t in trials):
                continue
            if best_score is None or not affordable():  # no baseline to beat, or no time: skipped
                skipped.append({param: value})
                continue
            trial, signal = run(params)
            if trial["ndcg"] is not None and (found is None or trial["ndcg"] > found["ndcg"]):
                found, found_signal = trial, signal
            del signal  # only the best so far and the best of this parameter are held (EASE: 144 MB each)
        if found is not None and found["ndcg"] > best_score * (1.0 + settings.tuning.margin) + 1e-12:
            best, best_score, best_signal = dict(found["params"]), found["ndcg"], found_signal
    entry = {"start": start, "chosen": best, "changed": best != start,
             "ndcg_start": trials[0]["ndcg"] if trials else None, "ndcg_chosen": best_score,
             "trials": trials, "skipped": skipped, "seconds": round(_clock() - t0, 2)}
    return entry, best_signal
