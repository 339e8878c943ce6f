"""History: every change to the rules, the live run and the segments (when, what, before, after, note), newest first,
with one-click undo of the last change (`crossrec history`, `crossrec undo`)."""
import json

import pandas as pd
import streamlit as st

from crossrec_core import governance, segments
from crossrec_core.errors import CrossRecError
from crossrec_core.rules import Rule
from ui import state
from ui.actions import act, show_done

st.title("History")
store = state.store()


def in_words(value) -> str:
    """A before/after cell in words: rule sets as their rules, runs by name."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        for key in ("added", "removed"):
            if isinstance(value.get(key), dict):
                r = Rule.from_dict(value[key])
                return f"{key} '{r.name}' ({r.verb()} {r.what()})"
        if "segment" in value:
            return segment_words(value)
        if "run" in value:
            return f"run {value['run']} live" if value["run"] else "no live run"
        if "version" in value:
            return rule_set_words(int(value["version"] or 0))
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def segment_words(value: dict) -> str:
    """'segment 'VIPs': uploaded list, 120 shoppers' (or 'no segment 'VIPs'')."""
    if not value.get("spec"):
        return f"no segment '{value['segment']}'"
    users = value.get("users")
    count = len(users) if isinstance(users, list) else users
    listed = f", {count:,} shoppers listed" if value["spec"].get("kind") == "list" and count is not None else ""
    return f"segment '{value['segment']}': {segments.describe(value['spec'])}{listed}"


def rule_set_words(version: int) -> str:
    """'rules v3: Summer tripods (pinned at 3 item P1); …'."""
    if not version:
        return "no rules"
    try:
        rules = [Rule.from_dict(r) for r in store.rule_set(version)[1]]
    except CrossRecError:
        return f"rules v{version}"
    return f"rules v{version}: " + ("; ".join(f"{r.name} ({r.verb()} {r.what()})" for r in rules) or "none")


log = governance.history(store, 200)
c1, c2 = st.columns([2, 5], vertical_alignment="center")
if c1.button("Undo the last change", type="primary", icon=":material/undo:", key="hist_undo",
             disabled=log.empty or not log["undoable"].astype(bool).any()):
    act(lambda: governance.undo(store), lambda done: f"Undid change {done['change_id']}: {done['note']}.")
c2.caption("Undo reverts the newest change to the rules, the live run or a segment not undone yet; the undo is itself "
           "recorded here.")
show_done()
if log.empty:
    st.info("No changes yet: adding a rule, promoting a scenario, saving a segment or making a run live is "
            "recorded here.",
            icon=":material/history:")
else:
    table = pd.DataFrame({"change": log["change_id"], "when": log["at"], "what": log["what"],
                          "before": log["before"].map(in_words), "after": log["after"].map(in_words),
                          "note": log["note"].fillna(""), "undone": log["undone"].fillna(False).astype(bool)})
    st.dataframe(table, hide_index=True, key="history_table", column_config={
        "change": st.column_config.NumberColumn("#", width="small"),
        "when": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "what": st.column_config.TextColumn("What"), "note": st.column_config.TextColumn("Note", width="medium"),
        "before": st.column_config.TextColumn("Before", width="large"),
        "after": st.column_config.TextColumn("After", width="large"),
        "undone": st.column_config.CheckboxColumn("Undone", width="small")})
