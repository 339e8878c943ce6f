"""An explained recommendation list: the signal contributions as a stacked bar chart beside a table, and
the selected item's evidence (each signal's part and the history items or category flow behind it)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crossrec_core.signals.registry import names as signal_names

from .charts import SIGNAL_LABELS, contributions_chart, plot, signal_legend
from .links import title_link_column, with_item_links
from .text import short

# score before the long "Why" text, so a narrow column shows the figures without scrolling sideways
REC_COLUMNS = ["rank", "title", "score", "reason", "applied_rules", "price", "brand", "category", "item_id"]


RULE_BADGES = (("pinned at", "📌"), ("boosted", "⬆"), ("damped", "⬇"), ("buried", "⬇"))


def rule_badge(applied: str) -> str:
    """The badge that starts the Why cell of an item a rule placed: "📌 pinned at 2 by rule 'Summer tripods'"."""
    applied = str(applied or "").strip()
    if not applied:
        return ""
    mark = next((m for words, m in RULE_BADGES if applied.startswith(words)), "⚑")
    return f"{mark} {applied}"


def pinned(df: pd.DataFrame) -> pd.Series:
    """The rows a pin placed: their place is the rule's, not their score's."""
    return df.get("applied_rules", pd.Series("", index=df.index)).fillna("").str.contains("pinned at")


def rule_view(df: pd.DataFrame) -> pd.DataFrame:
    """The table's rows as a merchandiser reads them: a rule-placed item says so first in its Why cell, and a
    pinned item's score is left blank (its place is the rule's; the model's own low score read as a defect)."""
    out = df.copy()
    if "applied_rules" in out and "reason" in out:
        badges = out["applied_rules"].map(rule_badge)
        out["reason"] = [f"{b} · {r}" if b and str(r or "").strip() else (b or r) for b, r in zip(badges, out["reason"])]
    if "score" in out:
        out["score"] = out["score"].astype(float).mask(pinned(out))
    return out


def rec_table_config(max_score: float = 1.0) -> dict:
    return {
        "rank": st.column_config.NumberColumn("#", width=40),
        "title": title_link_column(width=260),  # a link to the item's page, shown as its title
        "category": st.column_config.TextColumn("Category", width="small"),
        "brand": st.column_config.TextColumn("Brand", width="small"),
        "price": st.column_config.NumberColumn("Price", format="%.2f", width="small"),
        "score": st.column_config.ProgressColumn("Score", format="%.3f", min_value=0.0,
                                              max_value=max(float(max_score), 1e-9), width=90,
                                              help="the model's score; blank for a pinned item, whose place "
                                                   "is its rule's"),
        "reason": st.column_config.TextColumn("Why", width="large",
                                              help="📌 pinned, ⬆ boosted, ⬇ damped or buried by a rule; then "
                                                   "the model's reason"),
        "applied_rules": st.column_config.TextColumn("Rules", width="medium",
                                                     help="the business rules that changed this item's place"),
        "item_id": st.column_config.TextColumn("Item id", width="small"),
    }


def evidence_lines(row: pd.Series) -> list[str]:
    """The explanation of one recommended item as plain lines: each signal's part, largest first, with
    the history items (or the category flow) behind it."""
    total = float(row.get("score", 0.0) or 0.0)
    ev = row.get("evidence") if isinstance(row.get("evidence"), dict) else {}
    parts = sorted(((float(row.get(s, 0.0) or 0.0), s) for s in signal_names()), reverse=True)
    lines = []
    if pinned(pd.DataFrame([row])).iloc[0]:
        lines.append(f"Placed by its rule, not by its score (the model alone scored it {total:+.3f}).")
    for v, s in parts:
        if v <= 0:
            continue
        share = f" ({v / total:.0%} of the score)" if total > 0 else ""  # a share of a score ≤ 0 means nothing
        line = f"{SIGNAL_LABELS[s]}: +{v:.3f}{share}"
        bits = []
        for e in (ev.get(s) or [])[:3]:
            if "from" in e:
                bits.append(f"{short(e['from'], 45)} → {short(e['to'], 45)}, P(B|A) {float(e.get('p', 0)):.0%}, "
                            f"lift {float(e.get('lift', 0)):.1f}")
            else:
                bits.append(short(e.get("title", e.get("item_id")), 50)
                            + (f" ({float(e['share']):.0%})" if e.get("share") is not None else ""))
        lines.append(line + ("\n    " + "\n    ".join(bits) if bits else ""))
    return lines


def show_recommendations(df: pd.DataFrame, key: str, *, empty: str | None = None) -> None:
    """A list as a contributions chart beside a table; the selected row's evidence below the table."""
    if df is None or df.empty:
        st.info(empty or "Nothing to recommend here: every candidate is excluded or already bought.",
                icon=":material/filter_alt_off:")
        return
    signal_legend()
    left, right = st.columns([2, 3], gap="medium")
    with left:
        plot(contributions_chart(df), key=f"{key}_chart", modebar=False, data_csv=False)  # the list is the table
    with right:
        cols = [c for c in REC_COLUMNS if c in df]
        event = st.dataframe(with_item_links(rule_view(df[cols])), hide_index=True,
                             column_config=rec_table_config(df["score"].max()),
                             on_select="rerun", selection_mode="single-row", key=f"{key}_table",
                             height=min(38 + 35 * len(df), 560))
        rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
        pos = rows[0] if rows else 0
        row = df.iloc[pos]
        with st.container(border=True):
            st.caption(f"Why #{int(row['rank'])}" + ("" if rows else " (select a row to see another item)"))
            st.text(short(row["title"], 120))
            if str(row.get("reason") or "").strip():
                st.text(str(row["reason"]))
            if str(row.get("applied_rules") or "").strip():
                st.text(rule_badge(row["applied_rules"]))
            st.text("\n".join(evidence_lines(row)) or "No evidence recorded for this item.")
