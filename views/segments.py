"""Segments: named groups of shoppers (an uploaded list of user ids, or a rule such as "bought in X in the
last N days" and/or "never bought in Y"), saved in the database and reused by Export, What-if and Rules
(`crossrec segments`). A rule segment is worked out when it is used, so it follows the data."""
import pandas as pd
import streamlit as st

from crossrec_core import governance, segments
from ui import state
from ui.segments import users_from_upload
from ui.actions import act, show_done
from ui.text import error, md

st.title("Segments")
store = state.store()
state.require_data()


rows = segments.segments_json(store)
if not rows:
    st.info("No segments yet: save one below, then pick it on Export, What-if or Rules.", icon=":material/groups:")
else:
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="segments_table", column_config={
        "name": st.column_config.TextColumn("Segment"), "definition": st.column_config.TextColumn("Who", width="large"),
        "users": st.column_config.NumberColumn("Shoppers now", format="%d")})
    d1, d2, d3 = st.columns([3, 3, 2], vertical_alignment="bottom")
    gone = d1.selectbox("Segment to delete", [r["name"] for r in rows], key="seg_del_pick")
    sure = d2.checkbox(f"Yes, delete segment {md(gone)}", key=f"seg_del_confirm_{gone}")
    if d3.button("Delete segment", disabled=not sure, icon=":material/delete:", key="seg_del"):
        used = [r.name for r in governance.rule_list(store)
                if r.segment == gone]
        if used:
            error(f"segment '{gone}' is used by live rule(s) {', '.join(used)}: remove them first")
        else:
            act(lambda: store.delete_segment(gone), f"Deleted segment '{gone}'.")
show_done()

st.subheader("Save a segment")
name = st.text_input("Segment name", key="seg_name", placeholder="e.g. new camera owners")
how = st.radio("Who", ["By what they bought", "Uploaded list (CSV with a user_id column)"], horizontal=True,
               key="seg_how")
options = state.category_options(state.categories())
if how.startswith("By"):
    c1, c2, c3 = st.columns([3, 1, 3])
    # "bought in" as the saved segment reads it; a cart counts too, and 0 days means any time: both in sight
    bought = c1.selectbox("Bought in", ["(any)", *options], key="seg_bought",
                          help="a purchase or a cart in the category counts")
    days = c2.number_input("in the last N days (0 = any time)", 0, 3650, 0, key="seg_days",
                           help="counted back from the newest event in the data")
    never = c3.selectbox("Never bought in", ["(none)", *options], key="seg_never")
    st.caption("Bought in: a purchase or a cart in the category counts. 0 days = any time.")
    if st.button("Save segment", type="primary", icon=":material/save:", key="seg_save_rule"):
        act(lambda: segments.save_rule_segment(store, name, bought_in=None if bought == "(any)" else bought,
                                               days=int(days) or None,
                                               never_bought_in=None if never == "(none)" else never),
            lambda n: f"Saved segment '{name.strip()}': {n:,} shoppers now.")
else:
    f = st.file_uploader("User list", type=["csv", "parquet", "txt"], key="seg_upload")
    if st.button("Save segment", type="primary", icon=":material/save:", key="seg_save_list", disabled=f is None):
        act(lambda: segments.save_list_segment(store, name, users_from_upload(f.getvalue(), f.name)),
            lambda n: f"Saved segment '{name.strip()}': {n:,} shoppers.")
