"""Errors a user can act on: one line that says what is wrong and where."""
from __future__ import annotations


class CrossRecError(Exception):
    """A problem with the user's input or environment; its message is shown as is, one line."""


class ValidationError(CrossRecError):
    """An input file is malformed; the message names the file, the line and the column."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, column: str | None = None):
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column


class DatabaseLockedError(CrossRecError):
    """Another process holds the DuckDB file (DuckDB allows one writer or many readers)."""
