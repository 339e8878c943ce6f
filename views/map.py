"""Map: the item embeddings in 2-D (UMAP), coloured by top-level category, with one user's history and
recommendations drawn on top. The map is computed once per catalog state and stored."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core.errors import CrossRecError
from crossrec_core.governance import replace_rules, rule_list
from crossrec_core.item_view import buyers_of, selection_rules
from crossrec_core.map_encoders import encoder_names, projection_for_encoder, settings_for_encoder
from crossrec_core.segments import save_list_segment
from crossrec_core.projection import cached_projection, item_projection, projection_note, stratified_sample
from ui import charts, flow, serving, state, url
from ui.fmt import MODE_LABELS
from ui.links import title_column, titles
from ui.progress import progress_callback
from ui.text import error, ht, md


@st.cache_resource(show_spinner=False, max_entries=4)
def map_layer(_rec, mkey: tuple, max_points: int, draw_points: int, model_id: str):
    """(projection, points with escaped hover text, layers) for this catalog state, or None when the map has
    to be computed. Each layer ("full": every point, "light": a stratified sample of `draw_points`) is one
    Scattergl spec per top-level category with the item ids behind its points. Built once: with 50k points,
    building the traces is most of a rerun. Shared by every session and never mutated (traces are copied
    per figure). `model_id`: the encoder whose vectors are mapped (the serving run's, or another one's)."""
    frame = cached_projection(_rec.store, model_id, max_points=max_points, seed=state.settings().seed)
    if frame is None:
        return None
    items = _rec.items_[["item_id", "title", "category", "cat_top"]]
    pts = frame.merge(items, on="item_id", how="inner")
    # Hover text is the one heavy part of the figure sent on every rerun: the title and the category path in
    # words (top level included: the trace name beside it gets cut); ids stay on the server for selections.
    pts["hover"] = [f"{ht(t, 70)}<br>{ht(c, 70)}" for t, c in zip(pts["title"].astype(str), pts["category"].astype(str))]
    colors = charts.category_colors(items["cat_top"])

    def layer(rows: pd.DataFrame) -> tuple[list[dict], list]:
        traces, ids = [], []
        for cat, grp in rows.groupby("cat_top", sort=True):
            traces.append(dict(x=grp["x"].to_numpy(), y=grp["y"].to_numpy(), mode="markers", name=ht(cat, 30),
                               marker=dict(size=5, color=colors.get(cat, "#6b7280"), opacity=0.55),
                               hovertext=grp["hover"].to_numpy(), hovertemplate="%{hovertext}<extra></extra>"))
            ids.append(grp["item_id"].to_numpy())
        return traces, ids

    full = layer(pts)
    light = layer(pts.iloc[stratified_sample(pts["cat_top"], draw_points, state.settings().seed)]) \
        if len(pts) > draw_points else full
    return frame, pts, {"full": full, "light": light}


@st.cache_resource(show_spinner="Loading the encoder…", max_entries=8)
def other_model_id(_settings, name: str) -> str:
    """The model id (vectors' and map's key) of encoder `name`: loading the model once tells its size."""
    from crossrec_core.encoder import Encoder
    return Encoder.from_settings(settings_for_encoder(_settings, name)).model_id


def use_selection(store, ids: list[str]) -> None:
    """A lasso selection becomes a segment (the shoppers who bought these items) or one rule change."""
    seg, rule = st.columns(2, gap="large")
    with seg.form("map_segment", border=True):
        st.markdown("**Save their buyers as a segment**")
        name = st.text_input("Segment name", key="map_seg_name", placeholder="e.g. tripod buyers")
        if st.form_submit_button("Save segment", icon=":material/group_add:"):
            try:
                n = save_list_segment(store, name, buyers_of(store, ids))
                st.success(f"Saved: {n:,} shoppers.", icon=":material/check:")
            except CrossRecError as exc:
                error(exc)
    with rule.form("map_rule", border=True):
        st.markdown("**Make a rule for these items**")
        kind = st.segmented_control("Do", ["boost", "bury", "exclude"], default="boost", key="map_rule_kind",
                                    format_func={"boost": "boost or damp", "bury": "bury", "exclude": "exclude"}.get)
        mult = st.number_input("Multiplier (boost; below 1 damps)", 0.05, 20.0, 1.5, step=0.25, key="map_rule_mult")
        name = st.text_input("Rule name", key="map_rule_name", placeholder="e.g. Summer tripods")
        if st.form_submit_button("Add to the live rules", icon=":material/rule:"):
            try:
                new = selection_rules(ids, kind or "boost", name.strip() or "Map selection", mult)
                replace_rules(store, [*rule_list(store), *new], note=f"{len(new)} rules from a map selection")
                st.success(f"Added {len(new):,} rules (undo on the History page or with `crossrec undo`).",
                           icon=":material/check:")
            except CrossRecError as exc:
                error(exc)


st.title("Map")
store = state.store()
state.require_data()
rec = serving.require_recommender()
# the map depends on the serving model and the catalog, not on scenarios or other runs saved meanwhile
mkey = (state.db_path(), serving.serving_run()["name"], state.fingerprint())
if getattr(rec, "embeddings_", None) is None:
    st.info("Item texts are not encoded yet, so there is nothing to map: run `crossrec encode`, then retrain on "
            "the Runs page.", icon=":material/text_fields:")
    flow.stop()

max_points = state.settings().dashboard.umap_max_points
draw_points = state.settings().dashboard.map_draw_points
# ---- which encoder's map (issue 15): the serving run's, or the base / a tuned one for comparison ------------
encoders = encoder_names(state.settings())
source = own = None  # the encoder mapped, and the one the serving run used (its vectors are at hand)
if len(encoders) > 1:
    ids = {n: other_model_id(state.settings(), n) for n in encoders}
    own = next((n for n in encoders if ids[n] == rec.model_id_), None)
    source = st.segmented_control(
        "Map from the encoder", encoders, default=own or encoders[0], key="map_encoder",
        format_func=lambda n: ("base model" if n == "base" else f"tuned: {n}") + (" (the live run's)" if n == own else ""),
        help="The base sentence encoder measures sameness; a tuned one (crossrec finetune) learned what goes "
             "with what in this shop. Another encoder's map is computed once, then stored.") or own
own_map = source is None or source == own
model_id = rec.model_id_ if own_map else ids[source]
layer = map_layer(rec, mkey, max_points, draw_points, model_id)
if layer is None:
    with st.status("Computing the map of item texts…", expanded=True) as status:
        st.caption("UMAP runs once per catalog state and the result is stored; the first run in a server process "
                   "also compiles UMAP (about 30 s)." + ("" if own_map else
                                                        " The item texts are first encoded by this encoder."))
        bar = st.progress(0.0)
        try:
            if own_map:
                frame = item_projection(store, rec.embeddings_, rec.items_, rec.model_id_, max_points=max_points,
                                        seed=state.settings().seed, progress=progress_callback(bar))
            else:
                frame = projection_for_encoder(store, state.settings(), source, rec.items_,
                                               progress=progress_callback(bar))
        except (CrossRecError, ValueError) as exc:
            status.update(label="The map could not be computed", state="error")
            error(exc)
            flow.stop()
        status.update(label=f"Map computed in {frame.attrs.get('computed_s', 0):.0f} s", state="complete",
                      expanded=False)
    map_layer.clear()
    layer = map_layer(rec, mkey, max_points, draw_points, model_id)
frame, pts, layers = layer
items = rec.items_[["item_id", "title", "category", "cat_top"]]

# ---- overlay controls -------------------------------------------------------------------------------
c1, c2, c3 = st.columns([2, 3, 2])  # the mode control's two labels need the room
url.restore("user", "map_user")
url.restore("mode", "map_mode", valid=("all", "cross").__contains__)
st.session_state.setdefault("map_mode", "all")
if "map_user" not in st.session_state:
    st.session_state["map_user"] = st.session_state.get("crossrec_user", "")
uid = c1.text_input("Draw a user", key="map_user", placeholder="user id (optional)").strip()
mode = c2.segmented_control("Recommendations", ["all", "cross"], key="map_mode",
                            format_func=MODE_LABELS.get) or "all"
k = c3.slider("How many", 5, 50, 20, step=5, key="map_k")
if uid:
    st.session_state["crossrec_user"] = uid
url.publish("user", uid)
url.publish("mode", mode if uid else None)

notes = []
draw_all = len(pts) <= draw_points or st.toggle(
    f"Draw all {len(pts):,} items (slower; by default a stratified sample of {draw_points:,} is drawn)",
    key="map_draw_all")
traces, trace_ids = layers["full" if draw_all else "light"]
if not draw_all:
    notes.append(f"{draw_points:,} of {len(pts):,} mapped items drawn (a seeded sample stratified by "
                 "category; history and recommendations are always drawn)")
fig = go.Figure([go.Scattergl(**t) for t in traces])

if uid:
    if state.user(uid) is None:
        st.warning(f"No user '{md(uid)}': the map shows items only.")
    else:
        hist = state.user_events(uid).drop_duplicates("item_id")
        on_map = pts[pts["item_id"].isin(hist["item_id"])]
        fig.add_trace(go.Scattergl(
            x=on_map["x"], y=on_map["y"], mode="markers", name="history",
            marker=dict(size=12, symbol="circle-open", color="#111827", line=dict(width=2)),
            customdata=list(zip(on_map["title"].map(lambda t: ht(t, 80)), on_map["category"].map(ht))),
            hovertemplate="<b>history</b>: %{customdata[0]}<br>%{customdata[1]}<extra></extra>"))
        try:
            recs = serving.recommend(rec, uid, k, mode, None)
        except CrossRecError as exc:
            error(exc)
            recs = None
        if recs is not None and not recs.empty:
            r_on = recs.merge(pts[["item_id", "x", "y"]], on="item_id", how="inner")
            fig.add_trace(go.Scattergl(
                x=r_on["x"], y=r_on["y"], mode="markers", name="recommended",
                marker=dict(size=15, symbol="star", color="#facc15", line=dict(width=1.5, color="#111827")),
                customdata=list(zip(r_on["rank"], r_on["title"].map(lambda t: ht(t, 80)),
                                    r_on["reason"].map(lambda t: ht(t, 140)))),
                hovertemplate="<b>#%{customdata[0]} %{customdata[1]}</b><br>%{customdata[2]}<extra>recommended</extra>"))
            notes.append(f"{len(on_map):,} of {len(hist):,} history items and {len(r_on):,} of {len(recs):,} "
                         "recommendations are on the map")
fig.update_xaxes(visible=False)
fig.update_yaxes(visible=False)
fig.update_layout(dragmode="lasso", legend=dict(itemsizing="constant"))
event = charts.plot(charts.style(fig, height=680), key="umap", on_select="rerun", selection_mode=("points", "lasso", "box"))
if not uid:
    notes.append("type a user id to draw their history (open circles) and recommendations (stars)")
note = "; ".join(notes)
st.caption(projection_note(frame, len(items)) + " Nearby points have similar text; distances between far-apart "
           "clusters mean little." + (f" {note[:1].upper()}{note[1:]}." if note else ""))

points = getattr(getattr(event, "selection", None), "points", None) or []
ids = [str(trace_ids[p["curve_number"]][p["point_index"]]) for p in points
       if p.get("curve_number", len(trace_ids)) < len(trace_ids) and p.get("point_index") is not None]
if ids:
    st.subheader(f"{len(ids):,} selected items")
    picked = items[items["item_id"].isin(ids)]
    st.dataframe(titles(picked), hide_index=True, height=300, key="map_picked", column_config={
        "title": title_column("map_picked_open", picked["item_id"]),
        "category": st.column_config.TextColumn("Category", width="medium"),
        "cat_top": None, "item_id": st.column_config.TextColumn("Item id", width="small")})
    use_selection(store, picked["item_id"].tolist())
