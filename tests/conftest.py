"""Shared fixtures: real files in tmp_path, real DuckDB databases, a second process holding a database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crossrec_core.cli import main
from crossrec_core.store import Store

BASE_ITEMS = (
    "item_id,title,category,description,brand,price\n"
    "i1,Zoom lens,Electronics > Cameras > Lenses,A 70-200 mm lens,Canon,1299.5\n"
    "i2,Linen shirt,Apparel > Tops,,Acme,39\n"
    "i3,Cake tin,,,,\n"
)
BASE_EVENTS = (
    "user_id,item_id,event_type,timestamp\n"
    "u1,i1,view,2024-01-01T10:00:00Z\n"
    "u1,i1,purchase,2024-01-02T10:00:00Z\n"
    "u2,i2,cart,2024-01-03T10:00:00Z\n"
)


@pytest.fixture
def write(tmp_path: Path):
    """write(name, text_or_bytes) -> path of a real file in tmp_path (text is written as UTF-8, as given)."""

    def _write(name: str, data: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    return _write


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crossrec.duckdb"


@pytest.fixture
def seeded_db(tmp_path: Path, db_path: Path) -> Path:
    """A database with 3 items, 2 users and 3 events already loaded (so 'unchanged' means something)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "items.csv").write_text(BASE_ITEMS, encoding="utf-8")
    (seed / "events.csv").write_text(BASE_EVENTS, encoding="utf-8")
    with Store(db_path) as store:
        store.ingest_files(seed / "items.csv", seed / "events.csv")
    return db_path


@pytest.fixture
def db_state():
    """db_state(path) -> row counts and a content checksum of items, events and users (and the load log size).

    Opens the file read-only with plain DuckDB, so it also works on a database no Store holds."""

    def _state(path: Path) -> dict:
        if not Path(path).exists():
            return {"exists": False}
        con = duckdb.connect(str(path), read_only=True)
        try:
            out: dict = {"exists": True}
            for table in ("items", "events", "users"):
                out[table] = con.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR)), ''))"
                    f" FROM {table} t"
                ).fetchall()[0]
            out["ingest_log"] = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]
            return out
        finally:
            con.close()

    return _state


_HOLDER = """
import os, sys
from crossrec_core.store import Store
store = Store(sys.argv[1])
print(os.getpid(), flush=True)
sys.stdin.read()  # hold the file until the test closes our stdin
store.close()
"""


@pytest.fixture
def hold_db():
    """hold_db(path) -> pid of a second process that holds `path` open read-write until the test ends."""
    procs: list[subprocess.Popen] = []

    def _hold(path: Path) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"holder process failed: {proc.stderr.read()}")
        assert int(line) == proc.pid
        return proc.pid

    yield _hold
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) of `crossrec` run in this process."""

    def _run(*args: str) -> tuple[int, str, str]:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(size) -> a tmpfs of that size mounted in tmp_path (root only): a real disk that fills up."""
    import subprocess

    mounted = []

    def _mount(size: str) -> Path:
        mnt = tmp_path / f"disk{len(mounted)}"
        mnt.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                               capture_output=True).returncode != 0:
            pytest.skip("cannot mount a small tmpfs here")
        mounted.append(mnt)
        return mnt

    yield _mount
    for mnt in mounted:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture(scope="session")
def ranker_shop(tmp_path_factory):
    """A small generated shop without item texts (500 items, 400 users, 90 days), opened read-only: the
    learned rankers must work without text."""
    from crossrec_core.demo import generate

    path = tmp_path_factory.mktemp("ranker") / "shop.duckdb"
    shop = generate(5, n_items=500, n_users=400, days=90)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
    store = Store(path, read_only=True)
    yield store
    store.close()


@pytest.fixture(scope="session")
def ranker_trained(ranker_shop):
    """(settings, items, events, test cut, ranker, report): the rankers forced on `ranker_shop`'s training
    windows (the cross-mode one included)."""
    from crossrec_core.config import Settings
    from crossrec_core.evaluate import prepare_events, time_split
    from crossrec_core.ranker_fit import fit_ranker

    settings = Settings(db_path=ranker_shop.path).replace({"signals.als.factors": 8, "signals.als.iterations": 5,
                                                         "retrieval.candidates": 30})
    items = ranker_shop.items().sort_values("item_id").reset_index(drop=True)
    events = prepare_events(ranker_shop.events())
    cut = time_split(events, settings)
    ranker, report = fit_ranker(items, events[events["ts"] < cut], settings, None, force=True)
    return settings, items, events, cut, ranker, report


@pytest.fixture(scope="session")
def small_shop_db(tmp_path_factory) -> Path:
    """A small demo shop (700 items, 500 users, 60 days) with item texts encoded by the real model.

    Session-scoped and read-only by convention: tests that write copy the file first."""
    from crossrec_core.demo import generate
    from crossrec_core.encoder import Encoder, encode_items

    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    shop = generate(3, n_items=700, n_users=500, days=60)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        encode_items(store, Encoder(precision="fp32"))  # bf16 is chosen by a timing: not for pinned lists
    return path


@pytest.fixture(scope="session")
def ruled_shop(tmp_path_factory) -> Path:
    """A small demo shop without item vectors and one run trained with given weights (seconds to build).

    Session-scoped and read-only by convention: tests that write take `ruled_copy`."""
    from crossrec_core.config import Settings
    from crossrec_core.demo import generate
    from crossrec_core.train import train

    path = tmp_path_factory.mktemp("ruled") / "shop.duckdb"
    shop = generate(3, n_items=300, n_users=150, days=40)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        train(store, Settings(db_path=path), name="first", learn=False, baselines=False)
    return path


@pytest.fixture
def ruled_copy(ruled_shop: Path, tmp_path: Path) -> Path:
    """A private copy of `ruled_shop` (database and its runs' models) a test may change."""
    import shutil

    path = tmp_path / "shop.duckdb"
    shutil.copy(ruled_shop, path)
    shutil.copytree(f"{ruled_shop}.artefacts", f"{path}.artefacts")
    return path


@pytest.fixture(scope="module", autouse=True)
def release_dashboard_resources():
    """The dashboard's cached resources (its store among them) are global to the process: release them
    when a module that ran the dashboard in-process (AppTest) is done, as stopping the dashboard does."""
    yield
    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_resource.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a Store is still open at its end (every fixture torn down by now).

    Deterministic: after a full garbage collection, a Store that is still open is still referenced by
    something (a cache, a global, a fixture that forgot `close()`), so it holds its file and its DuckDB
    connection outlives the tests ("nanobind: leaked ... DuckDBPyConnection" at exit)."""
    import gc

    from crossrec_core.store_base import open_stores

    gc.collect()
    left = sorted(str(s.path) for s in open_stores())
    if left:
        print(f"\nERROR: {len(left)} Store(s) left open at the end of the tests (close them, or use `with "
              f"Store(...)`): " + ", ".join(left), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
