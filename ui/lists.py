"""An explained recommendation list: a table across the page (title, score and Why in sight at 1280 px), then
the selected item's evidence (each signal's part and the history items or category flow behind it) beside
the signal contributions as a stacked bar chart."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crossrec_core.signals.registry import names as signal_names

from .charts import SIGNAL_LABELS, contributions_chart, plot, signal_legend
from .links import title_column, titles
from .text import fit_px, short

# title, score and Why first, so they are in sight without scrolling sideways; the rest after them
REC_COLUMNS = ["rank", "title", "score", "reason", "price", "brand", "category", "applied_rules", "item_id"]
# Pixel widths of the first four columns: with the row-selection column (34 px) they fit the table's width at a
# 1280 px wide window (820 px), the narrowest the dashboard is checked at; the text in them is shortened to fit
# (the selected row's full title and reason are in the "Why #n" box below the table).
WIDTHS = {"rank": 36, "title": 260, "score": 80, "reason": 400}
# the room for text in those cells: a title is a button (its text and three 8 px paddings), Why is text (two);
# tests/e2e/test_issue24.py measures the shown cells in Chromium
TITLE_PX, WHY_PX = WIDTHS["title"] - 24, WIDTHS["reason"] - 16


RULE_BADGES = (("pinned at", "📌"), ("boosted", "⬆"), ("damped", "⬇"), ("buried", "⬇"))


def rule_mark(applied: str) -> str:
    """The mark of an item a rule placed ("📌" for a pin), "" for one no rule touched."""
    applied = str(applied or "").strip()
    return next((m for words, m in RULE_BADGES if applied.startswith(words)), "⚑") if applied else ""


def rule_badge(applied: str) -> str:
    """The badge that starts the Why cell of an item a rule placed: "📌 pinned at 2 by rule 'Summer tripods'"."""
    applied = str(applied or "").strip()
    return f"{rule_mark(applied)} {applied}" if applied else ""


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


def list_view(df: pd.DataFrame) -> pd.DataFrame:
    """`rule_view` shortened to the table's widths: the title starts with the rule's mark (📌 ⬆ ⬇), and title
    and Why are cut at a word with "…" rather than clipped by the cell."""
    out = titles(rule_view(df))
    if "title" in out:
        marks = out.get("applied_rules", pd.Series("", index=out.index)).map(rule_mark)
        out["title"] = [fit_px(f"{m} {t}" if m else t, TITLE_PX) for m, t in zip(marks, out["title"])]
    if "reason" in out:
        out["reason"] = out["reason"].map(lambda r: fit_px(r, WHY_PX))
    return out


def rec_table_config(key: str, item_ids: pd.Series, max_score: float = 1.0) -> dict:
    return {
        "rank": st.column_config.NumberColumn("#", width=WIDTHS["rank"]),
        "title": title_column(key, item_ids, width=WIDTHS["title"]),  # opens the item's page
        "category": st.column_config.TextColumn("Category", width="small"),
        "brand": st.column_config.TextColumn("Brand", width="small"),
        "price": st.column_config.NumberColumn("Price", format="%.2f", width="small"),
        "score": st.column_config.ProgressColumn("Score", format="%.3f", min_value=0.0,
                                              max_value=max(float(max_score), 1e-9), width=WIDTHS["score"],
                                              help="the model's score; blank for a pinned item, whose place "
                                                   "is its rule's"),
        "reason": st.column_config.TextColumn("Why", width=WIDTHS["reason"],
                                              help="📌 pinned, ⬆ boosted, ⬇ damped or buried by a rule; then "
                                                   "the model's reason (select the row for all of it)"),
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
    """A list as a table across the page (title, score and Why in sight), then the selected row's evidence
    beside the contributions chart."""
    if df is None or df.empty:
        st.info(empty or "Nothing to recommend here: every candidate is excluded or already bought.",
                icon=":material/filter_alt_off:")
        return
    cols = [c for c in REC_COLUMNS if c in df]
    event = st.dataframe(list_view(df[cols]), hide_index=True,
                         column_config=rec_table_config(f"{key}_open", df["item_id"], df["score"].max()),
                         on_select="rerun", selection_mode="single-row", key=f"{key}_table",
                         height=min(38 + 35 * len(df), 560))
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    pos = rows[0] if rows else 0
    row = df.iloc[pos]
    left, right = st.columns([3, 2], gap="medium")
    with left.container(border=True):
        st.caption(f"Why #{int(row['rank'])}" + ("" if rows else " (select a row to see another item)"))
        st.text(str(row["title"]))
        if str(row.get("applied_rules") or "").strip():
            st.text(rule_badge(row["applied_rules"]))
        if str(row.get("reason") or "").strip():
            st.text(str(row["reason"]))
        st.text("\n".join(evidence_lines(row)) or "No evidence recorded for this item.")
    with right:
        signal_legend()
        plot(contributions_chart(df), key=f"{key}_chart", modebar=False, data_csv=False)  # the list is the table
