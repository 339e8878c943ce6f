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

from crossrec_core.cli import main
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


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) of `crossrec` run in this process."""

    def _run(*args: str) -> tuple[int, str, str]:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


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
    rc, out, err = cli("train", "--db", shop, "--name", name, "--no-learn", "--quiet")
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
    assert shop.stat().st_ino == inode and not Path(f"{shop}.building").exists()
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


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KiB tmpfs mounted in tmp_path (root only): a real full disk."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_train_that_fills_the_disk_removes_its_temporary_folder_at_once(shop, small_disk, cli):
    art = Path(f"{shop}.artefacts")
    shutil.rmtree(art)
    (small_disk / "art").mkdir()
    art.symlink_to(small_disk / "art")  # the artefacts folder on a disk too small for a model
    before = sorted(p.name for p in art.iterdir())
    rc, out, err = cli("train", "--db", shop, "--name", "big", "--no-learn", "--quiet")
    assert rc == 2
    assert err.startswith("crossrec train: no space left on the device") and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in art.iterdir()) == before  # no tmp-* folder keeps the disk full
    with Store(shop, read_only=True) as store:
        assert store.run_names() == ["r"]
