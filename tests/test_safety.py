"""Issue 12: nothing lost, no one in. One test (or a tight group) per defect found by adversarial testing,
each on real DuckDB files and real CSVs in tmp_path; the test names state the reproduction."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store
from crossrec_core.train import load_run, train

PACKAGE = Path(__file__).resolve().parents[1] / "crossrec_core"


@pytest.fixture(scope="module")
def tiny_shop(tmp_path_factory) -> Path:
    """A small generated shop (no item texts encoded) with one run 'r' trained with default weights."""
    from crossrec_core.demo import generate

    path = tmp_path_factory.mktemp("tiny") / "shop.duckdb"
    shop = generate(3, n_items=150, n_users=80, days=30)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        train(store, Settings(db_path=path), name="r", learn=False, baselines=False)
    return path


@pytest.fixture
def shop(tiny_shop, tmp_path) -> Path:
    """A private copy of the tiny shop (database and artefacts) in this test's own folder."""
    path = tmp_path / "A" / "shop.duckdb"
    path.parent.mkdir()
    shutil.copy(tiny_shop, path)
    shutil.copytree(str(tiny_shop) + ".artefacts", str(path) + ".artefacts")
    return path


def _run_dir(path: Path, name: str = "r") -> Path:
    with Store(path, read_only=True) as store:
        return store.artefact_dir / store.run(name)["artefact_path"]


def _a_user(path: Path) -> str:
    with Store(path, read_only=True) as store:
        return store.user_summary().query("purchases > 1")["user_id"].iloc[0]


class _Plant:
    """Unpickling this creates the marker file: what a planted model file would do if it were unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# ---- 2. runs record their model folder relative to the working directory --------------------------


def test_relative_db_from_another_cwd_serves_its_own_model_not_a_same_named_folder_there(shop, tmp_path, cli,
                                                                                          monkeypatch):
    user = _a_user(shop)
    monkeypatch.chdir(shop.parent)
    rc, own, err = cli("recommend", "--db", "shop.duckdb", "--user", user, "--k", "5", "--json", "--quiet")
    assert rc == 0, err
    # elsewhere: a folder of the same name holding another shop's model and a planted model.pkl
    elsewhere = tmp_path / "B"
    planted = elsewhere / "shop.duckdb.artefacts" / _run_dir(shop).name
    planted.mkdir(parents=True)
    marker = tmp_path / "pwned"
    (planted / "model.pkl").write_bytes(pickle.dumps(_Plant(marker)))
    monkeypatch.chdir(elsewhere)
    rc, again, err = cli("recommend", "--db", "../A/shop.duckdb", "--user", user, "--k", "5", "--json", "--quiet")
    assert rc == 0, err
    assert json.loads(again) == json.loads(own)
    assert not marker.exists()
    with Store(shop, read_only=True) as store:
        assert store.run("r")["artefact_path"] == _run_dir(shop).name  # an id, relative to the artefacts folder
        assert "/" not in store.run("r")["artefact_path"]


@pytest.mark.parametrize("where", ["model.pkl", "model.npz"])
def test_planted_malicious_model_file_raises_a_clear_error_and_never_runs(shop, tmp_path, where):
    folder = _run_dir(shop)
    marker = tmp_path / "pwned"
    if where == "model.pkl":  # an old-format run folder: model.pkl only
        for p in folder.iterdir():
            p.unlink()
        (folder / "model.pkl").write_bytes(pickle.dumps(_Plant(marker)))
        expected = r"old model\.pkl.*retrain with `crossrec train`"
    else:  # an object array inside the npz would be unpickled by np.load(allow_pickle=True)
        with open(folder / "model.npz", "wb") as f:
            np.savez(f, evil=np.array([_Plant(marker)], dtype=object))
        expected = r"cannot be read.*retrain with `crossrec train`"
    with Store(shop) as store, pytest.raises(CrossRecError, match=expected):
        load_run(store, "r")
    assert not marker.exists()


def test_a_model_folder_copied_from_another_database_is_refused(shop, tmp_path):
    from crossrec_core.demo import generate

    other = tmp_path / "other.duckdb"
    same_shop = generate(3, n_items=150, n_users=80, days=30)  # the same data, but another database
    with Store(other) as store:
        store.ingest_frames(items=same_shop.items, events=same_shop.events, users=same_shop.users)
        train(store, Settings(db_path=other), name="r", learn=False, baselines=False)
    mine = _run_dir(shop)
    shutil.rmtree(mine)
    shutil.copytree(_run_dir(other), mine)
    with Store(shop) as store, pytest.raises(CrossRecError, match="belongs to another database or run"):
        load_run(store, "r")


def test_the_package_never_uses_pickle():
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"pickle|joblib|dill|marshal|shelve", line) and "allow_pickle=False" not in line:
                hits.append(f"{path.name}:{n}: {line.strip()}")
    assert hits == []


# ---- 3. run names are used as paths ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "/an/absolute/path", "a/b/../c", ".."])
def test_run_name_with_dotdot_or_an_absolute_path_is_a_label_and_writes_only_inside_artefacts(shop, tmp_path,
                                                                                              name, cli):
    user = _a_user(shop)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    rc, out, err = cli("train", "--db", shop, "--name", name, "--no-learn", "--promote", "--quiet")
    assert rc == 0, err
    added = sorted(set(str(p) for p in tmp_path.rglob("*")) - set(before))
    artefacts = str(shop) + ".artefacts" + os.sep
    assert added and all(p.startswith(artefacts) or p.startswith(str(shop)) for p in added), added
    assert not Path("/an/absolute/path").exists()
    with Store(shop) as store:
        assert store.run()["name"] == name
        assert len(load_run(store, name).recommend(user, k=3)) == 3
    rc, out, err = cli("recommend", "--db", shop, "--run", name, "--user", user, "--k", "2", "--quiet")
    assert rc == 0, err


@pytest.mark.parametrize("name, message", [
    ("bad\nname", "run name contains the control character U+000A"),
    ("tab\there", "run name contains the control character U+0009"),
    ("x" * 101, "run name has 101 characters, more than the limit of 100"),
])
def test_run_name_with_control_characters_or_over_100_characters_is_rejected_in_one_line(shop, name, message, cli):
    rc, out, err = cli("train", "--db", shop, "--name", name, "--no-learn", "--quiet")
    assert rc == 2
    assert err.startswith(f"crossrec train: {message}")
    assert len(err.strip().splitlines()) == 1
    with Store(shop, read_only=True) as store:
        assert store.run_names() == ["r"]


# ---- 1. `crossrec export --out` can overwrite the database ------------------------------------------


def test_export_out_the_database_itself_is_refused_and_the_database_survives(shop, cli, db_state, write):
    before = db_state(shop)
    segment = write("seg.csv", f"user_id\n{_a_user(shop)}\n")
    rc, out, err = cli("export", "--db", shop, "--out", shop, "--users", segment, "--quiet")
    assert (rc, out) == (2, "")
    assert err.strip() == f"crossrec export: --out {shop} is the database itself ({shop.name}); write the CSV somewhere else"
    assert db_state(shop) == before


@pytest.mark.parametrize("target, message", [
    (lambda db: Path(f"{db}.wal"), "is a file the database owns (shop.duckdb.wal)"),
    (lambda db: Path(f"{db}.artefacts") / "x.csv", "is a file the database owns (shop.duckdb.artefacts)"),
    (lambda db: Path(f"{db}.artefacts"), "is a file the database owns (shop.duckdb.artefacts)"),
    (lambda db: db.parent / "missing" / "x.csv", "the folder"),
    (lambda db: db.parent, "is a folder; give a file name"),
    (lambda db: db.parent / "existing.csv", "exists already; pass --force to replace it"),
    (lambda db: db.parent / "other.duckdb", "is a DuckDB database; write the CSV somewhere else"),
])
def test_export_out_owned_file_folder_missing_parent_or_existing_file_is_one_clear_line(shop, cli, target, message):
    (shop.parent / "existing.csv").write_text("keep me\n")
    shutil.copy(shop, shop.parent / "other.duckdb")
    out = target(shop)
    rc, stdout, err = cli("export", "--db", shop, "--out", out, "--quiet")
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert (shop.parent / "existing.csv").read_text() == "keep me\n"
    rc, stdout, err = cli("export", "--db", shop, "--out", shop.parent / "existing.csv", "--force", "--k", "2",
                          "--quiet")
    assert rc == 0, err
    assert (shop.parent / "existing.csv").read_text(encoding="utf-8-sig").startswith("user_id,rank,item_id")


# ---- 6. `--db x.csv` loses data silently --------------------------------------------------------


@pytest.mark.parametrize("name, content, what", [
    ("x.csv", b"user_id,item_id\nu1,i1\n", "a text file (CSV?)"),
    ("x.parquet", None, "a Parquet file"),
    ("x.json", b'[{"a": 1}]', "a JSON file"),
    ("x.duckdb", b"", "an empty file"),
])
def test_db_that_is_a_csv_parquet_or_json_file_is_refused_naming_what_it_is(tmp_path, write, cli, name, content,
                                                                          what):
    db = tmp_path / name
    if content is None:
        pd.DataFrame({"a": [1]}).to_parquet(db)
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    items = write("items.csv", "item_id,title,category\ni1,Lens,Photo\n")
    for args in (("ingest", "--items", items), ("stats",), ("train",)):
        rc, out, err = cli(args[0], "--db", db, *args[1:], "--quiet")
        assert rc == 2
        assert err.strip() == (f"crossrec {args[0]}: {db} is {what}, not a DuckDB database: give --db a DuckDB "
                               "file or a new path")
    assert db.read_bytes() == before


# ---- 7. `crossrec demo --force` replaces a file the dashboard holds ----------------------------------


def test_demo_force_on_a_file_another_process_holds_is_refused_and_the_file_is_untouched(shop, hold_db, cli):
    before = shop.read_bytes()
    inode = shop.stat().st_ino
    pid = hold_db(shop)
    rc, out, err = cli("demo", "--db", shop, "--force", "--quiet", "--no-encode")
    assert rc == 2
    assert f"is held by PID {pid}" in err and len(err.strip().splitlines()) == 1
    assert shop.stat().st_ino == inode and not list(shop.parent.glob(f"{shop.name}.building*"))
    assert shop.read_bytes() == before
    assert len(list(Path(f"{shop}.artefacts").iterdir())) == 1


def test_demo_force_on_a_csv_file_is_refused(tmp_path, cli):
    db = tmp_path / "x.csv"
    db.write_text("a,b\n1,2\n")
    rc, out, err = cli("demo", "--db", db, "--force", "--quiet", "--no-encode")
    assert rc == 2 and "is a text file (CSV?), not a DuckDB database" in err
    assert db.read_text() == "a,b\n1,2\n"


# ---- 9. environment errors are reported as bugs -------------------------------------------------------


def _crossrec(*args, **kwargs):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "crossrec_core.cli", *map(str, args)], text=True, **kwargs)


def test_stats_to_a_full_disk_says_no_space_left_and_exits_2(shop):
    with open("/dev/full", "w") as full:
        proc = _crossrec("stats", "--db", shop, stdout=full, stderr=-1)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "crossrec stats: no space left on the device: free some space and run it again"


def test_stats_into_a_closed_pipe_exits_quietly_without_internal_error(shop):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "crossrec_core.cli", "stats", "--db", str(shop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 2
    assert err == ""


def test_ingest_of_an_unreadable_file_says_permission_denied_and_leaves_no_database(tmp_path, write):
    items = write("items.csv", "item_id,title,category\ni1,Lens,Photo\n")
    items.chmod(0)
    db = tmp_path / "new.duckdb"
    prefix = []
    if os.geteuid() == 0:  # root reads anything: run without the capabilities that bypass file modes
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    import subprocess
    import sys

    proc = subprocess.run([*prefix, sys.executable, "-m", "crossrec_core.cli", "ingest", "--db", str(db),
                           "--items", str(items)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"crossrec ingest: permission denied ({items}): this user may not read or write it"
    assert not db.exists()


def test_ingest_that_fills_the_disk_keeps_the_data_and_compact_gives_the_space_back(small_disk, tmp_path, cli):
    disk = small_disk("3m")
    db = disk / "s.duckdb"
    items = pd.DataFrame({"item_id": [f"P{i:05d}" for i in range(3000)], "title": "t", "category": "A > B"})
    items.to_csv(tmp_path / "items.csv", index=False)
    rng = np.random.default_rng(0)
    n = 150_000
    pd.DataFrame({"user_id": [f"u{i:05d}" for i in rng.integers(0, 9000, n)],
                  "item_id": [f"P{i:05d}" for i in rng.integers(0, 3000, n)], "event_type": "view",
                  "timestamp": pd.to_datetime(rng.integers(1.6e9, 1.7e9, n), unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")
                  }).to_csv(tmp_path / "events.csv", index=False)
    assert cli("ingest", "--db", db, "--items", tmp_path / "items.csv", "--quiet")[0] == 0
    size = db.stat().st_size
    rc, out, err = cli("ingest", "--db", db, "--events", tmp_path / "events.csv", "--quiet")
    assert rc == 2
    assert err.startswith(f"crossrec ingest: no space left on the device ({db}")  # the file, its .wal or .tmp
    assert "): free some space and run it again; " in err and len(err.strip().splitlines()) == 1
    assert err.strip().endswith("the data is as it was, but the file keeps the space the failed load took: "
                                "`crossrec compact` gives it back")
    assert db.stat().st_size > size  # DuckDB does not shrink a file by itself
    moved = tmp_path / "s.duckdb"  # "free some space": here, the file goes to a disk with room
    shutil.copy(db, moved)
    rc, out, err = cli("compact", "--db", moved)
    assert rc == 0, err
    assert moved.stat().st_size <= size
    rc, out, err = cli("stats", "--db", moved, "--json")
    assert (json.loads(out)["items"], json.loads(out)["events"]) == (3000, 0)


def test_train_that_fills_the_disk_removes_its_temporary_folder_at_once(shop, small_disk, cli):
    art = Path(f"{shop}.artefacts")
    shutil.rmtree(art)
    disk = small_disk("300k")
    (disk / "art").mkdir()
    art.symlink_to(disk / "art")  # the artefacts folder on a disk too small for a model
    before = sorted(p.name for p in art.iterdir())
    rc, out, err = cli("train", "--db", shop, "--name", "big", "--no-learn", "--quiet")
    assert rc == 2
    assert err.startswith("crossrec train: no space left on the device") and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in art.iterdir()) == before  # no tmp-* folder keeps the disk full
    with Store(shop, read_only=True) as store:
        assert store.run_names() == ["r"]


# ---- 5. one outlier timestamp makes training impossible: the window at ingest ---------------------------

EVENTS_HEADER = "user_id,item_id,event_type,timestamp\n"


@pytest.mark.parametrize("stamp", ["2062-03-01T00:00:00Z", "2999-01-01", "9999-12-31T23:59:59Z", "1970-01-01",
                                   "0001-01-01", "0"])
def test_event_dated_2062_2999_9999_1970_0001_is_rejected_at_ingest_with_line_and_column(seeded_db, write, db_state,
                                                                                        stamp):
    before = db_state(seeded_db)
    events = write("events.csv", EVENTS_HEADER + "u1,i2,view,2024-02-01T00:00:00Z\nu1,i2,cart," + stamp + "\n")
    with Store(seeded_db) as store, pytest.raises(CrossRecError) as err:
        store.ingest_files(events=events)
    assert str(err.value).startswith("events.csv line 3, column timestamp: timestamp ")
    assert "is outside the plausible window 1990-01-01 .. " in str(err.value)
    assert db_state(seeded_db) == before


def test_event_window_is_a_setting(seeded_db, write):
    events = write("events.csv", EVENTS_HEADER + "u1,i2,view,1985-06-01T00:00:00Z\n")
    with Store(seeded_db) as store:
        report = store.ingest_files(events=events, settings=Settings().replace({"ingest.earliest_event": "1980-01-01"}))
    assert report.events_added == 1


# ---- 8. uploads use ~25x their size in memory -----------------------------------------------------------


def test_reading_and_checking_a_csv_takes_under_12_times_its_size_in_memory(tmp_path):
    import tracemalloc

    from crossrec_core.ingest import IngestReport, read_table, validate_events

    rng = np.random.default_rng(0)
    n = 15_000
    frame = pd.DataFrame({"user_id": [f"u{i:05d}" for i in rng.integers(0, 4000, n)],
                          "item_id": [f"P{i:05d}" for i in rng.integers(0, 3000, n)],
                          "event_type": rng.choice(["view", "cart", "purchase"], n),
                          "timestamp": pd.to_datetime(rng.integers(1.6e9, 1.7e9, n), unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")})
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    tracemalloc.start()
    try:
        validate_events(read_table(path, "events"), Settings(), IngestReport())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * path.stat().st_size  # was 16.5x: a list per row and a 4-byte-per-character copy


def test_upload_limit_is_set_in_the_streamlit_config():
    import tomllib

    config = tomllib.loads((PACKAGE.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 200
    assert config["client"]["showErrorDetails"] == "none"


# ---- 10. limits on values; quoted line breaks stored as given ---------------------------------------------


@pytest.mark.parametrize("row, message", [
    ("x" * 513 + ",T,A > B\n", "line 2, column item_id: 513 characters, more than the limit of 512"),
    ("i9,T," + "y" * 2049 + "\n", "line 2, column category: 2,049 characters, more than the limit of 2,048"),
    ("i9,T," + " > ".join("abcdefghijk") + "\n", "line 2, column category: 11 category levels, more than the limit of 10"),
    ("i9,T,A,inf\n", "line 2, column price: 'inf' is not a finite number"),
    ("i9,T,A,-Infinity\n", "line 2, column price: '-Infinity' is not a finite number"),
    ("i9,T,A,nan\n", "line 2, column price: 'nan' is not a number"),
    ("i9,Ti\x00tle,A\n", "line 2, column title: a NUL byte (\\x00) at character 3"),
])
def test_item_values_past_a_limit_or_not_finite_or_with_nul_are_rejected_with_line_and_column(seeded_db, write, db_state,
                                                                                            row, message):
    before = db_state(seeded_db)
    items = write("items.csv", ("item_id,title,category,price\n" if row.count(",") == 3 else
                                "item_id,title,category\n") + row)
    with Store(seeded_db) as store, pytest.raises(CrossRecError) as err:
        store.ingest_files(items)
    assert str(err.value).startswith(f"items.csv {message}")
    assert db_state(seeded_db) == before


def test_limits_are_settings(seeded_db, write):
    items = write("items.csv", "item_id,title,category\n" + "x" * 600 + ",T,A\n")
    with Store(seeded_db) as store:
        assert store.ingest_files(items, settings=Settings().replace({"ingest.max_id_chars": 1000})).items_added == 1


def test_quoted_cr_and_crlf_inside_fields_are_stored_as_given(seeded_db, write):
    items = write("items.csv", 'item_id,title,category,description\r\n'
                               'i8,"two\r\nlines","A > B","cr\ronly"\r\ni9,plain,A > B,"lf\nonly"\r\n')
    with Store(seeded_db) as store:
        store.ingest_files(items)
        assert store.item("i8")["title"] == "two\r\nlines"
        assert store.item("i8")["description"] == "cr\ronly"
        assert store.item("i9")["description"] == "lf\nonly"


# ---- 11. messages that mislead ---------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ("item_id,title,category\ni1,Lens,Photo\n".encode("utf-16"),
     "items.csv is UTF-16 text, not UTF-8: save it as UTF-8 (or pass --encoding utf-16)"),
    ("item_id,title,category\ni1,Lens,Photo\n".encode("utf-16-le"),
     "items.csv is UTF-16 text, not UTF-8: save it as UTF-8 (or pass --encoding utf-16)"),
    (b'item_id,title,category\ni1,"Lens,Photo\ni2,Shirt,Apparel\ni3,Tin,Home\n',
     "items.csv line 2: a quoted field that starts on this line is never closed (a '\"' is missing), so lines 2-4 "
     "read as one row"),
    (b"item\x00_id,title,category\ni1,Lens,Photo\n",
     "items.csv line 1: the name of column 1 holds a NUL byte (\\x00): not a UTF-8 text header (UTF-16 or a "
     "binary file?)"),
])
def test_utf16_unterminated_quote_and_nul_in_header_say_what_they_are(seeded_db, write, data, message):
    items = write("items.csv", data)
    with Store(seeded_db) as store, pytest.raises(CrossRecError) as err:
        store.ingest_files(items)
    assert str(err.value) == message
    assert "\x00" not in str(err.value)


def test_a_literal_nan_timestamp_is_a_bad_timestamp_not_an_empty_one(seeded_db, write):
    events = write("events.csv", EVENTS_HEADER + "u1,i2,view,nan\n")
    with Store(seeded_db) as store, pytest.raises(CrossRecError) as err:
        store.ingest_files(events=events)
    assert str(err.value) == "events.csv line 2, column timestamp: timestamp 'nan' is neither ISO 8601 nor Unix seconds"


# ---- 4. the dashboard listens on every interface (the browser check is in tests/e2e) --------------------


def test_crossrec_app_binds_127_0_0_1_unless_host_opts_in():
    from crossrec_core.cli import app_command, build_parser

    assert build_parser().parse_args(["app"]).host == "127.0.0.1"
    assert build_parser().parse_args(["app", "--host", "0.0.0.0"]).host == "0.0.0.0"
    cmd = app_command(Path("app.py"), "127.0.0.1", 8501)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


# ---- 5. degenerate splits: a clear message, never a LinAlgError; events delete ------------------------------

DEGENERATE_ITEMS = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["a", "b", "c"],
                                 "category": ["A > x", "B > y", "C > z"]})
# lets the outliers in, as before
ANY_TIME = Settings().replace({"ingest.earliest_event": "0001-01-01", "ingest.latest_event": "9999-12-31"})


def _events(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])


@pytest.mark.parametrize("outlier", [("u3", "i1", "purchase", "2999-01-01"), ("u3", "i1", "purchase", "0001-01-01")],
                         ids=["2999", "0001"])
def test_an_outlier_timestamp_makes_train_and_eval_fail_in_one_line_then_events_delete_repairs_it(tmp_path, cli,
                                                                                                  outlier):
    db = tmp_path / "shop.duckdb"
    with Store(db) as store:
        store.ingest_frames(items=DEGENERATE_ITEMS, settings=ANY_TIME, events=_events(
            ("u1", "i1", "purchase", "2024-01-01"), ("u2", "i2", "purchase", "2024-01-02"),
            ("u1", "i3", "view", "2024-01-03"), ("u2", "i3", "cart", "2024-01-04"), outlier))
    for command in (("train",), ("eval", "--no-record")):
        rc, out, err = cli(*command, "--db", db, "--quiet")
        assert rc == 2, err
        assert "internal error" not in err and "LinAlgError" not in err and len(err.strip().splitlines()) == 1
        assert "an outlier timestamp? remove it with `crossrec events delete --before/--after`" in err
    flag, when = ("--after", "2030-01-01") if outlier[3] > "2030" else ("--before", "1990-01-01")
    rc, out, err = cli("events", "delete", "--db", db, flag, when)
    assert (rc, out.strip()) == (0, f"removed 1 events ({flag.strip('-')} {when})")
    rc, out, err = cli("train", "--db", db, "--quiet", "--name", "repaired")
    assert rc == 0, err


@pytest.mark.parametrize("case", ["empty", "one user", "one item", "weights decayed to 0"])
def test_every_baseline_and_signal_fits_and_scores_an_empty_one_user_or_one_item_train_period(case):
    import scipy.sparse as sp

    from crossrec_core.baselines import BASELINES
    from crossrec_core.data import build_interactions
    from crossrec_core.ingest import split_category
    from crossrec_core.profiles import make_context
    from crossrec_core.signals import SIGNAL_CLASSES

    items = pd.concat([DEGENERATE_ITEMS, split_category(DEGENERATE_ITEMS["category"]).drop(columns="category")],
                      axis=1)
    t = pd.Timestamp("2024-01-01")
    rows = {"empty": [], "one user": [("u1", "i1", "purchase", t), ("u1", "i2", "view", t)],
            "one item": [("u1", "i1", "purchase", t), ("u2", "i1", "cart", t)],
            "weights decayed to 0": [("u1", "i1", "purchase", t)]}[case]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    now = t + pd.Timedelta(days=365 * 800) if case == "weights decayed to 0" else None
    data = build_interactions(items, events, Settings(), now=now)
    embeddings = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    X = data.X if data.n_users else sp.csr_matrix((1, 3), dtype=np.float32)
    ctx = make_context(data, X, embeddings)
    for name, make in {**BASELINES, **{f"signal {k}": v for k, v in SIGNAL_CLASSES.items()}}.items():
        scores = (make.build(Settings()) if isinstance(make, type) else make(Settings())).fit(data, embeddings).score(ctx)
        assert scores.shape == (ctx.n, 3) and np.isfinite(scores).all(), name


def test_events_delete_without_a_filter_or_with_a_bad_date_removes_nothing(seeded_db, cli, db_state):
    before = db_state(seeded_db)
    rc, out, err = cli("events", "delete", "--db", seeded_db)
    assert rc == 2 and err.strip() == ("crossrec events: give at least one of --before, --after, --user, --item: "
                                       "refusing to remove every event")
    rc, out, err = cli("events", "delete", "--db", seeded_db, "--before", "soon")
    assert rc == 2 and "--before 'soon' is not a date or time" in err
    assert db_state(seeded_db) == before
    rc, out, err = cli("events", "delete", "--db", seeded_db, "--user", "u1", "--after", "2024-01-01T12:00:00Z")
    assert (rc, out.strip()) == (0, "removed 1 events (after 2024-01-01T12:00:00Z, user u1)")
    assert db_state(seeded_db)["events"][0] == before["events"][0] - 1


# ---- 12. export details: ids are data ----------------------------------------------------------------


def test_export_of_user_id_minus_1_keeps_it_as_given_and_neutralises_only_what_would_be_evaluated(shop, cli,
                                                                                               write):
    with Store(shop) as store:
        item = store.items()["item_id"].iloc[0]
        store.ingest_frames(events=_events(*[(u, item, "purchase", "2026-10-20T10:00:00Z")
                                             for u in ("-1", "-2.5", "-x", "=1+1", "+1")]))
    segment = write("seg.csv", "user_id\n-1\n-2.5\n-x\n=1+1\n+1\n")
    out = shop.parent / "out.csv"
    rc, stdout, err = cli("export", "--db", shop, "--out", out, "--users", segment, "--k", "1", "--quiet")
    assert rc == 0, err
    exported = pd.read_csv(out, encoding="utf-8-sig", dtype=str)["user_id"].tolist()
    assert exported == ["-1", "-2.5", "'-x", "'=1+1", "'+1"]
    joined = pd.read_csv(segment, dtype=str).merge(pd.read_csv(out, encoding="utf-8-sig", dtype=str), on="user_id")
    assert sorted(joined["user_id"]) == ["-1", "-2.5"]  # ids that are numbers join back as they are


def test_a_run_recorded_by_an_older_version_asks_for_a_retrain_in_one_line(shop, cli, tmp_path):
    old_folder = tmp_path / "old-run"
    old_folder.mkdir()
    (old_folder / "model.pkl").write_bytes(pickle.dumps({"_format": 1}))
    with Store(shop) as store, store.transaction() as con:
        con.execute("UPDATE runs SET artefact_path = ? WHERE name = 'r'", [str(old_folder)])
    rc, out, err = cli("recommend", "--db", shop, "--user", _a_user(shop), "--quiet")
    assert rc == 2
    assert err.strip() == (f"crossrec recommend: run 'r' was recorded by an older CrossRec (its model is not in "
                           f"{shop}.artefacts); retrain with `crossrec train`")
