"""Errors a user can act on: one line that says what is wrong and where."""
from __future__ import annotations

import re


# a message is cut here (a 1M-column header once made an 8.9 MB line); a cell quoted in one at CELL_CHARS
MESSAGE_CHARS = 2_000
CELL_CHARS = 300


def clip(text: str, limit: int = CELL_CHARS) -> str:
    """`text` cut to at most `limit` characters, the cut marked with "…"."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CrossRecError(Exception):
    """A problem with the user's input or environment; its message is shown as is, one line (cut at
    MESSAGE_CHARS)."""

    def __init__(self, message: object = "", *args: object):
        super().__init__(clip(message, MESSAGE_CHARS) if isinstance(message, str) else message, *args)


class ValidationError(CrossRecError):
    """An input file is malformed; the message names the file, the line and the column."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column

    @classmethod
    def at(cls, table: str, line: int | None, column: str | None, what: str, *, unit: str = "line",
           header: bool = False) -> "ValidationError":
        """The error of one place, stated once: `items.csv line 14, column price: what` (the line and the
        column are left out of the text when unknown; `unit` is "row" for Parquet). A `header` error is
        about the column's name, which `what` states: the place is then the line alone."""
        place = table if line is None else f"{table} {unit} {int(line)}"
        if line is not None and column and not header:
            place += f", column {column}"
        return cls(f"{place}: {what}", file=table, line=line, column=column)

    @classmethod
    def whole(cls, table: str, what: str, *, line: int | None = None) -> "ValidationError":
        """The error of a whole file, said of it: `items.csv is empty: ...` (`line` only for the record)."""
        return cls(f"{table} {what}", file=table, line=line)


class DatabaseLockedError(CrossRecError):
    """Another process holds the DuckDB file (DuckDB allows one writer or many readers)."""


def environment_error(exc: BaseException) -> str | None:
    """One line for a problem of the machine rather than of CrossRec (a full disk, a file the user may not
    read or write, a read-only file system), from an OSError or DuckDB's IOException; None otherwise."""
    import errno

    if isinstance(exc, OSError):
        code, where = exc.errno, f" ({exc.filename})" if exc.filename else ""
    else:
        text = str(exc)
        code = next((c for c, words in ((errno.ENOSPC, "No space left"), (errno.EACCES, "Permission denied"),
                                        (errno.EROFS, "Read-only file system")) if words in text), None)
        found = re.search(r'"([^"]+)"', text)
        where = f" ({found.group(1)})" if found else ""
    if code == errno.ENOSPC:
        return f"no space left on the device{where}: free some space and run it again"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}: this user may not read or write it"
    if code == errno.EROFS:
        return f"read-only file system{where}: write somewhere else"
    if isinstance(exc, OSError) and code is not None:
        return f"{exc.strerror or type(exc).__name__}{where}"
    return None
