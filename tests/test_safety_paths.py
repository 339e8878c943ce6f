"""Issue 22, part A: the paths a user names. One test (or a tight group) per reproduction of the issue, each on
the issue's own tiny shop (4 items, 8 purchases, one run), real DuckDB files and the CLI run in this process;
the test names state the reproduction."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crossrec_core.cli import main
from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store

ITEMS = ("item_id,title,category,brand,price\nA1,Tripod,Photo > Tripods,Acme,50\nA2,Camera,Photo > Cameras,Acme,500\n"
         "B1,Headphones,Audio,Sono,80\nC1,Kettle,Home,Hot,30\n")
EVENTS = ("user_id,item_id,event_type,timestamp\nU1,A1,purchase,2024-01-01\nU1,B1,purchase,2024-01-09\n"
          "U2,A2,purchase,2024-01-02\nU2,C1,purchase,2024-01-10\nU3,B1,purchase,2024-01-03\n"
          "U3,A1,purchase,2024-01-11\nU4,C1,purchase,2024-01-04\nU4,B1,purchase,2024-01-12\n")
HEADER = "user_id,rank,item_id,title"


@pytest.fixture(scope="module")
def issue_shop(tmp_path_factory) -> Path:
    """The issue's `shop s.duckdb`: items.csv and events.csv ingested, then `train --no-learn`."""
    folder = tmp_path_factory.mktemp("issue22")
    (folder / "items.csv").write_text(ITEMS)
    (folder / "events.csv").write_text(EVENTS)
    db = folder / "s.duckdb"
    assert main(["ingest", "--db", str(db), "--items", str(folder / "items.csv"), "--events",
                 str(folder / "events.csv"), "--quiet"]) == 0
    assert main(["train", "--db", str(db), "--no-learn", "--quiet"]) == 0
    return db


@pytest.fixture
def shop(issue_shop, tmp_path):
    """shop(name) -> a private copy of the issue's shop (database and artefacts) at tmp_path/name."""

    def _shop(name: str = "s.duckdb") -> Path:
        path = tmp_path / name
        shutil.copy(issue_shop, path)
        shutil.copytree(f"{issue_shop}.artefacts", f"{path}.artefacts")
        return path

    return _shop


@pytest.fixture
def csvs(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "events.csv").write_text(EVENTS)
    return tmp_path / "items.csv", tmp_path / "events.csv"


def _one_line(rc: int, err: str) -> str:
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    return err.strip()


def _csv(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")


# ---- 1. export's temp file ------------------------------------------------------------------------------


def test_shop_recs_part_then_export_db_recs_part_out_recs_keeps_the_database(shop, cli, db_state):
    db = shop("recs.part")
    before = db_state(db)
    rc, out, err = cli("export", "--db", db, "--out", db.parent / "recs", "--quiet")
    assert rc == 0, err
    assert db_state(db) == before
    assert _csv(db.parent / "recs").startswith(HEADER)
    assert sorted(p.name for p in db.parent.iterdir()) == ["recs", "recs.part", "recs.part.artefacts"]


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_ln_s_duckdb_o_csv_part_then_export_out_o_csv_leaves_the_database_intact(shop, cli, db_state, link):
    db = shop()
    part = db.parent / "o.csv.part"
    os.link(db, part) if link == "hard" else part.symlink_to(db)
    before, raw = db_state(db), db.read_bytes()
    rc, out, err = cli("export", "--db", db, "--out", db.parent / "o.csv", "--quiet")
    assert rc == 0, err
    assert db.read_bytes() == raw and db_state(db) == before
    assert part.exists() and (part.is_symlink() == (link == "symbolic"))
    assert _csv(db.parent / "o.csv").startswith(HEADER)


def test_echo_notes_to_r_csv_part_then_export_out_r_csv_leaves_the_users_part_file_alone(shop, cli):
    db = shop()
    part = db.parent / "r.csv.part"
    part.write_text("notes\n")
    rc, out, err = cli("export", "--db", db, "--out", db.parent / "r.csv", "--quiet")
    assert rc == 0, err
    assert part.read_text() == "notes\n"
    assert sorted(p.name for p in db.parent.iterdir()) == ["r.csv", "r.csv.part", "s.duckdb", "s.duckdb.artefacts"]


@pytest.mark.parametrize("to", ["/proc/self/fd/1", "/dev/stdout"])
def test_ln_s_proc_self_fd_1_so_then_export_out_so_streams_to_stdout_and_so_stays_a_link(shop, capfd, to):
    db = shop()
    so = db.parent / "so"
    so.symlink_to(to)
    rc = main(["export", "--db", str(db), "--out", str(so), "--k", "2", "--quiet"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    assert so.is_symlink() and os.readlink(so) == to
    assert out.lstrip("\ufeff").startswith(HEADER) and len(out.strip().splitlines()) == 1 + 4 * 2
    assert err.strip() == f"wrote 8 rows for 4 users to {so}"  # the summary keeps off the CSV on stdout
    assert sorted(p.name for p in db.parent.iterdir()) == ["s.duckdb", "s.duckdb.artefacts", "so"]


def test_export_out_a_fifo_streams_into_the_pipe_and_it_stays_a_pipe(shop):
    import stat

    db = shop()
    fifo = db.parent / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = _crossrec("export", "--db", db, "--out", fifo, "--k", "1", "--quiet")  # a subprocess: it could hang
    assert proc.returncode == 0, proc.stderr
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].decode("utf-8-sig").startswith(HEADER)


def test_export_temp_files_are_new_random_names_in_the_targets_folder():
    from crossrec_core.outfile import exclusive_temp

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        made = [exclusive_temp(Path(d), "o.csv") for _ in range(2)]
        for fd, _ in made:
            os.close(fd)
        names = [p for _, p in made]
        assert names[0] != names[1] and all(p.parent == Path(d) and p.name.startswith(".o.csv.") for p in names)


# ---- 2. big-shop demo --force holds the file for the whole build -------------------------------------------


_OPENER = ("import sys\nfrom crossrec_core.store import Store\n"
           "try:\n    Store(sys.argv[1]).close()\nexcept Exception as exc:\n    sys.exit(str(exc))\n")


def test_big_shop_demo_force_keeps_a_file_that_another_process_opens_mid_build_from_it(shop, cli, monkeypatch):
    import crossrec_core.bigshop as bigshop

    db = shop()
    tried: list[subprocess.CompletedProcess] = []
    original = bigshop.write_parquet

    def write_parquet(*a, **kw):  # minutes into a real build: another process (a dashboard) opens the file
        tried.append(subprocess.run([sys.executable, "-c", _OPENER, str(db)], capture_output=True, text=True))
        return original(*a, **kw)

    monkeypatch.setattr(bigshop, "write_parquet", write_parquet)
    rc, out, err = cli("demo", "--db", db, "--force", "--events", "200", "--items", "520", "--users", "20",
                       "--no-encode", "--quiet")
    assert rc == 0, err
    assert tried[0].returncode != 0 and f"is held by PID {os.getpid()}" in tried[0].stderr  # refused meanwhile
    with Store(db, read_only=True) as store:
        assert store.stats()["items"] > 4  # the big shop replaced the 4-item one, once nobody else held it


def test_big_shop_demo_force_on_a_file_another_process_holds_is_refused_and_untouched(shop, cli, hold_db):
    db = shop()
    raw = db.read_bytes()
    pid = hold_db(db)
    rc, out, err = cli("demo", "--db", db, "--force", "--events", "200", "--items", "520", "--users", "20",
                       "--no-encode", "--quiet")
    assert f"is held by PID {pid}" in _one_line(rc, err)
    assert db.read_bytes() == raw and not list(db.parent.glob("s.duckdb.b*"))


# ---- 3. `~` in --db, CROSSREC_DB and every other path option ------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def test_ingest_db_tilde_x_csv_is_refused_as_the_csv_it_names_not_loaded_into_nothing(home, csvs, cli):
    (home / "x.csv").write_text(ITEMS)
    rc, out, err = cli("ingest", "--db", "~/x.csv", "--items", csvs[0], "--events", csvs[1], "--quiet")
    assert _one_line(rc, err) == (f"crossrec ingest: {home / 'x.csv'} is a text file (CSV?), not a DuckDB database: "
                                  "give --db a DuckDB file or a new path")
    assert (home / "x.csv").read_text() == ITEMS and out == ""


def test_crossrec_db_tilde_y_duckdb_writes_the_home_file_and_no_tilde_folder(home, csvs, cli, monkeypatch):
    monkeypatch.setenv("CROSSREC_DB", "~/y.duckdb")
    rc, out, err = cli("ingest", "--items", csvs[0], "--events", csvs[1], "--quiet")
    assert rc == 0, err
    assert not (home.parent / "~").exists()
    rc, out, err = cli("stats", "--json")
    assert rc == 0 and '"items": 4' in out
    assert sorted(p.name for p in home.iterdir()) == ["y.duckdb"]


def test_tilde_in_items_events_out_and_users_means_the_home_folder(home, csvs, cli):
    for p in csvs:
        shutil.copy(p, home / p.name)
    rc, out, err = cli("ingest", "--db", "~/s.duckdb", "--items", "~/items.csv", "--events", "~/events.csv",
                       "--quiet")
    assert rc == 0, err
    assert cli("train", "--db", "~/s.duckdb", "--no-learn", "--quiet")[0] == 0
    (home / "seg.csv").write_text("user_id\nU1\n")
    rc, out, err = cli("export", "--db", "~/s.duckdb", "--out", "~/recs.csv", "--users", "~/seg.csv", "--quiet")
    assert rc == 0, err
    assert _csv(home / "recs.csv").startswith(HEADER) and not (home.parent / "~").exists()


def test_crossrec_db_env_tilde_is_the_settings_default_too(home, monkeypatch):
    from crossrec_core.config import Settings, default_db_path

    monkeypatch.setenv("CROSSREC_DB", "~/y.duckdb")
    assert default_db_path() == home / "y.duckdb" == Settings().db_path


# ---- 5. a symlinked --db --------------------------------------------------------------------------------------


def test_train_promote_through_a_symlinked_db_serves_from_the_real_path(shop, cli):
    real = shop("real.duckdb")
    link = real.parent / "link.duckdb"
    link.symlink_to(real.name)
    rc, out, err = cli("train", "--db", link, "--no-learn", "--promote", "--name", "via-link", "--quiet")
    assert rc == 0, err
    assert not Path(f"{link}.artefacts").exists()
    rc, out, err = cli("recommend", "--db", real, "--user", "U1", "--k", "2")
    assert rc == 0, err
    with Store(real, read_only=True) as store:
        assert store.run()["name"] == "via-link"


def test_compact_through_a_symlinked_db_keeps_the_link_and_compacts_the_real_file(shop, cli, db_state):
    real = shop("real.duckdb")
    link = real.parent / "link.duckdb"
    link.symlink_to(real.name)
    before = db_state(real)
    rc, out, err = cli("compact", "--db", link)
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == real.name
    assert db_state(real) == before
    assert sorted(p.name for p in real.parent.iterdir()) == ["link.duckdb", "real.duckdb", "real.duckdb.artefacts"]


# ---- 12. a FIFO or /dev/zero as --db or --items ---------------------------------------------------------------


def _crossrec(*args: object) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, with a time limit: before the fix these reads hang (a FIFO) or never end."""
    return subprocess.run([sys.executable, "-m", "crossrec_core.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("flag, what", [("--db", "fifo"), ("--db", "/dev/zero"), ("--items", "fifo"),
                                        ("--items", "/dev/zero")])
def test_db_or_items_a_fifo_or_dev_zero_is_refused_in_one_line_before_it_is_opened(tmp_path, csvs, flag, what):
    target = tmp_path / "fifo" if what == "fifo" else Path(what)
    if what == "fifo":
        os.mkfifo(target)
    kind = "a FIFO (named pipe)" if what == "fifo" else "a character device"
    args = (["ingest", "--db", target, "--items", csvs[0]] if flag == "--db" else
            ["ingest", "--db", tmp_path / "new.duckdb", "--items", target])
    proc = _crossrec(*args, "--quiet")
    expected = (f"crossrec ingest: {target} is {kind}, not a DuckDB database: give --db a DuckDB file or a new path"
                if flag == "--db" else
                f"crossrec ingest: --items {target} is {kind}, not a regular file: give a CSV or Parquet file")
    assert (proc.returncode, proc.stderr.strip()) == (2, expected)
    assert not (tmp_path / "new.duckdb").exists()


# ---- 13. one rule for k ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command, k", [("export", "-1"), ("export", "0"), ("recommend", "1e20"),
                                        ("recommend", "100000000000000000000"), ("recommend", "1001"),
                                        ("eval", "0")])
def test_export_k_minus_1_or_0_and_recommend_k_1e20_are_one_line_errors(shop, cli, command, k):
    db = shop()
    out_csv = db.parent / "x.csv"
    extra = {"export": ["--out", out_csv], "recommend": ["--user", "U1"], "eval": ["--no-record"]}[command]
    rc, out, err = cli(command, "--db", db, *extra, "--k", k, "--quiet")
    assert _one_line(rc, err) == f"crossrec {command}: --k must be a whole number from 1 to 1,000 (setting evaluation.max_k), got {k}"
    assert not out_csv.exists()


def test_what_if_and_recommender_callers_get_the_same_k_error(shop):
    from crossrec_core.runs import load_run
    from crossrec_core.scorer import Rules
    from crossrec_core.whatif import simulate

    with Store(shop(), read_only=True) as store:
        rec = load_run(store, store.run()["name"])
        for call in (lambda: rec.recommend("U1", k=0), lambda: list(rec.ranked_batches(["U1"], k=-1)),
                     lambda: simulate(rec, Rules(), k=10 ** 20, evaluate=False)):
            with pytest.raises(CrossRecError, match=r"^k must be a whole number from 1 to 1,000"):
                call()
        assert len(rec.recommend("U1", k=2)) == 2


# ---- 14. app --port / --host -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, message", [
    ("--port", "70000", "--port 70000 is not a port: give a number from 1 to 65535"),
    ("--port", "-1", "--port -1 is not a port: give a number from 1 to 65535"),
    ("--host", "bad host", "--host 'bad host' is neither an IP address nor a host name"),
])
def test_app_port_70000_or_minus_1_or_host_bad_host_is_one_line_before_streamlit_starts(shop, cli, monkeypatch,
                                                                                        flag, value, message):
    started: list = []
    monkeypatch.setattr(subprocess, "call", lambda *a, **kw: started.append(a) or 0)
    rc, out, err = cli("app", "--db", shop(), flag, value)
    assert _one_line(rc, err).startswith(f"crossrec app: {message}")
    assert started == []


# ---- 17. a compact that fails on a full disk --------------------------------------------------------------------


def test_compact_that_fills_the_disk_leaves_no_compacting_files_and_names_no_alias(small_disk, tmp_path, cli,
                                                                                  db_state):
    import pandas as pd

    built = tmp_path / "big.duckdb"
    with Store(built) as store:  # ~1.6 MB: it fits the disk, a second copy does not
        store.ingest_frames(items=pd.DataFrame({"item_id": [f"P{i}" for i in range(3000)], "title": "t" * 30,
                                                "category": "A > B"}))
    disk = small_disk("2000k")
    db = disk / "s.duckdb"
    shutil.copy(built, db)
    before = db_state(db)
    rc, out, err = cli("compact", "--db", db)
    line = _one_line(rc, err)
    assert line.startswith(f"crossrec compact: no space left on the device ({disk})") and "crossrec_compacted" not in line
    assert line.endswith("(the database is as it was)")
    assert sorted(p.name for p in disk.iterdir()) == ["s.duckdb"]
    assert db_state(db) == before


def test_demo_force_leaves_a_users_own_db_building_file_untouched(tmp_path, cli):
    """The shop is built under a random temporary name: a file of the user's named `<db>.building` survives."""
    db = tmp_path / "shop.duckdb"
    mine = tmp_path / "shop.duckdb.building"
    mine.write_text("my notes\n")
    rc, _, err = cli("demo", "--db", db, "--events", "3000", "--items", "600", "--users", "150", "--no-encode",
                     "--quiet")
    assert rc == 0, err
    assert mine.read_text() == "my notes\n" and db.exists()
    assert not [p for p in tmp_path.iterdir() if ".building-" in p.name]
