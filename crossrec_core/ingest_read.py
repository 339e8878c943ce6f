"""Read input files (CSV or Parquet) as tables of strings, checking their shape before anything else.

Every problem is reported as `file line N, column C: what is wrong`, the first one found, so the user
can fix it: the encoding, the separator, quoting, the header and the required columns. The cells are
checked by `ingest_validate`.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .config import Settings
from .errors import ValidationError, clip

ITEM_COLUMNS = ("item_id", "title", "category", "description", "brand", "price")
ITEM_REQUIRED = ("item_id", "title", "category")
EVENT_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value")
EVENT_REQUIRED = ("user_id", "item_id", "event_type", "timestamp")
USER_REQUIRED = ("user_id",)
PROFILE_ALIASES = ("profile_text", "profile", "text", "bio", "about")
REQUIRED = {"items": ITEM_REQUIRED, "events": EVENT_REQUIRED, "users": USER_REQUIRED}
KNOWN = {"items": ITEM_COLUMNS, "events": EVENT_COLUMNS, "users": (*USER_REQUIRED, *PROFILE_ALIASES)}
ALL_KNOWN = (*ITEM_COLUMNS, *EVENT_COLUMNS, *PROFILE_ALIASES)
UNCATEGORISED = "Uncategorised"
_SEPARATORS = (",", ";", "\t", "|")
# Checking and loading a CSV takes about this many bytes of memory per byte of file (measured on a 17 MB
# events file: every cell becomes a Python string, then a column of the frames DuckDB loads from).
MEMORY_PER_UPLOAD_BYTE = 15


@dataclass
class RawTable:
    """All cells as strings (None = missing), with the source line of each row for messages."""

    name: str  # file name as shown in messages
    frame: pd.DataFrame
    lines: np.ndarray  # 1-based line (CSV) or row (Parquet) number of each row
    unit: str  # "line" for CSV, "row" for Parquet
    typed: bool = False  # Parquet keeps its own types for timestamp/price

    def error(self, pos: int, column: str | None, what: str) -> ValidationError:
        """The error of row `pos` (and `column`): file, line (or row) and column stated once."""
        return ValidationError.at(self.name, int(self.lines[pos]), column, what, unit=self.unit)

    def column_error(self, column: str, what: str) -> ValidationError:
        """The error of a whole column (e.g. its Parquet type): `items.parquet: column 'price' what`."""
        return ValidationError.at(self.name, None, column, f"column '{column}' {what}")


def read_table(path: str | Path, kind: str, encoding: str = "utf-8", settings: Settings | None = None) -> RawTable:
    """Read a CSV or Parquet file of `kind` (items, events, users) as strings, checking its shape (and its
    size against `settings`' max_columns and max_ingest_rows before its rows are read)."""
    settings = settings or Settings()
    path = Path(path)
    name = path.name
    if not path.exists():
        raise ValidationError(f"{path}: no such file", file=name)  # the path said, the file named
    if path.is_dir():
        raise ValidationError(f"{path}: is a folder, not a file", file=name)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        table = _read_parquet(path, name, kind, settings)
    elif suffix in (".csv", ".tsv", ".txt", ""):
        table = _read_csv(path.read_bytes(), name, encoding, settings)
    else:
        raise ValidationError.at(name, None, None, f"unsupported file type '{suffix}' (use .csv or .parquet)")
    _check_columns(table, kind)
    return table


def read_bytes(data: bytes, name: str, kind: str, encoding: str = "utf-8", settings: Settings | None = None
               ) -> RawTable:
    """Same as read_table for an upload held in memory."""
    settings = settings or Settings()
    if name.lower().endswith((".parquet", ".pq")):
        table = _read_parquet(io.BytesIO(data), name, kind, settings)
    else:
        table = _read_csv(data, name, encoding, settings)
    _check_columns(table, kind)
    return table


def _utf16(data: bytes) -> bool:
    """A UTF-16 file: its byte-order mark, or a NUL in every other byte of its start (ASCII text as UTF-16)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = data[:200]
    return len(head) >= 4 and (head[1::2].count(0) > 0.8 * len(head[1::2]) or head[0::2].count(0) > 0.8 * len(head[0::2]))


def _utf32(data: bytes) -> bool:
    """A UTF-32 file: its byte-order mark, or three NULs in every four bytes of its start."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return True
    head = data[: len(data[:200]) // 4 * 4]
    return len(head) >= 8 and any(all(head[k::4].count(0) > 0.8 * len(head[k::4]) for k in zeros)
                                  for zeros in ((1, 2, 3), (0, 1, 2)))


# files that are not text at all, by their first bytes
_BINARY = ((b"PAR1", "a Parquet file, not CSV text: give it a .parquet name"),
           (b"PK\x03\x04", "a zip archive, not CSV text: unzip it and give the CSV inside"),
           (b"\x1f\x8b", "a gzip file, not CSV text: decompress it first"))


def check_not_utf16(head: bytes, name: str, encoding: str) -> None:
    """A CSV that is not text says what it is (Parquet, zip, gzip), and a file read as UTF-8 (the default)
    that is UTF-32 or UTF-16 is refused with a hint (`head`: its first bytes)."""
    for magic, what in _BINARY:
        if head.startswith(magic):
            raise ValidationError.whole(name, f"is {what}", line=1)
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig"):
        for wide, bits in ((_utf32, "32"), (_utf16, "16")):
            if wide(head):
                raise ValidationError.whole(name, f"is UTF-{bits} text, not UTF-8: save it as UTF-8 (or pass "
                                            f"--encoding utf-{bits})", line=1)


def _decode(data: bytes, name: str, encoding: str, *, lines_before: int = 0, first: bool = True,
            check_utf16: bool = True) -> str:
    """`data` as text. A streaming read decodes a file in pieces that start at a line: `lines_before` lines
    come before this piece, `first` says it is the file's start (where a BOM or UTF-16 shows)."""
    if first and check_utf16:
        check_not_utf16(data, name, encoding)
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        # a BOM from Excel is stripped, not read as part of the first column
        encoding = "utf-8-sig" if first else "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        start = exc.start
        if encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf"):
            start += 3  # the codec reports offsets after the BOM it stripped
        line = lines_before + data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        # characters, not bytes, before the bad byte on its line (é is two bytes but one character)
        col = len(data[line_start:start].decode(encoding, errors="replace")) + 1
        bad = data[start : start + 1].hex()
        raise ValidationError.at(
            name, line, None, f"byte 0x{bad} at character {col} is not valid {exc.encoding.upper()}; "
            f"save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)") from None
    except LookupError:
        raise ValidationError.at(name, None, None, f"unknown encoding '{encoding}'") from None


def _sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _lines(text: str):
    """The lines of `text` with their line breaks (LF, CR or CRLF), one at a time (io.StringIO would hold
    a copy of the whole text at four bytes a character)."""
    for m in _LINE.finditer(text):
        yield m.group()


def _read_csv(data: bytes, name: str, encoding: str, settings: Settings) -> RawTable:
    text = _decode(data, name, encoding)
    if not text.strip():
        raise ValidationError.whole(name, "is empty: expected a header line and rows", line=1)
    header, rows = csv_rows([text], name, max_columns=settings.ingest.max_columns)
    del text  # the line iterator holds its own reference; nothing else needs the whole text
    # Cells are gathered column by column, each distinct value held once per column (ids and event types
    # repeat a lot): a large upload then costs a few times its size in memory, not tens of times.
    columns: list[list[str]] = [[] for _ in header]
    distinct: list[dict[str, str]] = [{} for _ in header]
    lines: list[int] = []
    for line_no, row in rows:
        for cells, seen, value in zip(columns, distinct, row):
            cells.append(seen.setdefault(value, value))
        lines.append(line_no)
        if len(lines) > settings.ingest.max_rows:
            raise too_many_rows(name, settings)
    if not lines:
        raise ValidationError.whole(name, "has a header but no data rows", line=1)
    del distinct
    frame = pd.DataFrame({col: pd.Series(cells, dtype=object) for col, cells in zip(header, columns)})
    return RawTable(name, frame, np.asarray(lines, dtype=np.int64), "line")


def csv_rows(texts: Iterable[str], name: str, split: Callable[[str], Iterable[str]] | None = None, *,
             max_columns: int) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header of a CSV text given in pieces (each ending at a line break, but the last) and its data rows
    with their line numbers, checked one at a time: the shape errors of the file (separator, quoting, field
    counts, a repeated header) raised at the first bad line. The in-memory and the streaming ingest both read
    through this, so they agree on every row and every message. `split` cuts a piece into lines (default: a
    regex that holds no copy of the text; `io.StringIO(piece, newline="")` is faster and splits alike)."""
    texts = iter(texts)
    first = next(texts, "")
    # Line breaks are left as they are: the reader splits lines on LF, CR or CRLF, and a CR or CRLF inside
    # a quoted field is part of the value, stored as given.
    header_line = re.split(r"\r\n|\r|\n", first, maxsplit=1)[0]
    sep = _sniff_separator(header_line)
    split = split or _lines
    lines = itertools.chain(split(first), itertools.chain.from_iterable(split(t) for t in texts))
    del first
    reader = csv.reader(lines, delimiter=sep, quotechar='"', strict=False)
    csv.field_size_limit(1 << 30)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise ValidationError.at(name, 1, None, f"unreadable header ({exc})") from None
    check_width(name, len(header), max_columns, line=1)
    header = [h.strip() for h in header]
    # a trailing separator on the header (`a,b,c,`) names nothing: those unnamed columns are dropped, rows
    # may have their fields or not, and only a value under one is refused
    unnamed = 0
    while unnamed < len(header) - 1 and header[-1 - unnamed] == "":
        unnamed += 1
    header = header[: len(header) - unnamed]
    for pos, col in enumerate(header):
        if "\x00" in col:
            raise ValidationError.at(name, 1, None, f"the name of column {pos + 1} holds a NUL byte (\\x00): not a "
                                     "UTF-8 text header (UTF-16 or a binary file?)")
    seen: dict[str, int] = {}
    for pos, col in enumerate(header):
        if col == "":
            raise ValidationError.at(name, 1, None, f"column {pos + 1} has no name")
        if col in seen:
            raise ValidationError.at(name, 1, col, f"column '{clip(col)}' appears twice (columns {seen[col] + 1} and "
                                     f"{pos + 1})", header=True)
        seen[col] = pos
    return header, _checked_rows(reader, header, sep, name, unnamed)


def _checked_rows(reader, header: list[str], sep: str, name: str, unnamed: int = 0
                  ) -> Iterator[tuple[int, list[str]]]:
    n = len(header)
    first = header[0] if header else None
    sep_name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[sep]
    try:
        prev = reader.line_num
        for row in reader:
            line_no, prev = prev + 1, reader.line_num  # the line the row starts on
            if not row or (len(row) == 1 and row[0].strip() == ""):
                continue  # blank line
            if unnamed and len(row) == n + unnamed:
                filled = [pos for pos, cell in enumerate(row[n:], n + 1) if cell.strip()]
                if filled:
                    raise ValidationError.at(name, line_no, None, f"a value in column {filled[0]}, which the header "
                                             "leaves unnamed (it ends with a separator): name the column")
                row = row[:n]
            if len(row) != n and reader.line_num > line_no and any("\n" in c or "\r" in c for c in row):
                raise ValidationError.at(
                    name, line_no, None, f"a quoted field that starts on this line is never closed (a '\"' is "
                    f"missing), so lines {line_no}-{reader.line_num} read as one row")
            if len(row) != n:
                hint = ""
                others = [s for s in _SEPARATORS if s != sep and s in sep.join(row)]
                if others:
                    hint = f" (the header is {sep_name}-separated; this line seems to use '{others[0]}')"
                raise ValidationError.at(name, line_no, None, f"expected {n} fields, found {len(row)}{hint}")
            if row[0].strip() == first and [c.strip() for c in row] == header:
                raise ValidationError.at(name, line_no, None,
                                         "the header is repeated (were two files pasted together?)")
            yield line_no, row
    except csv.Error as exc:
        raise ValidationError.at(name, reader.line_num, None, f"{exc}") from None


def _read_parquet(source, name: str, kind: str | None = None, settings: Settings | None = None) -> RawTable:
    # columns of the contract must be scalars; any other column is extra and is kept as JSON text
    settings = settings or Settings()
    contract = {c.lower() for c in KNOWN.get(kind, ALL_KNOWN)}
    try:
        pf = pq.ParquetFile(source)
    except Exception:  # pyarrow raises several types for a bad file; read_table below words it
        pf = None
        if hasattr(source, "seek"):
            source.seek(0)
    if pf is not None:  # its size from the footer, before any row is read
        check_width(name, len(pf.schema_arrow.names), settings.ingest.max_columns)
        if pf.metadata.num_rows > settings.ingest.max_rows:
            raise too_many_rows(name, settings)
    try:
        table = pq.read_table(source) if pf is None else pf.read()
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ValidationError.at(name, None, None, f"not a readable Parquet file ({clip(str(exc).splitlines()[0])})"
                                 ) from None
    names = table.column_names
    dup = {c for c in names if names.count(c) > 1}
    if dup:
        col = sorted(dup)[0]
        raise ValidationError.at(name, None, col, f"column '{clip(col)}' appears twice")
    if table.num_rows == 0:
        raise ValidationError.whole(name, "has no rows")
    columns = {}
    for col in names:
        arr = table.column(col)
        t = arr.type
        kind_of = parquet_class(name, col, t, contract)
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("s"))  # to_pandas() would give datetime.date objects
        if kind_of == "time":
            columns[col] = arr.to_pandas()
            if getattr(columns[col].dt, "tz", None) is None:
                columns[col] = columns[col].dt.tz_localize("UTC")
        elif kind_of == "text":
            columns[col] = arr.to_pandas().astype(object)
        elif kind_of == "number":
            columns[col] = arr.to_pandas()
        elif kind_of == "null":  # a column with no values at all (e.g. price None everywhere): all missing
            columns[col] = pd.Series([None] * len(arr), dtype=object)
        else:
            columns[col] = pd.Series(
                [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in arr.to_pylist()],
                dtype=object,
            )
    frame = pd.DataFrame(columns)
    return RawTable(name, frame, np.arange(1, len(frame) + 1, dtype=np.int64), "row", typed=True)


def parquet_rows(path: Path) -> int:
    """The rows a Parquet file's footer declares (0 when pyarrow cannot read it: the reader says why)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # pyarrow raises several types for a bad file
        return 0


def check_width(name: str, columns: int, max_columns: int, line: int | None = None) -> None:
    """Refuse a file of more than `max_columns` columns at once (a 1M-column header took minutes and GBs)."""
    if columns > max_columns:
        raise ValidationError.whole(name, f"has {columns:,} columns, more than the limit of {max_columns:,} "
                                    "(settings max_columns)", line=line)


def too_many_rows(name: str, settings: Settings) -> ValidationError:
    """The error of a file of more than `settings.ingest.max_rows` rows."""
    return ValidationError.whole(name, f"has more than {settings.ingest.max_rows:,} rows, the limit of one file "
                                 "(settings max_ingest_rows): split it")


def parquet_class(name: str, col: str, t: pa.DataType, contract: set[str]) -> str:
    """How a Parquet column of type `t` is read: "time", "text", "number", "null" (no values at all) or, for a
    column outside the contract only, "json" (kept as JSON text). Any other type in the contract is an error."""
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "time"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "text"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_null(t):
        return "null"
    if col.strip().lower() not in contract:
        return "json"
    raise ValidationError.at(name, None, col, f"column '{col}' has type {t}, expected text, a number or a "
                             "timestamp")


def _check_columns(table: RawTable, kind: str) -> None:
    table.frame.columns = check_names(list(table.frame.columns), table.name, kind, table.unit)


def check_names(columns: list[str], name: str, kind: str, unit: str) -> list[str]:
    """The column names of a `kind` table after the checks of its header: a known column twice (in any case)
    or a required one missing is an error. Known names are given their contract's case (e.g. "Item_ID")."""
    cols = [c.strip() for c in columns]
    lower = {c.lower(): c for c in cols}
    header_line = 1 if unit == "line" else None  # a CSV's header line; Parquet's names have no line
    for c in ALL_KNOWN:
        same = [x for x in cols if x.lower() == c]
        if len(same) > 1:  # e.g. "title" and "Title": both would become title
            raise ValidationError.at(name, header_line, c, f"column '{c}' appears twice (as "
                                     f"{clip(' and '.join(repr(x) for x in same))})", header=True)
    # tolerate case differences in the contract's names, e.g. "Item_ID"
    rename = {lower[c]: c for c in ALL_KNOWN if c in lower and lower[c] != c}
    cols = [rename.get(c, c) for c in cols]
    for col in REQUIRED[kind]:
        if col not in cols:
            found = clip(", ".join(cols))
            raise ValidationError.at(name, header_line, col,
                                     f"missing required column '{col}' for {kind} (found: {found})", header=True)
    return cols
