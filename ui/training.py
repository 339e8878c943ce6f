"""Background jobs inside this process (it owns the database file): training a run or fine-tuning the item
encoder, one job at a time per database, shared by every session. What a job records is a committed write,
so every cached read is fresh afterwards by itself (see state.py); `follow()` reruns a session's whole page
once when the job it watched ends, so the sidebar and the page show the result without a click.

A trained run is recorded but does not go live (`train(..., promote=False)`): "Make live" on the Runs page
does that. A fine-tune adopts its encoder only when it beats the base on validation; the serving run keeps
its own item vectors until a new run is trained and made live."""
from __future__ import annotations

import re
import threading
import time
import traceback
from typing import Callable

import streamlit as st

from crossrec_core.errors import CrossRecError

from . import state
from .charts import SIGNAL_LABELS
from .progress import clamp
from .text import md

_FOLLOWED = "training_followed"  # session key: the id of the running job this session has seen

# The engine's step messages in a merchandiser's words: (pattern, replacement); the first match wins and
# an unmatched message is shown as it is. The one place these words live.
BASELINES = {"popularity": "best-sellers", "itemknn": "bought-together (item kNN)", "als": "matrix factorisation",
             "ease": "EASE", "rp3beta": "graph walk (RP3beta)", "content": "text-likeness"}
_STEPS: list[tuple[str, Callable[[re.Match], str]]] = [
    (r"fitting baseline (\w+)", lambda m: f"scoring the {BASELINES.get(m[1], m[1])} baseline for comparison"),
    (r"baselines fitted", lambda m: "baselines ready for comparison"),
    (r"tuning (\S+) weight of (\w+) \(([\d.]+)\)",
     lambda m: f"trying weights for {SIGNAL_LABELS.get(m[2], m[2])} ({m[1]} lists; best recall so far {m[3]})"),
    (r"fitting signals on the validation carve-out", lambda m: "learning the signals on an earlier slice to set "
                                                               "the weights"),
    (r"fitting (\w+)$", lambda m: f"learning the {SIGNAL_LABELS.get(m[1], m[1])} signal"),
    (r"(\w+): (\w+) \(([\d,]+)/([\d,]+) users\)",
     lambda m: f"measuring {'CrossRec' if m[1] == 'crossrec' else BASELINES.get(m[1], m[1])} on held-out "
               f"shoppers ({m[3]} of {m[4]})"),
    (r"ranker: (.*)", lambda m: f"learning the order from past shoppers: {m[1]}"),
    (r"laying out ([\d,]+) points.*", lambda m: f"drawing the item map ({m[1]} points)"),
    (r"run (.+) is recorded", lambda m: f"run {m[1]} recorded (not live until you make it live)"),
    (r"epoch ([\d.]+) loss ([\d.]+) ([\d,.]+) ex/s", lambda m: f"tuning the encoder: epoch {m[1]}, loss {m[2]}, "
                                                               f"{m[3]} pairs a second"),
]


def plain_step(message: str) -> str:
    """An engine step message in plain words ("fitting baseline ease" → "scoring the EASE baseline for
    comparison")."""
    for pattern, words in _STEPS:
        m = re.fullmatch(pattern, message.strip())
        if m:
            return words(m)
    return message


def training_job() -> dict | None:
    return state.process_state()["job"]


def running() -> bool:
    job = training_job()
    return job is not None and job["status"] == "running"


def start_job(kind: str, name: str | None, work: Callable[[Callable[[float, str], None]], str | None]) -> bool:
    """Run `work(progress)` in a thread as this database's job ("training" or "fine-tuning"); it returns
    the name of what it made. False when a job is already running."""
    shared = state.process_state()
    with shared["lock"]:
        job = shared["job"]
        if job is not None and job["status"] == "running":
            return False
        job = {"kind": kind, "status": "running", "progress": 0.0, "message": "starting", "error": None, "run": None,
               "name": name, "started": time.time(), "finished": None, "id": int(time.time() * 1000), "note": ""}
        shared["job"] = job

    def progress(frac: float, msg: str) -> None:
        job["progress"], job["message"] = clamp(frac), plain_step(str(msg))

    def run() -> None:
        try:
            job["run"] = work(progress)
            job["status"] = "done"
        except CrossRecError as exc:
            job["error"], job["status"] = str(exc), "failed"
        except Exception as exc:  # an engine bug: show its one line, keep the trace in the server log
            traceback.print_exc()
            job["error"], job["status"] = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job["finished"] = time.time()

    threading.Thread(target=run, name=f"crossrec-{kind}", daemon=True).start()
    return True


def start_training(*, weights: dict | None, name: str | None, learn: bool) -> bool:
    """Train a run in the background; it is recorded, not made live (the first run of a database is)."""
    store, cfg = state.store(), state.settings()

    def work(progress) -> str | None:
        from crossrec_core import train as train_mod

        run = train_mod.train(store, cfg, weights=weights, name=name or None, learn=learn, project=True,
                              promote=False, progress=progress)
        return run["name"] if isinstance(run, dict) else None

    return start_job("training", name, work)


def start_finetune(*, mode: str, max_minutes: float, name: str | None) -> bool:
    """Fine-tune the item encoder in the background (`crossrec finetune`); the serving run keeps its
    vectors, and the tuned encoder is adopted only when it beats the base on validation."""
    store, cfg = state.store(), state.settings()

    def work(progress) -> str | None:
        from crossrec_core.finetune.run import FinetuneOptions, finetune

        res = finetune(store, cfg, FinetuneOptions(mode=mode, max_minutes=max_minutes, name=name or None),
                       progress=progress)
        training_job()["note"] = ("adopted: the next run uses it. " if res.adopted else "kept the base encoder: ") \
            + res.reason
        return res.name

    return start_job("fine-tuning", name, work)


def progress_text(job: dict) -> str:
    """'Training NAME: <the step, in plain words, in full>' as inert Markdown."""
    what = "Fine-tuning the encoder" if job.get("kind") == "fine-tuning" else "Training"
    return md(f"{what}{' ' + job['name'] if job['name'] else ''}: {job['message']}")


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


def live_panel(draw: Callable[[], None]) -> None:
    """`draw` as a fragment that reruns every second while a job runs, inside its own container.

    The container keeps the panel in one slot of its parent whatever it draws (a bar and a caption while the
    job runs, one message after): drawn straight into the page, the panel's slots changed in number when the
    job ended, and a last timed rerun of the fragment then cleared the element that had moved into its old
    second slot (the Runs table vanished until the page was reopened)."""
    with st.container():
        st.fragment(run_every=poll_every())(draw)()


def poll_every() -> float | None:
    """How often a fragment showing the job should rerun: every second while one runs."""
    return 1.0 if running() else None
