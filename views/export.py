"""Export: recommendation lists for one user, a segment or everyone, as the same Excel-safe CSV that
`crossrec export` writes (UTF-8 with BOM, one row per user and rank, formula cells neutralised)."""
import io
import re

import pandas as pd
import streamlit as st

from crossrec_core.errors import CrossRecError
from ui import flow, serving, state
from ui.charts import CONTRIBUTION_LABELS
from ui.fmt import MODE_LABELS
from ui.progress import with_progress
from ui.segments import saved_names, segment_users as saved_segment_users, users_from_upload
from ui.text import error, md

st.title("Export")
store = state.store()
state.require_data()
rec = serving.require_recommender()
from crossrec_core.export import export_bytes, iter_csv  # noqa: E402

key = state.key()
cats = state.categories()
options = state.category_options(cats)
ss = st.session_state


@st.cache_data(show_spinner=False, max_entries=16)
def segment_users(_store, key: tuple, category: str, types: tuple) -> list[str]:
    return _store.users_in_category(category, list(types))


@st.cache_data(show_spinner=False, max_entries=4)
def all_users(_store, key: tuple) -> list[str]:
    return _store.user_ids()


# The CSV keeps stable machine column names (README, "Export CSV columns"); this is the header of the
# human-named option. The rows are the same.
HUMAN = {"user_id": "Shopper id", "rank": "Rank", "item_id": "Item id", "title": "Item", "category": "Category",
         "score": "Score", "base": "Score before rules", "reason": "Why", "applied_rules": "Rules applied",
         **{c: f"Part of score: {label}" for c, label in CONTRIBUTION_LABELS.items()}}


def human_header(data: bytes) -> bytes:
    """The same CSV with the header row in plain words (the names hold no comma or quote)."""
    bom = "\ufeff".encode()
    body = data[len(bom):] if data.startswith(bom) else data
    head, sep, rest = body.partition(b"\r\n")
    names = [HUMAN.get(c, c) for c in head.decode("utf-8").split(",")]
    return bom + ",".join(names).encode("utf-8") + sep + rest


# ---- who ---------------------------------------------------------------------------------------------
left, right = st.columns([3, 2], gap="large")
with left:
    who = st.segmented_control("Whose lists", ["One user", "Segment", "Everyone"], default="One user",
                               key="exp_who") or "One user"
    users: list[str] = []
    label = "user"
    if who == "One user":
        uid = st.text_input("User id", value=ss.get("crossrec_user", ""), key="exp_user").strip()
        if uid:
            if state.user(uid) is None:
                st.warning(f"No user '{md(uid)}' in the database.")
            else:
                users, label = [uid], uid
    elif who == "Segment":
        saved = saved_names()
        how = st.radio("Segment by", ["Saved segment", "Bought in a category", "Uploaded list (CSV with a user_id "
                                      "column)"], horizontal=True, key="exp_how", index=0 if saved else 1)
        if how == "Saved segment":
            if not saved:
                st.caption("No saved segments yet: save one on the Segments page.")
            else:
                seg = st.selectbox("Segment", saved, key="exp_seg")
                users, label = saved_segment_users(seg), seg
        elif how.startswith("Bought"):
            c1, c2 = st.columns([3, 2])
            cat = c1.selectbox("Category", options, key="exp_cat")
            types = c2.multiselect("Event types", ["purchase", "cart", "view", "click", "review"],
                                   default=["purchase"], key="exp_types")
            users, label = (segment_users(store, key, cat, tuple(types)) if types else []), f"bought-{cat}"
        else:
            f = st.file_uploader("User list", type=["csv", "parquet", "txt"], key="exp_upload")
            if f is not None:
                try:
                    ids = users_from_upload(f.getvalue(), f.name)
                except CrossRecError as exc:
                    error(exc)
                    ids = []
                known = set(all_users(store, key))
                users = [u for u in ids if u in known]
                label = f.name.rsplit(".", 1)[0]
                if len(users) < len(ids):
                    st.warning(f"{len(ids) - len(users):,} of {len(ids):,} listed users are not in the database "
                               "and are left out.")
    else:
        users, label = all_users(store, key), "everyone"
    st.caption(f"**{len(users):,}** users selected." if users else "No users selected yet.")
with right:
    mode = st.segmented_control("Mode", ["all", "cross", "target"], default="all", key="exp_mode",
                                format_func=MODE_LABELS.get) or "all"
    category = st.selectbox("Target category", options, key="exp_target") if mode == "target" else None
    k = st.number_input("Items per user (K)", 1, 100, 20, key="exp_k")
    human = st.toggle("Column names in plain words", key="exp_human",
                      help="Off: the stable machine names other tools read (user_id, item_id, score, …; see the "
                           "README). On: the same file with headers such as 'Shopper id' and 'Part of score: "
                           "bought together'.")

if not users:
    flow.stop()

# ---- preview and file --------------------------------------------------------------------------------
spec = (tuple(users), mode, category, int(k), serving.rec_key())
try:
    preview = pd.read_csv(io.BytesIO(export_bytes(rec, users[:3], k=int(k), mode=mode, category=category)),
                          encoding="utf-8-sig", dtype={"user_id": str, "item_id": str})
except CrossRecError as exc:
    error(exc)
    flow.stop()
st.subheader("Preview")
st.caption(f"The first rows of the file ({min(3, len(users))} of {len(users):,} users). Columns: user, rank, item, "
           "score, each signal's part of the score (they add up to it), the reason and the rules that changed the "
           "item's place.")
st.dataframe(preview.head(20).rename(columns=HUMAN if human else {}), hide_index=True,
             column_config={HUMAN["reason"] if human else "reason": st.column_config.TextColumn(width="large")})

safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:60] or "users"
file_name = f"crossrec-{safe}-{mode}{'-' + re.sub(r'[^A-Za-z0-9]+', '-', category) if category else ''}-top{int(k)}.csv"
ready = ss.get("exp_file")
if ready is None or ready["spec"] != spec:
    ready = None
    slot = st.empty()  # one step: the prepare button is replaced by the download once the file is ready
    if slot.button(f"Prepare the CSV for {len(users):,} user(s)", type="primary", icon=":material/table_view:",
                   key="exp_prepare"):
        slot.empty()
        counted: list[int] = []
        # streamed a batch of shoppers at a time (progress per batch), joined once at the end
        data = with_progress(lambda progress: b"".join(iter_csv(rec, users, k=int(k), mode=mode, category=category,
                                                                 progress=progress, counted=counted)), "scoring")
        if data is None:
            flow.stop()
        ready = ss["exp_file"] = {"spec": spec, "data": data, "rows": counted[0]}
if ready is not None:
    data = ready["data"]
    # The file is handed over when the button is clicked (a callable): the page keeps one copy of it, not one
    # per rerun, and the plain-words header is made only for the download that asks for it.
    st.download_button(f"Download {file_name} ({ready['rows']:,} rows, {len(data) / 1024:,.0f} KB)",
                       (lambda: human_header(data)) if human else (lambda: data),
                       file_name=file_name, mime="text/csv", type="primary", icon=":material/download:",
                       on_click="ignore", key="exp_download")
    st.caption("Same file as `crossrec export`: UTF-8 with BOM, opens cleanly in Excel; cells that Excel would run "
               "as formulas start with an apostrophe.")
