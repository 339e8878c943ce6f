"""Runs: every training run with its weights and held-out metrics; retrain in the background with tweaked
weights; compare two runs side by side; choose which run serves."""
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.config import SIGNALS
from crossrec_core.errors import CrossRecError
from crossrec_core.train import check_run_name
from ui import charts, flow, state, training
from ui.serving import serving_run
from ui.fmt import fmt_duration, fmt_interval, fmt_num, fmt_weights, run_metric
from ui.text import error, ht, md

METRICS = ["recall", "ndcg", "cross_recall", "hit_rate", "mrr", "coverage", "diversity", "novelty"]


@st.cache_data(show_spinner="Comparing the two runs' lists…", max_entries=16)
def compare(_store, key: tuple, a: str, b: str) -> dict:
    from crossrec_core.train import compare_runs

    return compare_runs(_store, a, b, state.settings())


st.title("Runs")
store = state.store()
state.require_data()


# ---- training in the background ----------------------------------------------------------------------
def job_panel() -> None:
    """The training job, every second while it runs (its step in full); when it ends, the page reruns."""
    job = training.training_job()
    training.follow(job)
    if job is None:
        return
    if job["status"] == "running":
        st.progress(job["progress"], text=training.progress_text(job))
        st.caption(f"Running for {time.time() - job['started']:.0f} s in this server process; the other pages stay "
                   "usable and the current run keeps serving until this one is recorded.")
        return
    took = fmt_duration((job["finished"] or time.time()) - job["started"])
    if job["status"] == "done":
        st.success(f"Run {md(job['run'])} finished in {took} and is now serving.", icon=":material/check_circle:")
    else:
        error(f"Training failed: {job['error']}", icon=":material/error:")
        st.caption("Nothing was recorded; the last good run keeps serving.")


running = training.running()
runs = state.runs()
serving = serving_run()

with st.expander("Train a new run", expanded=runs.empty or running, icon=":material/model_training:"):
    with st.form("train_form", border=False):
        c1, c2 = st.columns([2, 3])
        name = c1.text_input("Run name", placeholder="automatic (run-YYYYMMDD-HHMMSS)", key="train_name")
        learn = c2.checkbox("Learn the weights on a validation carve-out (the sliders are then ignored)",
                            value=True, key="train_learn")
        base = (serving or {}).get("weights") or state.settings().weights
        wcols = st.columns(3)
        weights = {s: wcols[n % 3].slider(f"{charts.SIGNAL_LABELS[s]} ({s})", 0.0, 1.0, float(base.get(s, 0.0)), 0.05,
                                          key=f"train_w_{s}") for n, s in enumerate(SIGNALS)}
        submitted = st.form_submit_button("Start training", type="primary", disabled=running,
                                          icon=":material/play_arrow:")
    if submitted:
        try:
            name = check_run_name(name) or ""
        except CrossRecError as exc:
            error(exc)
            name = None
        if name is None:
            pass
        elif name and name in set(runs["name"]):
            st.error(f"A run named '{md(name)}' exists already: choose another name.")
        elif not learn and sum(weights.values()) <= 0:
            st.error("At least one weight must be above 0.")
        elif not training.start_training(weights=None if learn else weights, name=name or None, learn=learn):
            st.warning("A training run is already in progress.")
        else:
            st.rerun()
st.fragment(run_every=training.poll_every())(job_panel)()

# ---- the runs table ----------------------------------------------------------------------------------
if runs.empty:
    flow.no_run()
    flow.stop()
k = (serving or runs.iloc[0].to_dict()).get("metrics", {}).get("k", 20)
table = pd.DataFrame({
    "serving": runs["serving"], "name": runs["name"], "created": runs["created_at"],
    **{f"{m}@{k}": runs.apply(lambda r, m=m: run_metric(r.to_dict(), m), axis=1)
       for m in ("recall", "ndcg", "cross_recall")},
    "vs_best": runs["metrics"].map(fmt_interval),
    "model": runs["metrics"].map(lambda m: {"ranker": "learned ranker", "fusion": "linear fusion"}.get(
        (m or {}).get("model", "fusion"), "")),
    f"cold_items recall@{k}": runs.apply(lambda r: run_metric(r.to_dict(), "recall", "cold_items"), axis=1),
    "encoder": runs["metrics"].map(lambda m: (m or {}).get("encoder") or ""),
    "duration": runs["duration_s"].map(fmt_duration), "kind": runs["kind"],
    "source": runs["metrics"].map(lambda m: (m or {}).get("weights_source", "")),
    "weights": runs["weights"].map(fmt_weights),
})
st.dataframe(table, hide_index=True, column_config={
    "serving": st.column_config.CheckboxColumn("Serving", width="small"),
    "name": st.column_config.TextColumn("Run"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
    "duration": st.column_config.TextColumn("Took", width="small"),
    "kind": st.column_config.TextColumn("Kind", width="small"),
    "source": st.column_config.TextColumn("Weights from"),
    "model": st.column_config.TextColumn("Model", help="what orders the lists: the learned ranker, or the "
                                         "weighted sum of the signals when the ranker did not beat it on validation"),
    "vs_best": st.column_config.TextColumn("Recall vs best baseline", help="crossrec minus the strongest "
                                           "baseline, with its 95% paired-bootstrap interval over shoppers"),
    "weights": st.column_config.TextColumn("Weights", width="large"),
    **{f"{m}@{k}": st.column_config.NumberColumn(format="%.4f", width="small")
       for m in ("recall", "ndcg", "cross_recall", "cold_items recall")},
    "encoder": st.column_config.TextColumn("Encoder", help="item vectors the run used (`crossrec encoders list`)")})
st.caption("Metrics are held-out (time split) for the fused model `crossrec`, slice: all users; cold_items: "
           "positives on items without any training event, which only the text signal can reach.")

with st.expander("Encoders", icon=":material/translate:"):
    from crossrec_core.finetune.registry import list_encoders

    st.dataframe(pd.DataFrame(list_encoders(state.settings())), hide_index=True, column_config={
        "chosen": st.column_config.CheckboxColumn("Chosen", width="small"),
        "val_content_recall": st.column_config.NumberColumn("Validation content R@20", format="%.4f"),
        "val_pair_recall": st.column_config.NumberColumn("Validation pair R@10", format="%.4f")})
    st.caption("`crossrec finetune` tunes the item encoder on the shop's co-purchases; `crossrec encoders use "
               "NAME` (or `base`) chooses one; the next training run uses it.")

servable = runs[runs["artefact_path"].notna()]["name"].tolist()
s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
choice = s1.selectbox("Serving run", servable, index=servable.index(serving["name"]) if serving and
                      serving["name"] in servable else 0, key=f"serve_pick_{serving['name'] if serving else ''}")
if s2.button("Serve this run", disabled=not servable or (serving is not None and choice == serving["name"]),
             icon=":material/published_with_changes:", key="serve_btn"):
    try:
        store.set_serving(choice)
    except CrossRecError as exc:
        error(exc)
    else:
        st.rerun()

# ---- compare two runs --------------------------------------------------------------------------------
st.subheader("Compare two runs")
names = runs["name"].tolist()
if len(names) < 2:
    st.caption("Train a second run to compare.")
    flow.stop()
c1, c2 = st.columns(2)
a = c1.selectbox("Run A", names, index=1, key="cmp_a")
b = c2.selectbox("Run B", names, index=0, key="cmp_b")
if a == b:
    st.caption("Pick two different runs.")
    flow.stop()
try:
    cmp = compare(store, state.key(), a, b)
except CrossRecError as exc:
    error(exc)
    flow.stop()
except Exception as exc:  # noqa: BLE001  e.g. a model saved by an older version of the code
    error(f"These two runs cannot be compared: {type(exc).__name__}: {exc}. A run trained by another version "
             "of CrossRec may need retraining.")
    flow.stop()
m1, m2, m3 = st.columns(3)
n_cmp = cmp["users_compared"]
m1.metric("Lists changed", f"{cmp['lists_changed']:,} of {n_cmp:,} users" if n_cmp else "–",
          f"{cmp['lists_changed'] / n_cmp:.0%}" if n_cmp else None, delta_color="off", delta_arrow="off",
          border=True)
for col, m in ((m2, "recall"), (m3, "cross_recall")):
    va = run_metric({"metrics": {"slices": cmp["metrics"]["a"]}}, m)
    vb = run_metric({"metrics": {"slices": cmp["metrics"]["b"]}}, m)
    col.metric(f"{m}@{k}: B vs A", fmt_num(vb, 4), f"{vb - va:+.4f}" if va is not None and vb is not None else None,
               border=True)

left, right = st.columns([2, 3], gap="large")
with left:
    fig = go.Figure()
    for side, run_name, color in (("a", a, "#94a3b8"), ("b", b, "#2563eb")):
        w = cmp["weights"][side] or {}
        fig.add_bar(x=[charts.SIGNAL_LABELS[s] for s in SIGNALS], y=[float(w.get(s, 0)) for s in SIGNALS],
                    name=ht(run_name), marker_color=color)
    fig.update_layout(barmode="group")
    st.caption("Fusion weights")
    charts.plot(charts.style(fig, height=360), key="cmp_weights")
with right:
    rows = []
    for side in ("a", "b"):
        for slice_, models in (cmp["metrics"][side] or {}).items():
            for m, v in (models.get("crossrec") or {}).items():
                if m in METRICS and v is not None:
                    rows.append((slice_, m, side, float(v)))
    long = pd.DataFrame(rows, columns=["slice", "metric", "side", "value"])
    pick = st.segmented_control("Metric", [m for m in METRICS if m in set(long["metric"])], default="recall",
                                key="cmp_metric") or "recall"
    sel = long[long["metric"] == pick]
    fig = go.Figure()
    for side, run_name, color in (("a", a, "#94a3b8"), ("b", b, "#2563eb")):
        part = sel[sel["side"] == side]
        fig.add_bar(x=part["slice"], y=part["value"], name=ht(run_name), marker_color=color,
                    hovertemplate="%{x}: %{y:.4f}<extra></extra>")
    fig.update_layout(barmode="group")
    st.caption(f"{pick}@{k} per slice (held-out)")
    charts.plot(charts.style(fig, height=360), key="cmp_metrics")
wide = long.pivot_table(index=["slice", "metric"], columns="side", values="value").reset_index()
if {"a", "b"} <= set(wide.columns):
    wide["change"] = wide["b"] - wide["a"]
    wide = wide.rename(columns={"a": f"A: {a}", "b": f"B: {b}"})
with st.expander("Every metric, every slice"):
    st.dataframe(wide, hide_index=True)

with st.expander(f"Run B ({md(b)}) against the baselines"):
    rb = runs[runs["name"] == b].iloc[0].to_dict()
    slices = (rb.get("metrics") or {}).get("slices", {})
    for slice_, models in slices.items():
        st.caption(f"Slice: {slice_}")
        frame = pd.DataFrame(models).T
        st.dataframe(frame[[c for c in METRICS + ["users"] if c in frame]], column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in METRICS})
