"""Progress bars for core work that reports progress(fraction, message); messages are shown in full."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from crossrec_core.errors import CrossRecError

from .text import error, md


def with_progress(work: Callable[[Callable[[float, str], None]], Any], start: str = "starting") -> Any:
    """Run core work under a progress bar. Its CrossRecError is shown as one line and None returned; the
    bar disappears either way."""
    bar = st.progress(0.0, text=start)
    try:
        return work(progress_callback(bar))
    except CrossRecError as exc:
        error(exc)
        return None
    finally:
        bar.empty()


def progress_callback(bar: Any) -> Callable[[float, str], None]:
    """A core-style progress(fraction, message) that drives an st.progress element."""

    def update(frac: float, msg: str) -> None:
        bar.progress(clamp(frac), text=md(msg))

    return update


def clamp(frac: float) -> float:
    return max(0.0, min(1.0, float(frac)))
