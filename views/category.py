"""Category: where a category's buyers go next (flows as a sankey), the bridge items that carry them,
and what the engine recommends to them in other categories."""
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.insights import bridge_items, category_flows, engine_cross_picks, top_of
from crossrec_core.item_view import item_base_rates, rank_by_lift
from ui import charts, flow, serving, state, url
from ui.links import title_column, titles
from ui.text import ht, md

SAMPLE_USERS = 200


@st.cache_data(show_spinner="Reading the flows…", max_entries=64)
def flows(_rec, rkey: tuple, category: str, min_users: int, other_top: bool):
    return category_flows(_rec, category, min_users=min_users, other_top_only=other_top)


@st.cache_data(show_spinner="Finding bridge items…", max_entries=64)
def bridges(_store, key: tuple, category: str, event_types: tuple):
    """Every bridge item with its lift against its share of all shoppers, strongest lift first."""
    items, n_buyers, n_looked = bridge_items(_store, category, event_types=event_types, top=10**9,
                                             seed=state.settings().seed)
    return rank_by_lift(items, item_base_rates(_store, list(event_types))), n_buyers, n_looked


@st.cache_data(show_spinner="Scoring a sample of the category's buyers…", max_entries=64)
def engine_picks(_rec, rkey: tuple, category: str, event_types: tuple, k: int):
    from crossrec_core.insights import sample_ids

    buyers = _rec.store.users_in_category(category, list(event_types))
    sample = sample_ids(buyers, SAMPLE_USERS, state.settings().seed)
    items, cats = engine_cross_picks(_rec, sample, k=k)
    return items, cats, len(buyers), len(sample)


st.title("Category")
store = state.store()
state.require_data()
key = state.key()
cats = state.categories()
options = state.category_options(cats)
counts = cats.groupby("cat_top")["items"].sum().to_dict() | cats.groupby("cat_sub")["items"].sum().to_dict()

c1, c2, c3 = st.columns([3, 3, 2])  # room for both labels of the buyers control
url.restore("category", "cat_pick", valid=options.__contains__)
category = c1.selectbox("Category A", options, key="cat_pick",
                        format_func=lambda c: f"{c}  ({counts.get(c, 0):,} items)")
basis = c2.segmented_control("Buyers are users with a", ["purchase", "cart or purchase"], default="purchase",
                             key="cat_basis") or "purchase"
event_types = ("purchase",) if basis == "purchase" else ("cart", "purchase")
url.publish("category", category)
other_top = c3.toggle("Only other top-level categories", value=True, key="cat_other_top")
colors = charts.category_colors(cats["cat_top"])

rec = serving.recommender()
rkey = serving.rec_key()

# ---- flows ------------------------------------------------------------------------------------------
st.subheader(f"Where buyers of {md(category)} go next")
if rec is None:
    flow.no_run()
else:
    min_users = st.columns([2, 5])[0].slider("Minimum users behind a flow", 1, 50, 5, key="cat_min_users",
                                             help="Flows seen for fewer users are noise; raise this on a big shop.")
    fl = flows(rec, rkey, category, min_users, other_top)
    if fl.empty:
        st.info("No flows out of this category at this threshold: lower the minimum users, or pick a category "
                "with more buyers.")
    else:
        top_n = fl.head(25)
        left_nodes = list(dict.fromkeys(top_n["from"]))
        right_nodes = list(dict.fromkeys(top_n["to"]))
        labels = [ht(n, 40) for n in left_nodes] + [ht(n, 40) for n in right_nodes]
        node_colors = [colors.get(top_of(n), "#6b7280") for n in left_nodes + right_nodes]
        src = [left_nodes.index(f) for f in top_n["from"]]
        dst = [len(left_nodes) + right_nodes.index(t) for t in top_n["to"]]
        fig = go.Figure(go.Sankey(
            arrangement="snap",
            textfont=dict(size=12, color="#111827"),
            node=dict(label=labels, color=node_colors, pad=12, thickness=14,
                      hovertemplate="%{label}<extra></extra>"),
            link=dict(source=src, target=dst, value=top_n["users_both"],
                      color=[colors.get(top_of(t), "#9ca3af") + "55" for t in top_n["to"]],
                      customdata=list(zip(top_n["p"], top_n["lift"], top_n["users_from"])),
                      hovertemplate="%{source.label} → %{target.label}<br>%{value:,} of %{customdata[2]:,} buyers"
                                    "<br>P(B|A) %{customdata[0]:.1%} · lift %{customdata[1]:.1f}<extra></extra>"),
        ))
        left, right = st.columns([1, 1], gap="medium")
        with left:
            charts.plot(charts.style(fig, height=max(320, 24 * len(right_nodes) + 80), legend=False), key="sankey")
            st.caption(f"The {len(top_n)} strongest of {len(fl)} flows. Width: users who bought in A, then in B. "
                       "P(B|A): share of A's buyers who went on to B; lift: P(B|A) against B's base rate.")
        with right:
            order = st.segmented_control("Sort by", ["lift", "users_both"], default="lift", key="cat_sort",
                                         format_func={"lift": "lift", "users_both": "buyers"}.get) or "lift"
            fl = fl.sort_values([order, "lift" if order == "users_both" else "users_both"], ascending=False)
            fl = fl.assign(chance=["below chance" if x < 1 else "" for x in fl["lift"]])
            # B, its lift and the below-chance mark first: a narrow column still shows them without scrolling
            st.dataframe(fl[["to", "lift", "chance", "users_both", "p", "from", "users_from"]], hide_index=True,
                         height=420,
                         column_config={
                             "from": st.column_config.TextColumn("A", width="small"),
                             "to": st.column_config.TextColumn("B", width="small"),
                             "users_from": st.column_config.NumberColumn("A buyers", format="%d", width="small"),
                             "users_both": st.column_config.NumberColumn("then B", format="%d", width="small"),
                             "p": st.column_config.NumberColumn("P(B|A)", format="percent", width="small"),
                             "lift": st.column_config.NumberColumn("Lift", format="%.2f", width="small",
                                                                   help="P(B|A) against B's base rate"),
                             "chance": st.column_config.TextColumn(
                                 "", width="small", help="Lift below 1: A's buyers go to B less often than "
                                                         "shoppers at large")})
            if (fl["lift"] < 1).any():
                st.caption(f"{int((fl['lift'] < 1).sum())} flows are below chance (lift < 1).")

# ---- bridge items -------------------------------------------------------------------------------------
st.subheader("Bridge items")
st.caption("Items in other top-level categories this category's buyers bought *after* their first purchase in "
           "it, ranked by lift: how much more often than shoppers at large (raw share would only find best-sellers). "
           "Items behind fewer than 2 buyers are left out.")
items, n_buyers, n_looked = bridges(store, key, category, event_types)
if items.empty:
    st.info("No buyer of this category bought elsewhere afterwards (or it has no buyers yet).")
else:
    if n_looked < n_buyers:
        st.caption(f"A seeded sample of {n_looked:,} of {n_buyers:,} buyers.")
    st.dataframe(titles(items)[["title", "lift", "category", "users", "share", "item_id"]], hide_index=True,
                 key="cat_bridges", column_config={
        "title": title_column("cat_bridges_open", items["item_id"]),
        "category": st.column_config.TextColumn("Category"),
        "lift": st.column_config.NumberColumn("Lift", format="%.1f", help="Share of A's buyers against its share "
                                                                          "of all shoppers"),
        "users": st.column_config.NumberColumn("Buyers", format="%d"),
        "share": st.column_config.ProgressColumn("Share of A's buyers", format="percent", min_value=0.0,
                                                 max_value=max(float(items["share"].max()), 1e-9)),
        "item_id": st.column_config.TextColumn("Item id", width="small")})

# ---- what the engine recommends elsewhere -------------------------------------------------------------
st.subheader("What the engine recommends to these buyers elsewhere")
if rec is None:
    st.caption("Needs a trained run.")
else:
    picks, by_cat, n_buyers, n_sample = engine_picks(rec, rkey, category, event_types, 10)
    if picks.empty:
        st.info("No buyers to score in this category yet.")
    else:
        st.caption(f"Top-10 lists in *new categories only* mode for {n_sample:,} of {n_buyers:,} buyers (seeded sample).")
        left, right = st.columns([2, 3], gap="large")
        with left:
            by_cat = by_cat.head(12)
            fig = go.Figure(go.Bar(
                x=by_cat["share"], y=by_cat["cat_top"].map(ht), orientation="h",
                marker_color=[colors.get(c, "#6b7280") for c in by_cat["cat_top"]], customdata=by_cat["slots"],
                hovertemplate="%{y}: in %{x:.0%} of lists (%{customdata} slots)<extra></extra>"))
            fig.update_layout(xaxis=dict(tickformat=".0%", title="share of lists with an item from it"),
                              yaxis=dict(autorange="reversed", automargin=True))
            charts.plot(charts.style(fig, height=360, legend=False), key="picks_by_cat")
        with right:
            st.dataframe(picks[["title", "category", "users", "share", "mean_rank"]], hide_index=True, height=360,
                         column_config={
                             "title": st.column_config.TextColumn("Item", width="large"),
                             "category": st.column_config.TextColumn("Category"),
                             "users": st.column_config.NumberColumn("Lists", format="%d"),
                             "share": st.column_config.NumberColumn("Share of lists", format="percent"),
                             "mean_rank": st.column_config.NumberColumn("Mean rank", format="%.1f")})
