"""The first start: `crossrec app` (and `make app`) on a machine without the demo shop serves the dashboard at
once and builds the shop in a background thread of this process, while a "building the demo shop" page
shows each step with its full message and fills in with the dashboard when the shop is ready.

`crossrec app` asks for this with CROSSREC_BUILD_DEMO=1 (only for the default database, only when it is
absent). Nothing opens the database before the build ends: the build writes a temporary file and moves it
into place as its last step, so the pages open a finished shop or none.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path

import streamlit as st

from . import state
from .text import error, md

ENV = "CROSSREC_BUILD_DEMO"


@st.cache_resource(show_spinner=False)
def _job(path: str) -> dict:
    """The process's one build of the demo shop at `path` (shared by every session)."""
    return {"status": "idle", "fraction": 0.0, "message": "starting", "log": [], "started": None, "error": None,
            "thread": None}


def wanted() -> bool:
    """True while this process was asked to build the demo shop and the shop is not ready yet."""
    if os.environ.get(ENV) != "1":
        return False
    if _job(state.db_path())["status"] in ("running", "failed"):
        return True
    return not Path(state.db_path()).exists()


def start() -> dict:
    """Start the build once per process; the job's dict follows it (fraction, message, log of steps)."""
    job = _job(state.db_path())
    with state.process_state()["lock"]:
        if job["status"] == "idle":
            job.update(status="running", started=time.time())
            job["thread"] = threading.Thread(target=_build, args=(job,), name="crossrec-demo-build", daemon=True)
            job["thread"].start()
    return job


def _build(job: dict) -> None:
    from crossrec_core.demo import build_demo

    def progress(frac: float, msg: str) -> None:
        job["fraction"], job["message"] = max(job["fraction"], min(1.0, float(frac))), msg
        step = msg.split(":", 1)[0]
        if not job["log"] or job["log"][-1][1] != step:  # one terminal line per step, with its full message
            job["log"].append((time.time() - job["started"], step))
            print(f"[demo {100 * job['fraction']:3.0f} %] {msg}", file=sys.stderr, flush=True)

    try:
        build_demo(state.settings(), progress=progress)
        job.update(status="done", fraction=1.0, message="the demo shop is ready")
        print("[demo 100 %] the demo shop is ready", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001  (shown on the page and in the terminal, never swallowed)
        job.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()


def page() -> None:
    """The page shown instead of the dashboard while the shop is built: it polls every second."""
    start()
    st.title("Building the demo shop")
    st.caption(f"First start: CrossRec generates a demo shop at {md(state.db_path())}, loads it, encodes every "
               "item text, learns the weights, evaluates and maps the catalog (1–3 minutes on 2 cores). "
               "This page fills in with the dashboard when it is ready.")
    st.fragment(run_every=1.0)(_progress)()


def _progress() -> None:
    job = _job(state.db_path())
    if job["status"] == "failed":
        error(f"The demo shop could not be built: {job['error']}")
        st.caption("Run `crossrec demo` in a terminal to see the whole message, then start the app again.")
        return
    if job["status"] == "done":
        st.rerun(scope="app")
    elapsed = time.time() - (job["started"] or time.time())
    st.progress(job["fraction"], text=md(job["message"]))
    st.caption(f"{elapsed:.0f} s so far")
    if job["log"]:
        st.text("\n".join(f"{t:6.0f} s  {step}" for t, step in job["log"]))
