"""History: every change to the rules, the live run and the segments (when, what, before, after, note), newest first,
with one-click undo of the last change (`crossrec history`, `crossrec undo`)."""
import pandas as pd
import streamlit as st

from crossrec_core import governance
from ui import state
from ui.actions import act, show_done
from ui.changes import change_words, in_words, next_undo, undo_confirmation, undone_message

st.title("History")
store = state.store()


log = governance.history(store, 200)
with st.container(border=True, key="hist_undo_box"):
    change = next_undo()
    if change is None:
        st.caption("Nothing to undo: every change to the rules, the live run and the segments is undone already.")
    else:
        st.markdown("**Undo the last change**")
        sure = st.checkbox(undo_confirmation(change), key=f"hist_undo_ok_{int(change['change_id'])}")
        if st.button("Undo the last change", type="primary", icon=":material/undo:", key="hist_undo", disabled=not sure):
            act(lambda: governance.undo(store), lambda done: undone_message(change), slot="hist_undo")
    show_done("hist_undo")
    st.caption("Undo reverts the newest change to the rules, the live run or a segment not undone yet; the undo is "
               "itself recorded below.")
if log.empty:
    st.info("No changes yet: adding a rule, promoting a scenario, saving a segment or making a run live is "
            "recorded here.",
            icon=":material/history:")
else:
    table = pd.DataFrame({"change": log["change_id"], "when": log["at"], "what": log["what"],
                          "before": log["before"].map(in_words), "after": log["after"].map(in_words),
                          "change_words": log.apply(lambda r: change_words(r.to_dict()), axis=1),
                          "note": log["note"].fillna(""), "undone": log["undone"].fillna(False).astype(bool)})
    # the change in words first and the long before/after last, so at 1280 px nothing that says what happened is
    # off-screen
    st.dataframe(table, hide_index=True, key="history_table", column_order=(
        "change", "when", "undone", "change_words", "note", "what", "before", "after"), column_config={
        # widths in pixels adding up to the main area at 1400 px (a header and a typical cell), so "Undone",
        # "Note" and "After" are in sight with a readable width instead of sharing what "small"/"medium" leave
        "change": st.column_config.NumberColumn("#", width=40),
        "when": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm", width=125),
        "undone": st.column_config.CheckboxColumn("Undone", width=70),
        "change_words": st.column_config.TextColumn("Change", width=250),
        "note": st.column_config.TextColumn("Note", width=150),
        "what": st.column_config.TextColumn("Kind", width=70),
        "before": st.column_config.TextColumn("Before", width=120),
        "after": st.column_config.TextColumn("After", width=120)})
