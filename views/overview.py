"""Overview: counts, date range, data-health warnings, category treemap and event funnel."""
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui import charts, serving, state, words
from ui.fmt import fmt_int, fmt_num, fmt_when, run_metric
from ui.text import ht

st.title("Overview")
state.store()  # one line and stop when another process holds the file
stats = state.require_data()

# ---- counts ---------------------------------------------------------------------------------------
cols = st.columns(5)
cols[0].metric("Items", fmt_int(stats["items"]), border=True)
cols[1].metric("Users", fmt_int(stats["users"]), border=True)
cols[2].metric("Events", fmt_int(stats["events"]), border=True)
cols[3].metric("Categories", fmt_int(stats["categories"]), border=True,
               help=f"{stats['top_level_categories']} top-level categories")
run = serving.serving_run()
k = int(((run or {}).get("metrics") or {}).get("k") or state.settings().evaluation.k)
cols[4].metric(f"{words.word('recall', k)}, live run", fmt_num(run_metric(run, "recall")) if run else "no run",
               border=True, help=f"{words.meaning('recall', k)} (held out, all shoppers)")
if stats["first_event"]:
    days = (pd.Timestamp(stats["last_event"]) - pd.Timestamp(stats["first_event"])).days
    st.caption(f"Events from {fmt_when(stats['first_event'])} to {fmt_when(stats['last_event'])} UTC "
               f"({days:,} days) · {stats['top_level_categories']} top-level categories · event mix: "
               + ", ".join(f"{k} {fmt_int(v)}" for k, v in stats["event_types"].items()))
else:
    st.caption("No events yet: load an events file on the Data page.")

# ---- data health ----------------------------------------------------------------------------------
health = state.health()
CHECKS = [
    ("items_without_title", "items have no title", "they rank by behaviour only; add titles and re-ingest"),
    ("items_uncategorised", "items are uncategorised", "they get no category-flow signal; add a category path"),
    ("items_without_events", "items have no events", "only text similarity can recommend them (cold items)"),
    ("users_without_events", "users have no events", "they get text-based or popular lists (cold users)"),
    ("events_rejected_unknown_item", "events were rejected at ingest: unknown item",
     "load the missing items, then the events again"),
    ("events_rejected_unknown_type", "events were rejected at ingest: unknown event type",
     "map them to view, click, cart, purchase or review"),
]
st.subheader("Data health")
issues = [(health.get(k, 0), what, todo) for k, what, todo in CHECKS if health.get(k, 0)]
if not issues:
    st.success("No data-health issues found.", icon=":material/check_circle:")
else:
    hcols = st.columns(min(3, len(issues)))
    for n, (count, what, todo) in enumerate(issues):
        with hcols[n % len(hcols)]:
            st.warning(f"**{fmt_int(count)}** {what}. {todo.capitalize()}.", icon=":material/warning:")

# ---- category treemap and funnel ------------------------------------------------------------------
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Categories")
    size_by = st.segmented_control("Size by", ["items", "events"], default="items", key="overview_size")
    cats = state.categories()
    tree = cats.groupby(["cat_top", "cat_sub"], as_index=False)[["items", "events"]].sum()
    tree["sub_label"] = tree["cat_sub"].map(lambda s: s.split(" > ", 1)[-1])
    for c in ("cat_top", "sub_label"):
        tree[c] = tree[c].map(ht)
    tree = tree[tree[size_by or "items"] > 0]
    # the colours of every page: keyed by the raw top-level names of the whole catalog (not just those shown)
    colors = {ht(k): v for k, v in charts.category_colors(cats["cat_top"]).items()}
    fig = px.treemap(tree, path=[px.Constant("All"), "cat_top", "sub_label"], values=size_by or "items",
                     color="cat_top", color_discrete_map={"(?)": "#e5e7eb", **colors},
                     custom_data=["items", "events"])
    fig.update_traces(hovertemplate="<b>%{label}</b><br>items: %{customdata[0]:,}<br>events: %{customdata[1]:,}"
                                    "<extra></extra>", root_color="#f3f5f9", marker=dict(line=dict(width=1)))
    charts.plot(charts.style(fig, height=460, legend=False), key="treemap")
with right:
    st.subheader("Event funnel")
    f = state.funnel()
    stages = f[f["event_type"].isin(["view", "click", "cart", "purchase"])]
    if stages.empty:
        st.info("No events yet.")
    else:
        measure = st.segmented_control("Count", ["users", "events"], default="users", key="overview_funnel") or "users"
        fig = go.Figure(go.Funnel(
            y=stages["event_type"], x=stages[measure], textinfo="value+percent initial",
            marker=dict(color=[charts.EVENT_COLORS.get(t, "#9ca3af") for t in stages["event_type"]]),
            hovertemplate="%{y}: %{x:,} " + measure + "<extra></extra>",
        ))
        charts.plot(charts.style(fig, height=360, legend=False), key="funnel")
        st.caption("Distinct users (or events) at each step. A user counts at every step they reached.")
