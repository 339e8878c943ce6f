"""Item titles as links to the Item page (`item?item=ID`), in any table of the dashboard.

The link's text is the title itself: the URL carries it after `#` (never sent to the server, so it
changes nothing) and the column shows that part, so a title stays a title, shown as text.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .url import link

ITEM_PAGE = "views/item.py"


def item_href(item_id: str, title: str | None = None) -> str:
    """The Item page's link for one item (the title after '#', flattened to one line)."""
    tail = " ".join(str(title).split()) if title is not None and not pd.isna(title) else str(item_id)
    return link("item", item=item_id) + "#" + (tail or str(item_id))


def with_item_links(df: pd.DataFrame, title: str = "title", item_id: str = "item_id") -> pd.DataFrame:
    """A copy of `df` whose `title` column holds Item-page links (shown as the titles)."""
    out = df.copy()
    if title in out and item_id in out:
        out[title] = [item_href(i, t) for i, t in zip(out[item_id], out[title])]
    return out


def title_link_column(label: str = "Item", width: str = "large") -> st.column_config.LinkColumn:
    """The column config that shows an Item-page link as the item's title."""
    return st.column_config.LinkColumn(label, display_text=r"#(.*)$", width=width,
                                       help="Open the item's page")
