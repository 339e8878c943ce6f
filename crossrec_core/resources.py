"""Wall time and peak resident memory of long steps: `peak_rss` samples one block, `StepLog` records the
named steps of a command (train: load, split, learn weights, …) so they can be printed and stored.

Peak RSS is sampled every 20 ms by a thread (psutil), so a spike shorter than that can be missed; it is
the peak of the whole process (what a machine's memory limit sees), with the rise above the step's start.
Steps nest: a step opened inside another (a signal's fit inside "fit for serving") is recorded as its part.
`step(name)` records into the log made active by `StepLog.active()`, and does nothing without one, so
library code can mark its steps at no cost to callers that do not ask.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_MB = 2 ** 20
_ACTIVE: ContextVar["StepLog | None"] = ContextVar("crossrec_step_log", default=None)


def rss_mb() -> float:
    """The process's resident memory now (MB)."""
    import psutil

    return psutil.Process().memory_info().rss / _MB


@contextmanager
def peak_rss(interval: float = 0.02) -> Iterator[dict]:
    """Yields a dict that holds, afterwards, 'mb' (peak RSS above the start), 'peak_mb' (the process's
    peak RSS) and 'start_mb', sampled every `interval` seconds."""
    import psutil

    proc, out, stop = psutil.Process(), {"mb": 0.0, "peak_mb": 0.0, "start_mb": 0.0}, threading.Event()
    start = proc.memory_info().rss
    peak = [start]

    def sample() -> None:
        while not stop.wait(interval):
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:  # pragma: no cover - the process is going away
                return

    t = threading.Thread(target=sample, daemon=True, name="crossrec-peak-rss")
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        top = max(peak[0], proc.memory_info().rss)
        out.update(mb=(top - start) / _MB, peak_mb=top / _MB, start_mb=start / _MB)


class StepLog:
    """The steps of one command, in order: {"step", "seconds", "peak_rss_mb", "rss_rise_mb", "parts"}."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self._open: list[dict] = []

    @contextmanager
    def active(self) -> Iterator["StepLog"]:
        """Make this the log that `step()` records into (for this thread / context)."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    @contextmanager
    def step(self, name: str) -> Iterator[dict]:
        """Time one step and sample its peak RSS; recorded even when the step raises."""
        rec = {"step": name, "seconds": 0.0, "peak_rss_mb": 0.0, "rss_rise_mb": 0.0, "parts": []}
        (self._open[-1]["parts"] if self._open else self.steps).append(rec)
        self._open.append(rec)
        t0 = time.perf_counter()
        try:
            with peak_rss() as mem:
                yield rec
        finally:
            self._open.pop()
            rec.update(seconds=round(time.perf_counter() - t0, 3), peak_rss_mb=round(mem["peak_mb"], 1),
                       rss_rise_mb=round(mem["mb"], 1))

    def to_list(self) -> list[dict]:
        """The steps as plain JSON values; the parts of a step merged by name (a signal fitted in several
        windows is one part: seconds summed, peak the highest, `times` how often)."""
        def merge(parts: list[dict]) -> list[dict]:
            out: dict[str, dict] = {}
            for p in parts:
                m = out.get(p["step"])
                if m is None:
                    out[p["step"]] = {**p, "times": 1, "parts": merge(p["parts"])}
                    continue
                m["times"] += 1
                m["seconds"] = round(m["seconds"] + p["seconds"], 3)
                m["peak_rss_mb"] = max(m["peak_rss_mb"], p["peak_rss_mb"])
                m["rss_rise_mb"] = max(m["rss_rise_mb"], p["rss_rise_mb"])
                m["parts"] = merge(m["parts"] + p["parts"])
            return list(out.values())

        return merge(self.steps)


@contextmanager
def step(name: str) -> Iterator[dict | None]:
    """A step of the active StepLog (nested under the step open now); nothing without an active log."""
    log = _ACTIVE.get()
    if log is None:
        yield None
        return
    with log.step(name) as rec:
        yield rec


def steps_table(steps: list[dict], expand: set[str] | None = None) -> str:
    """The steps as a small plain-text table: step, time, peak memory; the parts of the steps named in
    `expand` (every step's when None) indented under them."""
    lines = [f"{'step':<34} {'time':>9}  {'peak memory':>11}"]

    def add(rows: list[dict], level: int) -> None:
        for r in rows:
            times = f" (×{r['times']})" if r.get("times", 1) > 1 else ""
            label = ("  " * level + r["step"] + times)[:34]
            lines.append(f"{label:<34} {_duration(r['seconds']):>9}  {r['peak_rss_mb'] / 1024:>8.2f} GB")
            if level == 0 and (expand is None or r["step"] in expand):
                add(r.get("parts") or [], level + 1)

    add(steps, 0)
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"
