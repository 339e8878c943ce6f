"""CrossRec dashboard: the router. `streamlit run app.py` (or `crossrec app`) with CROSSREC_DB set.

This file only sets the page up, opens the store once for the process (ui_common.store) and draws the
sidebar: which database, its counts, which run is serving. Each page lives in pages/.
"""
import time

import streamlit as st

st.set_page_config(layout="wide", page_title="CrossRec", page_icon=":material/hub:")

import ui_common as ui  # noqa: E402  (after set_page_config)

PAGES = {
    "Explore": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/user.py", title="User", icon=":material/person:"),
        st.Page("pages/category.py", title="Category", icon=":material/category:"),
        st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
    ],
    "Experiment": [
        st.Page("pages/whatif.py", title="What-if", icon=":material/tune:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/model_training:"),
    ],
    "Data": [
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
        st.Page("pages/data.py", title="Data", icon=":material/upload:"),
    ],
}

nav = st.navigation(PAGES)


def sidebar(store) -> None:
    s = ui.stats(store, ui.key())
    with st.sidebar:
        st.caption("Database")
        st.text(ui.db_path())
        st.caption(f"{ui.fmt_int(s['items'])} items · {ui.fmt_int(s['users'])} users · "
                   f"{ui.fmt_int(s['events'])} events")
        run = ui.serving_run()
        st.caption("Serving run")
        if run is None:
            st.text("none yet: train one on Runs")
        else:
            recall = ui.run_metric(run, "recall")
            k = (run.get("metrics") or {}).get("k", ui.settings().k)
            st.text(f"{run['name']}\n{ui.fmt_when(run['created_at'])}\n"
                    f"recall@{k} {ui.fmt_num(recall)}")
        job = ui.training_job()
        if job is not None and job["status"] == "running":
            st.progress(job["progress"], text=ui.md(f"Training: {ui.short(job['message'], 40)}"))


started = time.perf_counter()
try:
    sidebar(ui.store())  # the store stops the run with one line when another process holds the file
    nav.run()
except ui.Halt:  # a page ended early (an empty state); the run itself finishes normally
    pass
with st.sidebar.container(key="render_time"):  # written last: tests and benchmarks wait for it
    st.caption(f"Page ran in {time.perf_counter() - started:.2f} s")
