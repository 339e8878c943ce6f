"""Streaming ingest, step one: a file on disk into a DuckDB staging table without holding it in Python.

- Parquet: its footer is checked with pyarrow (readable, column names, types: the same checks and messages as
  the in-memory read), then a view reads it with DuckDB's `read_parquet`; row N of the file is `_line` N.
- CSV: read in pieces of `CHUNK_BYTES` that end at a line break, decoded and split into rows by the very
  checks of the in-memory read (`ingest_read.csv_rows`), and appended to a staging table in Arrow batches of
  `BATCH_ROWS`. Python's csv reader, not DuckDB's `read_csv`, splits the rows: it knows the true line of every
  row, quoted fields with line breaks included, so every message names the same line as the in-memory path,
  and both paths read every cell alike (the same tables row for row).
- Encodings: UTF-8 (with or without a BOM) and every encoding that writes a line break as the byte 0x0A and
  keeps no state across lines (cp1252, latin-1, ...) are decoded piece by piece. UTF-16/32, UTF-7 and
  ISO-2022 cannot be cut at a 0x0A byte: such files take the in-memory path (`NotStreamable`).

Cells are checked by `store_staging` in SQL. `NotStreamable` says a file needs the in-memory path: the caller
reads it there (the messages are the same; only its memory is not bounded).
"""
from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .config import Settings
from .errors import ValidationError, clip
from .ingest_read import (
    ALL_KNOWN, KNOWN, _decode, _read_parquet, check_names, check_not_utf16, check_width, csv_rows, parquet_class,
    too_many_rows,
)

CHUNK_BYTES = 16 << 20
BATCH_ROWS = 100_000


class NotStreamable(Exception):
    """This file is read by the in-memory path (see the module's docstring for when)."""


@dataclass
class Staged:
    """A file in a staging table: `table` has one column per file column (`columns` maps each name, after the
    header checks, to its SQL column and its class) and `_line`, the line (CSV) or row (Parquet) of each row."""

    name: str
    kind: str
    table: str
    columns: dict[str, tuple[str, str]]  # name -> (sql column, class: text|int|float|bool|tstz|ts|date|null|json)
    unit: str
    rows: int
    typed: bool

    def error(self, line: int, column: str | None, what: str) -> ValidationError:
        return ValidationError.at(self.name, int(line), column, what, unit=self.unit)

    def column_error(self, column: str, what: str) -> ValidationError:
        return ValidationError.at(self.name, None, column, f"column '{column}' {what}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, kind: str, encoding: str, table: str,
               settings: Settings) -> Staged:
    """Stage a CSV or Parquet file of `kind` as `table` (the caller checked that the path is a file); more
    columns or rows than `settings` allows are refused before (Parquet) or as (CSV) the rows are read."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return _stage_parquet(con, path, kind, table, settings)
    return _stage_csv(con, path, kind, encoding, table, settings)


# ---- CSV ----------------------------------------------------------------------------------------------


def _streamable_encoding(encoding: str) -> bool:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        return True  # _decode names the unknown encoding, as the in-memory path does
    if info.name.startswith(("utf-16", "utf-32", "utf-7", "iso2022")):
        return False
    return "\n,;\t|\"".encode(info.name) == b"\n,;\t|\""


def _text_pieces(path: Path, name: str, encoding: str) -> Iterator[str]:
    """The file's text in pieces of about CHUNK_BYTES, each cut after a line break (0x0A), decoded by
    `_decode` with the lines before it (so a bad byte is placed on its true line)."""
    lines_before, first, carry = 0, True, b""
    with open(path, "rb") as f:
        # the UTF-16 check of the in-memory path, on the same bytes: the file's first 200
        check_not_utf16(f.read(200), name, encoding)
        f.seek(0)
        while True:
            block = f.read(CHUNK_BYTES)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line break yet: read on (a line longer than a piece)
                    carry = data
                    continue
                piece, carry = data[:cut], data[cut:]
            else:
                piece, carry = data, b""
            if piece or first:
                yield _decode(piece, name, encoding, lines_before=lines_before, first=first, check_utf16=False)
                lines_before += piece.count(b"\n")
                first = False
            if not block:
                return


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, kind: str, encoding: str, table: str,
               settings: Settings) -> Staged:
    name = path.name
    if not _streamable_encoding(encoding):
        raise NotStreamable(f"encoding {encoding}")
    pieces = _text_pieces(path, name, encoding)
    first = next(pieces)
    while not first.strip():  # whitespace so far: the file is empty unless a later piece holds text
        more = next(pieces, None)
        if more is None:
            raise ValidationError.whole(name, "is empty: expected a header line and rows", line=1)
        first += more

    def texts() -> Iterator[str]:
        yield first
        yield from pieces

    header, rows = csv_rows(texts(), name, split=lambda piece: io.StringIO(piece, newline=""),
                            max_columns=settings.ingest.max_columns)
    n = len(header)
    cols = [f"c{i}" for i in range(n)]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ("
                + ", ".join(f"{c} VARCHAR" for c in cols) + (", " if cols else "") + "_line BIGINT)")
    total = 0
    batch: list[list[str]] = []
    lines: list[int] = []

    def flush() -> None:
        by_column = list(zip(*batch)) if cols else []
        arrow = pa.table({**{c: pa.array(v, pa.string()) for c, v in zip(cols, by_column)},
                          "_line": pa.array(lines, pa.int64())})
        con.register("crossrec_csv_batch", arrow)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM crossrec_csv_batch")
        finally:
            con.unregister("crossrec_csv_batch")
        batch.clear()
        lines.clear()

    for line_no, row in rows:
        batch.append(row)
        lines.append(line_no)
        if len(lines) >= BATCH_ROWS:
            total += len(lines)
            flush()
            if total > settings.ingest.max_rows:
                raise too_many_rows(name, settings)
    if lines:
        total += len(lines)
        flush()
    if total > settings.ingest.max_rows:
        raise too_many_rows(name, settings)
    if not total:
        raise ValidationError.whole(name, "has a header but no data rows", line=1)
    names = check_names(header, name, kind, "line")
    return Staged(name, kind, table, {c: (sql, "text") for c, sql in zip(names, cols)}, "line", total, False)


# ---- Parquet ------------------------------------------------------------------------------------------


def _sql_class(t: pa.DataType, read_as: str) -> str:
    if read_as == "time":
        return "date" if pa.types.is_date(t) else ("tstz" if t.tz else "ts")
    if read_as == "number":
        if pa.types.is_boolean(t):
            return "bool"
        if pa.types.is_integer(t):
            return "int"
        return "float" if pa.types.is_floating(t) else "other"  # decimal: the in-memory path
    if read_as == "text" and pa.types.is_dictionary(t) and not (
            pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return "other"
    return read_as  # text, null, json


# what each column of the contract may be for the streaming path (else: the in-memory path)
_NUMBER_ROLE = {"price", "value"}
_TIME_ROLE = {"timestamp"}


def _streamable_class(col: str, cls: str, kind: str) -> bool:
    if col in _NUMBER_ROLE and col in KNOWN[kind]:
        return cls in ("int", "float", "text", "null", "bool")
    if col in _TIME_ROLE and col in KNOWN[kind]:
        return cls in ("tstz", "ts", "date", "text", "int", "float", "null", "bool")
    if kind == "events" and col not in KNOWN["events"]:
        return True  # ignored
    return cls in ("text", "int", "null") or (cls == "float" and col.endswith("_id") and col in KNOWN[kind])


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, kind: str, table: str, settings: Settings) -> Staged:
    name = path.name
    contract = {c.lower() for c in KNOWN.get(kind, ALL_KNOWN)}
    try:
        pf = pq.ParquetFile(path)
        schema, rows = pf.schema_arrow, pf.metadata.num_rows
    except Exception:  # the in-memory reader words the error (the same call, the same message)
        _read_parquet(path, name, kind, settings)
        raise NotStreamable("pyarrow reads this file only whole") from None
    names = schema.names
    check_width(name, len(names), settings.ingest.max_columns)
    if rows > settings.ingest.max_rows:
        raise too_many_rows(name, settings)
    dup = {c for c in names if names.count(c) > 1}
    if dup:
        col = sorted(dup)[0]
        raise ValidationError.at(name, None, col, f"column '{clip(col)}' appears twice")
    if rows == 0:
        raise ValidationError.whole(name, "has no rows")
    read_as = [parquet_class(name, col, schema.field(col).type, contract) for col in names]
    checked = check_names(names, name, kind, "row")
    classes = [_sql_class(schema.field(c).type, r) for c, r in zip(names, read_as)]
    for col, cls in zip(checked, classes):
        if not _streamable_class(col, cls, kind):
            raise NotStreamable(f"column {col} ({cls})")
    cols = [f"c{i}" for i in range(len(names))]
    select = ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" AS {c}' for n, c in zip(names, cols))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {select}{', ' if cols else ''}"
                f"file_row_number + 1 AS _line FROM read_parquet({_quote(str(path.resolve()))}, file_row_number = true)")
    # an integer column with a missing value is float in pandas (1 -> '1.0'): as text, the in-memory path
    ints = [c for c, col, cls in zip(cols, checked, classes)
            if cls == "int" and col not in _NUMBER_ROLE | _TIME_ROLE and not (kind == "events"
                                                                               and col not in KNOWN["events"])]
    if ints and any(con.execute(f"SELECT {', '.join(f'count(*) - count({c})' for c in ints)} FROM {table}")
                    .fetchall()[0]):
        raise NotStreamable("an integer text column has missing values")
    return Staged(name, kind, table, {col: (c, cls) for col, c, cls in zip(checked, cols, classes)}, "row", rows, True)
