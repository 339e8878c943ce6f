"""Load input into the store: every table validated first, then one transaction (nothing half-loaded).

`Store.ingest_files / ingest_frames / ingest_tables` call these. Reading lives in `ingest_read`,
validation in `ingest_validate`; their public names are re-exported here.
"""
from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import Settings
from .errors import CrossRecError
from .ingest_read import (
    ALL_KNOWN, EVENT_COLUMNS, EVENT_REQUIRED, ITEM_COLUMNS, ITEM_REQUIRED, KNOWN, MEMORY_PER_UPLOAD_BYTE,
    PROFILE_ALIASES, REQUIRED, UNCATEGORISED, USER_REQUIRED, RawTable, parquet_rows, read_bytes, read_table,
)
from .ingest_validate import (
    IngestReport, parse_timestamps, split_category, validate_events, validate_items, validate_users,
)
from .progress import Progress
from .ingest_stream import NotStreamable, Staged, stage_file
from .store_base import execute, utcnow
from .store_staging import stage_events, stage_items, stage_users, staging_session

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

__all__ = [  # the ingest's public names, wherever they are defined
    "ALL_KNOWN", "EVENT_COLUMNS", "EVENT_REQUIRED", "ITEM_COLUMNS", "ITEM_REQUIRED", "KNOWN", "MEMORY_PER_UPLOAD_BYTE",
    "PROFILE_ALIASES", "REQUIRED", "UNCATEGORISED", "USER_REQUIRED", "IngestReport", "RawTable", "ingest_files",
    "ingest_frames", "ingest_tables", "parse_timestamps", "read_bytes", "read_table", "split_category",
    "validate_events", "validate_items", "validate_users",
]


def ingest_files(
    store: Store,
    items: str | Path | None = None,
    events: str | Path | None = None,
    users: str | Path | None = None,
    *,
    encoding: str = "utf-8",
    settings: Settings | None = None,
    progress: Progress | None = None,
    label: str | None = None,
) -> IngestReport:
    """Validate every file first, then load them in one transaction (nothing half-loaded). `label` names
    the files in the load history (default: their paths). Files of `settings.ingest.stream_mb` or more stream
    through DuckDB staging tables (bounded memory); smaller ones are read into pandas. Both give the same
    tables and the same first error."""
    if items is None and events is None and users is None:
        raise CrossRecError("nothing to ingest: give --items, --events and/or --users")
    settings = settings or Settings()
    given = [(kind, path) for kind, path in (("items", items), ("users", users), ("events", events)) if path is not None]
    streams = {kind for kind, path in given if _streams(Path(path), settings)}
    files = label or ", ".join(str(p) for p in (items, users, events) if p is not None)
    session = staging_session(store, settings) if streams else nullcontext(None)
    with session as con:
        tables: dict[str, RawTable] = {}
        staged: dict[str, Staged] = {}
        for n, (kind, path) in enumerate(given):
            if progress:
                progress(0.05 + 0.25 * n, f"reading {Path(path).name}")
            if kind in streams:
                try:
                    staged[kind] = stage_file(con, Path(path), kind, encoding, f"crossrec_stage_{kind}",
                                               settings)
                    log.info("%s: streamed through DuckDB", Path(path).name)
                    continue
                except NotStreamable as why:  # a file only the in-memory path reads (see ingest_stream)
                    log.info("%s: read in memory (%s)", Path(path).name, why)
            tables[kind] = read_table(path, kind, encoding=encoding, settings=settings)
        return ingest_tables(store, tables, settings=settings, progress=progress, files=files, staged=staged)


def _streams(path: Path, settings: Settings) -> bool:
    """Whether a file takes the streaming path: a CSV or Parquet file of stream_ingest_mb or more, or a
    Parquet file of stream_ingest_rows or more (its footer says: a small zstd file can hold millions)."""
    suffix = path.suffix.lower()
    try:
        if not path.is_file() or suffix not in (".csv", ".tsv", ".txt", "", ".parquet", ".pq"):
            return False
        if path.stat().st_size >= settings.ingest.stream_mb * 2**20:
            return True
    except OSError:
        return False  # read_table words it
    return suffix in (".parquet", ".pq") and parquet_rows(path) >= settings.ingest.stream_rows


def ingest_frames(
    store: Store,
    items: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    source: str = "frames",
) -> IngestReport:
    """Load in-memory frames in the input contract through the same validation as files."""
    tables = {}
    for kind, frame in (("items", items), ("users", users), ("events", events)):
        if frame is not None:
            f = frame.reset_index(drop=True).copy()
            tables[kind] = RawTable(f"{source}:{kind}", f, np.arange(1, len(f) + 1), "row", typed=True)
    return ingest_tables(store, tables, settings=settings, progress=progress, files=source)


def ingest_tables(
    store: Store,
    tables: dict[str, RawTable],
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    files: str = "",
    staged: dict[str, Staged] | None = None,
) -> IngestReport:
    """Validate the tables read (in memory, or `staged` in DuckDB), then load them in one transaction and
    record the load."""
    settings = settings or Settings()
    staged = staged or {}
    report = IngestReport()
    clean: dict[str, pd.DataFrame | None] = {}  # None: staged, its clean table is in the database
    con = store.con
    for kind, validate, stage in (("items", validate_items, stage_items), ("users", validate_users, stage_users)):
        if kind in tables:
            clean[kind], extra = validate(tables[kind], settings)
            setattr(report, f"{kind}_in_file", len(clean[kind]))
        elif kind in staged:
            clean[kind] = None
            count, extra = stage(con, staged[kind], settings)
            setattr(report, f"{kind}_in_file", count)
        if kind in clean and extra:
            report.extra_columns[kind] = extra
    if "events" in tables:
        report.events_in_file = len(tables["events"].frame)
        ev = validate_events(tables["events"], settings, report)
        # naive UTC, as the table stores it: casting a tz-aware column in SQL would use the
        # session's (the machine's) time zone and shift every timestamp off UTC
        clean["events"] = ev.assign(ts=ev["ts"].dt.tz_convert("UTC").dt.tz_localize(None))
    elif "events" in staged:
        clean["events"] = None
        stage_events(con, staged["events"], settings, report)
    if progress:
        progress(0.7, "loading into the database")
    now = utcnow()
    registered = [f"new_{kind}" for kind, frame in clean.items() if frame is not None]
    try:
        with store.transaction() as con:
            for kind, frame in clean.items():
                if frame is not None:
                    con.register(f"new_{kind}", frame)
            if "items" in clean:
                existing, report.items_updated = store.load_new_items(con, now, _absent("items", tables, staged))
                report.items_added = report.items_in_file - existing
            if "users" in clean:
                report.users_added = store.load_new_users(con, now, _absent("users", tables, staged))
            if "events" in clean:
                store.load_new_events(con, now, report)
            execute(con, "INSERT INTO ingest_log VALUES (?, ?, ?)",
                    [now, files, json.dumps(report.to_dict(), default=str)])
    finally:  # after the commit or the rollback: in an aborted transaction DuckDB refuses even this
        for name in registered:
            store.con.unregister(name)
    if progress:
        progress(1.0, "loaded")
    return report


def _absent(kind: str, tables: dict[str, RawTable], staged: dict[str, Staged]) -> list[str]:
    """The optional columns of the store that a `kind` file did not have: a stored row keeps its value of
    those (a re-load of items without `price` must not blank every price; an empty cell is what clears one)."""
    columns = set(tables[kind].frame.columns) if kind in tables else set(staged[kind].columns)
    if kind == "users":
        return [] if columns & set(PROFILE_ALIASES) else ["profile_text"]
    return [c for c in ITEM_COLUMNS if c not in ITEM_REQUIRED and c not in columns]
