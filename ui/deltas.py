"""Honest deltas on a page: every metric difference as a row with both values, the change, its 95 %
interval and a verdict ("no clear difference" when the interval crosses 0, "no change" when the two are
identical), metric names in the shop's words with the technical name in their help (ui/words.py)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .text import md
from .words import NO_CHANGE, NO_DIFFERENCE, NO_DIFFERENCE_HELP, explains, meaning, word
from .words import verdict as _verdict


def verdict(d: dict) -> str:
    return _verdict(d["low"], d["high"], d["diff"])


def unchanged(deltas: dict[str, dict]) -> bool:
    """Every figure identical on both sides (e.g. retrained on unchanged data)."""
    return bool(deltas) and all(d["diff"] == 0 and d["base"] == d["other"] for d in deltas.values())


def delta_frame(deltas: dict[str, dict], base: str, other: str, k: int) -> pd.DataFrame:
    """One row per metric: name (plain), base, other, change, 95 % interval, verdict, what it means (in the
    shop's words; the technical names are in the metric column's help)."""
    rows = [{"metric": word(m, k), base: d["base"], other: d["other"], "change": d["diff"],
             "95 % interval": f"{d['low']:+.4f} to {d['high']:+.4f}", "verdict": verdict(d),
             "what it means": explains(m, k)} for m, d in deltas.items()]
    return pd.DataFrame(rows, columns=["metric", base, other, "change", "95 % interval", "verdict", "what it means"])


def show_deltas(deltas: dict[str, dict], base: str, other: str, k: int, key: str) -> None:
    """The deltas as metric cards (the headline ones) and a table of all, with the noise explained."""
    if not deltas:
        st.info("No held-out shoppers to measure the difference on.", icon=":material/info:")
        return
    if unchanged(deltas):
        st.info(f"{NO_CHANGE.capitalize()}: {md(base)} and {md(other)} give identical figures on the same held-out "
                "shoppers, so these figures give no reason to prefer either.", icon=":material/drag_handle:")
    heads = [m for m in ("recall", "ndcg", "cross_recall") if m in deltas]
    for col, m in zip(st.columns(len(heads)), heads):
        d = deltas[m]
        col.metric(word(m, k), f"{d['other']:.4f}", f"{d['diff']:+.4f} ({verdict(d)})",
                   delta_color="off" if verdict(d) in (NO_CHANGE, NO_DIFFERENCE) else "normal", help=meaning(m, k), border=True)
    st.dataframe(delta_frame(deltas, base, other, k), hide_index=True, key=key, column_config={
        base: st.column_config.NumberColumn(format="%.4f"), other: st.column_config.NumberColumn(format="%.4f"),
        "change": st.column_config.NumberColumn(format="%+.4f"),
        "metric": st.column_config.TextColumn(help="; ".join(meaning(m, k) for m in deltas)),  # technical names
        "verdict": st.column_config.TextColumn(help=f"'{NO_DIFFERENCE}': {NO_DIFFERENCE_HELP}"),
        "what it means": st.column_config.TextColumn(width="large")})
    st.caption(f"Each change is measured on the same held-out shoppers, with its 95 % interval (paired bootstrap "
               f"over shoppers); '{NO_DIFFERENCE}' means {NO_DIFFERENCE_HELP}.")
