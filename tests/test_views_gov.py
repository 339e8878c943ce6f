"""The governance pages through Streamlit's AppTest on a small trained shop (`ruled_copy`): Rules (add a pin,
remove after a confirmation, undo), History (the change listed, one-click undo), Segments (a rule segment
saved and offered to the rule form), Runs (make live / delete need a confirmation; the live run can't go)."""
from __future__ import annotations

from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

from crossrec_core.store import Store
from ui.text import md, short

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def app(db: Path, monkeypatch, page: str) -> AppTest:
    monkeypatch.setenv("CROSSREC_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def frame(at: AppTest, column: str):
    """The first table with this column (AppTest does not expose a table's key), or None."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def an_item(db: Path) -> tuple[str, str]:
    with Store(db, read_only=True) as store:
        row = store.items().iloc[0]
    return str(row["item_id"]), str(row["title"])


def live_rules(db: Path) -> list[dict]:
    """The live rules, read through the app's own store (this process holds the file)."""
    import ui.state
    from crossrec_core import governance

    return governance.rules_json(ui.state._open_store(str(db)))


def undo_box(at):
    """The checkbox that confirms an undo (its label says which change)."""
    return next(c for c in at.checkbox if c.label.startswith("Yes, undo change #"))


def test_rules_page_adds_a_pin_removes_it_after_confirming_and_undo_brings_it_back(ruled_copy, monkeypatch):
    item, title = an_item(ruled_copy)
    at = app(ruled_copy, monkeypatch, "rules")
    ok(at)
    assert any("No rules yet" in i.value for i in at.info)
    at.text_input(key="add_item_q").input(item).run()
    at.number_input(key="add_pos").set_value(2)
    at.text_input(key="add_name").input("Summer tripods")
    at.button(key="add_btn").click().run()
    ok(at)
    table = frame(at, "does")
    assert table["name"].tolist() == ["Summer tripods"]
    assert table["does"].iloc[0].startswith(f"pinned at 2: {title[:20]}") and f"({item})" in table["does"].iloc[0]
    said = md(f"Added rule 'Summer tripods' (pinned at 2: {short(title, 50)} ({item})).")
    assert [s.value for s in at.success] == [said]  # names the item by its title, not only its id
    assert at.button(key="rm_btn").disabled  # no removal without the confirmation
    at.checkbox(key="rm_confirm_1").check().run()
    at.button(key="rm_btn").click().run()
    ok(at)
    assert frame(at, "does") is None
    assert at.button(key="rules_undo").disabled  # undo says what it will undo and asks first
    sure = undo_box(at)
    assert "removed rule 'Summer tripods' (pinned at 2:" in sure.label
    sure.check().run()
    at.button(key="rules_undo").click().run()
    ok(at)
    assert frame(at, "does")["name"].tolist() == ["Summer tripods"]
    assert [s.value for s in at.success][0].startswith(md("Undid change #3: removed rule 'Summer tripods'")), [s.value for s in at.success]

    at.switch_page("views/history.py").run()
    ok(at)
    hist = frame(at, "undone")
    assert hist["what"].tolist()[:3] == ["undo", "rules", "rules"]
    assert "added rule 'Summer tripods'" in hist["after"].iloc[2]
    undo_box(at).check().run()  # undoes the newest undoable change: the removal's undo is not one
    at.button(key="hist_undo").click().run()
    ok(at)
    assert live_rules(ruled_copy) == []


def test_a_bad_rule_is_one_line_and_nothing_is_added(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "rules")
    at.selectbox(key="add_action").set_value("boost").run()
    at.selectbox(key="add_target_boost").set_value("brand").run()
    at.text_input(key="add_brand").input("No Such Brand")
    at.button(key="add_btn").click().run()
    ok(at)
    assert any("unknown brand 'No Such Brand'" in e.value for e in at.error)
    assert live_rules(ruled_copy) == []


def test_a_rule_segment_is_saved_and_offered_to_the_rule_form(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "segments")
    ok(at)
    top = at.selectbox(key="seg_bought").options[1]
    at.text_input(key="seg_name").input("fans")
    at.selectbox(key="seg_bought").set_value(top)
    at.button(key="seg_save_rule").click().run()
    ok(at)
    seg = frame(at, "definition")
    assert seg["name"].tolist() == ["fans"] and seg["users"].iloc[0] > 0
    at.switch_page("views/rules.py").run()
    assert "fans" in at.selectbox(key="add_seg").options
    at.switch_page("views/history.py").run()
    ok(at)
    log = frame(at, "after")
    assert log["what"].iloc[0] == "segment" and log["before"].iloc[0] == "no segment 'fans'"
    assert log["after"].iloc[0] == f"segment 'fans': bought in {top}"


def test_runs_page_keeps_the_live_run_and_confirms_before_deleting(ruled_copy, monkeypatch):
    from crossrec_core.config import Settings
    from crossrec_core.train import train

    with Store(ruled_copy) as store:
        train(store, Settings(db_path=ruled_copy), name="second", learn=False, baselines=False)
        assert store.run()["name"] == "first"  # recorded, not live
    at = app(ruled_copy, monkeypatch, "runs")
    ok(at)
    assert at.selectbox(key="cmp_b").value == "second"  # the newest run that is not live comes first
    at.toggle(key="cmp_go_first_second").set_value(True).run()
    ok(at)
    deltas = frame(at, "verdict")
    assert {"Found later buys", "Found near the top"} <= set(deltas["metric"])
    assert list(deltas.columns[1:3]) == ["first", "second"]
    assert set(deltas["verdict"]) <= {"up", "down", "no clear difference", "no change"}
    assert deltas["what it means"].str.startswith("of the products shoppers went on to buy").any()
    assert not deltas["what it means"].str.contains("@").any()  # the technical names are in the help
    assert (deltas["95 % interval"].str.contains(" to ")).all()
    assert at.button(key="del_run").disabled and at.button(key="live_btn").disabled
    at.checkbox(key="live_confirm_second").check().run()
    at.button(key="live_btn").click().run()
    ok(at)
    assert at.selectbox(key="cmp_b").value == "second"  # the boxes keep the run just made live
    assert at.button(key="live_btn").disabled and at.checkbox(key="del_confirm_second").disabled  # live: kept
    assert [s.value for s in at.success] == [md("Run second is live instead of first. Undo it on the History page.")]
    at.selectbox(key="cmp_b").set_value("first").run()
    at.checkbox(key="del_confirm_first").check().run()
    at.button(key="del_run").click().run()
    ok(at)
    assert frame(at, "serving")["name"].tolist() == ["second"]


def test_step_messages_read_in_plain_words():
    from ui.training import plain_step

    assert plain_step("fitting baseline ease") == "scoring the EASE baseline for comparison"
    assert plain_step("crossrec: recall (40/120 users)") == "measuring CrossRec on held-out shoppers (40 of 120)"
    assert plain_step("something new") == "something new"


def test_export_a_saved_segment_with_machine_or_plain_column_names(ruled_copy, monkeypatch):
    from crossrec_core.segments import resolve_segment, save_list_segment

    with Store(ruled_copy) as store:
        users = store.user_ids()[:3]
        save_list_segment(store, "three", users)
        assert resolve_segment(store, "three") == sorted(users)
    at = app(ruled_copy, monkeypatch, "export")
    at.segmented_control(key="exp_who").set_value("Segment").run()
    ok(at)
    assert at.radio(key="exp_how").value == "Saved segment"
    assert any("**3** users selected." in c.value for c in at.caption)
    assert list(frame(at, "user_id").columns[:3]) == ["user_id", "rank", "item_id"]
    assert "applied_rules" in frame(at, "user_id").columns
    at.toggle(key="exp_human").set_value(True).run()
    ok(at)
    plain = frame(at, "Shopper id")
    assert {"Item id", "Rules applied", "Part of score: bought together"} <= set(plain.columns)


def test_whatif_scenario_is_promoted_after_its_effect_and_undo_takes_it_out(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "whatif")
    options = at.selectbox(key="wi_a").options
    at.selectbox(key="wi_a").select(options[0])
    at.selectbox(key="wi_b").select(options[1])
    at.button(key="wi_add").click().run()
    at.checkbox(key="wi_eval").uncheck()
    at.slider(key="wi_n").set_value(100)
    at.button(key="wi_run").click().run()
    at.text_input(key="wi_name").input("more B").run()
    at.button(key="wi_save").click().run()
    ok(at)
    assert frame(at, "users affected")["name"].tolist() == ["more B"]  # listed in the same run as the save
    assert at.button(key="wi_load").value is False
    at.button(key="wi_load").click().run()
    ok(at)
    assert not any("Session State API" in w.value for w in at.warning)
    assert at.session_state["wi_mode"] == "all" and at.session_state["wi_n"] == 100
    with_no_promote = [b.key for b in at.button]
    assert "wi_promote" not in with_no_promote  # the effect comes first
    at.button(key="wi_effect").click().run()
    ok(at)
    effect = frame(at, "with the scenario")
    assert "Found later buys" in effect["metric"].tolist()
    assert set(effect["verdict"]) <= {"up", "down", "no clear difference", "no change"}
    assert at.button(key="wi_promote").disabled
    at.checkbox(key="wi_promote_ok_more B").check().run()
    highs = effect["95 % interval"].str.split(" to ").str[1].astype(float)
    drops = effect[(highs < 0) & effect["metric"].isin(["Found later buys", "Found near the top",
                                                            "Found buys in new categories"])]
    if len(drops):  # a drop beyond noise asks for a second, explicit yes naming what drops
        assert at.button(key="wi_promote").disabled
        second = at.checkbox(key="wi_promote_drop_ok_more B")
        assert all(m in second.label for m in drops["metric"])
        second.check().run()
    else:
        assert "wi_promote_drop_ok_more B" not in [c.key for c in at.checkbox]
    at.button(key="wi_promote").click().run()
    ok(at)
    rules = live_rules(ruled_copy)
    assert [(r["kind"], r["target"], r["from_category"], r["category"]) for r in rules] == [
        ("boost", "pair", options[0], options[1])]
    assert "Measure its effect first" not in [c.value for c in at.caption][-1:]  # it does not look undone
    assert any("is live" in s.value for s in at.success) and "wi_effect" not in [b.key for b in at.button]
    at.switch_page("views/history.py").run()
    assert frame(at, "undone")["what"].iloc[0] == "scenario promotion"
    undo_box(at).check().run()
    at.button(key="hist_undo").click().run()
    ok(at)
    assert live_rules(ruled_copy) == []


def test_data_page_lists_every_bad_row_with_line_and_column(ruled_copy, monkeypatch):
    at = app(ruled_copy, monkeypatch, "data")
    bad = (b"user_id,item_id,event_type,timestamp\nu1,x,view,2024-01-01T00:00:00Z\nu2,y,view,not-a-date\n"
           b",y,view,2024-01-01T00:00:00Z\nu3,,view,2024-01-01T00:00:00Z\nu4,z,view,later\n")
    at.file_uploader(key="upload_events").set_value(("events.csv", bad, "text/csv")).run()
    ok(at)
    assert "4 rows with errors" in at.error[0].value
    found = frame(at, "error")
    assert sorted(zip(found["line"], found["column"])) == [(3, "timestamp"), (4, "user_id"), (5, "item_id"),
                                                           (6, "timestamp")]
    assert at.button(key="ingest").disabled


@pytest.mark.slow  # loads the text model and encodes the catalog twice: minutes on a busy 2-core machine
def test_a_fine_tune_runs_as_a_background_job_and_the_live_run_keeps_serving(ruled_copy, monkeypatch):
    import time

    import ui.state

    at = app(ruled_copy, monkeypatch, "runs")
    at.number_input(key="ft_minutes").set_value(0.5)
    at.button(key="ft_start").click().run()
    job = ui.state._process_state(str(ruled_copy))["job"]
    assert job["kind"] == "fine-tuning"
    deadline = time.time() + 300
    while job["status"] == "running" and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    ok(at)
    assert job["status"] in ("done", "failed"), job
    said = [s.value for s in at.success] + [e.value for e in at.error]
    assert any(("tuned in" in m) or ("Fine-tuning failed" in m) for m in said), said
    assert frame(at, "serving").set_index("name").loc["first", "serving"]


def test_a_pinned_row_says_so_in_its_why_cell_and_its_low_model_score_is_not_shown_as_a_defect():
    import pandas as pd

    from crossrec_core.signals.registry import names

    SIGNALS = names()
    from ui.lists import evidence_lines, rule_view

    rows = pd.DataFrame({"rank": [1, 2, 3], "title": ["Tripod", "Lens", "Bag"], "score": [-1.43, 0.9, 0.8],
                         "reason": ["bought with cameras", "often bought together", "popular"],
                         "applied_rules": ["pinned at 1 by rule 'Summer tripods'", "", "boosted ×1.5 by rule 'Bags'"],
                         **{s: [0.2, 0.5, 0.3] for s in SIGNALS}})
    view = rule_view(rows)
    assert view["reason"].tolist() == ["📌 pinned at 1 by rule 'Summer tripods' · bought with cameras",
                                       "often bought together", "⬆ boosted ×1.5 by rule 'Bags' · popular"]
    assert pd.isna(view["score"].iloc[0]) and view["score"].iloc[1:].tolist() == [0.9, 0.8]
    lines = evidence_lines(rows.iloc[0])
    assert lines[0] == "Placed by its rule, not by its score (the model alone scored it -1.430)."
    assert not any("of the score" in line for line in lines)  # no "(0% of the score)" beside a score below 0
    assert "of the score" in evidence_lines(rows.iloc[1])[0]
