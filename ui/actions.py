"""A page's write actions (add a rule, make a run live, undo …): run one, show its one-line error or, after
the rerun that shows the new state, what it did."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from crossrec_core.errors import CrossRecError

from .text import error, md

_DONE = "action_done"  # session key: what the last action did, shown once after its rerun


def act(work: Callable[[], Any], done: str | Callable[[Any], str], slot: str = "") -> None:
    """Run `work()`; its CrossRecError as one line, else rerun and say `done` (or `done(result)`) once, where
    the page calls `show_done(slot)` (next to the button that did it)."""
    try:
        result = work()
    except CrossRecError as exc:
        error(exc)
        return
    st.session_state[_DONE] = (slot, done(result) if callable(done) else done)
    st.rerun()


def show_done(slot: str = "") -> None:
    """What the last action of `slot` did (once): call it right below that action's button."""
    last = st.session_state.get(_DONE)
    if last and last[0] == slot:
        del st.session_state[_DONE]
        st.success(md(last[1]), icon=":material/check_circle:")


def just_done(slot: str) -> bool:
    """Whether `slot`'s action has a message waiting (this rerun follows it)."""
    last = st.session_state.get(_DONE)
    return bool(last) and last[0] == slot
