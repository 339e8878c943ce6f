"""A page's write actions (add a rule, make a run live, undo …): run one, show its one-line error or, after
the rerun that shows the new state, what it did."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from crossrec_core.errors import CrossRecError

from .text import error, md

_DONE = "action_done"  # session key: what the last action did, shown once after its rerun


def act(work: Callable[[], Any], done: str | Callable[[Any], str]) -> None:
    """Run `work()`; its CrossRecError as one line, else rerun and say `done` (or `done(result)`) once."""
    try:
        result = work()
    except CrossRecError as exc:
        error(exc)
        return
    st.session_state[_DONE] = done(result) if callable(done) else done
    st.rerun()


def show_done() -> None:
    """What the last action did (once)."""
    if st.session_state.get(_DONE):
        st.success(md(st.session_state.pop(_DONE)), icon=":material/check_circle:")
