"""Training in the background, inside this process (it owns the database file): one job at a time per
database, shared by every session. The run it records is a committed write, so every cached read is
fresh afterwards by itself (see state.py); `follow()` reruns a session's whole page once when the job it
watched ends, so the sidebar and the page show the new run without a click."""
from __future__ import annotations

import threading
import time
import traceback

import streamlit as st

from crossrec_core.errors import CrossRecError

from . import state
from .progress import clamp
from .text import md

_FOLLOWED = "training_followed"  # session key: the id of the running job this session has seen


def training_job() -> dict | None:
    return state.process_state()["job"]


def running() -> bool:
    job = training_job()
    return job is not None and job["status"] == "running"


def start_training(*, weights: dict | None, name: str | None, learn: bool) -> bool:
    """Start `train.train` in a thread; False when one is already running."""
    shared = state.process_state()
    with shared["lock"]:
        job = shared["job"]
        if job is not None and job["status"] == "running":
            return False
        job = {"status": "running", "progress": 0.0, "message": "starting", "error": None, "run": None,
               "name": name, "started": time.time(), "finished": None, "id": int(time.time() * 1000)}
        shared["job"] = job
    store, cfg = state.store(), state.settings()

    def work() -> None:
        from crossrec_core import train as train_mod

        def progress(frac: float, msg: str) -> None:
            job["progress"], job["message"] = clamp(frac), str(msg)

        try:
            run = train_mod.train(store, cfg, weights=weights, name=name or None, learn=learn,
                                  project=True, progress=progress)
            job["run"] = run["name"] if isinstance(run, dict) else None
            job["status"] = "done"
        except CrossRecError as exc:
            job["error"], job["status"] = str(exc), "failed"
        except Exception as exc:  # an engine bug: show its one line, keep the trace in the server log
            traceback.print_exc()
            job["error"], job["status"] = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job["finished"] = time.time()

    threading.Thread(target=work, name="crossrec-train", daemon=True).start()
    return True


def progress_text(job: dict) -> str:
    """'Training NAME: <the step, in full>' as inert Markdown."""
    return md(f"Training{' ' + job['name'] if job['name'] else ''}: {job['message']}")


def follow(job: dict | None) -> None:
    """Call from a fragment that reruns while a job runs: remember the running job, and the first time
    this session sees it end, rerun the whole app (counts, runs and lists then read the new run)."""
    if job is None:
        return
    if job["status"] == "running":
        st.session_state[_FOLLOWED] = job["id"]
    elif st.session_state.get(_FOLLOWED) == job["id"]:
        del st.session_state[_FOLLOWED]
        st.rerun(scope="app")


def poll_every() -> float | None:
    """How often a fragment showing the job should rerun: every second while one runs."""
    return 1.0 if running() else None
