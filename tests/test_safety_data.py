"""Issue 22, part B: what the data and the rules may do to a shop. One test (or a tight group) per defect
found by adversarial testing, on real DuckDB files and real files in tmp_path, the CLI run in-process;
each test's name states its reproduction (the issue's tiny shop: 4 items, 8 purchases)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crossrec_core.cli import main
from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError, ValidationError
from crossrec_core.store import Store

ITEMS = ("item_id,title,category,brand,price\nA1,Tripod,Photo > Tripods,Acme,50\nA2,Camera,Photo > Cameras,Acme,500\n"
         "B1,Headphones,Audio,Sono,80\nC1,Kettle,Home,Hot,30\n")
EVENTS = ("user_id,item_id,event_type,timestamp\nU1,A1,purchase,2024-01-01\nU1,B1,purchase,2024-01-09\n"
          "U2,A2,purchase,2024-01-02\nU2,C1,purchase,2024-01-10\nU3,B1,purchase,2024-01-03\n"
          "U3,A1,purchase,2024-01-11\nU4,C1,purchase,2024-01-04\nU4,B1,purchase,2024-01-12\n")


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) of `crossrec` run in this process."""

    def _run(*args) -> tuple[int, str, str]:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


@pytest.fixture
def files(tmp_path) -> Path:
    """The issue's items.csv and events.csv in tmp_path (the folder returned)."""
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "events.csv").write_text(EVENTS)
    return tmp_path


@pytest.fixture
def shop(files, cli) -> Path:
    """`shop s.duckdb`: the issue's shop ingested and trained (no weight learning)."""
    db = files / "s.duckdb"
    assert cli("ingest", "--db", db, "--items", files / "items.csv", "--events", files / "events.csv", "--quiet")[0] == 0
    assert cli("train", "--db", db, "--no-learn", "--quiet")[0] == 0
    return db


def _state(db: Path) -> dict:
    """Every table of the shop, as rows: what must not change when a command is refused."""
    with Store(db, read_only=True) as store:
        names = [n for (n,) in store.con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {n: store.con.execute(f'SELECT * FROM "{n}"').fetchall() for n in names}


def _csvs(folder: Path, *texts: str) -> list[Path]:
    """Each text written to its own CSV file in `folder` (f0.csv, f1.csv, ...)."""
    paths = [folder / f"f{n}.csv" for n in range(len(texts))]
    for path, text in zip(paths, texts):
        path.write_text(text)
    return paths


def _one_line(err: str) -> str:
    """The CLI's error: exactly one line on stderr."""
    assert err.count("\n") == 1, err
    return err.strip()


# ---- 4. re-loading without optional columns blanks stored values ------------------------------------


@pytest.fixture(params=["memory", "stream"])
def settings(request) -> Settings:
    """Run through the in-memory and the streaming ingest path (each threshold at 0 or out of reach)."""
    stream = request.param == "stream"
    return Settings(stream_ingest_mb=0 if stream else 1e9, stream_ingest_rows=0 if stream else 10**9)


def test_reload_items_without_description_brand_price_keeps_them(files, settings):
    """Items loaded with description, brand, price and an attribute, then again with only item_id, title,
    category: the stored values stay; an empty cell clears one. Both ingest paths alike."""
    full, bare, cleared = _csvs(
        files, "item_id,title,category,description,brand,price,colour\n"
               "A1,Tripod,Photo,Light tripod,Acme,50,black\nA2,Camera,Photo,Mirrorless,Acme,500,grey\n",
        "item_id,title,category\nA1,Tripod v2,Photo\nA2,Camera,Photo\n",
        "item_id,title,category,brand,price\nA1,Tripod v2,Photo,,\n")
    with Store(files / "s.duckdb") as store:
        store.ingest_files(items=full, settings=settings)
        report = store.ingest_files(items=bare, settings=settings)
        assert (report.items_added, report.items_updated) == (0, 1)  # only A1's title changed
        rows = store.con.execute("SELECT item_id, title, description, brand, price, attrs FROM items "
                                 "ORDER BY item_id").fetchall()
        assert rows == [("A1", "Tripod v2", "Light tripod", "Acme", 50.0, json.dumps({"colour": "black"})),
                        ("A2", "Camera", "Mirrorless", "Acme", 500.0, json.dumps({"colour": "grey"}))]
        store.ingest_files(items=cleared, settings=settings)
        assert store.con.execute("SELECT description, brand, price FROM items WHERE item_id = 'A1'").fetchall() == [
            ("Light tripod", "", None)]


def test_reload_users_with_only_segment_keeps_profile_text(files, settings):
    """A users file with only `user_id,segment` after one with profile texts: the texts stay, the new
    attribute joins the stored ones."""
    first, second = _csvs(files, "user_id,profile_text,city\nU1,likes hiking,Oslo\nU2,,Rome\n",
                          "user_id,segment\nU1,gold\nU3,new\n")
    with Store(files / "s.duckdb") as store:
        store.ingest_files(users=first, settings=settings)
        report = store.ingest_files(users=second, settings=settings)
        assert report.users_added == 1
        rows = store.con.execute("SELECT user_id, profile_text, attrs FROM users ORDER BY user_id").fetchall()
    assert [(u, p, json.loads(a)) for u, p, a in rows] == [
        ("U1", "likes hiking", {"city": "Oslo", "segment": "gold"}),
        ("U2", "", {"city": "Rome"}),
        ("U3", "", {"segment": "new"})]


def test_cli_reingest_items_with_only_required_columns_keeps_brand_and_price(shop, files, cli):
    bare = files / "bare.csv"
    bare.write_text("item_id,title,category\nA1,Tripod,Photo > Tripods\nA2,Camera,Photo > Cameras\n")
    assert cli("ingest", "--db", shop, "--items", bare, "--quiet")[0] == 0
    with Store(shop, read_only=True) as store:
        assert store.con.execute("SELECT brand, price FROM items WHERE item_id IN ('A1', 'A2') ORDER BY item_id"
                                 ).fetchall() == [("Acme", 50.0), ("Acme", 500.0)]


# ---- 7. a boost of 1e39 overflows float32 --------------------------------------------------------------


def test_boost_multiplier_1e39_is_refused(shop, cli):
    before = _state(shop)
    rc, _, err = cli("rules", "add", "--db", shop, "--name", "huge", "--boost-item", "A1", "--multiplier", "1e39")
    assert rc == 2 and "multiplier from 0.001 to 1000" in _one_line(err)
    rc, _, err = cli("rules", "add", "--db", shop, "--name", "tiny", "--boost-item", "A1", "--multiplier", "1e-9")
    assert rc == 2 and "max_multiplier" in _one_line(err)
    assert _state(shop) == before


def test_boost_1e39_through_the_rules_api_is_refused_and_stacked_boosts_stay_finite(shop):
    """The dashboard's path (governance.add_rule) refuses it too; ten boosts of 1000 on one item (a
    product of 1e30, past float32 with a few more) stay finite and the item stays first."""
    from crossrec_core.governance import add_rule
    from crossrec_core.rules import Rule
    from crossrec_core.runs import serving_recommender

    with Store(shop) as store:
        with pytest.raises(CrossRecError, match="max_multiplier"):
            add_rule(store, Rule("boost", item="C1", multiplier=1e39, name="huge"))
        for n in range(14):
            add_rule(store, Rule("boost", item="C1", multiplier=1000, name=f"b{n}"))
        recs = serving_recommender(store).recommend("U1", k=3)
    assert recs["item_id"].iloc[0] == "C1"
    assert np.isfinite(recs["score"].to_numpy()).all()


# ---- 8. --boost-price 400-100 ----------------------------------------------------------------------------


def test_boost_price_400_100_is_refused(shop, cli):
    before = _state(shop)
    rc, _, err = cli("rules", "add", "--db", shop, "--name", "p", "--boost-price", "400-100", "--multiplier", "2")
    assert rc == 2 and "price range 400-100 ends below where it starts" in _one_line(err)
    assert _state(shop) == before
    assert cli("rules", "add", "--db", shop, "--name", "p", "--boost-price", "100-400", "--multiplier", "2")[0] == 0


# ---- 9. segments remove NOPE -----------------------------------------------------------------------------


def test_segments_remove_nope_fails_and_writes_no_audit_row(shop, cli):
    before = _state(shop)
    rc, out, err = cli("segments", "remove", "--db", shop, "NOPE")
    assert rc != 0 and out == ""
    assert "no segment 'NOPE'" in _one_line(err)
    assert _state(shop) == before
    rc, _, err = cli("undo", "--db", shop)
    assert "removed" not in err
