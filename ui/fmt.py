"""Numbers, dates, durations, weights and run metrics in plain words ('–' where there is no value)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from crossrec_core.signals.registry import names as signal_names

MODE_LABELS = {"all": "All categories", "cross": "New categories only", "target": "One target category"}


def fmt_int(n: Any) -> str:
    return "–" if n is None or (isinstance(n, float) and pd.isna(n)) else f"{int(n):,}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * float(x):.{digits}f} %"


def fmt_num(x: Any, digits: int = 3) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.{digits}f}"


def fmt_when(ts: Any, with_time: bool = True) -> str:
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):
        return "–"
    t = pd.Timestamp(ts)
    return t.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def fmt_duration(seconds: Any) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    s = float(seconds)
    return f"{s:.1f} s" if s < 90 else f"{s / 60:.1f} min"


def fmt_weights(weights: dict | None) -> str:
    """'bought together 0.40 · popular now 0.10': signal labels, not the engine's names."""
    from .charts import SIGNAL_LABELS

    if not weights:
        return "–"
    return " · ".join(f"{SIGNAL_LABELS.get(k, k)} {float(weights.get(k, 0)):.2f}" for k in signal_names()
                      if float(weights.get(k, 0) or 0) > 0)


def fmt_tuning(report: dict | None) -> str:
    """What a training's signal tuning did, in a line: how long it checked and which settings it changed
    ('' when it did not run)."""
    from .charts import SIGNAL_LABELS

    if not report or not report.get("ran"):
        return ""
    moved = []
    for name, entry in (report.get("signals") or {}).items():
        start, chosen = entry.get("start") or {}, entry.get("chosen") or {}
        moved += [f"{SIGNAL_LABELS.get(name, name)} {param} {float(start[param]):g} → {float(value):g}"
                  for param, value in chosen.items() if param in start and start[param] != value]
    spent = f"checked on earlier weeks in {fmt_duration(report.get('seconds'))}"
    return f"{spent}; changed " + ", ".join(moved) if moved else f"{spent}; every setting kept"


def fmt_cross_model(ranker_report: dict | None) -> str:
    """Which model orders the new-category lists of a run with a learned ranker ('' without one)."""
    cross = (ranker_report or {}).get("cross")
    if not cross:
        return ""
    if cross.get("serves"):
        return "a model of their own, trained on first buys in new categories"
    return "the main model (a model of their own did not beat it on earlier weeks)"


def run_metric(run: dict | None, metric: str = "recall", slice_: str = "all", model: str = "crossrec") -> float | None:
    """One held-out metric of a run row (None when the run has no such figure)."""
    try:
        value = run["metrics"]["slices"][slice_][model][metric]
    except (KeyError, TypeError):
        return None
    return None if value is None else float(value)


def fmt_interval(metrics: dict | None, metric: str = "recall") -> str:
    """'+0.0040 [−0.0010, +0.0090] vs Matrix factorisation (ALS): no clear difference' from a run's metrics,
    or '' without one (the baseline by its plain name, the verdict in the shop's words)."""
    from crossrec_core.metric_names import model_label

    from .words import verdict
    iv = ((metrics or {}).get("intervals") or {}).get(metric) or {}
    if not iv:
        return ""
    says = verdict(iv["low"], iv["high"], iv["diff"], up="better", down="worse")
    return f"{iv['diff']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}] vs {model_label(iv['best'])}: {says}"


def fmt_versus(metrics: dict | None, metric: str = "recall") -> str:
    """The table's short form of `fmt_interval`: 'better (+0.0120)', 'worse (−0.0100)', 'no clear difference'."""
    from .words import NO_CHANGE, NO_DIFFERENCE, verdict
    iv = ((metrics or {}).get("intervals") or {}).get(metric) or {}
    if not iv:
        return ""
    says = verdict(iv["low"], iv["high"], iv["diff"], up="better", down="worse")
    return says if says in (NO_DIFFERENCE, NO_CHANGE) else f"{says} ({iv['diff']:+.4f})"
