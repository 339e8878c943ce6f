"""Saved segments on a page: picking one (Export, What-if, Rules) and reading an uploaded list of user ids."""
from __future__ import annotations

import streamlit as st

from crossrec_core.errors import CrossRecError
from crossrec_core.ingest import read_bytes

from . import state
from .text import error


def users_from_upload(data: bytes, name: str) -> list[str]:
    """The user_id column of an uploaded CSV/Parquet, checked like any input file."""
    table = read_bytes(data, name, "users")
    ids = table.frame["user_id"].dropna().astype(str).str.strip()
    return list(dict.fromkeys(i for i in ids if i))


def saved_names() -> list[str]:
    return state.read("segments")["name"].tolist()


@st.cache_data(show_spinner=False, max_entries=32)
def _resolve(_store, key: tuple, name: str) -> list[str]:
    from crossrec_core.segments import resolve_segment

    return resolve_segment(_store, name)


def segment_users(name: str) -> list[str]:
    """A saved segment's shoppers now (cached until the next write); [] with a one-line error if it fails."""
    try:
        return _resolve(state.store(), state.key(), name)
    except CrossRecError as exc:
        error(exc)
        return []
