"""The DuckDB store: round trips, the all-or-nothing rule, idempotent reloads, stats, runs, scenarios, locking."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from crossrec_core.errors import CrossRecError, DatabaseLockedError, ValidationError
from crossrec_core.store import Store

STATS_KEYS = {"items", "users", "events", "top_level_categories", "categories", "event_types", "first_event",
              "last_event"}


def test_items_round_trip(write, db_path):
    items = write("items.csv", (
        "item_id,title,category,description,brand,price\n"
        "i1,Zoom lens,Electronics > Cameras > Lenses,A 70-200 mm lens,Canon,1299.5\n"
        "i2,Chef knife,  Home>Kitchen >  Knives ,,,\n"
        "i3,Cake tin,,,,0\n"
        "i4,Gift card, > ,,,\n"
        "i5,Socks,Apparel,Wool,,7\n"
    ))
    with Store(db_path) as store:
        report = store.ingest_files(items=items)
        got = store.items().set_index("item_id")
    assert (report.items_in_file, report.items_added, report.items_updated) == (5, 5, 0)
    assert list(got.index) == ["i1", "i2", "i3", "i4", "i5"]
    lens = got.loc["i1"]
    assert (lens.title, lens.description, lens.brand, lens.price) == ("Zoom lens", "A 70-200 mm lens", "Canon", 1299.5)
    assert (lens.category, lens.cat_top, lens.cat_sub, lens.cat_depth) == (
        "Electronics > Cameras > Lenses", "Electronics", "Electronics > Cameras", 3)
    knife = got.loc["i2"]  # spacing around '>' is normalised
    assert (knife.category, knife.cat_top, knife.cat_sub, knife.cat_depth) == (
        "Home > Kitchen > Knives", "Home", "Home > Kitchen", 3)
    assert pd.isna(knife.price) and knife.description == "" and knife.brand == ""
    for empty in ("i3", "i4"):
        row = got.loc[empty]
        assert (row.category, row.cat_top, row.cat_sub, row.cat_depth) == (
            "Uncategorised", "Uncategorised", "Uncategorised", 0)
    assert got.loc["i3"].price == 0.0
    socks = got.loc["i5"]
    assert (socks.category, socks.cat_top, socks.cat_sub, socks.cat_depth) == ("Apparel", "Apparel", "Apparel", 1)
    assert got["added_at"].notna().all()


def test_events_and_users_round_trip(write, db_path):
    items = write("items.csv", "item_id,title,category\ni1,Lens,Electronics\ni2,Shirt,Apparel\n")
    users = write("users.csv", "user_id,profile_text,segment\nu1,Keen photographer,pro\nu3,,\n")
    events = write("events.csv", (
        "user_id,item_id,event_type,timestamp,value\n"
        "u1,i1,view,2024-01-01T10:00:00Z,\n"
        "u1,i1,review,2024-01-01T11:00:00+01:00,4.5\n"
        "u2,i2,purchase,1704153600,39.9\n"
    ))
    with Store(db_path) as store:
        report = store.ingest_files(items, events, users)
        ev = store.events()
        u1, u2, u3 = store.user("u1"), store.user("u2"), store.user("u3")
        history = store.user_events("u1")
    assert (report.users_in_file, report.users_added, report.events_added) == (2, 3, 3)
    ev = ev.sort_values(["ts", "user_id", "event_type"]).fillna({"value": -1.0})
    assert ev.to_dict("records") == [
        {"user_id": "u1", "item_id": "i1", "event_type": "review", "ts": pd.Timestamp("2024-01-01 10:00"),
         "value": 4.5},
        {"user_id": "u1", "item_id": "i1", "event_type": "view", "ts": pd.Timestamp("2024-01-01 10:00"),
         "value": -1.0},  # empty value is missing
        {"user_id": "u2", "item_id": "i2", "event_type": "purchase", "ts": pd.Timestamp("2024-01-02 00:00"),
         "value": 39.9},
    ]
    assert (u1["profile_text"], json.loads(u1["attrs"])) == ("Keen photographer", {"segment": "pro"})
    assert u2["user_id"] == "u2" and pd.isna(u2["profile_text"])  # created from its events
    assert u3["profile_text"] == ""
    assert history["title"].tolist() == ["Lens", "Lens"]


def test_ingest_frames_uses_the_same_validation(db_path):
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "category": ["X > Y", ""]})
    bad = pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "event_type": ["view"], "timestamp": ["soon"]})
    with Store(db_path) as store:
        store.ingest_frames(items=items)
        with pytest.raises(ValidationError) as caught:
            store.ingest_frames(events=bad, source="upload")
        assert str(caught.value) == (
            "upload:events row 1, column timestamp: timestamp 'soon' is neither ISO 8601 nor Unix seconds")
        assert store.stats()["events"] == 0
        assert store.item("b")["cat_top"] == "Uncategorised"


# ---- all or nothing ----------------------------------------------------------------------------------


def test_bad_last_row_of_a_big_events_file_loads_nothing(write, seeded_db, db_state):
    n = 200_000
    rows = [f"u{k % 997},i{k % 3 + 1},view,{1_700_000_000 + k}\n" for k in range(n - 1)]
    events = write("events.csv", "user_id,item_id,event_type,timestamp\n" + "".join(rows) + "u1,i1,view,not a time\n")
    before = db_state(seeded_db)
    with Store(seeded_db) as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(events=events)
    assert str(caught.value) == (
        f"events.csv line {n + 1}, column timestamp: timestamp 'not a time' is neither ISO 8601 nor Unix seconds")
    assert db_state(seeded_db) == before


def test_bad_items_file_stops_a_valid_events_file_too(write, seeded_db, db_state):
    items = write("items.csv", "item_id,title,category,price\ni7,Mug,Home,3\ni8,Kettle,Home,-4\n")
    events = write("events.csv", "user_id,item_id,event_type,timestamp\nu5,i1,view,1704067200\nu5,i7,cart,1704067200\n")
    before = db_state(seeded_db)
    with Store(seeded_db) as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(items=items, events=events)
    assert str(caught.value) == "items.csv line 3, column price: negative price -4.0"
    assert db_state(seeded_db) == before


def test_a_failure_inside_the_transaction_rolls_everything_back(seeded_db, db_state):
    before = db_state(seeded_db)
    with Store(seeded_db) as store:
        with pytest.raises(RuntimeError), store.transaction() as con:
            con.execute("DELETE FROM events")
            con.execute("INSERT INTO users VALUES ('ghost', NULL, NULL, now()::TIMESTAMP)")
            raise RuntimeError("boom")
    assert db_state(seeded_db) == before


def test_reloading_the_same_files_adds_nothing(write, tmp_path, db_path, db_state):
    items = write("items.csv", "item_id,title,category,price\ni1,Lens,Electronics,10\ni2,Shirt,Apparel,\n")
    users = write("users.csv", "user_id,profile_text\nu1,likes photos\n")
    events = write("events.csv", (
        "user_id,item_id,event_type,timestamp,value\n"
        "u1,i1,view,2024-01-01T10:00:00Z,\n"
        "u1,i1,view,2024-01-01T10:00:00Z,\n"  # identical row: loaded once
        "u2,i2,cart,2024-01-01T11:00:00.123456Z,2\n"
    ))
    with Store(db_path) as store:
        first = store.ingest_files(items, events, users)
    state = db_state(db_path)
    with Store(db_path) as store:
        second = store.ingest_files(items, events, users)
    assert (first.items_added, first.events_added, first.events_repeated_in_file, first.users_added) == (2, 2, 1, 2)
    assert (second.items_added, second.items_updated, second.events_added, second.users_added) == (0, 0, 0, 0)
    assert (second.events_duplicate, second.events_repeated_in_file) == (2, 1)
    assert second.lines()[2] == "events: 3 in file, 0 added, 2 already loaded, 1 identical rows loaded once"
    after = db_state(db_path)
    assert {k: after[k] for k in ("items", "events", "users")} == {k: state[k] for k in ("items", "events", "users")}
    assert after["ingest_log"] == 2

    # the same data as Parquet is the same data
    pd.read_csv(events, dtype=str, keep_default_na=False).to_parquet(tmp_path / "events.parquet")
    with Store(db_path) as store:
        third = store.ingest_files(events=tmp_path / "events.parquet")
    assert (third.events_added, third.events_duplicate) == (0, 2)


def test_changed_items_are_updated_not_duplicated(write, db_path):
    with Store(db_path) as store:
        store.ingest_files(items=write("a.csv", "item_id,title,category\ni1,Lens,Electronics\ni2,Shirt,Apparel\n"))
        added = store.item("i1")["added_at"]
        report = store.ingest_files(items=write("b.csv", "item_id,title,category\ni1,Zoom lens,Electronics\ni3,Hat,Apparel\n"))
        assert (report.items_added, report.items_updated) == (1, 1)
        assert store.item("i1")["title"] == "Zoom lens"
        assert store.item("i1")["added_at"] == added
        assert store.stats()["items"] == 3


# ---- stats ----------------------------------------------------------------------------------------------


def test_stats_shape_matches_the_contract(seeded_db):
    with Store(seeded_db, read_only=True) as store:
        stats = store.stats()
    assert set(stats) == STATS_KEYS
    assert stats == {
        "items": 3, "users": 2, "events": 3, "top_level_categories": 3, "categories": 3,
        "event_types": {"view": 1, "purchase": 1, "cart": 1},
        "first_event": "2024-01-01T10:00:00Z", "last_event": "2024-01-03T10:00:00Z",
    }
    assert json.loads(json.dumps(stats)) == stats


def test_stats_of_an_empty_database(db_path):
    with Store(db_path) as store:
        stats = store.stats()
    assert stats == {"items": 0, "users": 0, "events": 0, "top_level_categories": 0, "categories": 0,
                     "event_types": {}, "first_event": None, "last_event": None}


# ---- runs and scenarios ----------------------------------------------------------------------------------


def _run(store: Store, name: str, serve: bool = True) -> int:
    return store.add_run(name=name, kind="train", fingerprint="fp", settings={"k": 20}, weights={"cooc": 0.5},
                         metrics={"recall": 0.25}, duration_s=1.5, artefact_path=None, serve=serve)


def test_runs(db_path):
    with Store(db_path) as store:
        assert store.run() is None and store.runs().empty
        assert _run(store, "first") == 1
        assert _run(store, "second") == 2
        assert _run(store, "draft", serve=False) == 3
        runs = store.runs()
        assert runs["name"].tolist() == ["draft", "second", "first"]  # newest first
        assert runs["serving"].tolist() == [False, True, False]
        assert runs.iloc[0]["weights"] == {"cooc": 0.5} and runs.iloc[0]["metrics"] == {"recall": 0.25}
        assert store.run()["name"] == "second"

        store.set_serving("first")
        assert store.run()["name"] == "first"
        assert store.runs()["serving"].sum() == 1

        with pytest.raises(CrossRecError) as caught:
            _run(store, "second")
        assert str(caught.value) == "a run named 'second' already exists; choose another --name"
        with pytest.raises(CrossRecError) as caught:
            store.set_serving("nope")
        assert str(caught.value) == "no run named 'nope'"
        # neither failure changed anything
        assert store.run_names() == ["first", "second", "draft"]
        assert store.run()["name"] == "first"


def test_scenarios(db_path):
    with Store(db_path) as store:
        assert store.scenarios().empty
        store.save_scenario("boost", {"pairs": [["A", "B", 1.5]]}, {"users_affected": 12})
        store.save_scenario("damp", {"pairs": [["B", "C", 0.5]]})
        listed = store.scenarios().set_index("name")
        assert listed.loc["boost", "spec"] == {"pairs": [["A", "B", 1.5]]}
        assert listed.loc["boost", "result"] == {"users_affected": 12}
        assert listed.loc["damp", "result"] is None
        store.save_scenario("boost", {"pairs": []})  # same name replaces
        assert sorted(store.scenarios()["name"]) == ["boost", "damp"]
        assert store.scenarios().set_index("name").loc["boost", "spec"] == {"pairs": []}
        store.delete_scenario("damp")
        assert store.scenarios()["name"].tolist() == ["boost"]


# ---- opening the file -----------------------------------------------------------------------------------


def test_missing_database_read_only(tmp_path):
    missing = tmp_path / "none.duckdb"
    with pytest.raises(CrossRecError) as caught:
        Store(missing, read_only=True)
    assert str(caught.value) == f"no database at {missing}: run `crossrec demo` or `crossrec ingest` first"
    assert not missing.exists()


def test_second_process_gets_database_locked_naming_the_pid(seeded_db, hold_db):
    pid = hold_db(seeded_db)
    for read_only in (False, True):
        with pytest.raises(DatabaseLockedError) as caught:
            Store(seeded_db, read_only=read_only)
        assert str(caught.value) == (
            f"database {seeded_db} is held by PID {pid} (a running dashboard or another crossrec command); "
            "stop it or use another --db"
        )


def test_health_counts_each_gap(write, db_path):
    items = write("items.csv", (
        "item_id,title,category,description\n"
        "i1,Lens,Electronics,A lens\n"
        "i2, ,Home,\n"
        "i3,Socks,,Wool\n"
    ))
    users = write("users.csv", "user_id\nu1\nu9\n")
    events = write("events.csv", (
        "user_id,item_id,event_type,timestamp\n"
        "u1,i1,view,2024-01-01T10:00:00Z\n"
        "u1,ghost,view,2024-01-01T10:00:00Z\n"
        "u2,i1,teleport,2024-01-02T10:00:00Z\n"
    ))
    with Store(db_path) as store:
        store.ingest_files(items, events, users)
        health = store.health()
    assert health == {
        "items_without_title": 1, "items_without_description": 1, "items_uncategorised": 1,
        "items_without_events": 2, "users_without_events": 1, "events_rejected_unknown_item": 1,
        "events_rejected_unknown_type": 1, "loads": 1,
    }
