"""The view in the URL: user, item, category, mode and scenario live in `st.query_params`, so a reload or a
pasted link (`?user=U&mode=cross`) restores what was on screen.

A page calls `restore(name, widget_key)` before it draws the widget that holds the value, and
`publish(name, value)` once it knows what it shows. A URL value is applied to the widget once per session
and value: later reruns keep what the user picked, and a pasted link with another value applies again.
The session remembers the last value a page published, so a value also follows the user to another page
that shows the same thing (the User page's shopper on the Map page).
"""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

import streamlit as st

KEYS = ("user", "item", "category", "mode", "scenario")
_APPLIED = "_url_applied"  # name -> the URL value already put into its widget this session


def param(name: str) -> str | None:
    """The URL's value for `name` (None when absent or empty)."""
    value = st.query_params.get(name)
    return value if value else None


def restore(name: str, widget_key: str, *, valid: Callable[[str], bool] | None = None,
            decode: Callable[[str], Any] | None = None) -> bool:
    """Before the widget `widget_key` is drawn: put the URL's `name` into it when this session has not
    applied that value yet (and `valid` accepts it). True when a value was applied."""
    value = param(name)
    applied = st.session_state.setdefault(_APPLIED, {})
    if value is None or applied.get(name) == value:
        return False
    applied[name] = value
    if valid is not None and not valid(value):
        return False
    st.session_state[widget_key] = decode(value) if decode else value
    return True


def publish(name: str, value: Any) -> None:
    """Write what the page shows into the URL (None or '' removes it)."""
    applied = st.session_state.setdefault(_APPLIED, {})
    text = "" if value is None else str(value)
    if text:
        if st.query_params.get(name) != text:
            st.query_params[name] = text
        applied[name] = text
    else:
        if name in st.query_params:
            del st.query_params[name]
        applied.pop(name, None)


def forget(name: str) -> None:
    """Let the URL's next value for `name` apply again, even the one applied last (a link followed twice)."""
    (st.session_state.get(_APPLIED) or {}).pop(name, None)


def remembered(name: str) -> str | None:
    """The value this session last had for `name` (from the URL or a page), for pages showing the same thing."""
    return (st.session_state.get(_APPLIED) or {}).get(name)


def link(page: str, **params: Any) -> str:
    """A relative link to a page of the app with its view in the query (`item?item=P1`)."""
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v not in (None, ""))
    return page + ("?" + query if query else "")
