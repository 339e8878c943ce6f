"""Shop text (titles, brands, descriptions, profile text, reasons, file names, cell values) is user-supplied:
it goes through `md()` before any Markdown, through `ht()` before any Plotly label, and otherwise into
st.dataframe / st.text, which render text as text."""
from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd
import streamlit as st

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def md(text: Any) -> str:
    """Shop text made inert for Markdown (no links, images, colours, LaTeX, HTML), on one line."""
    s = "" if text is None else str(text)
    s = " ".join(s.split())
    return _MD_SPECIAL.sub(r"\\\1", s)


def ht(text: Any, limit: int | None = None) -> str:
    """Shop text made inert for Plotly labels and hovers (Plotly reads a subset of HTML: tags and a few
    entities). Only & < > are escaped: Plotly shows `&quot;` literally, and a quote outside a tag is inert."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    if limit and len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False)


def short(text: Any, limit: int = 60, at_word: bool = False) -> str:
    """One line of at most `limit` characters (for labels and lists, not for messages); `at_word` cuts at a word
    boundary (a word cut in the middle reads as a typo in a table cell)."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else " ".join(str(text).split())
    if len(s) <= limit:
        return s
    cut = s[: limit - 1]
    if at_word and cut.rfind(" ") > limit // 2:
        cut = cut[: cut.rfind(" ")].rstrip(" ,;·:")
    return cut + "…"


def error(message: Any, **kwargs: Any) -> None:
    """st.error for messages that may quote shop data (file names, ids, cell values): shown as plain text."""
    st.error(md(message), **kwargs)


def info(message: Any, **kwargs: Any) -> None:
    st.info(md(message), **kwargs)
