"""Shared helpers of the CrossRec dashboard: the one store, the serving recommender, cached queries,
background training, formatting and chart styling. Pages import this module and crossrec_core; they
never write SQL and never compute scores.

Caching. This process owns the DuckDB file while it runs (nothing else can write it), so a process-wide
*generation* counter, bumped after every write made through the app (ingest, train, serving change),
is enough to key every cached query: `key()` = (db path, generation). Recommendation caches add the
serving run's name.

Safety. Shop text (titles, brands, descriptions, profile text, reasons) is user-supplied: it goes
through `md()` before any Markdown, through `ht()` before any Plotly label, and otherwise into
st.dataframe / st.text, which render text as text.
"""
from __future__ import annotations

import html
import re
import threading
import time
import traceback
from typing import Any, Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.config import CONTRIBUTIONS, SIGNALS, Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.signals import registry

SIGNAL_LABELS = {s: registry.label(s) for s in registry.names()}
CONTRIBUTION_LABELS = {s: registry.label(s) for s in registry.contributions()}
SIGNAL_COLORS = {s: registry.color(s) for s in registry.contributions()}  # colours from the signal registry
EVENT_COLORS = {"view": "#93c5fd", "click": "#60a5fa", "cart": "#f59e0b", "purchase": "#dc2626", "review": "#7c3aed"}
MODE_LABELS = {"all": "All categories", "cross": "New categories only", "target": "One target category"}
_PALETTE = [
    "#2563eb", "#dc2626", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ca8a04",
    "#4f46e5", "#0d9488", "#9333ea", "#e11d48", "#0284c7", "#a16207", "#15803d", "#be123c", "#6d28d9",
    "#b45309", "#0369a1", "#4d7c0f", "#c026d3", "#475569", "#f97316",
]


# ---- the first run of a fresh server ------------------------------------------------------------


def _leave_pages_directory_mode() -> None:
    """Streamlit treats an app with a `pages/` folder as a v1 multipage app until `st.navigation` has run
    in the process (AppTest even resets that on every run): a fresh server whose first visitor opens /user
    directly would run pages/user.py bare, without app.py's router and sidebar. When a page finds itself
    run that way, switch v1 off and rerun: the rerun goes through app.py's st.navigation to the same page."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a Streamlit without v1 multipage apps
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        PagesManager.uses_pages_directory = False
        st.rerun()


def start_page(title: str) -> None:
    """First call of every page: make sure it runs inside app.py's router, then its title."""
    _leave_pages_directory_mode()
    st.title(title)


# ---- ending a page early --------------------------------------------------------------------------


class Halt(Exception):
    """Raised by `stop()`; app.py catches it so the page ends but the run still finishes normally."""


def stop():
    """End the current page here, like st.stop(), but let app.py finish the run (its footer marks the end
    of every run for tests and benchmarks; st.stop() would also stop app.py)."""
    raise Halt()


# ---- settings and process-wide state ------------------------------------------------------------


def settings() -> Settings:
    """Settings of this process; the database path comes from CROSSREC_DB (or the demo default), the
    encoder from `crossrec encoders use` (the base model unless a tuned one was chosen)."""
    from crossrec_core.finetune.registry import with_chosen_encoder

    return with_chosen_encoder(Settings())


def db_path() -> str:
    return str(settings().db_path)


@st.cache_resource(show_spinner=False)
def _process_state(path: str) -> dict:
    """Per database, shared by every session of this process: data generation and the training job."""
    return {"gen": 0, "lock": threading.Lock(), "job": None}


def process_state() -> dict:
    return _process_state(db_path())


def generation() -> int:
    return process_state()["gen"]


def bump() -> None:
    """Call after the app wrote to the store: every cached query and list is stale from now on."""
    state = process_state()
    with state["lock"]:
        state["gen"] += 1
    st.cache_data.clear()


def key() -> tuple[str, int]:
    """The cache key of everything read from the store."""
    return (db_path(), generation())


# ---- the store ------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Opening the database…")
def _open_store(path: str):
    from crossrec_core.store import Store

    return Store(path)


def store():
    """The process's one read-write Store. A lock held by another process stops the page with one line."""
    try:
        return _open_store(db_path())
    except CrossRecError as exc:  # DatabaseLockedError included: one line, no traceback
        error(exc, icon=":material/lock:")
        stop()


@st.cache_data(show_spinner=False, max_entries=16)
def stats(_store, key: tuple) -> dict:
    return _store.stats()


@st.cache_data(show_spinner=False, max_entries=16)
def health(_store, key: tuple) -> dict:
    return _store.health()


@st.cache_data(show_spinner=False, max_entries=16)
def categories(_store, key: tuple) -> pd.DataFrame:
    return _store.categories()


@st.cache_data(show_spinner=False, max_entries=16)
def funnel(_store, key: tuple) -> pd.DataFrame:
    return _store.funnel()


@st.cache_data(show_spinner=False, max_entries=16)
def user_summary(_store, key: tuple) -> pd.DataFrame:
    return _store.user_summary()


@st.cache_data(show_spinner=False, max_entries=256)
def user_events(_store, key: tuple, user_id: str) -> pd.DataFrame:
    return _store.user_events(user_id)


@st.cache_data(show_spinner=False, max_entries=256)
def user(_store, key: tuple, user_id: str) -> dict | None:
    return _store.user(user_id)


@st.cache_data(show_spinner=False, max_entries=16)
def runs(_store, key: tuple) -> pd.DataFrame:
    return _store.runs()


@st.cache_data(show_spinner=False, max_entries=16)
def scenarios(_store, key: tuple) -> pd.DataFrame:
    return _store.scenarios()


@st.cache_data(show_spinner=False, max_entries=16)
def fingerprint(_store, key: tuple) -> str:
    return _store.fingerprint()


def category_options(cats: pd.DataFrame, levels: str = "both") -> list[str]:
    """Top-level names then level-2 paths (each once), ordered by events."""
    top = cats.groupby("cat_top")["events"].sum().sort_values(ascending=False).index.tolist()
    if levels == "top":
        return top
    sub = cats.groupby("cat_sub")["events"].sum().sort_values(ascending=False).index.tolist()
    return top + [s for s in sub if s not in set(top)]


# ---- the serving recommender ------------------------------------------------------------------------


def serving_run() -> dict | None:
    df = runs(store(), key())
    if df.empty or not df["serving"].any():
        return None
    return df[df["serving"]].iloc[0].to_dict()


@st.cache_resource(show_spinner="Loading the serving model…", max_entries=3)
def _load_recommender(path: str, run_name: str, _store):
    from crossrec_core.train import load_run

    rec = load_run(_store, run_name)
    # A model saved by another version of the code can load and then fail on first use: find out now,
    # and say what to do, instead of failing on every page.
    probe = _store.user_summary()
    probe = probe[probe["events"] > 0]["user_id"].head(1).tolist()
    if probe:
        try:
            rec.recommend(probe[0], k=3, explain=True)
        except CrossRecError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CrossRecError(f"the model of run '{run_name}' does not work with this version of CrossRec "
                                f"({type(exc).__name__}: {exc}); retrain on the Runs page") from exc
    return rec


def recommender():
    """The serving run's fitted model (None when no run yet or its model cannot be loaded)."""
    run = serving_run()
    if run is None:
        return None
    try:
        return _load_recommender(db_path(), run["name"], store())
    except ImportError:
        st.warning("The training module is not installed in this build.")
        return None
    except CrossRecError as exc:
        error(exc)
        return None


def clear_recommender() -> None:
    _load_recommender.clear()


def rec_key() -> tuple:
    run = serving_run()
    return (*key(), run["name"] if run else None)


def require_data() -> dict:
    """Stats of the store, or an empty state that says what to do, and stop."""
    s = stats(store(), key())
    if s["items"] == 0:
        no_data()
        stop()
    return s


def require_recommender():
    rec = recommender()
    if rec is None:
        if serving_run() is None:
            no_run()
        stop()
    return rec


def no_data() -> None:
    st.info("No data yet: load items and events on the **Data** page, or build the demo shop with "
            "`crossrec demo`.", icon=":material/database:")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/upload:")


def no_run() -> None:
    st.info("No run yet: train one on the **Runs** page (or `crossrec train`).", icon=":material/model_training:")
    st.page_link("pages/runs.py", label="Go to Runs", icon=":material/model_training:")


# ---- cached recommendation lists (keyed by run name + data generation) ---------------------------------


@st.cache_data(show_spinner=False, max_entries=512)
def recommend(_rec, rkey: tuple, user_id: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    return _rec.recommend(user_id, k=k, mode=mode, category=category, explain=True)


@st.cache_data(show_spinner=False, max_entries=128)
def recommend_profile(_rec, rkey: tuple, text: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    return _rec.recommend_for_profile(text, k=k, mode=mode, category=category, explain=True)


@st.cache_data(show_spinner=False, max_entries=128)
def recommend_items(_rec, rkey: tuple, item_ids: tuple, k: int, mode: str, category: str | None) -> pd.DataFrame:
    return _rec.recommend_for_items(list(item_ids), k=k, mode=mode, category=category, explain=True)


@st.cache_data(show_spinner=False, max_entries=128)
def recommend_query(_rec, rkey: tuple, text: str, k: int, mode: str, category: str | None) -> pd.DataFrame:
    return _rec.recommend_for_query(text, k=k, mode=mode, category=category, explain=True)


def run_metric(run: dict | None, metric: str = "recall", slice_: str = "all", model: str = "crossrec") -> float | None:
    try:
        value = run["metrics"]["slices"][slice_][model][metric]
    except (KeyError, TypeError):
        return None
    return None if value is None else float(value)


def fmt_interval(metrics: dict | None, metric: str = "recall") -> str:
    """'+0.0040 [−0.0010, +0.0090] vs ease (within noise)' from a run's metrics, or '' without one."""
    iv = ((metrics or {}).get("intervals") or {}).get(metric) or {}
    if not iv:
        return ""
    verdict = "above" if iv["low"] > 0 else "below" if iv["high"] < 0 else "within noise"
    return f"{iv['diff']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}] vs {iv['best']} ({verdict})"


# ---- background training (in this process: it owns the file) ---------------------------------------------


def training_job() -> dict | None:
    return process_state()["job"]


def start_training(*, weights: dict | None, name: str | None, learn: bool) -> bool:
    """Start `train.train` in a thread; False when one is already running."""
    state = process_state()
    with state["lock"]:
        job = state["job"]
        if job is not None and job["status"] == "running":
            return False
        job = {"status": "running", "progress": 0.0, "message": "starting", "error": None, "run": None,
               "name": name, "started": time.time(), "finished": None, "id": int(time.time() * 1000)}
        state["job"] = job
    st_store, cfg = store(), settings()

    def work() -> None:
        from crossrec_core import train as train_mod

        def progress(frac: float, msg: str) -> None:
            job["progress"], job["message"] = max(0.0, min(1.0, float(frac))), str(msg)

        try:
            run = train_mod.train(st_store, cfg, weights=weights, name=name or None, learn=learn,
                                  project=True, progress=progress)
            job["run"] = run["name"] if isinstance(run, dict) else None
            job["status"] = "done"
        except CrossRecError as exc:
            job["error"], job["status"] = str(exc), "failed"
        except Exception as exc:  # an engine bug: show its one line, keep the trace in the server log
            traceback.print_exc()
            job["error"], job["status"] = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job["finished"] = time.time()
            with state["lock"]:
                state["gen"] += 1  # new run row (or none): every cached read is stale

    threading.Thread(target=work, name="crossrec-train", daemon=True).start()
    return True


# ---- formatting ------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def md(text: Any) -> str:
    """Shop text made inert for Markdown (no links, images, colours, LaTeX, HTML), on one line."""
    s = "" if text is None else str(text)
    s = " ".join(s.split())
    return _MD_SPECIAL.sub(r"\\\1", s)


def error(message: Any, **kwargs) -> None:
    """st.error for messages that may quote shop data (file names, ids, cell values): shown as plain text."""
    st.error(md(message), **kwargs)


def info(message: Any, **kwargs) -> None:
    st.info(md(message), **kwargs)


def ht(text: Any, limit: int | None = None) -> str:
    """Shop text made inert for Plotly labels and hovers (Plotly reads a subset of HTML: tags and a few
    entities). Only & < > are escaped: Plotly shows `&quot;` literally, and a quote outside a tag is inert."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    if limit and len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False)


def short(text: Any, limit: int = 60) -> str:
    s = "" if text is None else " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def fmt_int(n: Any) -> str:
    return "–" if n is None or (isinstance(n, float) and pd.isna(n)) else f"{int(n):,}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * float(x):.{digits}f} %"


def fmt_num(x: Any, digits: int = 3) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.{digits}f}"


def fmt_when(ts: Any, with_time: bool = True) -> str:
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):
        return "–"
    t = pd.Timestamp(ts)
    return t.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def fmt_duration(seconds: Any) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    s = float(seconds)
    return f"{s:.1f} s" if s < 90 else f"{s / 60:.1f} min"


def fmt_weights(weights: dict | None) -> str:
    if not weights:
        return "–"
    return " · ".join(f"{k} {float(weights.get(k, 0)):.2f}" for k in SIGNALS if float(weights.get(k, 0) or 0) > 0)


# ---- charts ----------------------------------------------------------------------------------------------


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


def plot(fig: go.Figure, key: str | None = None, modebar: bool = True, **kwargs) -> Any:
    config = {"displaylogo": False, "displayModeBar": "hover" if modebar else False}
    return st.plotly_chart(fig, key=key, config=config, **kwargs)


def contributions_chart(recs: pd.DataFrame, title_limit: int = 30) -> go.Figure:
    """One stacked horizontal bar per recommended item: how much each signal adds to its score.
    The colour key is `signal_legend()` (a Plotly legend would wrap badly in a narrow column)."""
    labels = [f"{int(r)}. {ht(t, title_limit)}" for r, t in zip(recs["rank"], recs["title"])]
    fig = go.Figure()
    for s in CONTRIBUTIONS:
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
        f'</span>{html.escape(CONTRIBUTION_LABELS[s])}</span>' for s in CONTRIBUTIONS)
    st.html(f'<div style="font-size:0.8rem;color:#4b5563;line-height:1.8">{chips}</div>')


def rec_table_config(max_score: float = 1.0) -> dict:
    return {
        "rank": st.column_config.NumberColumn("#", width="small"),
        "title": st.column_config.TextColumn("Item", width="medium"),
        "category": st.column_config.TextColumn("Category", width="small"),
        "brand": st.column_config.TextColumn("Brand", width="small"),
        "price": st.column_config.NumberColumn("Price", format="%.2f", width="small"),
        "score": st.column_config.ProgressColumn("Score", format="%.3f", min_value=0.0,
                                              max_value=max(float(max_score), 1e-9), width="small"),
        "reason": st.column_config.TextColumn("Why", width="large"),
        "item_id": st.column_config.TextColumn("Item id", width="small"),
    }


def with_progress(work: Callable[[Callable[[float, str], None]], Any], start: str = "starting") -> Any:
    """Run core work that reports progress(fraction, message) under a progress bar. Its CrossRecError is
    shown as one line and None returned; the bar disappears either way."""
    bar = st.progress(0.0, text=start)
    try:
        return work(progress_callback(bar))
    except CrossRecError as exc:
        error(exc)
        return None
    finally:
        bar.empty()


def progress_callback(bar) -> Callable[[float, str], None]:
    """A core-style progress(fraction, message) that drives an st.progress element."""

    def update(frac: float, msg: str) -> None:
        bar.progress(max(0.0, min(1.0, float(frac))), text=md(msg))

    return update


# ---- recommendation lists with their explanations -----------------------------------------------------

REC_COLUMNS = ["rank", "title", "reason", "score", "category", "price", "brand", "item_id"]


def evidence_lines(row: pd.Series) -> list[str]:
    """The explanation of one recommended item as plain lines: each signal's part, largest first, with
    the history items (or the category flow) behind it."""
    total = float(row.get("score", 0.0) or 0.0)
    ev = row.get("evidence") if isinstance(row.get("evidence"), dict) else {}
    parts = sorted(((float(row.get(s, 0.0) or 0.0), s) for s in SIGNALS), reverse=True)
    lines = []
    for v, s in parts:
        if v <= 0:
            continue
        share = v / total if total > 0 else 0.0
        line = f"{SIGNAL_LABELS[s]}: +{v:.3f} ({share:.0%} of the score)"
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
        plot(contributions_chart(df), key=f"{key}_chart", modebar=False)
    with right:
        cols = [c for c in REC_COLUMNS if c in df]
        event = st.dataframe(df[cols], hide_index=True, column_config=rec_table_config(df["score"].max()),
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
            st.text("\n".join(evidence_lines(row)) or "No evidence recorded for this item.")
