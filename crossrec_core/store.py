"""The one DuckDB file: its schema, opening it (who holds it), and `Store`, the object every part of
CrossRec queries it through.

Ownership: DuckDB lets one process open a file read-write *or* many processes open it read-only,
never both. CrossRec's rule: whoever writes (the CLI's ingest/encode/train, or the dashboard while
it runs) holds the file for its lifetime; every other process gets a `DatabaseLockedError` naming
the holder's PID. Inside one process, one `Store` is shared and a lock serialises its queries.

The queries live by concern in mixins: `store_catalog` (items, users, embeddings, projections),
`store_events` (events, stats, health, fingerprint), `store_runs` (runs, scenarios), `store_gov`
(rules, audit log, segments); loading files is `ingest`'s job (`Store.ingest_*` delegate to it).
"""
from __future__ import annotations

import re
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from . import ingest
from .errors import CrossRecError, DatabaseLockedError
from .paths import db_file, kind_of
from .store_base import _OPEN, execute
from .store_catalog import CatalogQueries
from .store_events import EventQueries
from .store_gov import GovernanceQueries
from .store_items import ItemQueries
from .store_runs import RunQueries


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


def _lock_holder(message: str) -> str:
    m = re.search(r"\(PID (\d+)\)", message)
    return f"PID {m.group(1)}" if m else "another process"


def what_file(path: Path) -> str | None:
    """None when `path` is a DuckDB database file (or does not exist); else what it is, in a few words.

    DuckDB opens an existing CSV, Parquet or JSON file as an empty in-memory database, so a load into
    `--db x.csv` would report success and keep nothing: such a path is refused before connecting, as is
    anything that is not a regular file (a FIFO would hang the open), without opening it."""
    if not path.exists():
        return None
    special = kind_of(path)
    if special is not None:
        return special
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
    path = db_file(path)
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


@contextmanager
def holding(path: str | Path, hold: bool = True) -> Iterator[None]:
    """Hold the existing database `path` as its one writer for the block, e.g. a rebuild that replaces it
    (`demo --force`): a file another process holds is refused at once, before minutes of work, and no other
    process can open it until the block ends, so it is never replaced under a holder. Nothing to hold when
    `hold` is false or there is no file yet."""
    con = connect(path) if hold and db_file(path).exists() else None
    try:
        yield
    finally:
        if con is not None:
            con.close()


def compact(path: str | Path) -> tuple[int, int]:
    """Rewrite a database file at the size its data needs (DuckDB never shrinks a file, e.g. after a load
    that failed on a full disk); (bytes before, bytes after). Holds the file as its one writer meanwhile.

    The copy is written in a private new folder beside the file (random name, created exclusively: never a
    file of the user's) and renamed over the real file (a symlinked --db stays a link); a failure (a full disk)
    removes that folder with everything DuckDB put in it and says so in one line about the database."""
    import shutil
    import tempfile

    path = db_file(path)
    if not path.exists():
        raise CrossRecError(f"no database at {path}")
    before = path.stat().st_size
    con = connect(path)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.compacting-", dir=path.parent))
    tmp = work / path.name
    try:
        con.execute("CHECKPOINT")
        source = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS crossrec_compacted")
        con.execute(f'COPY FROM DATABASE "{source}" TO crossrec_compacted')
        con.execute("DETACH crossrec_compacted")
        tmp.replace(path)  # still holding the old file: nobody opens it half-replaced
    except duckdb.Error as exc:
        raise CrossRecError(_compact_failed(path, exc)) from None
    finally:
        try:
            con.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return before, path.stat().st_size


def _compact_failed(path: Path, exc: BaseException) -> str:
    """One line for a failed compaction, about the database (DuckDB's message names the copy's alias)."""
    from .errors import environment_error

    reason = environment_error(exc)
    if reason is not None and reason.startswith("no space left"):
        return (f"no space left on the device ({path.parent}): compacting needs room for a second copy of "
                f"{path.name}; free some space and run it again (the database is as it was)")
    first = (str(exc).splitlines() or [type(exc).__name__])[0].replace("crossrec_compacted", "the copy")
    return f"cannot compact {path}: {reason or first} (the database is as it was)"


class Store(CatalogQueries, EventQueries, ItemQueries, RunQueries, GovernanceQueries):
    """A DuckDB file with CrossRec's tables. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = True):
        self.path = db_file(path)  # `~` expanded and a link followed: the runs' folder is the real file's
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
        try:
            self._prepare()
        except BaseException:
            self.con.close()  # a file refused here is not left held by this process
            raise
        _OPEN.add(self)

    def _prepare(self) -> None:
        """Read-write: create the tables (once) and the database's identity; read-only: check it is ours."""
        if not self.read_only:
            self._refuse_foreign()
            execute(self.con, _SCHEMA)
            execute(self.con, "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            # the database's identity: fitted models record it and are refused by any other database
            execute(self.con, "INSERT OR IGNORE INTO meta VALUES ('database_id', ?)", [uuid.uuid4().hex])
        elif "items" not in self._column("SELECT table_name FROM information_schema.tables"):
            raise CrossRecError(f"{self.path} is not a CrossRec database (no items table)")

    def _refuse_foreign(self) -> None:
        """A DuckDB file that holds tables but not CrossRec's (no `meta`, no `items`) belongs to something
        else: CrossRec adds its tables only to an empty file or its own, never beside another program's."""
        tables = self._column("SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                              "current_database() ORDER BY table_name")
        if tables and not {"meta", "items"} & set(tables):
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5:,} more" if len(tables) > 5 else "")
            raise CrossRecError(f"{self.path} is a DuckDB database of something else (tables: {shown}), not "
                                "CrossRec's: give --db a new path or a CrossRec database")

    # ---- loading: the ingest module's functions, kept as methods where callers look for them ----------

    ingest_files = ingest.ingest_files
    ingest_frames = ingest.ingest_frames
    ingest_tables = ingest.ingest_tables
