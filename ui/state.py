"""The process's one read-write store and its cached reads.

This process owns the DuckDB file while it runs (nothing else can write it), and every write goes through
`Store.transaction()`, which bumps `Store.version`. So `key()` = (database path, store version) keys every
cached read: a write made anywhere in the process (a page, the training thread) makes the next read fresh
by itself, with nothing for a page to remember. The first read after a write also drops the stale cache
entries, so they do not pile up.
"""
from __future__ import annotations

import atexit
import threading
from typing import Any

import pandas as pd
import streamlit as st

from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store

from . import flow
from .text import error


def settings() -> Settings:
    """Settings of this process; the database path comes from CROSSREC_DB (or the demo default), the
    encoder from `crossrec encoders use` (the base model unless a tuned one was chosen)."""
    from crossrec_core.finetune.registry import with_chosen_encoder

    return with_chosen_encoder(Settings())


def db_path() -> str:
    return str(settings().db_path)


@st.cache_resource(show_spinner=False)
def _process_state(path: str) -> dict:
    """Per database, shared by every session of this process: the training job and the last store
    version whose cache entries are kept."""
    return {"lock": threading.Lock(), "job": None, "version": 0}


def process_state() -> dict:
    return _process_state(db_path())


@st.cache_resource(show_spinner="Opening the database…", on_release=Store.close)
def _open_store(path: str) -> Store:
    return Store(path)


# Stopping the dashboard releases every cached resource, which closes the store (Streamlit itself
# releases nothing at shutdown): the file is let go cleanly and no DuckDB connection outlives the process.
atexit.register(st.cache_resource.clear)


def store() -> Store:
    """The process's one read-write Store. A lock held by another process stops the page with one line."""
    try:
        return _open_store(db_path())
    except CrossRecError as exc:  # DatabaseLockedError included: one line, no traceback
        error(exc, icon=":material/lock:")
        flow.stop()


def key() -> tuple[str, int]:
    """The cache key of everything read from the store: changes with every committed write."""
    version = store().version
    state = process_state()
    if state["version"] != version:  # entries keyed by an older version can never be read again
        with state["lock"]:
            state["version"] = version
        st.cache_data.clear()
    return (db_path(), version)


@st.cache_data(show_spinner=False, max_entries=512)
def _read(_store: Store, key: tuple, method: str, *args: Any) -> Any:
    return getattr(_store, method)(*args)


def read(method: str, *args: Any) -> Any:
    """`store().<method>(*args)`, cached until the next write."""
    return _read(store(), key(), method, *args)


def stats() -> dict:
    return read("stats")


def health() -> dict:
    return read("health")


def categories() -> pd.DataFrame:
    return read("categories")


def funnel() -> pd.DataFrame:
    return read("funnel")


def user_summary() -> pd.DataFrame:
    return read("user_summary")


def user_events(user_id: str) -> pd.DataFrame:
    return read("user_events", user_id)


def user(user_id: str) -> dict | None:
    return read("user", user_id)


def runs() -> pd.DataFrame:
    return read("runs")


def scenarios() -> pd.DataFrame:
    return read("scenarios")


def fingerprint() -> str:
    """Changes when items or events change (not with runs, scenarios or maps): keys the loaded model."""
    return read("fingerprint")


def category_options(cats: pd.DataFrame, levels: str = "both") -> list[str]:
    """Top-level names then level-2 paths (each once), ordered by events."""
    top = cats.groupby("cat_top")["events"].sum().sort_values(ascending=False).index.tolist()
    if levels == "top":
        return top
    sub = cats.groupby("cat_sub")["events"].sum().sort_values(ascending=False).index.tolist()
    return top + [s for s in sub if s not in set(top)]


def require_data() -> dict:
    """Stats of the store, or an empty state that says what to do, and stop."""
    s = stats()
    if s["items"] == 0:
        flow.no_data()
        flow.stop()
    return s
