"""Validation of input files: every malformed input gets one exact message (file, line, column) and leaves
the database exactly as it was; rows that are fine but not loadable are reported, not fatal."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crossrec_core.config import Settings
from crossrec_core.errors import ValidationError
from crossrec_core.ingest import read_table
from crossrec_core.store import Store

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

ITEMS_HEADER = "item_id,title,category\n"
EVENTS_HEADER = "user_id,item_id,event_type,timestamp\n"


def parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture(params=["memory", "stream"])
def ingest_settings(request) -> Settings:
    """Every load and rejection below runs twice: through the in-memory path and through the streaming one
    (its size threshold at 0), which must give the same tables and the same first error."""
    return Settings().replace({"ingest.stream_mb": 0 if request.param == "stream" else 1e9})


@pytest.fixture
def rejected(seeded_db, db_state, ingest_settings):
    """rejected(message, items=..., events=..., ...): the load fails with exactly `message`, nothing changes."""

    def _rejected(message: str, **files):
        before = db_state(seeded_db)
        with Store(seeded_db) as store, pytest.raises(ValidationError) as caught:
            store.ingest_files(**files, settings=ingest_settings)
        assert str(caught.value) == message
        assert "\n" not in str(caught.value)
        assert db_state(seeded_db) == before
        return caught.value

    return _rejected


@pytest.fixture
def load(seeded_db, ingest_settings):
    """load(items=..., events=..., ...) -> (report, store opened on the seeded database, for reading back)."""
    stores = []

    def _load(**files):
        store = Store(seeded_db)
        stores.append(store)
        return store.ingest_files(**files, settings=ingest_settings), store

    yield _load
    for store in stores:
        store.close()


# ---- 1. missing required column ----------------------------------------------------------------


def test_missing_required_column_csv(write, rejected):
    err = rejected(
        "items.csv line 1: missing required column 'category' for items (found: item_id, title)",
        items=write("items.csv", "item_id,title\ni9,Kettle\n"),
    )
    assert (err.file, err.line, err.column) == ("items.csv", 1, "category")
    rejected(
        "events.csv line 1: missing required column 'timestamp' for events (found: user_id, item_id, event_type)",
        events=write("events.csv", "user_id,item_id,event_type\nu1,i1,view\n"),
    )


def test_missing_required_column_parquet(tmp_path, rejected):
    path = parquet(tmp_path / "items.parquet", {"item_id": ["i9"], "title": ["Kettle"]})
    rejected("items.parquet: missing required column 'category' for items (found: item_id, title)", items=path)


# ---- 2. wrong type -----------------------------------------------------------------------------


def test_price_not_a_number_csv(write, rejected):
    err = rejected(
        "items.csv line 3, column price: 'abc' is not a number",
        items=write("items.csv", "item_id,title,category,price\ni8,Mug,Home,4.5\ni9,Kettle,Home,abc\n"),
    )
    assert (err.line, err.column) == (3, "price")


def test_price_currency_sign_is_accepted(write, load):
    _, store = load(items=write("items.csv", "item_id,title,category,price\ni9,Kettle,Home,$ 12.50\n"))
    assert store.item("i9")["price"] == 12.5


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"item_id": ["i8", "i9"], "title": ["Mug", "Kettle"], "category": ["Home", "Home"], "price": ["4.5", "abc"]},
            "items.parquet row 2, column price: 'abc' is not a number",
        ),
        (
            {"item_id": ["i9"], "title": ["Kettle"], "category": ["Home"], "price": [True]},
            "items.parquet: column 'price' has type bool, expected a number",
        ),
        (
            {"item_id": [1.5], "title": ["Kettle"], "category": ["Home"]},
            "items.parquet: column 'item_id' holds numbers with decimals, expected ids (text or integers)",
        ),
    ],
    ids=["price-text", "price-bool", "id-float"],
)
def test_wrong_type_parquet_items(tmp_path, rejected, columns, message):
    rejected(message, items=parquet(tmp_path / "items.parquet", columns))


def test_wrong_type_parquet_timestamp(tmp_path, rejected):
    path = parquet(
        tmp_path / "events.parquet",
        {"user_id": ["u1"], "item_id": ["i1"], "event_type": ["view"], "timestamp": [True]},
    )
    rejected(
        "events.parquet: column 'timestamp' has type bool, expected ISO 8601 text, Unix seconds or a timestamp",
        events=path,
    )


def test_parquet_integer_ids_and_native_timestamps_load(tmp_path, load):
    items = parquet(tmp_path / "items.parquet",
                    {"item_id": [101, 102], "title": ["Mug", "Kettle"], "category": ["Home", "Home"], "price": [3, 4]})
    events = parquet(tmp_path / "events.parquet", {
        "user_id": [7, 7], "item_id": [101, 102], "event_type": ["view", "cart"],
        "timestamp": pa.array([pd.Timestamp("2024-03-01 12:00", tz="Europe/Paris"),
                               pd.Timestamp("2024-03-02 12:00", tz="Europe/Paris")],
                              pa.timestamp("ms", tz="Europe/Paris")),
    })
    dates = parquet(tmp_path / "dates.parquet", {
        "user_id": ["8"], "item_id": ["101"], "event_type": ["view"],
        "timestamp": pa.array([pd.Timestamp("2024-03-05").date()], pa.date32()),
    })
    report, store = load(items=items, events=events)
    assert (report.items_added, report.events_added) == (2, 2)
    assert store.item("101")["price"] == 3.0
    got = store.events(user_ids=["7"])
    assert got["ts"].tolist() == [pd.Timestamp("2024-03-01 11:00"), pd.Timestamp("2024-03-02 11:00")]
    report, store = load(events=dates)
    assert store.events(user_ids=["8"])["ts"].tolist() == [pd.Timestamp("2024-03-05")]


# ---- 3./4. empty file, header only ---------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n\n", "   \r\n"], ids=["zero-bytes", "newlines", "blanks"])
def test_empty_csv(write, rejected, content):
    rejected("items.csv is empty: expected a header line and rows", items=write("items.csv", content))


def test_empty_parquet(tmp_path, rejected):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": pa.array([], pa.string()), "title": pa.array([], pa.string()),
                             "category": pa.array([], pa.string())}), path)
    rejected("items.parquet has no rows", items=path)


@pytest.mark.parametrize("content", [EVENTS_HEADER, EVENTS_HEADER.rstrip("\n"), EVENTS_HEADER + "\n\n"],
                         ids=["newline", "no-newline", "blank-lines"])
def test_header_only(write, rejected, content):
    rejected("events.csv has a header but no data rows", events=write("events.csv", content))


# ---- 5./6. encodings --------------------------------------------------------------------------------


def test_cp1252_bytes_are_reported_then_load_with_encoding(write, rejected, load):
    path = write("items.csv", ITEMS_HEADER.encode() + b"i8,Tea,Drinks\ni9,caf\xe9,Drinks\n")
    err = rejected(
        "items.csv line 3: byte 0xe9 at character 7 is not valid UTF-8; "
        "save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)",
        items=path,
    )
    assert err.line == 3
    report, store = load(items=path, encoding="cp1252")
    assert report.items_added == 2
    assert store.item("i9")["title"] == "café"


def test_bad_byte_position_counts_characters_not_bytes(write, rejected):
    # 'é' before the bad byte is two bytes in UTF-8 but one character on screen
    rejected(
        "items.csv line 2: byte 0xe9 at character 10 is not valid UTF-8; "
        "save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)",
        items=write("items.csv", ITEMS_HEADER.encode() + "i9,né,caf".encode() + b"\xe9\n"),
    )


def test_bad_byte_after_bom_is_placed_right(write, rejected):
    rejected(
        "items.csv line 2: byte 0xe9 at character 7 is not valid UTF-8; "
        "save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)",
        items=write("items.csv", b"\xef\xbb\xbf" + ITEMS_HEADER.encode() + b"i9,caf\xe9,Drinks\n"),
    )


def test_unknown_encoding(write, rejected):
    rejected("items.csv: unknown encoding 'klingon'", items=write("items.csv", ITEMS_HEADER + "i9,x,A\n"),
             encoding="klingon")


def test_utf8_bom_loads_cleanly(write, load):
    items = write("items.csv", b"\xef\xbb\xbf" + (ITEMS_HEADER + "i9,Crème brûlée,Food\n").encode())
    events = write("events.csv", b"\xef\xbb\xbf" + (EVENTS_HEADER + "u9,i9,view,2024-05-01T00:00:00Z\n").encode())
    assert list(read_table(items, "items").frame.columns) == ["item_id", "title", "category"]
    assert list(read_table(events, "events").frame.columns)[0] == "user_id"
    report, store = load(items=items, events=events)
    assert (report.items_added, report.events_added, report.extra_columns) == (1, 1, {})
    assert store.item("i9")["title"] == "Crème brûlée"
    assert store.item("i9")["attrs"] is None  # no '\ufeffitem_id' extra column
    assert store.has_user("u9")


# ---- 7. duplicated header ---------------------------------------------------------------------------


def test_duplicated_header_column(write, rejected):
    err = rejected(
        "items.csv line 1: column 'title' appears twice (columns 2 and 4)",
        items=write("items.csv", "item_id,title,category,title\ni9,Kettle,Home,Pot\n"),
    )
    assert (err.line, err.column) == (1, "title")


def test_duplicated_header_column_differing_in_case(write, rejected):
    rejected(
        "items.csv line 1: column 'title' appears twice (as 'title' and 'Title')",
        items=write("items.csv", "item_id,title,category,Title\ni9,Kettle,Home,Pot\n"),
    )


def test_header_names_are_case_insensitive(write, load):
    report, store = load(items=write("items.csv", "Item_ID,TITLE,Category\ni9,Kettle,Home\n"))
    assert report.items_added == 1 and store.item("i9")["title"] == "Kettle"


# ---- 8.-10. titles ------------------------------------------------------------------------------------


def test_ten_megabyte_title_is_rejected(write, rejected):
    big = "x" * 10_000_000
    err = rejected(
        "items.csv line 3, column title: 10,000,000 characters, more than the limit of 2,000",
        items=write("items.csv", f"{ITEMS_HEADER}i8,Mug,Home\ni9,{big},Home\n"),
    )
    assert (err.line, err.column) == (3, "title")


@pytest.mark.parametrize("length", [1_999, 2_000])
def test_title_up_to_the_limit_loads(write, load, length):
    title = "é" * length  # characters, not bytes, are counted
    _, store = load(items=write("items.csv", f"{ITEMS_HEADER}i9,{title},Home\n"))
    assert store.item("i9")["title"] == title


TRICKY_TITLES = [
    "<script>alert(1)</script><b>x</b>",
    '=HYPERLINK("http://x","y")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\ttabbed",
    "  padded both sides  ",
]


@pytest.mark.parametrize("title", TRICKY_TITLES, ids=["html", "hyperlink", "plus", "minus", "at", "tab", "spaces"])
def test_titles_are_stored_exactly_as_given_csv(write, load, title):
    quoted = '"' + title.replace('"', '""') + '"'
    _, store = load(items=write("items.csv", f"{ITEMS_HEADER}i9,{quoted},Home\n"))
    assert store.item("i9")["title"] == title
    raw = store.con.execute("SELECT title, octet_length(encode(title)) FROM items WHERE item_id = 'i9'").fetchall()
    assert raw == [(title, len(title.encode()))]


def test_titles_are_stored_exactly_as_given_parquet(tmp_path, load):
    ids = [f"t{n}" for n in range(len(TRICKY_TITLES))]
    path = parquet(tmp_path / "items.parquet",
                   {"item_id": ids, "title": TRICKY_TITLES, "category": ["Home"] * len(ids)})
    _, store = load(items=path)
    got = store.items_by_id(ids).set_index("item_id")["title"]
    assert [got[i] for i in ids] == TRICKY_TITLES


# ---- 11./12. unknown event types and items --------------------------------------------------------------


def test_unknown_event_types_are_reported_and_skipped(write, seeded_db):
    events = write("events.csv", EVENTS_HEADER + "".join([
        "u1,i2,view,2024-02-01T00:00:00Z\n",
        "u1,i2,like,2024-02-01T00:00:01Z\n",
        "u2,i1,like,2024-02-01T00:00:02Z\n",
        "u3,i1,like,2024-02-01T00:00:03Z\n",
        "u4,i1,wishlist,2024-02-01T00:00:04Z\n",
        "u2,i3,PURCHASE,2024-02-01T00:00:05Z\n",  # case does not matter
    ]))
    with Store(seeded_db) as store:
        before = store.stats()
        report = store.ingest_files(events=events)
        after = store.stats()
        assert not store.has_user("u4")  # only ever seen in a skipped row
    assert report.unknown_event_types == {"like": 3, "wishlist": 1}
    assert report.lines() == [
        "events: 6 in file, 2 added, 0 already loaded",
        "skipped 4 events of unknown type: 'like' (3), 'wishlist' (1) (known: view, click, cart, purchase, review)",
    ]
    assert after["events"] == before["events"] + 2
    assert after["event_types"] == {**before["event_types"], "view": before["event_types"]["view"] + 1,
                                    "purchase": before["event_types"]["purchase"] + 1}


def test_unknown_items_are_reported_and_skipped(write, db_state, seeded_db):
    before = db_state(seeded_db)
    events = write("events.csv", EVENTS_HEADER + "".join([
        "u1,i3,view,2024-02-01T00:00:00Z\n",
        "u1,zz,view,2024-02-01T00:00:01Z\n",
        "u9,zz,cart,2024-02-01T00:00:02Z\n",
    ]))
    with Store(seeded_db) as store:
        report = store.ingest_files(events=events)
        assert store.con.execute("SELECT count(*) FROM events WHERE item_id = 'zz'").fetchall() == [(0,)]
    assert (report.unknown_items, report.unknown_item_examples, report.events_added) == (2, ["'zz'"], 1)
    assert report.lines() == [
        "events: 3 in file, 1 added, 0 already loaded",
        "skipped 2 events whose item is not in the catalog (e.g. 'zz')",
    ]
    after = db_state(seeded_db)
    assert after["events"][0] == before["events"][0] + 1
    # a user whose only events were skipped is not created either
    assert after["users"] == before["users"]


# ---- 13. timestamps -------------------------------------------------------------------------------------


def test_timestamps_in_every_accepted_format(write, load):
    rows = [
        ("iso-z", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00"),
        ("iso-offset", "2024-01-01T12:00:00+02:00", "2024-01-01 10:00:00"),
        ("iso-negative-offset", "2023-12-31T19:30:00-05:00", "2024-01-01 00:30:00"),
        ("iso-fraction", "2024-01-01T10:00:00.250Z", "2024-01-01 10:00:00.250"),
        ("iso-naive", "2024-01-01 09:15:00", "2024-01-01 09:15:00"),
        ("date-only", "2024-01-02", "2024-01-02 00:00:00"),
        ("unix-int", "1704067200", "2024-01-01 00:00:00"),
        ("unix-float", "1704067200.5", "2024-01-01 00:00:00.500"),
        ("unix-padded", " 1704153600 ", "2024-01-02 00:00:00"),
    ]
    items = write("items.csv", ITEMS_HEADER + "".join(f"{n},{n},Cat\n" for n, _, _ in rows))
    events = write("events.csv", EVENTS_HEADER + "".join(f"tz,{n},view,{raw}\n" for n, raw, _ in rows))
    report, store = load(items=items, events=events)
    assert report.events_added == len(rows)
    got = store.events(user_ids=["tz"]).set_index("item_id")["ts"]
    assert {n: got[n] for n, _, _ in rows} == {n: pd.Timestamp(want) for n, _, want in rows}


def test_timestamp_that_is_not_a_time(write, rejected):
    body = "".join(f"u1,i1,view,2024-01-{d:02d}T00:00:00Z\n" for d in range(1, 13))  # lines 2-13
    err = rejected(
        "events.csv line 14, column timestamp: timestamp 'yesterday' is neither ISO 8601 nor Unix seconds",
        events=write("events.csv", EVENTS_HEADER + body + "u1,i1,view,yesterday\n"),
    )
    assert (err.file, err.line, err.column) == ("events.csv", 14, "timestamp")


def test_timestamp_in_milliseconds(write, rejected):
    rejected(
        "events.csv line 3, column timestamp: 1704067200000 is too large for Unix seconds (milliseconds? divide by 1000)",
        events=write("events.csv", EVENTS_HEADER + "u1,i1,view,1704067200\nu1,i1,view,1704067200000\n"),
    )


def test_timestamp_empty(write, rejected):
    rejected(
        "events.csv line 3, column timestamp: empty, but timestamp is required",
        events=write("events.csv", EVENTS_HEADER + "u1,i1,view,1704067200\nu1,i1,view,\n"),
    )


# ---- 14.-19. CSV structure ----------------------------------------------------------------------------------


def test_mixed_separators(write, rejected):
    err = rejected(
        "items.csv line 3: expected 3 fields, found 1 (the header is comma-separated; this line seems to use ';')",
        items=write("items.csv", ITEMS_HEADER + "i8,Mug,Home\ni9;Kettle;Home\n"),
    )
    assert err.line == 3


def test_semicolon_file_loads(write, load):
    report, store = load(items=write("items.csv", "item_id;title;category;price\ni9;Kettle, steel;Home;12\n"))
    assert report.items_added == 1 and store.item("i9")["title"] == "Kettle, steel"


def test_repeated_header_in_the_middle(write, rejected):
    rejected(
        "events.csv line 4: the header is repeated (were two files pasted together?)",
        events=write("events.csv", EVENTS_HEADER + "u1,i1,view,1704067200\n\n" + EVENTS_HEADER
                     + "u1,i2,view,1704067200\n"),
    )


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("items", ITEMS_HEADER + "i8,Mug,Home\n  ,Kettle,Home\n",
         "items.csv line 3, column item_id: empty, but item_id is required"),
        ("events", EVENTS_HEADER + "u1,i1,view,1704067200\n,i1,view,1704067200\n",
         "events.csv line 3, column user_id: empty, but user_id is required"),
        ("events", EVENTS_HEADER + "u1,i1,view,1704067200\nu1,i1,,1704067200\n",
         "events.csv line 3, column event_type: empty, but event_type is required"),
    ],
    ids=["item_id", "user_id", "event_type"],
)
def test_empty_required_value(write, rejected, kind, content, message):
    err = rejected(message, **{kind: write(f"{kind}.csv", content)})
    assert err.line == 3


def test_duplicate_item_id_in_file(write, rejected):
    err = rejected(
        "items.csv line 4, column item_id: item_id 'i8' is already on line 2",
        items=write("items.csv", ITEMS_HEADER + "i8,Mug,Home\ni9,Kettle,Home\n i8 ,Cup,Home\n"),
    )
    assert (err.line, err.column) == (4, "item_id")


def test_duplicate_user_id_in_file(write, rejected):
    rejected(
        "users.csv line 3, column user_id: user_id 'u7' is already on line 2",
        users=write("users.csv", "user_id,profile_text\nu7,likes tea\nu7,likes coffee\n"),
    )


def test_quoted_newline_keeps_line_numbers(write, rejected, load):
    head = "item_id,title,category,price\n"
    good = head + 'i7,"Mug\nwith\nlid",Home,3\ni8,Kettle,Home,4\n'  # i7 spans lines 2-4, i8 is line 5
    rejected("items.csv line 6, column price: 'abc' is not a number",
             items=write("items.csv", good + "i9,Pot,Home,abc\n"))
    rejected("items.csv line 6: expected 4 fields, found 3",
             items=write("items.csv", good + "i9,Pot,Home\n"))
    _, store = load(items=write("items.csv", good))
    assert store.item("i7")["title"] == "Mug\nwith\nlid"


# ---- 20. files that are not there or not tables -------------------------------------------------------------


def test_non_existent_path(tmp_path, rejected):
    missing = tmp_path / "nowhere" / "events.csv"
    err = rejected(f"{missing}: no such file", events=missing)
    assert err.file == "events.csv"


def test_folder_and_unsupported_and_corrupt_files(tmp_path, write, rejected):
    rejected(f"{tmp_path}: is a folder, not a file", items=tmp_path)
    rejected("items.xlsx: unsupported file type '.xlsx' (use .csv or .parquet)", items=write("items.xlsx", b"PK"))
    err = rejected(
        "items.parquet: not a readable Parquet file (Could not open Parquet input source "
        f"'{tmp_path / 'items.parquet'}': Parquet magic bytes not found in footer. Either the file is corrupted "
        "or this is not a parquet file.)",
        items=write("items.parquet", "item_id,title,category\n"),
    )
    assert err.file == "items.parquet"


# ---- 15. Parquet schema -----------------------------------------------------------------------------------


def test_parquet_struct_in_a_contract_column(tmp_path, rejected):
    path = parquet(tmp_path / "items.parquet",
                   {"item_id": ["i9"], "title": ["Kettle"], "category": [{"path": "Home > Kitchen"}]})
    err = rejected(
        "items.parquet: column 'category' has type struct<path: string>, expected text, a number or a timestamp",
        items=path,
    )
    assert err.column == "category"


def test_parquet_all_null_columns(tmp_path, rejected, load):
    nulls = pa.array([None, None], pa.null())
    rejected("items.parquet row 1, column item_id: empty, but item_id is required",
             items=parquet(tmp_path / "items.parquet", {"item_id": nulls, "title": ["a", "b"], "category": ["A", "B"]}))
    path = parquet(tmp_path / "optional.parquet", {"item_id": ["i8", "i9"], "title": ["Mug", "Pot"],
                                                   "category": ["Home", "Home"], "price": nulls, "brand": nulls})
    _, store = load(items=path)
    assert pd.isna(store.item("i9")["price"]) and store.item("i9")["brand"] == ""


def test_parquet_missing_column_in_events(tmp_path, rejected):
    path = parquet(tmp_path / "events.parquet", {"user_id": ["u1"], "item_id": ["i1"], "timestamp": ["2024-01-01"]})
    rejected("events.parquet: missing required column 'event_type' for events (found: user_id, item_id, timestamp)",
             events=path)


# ---- 21. extra columns ---------------------------------------------------------------------------------------


def test_extra_columns_are_kept_as_attributes(write, load):
    items = write("items.csv", "item_id,title,category,colour,size\ni9,Shirt,Apparel,red,\n")
    events = write("events.csv", EVENTS_HEADER.rstrip("\n") + ",session\nu1,i9,view,1704067200,s-1\n")
    report, store = load(items=items, events=events)
    assert report.extra_columns == {"items": ["colour", "size"]}
    assert "items: extra columns kept as attributes: colour, size" in report.lines()
    assert "events: extra columns ignored: session" in report.lines()
    assert json.loads(store.item("i9")["attrs"]) == {"colour": "red", "size": ""}
    assert report.events_added == 1


def test_extra_parquet_columns_of_any_type_are_kept(tmp_path, load):
    path = parquet(tmp_path / "items.parquet", {
        "item_id": ["i9", "i10"], "title": ["Shirt", "Hat"], "category": ["Apparel", "Apparel"],
        "dims": [{"w": 1, "h": 2}, None], "tags": [["a", "b"], []], "stock": [3, 4], "note": ["new", None],
    })
    report, store = load(items=path)
    assert report.extra_columns == {"items": ["dims", "tags", "stock", "note"]}
    attrs = {i: store.item(i)["attrs"] for i in ("i9", "i10")}
    assert "NaN" not in attrs["i10"]  # missing cells are JSON null, not NaN (which is not JSON)
    assert json.loads(attrs["i9"]) == {"dims": '{"w": 1, "h": 2}', "tags": '["a", "b"]', "stock": "3", "note": "new"}
    assert json.loads(attrs["i10"]) == {"dims": None, "tags": "[]", "stock": "4", "note": None}


def test_users_file_profile_text_and_attributes(write, load):
    users = write("users.csv", "user_id,bio,age\nu1,Keen photographer,41\nu7,,\n")
    report, store = load(users=users)
    assert (report.users_in_file, report.users_added) == (2, 1)  # u1 came with the seed events
    assert store.user("u1")["profile_text"] == "Keen photographer"
    assert json.loads(store.user("u7")["attrs"]) == {"age": ""}


# ---- real data -------------------------------------------------------------------------------------------------

_NAMES = sorted(p.name for p in DATASETS.glob("*") if (p / "stats.json").is_file()) if DATASETS.is_dir() else []
_NO_DATA = pytest.param(None, marks=pytest.mark.skip(reason=f"no shared datasets at {DATASETS}"))
# Figures derived independently (pandas drop_duplicates on events.parquet): identical rows load once.
DISTINCT_EVENTS = {"instacart_sample": 149_646, "rees46_oct2019_slice": 14_172}


def _distinct(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str).drop_duplicates()


@pytest.mark.parametrize("name", _NAMES or [_NO_DATA])
def test_real_dataset_parquet(tmp_path, name):
    folder = DATASETS / name
    stats = json.loads((folder / "stats.json").read_text())
    raw = pd.read_parquet(folder / "events.parquet")
    distinct = _distinct(raw)
    if name in DISTINCT_EVENTS:
        assert len(distinct) == DISTINCT_EVENTS[name]
    with Store(tmp_path / "real.duckdb") as store:
        report = store.ingest_files(folder / "items.parquet", folder / "events.parquet")
        got = store.stats()
    assert report.items_in_file == report.items_added == stats["items_in_catalog"]
    assert report.events_in_file == stats["events"] == len(raw)
    assert report.events_added == len(distinct)
    assert report.events_repeated_in_file == len(raw) - len(distinct)
    assert (report.unknown_items, report.unknown_event_types) == (0, {})
    assert got["items"] == stats["items_in_catalog"]
    assert got["users"] == stats["users"]
    assert got["events"] == len(distinct)
    assert got["event_types"] == distinct["event_type"].value_counts().to_dict()
    assert sum(stats["event_types"].values()) == stats["events"]
    # items without a category path form one more top level: 'Uncategorised'
    assert got["top_level_categories"] == stats["top_level_categories_in_catalog"] + bool(
        stats["items_with_empty_category"])
    assert (got["first_event"], got["last_event"]) == (stats["timestamp_min"], stats["timestamp_max"])


@pytest.mark.parametrize("name", _NAMES or [_NO_DATA])
def test_real_dataset_sample_csv(tmp_path, name):
    folder = DATASETS / name / "sample"
    stats = json.loads((folder.parent / "stats.json").read_text())["sample"]
    raw = pd.read_csv(folder / "events.csv", dtype=str, keep_default_na=False)
    with Store(tmp_path / "sample.duckdb") as store:
        report = store.ingest_files(folder / "items.csv", folder / "events.csv")
        got = store.stats()
        again = store.ingest_files(folder / "items.csv", folder / "events.csv")
        assert store.stats() == got
    assert (got["items"], got["users"]) == (stats["items"], stats["users"])
    assert report.events_in_file == stats["events"] == len(raw)
    assert got["events"] == report.events_added == len(_distinct(raw))
    assert (again.items_added, again.events_added, again.events_duplicate) == (0, 0, got["events"])
