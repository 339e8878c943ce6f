"""The dashboard through Streamlit's AppTest: every page runs without an exception on a small trained shop,
and each page's main path works (pick a user → explained lists; a what-if pair → users affected; uploads
with errors → line-numbered message and nothing loaded; retrain → a new run). Heavier paths are `slow`."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="session")
def trained_shop(small_shop_db: Path, tmp_path_factory) -> Path:
    """The session's small shop with one trained, serving run (given weights: fast). Tests copy it to write."""
    from crossrec_core.config import Settings
    from crossrec_core.store import Store
    from crossrec_core.train import train

    path = tmp_path_factory.mktemp("app") / "shop.duckdb"
    shutil.copy(small_shop_db, path)
    with Store(path) as store:
        train(store, Settings(db_path=path), name="first", learn=False, baselines=False)
    return path


@pytest.fixture
def shop_copy(trained_shop: Path, tmp_path: Path) -> Path:
    """A private copy of the trained shop (database and artefacts folder) for tests that write."""
    path = tmp_path / "shop.duckdb"
    shutil.copy(trained_shop, path)
    shutil.copytree(f"{trained_shop}.artefacts", f"{path}.artefacts")
    return path


def a_user(db: Path) -> str:
    """A user with purchases, read before the app opens the file."""
    from crossrec_core.store import Store

    with Store(db) as store:
        s = store.user_summary()
    return str(s.sort_values("purchases", ascending=False)["user_id"].iloc[0])


def app(db: Path, monkeypatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("CROSSREC_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.text, *at.info, *at.warning, *at.error, *at.success)]
    return "\n".join(map(str, parts))


def frames_with(at: AppTest, column: str):
    return [d.value for d in at.dataframe if column in d.value.columns]


# ---- every page, no exception ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["overview", "user", "category", "whatif", "runs", "export", "data"])
def test_page_runs_without_exception(trained_shop, monkeypatch, page):
    at = app(trained_shop, monkeypatch, None if page == "overview" else page)
    no_exception(at)
    assert at.title[0].value.lower().replace("-", "") == page


def test_sidebar_names_database_and_serving_run(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch)
    side = "\n".join(t.value for t in at.sidebar.text)
    assert str(trained_shop) in side
    assert "first" in side and "Found later buys" in side and "Recall@20" not in side  # the shop's words


def test_overview_counts_health_and_charts(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Items"] == "700" and labels["Users"] == "500"
    assert len(at.get("plotly_chart")) == 2  # treemap and funnel
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads.count("Chart data (CSV)") == 2  # each chart's numbers, built when clicked
    assert "no events" in texts(at)  # the demo plants cold users and cold items


def test_empty_database_says_what_to_do(tmp_path, monkeypatch):
    db = tmp_path / "empty.duckdb"
    for page in (None, "user", "map", "runs"):
        at = app(db, monkeypatch, page)
        no_exception(at)
        assert "No data yet" in texts(at), page


def test_a_page_opened_first_on_a_fresh_server_runs_inside_the_router(trained_shop, monkeypatch):
    monkeypatch.setenv("CROSSREC_DB", str(trained_shop))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/user.py").run()  # a first visit to /user goes through app.py's st.navigation
    no_exception(at)
    assert at.title[0].value == "User"
    assert any(str(trained_shop) in t.value for t in at.sidebar.text)  # app.py's sidebar: the router ran
    assert frames_with(at, "reason")


def test_database_held_by_another_process_is_one_line(trained_shop, tmp_path, monkeypatch, hold_db):
    db = tmp_path / "held.duckdb"
    shutil.copy(trained_shop, db)
    pid = hold_db(db)
    at = app(db, monkeypatch)
    no_exception(at)
    assert len(at.error) == 1 and f"PID {pid}" in at.error[0].value and "\n" not in at.error[0].value


# ---- user -------------------------------------------------------------------------------------------------


def test_user_pick_shows_explained_recommendations(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "user")
    heavy = at.selectbox(key="pick_heavy").options[1].split(" · ")[0]
    at.selectbox(key="pick_heavy").set_value(heavy).run()  # options are shown through format_func
    no_exception(at)
    assert at.text_input(key="user_id_input").value == heavy
    lists = frames_with(at, "reason")
    assert lists and len(lists[0]) == 20
    assert all(r.strip() for r in lists[0]["reason"])
    assert any(str(c.value).startswith("Why #1") for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # history, profile, contributions


def test_user_cross_and_target_modes(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "user")
    single = at.selectbox(key="pick_single").options[0].split(" · ")[0]
    at.selectbox(key="pick_single").set_value(single)
    at.session_state["user_mode"] = "New categories only"
    at.run()
    assert at.text_input(key="user_id_input").value == single
    no_exception(at)
    cross = frames_with(at, "reason")[0]
    assert len(cross) > 0
    at.session_state["user_mode"] = "One target category"
    at.run()
    target = at.selectbox(key="user_target").value
    lists = frames_with(at, "reason")
    assert lists and all(c == target or c.startswith(target + " > ") for c in lists[0]["category"])


def test_unknown_user_gets_a_warning(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "user")
    at.text_input(key="user_id_input").input("no-such-user").run()
    no_exception(at)
    assert any("No user" in w.value for w in at.warning)


def test_cold_start_profile_text_updates_list(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "user")
    at.session_state["user_ctx"] = "Cold start: typed profile"
    at.text_input(key="cold_text").input("trail running in the mountains, needs a light tent").run()
    no_exception(at)
    lists = frames_with(at, "reason")
    assert len(lists) >= 2  # the user's list and the cold-start list
    assert any("profile" in r or "similar" in r or "popular" in r for r in lists[-1]["reason"])


# ---- category --------------------------------------------------------------------------------------------


def test_category_flows_bridges_and_engine_picks(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "category")
    no_exception(at)
    subheaders = [s.value for s in at.subheader]
    assert any(s.startswith("Where buyers of") for s in subheaders)
    assert frames_with(at, "lift")  # the flows table
    assert frames_with(at, "mean_rank")  # the engine's cross-category picks
    at.selectbox(key="cat_pick").set_value("Books").run()  # options are shown through format_func
    no_exception(at)


# ---- what-if -----------------------------------------------------------------------------------------------


def add_pair(at: AppTest) -> None:
    """What-if: the first category to the second, ×5, added to the pair table."""
    options = at.selectbox(key="wi_a").options
    at.selectbox(key="wi_a").select(options[0])
    at.selectbox(key="wi_b").select(options[1])
    at.number_input(key="wi_m").set_value(5.0)
    at.button(key="wi_add").click().run()


def test_whatif_pair_rule_reports_users_affected(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "whatif")
    add_pair(at)
    assert len(at.data_editor[0].value) == 1
    at.checkbox(key="wi_eval").uncheck()
    at.slider(key="wi_n").set_value(100)
    at.button(key="wi_run").click().run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    affected, total = metrics["Users affected"].split(" of ")
    assert int(total) == 100 and 0 < int(affected) <= 100
    # save, list, load and delete the scenario
    at.text_input(key="wi_name").input("boost A to B").run()
    at.button(key="wi_save").click().run()
    no_exception(at)
    assert "boost A to B" in frames_with(at, "users affected")[0]["name"].tolist()
    at.button(key="wi_load").click().run()
    assert at.session_state["wi_result"]["name"] == "boost A to B"
    assert not any("Session State API" in w.value for w in at.warning)  # no widget default fights the load
    assert at.button(key="wi_delete").disabled  # deleting needs its confirmation
    at.checkbox(key="wi_delete_confirm_boost A to B").check().run()
    at.button(key="wi_delete").click().run()
    no_exception(at)
    assert not frames_with(at, "users affected")


@pytest.mark.slow
def test_whatif_weights_with_held_out_delta(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "whatif")
    at.toggle(key="wi_use_w").set_value(True).run()
    at.slider(key="wi_w_popularity").set_value(1.0)
    at.slider(key="wi_n").set_value(100)
    at.button(key="wi_run").click().run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert "Users affected" in labels and labels.count("Found later buys") == 1  # one card per figure
    assert frames_with(at, "scenario")


# ---- runs --------------------------------------------------------------------------------------------------


def test_runs_table_lists_the_serving_run(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "runs")
    table = frames_with(at, "serving")[0]
    assert table["name"].tolist() == ["first"] and bool(table["serving"].iloc[0])
    assert "Train a second run to compare." in texts(at)


@pytest.mark.slow
def test_retrain_in_background_is_recorded_not_live_until_made_live(shop_copy, monkeypatch):
    import ui.state

    at = app(shop_copy, monkeypatch, "runs")
    at.text_input(key="train_name").input("second")
    at.toggle(key="train_learn").set_value(False).run()
    assert not at.slider(key="train_w_popularity").disabled  # the sliders count only without learning
    at.slider(key="train_w_popularity").set_value(0.6)
    submit_button(at).click().run()
    job = ui.state._process_state(str(shop_copy))["job"]
    deadline = time.time() + 300
    while job["status"] == "running" and time.time() < deadline:
        time.sleep(1)
    assert job["status"] == "done", job["error"]
    at.run()
    at.run()
    no_exception(at)
    table = frames_with(at, "serving")[0]
    assert set(table["name"]) == {"first", "second"}
    assert table.set_index("name").loc["first", "serving"]  # training did not change the live run
    assert "first" in "\n".join(t.value for t in at.sidebar.text)
    at.checkbox(key="live_confirm_second").check().run()
    at.button(key="live_btn").click().run()
    no_exception(at)
    assert frames_with(at, "serving")[0].set_index("name").loc["second", "serving"]
    assert "second" in "\n".join(t.value for t in at.sidebar.text)  # the sidebar's live run follows


def test_taken_run_name_is_refused(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "runs")
    at.text_input(key="train_name").input("first")
    submit_button(at).click().run()
    no_exception(at)
    assert any("exists already" in e.value for e in at.error)


def test_failed_training_shows_reason_and_last_run_keeps_serving(shop_copy, monkeypatch):
    import crossrec_core.train as train_mod
    import ui.state
    from crossrec_core.errors import CrossRecError

    def broken(*args, **kwargs):
        raise CrossRecError("nothing to train on after the time split")

    monkeypatch.setattr(train_mod, "train", broken)
    at = app(shop_copy, monkeypatch, "runs")
    submit_button(at).click().run()
    job = ui.state._process_state(str(shop_copy))["job"]
    deadline = time.time() + 30
    while job["status"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    no_exception(at)
    assert any("nothing to train on after the time split" in e.value for e in at.error)
    table = frames_with(at, "serving")[0]
    assert table["name"].tolist() == ["first"] and bool(table["serving"].iloc[0])


def submit_button(at: AppTest):
    return next(b for b in at.button if b.label == "Start training")


# ---- export ------------------------------------------------------------------------------------------------


def test_export_one_user_preview_and_file(trained_shop, monkeypatch):
    from crossrec_core.export import COLUMNS

    at = app(trained_shop, monkeypatch, "user")
    uid = at.text_input(key="user_id_input").value
    at.switch_page("views/export.py").run()
    no_exception(at)
    assert at.text_input(key="exp_user").value == uid
    preview = frames_with(at, "user_id")[0]
    assert list(preview.columns) == COLUMNS and set(preview["user_id"]) == {uid} and len(preview) == 20
    at.button(key="exp_prepare").click().run()
    no_exception(at)
    assert at.get("download_button")
    assert "exp_prepare" not in [b.key for b in at.button]  # one step: the download takes the prepare button's place


def test_export_segment_by_category(trained_shop, monkeypatch):
    at = app(trained_shop, monkeypatch, "export")
    at.button_group(key="exp_who").set_value("Segment").run()
    no_exception(at)
    assert any("users selected" in c.value for c in at.caption)
    assert frames_with(at, "user_id")


# ---- data -------------------------------------------------------------------------------------------------


def test_upload_with_error_shows_line_and_loads_nothing(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "data")
    bad = b"user_id,item_id,event_type,timestamp\nu1,x,view,2024-01-01T00:00:00Z\nu2,y,view,not-a-date\n"
    at.file_uploader(key="upload_events").set_value(("events.csv", bad, "text/csv")).run()
    no_exception(at)
    assert at.error and "line 3" in at.error[0].value and "timestamp" in at.error[0].value
    ingest = at.button(key="ingest")
    assert ingest.disabled


def test_upload_and_ingest_reports_and_counts(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "data")
    items = b"item_id,title,category,price\nNEW1,=HYPERLINK(\"x\") [link](javascript:x) **bold**,Garden > Tools,9.5\n"
    events = b"user_id,item_id,event_type,timestamp\nnewbie,NEW1,purchase,2026-10-01T10:00:00Z\nnewbie,NOPE,view,2026-10-01T11:00:00Z\n"
    at.file_uploader(key="upload_items").set_value(("items.csv", items, "text/csv"))
    at.file_uploader(key="upload_events").set_value(("events.csv", events, "text/csv")).run()
    no_exception(at)
    assert not at.error
    at.button(key="ingest").click().run()
    no_exception(at)
    report = "\n".join(t.value for t in at.text)
    assert "items: 1 in file, 1 new" in report and "not in the catalog" in report
    assert any(c.value.startswith("701 items") for c in at.sidebar.caption)  # the sidebar counts, same run
    at.switch_page("views/overview.py").run()
    assert {m.label: m.value for m in at.metric}["Items"] == "701"


def test_upload_is_checked_and_loaded_from_a_temporary_file_and_the_page_states_the_limit(shop_copy, monkeypatch):
    at = app(shop_copy, monkeypatch, "data")
    assert "Files up to 200 MB each" in texts(at)
    items = b"item_id,title,category\nNEW1,Spade,Garden > Tools\nNEW2,\"Two\r\nlines\",Garden > Tools\n"
    at.file_uploader(key="upload_items").set_value(("../../items.csv", items, "text/csv")).run()
    no_exception(at)
    (path,) = at.session_state["upload_files"].values()
    assert Path(path).name == "items.csv" and Path(path).read_bytes() == items  # on disk, under its base name
    at.button(key="ingest").click().run()
    no_exception(at)
    assert "items: 2 in file, 2 new" in texts(at)
    at.file_uploader(key="upload_items").set_value(None).run()
    assert not Path(path).exists()  # the temporary copy goes with the upload
    import ui.state

    store = ui.state._open_store(str(shop_copy))  # the app's own connection (this process holds the file)
    assert store.item("NEW2")["title"] == "Two\r\nlines"
    assert store.ingest_log()["files"].iloc[0] == "items.csv"


def test_data_page_removes_events_only_after_the_confirmation(shop_copy, monkeypatch):
    import ui.state

    at = app(shop_copy, monkeypatch, "data")
    store = ui.state._open_store(str(shop_copy))
    total = store.stats()["events"]
    cut = str(store.events()["ts"].sort_values().iloc[9])  # the 10th oldest event: at least 9 before it
    at.text_input(key="del_before").input(cut).run()
    no_exception(at)
    matching = store.count_events(before=cut)
    assert matching >= 9
    (box,) = [c for c in at.checkbox if c.label.startswith("Yes, remove these")]
    assert box.label == f"Yes, remove these {matching:,} events (this cannot be undone)"
    assert at.button(key="del_events").disabled  # not before the confirmation
    box.check().run()
    at.button(key="del_events").click().run()
    no_exception(at)
    assert f"Removed {matching:,} events" in texts(at)
    assert store.stats()["events"] == total - matching


def test_user_history_chart_axis_shows_a_quote_as_a_quote_not_as_quot(shop_copy, monkeypatch):
    import json

    import pandas as pd

    from crossrec_core.store import Store

    with Store(shop_copy) as store:
        store.ingest_frames(items=pd.DataFrame([{"item_id": "Q1", "title": 'The "12" single',
                                                 "category": 'Vinyl "12" > Singles'}]),
                            events=pd.DataFrame([{"user_id": "quoter", "item_id": "Q1", "event_type": "purchase",
                                                  "timestamp": "2026-10-01T10:00:00Z"}]))
    at = app(shop_copy, monkeypatch, "user")
    at.text_input(key="user_id_input").input("quoter").run()
    no_exception(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # the history timeline comes first
    labels = [y for trace in spec["data"] for y in trace["y"]]
    assert labels == ['Vinyl "12"'] and "&quot;" not in json.dumps(spec)


def test_shop_text_is_escaped_for_markdown_and_plotly():
    from ui.text import ht, md

    assert md("[x](javascript:alert(1)) **b** :red[c] $x$") == (
        r"\[x\]\(javascript\:alert\(1\)\) \*\*b\*\* \:red\[c\] \$x\$")
    assert ht('<a href="x">t</a>') == '&lt;a href="x"&gt;t&lt;/a&gt;'
    assert ht('12" vinyl & "more"') == '12" vinyl &amp; "more"'  # Plotly would show &quot; as it is


# ---- map (UMAP compiles on its first run in a process: slow) --------------------------------------------


@pytest.mark.slow
def test_map_computes_stores_and_draws_a_user(shop_copy, monkeypatch):
    uid = a_user(shop_copy)
    at = app(shop_copy, monkeypatch, "map")
    no_exception(at)
    assert len(at.get("plotly_chart")) == 1
    at.text_input(key="map_user").input(uid).run()
    no_exception(at)
    caption = "\n".join(c.value for c in at.caption)
    assert "items on the map" in caption and "recommendations are on the map" in caption


@pytest.mark.slow
def test_map_draws_a_sample_until_asked_for_every_point(shop_copy, monkeypatch):
    import base64
    import json

    import numpy as np
    import ui.state
    from crossrec_core.config import Settings

    monkeypatch.setattr(ui.state, "settings", lambda: Settings().replace({"dashboard.map_draw_points": 200}))
    at = app(shop_copy, monkeypatch, "map")
    no_exception(at)

    def drawn() -> int:
        """Points in the figure sent to the browser (plotly sends numeric arrays as typed base64 blocks)."""
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        xs = [t.get("x", []) for t in spec["data"]]
        return sum(len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize if isinstance(x, dict)
                   else len(x) for x in xs)

    caption = "\n".join(c.value for c in at.caption)
    assert "200 of 700 mapped items drawn" in caption
    assert drawn() == 200
    at.toggle(key="map_draw_all").set_value(True).run()
    no_exception(at)
    assert drawn() == 700
    assert "mapped items drawn" not in "\n".join(c.value for c in at.caption)

    # an unknown user with every point drawn leaves nothing to note: the caption still ends in one sentence
    at.text_input(key="map_user").input("nobody").run()
    no_exception(at)
    assert any("No user 'nobody'" in w.value for w in at.warning)
    caption = next(c.value for c in at.caption if "items on the map" in c.value)
    assert caption.endswith("mean little."), caption


def test_training_progress_is_shown_in_full_and_inert():
    from ui.training import progress_text

    step = "scoring the EASE baseline for comparison on the held out window, 2 of 3"  # 70 characters
    assert progress_text({"name": "[x]", "message": step}) == r"Training \[x\]\: " + step
