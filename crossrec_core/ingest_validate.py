"""Validate tables read by `ingest_read` into clean frames in the store's shape.

Every problem is reported as `file line N, column C: what is wrong`, the first one found. Rows that are
fine but not loadable (unknown event types, unknown items) are counted in the `IngestReport` instead of
failing the whole load.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .config import EVENT_TYPES, Settings
from .ingest_read import EVENT_COLUMNS, ITEM_COLUMNS, PROFILE_ALIASES, UNCATEGORISED, RawTable

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
            raise table.column_error(col, "holds numbers with decimals, expected ids (text or integers)")
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
        raise table.column_error(col, "has type bool, expected a number")
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
    if table.typed and isinstance(s.dtype, pd.DatetimeTZDtype):  # Parquet's own times: only the checks below
        out, text = s.dt.tz_convert("UTC"), pd.Series([""] * len(s), dtype=object)
    else:
        out, text = _parse_times(table, s, col)
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
    return out.dt.as_unit("us")  # inside the window (years 1678-2261 fit microseconds and nanoseconds alike)


def _parse_times(table: RawTable, s: pd.Series, col: str) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 text or Unix seconds (text or numbers) → UTC times (NaT where a cell is neither) and the
    cells as stripped text ('' for a typed column)."""
    if table.typed and pd.api.types.is_bool_dtype(s):  # True would become 1970-01-01 00:00:01
        raise table.column_error(col, "has type bool, expected ISO 8601 text, Unix seconds or a timestamp")
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
        endless = np.isinf(secs.to_numpy())
        if endless.any():  # 'inf' parses as a number, but no time is infinitely far
            pos = int(np.flatnonzero(is_num)[np.argmax(endless)])
            shown = text.iloc[pos] or str(numeric.iloc[pos])
            raise table.error(pos, col, f"timestamp '{_short(shown)}' is not a time (neither ISO 8601 nor Unix seconds)")
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
    return out, text


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
    item_id = _text(table, "item_id", required=True, max_chars=settings.ingest.max_id_chars).str.strip()
    _duplicates(table, item_id, "item_id")
    title = _text(table, "title", required=False, max_chars=settings.ingest.max_title_chars)
    cats = split_category(_text(table, "category", required=False, max_chars=settings.ingest.max_category_chars))
    _reject(table, (cats["cat_depth"] > settings.ingest.max_category_levels).to_numpy(), "category",
            lambda pos: f"{int(cats['cat_depth'].iloc[pos])} category levels, more than the limit of "
                        f"{settings.ingest.max_category_levels}")
    description = _text(table, "description", required=False, max_chars=settings.ingest.max_description_chars)
    brand = _text(table, "brand", required=False, max_chars=settings.ingest.max_title_chars)
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
    user_id = _text(table, "user_id", required=True, max_chars=settings.ingest.max_id_chars).str.strip()
    item_id = _text(table, "item_id", required=True, max_chars=settings.ingest.max_id_chars).str.strip()
    etype = _text(table, "event_type", required=True, max_chars=settings.ingest.max_id_chars).str.strip().str.lower()
    ts = parse_timestamps(table, window=settings.ingest.event_window())
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
    user_id = _text(table, "user_id", required=True, max_chars=settings.ingest.max_id_chars).str.strip()
    _duplicates(table, user_id, "user_id")
    text_col = next((c for c in PROFILE_ALIASES if c in table.frame.columns), None)
    profile = (_text(table, text_col, required=False, max_chars=settings.ingest.max_profile_chars) if text_col
               else pd.Series([""] * len(user_id)))
    extra, attrs = _extras(table, ("user_id", text_col or "profile_text"))
    frame = pd.DataFrame({"user_id": user_id.to_numpy(), "profile_text": profile.to_numpy(), "attrs": attrs.to_numpy()})
    return frame, extra
