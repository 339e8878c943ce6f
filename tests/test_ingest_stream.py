"""The streaming ingest (DuckDB staging tables, checks in SQL) equals the in-memory one: the same tables row
for row on a generated shop (Parquet, and CSV written from it by DuckDB) and on a CSV of awkward cells; it
really streams (no silent fall back), leaves no staging or spill files and restores DuckDB's settings."""
from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from crossrec_core.bigshop import write_parquet
from crossrec_core.config import Settings
from crossrec_core.store import Store

MEMORY, STREAM = Settings().replace({"ingest.stream_mb": 1e9}), Settings().replace({"ingest.stream_mb": 0})
TABLES = {
    "items": "SELECT * EXCLUDE (added_at) FROM items ORDER BY item_id",
    "users": "SELECT * EXCLUDE (added_at) FROM users ORDER BY user_id",
    "events": "SELECT * FROM events ORDER BY ALL",
}


def _tables(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in TABLES.items()}
    finally:
        con.close()


def _load_both(tmp_path: Path, files: dict, **kw) -> tuple[dict, dict, list]:
    """Load `files` into two new databases, in memory and streamed; their tables and both reports."""
    out, reports = [], []
    for name, settings in (("memory", MEMORY), ("stream", STREAM)):
        db = tmp_path / f"{name}.duckdb"
        with Store(db) as store:
            reports.append(store.ingest_files(**files, settings=settings, **kw).to_dict())
        out.append(_tables(db))
    return out[0], out[1], reports


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> dict[str, Path]:
    """A small generated shop as Parquet, and the same files as CSV (DuckDB COPY)."""
    folder = tmp_path_factory.mktemp("shop")
    files = write_parquet(folder / "parquet", n_events=4_000, n_items=600, n_users=300)
    con = duckdb.connect()
    paths = {}
    for kind, path in files.paths.items():
        paths[f"{kind}_parquet"] = path
        paths[f"{kind}_csv"] = folder / f"{kind}.csv"
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO '{paths[f'{kind}_csv']}' (HEADER)")
    con.close()
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streamed_shop_equals_in_memory(tmp_path, shop, fmt, caplog):
    files = {k: shop[f"{k}_{fmt}"] for k in ("items", "events", "users")}
    with caplog.at_level(logging.INFO, logger="crossrec_core.ingest"):
        memory, stream, (rep_m, rep_s) = _load_both(tmp_path, files)
    streamed = [r.getMessage() for r in caplog.records if "streamed through DuckDB" in r.getMessage()]
    assert len(streamed) == 3, caplog.text  # no file fell back to the in-memory path
    assert len(memory["events"]) > 3_000 and len(memory["items"]) >= 600
    for name in TABLES:
        assert stream[name] == memory[name], name
    assert rep_s == rep_m


AWKWARD_ITEMS = (
    "\ufeffItem_ID;title;category;price;colour;size\n"
    " i1 ;\"Mug\nwith lid\";Home >  Kitchen > ;$ 3.50;red;\n"
    "i2;\"Kettle; steel\";;1e1;\"a \"\"b\"\"\";x\n"
    "\n"
    "i3;\u00a0tab\tbed ;A>B>C>D;£2;\u00e9;\n"
    "i4;<b>x</b>;Books;;;\n"
)
AWKWARD_EVENTS = (
    "user_id,item_id,event_type,timestamp,value,session\n"
    "u1,i1,VIEW ,2024-01-01T10:00:00Z,,s\n"
    "u1,i1,view,2024-01-01T10:00:00Z,,s\n"  # the same event twice: loaded once
    "u2, i2,cart,1704067200.5,2,\n"
    "u2,i3,purchase,2024-01-01T12:00:00+02:00,3.5,\n"
    "u3,i4,like,2024-01-02,,\n"  # unknown type
    "u3,zz,view,2024-01-02 09:15:00,,\n"  # unknown item
    "u4,i4,click,20240103T101500,,\n"  # compact ISO: parsed by pandas in both paths
    "u4,i2,review,2024-01,1,\n"
)


def test_awkward_csv_equals_in_memory(tmp_path, write):
    items = write("items.csv", AWKWARD_ITEMS)
    events = write("events.csv", AWKWARD_EVENTS)
    users = write("users.csv", "user_id,bio,age\nu1,Keen,41\nu9,,\n")
    memory, stream, (rep_m, rep_s) = _load_both(tmp_path, {"items": items, "events": events, "users": users})
    for name in TABLES:
        assert stream[name] == memory[name], name
    assert rep_s == rep_m
    assert rep_m["unknown_event_types"] == {"like": 1} and rep_m["unknown_items"] == 1
    assert len(memory["events"]) == 5


def test_cp1252_streams_and_utf16_falls_back(tmp_path, write, caplog):
    cp = write("items.csv", "item_id,title,category\ni1,café,Drinks\n".encode("cp1252"))
    u16 = write("items16.csv", "item_id,title,category\ni1,café,Drinks\n".encode("utf-16"))
    with caplog.at_level(logging.INFO, logger="crossrec_core.ingest"):
        memory, stream, _ = _load_both(tmp_path, {"items": cp}, encoding="cp1252")
        assert stream == memory and memory["items"][0][1] == "café"
        assert "items.csv: streamed through DuckDB" in caplog.text
        (tmp_path / "16").mkdir()
        memory, stream, _ = _load_both(tmp_path / "16", {"items": u16}, encoding="utf-16")
    assert stream == memory and memory["items"][0][1] == "café"
    assert "items16.csv: read in memory (encoding utf-16)" in caplog.text


def test_streaming_leaves_nothing_behind(tmp_path, write):
    db = tmp_path / "shop.duckdb"
    items = write("items.csv", "item_id,title,category\ni1,Mug,Home\n")
    with Store(db) as store:
        before = store.con.execute("SELECT current_setting('memory_limit'), current_setting('threads'), "
                                   "current_setting('temp_directory')").fetchall()
        store.ingest_files(items=items, settings=STREAM.replace({"ingest.memory_mb": 500, "ingest.threads": 1}))
        after = store.con.execute("SELECT current_setting('memory_limit'), current_setting('threads'), "
                                  "current_setting('temp_directory')").fetchall()
        temp = store.con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0]
        views = store.con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal"
                                  ).fetchall()[0][0]
    assert before == after and (temp, views) == (0, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.csv", "shop.duckdb"]


@pytest.mark.parametrize(("tail", "message"), [
    (b"u9,i1,view,soon\n", "events.csv line 122, column timestamp: timestamp 'soon' is neither ISO 8601 nor Unix "
                           "seconds"),
    (b"u9,caf\xe9,view,1704067200\n", "events.csv line 122: byte 0xe9 at character 7 is not valid UTF-8; save the "
                                      "file as UTF-8, or pass its encoding (e.g. --encoding cp1252)"),
    (b"u9,i1\n", "events.csv line 122: expected 4 fields, found 2"),
], ids=["timestamp", "encoding", "fields"])
def test_small_pieces_and_batches_keep_true_lines(tmp_path, write, seeded_db, monkeypatch, tail, message):
    """Pieces of 64 bytes and batches of 7 rows (a real file is cut at 16 MB and 100k rows): errors far into
    the file, after quoted line breaks and blank lines, name the same line as the in-memory path."""
    from crossrec_core import ingest_stream
    from crossrec_core.errors import ValidationError

    monkeypatch.setattr(ingest_stream, "CHUNK_BYTES", 64)
    monkeypatch.setattr(ingest_stream, "BATCH_ROWS", 7)
    rows = b"".join(b'u%d,i1,view,"1704067200"\n' % n if n % 10 else b'"u\n%d",i1,view,1704067200\n\n' % n
                    for n in range(1, 101))  # 100 rows, every tenth on two lines and followed by a blank one
    ok = write("ok.csv", b"user_id,item_id,event_type,timestamp\n" + rows)  # lines 1-121
    items = write("items.csv", "item_id,title,category\ni1,Mug,Home\n")
    memory, stream, (rep_m, rep_s) = _load_both(tmp_path, {"items": items, "events": ok})
    assert stream == memory and rep_s == rep_m and len(memory["events"]) == 100
    bad = write("events.csv", b"user_id,item_id,event_type,timestamp\n" + rows + tail)
    for settings in (MEMORY, STREAM):
        with Store(seeded_db) as store, pytest.raises(ValidationError) as caught:
            store.ingest_files(events=bad, settings=settings)
        assert str(caught.value) == message
