"""Item: find a product by name (typos forgiven), then its buyers, what goes with it, what could stand in
for it, where its buyers go next, its place on the map and every rule that touches it. `?item=ID` opens it."""
import plotly.graph_objects as go
import streamlit as st

from crossrec_core import item_view
from crossrec_core.errors import CrossRecError
from crossrec_core.projection import cached_projection
from ui import charts, flow, serving, state, url
from ui.fmt import fmt_int
from ui.links import title_column, titles
from ui.text import error, ht, md, short


@st.cache_data(show_spinner=False, max_entries=256)
def search(_store, key: tuple, text: str):
    return item_view.search_items(_store, text, 30)


@st.cache_data(show_spinner=False, max_entries=128)
def facts(_store, key: tuple, item_id: str):
    return item_view.buyers(_store, item_id), item_view.next_categories(_store, item_id)


@st.cache_data(show_spinner=False, max_entries=128)
def neighbours(_rec, rkey: tuple, item_id: str, k: int):
    return item_view.goes_with(_rec, item_id, k), item_view.instead_of(_rec, item_id, k)


def neighbour_table(df, score: str, label: str, help_: str, empty: str) -> None:
    """Related items: the title (a link to its page), why, how strongly, and the category."""
    if df.empty:
        st.caption(empty)
        return
    df = df.sort_values(score, ascending=False, kind="stable")  # sorted by the column it shows
    st.dataframe(titles(df)[["title", "reason", score, "category"]], hide_index=True, key=f"item_{score}",
                 column_config={
                     "title": title_column(f"item_{score}_open", df["item_id"], width="medium"),
                     "reason": st.column_config.TextColumn("Why", width="medium"),
                     score: st.column_config.ProgressColumn(label, format="%.2f", min_value=0.0, help=help_,
                                                            max_value=max(float(df[score].max()), 1e-9), width="small"),
                     "category": st.column_config.TextColumn("Category", width="small")})


def open_item(widget: str) -> None:
    if st.session_state.get(widget):
        st.session_state["item_id"] = st.session_state[widget]


st.title("Item")
store = state.store()
state.require_data()
key = state.key()
url.restore("item", "item_id", valid=lambda v: store.item(v) is not None)

found = st.columns([3, 4])
text = found[0].text_input("Find an item by name, brand or id", key="item_search",
                           placeholder="e.g. tripod (a typo is fine)")
if text.strip():
    hits = search(store, key, text.strip())
    if hits.empty:
        found[1].info("No item matches. Try fewer or other words.", icon=":material/search_off:")
    else:
        labels = {r.item_id: f"{short(r.title, 70)} · {str(r.category).split(' > ')[0]} · {r.item_id}"
                  for r in hits.itertuples()}
        found[1].selectbox(f"{len(hits)} matches, best first", list(labels), index=None, format_func=labels.get,
                           key="item_hit", placeholder="pick an item to open it", on_change=open_item,
                           args=("item_hit",))

item_id = st.session_state.get("item_id")
item = store.item(item_id) if item_id else None
url.publish("item", item_id if item else None)
if item is None:
    st.info("Search for an item above, or open one from any list (its title is a link).", icon=":material/search:")
    flow.stop()

# ---- the item ---------------------------------------------------------------------------------------------
st.subheader(md(item["title"]) or md(item_id))
price = item.get("price")
st.caption(" · ".join(md(x) for x in (item.get("category"), item.get("brand"),
                                          None if price is None or price != price else f"{float(price):,.2f}",
                                          f"id {item_id}") if x))
if str(item.get("description") or "").strip():
    with st.expander("Description"):
        st.text(item["description"])

b, nxt = facts(store, key, item_id)
colors = charts.category_colors(state.categories()["cat_top"])
m = st.columns(4)
m[0].metric("Buyers", fmt_int(b["count"]), help="Buyers: distinct shoppers with a purchase of this item, all "
            "time. 'Shoppers' (in Goes with) also counts those who only viewed or carted it in the training period.")
by_type = dict(zip(b["events"]["event_type"], b["events"]["events"]))
m[1].metric("Views", fmt_int(by_type.get("view", 0)))
m[2].metric("Carts", fmt_int(by_type.get("cart", 0)))
m[3].metric("Purchases", fmt_int(by_type.get("purchase", 0)))

left, right = st.columns(2, gap="large")
with left:
    st.markdown("**Buyers per week**")
    if b["trend"].empty:
        st.caption("Nobody bought it yet.")
    else:
        fig = go.Figure(go.Bar(x=b["trend"]["week"], y=b["trend"]["buyers"], marker_color="#3068e8",
                               hovertemplate="week of %{x|%Y-%m-%d}: %{y} buyers<extra></extra>"))
        charts.plot(charts.style(fig, height=260, legend=False), key="item_trend")
with right:
    st.markdown("**What else its buyers bought** (top-level categories)")
    cats = b["categories"]
    if cats.empty:
        st.caption("Its buyers bought nothing else yet.")
    else:
        fig = go.Figure(go.Bar(x=cats["share"], y=cats["cat_top"].map(ht), orientation="h",
                               marker_color=[colors.get(c, "#6b7280") for c in cats["cat_top"]],
                               customdata=cats["buyers"],
                               hovertemplate="%{y}: %{x:.0%} of its buyers (%{customdata})<extra></extra>"))
        fig.update_layout(xaxis=dict(tickformat=".0%"), yaxis=dict(autorange="reversed", automargin=True))
        charts.plot(charts.style(fig, height=260, legend=False), key="item_buyer_cats")

# ---- goes with / instead of ------------------------------------------------------------------------------
rec = serving.recommender()
if rec is None:
    flow.no_run()
else:
    try:
        together, similar = neighbours(rec, serving.rec_key(), item_id, 10)
    except CrossRecError as exc:
        error(exc)
        together = similar = None
    if together is not None:
        left, right = st.columns(2, gap="large")
        with left:
            st.markdown(f"**Goes with** · {charts.SIGNAL_LABELS.get('cooc', 'bought together')}")
            neighbour_table(together, "together", "Strength", "How strongly the same shoppers buy both (shrunk "
                            "cosine of co-purchase)", "No shopper bought it with anything else yet.")
            st.caption("Shoppers: everyone who viewed, carted or bought the item in the training period; "
                       "Buyers (above): those who bought it.")
        with right:
            st.markdown(f"**Instead of** · {charts.SIGNAL_LABELS.get('content', 'similar text')}")
            neighbour_table(similar, "similarity", "Likeness", "Cosine of the two items' text embeddings",
                            "Item texts are not encoded yet: run `crossrec encode`, then retrain.")

# ---- where its buyers go next -----------------------------------------------------------------------------
st.markdown("**Where its buyers go next**")
if nxt.empty:
    st.caption("None of its buyers bought anything after it yet.")
else:
    nxt = nxt.assign(note=["below chance" if x < 1 else "" for x in nxt["lift"]])
    st.dataframe(nxt, hide_index=True, key="item_next", column_config={
        "category": st.column_config.TextColumn("Category", width="medium"),
        "users": st.column_config.NumberColumn("Buyers", format="%d", width="small"),
        "share": st.column_config.NumberColumn("Share of its buyers", format="percent", width="small"),
        "lift": st.column_config.NumberColumn("Lift", format="%.2f", width="small",
                                              help="Share of its buyers against the share of all buyers; "
                                                   "below 1: less often than chance"),
        "note": st.column_config.TextColumn("", width="small")})

# ---- on the map --------------------------------------------------------------------------------------------
st.markdown("**On the map**")
frame = cached_projection(store, rec.model_id_, max_points=state.settings().dashboard.umap_max_points,
                          seed=state.settings().seed) if rec is not None and getattr(rec, "model_id_", None) else None
if frame is None:
    st.caption("The map is not computed yet: open the Map page once.")
    st.page_link("views/map.py", label="Open the Map", icon=":material/scatter_plot:")
else:
    pts = frame.merge(rec.items_[["item_id", "cat_top"]], on="item_id")
    here = pts[pts["item_id"] == item_id]
    fig = go.Figure(go.Scattergl(x=pts["x"], y=pts["y"], mode="markers", hoverinfo="skip", name="other items",
                                 marker=dict(size=4, opacity=0.35,
                                             color=[colors.get(c, "#9ca3af") for c in pts["cat_top"]])))
    if not here.empty:
        fig.add_trace(go.Scattergl(x=here["x"], y=here["y"], mode="markers", name="this item",
                                   marker=dict(size=18, symbol="star", color="#facc15",
                                               line=dict(width=1.5, color="#111827")),
                                   hovertext=[ht(item["title"], 70)], hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    charts.plot(charts.style(fig, height=380), key="item_map")
    if here.empty:
        st.caption("This item is not on the map (no text vector, or outside the map's sample).")

# ---- rules -------------------------------------------------------------------------------------------------
st.markdown("**Rules that touch it**")
touching = item_view.rules_touching(store, item)
if touching.empty:
    st.caption("No live rule names this item, its brand, its category or a price range holding it.")
else:
    st.dataframe(touching, hide_index=True, key="item_rules")
