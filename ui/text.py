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


def short(text: Any, limit: int = 60) -> str:
    """One line of at most `limit` characters (for labels and lists, not for messages)."""
    s = "" if text is None else " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# Character widths (px, rounded up) of the dashboard's table font, 14 px Source Sans, as Chromium measures them;
# anything else (accents, other scripts, emoji) counts as 16 px. For cutting a table cell's text to its column.
_TABLE_PX = {c: px for px, chars in (
    (3.0, " "), (3.5, "',.:;ij|·"), (4.0, "Il"), (4.5, "!()-[]f{}"), (5.0, "/\\rt"), (6.0, '"*?sz'), (6.5, "cx"),
    (7.0, "0123456789#$+<=>FJLY^_ekvy~"), (7.5, "ESVXag"), (8.0, "ACPRTZ`bdhnopqu"), (8.5, "BK"), (9.0, "&DG"),
    (9.5, "HNOQU"), (10.5, "Mw"), (11.5, "W"), (12.0, "%@m")) for c in chars}
_ELLIPSIS_PX = 14.0


def text_px(text: str) -> float:
    """The width of `text` in the table font (an upper bound, from `_TABLE_PX`)."""
    return sum(_TABLE_PX.get(c, 16.0) for c in text)


def fit_px(text: Any, px: float) -> str:
    """One line that fits `px` pixels of a table cell, cut at a word boundary with "…" (a cell clips text
    mid-letter, and a word cut in the middle reads as a typo)."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else " ".join(str(text).split())
    if text_px(s) <= px:
        return s
    room, used, end = px - _ELLIPSIS_PX, 0.0, 0
    for end, c in enumerate(s):
        used += _TABLE_PX.get(c, 16.0)
        if used > room:
            break
    cut = s[:end]
    if cut.rfind(" ") > end // 2:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;·:") + "…"


def error(message: Any, **kwargs: Any) -> None:
    """st.error for messages that may quote shop data (file names, ids, cell values): shown as plain text."""
    st.error(md(message), **kwargs)


def info(message: Any, **kwargs: Any) -> None:
    st.info(md(message), **kwargs)
