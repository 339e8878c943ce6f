"""What every query of the store stands on: the connection, its lock, the read helpers and the one
transaction every write goes through. The query mixins (`store_catalog`, `store_events`, `store_runs`,
`store_gov`) build on `StoreBase`; `Store` (crossrec_core/store.py) opens the file and adds the schema."""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Self, Sequence

import duckdb
import pandas as pd

from .errors import CrossRecError


def utcnow() -> datetime:
    """Now in UTC, naive: the TIMESTAMP columns store UTC without a zone."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Execute and drain: DuckDB 2 refuses new work while a result is unfinished."""
    return con.execute(sql, params or []).fetchall()


# Every Store opened and not yet closed in this process (weak: a Store dropped unclosed leaves it, and
# DuckDB closes its connection when freed). What is here after a garbage collection is still referenced
# somewhere and still holds its file: `open_stores()` lets the tests' session check name it.
_OPEN: weakref.WeakSet[StoreBase] = weakref.WeakSet()


def open_stores() -> list[StoreBase]:
    """The Stores of this process that are open now."""
    return list(_OPEN)


class StoreBase:
    """A connection shared inside one process, serialised by a lock; `version` counts committed writes."""

    path: Path
    read_only: bool
    con: duckdb.DuckDBPyConnection
    _lock: threading.RLock
    version: int

    @property
    def artefact_dir(self) -> Path:
        """Where the fitted models of this database's runs live: beside the file, whatever the cwd."""
        return Path(str(self.path.absolute()) + ".artefacts")

    def database_id(self) -> str | None:
        """A random id written when the database was created (None: an older file opened read-only)."""
        return self._one("SELECT value FROM meta WHERE key = 'database_id'")

    def close(self) -> None:
        """Close the connection (again is fine)."""
        with self._lock:
            self.con.close()
        _OPEN.discard(self)

    def __enter__(self) -> Self:
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

    def _column(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        with self._lock:
            return [r[0] for r in self.con.execute(sql, params or []).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: an exception inside rolls every statement back. Every write goes through here;
        each commit bumps `version`."""
        if self.read_only:
            raise CrossRecError(f"database {self.path} is open read-only")
        with self._lock:
            execute(self.con, "BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                execute(self.con, "ROLLBACK")
                raise
            else:
                execute(self.con, "COMMIT")
                self.version += 1
