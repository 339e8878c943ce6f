"""Load input into the store: every table validated first, then one transaction (nothing half-loaded).

`Store.ingest_files / ingest_frames / ingest_tables` call these. Reading lives in `ingest_read`,
validation in `ingest_validate`; their public names are re-exported here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import Settings
from .errors import CrossRecError
from .ingest_read import (
    ALL_KNOWN, EVENT_COLUMNS, EVENT_REQUIRED, ITEM_COLUMNS, ITEM_REQUIRED, KNOWN, MEMORY_PER_UPLOAD_BYTE,
    PROFILE_ALIASES, REQUIRED, UNCATEGORISED, USER_REQUIRED, RawTable, read_bytes, read_table,
)
from .ingest_validate import (
    IngestReport, parse_timestamps, split_category, validate_events, validate_items, validate_users,
)
from .progress import Progress
from .store_base import execute, utcnow

if TYPE_CHECKING:
    from .store import Store

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
    the files in the load history (default: their paths)."""
    if items is None and events is None and users is None:
        raise CrossRecError("nothing to ingest: give --items, --events and/or --users")
    tables = {}
    for kind, path in (("items", items), ("users", users), ("events", events)):
        if path is not None:
            if progress:
                progress(0.05 + 0.25 * len(tables), f"reading {Path(path).name}")
            tables[kind] = read_table(path, kind, encoding=encoding)
    files = label or ", ".join(str(p) for p in (items, users, events) if p is not None)
    return ingest_tables(store, tables, settings=settings, progress=progress, files=files)


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
) -> IngestReport:
    """Validate the tables read, then load them in one transaction and record the load."""
    settings = settings or Settings()
    report = IngestReport()
    clean: dict[str, pd.DataFrame] = {}
    if "items" in tables:
        clean["items"], extra = validate_items(tables["items"], settings)
        report.items_in_file = len(clean["items"])
        if extra:
            report.extra_columns["items"] = extra
    if "users" in tables:
        clean["users"], extra = validate_users(tables["users"], settings)
        report.users_in_file = len(clean["users"])
        if extra:
            report.extra_columns["users"] = extra
    if "events" in tables:
        report.events_in_file = len(tables["events"].frame)
        clean["events"] = validate_events(tables["events"], settings, report)
    if progress:
        progress(0.7, "loading into the database")
    now = utcnow()
    with store.transaction() as con:
        if "items" in clean:
            con.register("new_items", clean["items"])
            existing = con.execute(
                "SELECT count(*) FROM new_items n JOIN items i USING (item_id)"
            ).fetchall()[0][0]
            changed = con.execute(
                """SELECT count(*) FROM new_items n JOIN items i USING (item_id)
                   WHERE i.title IS DISTINCT FROM n.title OR i.category IS DISTINCT FROM n.category
                      OR i.description IS DISTINCT FROM n.description OR i.brand IS DISTINCT FROM n.brand
                      OR i.price IS DISTINCT FROM n.price"""
            ).fetchall()[0][0]
            execute(con,
                """INSERT OR REPLACE INTO items
                   SELECT n.item_id, n.title, n.category, n.cat_top, n.cat_sub, n.cat_depth, n.description,
                          n.brand, n.price, n.attrs::JSON, coalesce(i.added_at, ?)
                   FROM new_items n LEFT JOIN items i USING (item_id)""",
                [now],
            )
            con.unregister("new_items")
            report.items_added = len(clean["items"]) - existing
            report.items_updated = changed
        if "users" in clean:
            con.register("new_users", clean["users"])
            existing = con.execute("SELECT count(*) FROM new_users JOIN users USING (user_id)").fetchall()[0][0]
            execute(con,
                """INSERT OR REPLACE INTO users
                   SELECT n.user_id, n.profile_text, n.attrs::JSON, coalesce(u.added_at, ?)
                   FROM new_users n LEFT JOIN users u USING (user_id)""",
                [now],
            )
            con.unregister("new_users")
            report.users_added = len(clean["users"]) - existing
        if "events" in clean:
            ev = clean["events"]
            # naive UTC, as the table stores it: casting a tz-aware column in SQL would use the
            # session's (the machine's) time zone and shift every timestamp off UTC
            ev = ev.assign(ts=ev["ts"].dt.tz_convert("UTC").dt.tz_localize(None))
            con.register("new_events", ev)
            unknown = con.execute(
                """SELECT count(*), list(DISTINCT item_id)[1:3] FROM new_events n
                   WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = n.item_id)"""
            ).fetchall()[0]
            if unknown[0]:
                report.unknown_items = int(unknown[0])
                report.unknown_item_examples = [f"'{x}'" for x in (unknown[1] or [])]
            before = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
            execute(con,
                """INSERT INTO events
                   SELECT DISTINCT n.user_id, n.item_id, n.event_type, n.ts::TIMESTAMP, n.value
                   FROM new_events n SEMI JOIN items i ON i.item_id = n.item_id
                   WHERE NOT EXISTS (
                       SELECT 1 FROM events e WHERE e.user_id = n.user_id AND e.item_id = n.item_id
                       AND e.event_type = n.event_type AND e.ts = n.ts::TIMESTAMP
                       AND e.value IS NOT DISTINCT FROM n.value)"""
            )
            after = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
            report.events_added = after - before
            distinct = con.execute(
                "SELECT count(*) FROM (SELECT DISTINCT * FROM new_events n SEMI JOIN items i USING (item_id))"
            ).fetchall()[0][0]
            report.events_repeated_in_file = len(ev) - report.unknown_items - distinct
            report.events_duplicate = distinct - report.events_added
            before_users = con.execute("SELECT count(*) FROM users").fetchall()[0][0]
            execute(con,
                """INSERT INTO users SELECT DISTINCT n.user_id, NULL, NULL, ?::TIMESTAMP FROM new_events n
                   SEMI JOIN items i ON i.item_id = n.item_id
                   WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = n.user_id)""",
                [now],
            )
            report.users_added += con.execute("SELECT count(*) FROM users").fetchall()[0][0] - before_users
            con.unregister("new_events")
        execute(con,
            "INSERT INTO ingest_log VALUES (?, ?, ?)", [now, files, json.dumps(report.to_dict(), default=str)]
        )
    if progress:
        progress(1.0, "loaded")
    return report
