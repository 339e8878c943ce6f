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
    return _path(request.param == "stream")


def _path(stream: bool, changes: dict | None = None) -> Settings:
    """Settings that send every file down the streaming path (`stream`) or the in-memory one."""
    return Settings().replace({"ingest.stream_mb": 0 if stream else 1e9, "ingest.stream_rows": 0 if stream else 10**9,
                               **(changes or {})})


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


# ---- 6. Parquet timestamps skip the plausible-window check (in memory) --------------------------------


def _events_parquet(folder: Path, stamps: pa.Array) -> Path:
    """events.parquet: U1 bought A1 at each time of `stamps` (a typed timestamp column)."""
    n = len(stamps)
    path = folder / "events.parquet"
    pq.write_table(pa.table({"user_id": ["U1"] * n, "item_id": ["A1"] * n, "event_type": ["purchase"] * n,
                             "timestamp": stamps}), path)
    return path


def _seconds(*days: str) -> list[int]:
    return [int(np.datetime64(d, "s").astype(np.int64)) for d in days]


@pytest.mark.parametrize("year, unit", [("2999", "us"), ("1900", "us"), ("2262", "s"), ("82269", "s")])
def test_parquet_timestamp_with_time_zone_in_year_outside_window_is_refused(files, cli, year, unit):
    """2999, 1900, 2262 and 82269 in a timezone-typed Parquet column: refused with file, row and column,
    on the in-memory path (a small file) as on the streaming one."""
    stamps = pa.array(_seconds("2024-01-05", f"{year}-01-01"), pa.timestamp("s", tz="UTC")).cast(
        pa.timestamp(unit, tz="UTC"))
    events = _events_parquet(files, stamps)
    db = files / "s.duckdb"
    rc, _, err = cli("ingest", "--db", db, "--items", files / "items.csv", "--events", events, "--quiet")
    assert rc == 2
    line = _one_line(err)
    assert "events.parquet row 2, column timestamp: timestamp " in line and "outside the plausible window" in line
    assert not db.exists() or _state(db)["events"] == []
    with Store(files / "t.duckdb") as store, pytest.raises(ValidationError) as streamed:
        store.ingest_files(items=files / "items.csv", events=events, settings=Settings().replace({"ingest.stream_rows": 0}))
    assert line.endswith(str(streamed.value))


def test_parquet_timestamp_nat_is_refused_as_empty_not_constraint_exception(files, cli):
    events = _events_parquet(files, pa.array([pd.Timestamp("2024-01-05", tz="UTC"), None],
                                             pa.timestamp("us", tz="UTC")))
    rc, _, err = cli("ingest", "--db", files / "s.duckdb", "--items", files / "items.csv", "--events", events)
    assert rc == 2
    assert _one_line(err).endswith("events.parquet row 2, column timestamp: empty, but timestamp is required")


# ---- 16. misleading messages: inf, UTF-32, a Parquet or zip file named .csv ------------------------------


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity"])
def test_timestamp_inf_says_it_is_not_a_time(files, settings, cell):
    bad = files / "ev.csv"
    bad.write_text(f"user_id,item_id,event_type,timestamp\nU1,A1,purchase,2024-01-01\nU2,A2,view,{cell}\n")
    with Store(files / "s.duckdb") as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(items=files / "items.csv", events=bad, settings=settings)
    assert str(caught.value) == (f"ev.csv line 3, column timestamp: timestamp '{cell}' is not a time "
                                 "(neither ISO 8601 nor Unix seconds)")



def test_utf32_file_is_called_utf32_not_utf16(files, settings):
    wide = files / "items32.csv"
    wide.write_bytes(ITEMS.encode("utf-32"))
    with Store(files / "s.duckdb") as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(items=wide, settings=settings)
    assert str(caught.value) == ("items32.csv is UTF-32 text, not UTF-8: save it as UTF-8 (or pass "
                                 "--encoding utf-32)")


@pytest.mark.parametrize("what", ["parquet", "zip"])
def test_parquet_or_zip_file_named_csv_is_told_what_it_is(files, cli, what):
    """Not "pass --encoding cp1252": the file is not text at all."""
    fake = files / "items_fake.csv"
    if what == "parquet":
        pq.write_table(pa.table({"item_id": ["A1"], "title": ["t"], "category": ["c"]}), fake)
    else:
        import zipfile

        with zipfile.ZipFile(fake, "w") as z:
            z.writestr("items.csv", ITEMS)
    rc, _, err = cli("ingest", "--db", files / "s.duckdb", "--items", fake)
    line = _one_line(err)
    assert rc == 2 and "cp1252" not in line
    assert line.endswith({"parquet": "items_fake.csv is a Parquet file, not CSV text: give it a .parquet name",
                          "zip": "items_fake.csv is a zip archive, not CSV text: unzip it and give the CSV inside"}[what])
    with Store(files / "t.duckdb") as store, pytest.raises(ValidationError, match="not CSV text"):
        store.ingest_files(items=fake, settings=_path(True))

# ---- 10. Parquet bombs: the path chosen by file size ------------------------------------------------------


def _bomb(folder: Path, rows: int) -> Path:
    """A small zstd Parquet file of many identical events (the issue's was 112 KB for 8M rows)."""
    path = folder / "bomb.parquet"
    pq.write_table(pa.table({"user_id": pa.array(["U1"] * rows), "item_id": pa.array(["A1"] * rows),
                             "event_type": pa.array(["view"] * rows),
                             "timestamp": pa.array(["2024-01-05"] * rows)}), path, compression="zstd")
    return path


def test_parquet_bomb_small_file_of_many_rows_streams_by_its_row_count(files, caplog):
    bomb = _bomb(files, 20_000)
    assert bomb.stat().st_size < 64 * 2**20  # by its size alone it would be read in memory
    with Store(files / "s.duckdb") as store, caplog.at_level("INFO", logger="crossrec_core.ingest"):
        report = store.ingest_files(items=files / "items.csv", events=bomb, settings=Settings().replace({"ingest.stream_rows": 10_000}))
    assert "bomb.parquet: streamed through DuckDB" in caplog.text
    assert (report.events_in_file, report.events_added) == (20_000, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_parquet_bomb_past_max_ingest_rows_is_refused_in_one_line(files, stream, kind):
    bomb = _bomb(files, 2_001)
    if kind == "csv":
        bomb = files / "bomb.csv"
        bomb.write_text("user_id,item_id,event_type,timestamp\n" + "U1,A1,view,2024-01-05\n" * 2_001)
    settings = _path(stream, {"ingest.max_rows": 2_000})
    with Store(files / "s.duckdb") as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(items=files / "items.csv", events=bomb, settings=settings)
    assert str(caught.value) == (f"{bomb.name} has more than 2,000 rows, the limit of one file "
                                 "(settings max_ingest_rows): split it")
    assert _state(files / "s.duckdb")["items"] == []


# ---- 11. a header of 1M columns -----------------------------------------------------------------------------


def test_csv_header_of_1m_columns_is_refused_at_once_in_a_short_line(files, cli):
    import time

    wide = files / "wide.csv"
    wide.write_text(",".join(f"c{n}" for n in range(1_000_000)) + "\n" + ",".join("x" * 1_000_000) + "\n")
    start = time.perf_counter()
    rc, _, err = cli("ingest", "--db", files / "s.duckdb", "--items", wide)
    assert time.perf_counter() - start < 20  # was 216 s and 4.8 GB
    assert rc == 2
    assert _one_line(err).endswith("wide.csv has 1,000,000 columns, more than the limit of 1,000 (settings max_columns)")


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_parquet_of_1001_columns_is_refused_from_its_footer(files, stream):
    wide = files / "wide.parquet"
    pq.write_table(pa.table({"item_id": ["A1"], "title": ["t"], "category": ["c"],
                             **{f"x{n}": [n] for n in range(998)}}), wide)
    settings = _path(stream)
    with Store(files / "s.duckdb") as store, pytest.raises(ValidationError) as caught:
        store.ingest_files(items=wide, settings=settings)
    assert str(caught.value) == "wide.parquet has 1,001 columns, more than the limit of 1,000 (settings max_columns)"


def test_long_column_name_twice_gives_a_cut_message(files, cli):
    name = "n" * 1_000_000
    twice = files / "twice.csv"
    twice.write_text(f"item_id,title,category,{name},{name}\nA1,t,c,1,2\n")
    rc, _, err = cli("ingest", "--db", files / "s.duckdb", "--items", twice)
    assert rc == 2 and "appears twice" in err and "…" in err
    assert len(_one_line(err)) < 2_000


# ---- 15. a run folder whose items.parquet is another file; an unreadable run folder --------------------------


def _live_folder(db: Path) -> Path:
    with Store(db, read_only=True) as store:
        return store.artefact_dir / store.run()["artefact_path"]


def test_run_folder_items_parquet_replaced_by_another_file_names_it(shop, cli):
    """The run's own events copied over items.parquet: was "internal error: KeyError"."""
    folder = _live_folder(shop)
    (folder / "items.parquet").write_bytes((folder / "data.events.parquet").read_bytes())
    rc, _, err = cli("recommend", "--db", shop, "--user", "U1")
    line = _one_line(err)
    assert rc == 2 and "internal error" not in line
    assert f"{folder / 'items.parquet'} has no column 'item_id'" in line and "not the catalog" in line
    other = pd.DataFrame({"item_id": ["Z9"], "title": ["x"], "category": ["c"], "cat_top": ["c"], "brand": [""],
                          "price": [1.0]})
    other.to_parquet(folder / "items.parquet", index=False)
    rc, _, err = cli("recommend", "--db", shop, "--user", "U1")
    assert rc == 2 and "items.parquet lists 1 items, not the model's 4 in its order" in _one_line(err)


def test_unreadable_run_folder_is_said_of_the_folder_not_model_pkl(shop, cli, monkeypatch):
    """chmod 000 on the run folder (as root, who reads it anyway, the refusal of the listing is simulated):
    the error names the folder, never model.pkl, which does not exist."""
    folder = _live_folder(shop)
    if os.geteuid() == 0:
        real = os.listdir

        def listdir(path="."):
            if Path(path) == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "listdir", listdir)
    folder.chmod(0)
    try:
        rc, _, err = cli("recommend", "--db", shop, "--user", "U1")
    finally:
        folder.chmod(0o755)
    line = _one_line(err)
    assert rc == 2 and "model.pkl" not in line
    assert f"the run folder {folder} cannot be read (Permission denied)" in line


# ---- 18. decided: a foreign DuckDB file, a header with a trailing comma, undoing the first run ---------------


def test_ingest_into_foreign_duckdb_file_is_refused_and_adds_no_tables(files, cli):
    import duckdb

    other = files / "accounts.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE ledger (id INTEGER, amount DOUBLE)")
        con.execute("INSERT INTO ledger VALUES (1, 9.5)")
    rc, _, err = cli("ingest", "--db", other, "--items", files / "items.csv", "--events", files / "events.csv")
    assert rc == 2
    assert _one_line(err).endswith(f"{other} is a DuckDB database of something else (tables: ledger), not "
                                   "CrossRec's: give --db a new path or a CrossRec database")
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("ledger",)]
        assert con.execute("SELECT * FROM ledger").fetchall() == [(1, 9.5)]
    empty = files / "empty.duckdb"
    duckdb.connect(str(empty)).close()  # an empty DuckDB file is fine
    assert cli("ingest", "--db", empty, "--items", files / "items.csv", "--events", files / "events.csv",
               "--quiet")[0] == 0


def test_header_with_trailing_comma_is_accepted(files, settings):
    """`item_id,title,category,brand,price,` (Excel's habit): the unnamed column names nothing and is
    dropped, rows with or without its field load; only a value under it is refused."""
    trailing, filled = _csvs(files, "item_id,title,category,brand,price,\nA1,Tripod,Photo,Acme,50,\nA2,Camera,Photo,Acme,500\n",
                             "item_id,title,category,\nA1,Tripod,Photo,\nA2,Camera,Photo,oops\n")
    with Store(files / "s.duckdb") as store:
        report = store.ingest_files(items=trailing, settings=settings)
        assert (report.items_added, report.extra_columns) == (2, {})
        assert store.con.execute("SELECT item_id, brand, price, attrs FROM items ORDER BY 1").fetchall() == [
            ("A1", "Acme", 50.0, None), ("A2", "Acme", 500.0, None)]
        with pytest.raises(ValidationError) as caught:
            store.ingest_files(items=filled, settings=settings)
    assert str(caught.value) == ("f1.csv line 3: a value in column 4, which the header leaves unnamed (it ends "
                                 "with a separator): name the column")


def test_undo_of_the_first_run_going_live_is_refused_and_the_run_stays_live(shop, cli):
    before = _state(shop)
    rc, out, err = cli("undo", "--db", shop)
    assert (rc, out) == (2, "")
    assert "would leave no live run" in _one_line(err) and "crossrec runs promote" in err
    assert _state(shop) == before
    assert cli("recommend", "--db", shop, "--user", "U1")[0] == 0
