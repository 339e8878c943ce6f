"""Runs: every training run with its weights and held-out metrics; train in the background (recorded, not
live), fine-tune the item encoder in the background, compare a run with the live one (each difference with
its 95 % interval), then make it live, annotate or delete it."""
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core import governance
from crossrec_core.errors import CrossRecError
from crossrec_core.metric_names import label, model_label, slice_label
from crossrec_core.signals.registry import names as signal_names, weights_for
from crossrec_core.train import check_run_name
from ui import charts, flow, state, training, words
from ui.actions import act, show_done
from ui.deltas import show_deltas
from ui.fmt import (fmt_cross_model, fmt_duration, fmt_interval, fmt_num, fmt_tuning, fmt_versus, fmt_weights,
                    run_metric)
from ui.serving import serving_run
from ui.text import error, ht, md

st.title("Runs")
store = state.store()
state.require_data()


@st.cache_data(show_spinner="Comparing the two runs on the held-out shoppers (both refitted; tens of seconds)…",
               max_entries=8)
def compare(_store, key: tuple, a: str, b: str) -> dict:
    from crossrec_core.runs import compare_runs

    return compare_runs(_store, a, b, state.settings(), deltas=True)


# ---- jobs in the background --------------------------------------------------------------------------
def job_panel() -> None:
    """The job, every second while it runs (its step in plain words); when it ends the sidebar's fragment
    (app.py, the one follower) reruns the whole page."""
    job = training.training_job()
    if job is None:
        return
    if job["status"] == "running":
        st.progress(job["progress"], text=training.progress_text(job))
        st.caption(f"Running for {time.time() - job['started']:.0f} s in this server process; the other pages stay "
                   "usable and the live run keeps serving (with its own encoder) while this runs.")
        return
    took = fmt_duration((job["finished"] or time.time()) - job["started"])
    if job["status"] == "done" and job.get("kind") == "fine-tuning":
        st.success(f"Encoder {md(job['run'])} tuned in {took}: {md(job.get('note', ''))}",
                   icon=":material/check_circle:")
    elif job["status"] == "done" and job["run"] in {(serving_run() or {}).get("name"), *deleted_runs()}:
        return  # made live (its own message says so, next to the button) or deleted since: nothing stale here
    elif job["status"] == "done":
        st.success(f"Run {md(job['run'])} finished in {took} and is recorded. The live run is unchanged: compare "
                   "the two below, then make it live.", icon=":material/check_circle:")
    else:
        error(f"{job.get('kind', 'training').capitalize()} failed: {job['error']}", icon=":material/error:")
        st.caption("Nothing was recorded; the live run and its encoder keep serving.")


def choose_encoder(encoders: list[dict]) -> None:
    """Choose the encoder the next training runs use (`crossrec encoders use`), after a confirmation naming
    both; the message says how to go back (choose the previous one here), and the live run is untouched."""
    from crossrec_core.finetune.registry import use_encoder

    now = next((e["name"] for e in encoders if e["chosen"]), "base")
    e1, e2 = st.columns([2, 3], vertical_alignment="bottom")
    pick = e1.selectbox("Encoder for the next training runs", [e["name"] for e in encoders], key="enc_pick",
                        index=[e["name"] for e in encoders].index(now),
                        format_func=lambda n: f"{n} (the stock text model)" if n == "base" else n)
    sure = e2.checkbox(f"Yes, train the next runs with {md(pick)} instead of {md(now)}", key=f"enc_ok_{pick}",
                       disabled=pick == now)
    if st.button("Use this encoder", key="enc_use", icon=":material/swap_horiz:", disabled=pick == now or not sure):
        act(lambda: use_encoder(state.settings(), pick),
            f"Encoder {pick} is chosen instead of {now}: the next training run uses it; the live run keeps its own "
            f"item vectors. To go back, choose {now} here (or `crossrec encoders use {now}`).", slot="enc")
    show_done("enc")
    if pick == now:
        st.caption(f"{md(now)} is the chosen encoder (`crossrec encoders use NAME` does the same).")


def run_details(run: dict, k: int) -> None:
    """How one run was made and its figures beyond the table's, one line each (they wrap at any width)."""
    m = run.get("metrics") or {}
    lines = [
        ("How lists are ordered", words.MODELS.get(m.get("model", "fusion"), "")),
        ("Weights", fmt_weights(run.get("weights"))),
        ("Weights from", m.get("weights_source", "")),
        ("New-category lists ordered by", fmt_cross_model(m.get("ranker"))),
        ("Signal settings", fmt_tuning(m.get("signal_tuning"))),
        (f"{words.word('recall', k)} vs the best simple method", fmt_interval(m)),
        (f"{slice_label('cold_items')}: {words.word('recall', k)}",
         fmt_num(run_metric(run, "recall", "cold_items"), 4)),
        ("Encoder", m.get("encoder") or "base"),
        ("Took", fmt_duration(run.get("duration_s"))),
        ("Note", run.get("note") or ""),
    ]
    with st.container(border=True, key="run_details"):
        st.markdown("  \n".join(f"**{md(name)}**: {md(value)}" for name, value in lines if value not in (None, "")),
                    help=f"{words.MODEL_HELP}. {slice_label('cold_items')}: {label('recall', k)} on later purchases "
                         "of items nobody had bought before the held-out period (only the text signal can reach them).")


def deleted_runs() -> list[str]:
    return st.session_state.get("runs_deleted", [])


running = training.running()
runs = state.runs()
live = serving_run()

with st.expander("Train a new run", expanded=runs.empty or running, icon=":material/model_training:"):
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    name = c1.text_input("Run name", placeholder="automatic (run-YYYYMMDD-HHMMSS)", key="train_name")
    learn = c2.toggle(words.LEARN, value=True, key="train_learn", help=words.LEARN_HELP)
    base = (live or {}).get("weights") or weights_for(state.settings())
    wcols = st.columns(3)
    weights = {s: wcols[n % 3].slider(charts.SIGNAL_LABELS[s], 0.0, 1.0, float(base.get(s, 0.0)), 0.05,
                                      key=f"train_w_{s}", disabled=learn) for n, s in enumerate(signal_names())}
    if learn:
        st.caption("The sliders are off while the weights are learned.")
    if st.button("Start training", type="primary", disabled=running, icon=":material/play_arrow:", key="train_start"):
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
            st.warning("A job is already in progress.")
        else:
            st.rerun()
    st.caption("A new run is recorded, not made live: compare it with the live run below, then press Make live.")

with st.expander("Fine-tune the item encoder", icon=":material/translate:"):
    from crossrec_core.finetune.registry import list_encoders

    st.caption("Tunes the text model on this shop's co-purchases (`crossrec finetune`). The tuned encoder is kept "
               "only when it beats the base on the validation period; the live run keeps its own item vectors "
               "until a run trained with the new encoder is made live.")
    f1, f2, f3 = st.columns([2, 2, 2], vertical_alignment="bottom")
    ft_mode = f1.selectbox("How", ["head", "lora", "full"], key="ft_mode", format_func={
        "head": "small head on frozen vectors (fast)", "lora": "LoRA on the top layers",
        "full": "whole model (GPU)"}.get)
    ft_minutes = f2.number_input("At most (minutes)", 0.5, 120.0, 5.0, step=0.5, key="ft_minutes")
    ft_name = f3.text_input("Encoder name", placeholder="automatic", key="ft_name")
    if st.button("Start fine-tuning", disabled=running, icon=":material/play_arrow:", key="ft_start"):
        if not training.start_finetune(mode=ft_mode, max_minutes=float(ft_minutes), name=ft_name.strip() or None):
            st.warning("A job is already in progress.")
        else:
            st.rerun()
    encoders = list_encoders(state.settings())
    st.dataframe(pd.DataFrame(encoders), hide_index=True, column_config={
        "chosen": st.column_config.CheckboxColumn("Chosen", width="small"),
        "val_content_recall": st.column_config.NumberColumn(
            "Text alone: found later buys", format="%.4f", help=f"{label('recall', 20)} of the text signal alone on "
            "the validation period (the weeks before the held-out period)"),
        "val_pair_recall": st.column_config.NumberColumn(
            "Found the other item of a pair", format="%.4f", help=f"{label('recall', 10)} over pairs bought together "
            "in the validation period: for one item, how many of its partners the text's 10 nearest items hold")})
    choose_encoder(encoders)
training.live_panel(job_panel)

# ---- the runs table ----------------------------------------------------------------------------------
if runs.empty:
    flow.no_run()
    flow.stop()
k = int((live or runs.iloc[0].to_dict()).get("metrics", {}).get("k", 20))
HEAD = ("recall", "ndcg", "cross_recall")
# What tells runs apart, in pixel widths that fit the table's width at a 1280 px window (820 px), headers whole;
# how each run was made (weights, encoder, how lists are ordered, note…) is under "A run against the live run".
table = pd.DataFrame({
    "serving": runs["serving"], "name": runs["name"], "created": runs["created_at"],
    **{m: runs.apply(lambda r, m=m: run_metric(r.to_dict(), m), axis=1) for m in HEAD},
    "vs_best": runs["metrics"].map(fmt_versus),
})
with st.container(key="runs_table_box"):  # a named box: st.dataframe itself gets no key class
    st.dataframe(table, hide_index=True, key="runs_table", column_config={
        "serving": st.column_config.CheckboxColumn("Live", width=45, help="the run that serves shoppers"),
        "name": st.column_config.TextColumn("Run", width=135),
        "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm", width=120),
        **{m: st.column_config.NumberColumn(words.header(m, k), format="%.4f", width=w, help=words.header_help(m, k))
           for m, w in zip(HEAD, (120, 100, 125))},
        "vs_best": st.column_config.TextColumn("vs simple methods", width=170, help=(
            f"{words.word('recall', k)} ({label('recall', k)}) of the run against the strongest simple method "
            "(best-sellers, bought together, matrix factorisation…): better, worse or "
            f"'{words.NO_DIFFERENCE}' (within noise) when the 95 % interval of the difference (paired bootstrap over "
            "shoppers) crosses 0. The figures are under 'A run against the live run'."))})
st.caption("Figures are measured on the held-out period of a time split, over all shoppers; hover a column "
           "title for what it means.")

# ---- one run against the live run: make live, note, delete -------------------------------------------
st.subheader("A run against the live run")
names = runs["name"].tolist()
live_name = live["name"] if live else None
if len(names) < 2:
    st.caption("Train a second run to compare.")
    flow.stop()
# Every run stays offered (the live one too): after "Make live" the boxes keep showing the run just made live,
# with its message, instead of flipping to the next run. The first pick is the newest run that is not live.
p1, p2 = st.columns(2)
b = p1.selectbox("Run", names, key="cmp_b", index=next((n for n, x in enumerate(names) if x != live_name), 0))
a = p2.selectbox("Against", [n for n in names if n != b], key=f"cmp_a_{b}",
                 index=([n for n in names if n != b].index(live_name) if live_name in names and live_name != b else 0))
row = runs[runs["name"] == b].iloc[0].to_dict()
is_live = b == live_name
run_details(row, k)

act1, act2, act3 = st.columns(3, gap="medium")
with act1.container(border=True):
    st.markdown("**Make live**")
    if is_live:
        st.caption(f"{md(b)} serves shoppers now.")
    instead = "" if is_live else f" instead of {md(live_name or 'nothing')}"  # live already: no "X instead of X"
    sure = st.checkbox(f"Yes, serve shoppers from {md(b)}{instead}",
                       key=f"live_confirm_{b}", disabled=is_live or not row.get("artefact_path"))
    if st.button("Make live", type="primary", disabled=is_live or not sure, icon=":material/published_with_changes:",
                 key="live_btn"):
        act(lambda: governance.promote_run(store, b),
            f"Run {b} is live instead of {live_name or 'nothing'}. Undo it on the History page.", slot="live")
    show_done("live")
with act2.container(border=True):
    st.markdown("**Note**")
    note = st.text_input("Note on this run", value=row.get("note") or "", key=f"note_{b}",
                         label_visibility="collapsed", placeholder="e.g. more weight on category flow")
    if st.button("Save note", key="note_btn", icon=":material/edit_note:", disabled=note == (row.get("note") or "")):
        act(lambda: governance.annotate_run(store, b, note), f"Note saved on {b}.", slot="note")
    show_done("note")
with act3.container(border=True):
    st.markdown("**Delete**")
    if is_live:
        st.caption("The live run cannot be deleted: make another run live first.")
    gone = st.checkbox(f"Yes, delete run {md(b)} and its model", key=f"del_confirm_{b}", disabled=is_live)
    if st.button("Delete run", disabled=is_live or not gone, icon=":material/delete:", key="del_run"):
        st.session_state.setdefault("runs_deleted", []).append(b)
        act(lambda: governance.delete_run(store, b), f"Run {b} deleted.", slot="del")
    show_done("del")

if not st.toggle("Compare on held-out shoppers (refits both runs: tens of seconds)", key=f"cmp_go_{a}_{b}"):
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
n_cmp = cmp["users_compared"]
st.metric("Lists changed", f"{cmp['lists_changed']:,} of {n_cmp:,} shoppers" if n_cmp else "–",
          f"{cmp['lists_changed'] / n_cmp:.0%}" if n_cmp else None, delta_color="off", delta_arrow="off",
          border=True, help="how many of a seeded sample of shoppers get a different top list")
show_deltas(cmp["deltas"], a, b, k, key="cmp_deltas")

left, right = st.columns(2, gap="large")
with left:
    fig = go.Figure()
    for side, run_name, color in (("a", a, "#94a3b8"), ("b", b, "#2563eb")):
        w = cmp["weights"][side] or {}
        fig.add_bar(x=[charts.SIGNAL_LABELS[s] for s in signal_names()], y=[float(w.get(s, 0)) for s in signal_names()],
                    name=ht(run_name), marker_color=color)
    fig.update_layout(barmode="group")
    st.caption("Signal weights")
    charts.plot(charts.style(fig, height=340), key="cmp_weights")
with right:
    slices = (row.get("metrics") or {}).get("slices", {})
    st.caption(f"Run {md(b)} against the baselines, per group of shoppers (held-out)")
    for slice_, models in slices.items():
        frame = pd.DataFrame(models).T
        frame.index = [model_label(i) for i in frame.index]
        cols = [c for c in ("recall", "ndcg", "cross_recall", "hit_rate", "mrr") if c in frame]
        st.text(slice_label(slice_))
        st.dataframe(frame[cols].rename(columns={c: words.word(c, k) for c in cols}), column_config={
            words.word(c, k): st.column_config.NumberColumn(format="%.4f", help=words.meaning(c, k)) for c in cols})
