"""Colours, labels and Plotly styling. The one place for signal colours and labels in the dashboard:
every chart, legend and table takes them from here."""
from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.signals import registry

from .text import ht

__all__ = ["SIGNAL_LABELS", "CONTRIBUTION_LABELS", "SIGNAL_COLORS", "EVENT_COLORS", "category_colors", "style",
           "plot", "figure_table", "table_csv", "contributions_chart", "signal_legend"]

SIGNAL_LABELS = {s: registry.label(s) for s in registry.names()}
CONTRIBUTION_LABELS = {s: registry.label(s) for s in registry.contributions()}
SIGNAL_COLORS = {s: registry.color(s) for s in registry.contributions()}  # from the signal registry
EVENT_COLORS = {"view": "#93c5fd", "click": "#60a5fa", "cart": "#f59e0b", "purchase": "#dc2626", "review": "#7c3aed"}
# Chosen greedily for distance in CIELAB (lightness 30-72, readable on white): any two of the first 15
# differ by ΔE ≥ 32 and of all 24 by ΔE ≥ 24, so no two top-level categories look alike (tests/test_views_item.py).
_PALETTE = [
    "#3068e8", "#12a112", "#cf1717", "#17bccf", "#e8309f", "#cba54d", "#b130e8", "#28598a", "#d7757e", "#288a59",
    "#77288a", "#e87a30", "#8a4f28", "#8a2859", "#84a112", "#1729cf", "#5ea6ed", "#e83068", "#d775d7", "#cf17bc",
    "#a1122e", "#124ba1", "#28778a", "#d79c75",
]


def category_colors(names) -> dict[str, str]:
    """A stable colour per top-level category (sorted names → palette)."""
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(sorted(set(map(str, names))))}


def style(fig: go.Figure, height: int | None = None, legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        margin=dict(l=10, r=10, t=30, b=10),
        font=dict(size=12),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, title_text=""),
        hoverlabel=dict(align="left"),
    )
    if height:
        fig.update_layout(height=height)
    return fig


_TRACE_COLUMNS = ("labels", "parents", "values", "x", "y", "z", "text", "hovertext")


def figure_table(fig: go.Figure) -> pd.DataFrame:
    """The numbers a chart draws, one row per point: the trace's name (`series`) and its point arrays
    (x, y, labels, values, …); a Sankey's links as source, target, value."""
    frames = []
    for n, trace in enumerate(fig.data):
        series = trace.name if trace.name else f"series {n + 1}"
        if trace.type == "sankey":
            names = list(trace.node.label or [])
            link = trace.link
            frames.append(pd.DataFrame({"series": series, "source": [names[i] for i in link.source],
                                        "target": [names[i] for i in link.target], "value": list(link.value)}))
            continue
        cols = {}
        for attr in _TRACE_COLUMNS:
            value = getattr(trace, attr, None) if attr in trace else None
            if value is not None and not isinstance(value, str) and len(value):
                cols[attr] = list(value)
        if cols:
            size = max(map(len, cols.values()))
            cols = {c: v for c, v in cols.items() if len(v) == size}  # a constant-length attribute only
            frames.append(pd.DataFrame({"series": series, **cols}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["series"])


def table_csv(table: pd.DataFrame) -> bytes:
    """A table as CSV that opens cleanly in Excel (BOM, CRLF, formula-like text cells neutralised)."""
    from crossrec_core.export import neutralise

    safe = table.copy()
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col]):
            safe[col] = safe[col].map(neutralise)
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def plot(fig: go.Figure, key: str | None = None, modebar: bool = True, data_csv: bool = True, **kwargs: Any) -> Any:
    """A Plotly chart (PNG from its toolbar) and, with `data_csv`, a button that downloads its numbers as CSV
    (built only when clicked)."""
    config = {"displaylogo": False, "displayModeBar": "hover" if modebar else False}
    event = st.plotly_chart(fig, key=key, config=config, **kwargs)
    if data_csv:
        st.download_button("Chart data (CSV)", data=lambda: table_csv(figure_table(fig)),
                           file_name=f"{key or 'chart'}.csv", mime="text/csv", icon=":material/download:",
                           key=None if key is None else f"{key}_csv", type="tertiary")
    return event


def contributions_chart(recs: pd.DataFrame, title_limit: int = 30) -> go.Figure:
    """One stacked horizontal bar per recommended item: how much each signal adds to its score.
    The colour key is `signal_legend()` (a Plotly legend would wrap badly in a narrow column)."""
    placed = recs["applied_rules"].fillna("").str.contains("pinned at") if "applied_rules" in recs else [False] * len(recs)
    labels = [f"{int(r)}. {'📌 ' if p else ''}{ht(t, title_limit)}" for r, t, p in zip(recs["rank"], recs["title"], placed)]
    fig = go.Figure()
    for s in registry.contributions():
        vals = recs[s].astype(float) if s in recs else pd.Series(0.0, index=recs.index)
        if (vals != 0).any():  # the learned ranker's contributions can be negative: drawn to the left
            fig.add_bar(
                y=labels, x=vals, orientation="h", name=CONTRIBUTION_LABELS[s], marker_color=SIGNAL_COLORS[s],
                hovertemplate=f"<b>%{{y}}</b><br>{CONTRIBUTION_LABELS[s]}: %{{x:+.3f}}<extra></extra>",
            )
    has_base = "base" in recs and (recs["base"] != 0).any()
    style(fig, height=max(200, 24 * len(recs) + 60), legend=False)
    fig.update_layout(barmode="relative", bargap=0.25, margin=dict(t=4), yaxis=dict(autorange="reversed", automargin=True),
                      xaxis=dict(title=dict(text="score = base + sum of contributions (base "
                                            f"{float(recs['base'].iloc[0]):+.3f})" if has_base else
                                            "score = sum of signal contributions", font=dict(size=11))))
    return fig


def signal_legend() -> None:
    """The colour key of the signal charts (static HTML: no shop data in it)."""
    chips = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:14px;white-space:nowrap">'
        f'<span style="width:11px;height:11px;border-radius:2px;background:{SIGNAL_COLORS[s]};margin-right:5px">'
        f'</span>{html.escape(CONTRIBUTION_LABELS[s])}</span>' for s in registry.contributions())
    st.html(f'<div style="font-size:0.8rem;color:#4b5563;line-height:1.8">{chips}</div>')
