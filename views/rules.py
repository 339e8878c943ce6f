"""Rules: the live business rules in plain words, added and removed here (or with `crossrec rules`), each
change a new version of the rule set in the audit log, undone with one click. Serving, Export and What-if
apply the same rules, and every list names the rule that changed an item."""
import datetime as dt

import pandas as pd
import streamlit as st

from crossrec_core import governance
from crossrec_core.rules import Rule
from ui import state
from ui.segments import saved_names
from ui.actions import act, show_done
from ui.changes import item_titles, next_undo, rule_does, rule_named, undo_confirmation, undone_message
from ui.text import error, short

st.title("Rules")
store = state.store()
state.require_data()

ACTIONS = {"pin": "Pin an item at a position", "exclude": "Exclude (never show)", "bury": "Bury (show last)",
           "boost": "Boost (multiply the score up)", "damp": "Damp (multiply the score down)"}
TARGETS = {"pin": ["item"], "exclude": ["item", "brand", "category"], "bury": ["item", "brand", "category"],
           "boost": ["item", "brand", "category", "price", "pair"], "damp": ["item", "brand", "category", "price", "pair"]}
TARGET_LABELS = {"item": "an item", "brand": "a brand", "category": "a category", "price": "a price range",
                 "pair": "a category, for buyers of another (category pair)"}


def rules_frame(rules: list[Rule]) -> pd.DataFrame:
    """One row per rule in words; an item rule names the item's title too."""
    titles = item_titles([r.item for r in rules if r.item])
    return pd.DataFrame({"id": [r.id for r in rules], "name": [r.name for r in rules],
                         "does": [rule_does(r, titles) for r in rules],
                         "for": [r.segment or "everyone" for r in rules],
                         "from": [r.start or "" for r in rules], "until": [r.end or "" for r in rules],
                         "note": [r.note or "" for r in rules]})


def item_picker(key: str) -> str | None:
    """Find an item by id, title or brand; its id."""
    q = st.text_input("Find the item (id, title or brand)", key=f"{key}_q")
    if not q.strip():
        return None
    hits = state.read("search_items", q.strip(), 50)
    if hits.empty:
        st.caption("No item matches.")
        return None
    labels = dict(zip(hits["item_id"], hits["item_id"] + " · " + hits["title"].map(lambda t: short(t, 60))))
    return st.selectbox("Item", list(labels), format_func=labels.get, key=f"{key}_pick")


# ---- live rules --------------------------------------------------------------------------------------
live = governance.rule_list(store)
st.subheader(f"Live rules ({len(live)})")
if not live:
    st.info("No rules yet: every list is the model's own ranking. Add one below.", icon=":material/rule:")
else:
    st.dataframe(rules_frame(live), hide_index=True, key="rules_table", column_config={
        "id": st.column_config.NumberColumn("Id", width="small"), "name": st.column_config.TextColumn("Name"),
        "does": st.column_config.TextColumn("What it does", width="large"),
        "for": st.column_config.TextColumn("For shoppers"), "note": st.column_config.TextColumn("Note")})
    r1, r2, r3 = st.columns([3, 3, 2], vertical_alignment="bottom")
    by_id = {r.id: r for r in live}
    gone = r1.selectbox("Rule to remove", list(by_id), format_func=lambda i: f"{i}: {short(by_id[i].name, 60)}",
                        key="rm_pick")
    sure = r2.checkbox(f"Yes, remove rule {gone}", key=f"rm_confirm_{gone}")
    if r3.button("Remove rule", disabled=not sure, icon=":material/delete:", key="rm_btn"):
        act(lambda: governance.remove_rule(store, gone), f"Removed {rule_named(by_id[gone])}.", slot="rm")
show_done("rm")

change = next_undo(rules_only=True)
if change is not None:
    u1, u2 = st.columns([2, 5], vertical_alignment="center")
    undo_ok = u2.checkbox(undo_confirmation(change), key=f"rules_undo_ok_{int(change['change_id'])}")
    if u1.button("Undo the last rule change", icon=":material/undo:", key="rules_undo", disabled=not undo_ok):
        act(lambda: governance.undo(store, rules_only=True), lambda done: undone_message(change), slot="undo")
show_done("undo")
st.caption("Every change is on the History page, where any last change (rules or the live run) can be undone.")

# ---- add a rule --------------------------------------------------------------------------------------
st.subheader("Add a rule")
c1, c2 = st.columns(2)
action = c1.selectbox("Action", list(ACTIONS), format_func=ACTIONS.get, key="add_action")
target = c2.selectbox("On", TARGETS[action], format_func=TARGET_LABELS.get, key=f"add_target_{action}")
options = state.category_options(state.categories())
fields: dict = {}
with st.container(border=True):
    if target == "item":
        fields["item"] = item_picker("add_item")
    elif target == "brand":
        fields["brand"] = st.text_input("Brand", key="add_brand").strip() or None
    elif target == "category":
        fields["category"] = st.selectbox("Category", options, key="add_cat")
    elif target == "pair":
        p1, p2 = st.columns(2)
        fields["from_category"] = p1.selectbox("Shoppers with history in", options, key="add_from")
        fields["category"] = p2.selectbox("… get items of", options, index=min(1, len(options) - 1), key="add_to")
    else:
        p1, p2 = st.columns(2)
        lo = p1.number_input("Price from", min_value=0.0, value=None, key="add_pmin", placeholder="no lower bound")
        hi = p2.number_input("Price up to", min_value=0.0, value=None, key="add_pmax", placeholder="no upper bound")
        fields["price_min"], fields["price_max"] = lo, hi
    if action == "pin":
        fields["position"] = int(st.number_input("Position (1 = first)", 1, 100, 1, key="add_pos"))
    if action in ("boost", "damp"):
        lo, hi, start = (1.05, 10.0, 1.5) if action == "boost" else (0.0, 0.95, 0.5)
        fields["multiplier"] = float(st.number_input("× multiplier", lo, hi, start, step=0.05, key=f"add_m_{action}",
                                                     help="the item's score is multiplied by this"))
    segs = saved_names()
    s1, s2, s3 = st.columns([2, 1, 1])
    segment = s1.selectbox("For shoppers", ["everyone", *segs], key="add_seg",
                           help="a saved segment (Segments page), or everyone")
    start = s2.date_input("From", value=None, key="add_start", format="YYYY-MM-DD")
    end = s3.date_input("Until", value=None, key="add_end", format="YYYY-MM-DD")
    n1, n2 = st.columns(2)
    name = n1.text_input("Name", key="add_name", placeholder="e.g. Summer tripods (default: what it does)")
    note = n2.text_input("Note", key="add_note", placeholder="why, for the History page")
    if st.button("Add rule", type="primary", icon=":material/add:", key="add_btn"):
        rule = Rule("boost" if action == "damp" else action, segment=None if segment == "everyone" else segment,
                    start=start.isoformat() if isinstance(start, dt.date) else None,
                    end=end.isoformat() if isinstance(end, dt.date) else None, name=name.strip(), note=note.strip(),
                    **{k: v for k, v in fields.items() if v is not None})
        if target == "item" and rule.item is None:
            error("find and pick the item first")
        else:
            act(lambda: governance.add_rule(store, rule, note.strip()), lambda added: f"Added {rule_named(added)}.",
                slot="add")
    show_done("add")
