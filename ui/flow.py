"""Ending a page early, and the empty states that say what to do instead of showing nothing."""
from __future__ import annotations

from typing import NoReturn

import streamlit as st

DATA_PAGE = "views/data.py"
RUNS_PAGE = "views/runs.py"


class Halt(Exception):
    """Raised by `stop()`; app.py catches it so the page ends but the run still finishes normally."""


def stop() -> NoReturn:
    """End the current page here, like st.stop(), but let app.py finish the run (its footer marks the end
    of every run for tests and benchmarks; st.stop() would also stop app.py)."""
    raise Halt()


def no_data() -> None:
    st.info("No data yet: load items and events on the **Data** page, or build the demo shop with "
            "`crossrec demo`.", icon=":material/database:")
    st.page_link(DATA_PAGE, label="Go to Data", icon=":material/upload:")


def no_run() -> None:
    st.info("No run yet: train one on the **Runs** page (or `crossrec train`).", icon=":material/model_training:")
    st.page_link(RUNS_PAGE, label="Go to Runs", icon=":material/model_training:")
