"""The `crossrec` command as a user runs it: a real process, exit codes, one-line errors, machine-readable stats."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crossrec_core.cli import COMMANDS

ITEMS = "item_id,title,category,price\ni1,Lens,Electronics > Cameras,10\ni2,Shirt,Apparel > Tops,\ni3,Cake,,\n"
EVENTS = (
    "user_id,item_id,event_type,timestamp\n"
    "u1,i1,view,2024-01-01T10:00:00Z\n"
    "u1,i2,purchase,2024-01-02T10:00:00+02:00\n"
    "u2,i1,like,1704067200\n"
)
STATS_KEYS = {"items", "users", "events", "top_level_categories", "categories", "event_types", "first_event",
              "last_event"}


def _entry_point() -> list[str]:
    script = Path(sys.executable).with_name("crossrec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crossrec_core.cli"]


@pytest.fixture
def crossrec(tmp_path):
    """crossrec(*args, env=None) -> CompletedProcess of the installed command (text, no tty, never ~/.crossrec)."""

    def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "CROSSREC_HOME": str(tmp_path / "home"), **(env or {})}
        full_env.pop("CROSSREC_DB", None)
        return subprocess.run([*_entry_point(), *map(str, args)], capture_output=True, text=True, env=full_env,
                              timeout=120, stdin=subprocess.DEVNULL)

    return _run


def _one_line_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr == expected + "\n"
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [None, *sorted(COMMANDS)])
def test_help(crossrec, command):
    proc = crossrec(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: crossrec") and proc.stderr == ""
    if command:
        assert "--db" in proc.stdout


def test_ingest_good_files_prints_the_report(crossrec, write, db_path):
    items, events = write("items.csv", ITEMS), write("events.csv", EVENTS)
    proc = crossrec("ingest", "--db", db_path, "--items", items, "--events", events)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    *lines, timing = proc.stdout.splitlines()
    assert lines == [
        "items: 3 in file, 3 new, 0 updated",
        "events: 3 in file, 2 added, 0 already loaded",
        "skipped 1 events of unknown type: 'like' (1) (known: view, click, cart, purchase, review)",
    ]
    assert re.fullmatch(r"loaded 6 rows in [\d.,]+ s \([\d,]+ rows/s\), peak RSS [\d,]+ MB", timing), timing
    again = crossrec("ingest", "--db", db_path, "--items", items, "--events", events, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["items_added"], report["events_added"], report["events_duplicate"]) == (0, 0, 2)


def test_ingest_bad_file_is_one_line_and_changes_nothing(crossrec, write, seeded_db, db_state):
    before = db_state(seeded_db)
    bad = write("events.csv", EVENTS + "u2,i1,view,yesterday\n")
    proc = crossrec("ingest", "--db", seeded_db, "--events", bad)
    _one_line_error(proc, "crossrec ingest: events.csv line 5, column timestamp: "
                          "timestamp 'yesterday' is neither ISO 8601 nor Unix seconds")
    assert db_state(seeded_db) == before


def test_ingest_bad_file_into_a_new_database_leaves_no_file(crossrec, write, tmp_path):
    db = tmp_path / "fresh.duckdb"
    proc = crossrec("ingest", "--db", db, "--items", write("items.csv", "item_id,title\ni1,x\n"))
    _one_line_error(proc, "crossrec ingest: items.csv line 1: missing required column 'category' for items "
                          "(found: item_id, title)")
    assert not db.exists() and not Path(f"{db}.wal").exists()


def test_ingest_encoding_option(crossrec, write, db_path):
    items = write("items.csv", b"item_id,title,category\ni9,caf\xe9,Drinks\n")
    proc = crossrec("ingest", "--db", db_path, "--items", items)
    _one_line_error(proc, "crossrec ingest: items.csv line 2: byte 0xe9 at character 7 is not valid UTF-8; "
                          "save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)")
    proc = crossrec("ingest", "--db", db_path, "--items", items, "--encoding", "cp1252")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "items: 1 in file, 1 new, 0 updated"


def test_ingest_without_files(crossrec, db_path):
    proc = crossrec("ingest", "--db", db_path)
    _one_line_error(proc, "crossrec ingest: nothing to ingest: give --items, --events and/or --users")
    assert not db_path.exists()


def test_ingest_missing_file(crossrec, tmp_path, db_path):
    missing = tmp_path / "nope.csv"
    proc = crossrec("ingest", "--db", db_path, "--items", missing)
    _one_line_error(proc, f"crossrec ingest: {missing}: no such file")


def test_stats_json_is_one_document_with_the_contract_keys(crossrec, seeded_db):
    proc = crossrec("stats", "--db", seeded_db, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count("\n") == 1 and proc.stdout.endswith("\n")
    stats = json.loads(proc.stdout)  # fails on anything besides one document
    assert set(stats) == STATS_KEYS
    assert stats == {
        "items": 3, "users": 2, "events": 3, "top_level_categories": 3, "categories": 3,
        "event_types": {"view": 1, "purchase": 1, "cart": 1},
        "first_event": "2024-01-01T10:00:00Z", "last_event": "2024-01-03T10:00:00Z",
    }


def test_stats_text(crossrec, seeded_db):
    proc = crossrec("stats", "--db", seeded_db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [f"database     {seeded_db}", "items        3", "users        2", "events       3"]


def test_stats_on_a_missing_database(crossrec, tmp_path):
    missing = tmp_path / "missing.duckdb"
    proc = crossrec("stats", "--db", missing, "--json")
    _one_line_error(proc, f"crossrec stats: no database at {missing}: run `crossrec demo` or `crossrec ingest` first")
    assert not missing.exists()


def test_timestamps_are_utc_whatever_the_machine_time_zone(crossrec, write, db_path):
    items, events = write("items.csv", ITEMS), write("events.csv", EVENTS)
    for tz in ("America/New_York", "Asia/Kolkata"):
        db = db_path.with_name(f"{tz.replace('/', '_')}.duckdb")
        assert crossrec("ingest", "--db", db, "--items", items, "--events", events, env={"TZ": tz}).returncode == 0
        stats = json.loads(crossrec("stats", "--db", db, "--json", env={"TZ": tz}).stdout)
        assert (stats["first_event"], stats["last_event"]) == ("2024-01-01T10:00:00Z", "2024-01-02T08:00:00Z")


def test_locked_database_is_one_line_naming_the_pid(crossrec, seeded_db, hold_db, write):
    pid = hold_db(seeded_db)
    reason = (f"database {seeded_db} is held by PID {pid} (a running dashboard or another crossrec command); "
              "stop it or use another --db")
    _one_line_error(crossrec("stats", "--db", seeded_db, "--json"), f"crossrec stats: {reason}")
    _one_line_error(crossrec("ingest", "--db", seeded_db, "--items", write("items.csv", ITEMS)),
                    f"crossrec ingest: {reason}")


def test_rules_runs_and_undo_as_installed(crossrec, seeded_db):
    """The governance commands through the real entry point: JSON shapes, one-line errors, exit codes."""
    _one_line_error(crossrec("rules", "add", "--db", seeded_db, "--name", "x", "--pin", "nope", "--position", "1"),
                    "crossrec rules: unknown item 'nope'")
    _one_line_error(crossrec("rules", "add", "--db", seeded_db, "--exclude-category", "Garden"),
                    "crossrec rules: unknown category 'Garden'")
    added = crossrec("rules", "add", "--db", seeded_db, "--name", "Lenses first", "--pin", "i1", "--position", "1")
    assert added.returncode == 0 and added.stdout == "added rule 1 'Lenses first': pin item i1\n", added.stderr
    listed = crossrec("rules", "list", "--db", seeded_db, "--json")
    rules = json.loads(listed.stdout)
    assert listed.returncode == 0 and [(r["id"], r["name"], r["kind"], r["position"]) for r in rules] == [
        (1, "Lenses first", "pin", 1)]
    runs = crossrec("runs", "list", "--db", seeded_db, "--json")
    assert runs.returncode == 0 and json.loads(runs.stdout) == []
    _one_line_error(crossrec("runs", "promote", "--db", seeded_db, "nope"), "crossrec runs: no run named 'nope'")
    undone = crossrec("undo", "--db", seeded_db)
    assert undone.returncode == 0 and undone.stdout.startswith("undid change 1: rules"), undone.stderr
    _one_line_error(crossrec("undo", "--db", seeded_db), "crossrec undo: nothing to undo")
