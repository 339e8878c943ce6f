"""User: pick a shopper; their history, category profile, lists in each mode with explanations, and
cold start (typed profile text), seed items and search queries as other contexts."""
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.errors import CrossRecError
from crossrec_core.insights import user_affinity, user_lists
from ui import charts, flow, serving, state, url
from ui.fmt import MODE_LABELS, fmt_int, fmt_when
from ui.lists import show_recommendations
from ui.text import error, ht, info, md, short

# SVG draws a few hundred markers faster than a WebGL context costs to open; heavy users get WebGL.
SVG_MAX_EVENTS = 1500

st.title("User")
store = state.store()
state.require_data()
rec = serving.recommender()

# ---- pick a user --------------------------------------------------------------------------------
summary = state.user_summary()
lists = user_lists(summary)
PICKS = [("heavy", "Heavy buyers", lambda r: f"{r.user_id} · {r.purchases} purchases"),
         ("single", "Single-category users", lambda r: f"{r.user_id} · {r.events} events"),
         ("cold", "Cold start (profile text, no events)", lambda r: f"{r.user_id}")]


def clear_picks(keep: str | None = None) -> None:
    """The pickers show the shown user or nothing: a typed id or another list's pick clears them."""
    for name, _, _ in PICKS:
        if f"pick_{name}" != keep:
            st.session_state[f"pick_{name}"] = None


def copy_pick(widget: str) -> None:
    if st.session_state.get(widget):
        st.session_state["user_id_input"] = st.session_state[widget]
        clear_picks(keep=widget)


if url.restore("user", "user_id_input"):  # a pasted link: its user, and no stale pick beside it
    clear_picks()
if "user_id_input" not in st.session_state:
    default = lists["heavy"]["user_id"].iloc[0] if len(lists["heavy"]) else summary["user_id"].iloc[0]
    st.session_state["user_id_input"] = st.session_state.get("crossrec_user") or default

cols = st.columns([2, 2, 2, 2])
uid = cols[0].text_input("User id", key="user_id_input", help="Type any user id, or pick one from the lists",
                         on_change=clear_picks).strip()
for col, (name, label, fmt) in zip(cols[1:], PICKS):
    frame = lists[name]
    labels = {r.user_id: fmt(r) for r in frame.itertuples()}
    col.selectbox(label, list(labels), index=None, format_func=labels.get, key=f"pick_{name}",
                  placeholder=f"{len(frame)} users" if len(frame) else "none", disabled=not len(frame),
                  on_change=copy_pick, args=(f"pick_{name}",))
url.publish("user", uid)
st.session_state["crossrec_user"] = uid

person = state.user(uid) if uid else None
if person is None:
    st.warning(f"No user '{md(uid)}' in the database. Pick one from the lists above." if uid
               else "Type a user id or pick one from the lists above.")
    flow.stop()

events = state.user_events(uid)
row = summary[summary["user_id"] == uid].iloc[0]
m = st.columns(5)
m[0].metric("Events", fmt_int(row["events"]))
m[1].metric("Purchases", fmt_int(row["purchases"]))
m[2].metric("Top-level categories", fmt_int(row["top_categories"]))
m[3].metric("First event", fmt_when(row["first_event"], with_time=False))
m[4].metric("Last event", fmt_when(row["last_event"], with_time=False))
if person.get("profile_text"):
    with st.container(border=True):
        st.caption("Profile text")
        st.text(person["profile_text"])

# ---- history and profile ------------------------------------------------------------------------
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("History")
    if events.empty:
        st.info("No events: a cold-start user. Lists come from the profile text and what is popular.")
    else:
        fig = go.Figure()
        trace = go.Scatter if len(events) <= SVG_MAX_EVENTS else go.Scattergl
        for etype, grp in events.groupby("event_type", sort=False):
            fig.add_trace(trace(
                x=grp["ts"], y=grp["cat_top"].map(ht), mode="markers", name=etype,
                marker=dict(size=10, color=charts.EVENT_COLORS.get(etype, "#6b7280"), opacity=0.8,
                            line=dict(width=0.5, color="white")),
                customdata=list(zip(grp["title"].map(lambda t: ht(t, 80)), grp["category"].map(ht))),
                hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{x|%Y-%m-%d %H:%M}<extra>"
                              + etype + "</extra>"))
        fig.update_yaxes(categoryorder="category descending", title=None)
        charts.plot(charts.style(fig, height=340), key="history")
with right:
    st.subheader("Category profile")
    level = st.segmented_control("Level", ["top", "sub"], default="top", key="aff_level",
                                 format_func={"top": "top level", "sub": "level 2"}.get) or "top"
    aff = user_affinity(store, uid, state.settings(), level=level)
    if aff.empty:
        st.caption("No behaviour yet.")
    else:
        aff = aff.head(12)
        colors = charts.category_colors(state.categories()["cat_top"])
        fig = go.Figure(go.Bar(
            x=aff["share"], y=aff["category"].map(lambda c: ht(c, 40)), orientation="h",
            marker_color=[colors.get(str(c).split(" > ")[0], "#6b7280") for c in aff["category"]],
            customdata=aff["events"], hovertemplate="%{y}: %{x:.0%} of weighted behaviour (%{customdata} events)"
                                                    "<extra></extra>"))
        fig.update_layout(xaxis=dict(tickformat=".0%"), yaxis=dict(autorange="reversed", automargin=True))
        charts.plot(charts.style(fig, height=340, legend=False), key="affinity")
        st.caption("Share of the user's behaviour per category, weighted like the engine: event type × recency.")

# ---- recommendations ----------------------------------------------------------------------------
st.subheader("Recommendations")
if rec is None:
    flow.no_run()
    flow.stop()
rkey = serving.rec_key()
k = st.columns([1, 3])[0].slider("List length (K)", 5, 50, state.settings().evaluation.k, step=5, key="user_k")
url.restore("mode", "user_mode", valid=MODE_LABELS.__contains__, decode=MODE_LABELS.get)
tabs = st.tabs([MODE_LABELS["all"], MODE_LABELS["cross"], MODE_LABELS["target"]], key="user_mode",
               on_change="rerun")
for tab, mode in zip(tabs, ("all", "cross", "target")):
    if tab.open is False:
        continue
    with tab:
        url.publish("mode", mode)
        category = None
        if mode == "target":
            options = state.category_options(state.categories())
            url.restore("category", "user_target", valid=options.__contains__)
            category = st.selectbox("Target category", options, key="user_target")
            url.publish("category", category)
        else:
            url.publish("category", None)
        if mode == "cross":
            st.caption("Only items from top-level categories this user has never touched.")
        try:
            recs = serving.recommend(rec, uid, k, mode, category)
        except CrossRecError as exc:
            error(exc)
            continue
        show_recommendations(recs, f"rec_{mode}", empty={
            "cross": "This user has events in every top-level category: there is no new category to recommend from.",
            "target": "Nothing left to recommend in this category: its items are all bought or excluded.",
        }.get(mode))

# ---- other contexts -----------------------------------------------------------------------------
st.subheader("Other contexts")
cold, seeds, query = st.tabs(["Cold start: typed profile", "What goes with these", "Search query"],
                             key="user_ctx", on_change="rerun")
if cold.open is not False:
    with cold:
        text = st.text_input("Describe a new shopper (lists update as you type)", key="cold_text", live="600ms",
                            placeholder="e.g. keen road cyclist, just moved into a small flat, drinks a lot of coffee")
        if text.strip():
            try:
                with st.spinner("Reading the text…"):
                    show_recommendations(serving.recommend_profile(rec, text.strip(), k, "all", None), "rec_cold")
            except CrossRecError as exc:
                info(exc)
if seeds.open is not False:
    with seeds:
        labels = st.session_state.setdefault("seed_labels", {})
        for r in events.drop_duplicates("item_id").head(30).itertuples():
            labels.setdefault(r.item_id, f"{short(r.title, 60)} · {r.cat_top}")
        found = st.text_input("Find items by title, brand or id", key="seed_search")
        if found.strip():
            for r in store.search_items(found, 30).itertuples():
                labels.setdefault(r.item_id, f"{short(r.title, 60)} · {r.category.split(' > ')[0]}")
        chosen = st.multiselect("Seed items (a cart, an item page)", list(labels), format_func=labels.get,
                                key="seed_items")
        if chosen:
            try:
                show_recommendations(serving.recommend_items(rec, tuple(chosen), k, "all", None), "rec_seed")
            except CrossRecError as exc:
                error(exc)
if query.open is not False:
    with query:
        q = st.text_input("Search query", key="query_text", placeholder="e.g. waterproof jacket for hiking")
        if q.strip():
            try:
                with st.spinner("Reading the query…"):
                    show_recommendations(serving.recommend_query(rec, q.strip(), k, "all", None), "rec_query")
            except CrossRecError as exc:
                info(exc)
