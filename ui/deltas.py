"""Honest deltas on a page: every metric difference as a row with both values, the change, its 95 %
interval and a verdict ("within noise" when the interval crosses 0), metric names in plain words with their
one-line help (crossrec_core.metric_names)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crossrec_core.metric_names import NOISE, NOISE_HELP, described, help_text, label


def verdict(d: dict) -> str:
    return NOISE if d.get("within_noise") else ("up" if d["diff"] > 0 else "down")


def delta_frame(deltas: dict[str, dict], base: str, other: str, k: int) -> pd.DataFrame:
    """One row per metric: name (plain), base, other, change, 95 % interval, verdict, what it means."""
    rows = [{"metric": label(m, k), base: d["base"], other: d["other"], "change": d["diff"],
             "95 % interval": f"{d['low']:+.4f} to {d['high']:+.4f}", "verdict": verdict(d),
             "what it means": help_text(m, k)} for m, d in deltas.items()]
    return pd.DataFrame(rows, columns=["metric", base, other, "change", "95 % interval", "verdict", "what it means"])


def show_deltas(deltas: dict[str, dict], base: str, other: str, k: int, key: str) -> None:
    """The deltas as metric cards (the headline ones) and a table of all, with the noise explained."""
    if not deltas:
        st.info("No held-out shoppers to measure the difference on.", icon=":material/info:")
        return
    heads = [m for m in ("recall", "ndcg", "cross_recall") if m in deltas]
    for col, m in zip(st.columns(len(heads)), heads):
        d = deltas[m]
        col.metric(label(m, k), f"{d['other']:.4f}", f"{d['diff']:+.4f} ({verdict(d)})",
                   delta_color="off" if d.get("within_noise") else "normal", help=described(m, k), border=True)
    st.dataframe(delta_frame(deltas, base, other, k), hide_index=True, key=key, column_config={
        base: st.column_config.NumberColumn(format="%.4f"), other: st.column_config.NumberColumn(format="%.4f"),
        "change": st.column_config.NumberColumn(format="%+.4f"),
        "verdict": st.column_config.TextColumn(help=f"'{NOISE}': {NOISE_HELP}"),
        "what it means": st.column_config.TextColumn(width="large")})
    st.caption(f"Each change is measured on the same held-out shoppers, with its 95 % interval (paired bootstrap "
               f"over shoppers); '{NOISE}' means {NOISE_HELP}.")
