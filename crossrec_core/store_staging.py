"""Streaming ingest, step two: the checks of `ingest_validate`, in SQL over a staging table, and the clean
`new_items` / `new_users` / `new_events` temp tables the load moves into the store.

Each check mirrors one of the in-memory validator's, in the same order, so the first error is the same one
with the same words: all row checks of a table are counted in one scan (the first line failing each), then
walked in the validator's order; the first that fails fetches its row and words the message in Python.
Where DuckDB and pandas could read a cell differently, the SQL takes only the forms both read alike:
numbers through `TRY_CAST(... AS DOUBLE)` (which also takes '1_000' and 'nan', so those are refused as
pandas does), and timestamps in the plain ISO 8601 forms below; any other timestamp text is parsed by
pandas itself (the in-memory path's own call) and written back by line.
"""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pandas as pd

from .config import EVENT_TYPES, Settings
from .ingest_read import ITEM_COLUMNS, PROFILE_ALIASES, UNCATEGORISED
from .ingest_stream import Staged
from .ingest_validate import IngestReport, _short
from .store_base import StoreBase

# Python's str.strip() removes these; DuckDB's trim() only spaces unless told
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
WS = f"'{_WHITESPACE}'"  # a literal (a chr() expression would be evaluated on every row)
_WS_CODES = ", ".join(str(ord(c)) for c in _WHITESPACE)


def strip(text: str) -> str:
    """SQL of Python's `text.strip()`: trim() with a set of characters is slow (5 s a million cells), so
    only cells that start or end with whitespace pay for it (and of those, trim() with the set only where
    whitespace other than spaces is left)."""
    spaced = f"trim({text})"  # spaces only: fast
    slow = (f"(CASE WHEN unicode({spaced}) IN ({_WS_CODES}) OR unicode(right({spaced}, 1)) IN ({_WS_CODES}) "
            f"THEN trim({text}, {WS}) ELSE {spaced} END)")
    return f"(CASE WHEN unicode({text}) IN ({_WS_CODES}) OR unicode(right({text}, 1)) IN ({_WS_CODES}) THEN {slow} " \
           f"ELSE {text} END)"


def blank(text: str) -> str:
    """SQL of `text.strip() == ''`, the costly strip only where the first character is whitespace."""
    return f"({text} = '' OR (unicode({text}) IN ({_WS_CODES}) AND {strip(text)} = ''))"
_WS_CLASS = "".join(f"\\x{{{ord(c):04X}}}" for c in _WHITESPACE)
_CURRENCY = f"'^[$€£][{_WS_CLASS}]*'"
_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?"
_ISO_NAIVE = rf"'\d{{4}}-\d{{2}}-\d{{2}}([T ]{_TIME})?'"
_ISO_ZONED = rf"'\d{{4}}-\d{{2}}-\d{{2}}[T ]{_TIME}(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)'"
_MAX_UNIX_SECONDS = 10_000_000_000
_FIX_BATCH = 100_000


_TEMP = ("crossrec_stage_items_v", "crossrec_stage_users_v", "crossrec_stage_events_v", "crossrec_stage_events_b",
         "crossrec_stage_events_t", "crossrec_categories",
         "crossrec_stage_items", "crossrec_stage_users", "crossrec_stage_events", "crossrec_ts_fix",
         "new_items", "new_users", "new_events")


@contextmanager
def staging_session(store: StoreBase, settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store's connection set for streaming: DuckDB's memory_limit and threads from `settings`, spilling
    to `<db>.ingest-tmp` beside the database (removed afterwards unless it was there before), the rows'
    order not kept (each row carries its line); every setting and the staging tables are undone after."""
    con = store.con
    names = ("memory_limit", "threads", "temp_directory", "preserve_insertion_order")
    spill = Path(str(store.path.absolute()) + ".ingest-tmp")
    existed = spill.exists()
    with store._lock:
        saved = {k: con.execute(f"SELECT current_setting('{k}')").fetchall()[0][0] for k in names}
        con.execute(f"SET memory_limit = '{int(settings.ingest.memory_mb)}MB'")
        if settings.ingest.threads > 0:
            con.execute(f"SET threads = {int(settings.ingest.threads)}")
        con.execute("SET temp_directory = ?", [str(spill)])
        con.execute("SET preserve_insertion_order = false")
        try:
            yield con
        finally:
            for name in _TEMP:
                for what in ("VIEW", "TABLE"):
                    try:
                        con.execute(f"DROP {what} IF EXISTS {name}")
                    except duckdb.CatalogException:  # a view dropped as a table, or the reverse
                        pass
            for k, v in saved.items():  # the default again, or what was set (memory_limit reads back rounded)
                con.execute(f"RESET {k}")
                if str(con.execute(f"SELECT current_setting('{k}')").fetchall()[0][0]) != str(v):
                    con.execute(f"SET {k} = ?", [v])
            if not existed:
                shutil.rmtree(spill, ignore_errors=True)


@dataclass
class Check:
    """One check: a row check (`cond` true on a bad row; `detail` the value its message needs), a whole
    column's error (`static`) or a check that runs its own query (`lazy`)."""

    column: str | None = None
    cond: str | None = None
    detail: str = "NULL"
    words: Callable[[Any], str] | None = None
    static: Exception | None = None
    lazy: Callable[[], None] | None = None


def _run(con: duckdb.DuckDBPyConnection, st: Staged, view: str, checks: list[Check]) -> None:
    """Raise the first failing check's error, in the order given (the validator's order)."""
    rows = [c for c in checks if c.cond]
    first = {}
    if rows:
        found = con.execute("SELECT " + ", ".join(f"min(_line) FILTER (WHERE {c.cond})" for c in rows)
                            + f" FROM {view}").fetchall()[0]
        first = {id(c): line for c, line in zip(rows, found)}
    for c in checks:
        if c.static is not None:
            raise c.static
        if c.lazy is not None:
            c.lazy()
        elif first.get(id(c)) is not None:
            line = first[id(c)]
            value = con.execute(f"SELECT {c.detail} FROM {view} WHERE _line = ?", [line]).fetchall()[0][0]
            raise st.error(line, c.column, c.words(value))


def _text(st: Staged, col: str | None) -> tuple[str, str, str]:
    """SQL of a column read as text ('' when missing), whether a cell is missing, its class."""
    if col is None or col not in st.columns:
        return "''", "true", "null"
    sql, cls = st.columns[col]
    if cls == "null":
        return "''", "true", cls
    cell = sql if cls == "text" else f"CAST({sql} AS VARCHAR)"
    return f"coalesce({cell}, '')", f"{sql} IS NULL", cls


def text_checks(st: Staged, col: str, *, required: bool, max_chars: int | None) -> list[Check]:
    """`ingest_validate._text`: a float id column, an empty required cell, a NUL byte, too many characters."""
    raw, missing, cls = _text(st, col)
    out = []
    if cls == "float" and col.endswith("_id"):
        out.append(Check(static=st.column_error(col, "holds numbers with decimals, expected ids (text or integers)")))
    if required:
        out.append(Check(col, f"{missing} OR {blank(raw)}", words=lambda v: f"empty, but {col} is required"))
    out.append(Check(col, f"strpos({raw}, chr(0)) > 0", f"strpos({raw}, chr(0))",
                     lambda v: f"a NUL byte (\\x00) at character {v}; text may not contain NUL bytes (is the file "
                               "UTF-16 or binary?)"))
    if max_chars is not None:
        out.append(Check(col, f"length({raw}) > {int(max_chars)}", f"length({raw})",
                         lambda v: f"{int(v):,} characters, more than the limit of {max_chars:,}"))
    return out


def _double(text: str) -> str:
    """A number from text as pandas' to_numeric reads it (None where it does not)."""
    return (f"(CASE WHEN {text} = '' OR contains({text}, '_') THEN NULL "
            f"ELSE nullif(TRY_CAST({text} AS DOUBLE), 'nan'::DOUBLE) END)")


def number(st: Staged, col: str) -> tuple[str, list[Check]]:
    """`ingest_validate._number`: SQL of the value (NULL: missing) and its checks."""
    if col not in st.columns or st.columns[col][1] == "null":
        return "NULL::DOUBLE", []
    sql, cls = st.columns[col]
    if cls == "bool":
        return "NULL::DOUBLE", [Check(static=st.column_error(col, "has type bool, expected a number"))]
    if cls in ("int", "float"):
        num = f"nullif(CAST({sql} AS DOUBLE), 'nan'::DOUBLE)"
        return num, [Check(col, f"isinf({num})", num, lambda v: f"'{_short(str(v))}' is not a finite number")]
    raw = strip(f"coalesce({sql}, '')")
    num = _double(f"regexp_replace({raw}, {_CURRENCY}, '')")
    return num, [Check(col, f"{raw} <> '' AND {num} IS NULL", raw, lambda v: f"'{_short(v)}' is not a number"),
                 Check(col, f"isinf({num})", raw, lambda v: f"'{_short(v)}' is not a finite number")]


def _duplicates(con: duckdb.DuckDBPyConnection, st: Staged, view: str, ident: str, col: str) -> Check:
    def run() -> None:
        if not con.execute(f"SELECT count(*) > count(DISTINCT {ident}) FROM {view}").fetchall()[0][0]:
            return  # every id once: no need to sort them by line
        found = con.execute(
            f"""SELECT id, _line, first FROM (SELECT {ident} AS id, _line, min(_line) OVER (PARTITION BY {ident})
                AS first FROM {view}) WHERE _line > first ORDER BY _line LIMIT 1""").fetchall()
        if found:
            value, line, first = found[0]
            raise st.error(line, col, f"{col} '{_short(value)}' is already on {st.unit} {first}")

    return Check(lazy=run)


def _extras(st: Staged, known: tuple[str, ...]) -> tuple[list[str], str]:
    """Extra columns as one JSON object of strings per row, worded as json.dumps does (NULL: none)."""
    extra = [c for c in st.columns if c not in known]
    if not extra:
        return [], "NULL"
    parts = []
    for c in extra:
        sql, cls = st.columns[c]
        cell = "NULL::VARCHAR" if cls == "null" else sql if cls == "text" else f"CAST({sql} AS VARCHAR)"
        key = json.dumps(c, ensure_ascii=False).replace("'", "''")
        parts.append(f"'{key}: ' || coalesce(to_json({cell})::VARCHAR, 'null')")
    return extra, "'{' || " + " || ', ' || ".join(parts) + " || '}'"


def stage_items(con: duckdb.DuckDBPyConnection, st: Staged, settings: Settings) -> tuple[int, list[str]]:
    """Check a staged items file; on success `new_items` holds it in the store's shape. Its rows and extra columns."""
    raw_id = _text(st, "item_id")[0]
    item_id = strip(raw_id)
    # a catalog has few distinct category paths: each is split once, then joined back to its items
    category = _text(st, "category")[0]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE crossrec_categories AS SELECT raw, list_filter(list_transform(
        string_split(raw, '>'), lambda x: {strip('x')}), lambda x: x <> '') AS parts
        FROM (SELECT DISTINCT {category} AS raw FROM {st.table})""")
    price, price_checks = number(st, "price")
    extra, attrs = _extras(st, ITEM_COLUMNS)
    view = f"{st.table}_v"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {view} AS SELECT _line, {item_id} AS item_id,
        {_text(st, 'title')[0]} AS title, k.parts AS parts, {_text(st, 'description')[0]} AS description,
        {_text(st, 'brand')[0]} AS brand, {price} AS price, {attrs} AS attrs, s.* EXCLUDE (_line)
        FROM {st.table} s JOIN crossrec_categories k ON k.raw = {category}""")
    checks = [*text_checks(st, "item_id", required=True, max_chars=settings.ingest.max_id_chars),
              _duplicates(con, st, view, "item_id", "item_id"),
              *text_checks(st, "title", required=False, max_chars=settings.ingest.max_title_chars),
              *text_checks(st, "category", required=False, max_chars=settings.ingest.max_category_chars),
              Check("category", f"len(parts) > {int(settings.ingest.max_category_levels)}", "len(parts)",
                    lambda v: f"{int(v)} category levels, more than the limit of "
                              f"{settings.ingest.max_category_levels}"),
              *text_checks(st, "description", required=False, max_chars=settings.ingest.max_description_chars),
              *text_checks(st, "brand", required=False, max_chars=settings.ingest.max_title_chars),
              *price_checks,
              Check("price", "price < 0", "price", lambda v: f"negative price {float(v)}")]
    _run(con, st, view, checks)
    unc = f"'{UNCATEGORISED}'"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE new_items AS SELECT item_id, title,
        CASE WHEN len(parts) = 0 THEN {unc} ELSE array_to_string(parts, ' > ') END AS category,
        CASE WHEN len(parts) = 0 THEN {unc} ELSE parts[1] END AS cat_top,
        CASE WHEN len(parts) = 0 THEN {unc} ELSE array_to_string(parts[1:2], ' > ') END AS cat_sub,
        len(parts)::INTEGER AS cat_depth, description, brand, price, attrs FROM {view} ORDER BY _line""")
    return st.rows, extra


def stage_users(con: duckdb.DuckDBPyConnection, st: Staged, settings: Settings) -> tuple[int, list[str]]:
    """Check a staged users file; on success `new_users` holds it. Its rows and extra columns."""
    text_col = next((c for c in PROFILE_ALIASES if c in st.columns), None)
    extra, attrs = _extras(st, ("user_id", text_col or "profile_text"))
    view = f"{st.table}_v"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {view} AS SELECT _line, {strip(_text(st, 'user_id')[0])}
        AS user_id, {_text(st, text_col)[0]} AS profile_text, {attrs} AS attrs, * EXCLUDE (_line) FROM {st.table}""")
    checks = [*text_checks(st, "user_id", required=True, max_chars=settings.ingest.max_id_chars),
              _duplicates(con, st, view, "user_id", "user_id")]
    if text_col:
        checks += text_checks(st, text_col, required=False, max_chars=settings.ingest.max_profile_chars)
    _run(con, st, view, checks)
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_users AS SELECT user_id, profile_text, attrs FROM {view} ORDER BY _line")
    return st.rows, extra


def _timestamps(con: duckdb.DuckDBPyConnection, st: Staged) -> tuple[str, list[Check]]:
    """`ingest_validate.parse_timestamps` in SQL: `{table}_t`, the staged rows with the text `t`, the Unix
    seconds `secs`, the time `ts0` and `odd` (text pandas must parse), and the checks before the time's.
    Each step reads the one before by name (an expression repeated inside the next would be computed again
    for every use); text is materialised once, as its parsing is the costly part."""
    sql, cls = st.columns["timestamp"]
    checks: list[Check] = []
    t, secs, plain, zoned, ts0 = "''", "NULL::DOUBLE", "false", "false", "NULL::TIMESTAMP"
    from_secs = ("(CASE WHEN secs IS NOT NULL AND abs(secs) <= {big} THEN "
                 "make_timestamp(CAST(round_even(secs * 1e6, 0) AS BIGINT)) END)").format(big=_MAX_UNIX_SECONDS)
    if cls == "bool":
        checks.append(Check(static=st.column_error(
            "timestamp", "has type bool, expected ISO 8601 text, Unix seconds or a timestamp")))
    elif cls in ("tstz", "ts", "date"):
        ts0 = f"timezone('UTC', {sql})" if cls == "tstz" else f"CAST({sql} AS TIMESTAMP)"
    elif cls in ("int", "float"):
        secs, ts0 = f"nullif(CAST({sql} AS DOUBLE), 'nan'::DOUBLE)", from_secs
    elif cls == "text":
        t = strip(f"coalesce({sql}, '')")
        secs = f"(CASE WHEN strpos(t, ':') = 0 THEN {_double('t')} END)"
        plain = f"(NOT starts_with(t, '0000') AND regexp_full_match(t, {_ISO_NAIVE}))"
        zoned = f"(NOT starts_with(t, '0000') AND regexp_full_match(t, {_ISO_ZONED}))"
        ts0 = (f"(CASE WHEN secs IS NOT NULL THEN {from_secs} WHEN plain THEN TRY_CAST(t AS TIMESTAMP) "
               "WHEN zoned THEN timezone('UTC', TRY_CAST(t AS TIMESTAMPTZ)) END)")
    odd = "(t <> '' AND secs IS NULL AND NOT plain AND NOT zoned)" if cls == "text" else "false"
    out = f"{st.table}_t"
    kind = "TABLE" if cls == "text" else "VIEW"
    con.execute(f"""CREATE OR REPLACE TEMP {kind} {out} AS SELECT * EXCLUDE (plain, zoned), {ts0} AS ts0, {odd} AS odd
        FROM (SELECT *, {secs} AS secs, {plain} AS plain, {zoned} AS zoned FROM (SELECT *, {t} AS t FROM {st.table}))""")
    checks.append(Check("timestamp", "isinf(secs)", "CASE WHEN t <> '' THEN t ELSE CAST(secs AS VARCHAR) END",
                        lambda v: f"timestamp '{_short(v)}' is not a time (neither ISO 8601 nor Unix seconds)"))
    checks.append(Check("timestamp", f"abs(secs) > {_MAX_UNIX_SECONDS}", "secs",
                        lambda v: f"{v:.0f} is too large for Unix seconds (milliseconds? divide by 1000)"))
    return out, checks


def _parse_odd(con: duckdb.DuckDBPyConnection, view: str) -> str | None:
    """Timestamps outside the plain forms, parsed by pandas as the in-memory path does, into a temp table
    (line, ts); None when there are none. Only those cells are fetched, as Arrow text."""
    odd = con.sql(f"SELECT _line, t FROM {view} WHERE odd ORDER BY _line").to_arrow_table()
    if odd.num_rows == 0:
        return None
    con.execute("CREATE OR REPLACE TEMP TABLE crossrec_ts_fix (_line BIGINT, ts TIMESTAMP)")
    for start in range(0, odd.num_rows, _FIX_BATCH):
        part = odd.slice(start, _FIX_BATCH)
        parsed = pd.to_datetime(pd.Series(part.column("t").to_pylist(), dtype=object), format="ISO8601", utc=True,
                                errors="coerce").dt.as_unit("us").dt.tz_localize(None)
        fix = pd.DataFrame({"_line": part.column("_line").to_numpy(), "ts": parsed})
        con.register("crossrec_ts_batch", fix)
        try:
            con.execute("INSERT INTO crossrec_ts_fix SELECT * FROM crossrec_ts_batch WHERE ts IS NOT NULL")
        finally:
            con.unregister("crossrec_ts_batch")
    return "crossrec_ts_fix"


def _iso(value: Any) -> str:
    """A UTC time from DuckDB as pandas writes it; DuckDB gives a time past Python's year 9999 as text."""
    try:
        return pd.Timestamp(value, tz="UTC").isoformat()
    except (ValueError, OverflowError):
        return str(value).replace(" ", "T", 1) + "+00:00"


def stage_events(con: duckdb.DuckDBPyConnection, st: Staged, settings: Settings, report: IngestReport) -> None:
    """Check a staged events file; on success `new_events` holds its events of known types (unknown types
    and extra columns are noted in `report`)."""
    parsed, ts_checks = _timestamps(con, st)
    value, value_checks = number(st, "value")
    etype = f"lower({strip(_text(st, 'event_type')[0])})"
    base = f"{st.table}_b"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {base} AS SELECT *, {etype} AS event_type, {value} AS value FROM {parsed}")
    fix = _parse_odd(con, base) if st.columns["timestamp"][1] == "text" else None
    view = f"{st.table}_v"
    if fix:
        con.execute(f"""CREATE OR REPLACE TEMP VIEW {view} AS SELECT b.*, coalesce(b.ts0, f.ts) AS ts
            FROM {base} b LEFT JOIN {fix} f USING (_line)""")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *, ts0 AS ts FROM {base}")
    lo, hi = (t.tz_convert("UTC").tz_localize(None) for t in settings.ingest.event_window())
    # a typed column is bad only where it is missing (empty); text is empty only where the cell is
    shown = "(CASE WHEN t = '' THEN NULL ELSE t END)" if st.columns["timestamp"][1] in ("text", "null") else "NULL"
    checks = [*text_checks(st, "user_id", required=True, max_chars=settings.ingest.max_id_chars),
              *text_checks(st, "item_id", required=True, max_chars=settings.ingest.max_id_chars),
              *text_checks(st, "event_type", required=True, max_chars=settings.ingest.max_id_chars),
              *ts_checks,
              Check("timestamp", "ts IS NULL", shown,
                    lambda v: "empty, but timestamp is required" if v is None else
                    f"timestamp '{_short(v)}' is neither ISO 8601 nor Unix seconds"),
              Check("timestamp", f"ts < TIMESTAMP '{lo.isoformat()}' OR ts > TIMESTAMP '{hi.isoformat()}'", "ts",
                    lambda v: f"timestamp {_iso(v)} is outside the plausible window "
                              f"{lo:%Y-%m-%d} .. {hi:%Y-%m-%d} (settings earliest_event / latest_event)"),
              *value_checks]
    _run(con, st, view, checks)
    known = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    unknown = con.execute(f"""SELECT event_type, count(*) FROM {view} WHERE event_type NOT IN ({known})
                              GROUP BY event_type ORDER BY count(*) DESC, min(_line)""").fetchall()
    if unknown:
        report.unknown_event_types = {k: int(n) for k, n in unknown}
    extra = [c for c in st.columns if c not in ("user_id", "item_id", "event_type", "timestamp", "value")]
    if extra:
        report.notes.append(f"events: extra columns ignored: {', '.join(extra)}")
    user_id, item_id = (strip(_text(st, c)[0]) for c in ("user_id", "item_id"))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE new_events AS SELECT {user_id} AS user_id, {item_id} AS item_id,
        event_type, ts, value FROM {view} WHERE event_type IN ({known})""")
    report.events_in_file = st.rows
