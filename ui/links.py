"""Item titles that open the Item page (`item?item=ID`) from any table of the dashboard, in the same tab.

A title cell is a button (Streamlit's ButtonColumn, drawn as plain text): its click records which row's item
to open, and app.py, before the page runs, switches to the Item page with `?item=ID` (`follow()`). The session
and the tab are kept; a LinkColumn always opened a new browser tab.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st

from . import url

ITEM_PAGE = "views/item.py"
_OPEN = "_open_item"  # session key: the item whose title was just clicked, opened by follow()


def _clicked(key: str, item_ids: tuple[str, ...]) -> None:
    click = st.session_state.get(key)
    row = None if click is None else click["row"]
    if row is not None and 0 <= int(row) < len(item_ids):
        st.session_state[_OPEN] = item_ids[int(row)]


def title_column(key: str, item_ids: Sequence[str], label: str = "Item", width: str | int = "large"):
    """The column config of a table's title column: each title opens its item's page in this tab. `item_ids`
    are the table's item ids in row order; `key` names the click (one per table)."""
    return st.column_config.ButtonColumn(label, width=width, type="tertiary", alignment="left",
                                         help="Click a title to open the item's page", key=key,
                                         on_click=_clicked, args=(key, tuple(str(i) for i in item_ids)))


def titles(df: pd.DataFrame, title: str = "title", item_id: str = "item_id") -> pd.DataFrame:
    """A copy of `df` whose title cells are never empty (a button needs a label: the id stands in)."""
    out = df.copy()
    if title in out and item_id in out:
        out[title] = [str(t) if t is not None and not pd.isna(t) and str(t).strip() else str(i)
                      for i, t in zip(out[item_id], out[title])]
    return out


def follow() -> None:
    """In app.py, before the page runs: a title just clicked opens its Item page, in this tab."""
    item = st.session_state.pop(_OPEN, None)
    if item:
        url.forget("item")  # the page applies ?item= again, even the item it showed last
        st.switch_page(ITEM_PAGE, query_params={"item": item})
