"""The one progress type: long steps report (fraction done in [0, 1], plain message)."""
from __future__ import annotations

from typing import Callable

Progress = Callable[[float, str], None]


def sub_progress(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A progress callback mapping [0, 1] into [lo, hi] of the parent's range (None stays None)."""
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * max(0.0, min(1.0, f)), m)
