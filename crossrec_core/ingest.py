"""Read and validate input files (CSV or Parquet) into clean frames before anything touches the store.

Every problem is reported as `file line N, column C: what is wrong`, the first one found, so the user
can fix it. Rows that are fine but not loadable (unknown event types, unknown items) are counted in
the `IngestReport` instead of failing the whole load.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .config import EVENT_TYPES, Settings
from .errors import ValidationError

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
# Unix seconds past this (year 2286) are milliseconds or nanoseconds by mistake.
_MAX_UNIX_SECONDS = 10_000_000_000


@dataclass
class IngestReport:
    """What a load did and what it left out, for the CLI and the Data page."""

    items_in_file: int = 0
    items_added: int = 0
    items_updated: int = 0
    events_in_file: int = 0
    events_added: int = 0
    events_duplicate: int = 0  # already in the database
    events_repeated_in_file: int = 0  # identical rows inside the file, loaded once
    users_in_file: int = 0
    users_added: int = 0
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    unknown_items: int = 0
    unknown_item_examples: list[str] = field(default_factory=list)
    extra_columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one fact a line."""
        out = []
        if self.items_in_file:
            out.append(f"items: {self.items_in_file:,} in file, {self.items_added:,} new, {self.items_updated:,} updated")
        if self.users_in_file:
            out.append(f"users: {self.users_in_file:,} in file, {self.users_added:,} new")
        if self.events_in_file:
            out.append(
                f"events: {self.events_in_file:,} in file, {self.events_added:,} added, "
                f"{self.events_duplicate:,} already loaded"
                + (f", {self.events_repeated_in_file:,} identical rows loaded once" if self.events_repeated_in_file else "")
            )
        if self.unknown_event_types:
            detail = ", ".join(f"'{k}' ({v:,})" for k, v in sorted(self.unknown_event_types.items(), key=lambda kv: -kv[1]))
            total = sum(self.unknown_event_types.values())
            out.append(f"skipped {total:,} events of unknown type: {detail} (known: {', '.join(EVENT_TYPES)})")
        if self.unknown_items:
            ex = ", ".join(self.unknown_item_examples)
            out.append(f"skipped {self.unknown_items:,} events whose item is not in the catalog (e.g. {ex})")
        for kind, cols in self.extra_columns.items():
            out.append(f"{kind}: extra columns kept as attributes: {', '.join(cols)}")
        out.extend(self.notes)
        return out

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


# ---------------------------------------------------------------------------------------------
# reading


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


def read_table(path: str | Path, kind: str, encoding: str = "utf-8") -> RawTable:
    """Read a CSV or Parquet file of `kind` (items, events, users) as strings, checking its shape."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise ValidationError(f"{path}: no such file", file=name)
    if path.is_dir():
        raise ValidationError(f"{path}: is a folder, not a file", file=name)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        table = _read_parquet(path, name, kind)
    elif suffix in (".csv", ".tsv", ".txt", ""):
        table = _read_csv(path.read_bytes(), name, encoding)
    else:
        raise ValidationError.at(name, None, None, f"unsupported file type '{suffix}' (use .csv or .parquet)")
    _check_columns(table, kind)
    return table


def read_bytes(data: bytes, name: str, kind: str, encoding: str = "utf-8") -> RawTable:
    """Same as read_table for an upload held in memory."""
    if name.lower().endswith((".parquet", ".pq")):
        table = _read_parquet(io.BytesIO(data), name, kind)
    else:
        table = _read_csv(data, name, encoding)
    _check_columns(table, kind)
    return table


def _utf16(data: bytes) -> bool:
    """A UTF-16 file: its byte-order mark, or a NUL in every other byte of its start (ASCII text as UTF-16)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = data[:200]
    return len(head) >= 4 and (head[1::2].count(0) > 0.8 * len(head[1::2]) or head[0::2].count(0) > 0.8 * len(head[0::2]))


def _decode(data: bytes, name: str, encoding: str) -> str:
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig") and _utf16(data):
        raise ValidationError(f"{name} is UTF-16 text, not UTF-8: save it as UTF-8 (or pass --encoding utf-16)",
                              file=name, line=1)
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        encoding = "utf-8-sig"  # a BOM from Excel is stripped, not read as part of the first column
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        start = exc.start
        if encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf"):
            start += 3  # the codec reports offsets after the BOM it stripped
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        # characters, not bytes, before the bad byte on its line (é is two bytes but one character)
        col = len(data[line_start:start].decode(encoding, errors="replace")) + 1
        bad = data[start : start + 1].hex()
        raise ValidationError(
            f"{name} line {line}: byte 0x{bad} at character {col} is not valid {exc.encoding.upper()}; "
            f"save the file as UTF-8, or pass its encoding (e.g. --encoding cp1252)",
            file=name,
            line=line,
        ) from None
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


def _read_csv(data: bytes, name: str, encoding: str) -> RawTable:
    text = _decode(data, name, encoding)
    if not text.strip():
        raise ValidationError(f"{name} is empty: expected a header line and rows", file=name, line=1)
    # Line breaks are left as they are: the reader splits lines on LF, CR or CRLF, and a CR or CRLF inside
    # a quoted field is part of the value, stored as given.
    header_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    sep = _sniff_separator(header_line)
    reader = csv.reader(_lines(text), delimiter=sep, quotechar='"', strict=False)
    del text  # the line iterator holds its own reference; nothing else needs the whole text
    csv.field_size_limit(1 << 30)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ValidationError.at(name, 1, None, f"unreadable header ({exc})") from None
    header = [h.strip() for h in header]
    for pos, col in enumerate(header):
        if "\x00" in col:
            raise ValidationError(f"{name} line 1: the name of column {pos + 1} holds a NUL byte (\\x00): not a "
                                  "UTF-8 text header (UTF-16 or a binary file?)", file=name, line=1)
    seen: dict[str, int] = {}
    for pos, col in enumerate(header):
        if col == "":
            raise ValidationError.at(name, 1, None, f"column {pos + 1} has no name")
        if col in seen:
            raise ValidationError(
                f"{name} line 1: column '{col}' appears twice (columns {seen[col] + 1} and {pos + 1})",
                file=name,
                line=1,
                column=col,
            )
        seen[col] = pos
    # Cells are gathered column by column, each distinct value held once per column (ids and event types
    # repeat a lot): a large upload then costs a few times its size in memory, not tens of times.
    columns: list[list[str]] = [[] for _ in header]
    distinct: list[dict[str, str]] = [{} for _ in header]
    lines: list[int] = []
    n = len(header)
    sep_name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[sep]
    try:
        while True:
            line_no = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not row or (len(row) == 1 and row[0].strip() == ""):
                continue  # blank line
            if len(row) != n and reader.line_num > line_no and any("\n" in c or "\r" in c for c in row):
                raise ValidationError(
                    f"{name} line {line_no}: a quoted field that starts on this line is never closed (a '\"' is "
                    f"missing), so lines {line_no}-{reader.line_num} read as one row",
                    file=name, line=line_no,
                )
            if len(row) != n:
                hint = ""
                others = [s for s in _SEPARATORS if s != sep and s in sep.join(row)]
                if others:
                    hint = f" (the header is {sep_name}-separated; this line seems to use '{others[0]}')"
                raise ValidationError(
                    f"{name} line {line_no}: expected {n} fields, found {len(row)}{hint}",
                    file=name,
                    line=line_no,
                )
            if [c.strip() for c in row] == header:
                raise ValidationError(
                    f"{name} line {line_no}: the header is repeated (were two files pasted together?)",
                    file=name,
                    line=line_no,
                )
            for cells, seen, value in zip(columns, distinct, row):
                cells.append(seen.setdefault(value, value))
            lines.append(line_no)
    except csv.Error as exc:
        raise ValidationError.at(name, reader.line_num, None, f"{exc}") from None
    if not lines:
        raise ValidationError(f"{name} has a header but no data rows", file=name, line=1)
    del distinct
    frame = pd.DataFrame({col: pd.Series(cells, dtype=object) for col, cells in zip(header, columns)})
    return RawTable(name, frame, np.asarray(lines, dtype=np.int64), "line")


def _read_parquet(source, name: str, kind: str | None = None) -> RawTable:
    # columns of the contract must be scalars; any other column is extra and is kept as JSON text
    contract = {c.lower() for c in KNOWN.get(kind, ALL_KNOWN)}
    try:
        table = pq.read_table(source)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ValidationError.at(name, None, None, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    names = table.column_names
    dup = {c for c in names if names.count(c) > 1}
    if dup:
        col = sorted(dup)[0]
        raise ValidationError(f"{name}: column '{col}' appears twice", file=name, column=col)
    if table.num_rows == 0:
        raise ValidationError(f"{name} has no rows", file=name)
    columns = {}
    for col in names:
        arr = table.column(col)
        t = arr.type
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("s"))  # to_pandas() would give datetime.date objects
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            columns[col] = arr.to_pandas()
            if getattr(columns[col].dt, "tz", None) is None:
                columns[col] = columns[col].dt.tz_localize("UTC")
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            columns[col] = arr.to_pandas().astype(object)
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            columns[col] = arr.to_pandas()
        elif pa.types.is_null(t):  # a column with no values at all (e.g. price None everywhere): all missing
            columns[col] = pd.Series([None] * len(arr), dtype=object)
        elif col.strip().lower() not in contract:
            columns[col] = pd.Series(
                [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in arr.to_pylist()],
                dtype=object,
            )
        else:
            raise ValidationError(
                f"{name}: column '{col}' has type {t}, expected text, a number or a timestamp",
                file=name,
                column=col,
            )
    frame = pd.DataFrame(columns)
    return RawTable(name, frame, np.arange(1, len(frame) + 1, dtype=np.int64), "row", typed=True)


def _check_columns(table: RawTable, kind: str) -> None:
    cols = [c.strip() for c in table.frame.columns]
    table.frame.columns = cols
    lower = {c.lower(): c for c in cols}
    where = f"{table.name} line 1" if table.unit == "line" else table.name
    for c in ALL_KNOWN:
        same = [x for x in cols if x.lower() == c]
        if len(same) > 1:  # e.g. "title" and "Title": both would become title
            raise ValidationError(
                f"{where}: column '{c}' appears twice (as {' and '.join(repr(x) for x in same)})",
                file=table.name, line=1 if table.unit == "line" else None, column=c,
            )
    # tolerate case differences in the contract's names, e.g. "Item_ID"
    rename = {lower[c]: c for c in ALL_KNOWN if c in lower and lower[c] != c}
    if rename:
        table.frame.rename(columns=rename, inplace=True)
    for col in REQUIRED[kind]:
        if col not in table.frame.columns:
            found = ", ".join(table.frame.columns)
            raise ValidationError(
                f"{where}: missing required column '{col}' for {kind} (found: {found})",
                file=table.name,
                line=1 if table.unit == "line" else None,
                column=col,
            )


# ---------------------------------------------------------------------------------------------
# validating


def _reject(table: RawTable, bad: np.ndarray, col: str, what: Callable[[int], str]) -> None:
    """Raise the ValidationError of the first row where `bad` holds: `file line N, column C: what(pos)`."""
    if bad.any():
        pos = int(np.argmax(bad))
        raise table.error(pos, col, what(pos))


def _text(table: RawTable, col: str, *, required: bool, max_chars: int | None = None) -> pd.Series:
    """A column as clean strings; `required` rejects empty values, `max_chars` over-long ones."""
    s = table.frame[col] if col in table.frame.columns else pd.Series([None] * len(table.frame), dtype=object)
    if table.typed and s.dtype != object:
        if pd.api.types.is_float_dtype(s) and col.endswith("_id"):
            raise ValidationError(
                f"{table.name}: column '{col}' holds numbers with decimals, expected ids (text or integers)",
                file=table.name,
                column=col,
            )
        s = s.astype("string").astype(object)
    missing = s.isna().to_numpy()
    s = s.where(~missing, "").astype(str)
    if required:
        empty = missing | (s.str.strip() == "").to_numpy()
        if empty.any():
            pos = int(np.argmax(empty))
            raise table.error(pos, col, f"empty, but {col} is required")
    _reject(table, s.str.contains("\x00", regex=False).to_numpy(dtype=bool), col,
            lambda pos: f"a NUL byte (\\x00) at character {s.iloc[pos].index(chr(0)) + 1}; text may not contain "
                        "NUL bytes (is the file UTF-16 or binary?)")
    if max_chars is not None:
        lengths = s.str.len().to_numpy()
        _reject(table, lengths > max_chars, col,
                lambda pos: f"{int(lengths[pos]):,} characters, more than the limit of {max_chars:,}")
    return s


def _number(table: RawTable, col: str) -> pd.Series:
    """An optional numeric column: empty means missing, anything else must parse."""
    if col not in table.frame.columns:
        return pd.Series(np.full(len(table.frame), np.nan))
    s = table.frame[col]
    if table.typed and pd.api.types.is_bool_dtype(s):  # bool counts as numeric in pandas: True would be 1.0
        raise ValidationError(f"{table.name}: column '{col}' has type bool, expected a number",
                              file=table.name, column=col)
    if table.typed and pd.api.types.is_numeric_dtype(s):
        num = s.astype("float64")
        raw = num.astype(str)
    else:
        raw = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        cleaned = raw.str.replace(r"^[$€£]\s*", "", regex=True)
        num = pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce")
        _reject(table, (raw != "").to_numpy() & num.isna().to_numpy(), col,
                lambda pos: f"'{_short(raw.iloc[pos])}' is not a number")
    _reject(table, np.isinf(num.to_numpy(dtype="float64")), col,
            lambda pos: f"'{_short(raw.iloc[pos])}' is not a finite number")
    return num.astype("float64")


def _short(value: str, n: int = 40) -> str:
    return value if len(value) <= n else value[: n - 1] + "…"


def parse_timestamps(table: RawTable, col: str = "timestamp",
                     window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> pd.Series:
    """ISO 8601 strings or Unix seconds (both may appear in one file) → UTC timestamps, all inside `window`."""
    s = table.frame[col]
    if table.typed and isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.as_unit("us")
    if table.typed and pd.api.types.is_bool_dtype(s):  # True would become 1970-01-01 00:00:01
        raise ValidationError(
            f"{table.name}: column '{col}' has type bool, expected ISO 8601 text, Unix seconds or a timestamp",
            file=table.name, column=col,
        )
    if table.typed and pd.api.types.is_numeric_dtype(s):
        raw = s.astype("float64")
        numeric = raw
        text = pd.Series([""] * len(s), dtype=object)
        is_num = raw.notna().to_numpy()
    else:
        text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        # no number contains ':', every ISO time does: skip the (slow, failing) numeric parse of those
        maybe = ((text != "") & ~text.str.contains(":", regex=False)).to_numpy()
        numeric = pd.Series(np.nan, index=text.index, dtype="float64")
        if maybe.any():
            numeric[maybe] = pd.to_numeric(text[maybe], errors="coerce").astype("float64")
        is_num = numeric.notna().to_numpy()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if is_num.any():
        secs = numeric[is_num].astype("float64")
        too_big = secs.abs() > _MAX_UNIX_SECONDS
        if too_big.any():
            pos = int(np.flatnonzero(is_num)[np.argmax(too_big.to_numpy())])
            raise table.error(pos, col, f"{numeric.iloc[pos]:.0f} is too large for Unix seconds "
                                        "(milliseconds? divide by 1000)")
        out[is_num] = pd.to_datetime((secs * 1e6).round().astype("int64"), unit="us", utc=True)
    iso = ~is_num
    if iso.any():
        parsed = pd.to_datetime(text[iso], format="ISO8601", utc=True, errors="coerce")
        out[iso] = parsed.dt.as_unit("us")
    bad = out.isna().to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        cell = s.iloc[pos]
        if table.typed and not isinstance(cell, str):  # a typed column: only a null is empty
            value, empty = str(cell), bool(pd.isna(cell))
        else:  # text: only an empty cell is empty (a literal 'nan' or 'None' is a bad timestamp)
            value, empty = text.iloc[pos], text.iloc[pos] == ""
        msg = "empty, but timestamp is required" if empty else (
            f"timestamp '{_short(value)}' is neither ISO 8601 nor Unix seconds")
        raise table.error(pos, col, msg)
    if window is not None:
        lo, hi = window
        _reject(table, ((out < lo) | (out > hi)).to_numpy(), col,
                lambda pos: f"timestamp {out.iloc[pos].isoformat()} is outside the plausible window "
                            f"{lo:%Y-%m-%d} .. {hi:%Y-%m-%d} (settings earliest_event / latest_event)")
    return out


def _duplicates(table: RawTable, ids: pd.Series, col: str) -> None:
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        pos = int(np.argmax(dup))
        first = int(np.argmax((ids == ids.iloc[pos]).to_numpy()))
        raise table.error(pos, col, f"{col} '{_short(ids.iloc[pos])}' is already on {table.unit} {int(table.lines[first])}")


def _extras(table: RawTable, known: tuple[str, ...]) -> tuple[list[str], pd.Series]:
    """Extra columns are kept, as a JSON object of strings per row."""
    extra = [c for c in table.frame.columns if c not in known]
    if not extra:
        return [], pd.Series([None] * len(table.frame), dtype=object)
    sub = table.frame[extra]
    # a missing cell is JSON null (pandas' where(..., None) left NaN here, which json.dumps writes as NaN)
    cells = sub.astype(str).to_numpy(dtype=object)
    missing = sub.isna().to_numpy()
    records = ({c: None if m else v for c, v, m in zip(extra, row, gone)} for row, gone in zip(cells, missing))
    return extra, pd.Series([json.dumps(r, ensure_ascii=False) for r in records], dtype=object)


def split_category(paths: pd.Series) -> pd.DataFrame:
    """`A > B > C` → normalised path, top level `A`, second level path `A > B`, depth."""
    paths = paths.fillna("").astype(str)
    # a catalog has few distinct paths: split each once, then map back to every row
    uniq = pd.Series(pd.unique(paths.to_numpy()), dtype=object)
    parts = uniq.map(lambda p: [x.strip() for x in p.split(">") if x.strip()])
    levels = pd.DataFrame(
        {
            "category": parts.map(lambda xs: " > ".join(xs) if xs else UNCATEGORISED),
            "cat_top": parts.map(lambda xs: xs[0] if xs else UNCATEGORISED),
            "cat_sub": parts.map(lambda xs: " > ".join(xs[:2]) if xs else UNCATEGORISED),
            "cat_depth": parts.map(len).astype("int32"),
        }
    )
    pos = pd.Index(uniq).get_indexer(paths.to_numpy())
    return levels.iloc[pos].reset_index(drop=True).set_axis(paths.index)


def validate_items(table: RawTable, settings: Settings) -> tuple[pd.DataFrame, list[str]]:
    """Clean items frame: item_id, title, category (normalised), levels, description, brand, price, attrs."""
    item_id = _text(table, "item_id", required=True, max_chars=settings.max_id_chars).str.strip()
    _duplicates(table, item_id, "item_id")
    title = _text(table, "title", required=False, max_chars=settings.max_title_chars)
    cats = split_category(_text(table, "category", required=False, max_chars=settings.max_category_chars))
    _reject(table, (cats["cat_depth"] > settings.max_category_levels).to_numpy(), "category",
            lambda pos: f"{int(cats['cat_depth'].iloc[pos])} category levels, more than the limit of "
                        f"{settings.max_category_levels}")
    description = _text(table, "description", required=False, max_chars=settings.max_description_chars)
    brand = _text(table, "brand", required=False, max_chars=settings.max_title_chars)
    price = _number(table, "price")
    if (price < 0).any():
        pos = int(np.argmax((price < 0).to_numpy()))
        raise table.error(pos, "price", f"negative price {price.iloc[pos]}")
    extra, attrs = _extras(table, ITEM_COLUMNS)
    frame = pd.DataFrame(
        {
            "item_id": item_id.to_numpy(),
            "title": title.to_numpy(),
            "category": cats["category"].to_numpy(),
            "cat_top": cats["cat_top"].to_numpy(),
            "cat_sub": cats["cat_sub"].to_numpy(),
            "cat_depth": cats["cat_depth"].to_numpy(),
            "description": description.to_numpy(),
            "brand": brand.to_numpy(),
            "price": price.to_numpy(),
            "attrs": attrs.to_numpy(),
        }
    )
    return frame, extra


def validate_events(table: RawTable, settings: Settings, report: IngestReport) -> pd.DataFrame:
    """Clean events frame: user_id, item_id, event_type (known types only), ts (UTC), value."""
    user_id = _text(table, "user_id", required=True, max_chars=settings.max_id_chars).str.strip()
    item_id = _text(table, "item_id", required=True, max_chars=settings.max_id_chars).str.strip()
    etype = _text(table, "event_type", required=True, max_chars=settings.max_id_chars).str.strip().str.lower()
    ts = parse_timestamps(table, window=settings.event_window())
    value = _number(table, "value")
    known = etype.isin(EVENT_TYPES).to_numpy()
    if not known.all():
        report.unknown_event_types = etype[~known].value_counts().astype(int).to_dict()
    extra = [c for c in table.frame.columns if c not in EVENT_COLUMNS]
    if extra:
        report.notes.append(f"events: extra columns ignored: {', '.join(extra)}")
    frame = pd.DataFrame(
        {"user_id": user_id.to_numpy(), "item_id": item_id.to_numpy(), "event_type": etype.to_numpy(),
         "ts": ts.array, "value": value.to_numpy()}
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    return frame[known].reset_index(drop=True)


def validate_users(table: RawTable, settings: Settings | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Clean users frame: user_id, profile_text, attrs (other columns as JSON)."""
    settings = settings or Settings()
    user_id = _text(table, "user_id", required=True, max_chars=settings.max_id_chars).str.strip()
    _duplicates(table, user_id, "user_id")
    text_col = next((c for c in PROFILE_ALIASES if c in table.frame.columns), None)
    profile = (_text(table, text_col, required=False, max_chars=settings.max_profile_chars) if text_col
               else pd.Series([""] * len(user_id)))
    extra, attrs = _extras(table, ("user_id", text_col or "profile_text"))
    frame = pd.DataFrame({"user_id": user_id.to_numpy(), "profile_text": profile.to_numpy(), "attrs": attrs.to_numpy()})
    return frame, extra
