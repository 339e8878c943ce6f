"""The one DuckDB file: schema, validated transactional ingest, and every query CrossRec makes.

Ownership: DuckDB lets one process open a file read-write *or* many processes open it read-only,
never both. CrossRec's rule: whoever writes (the CLI's ingest/encode/train, or the dashboard while
it runs) holds the file for its lifetime; every other process gets a `DatabaseLockedError` naming
the holder's PID. Inside one process, one `Store` is shared and a lock serialises its queries.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd

from .config import EVENT_TYPES, Settings
from .errors import CrossRecError, DatabaseLockedError
from .store_gov import GovernanceQueries
from .ingest import (
    IngestReport,
    RawTable,
    read_table,
    validate_events,
    validate_items,
    validate_users,
)
from .progress import Progress

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS items (
    item_id VARCHAR PRIMARY KEY, title VARCHAR NOT NULL, category VARCHAR NOT NULL,
    cat_top VARCHAR NOT NULL, cat_sub VARCHAR NOT NULL, cat_depth INTEGER NOT NULL,
    description VARCHAR, brand VARCHAR, price DOUBLE, attrs JSON, added_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user_id VARCHAR PRIMARY KEY, profile_text VARCHAR, attrs JSON, added_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, event_type VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL, value DOUBLE);
CREATE TABLE IF NOT EXISTS embeddings (
    model_id VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, vector FLOAT[] NOT NULL,
    PRIMARY KEY (model_id, text_hash));
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, created_at TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL, fingerprint VARCHAR, settings JSON, weights JSON, metrics JSON,
    duration_s DOUBLE, artefact_path VARCHAR, serving BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS scenarios (
    scenario_id INTEGER PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, created_at TIMESTAMP NOT NULL,
    spec JSON NOT NULL, result JSON);
CREATE TABLE IF NOT EXISTS projections (
    fingerprint VARCHAR NOT NULL, item_id VARCHAR NOT NULL, x FLOAT NOT NULL, y FLOAT NOT NULL,
    PRIMARY KEY (fingerprint, item_id));
CREATE TABLE IF NOT EXISTS ingest_log (
    loaded_at TIMESTAMP NOT NULL, files VARCHAR, report JSON);
CREATE TABLE IF NOT EXISTS rule_versions (
    version INTEGER PRIMARY KEY, created_at TIMESTAMP NOT NULL, rules JSON NOT NULL, note VARCHAR);
CREATE TABLE IF NOT EXISTS audit_log (
    change_id INTEGER PRIMARY KEY, changed_at TIMESTAMP NOT NULL, what VARCHAR NOT NULL, before_state JSON,
    after_state JSON,
    note VARCHAR, undoable BOOLEAN NOT NULL, undone BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS segments (
    name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, spec JSON NOT NULL);
CREATE TABLE IF NOT EXISTS segment_users (segment VARCHAR NOT NULL, user_id VARCHAR NOT NULL);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS note VARCHAR;
"""


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _x(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Execute and drain: DuckDB 2 refuses new work while a result is unfinished."""
    return con.execute(sql, params or []).fetchall()


def _lock_holder(message: str) -> str:
    m = re.search(r"\(PID (\d+)\)", message)
    return f"PID {m.group(1)}" if m else "another process"


def what_file(path: Path) -> str | None:
    """None when `path` is a DuckDB database file (or does not exist); else what it is, in a few words.

    DuckDB opens an existing CSV, Parquet or JSON file as an empty in-memory database, so a load into
    `--db x.csv` would report success and keep nothing: such a path is refused before connecting."""
    if not path.exists():
        return None
    if path.is_dir():
        return "a folder"
    with open(path, "rb") as f:
        head = f.read(64)
    if head[8:12] == b"DUCK":
        return None
    if not head:
        return "an empty file"
    if head[:4] == b"PAR1":
        return "a Parquet file"
    if head.startswith(b"SQLite format 3"):
        return "an SQLite database"
    if head[:2] == b"PK":
        return "a zip file (an Excel workbook?)"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"{", b"["):
        return "a JSON file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a file that is not a DuckDB database"
    return "a text file (CSV?)"


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to a database file, or one line saying why not (not DuckDB, held, unreadable)."""
    what = what_file(path)
    if what is not None:
        raise CrossRecError(f"{path} is {what}, not a DuckDB database: give --db a DuckDB file or a new path")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        msg = str(exc)
        if "lock" in msg.lower():
            raise DatabaseLockedError(
                f"database {path} is held by {_lock_holder(msg)} (a running dashboard or another "
                f"crossrec command); stop it or use another --db"
            ) from None
        raise CrossRecError(f"cannot open database {path}: {msg.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise CrossRecError(f"{path} is not a CrossRec database ({str(exc).splitlines()[0]})") from None


def compact(path: Path) -> tuple[int, int]:
    """Rewrite a database file at the size its data needs (DuckDB never shrinks a file, e.g. after a load
    that failed on a full disk); (bytes before, bytes after). Holds the file as its one writer meanwhile."""
    path = Path(path)
    if not path.exists():
        raise CrossRecError(f"no database at {path}")
    before = path.stat().st_size
    tmp = path.with_name(path.name + ".compacting")
    tmp.unlink(missing_ok=True)
    con = connect(path)
    try:
        con.execute("CHECKPOINT")
        source = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS crossrec_compacted")
        con.execute(f'COPY FROM DATABASE "{source}" TO crossrec_compacted')
        con.execute("DETACH crossrec_compacted")
        tmp.replace(path)  # still holding the old file: nobody opens it half-replaced
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    return before, path.stat().st_size


class Store(GovernanceQueries):
    """A DuckDB file with CrossRec's tables. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = True):
        self.path = Path(path)
        self.read_only = read_only
        if not self.path.exists():
            if read_only or not create:
                raise CrossRecError(f"no database at {self.path}: run `crossrec demo` or `crossrec ingest` first")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = connect(self.path, read_only=read_only)
        self._lock = threading.RLock()
        # Committed writes through this Store so far. The process that writes holds the file for its
        # lifetime, so this counter is the whole story of what changed: the dashboard keys its caches on it.
        self.version = 0
        if not read_only:
            self.con.execute(_SCHEMA)
            self.con.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            # the database's identity: fitted models record it and are refused by any other database
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('database_id', ?)", [uuid.uuid4().hex])
        else:
            tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "items" not in tables:
                self.con.close()
                raise CrossRecError(f"{self.path} is not a CrossRec database (no items table)")

    # ---- plumbing ---------------------------------------------------------------------------

    @property
    def artefact_dir(self) -> Path:
        """Where the fitted models of this database's runs live: beside the file, whatever the cwd."""
        return Path(str(self.path.absolute()) + ".artefacts")

    def database_id(self) -> str | None:
        """A random id written when the database was created (None: an older file opened read-only)."""
        return self._one("SELECT value FROM meta WHERE key = 'database_id'")

    def close(self) -> None:
        with self._lock:
            self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            return self.con.execute(sql, params or []).df()

    def _one(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self._lock:
            rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: an exception inside rolls every statement back. Every write goes through here;
        each commit bumps `version`."""
        if self.read_only:
            raise CrossRecError(f"database {self.path} is open read-only")
        with self._lock:
            _x(self.con, "BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                _x(self.con, "ROLLBACK")
                raise
            else:
                _x(self.con, "COMMIT")
                self.version += 1

    # ---- ingest -----------------------------------------------------------------------------

    def ingest_files(
        self,
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
        return self.ingest_tables(tables, settings=settings, progress=progress, files=files)

    def ingest_frames(
        self,
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
        return self.ingest_tables(tables, settings=settings, progress=progress, files=source)

    def ingest_tables(
        self,
        tables: dict[str, RawTable],
        *,
        settings: Settings | None = None,
        progress: Progress | None = None,
        files: str = "",
    ) -> IngestReport:
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
        now = _now()
        with self.transaction() as con:
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
                _x(con, 
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
                _x(con, 
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
                _x(con, 
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
                _x(con, 
                    """INSERT INTO users SELECT DISTINCT n.user_id, NULL, NULL, ?::TIMESTAMP FROM new_events n
                       SEMI JOIN items i ON i.item_id = n.item_id
                       WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = n.user_id)""",
                    [now],
                )
                report.users_added += con.execute("SELECT count(*) FROM users").fetchall()[0][0] - before_users
                con.unregister("new_events")
            _x(con, 
                "INSERT INTO ingest_log VALUES (?, ?, ?)", [now, files, json.dumps(report.to_dict(), default=str)]
            )
        if progress:
            progress(1.0, "loaded")
        return report

    # ---- catalog and behaviour -------------------------------------------------------------

    @staticmethod
    def _event_filter(before: str | None, after: str | None, user: str | None, item: str | None
                      ) -> tuple[str, list[Any]]:
        """SQL condition and parameters for events before/after a time (UTC) and/or of a user/item."""
        where, params = [], []
        for flag, value, op in (("--before", before, "<"), ("--after", after, ">")):
            if value is None:
                continue
            try:
                t = pd.Timestamp(value)
            except (ValueError, TypeError):
                t = pd.NaT
            if pd.isna(t):
                raise CrossRecError(f"{flag} '{value}' is not a date or time (ISO 8601, e.g. 2024-01-31)")
            where.append(f"ts {op} ?")
            params.append((t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t).to_pydatetime())
        for col, value in (("user_id", user), ("item_id", item)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if not where:
            raise CrossRecError("give at least one of --before, --after, --user, --item: refusing to remove every event")
        return " AND ".join(where), params

    def count_events(self, *, before: str | None = None, after: str | None = None, user: str | None = None,
                     item: str | None = None) -> int:
        """How many events `delete_events` with the same filters would remove."""
        where, params = self._event_filter(before, after, user, item)
        return int(self._one(f"SELECT count(*) FROM events WHERE {where}", params))

    def delete_events(self, *, before: str | None = None, after: str | None = None, user: str | None = None,
                      item: str | None = None) -> int:
        """Remove the events matching every given filter in one transaction (recorded in the load history);
        the number removed. No filter at all is refused."""
        where, params = self._event_filter(before, after, user, item)
        described = ", ".join(f"{k} {v}" for k, v in (("before", before), ("after", after), ("user", user),
                                                         ("item", item)) if v is not None)
        with self.transaction() as con:
            n = con.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchall()[0][0]
            _x(con, f"DELETE FROM events WHERE {where}", params)
            _x(con, "INSERT INTO ingest_log VALUES (?, ?, ?)",
               [_now(), f"events removed ({described})", json.dumps({"notes": [f"removed {n:,} events ({described})"]})])
        return int(n)

    def items(self, columns: str = "*") -> pd.DataFrame:
        """The whole catalog, ordered by item_id (the engine's item index)."""
        return self._df(f"SELECT {columns} FROM items ORDER BY item_id")

    def item(self, item_id: str) -> dict | None:
        df = self._df("SELECT * FROM items WHERE item_id = ?", [item_id])
        return None if df.empty else df.iloc[0].to_dict()

    def items_by_id(self, item_ids: Sequence[str]) -> pd.DataFrame:
        ids = pd.DataFrame({"item_id": list(item_ids)})
        with self._lock:
            self.con.register("wanted_items", ids)
            try:
                return self.con.execute(
                    "SELECT i.* FROM wanted_items w JOIN items i USING (item_id)"
                ).df()
            finally:
                self.con.unregister("wanted_items")

    def search_items(self, text: str, limit: int = 50) -> pd.DataFrame:
        """Items whose id, title or brand contains `text` (case-insensitive)."""
        like = f"%{text.strip()}%"
        return self._df(
            """SELECT item_id, title, category, brand, price FROM items
               WHERE item_id ILIKE ? OR title ILIKE ? OR brand ILIKE ? ORDER BY title LIMIT ?""",
            [like, like, like, limit],
        )

    def events(
        self,
        *,
        before: datetime | pd.Timestamp | None = None,
        since: datetime | pd.Timestamp | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Events (user_id, item_id, event_type, ts, value) in a time window, oldest first."""
        where, params = [], []
        if before is not None:
            where.append("ts < ?")
            params.append(pd.Timestamp(before).tz_localize(None) if pd.Timestamp(before).tzinfo else before)
        if since is not None:
            where.append("ts >= ?")
            params.append(pd.Timestamp(since).tz_localize(None) if pd.Timestamp(since).tzinfo else since)
        sql = "SELECT user_id, item_id, event_type, ts, value FROM events"
        if user_ids is not None and len(user_ids) == 1:  # the serving path: one user, an index-free filter
            where.append("user_id = ?")
            params.append(user_ids[0])
            return self._df(sql + " WHERE " + " AND ".join(where) + " ORDER BY ts, item_id", params)
        if user_ids is not None:
            with self._lock:
                self.con.register("wanted_users", pd.DataFrame({"user_id": list(user_ids)}))
                try:
                    sql += " SEMI JOIN wanted_users w USING (user_id)"
                    if where:
                        sql += " WHERE " + " AND ".join(where)
                    return self.con.execute(sql + " ORDER BY ts, user_id, item_id", params).df()
                finally:
                    self.con.unregister("wanted_users")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._df(sql + " ORDER BY ts, user_id, item_id", params)

    def user_events(self, user_id: str) -> pd.DataFrame:
        """One user's history with item details, newest first."""
        return self._df(
            """SELECT e.ts, e.event_type, e.item_id, i.title, i.category, i.cat_top, i.brand, i.price, e.value
               FROM events e JOIN items i USING (item_id) WHERE e.user_id = ? ORDER BY e.ts DESC""",
            [user_id],
        )

    def has_user(self, user_id: str) -> bool:
        return bool(self._one("SELECT count(*) FROM users WHERE user_id = ?", [user_id]))

    def user(self, user_id: str) -> dict | None:
        df = self._df("SELECT * FROM users WHERE user_id = ?", [user_id])
        return None if df.empty else df.iloc[0].to_dict()

    def profile_texts(self) -> pd.DataFrame:
        """Users with non-empty profile text."""
        return self._df(
            "SELECT user_id, profile_text FROM users WHERE coalesce(trim(profile_text), '') <> '' ORDER BY user_id"
        )

    def _column(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        with self._lock:
            return [r[0] for r in self.con.execute(sql, params or []).fetchall()]

    def user_ids(self) -> list[str]:
        return self._column("SELECT user_id FROM users ORDER BY user_id")

    def user_summary(self) -> pd.DataFrame:
        """Per user: events, purchases, distinct top categories, first/last event, has profile text."""
        return self._df(
            """SELECT u.user_id,
                      count(e.item_id) AS events,
                      count(e.item_id) FILTER (WHERE e.event_type = 'purchase') AS purchases,
                      count(DISTINCT i.cat_top) AS top_categories,
                      min(e.ts) AS first_event, max(e.ts) AS last_event,
                      coalesce(trim(u.profile_text), '') <> '' AS has_profile_text
               FROM users u LEFT JOIN events e USING (user_id) LEFT JOIN items i USING (item_id)
               GROUP BY u.user_id, u.profile_text ORDER BY u.user_id"""
        )

    def users_in_category(self, category: str, event_types: Sequence[str] = ("purchase",)) -> list[str]:
        """Users with an event of `event_types` in a category (top level, level-2 path or full path)."""
        types = list(event_types)
        rows = self._df(
            """SELECT DISTINCT e.user_id FROM events e JOIN items i USING (item_id)
               WHERE (i.cat_top = ? OR i.cat_sub = ? OR i.category = ?) AND list_contains(?, e.event_type)
               ORDER BY e.user_id""",
            [category, category, category, types],
        )
        return rows["user_id"].tolist()

    def categories(self) -> pd.DataFrame:
        """Every category path with its levels, item count and event count."""
        return self._df(
            """SELECT i.category, i.cat_top, i.cat_sub, count(DISTINCT i.item_id) AS items,
                      count(e.item_id) AS events
               FROM items i LEFT JOIN events e USING (item_id)
               GROUP BY i.category, i.cat_top, i.cat_sub ORDER BY i.category"""
        )

    def has_category(self, category: str) -> bool:
        return bool(
            self._one(
                "SELECT count(*) FROM items WHERE cat_top = ? OR cat_sub = ? OR category = ?",
                [category, category, category],
            )
        )

    def time_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        with self._lock:
            lo, hi = self.con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]
        return (pd.Timestamp(lo) if lo else None, pd.Timestamp(hi) if hi else None)

    def event_type_counts(self) -> dict[str, int]:
        df = self._df("SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC")
        return {r.event_type: int(r.n) for r in df.itertuples()}

    def funnel(self) -> pd.DataFrame:
        """Distinct users and (user, item) pairs at each event type, in funnel order."""
        df = self._df(
            """SELECT event_type, count(DISTINCT user_id) AS users,
                      count(DISTINCT (user_id, item_id)) AS user_items, count(*) AS events
               FROM events GROUP BY 1"""
        )
        order = {t: i for i, t in enumerate(EVENT_TYPES)}
        return df.sort_values("event_type", key=lambda s: s.map(order)).reset_index(drop=True)

    def stats(self) -> dict[str, Any]:
        """Counts in the shape of `crossrec stats --json` (DESIGN.md)."""
        with self._lock:
            items, users, events = self.con.execute(
                "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM users), (SELECT count(*) FROM events)"
            ).fetchall()[0]
            tops, cats = self.con.execute(
                "SELECT count(DISTINCT cat_top), count(DISTINCT category) FROM items"
            ).fetchall()[0]
        lo, hi = self.time_range()
        iso = lambda t: None if t is None else t.tz_localize("UTC").isoformat().replace("+00:00", "Z")  # noqa: E731
        return {
            "items": int(items),
            "users": int(users),
            "events": int(events),
            "top_level_categories": int(tops),
            "categories": int(cats),
            "event_types": self.event_type_counts(),
            "first_event": iso(lo),
            "last_event": iso(hi),
        }

    def health(self) -> dict[str, Any]:
        """Data-health facts for the Overview page."""
        with self._lock:
            no_text = self.con.execute(
                "SELECT count(*) FROM items WHERE coalesce(trim(title), '') = ''"
            ).fetchall()[0][0]
            no_desc = self.con.execute(
                "SELECT count(*) FROM items WHERE coalesce(trim(description), '') = ''"
            ).fetchall()[0][0]
            uncategorised = self.con.execute(
                "SELECT count(*) FROM items WHERE cat_top = 'Uncategorised'"
            ).fetchall()[0][0]
            no_events = self.con.execute(
                "SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.item_id = i.item_id)"
            ).fetchall()[0][0]
            users_no_events = self.con.execute(
                "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.user_id)"
            ).fetchall()[0][0]
            log = self.con.execute("SELECT loaded_at, files, report FROM ingest_log ORDER BY loaded_at").fetchall()
        rejected_items = rejected_types = 0
        for _, _, rep in log:
            r = json.loads(rep)
            rejected_items += int(r.get("unknown_items", 0))
            rejected_types += sum(int(v) for v in r.get("unknown_event_types", {}).values())
        return {
            "items_without_title": int(no_text),
            "items_without_description": int(no_desc),
            "items_uncategorised": int(uncategorised),
            "items_without_events": int(no_events),
            "users_without_events": int(users_no_events),
            "events_rejected_unknown_item": rejected_items,
            "events_rejected_unknown_type": rejected_types,
            "loads": len(log),
        }

    def ingest_log(self) -> pd.DataFrame:
        return self._df("SELECT loaded_at, files, report FROM ingest_log ORDER BY loaded_at DESC")

    def fingerprint(self) -> str:
        """Changes whenever items or events change: keys cached models and projections."""
        with self._lock:
            row = self.con.execute(
                """SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM events),
                          (SELECT max(ts) FROM events), (SELECT max(added_at) FROM items),
                          (SELECT bit_xor(hash(item_id, title, category, description, brand)) FROM items),
                          (SELECT bit_xor(hash(user_id, item_id, event_type, ts)) FROM events)"""
            ).fetchall()[0]
        return hashlib.sha1(repr(row).encode()).hexdigest()[:16]

    def catalog_fingerprint(self) -> str:
        """Changes whenever the items (their ids or text) change, not with events: keys the item map."""
        row = self._one("SELECT count(*)::VARCHAR || ':' || coalesce(bit_xor(hash(item_id, title, category, "
                        "description, brand))::VARCHAR, '') FROM items")
        return hashlib.sha1(str(row).encode()).hexdigest()[:16]

    # ---- embeddings -------------------------------------------------------------------------

    def embeddings(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of `model_id` for the given text hashes (missing ones are absent)."""
        wanted = pd.DataFrame({"text_hash": list(dict.fromkeys(text_hashes))})
        with self._lock:
            self.con.register("wanted_hashes", wanted)
            try:
                rows = self.con.execute(
                    """SELECT e.text_hash, e.vector FROM embeddings e SEMI JOIN wanted_hashes w USING (text_hash)
                       WHERE e.model_id = ?""",
                    [model_id],
                ).fetchnumpy()
            finally:
                self.con.unregister("wanted_hashes")
        return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["text_hash"], rows["vector"])}

    def put_embeddings(self, model_id: str, text_hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (one row per text hash); existing ones are replaced."""
        if len(text_hashes) == 0:
            return
        frame = pd.DataFrame(
            {"model_id": model_id, "text_hash": list(text_hashes), "vector": list(np.asarray(vectors, np.float32))}
        )
        with self.transaction() as con:
            con.register("new_vectors", frame)
            _x(con, "INSERT OR REPLACE INTO embeddings SELECT model_id, text_hash, vector FROM new_vectors")
            con.unregister("new_vectors")

    def embedding_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._one("SELECT count(*) FROM embeddings"))
        return int(self._one("SELECT count(*) FROM embeddings WHERE model_id = ?", [model_id]))

    def embedding_models(self) -> list[str]:
        return self._column("SELECT DISTINCT model_id FROM embeddings ORDER BY 1")

    # ---- runs -------------------------------------------------------------------------------

    def add_run(
        self,
        *,
        name: str,
        kind: str,
        fingerprint: str,
        settings: dict,
        weights: dict,
        metrics: dict,
        duration_s: float,
        artefact_path: str | None,
        serve: bool = True,
    ) -> int:
        """Record a finished run in one transaction; with `serve` it becomes the serving run."""
        with self.transaction() as con:
            if con.execute("SELECT count(*) FROM runs WHERE name = ?", [name]).fetchall()[0][0]:
                raise CrossRecError(f"a run named '{name}' already exists; choose another --name")
            run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()[0][0]
            if serve:
                _x(con, "UPDATE runs SET serving = FALSE WHERE serving")
            _x(con, 
                "INSERT INTO runs (run_id, name, created_at, kind, fingerprint, settings, weights, metrics, "
                "duration_s, artefact_path, serving) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, name, _now(), kind, fingerprint, json.dumps(settings, default=str),
                 json.dumps(weights), json.dumps(metrics, default=float), duration_s, artefact_path, serve],
            )
        return int(run_id)

    def runs(self) -> pd.DataFrame:
        """Every run, newest first; JSON columns parsed to dicts."""
        df = self._df("SELECT * FROM runs ORDER BY run_id DESC")
        for col in ("settings", "weights", "metrics"):
            df[col] = df[col].map(lambda s: json.loads(s) if isinstance(s, str) else (s or {}))
        return df

    def run(self, name: str | None = None) -> dict | None:
        """A run by name, or the serving run when `name` is None."""
        df = self.runs()
        if df.empty:
            return None
        row = df[df["name"] == name] if name is not None else df[df["serving"]]
        return None if row.empty else row.iloc[0].to_dict()

    def set_serving(self, name: str) -> None:
        """Make run `name` the serving (live) run, with its audit-log row (so `undo` reverts it)."""
        self.set_live_run(name, f"made run '{name}' live", require_model=False)

    def run_names(self) -> list[str]:
        return self._column("SELECT name FROM runs ORDER BY run_id")

    # ---- scenarios --------------------------------------------------------------------------

    def save_scenario(self, name: str, spec: dict, result: dict | None = None) -> int:
        with self.transaction() as con:
            _x(con, "DELETE FROM scenarios WHERE name = ?", [name])
            sid = con.execute("SELECT coalesce(max(scenario_id), 0) + 1 FROM scenarios").fetchall()[0][0]
            _x(con, 
                "INSERT INTO scenarios VALUES (?, ?, ?, ?, ?)",
                [sid, name, _now(), json.dumps(spec), json.dumps(result, default=float) if result else None],
            )
        return int(sid)

    def scenarios(self) -> pd.DataFrame:
        df = self._df("SELECT * FROM scenarios ORDER BY created_at DESC")
        for col in ("spec", "result"):
            df[col] = df[col].map(lambda s: json.loads(s) if isinstance(s, str) else None)  # NULL came back as NaN
        return df

    def delete_scenario(self, name: str) -> None:
        with self.transaction() as con:
            _x(con, "DELETE FROM scenarios WHERE name = ?", [name])

    # ---- projections ------------------------------------------------------------------------

    def projection(self, fingerprint: str) -> pd.DataFrame:
        return self._df("SELECT item_id, x, y FROM projections WHERE fingerprint = ? ORDER BY item_id", [fingerprint])

    def put_projection(self, fingerprint: str, frame: pd.DataFrame) -> None:
        with self.transaction() as con:
            _x(con, "DELETE FROM projections WHERE fingerprint = ?", [fingerprint])
            con.register("new_xy", frame[["item_id", "x", "y"]])
            _x(con, "INSERT INTO projections SELECT ?, item_id, x, y FROM new_xy", [fingerprint])
            con.unregister("new_xy")
