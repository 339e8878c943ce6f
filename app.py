"""CrossRec dashboard: the router. `streamlit run app.py` (or `crossrec app`) with CROSSREC_DB set.

This file only sets the page up, opens the store once for the process (ui.state.store), runs the chosen
page from views/ under st.navigation and draws the sidebar: which database, its counts, which run is
serving and how a training job is doing. The sidebar is drawn before the page and again after it when the
page wrote to the store, so counts and the serving run show what the page just did (an ingest, a new
serving run).
"""
import time

import streamlit as st

st.set_page_config(layout="wide", page_title="CrossRec", page_icon=":material/hub:")

from ui import firstrun, flow, links, serving, state, training, words  # noqa: E402  (after set_page_config)
from ui.fmt import fmt_int, fmt_num, fmt_when, run_metric  # noqa: E402

PAGES = {
    "Explore": [
        st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("views/user.py", title="User", icon=":material/person:"),
        st.Page("views/item.py", title="Item", icon=":material/sell:"),
        st.Page("views/category.py", title="Category", icon=":material/category:"),
        st.Page("views/map.py", title="Map", icon=":material/scatter_plot:"),
    ],
    "Experiment": [
        st.Page("views/whatif.py", title="What-if", icon=":material/tune:"),
        st.Page("views/runs.py", title="Runs", icon=":material/model_training:"),
    ],
    "Merchandise": [
        st.Page("views/rules.py", title="Rules", icon=":material/rule:"),
        st.Page("views/segments.py", title="Segments", icon=":material/groups:"),
        st.Page("views/history.py", title="History", icon=":material/history:"),
    ],
    "Data": [
        st.Page("views/export.py", title="Export", icon=":material/download:"),
        st.Page("views/data.py", title="Data", icon=":material/upload:"),
    ],
}


def sidebar() -> None:
    s = state.stats()
    st.caption("Database")
    st.text(state.db_path())
    st.caption(f"{fmt_int(s['items'])} items · {fmt_int(s['users'])} users · {fmt_int(s['events'])} events")
    run = serving.serving_run()
    st.caption("Serving run")
    if run is None:
        st.text("none yet: train one on Runs")
    else:
        recall = run_metric(run, "recall")
        k = (run.get("metrics") or {}).get("k", state.settings().evaluation.k)
        st.text(f"{run['name']}\n{fmt_when(run['created_at'])}\n{words.word('recall', k)} {fmt_num(recall)}",
                help=f"{words.meaning('recall', k)} (held out, all shoppers)")


def training_status() -> None:
    """The training job's progress, every second while it runs; when it ends, the whole page reruns."""
    job = training.training_job()
    training.follow(job)
    if job is not None and job["status"] == "running":
        st.progress(job["progress"], text=training.progress_text(job))


nav = st.navigation(PAGES)
links.follow()  # a title clicked in a table: its Item page, in this tab
started = time.perf_counter()
side = st.sidebar.empty()
try:
    if firstrun.wanted():  # `crossrec app` on a first start: the demo shop is being built in this process
        firstrun.page()
        flow.stop()
    store = state.store()  # stops the run with one line when another process holds the file
    seen = store.version
    with side.container():
        sidebar()
    with st.sidebar:
        training.live_panel(training_status)
    try:
        nav.run()
    except flow.Halt:  # a page ended early (an empty state); the run itself finishes normally
        pass
    if store.version != seen:  # the page wrote (an ingest, a serving choice): the counts follow at once
        with side.container():
            sidebar()
except flow.Halt:
    pass
with st.sidebar.container(key="render_time"):  # written last: tests and benchmarks wait for it
    st.caption(f"Page ran in {time.perf_counter() - started:.2f} s")
