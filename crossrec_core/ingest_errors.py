"""Every bad row of an input file, not only the first: the checks of `ingest` stop at the first error
(vectorised, one pass each), so this re-runs them without each reported row until the file is clean, up
to a cap. A page lists the errors; the load itself still refuses a file with any error."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .errors import ValidationError
from .ingest import RawTable

MAX_ERRORS = 50


def collect_errors(table: RawTable, check: Callable[[RawTable], object], limit: int = MAX_ERRORS
                   ) -> list[ValidationError]:
    """Up to `limit` errors of `check(table)` (e.g. `lambda t: validate_items(t, settings)`), one per bad row,
    in the order found. An error of the whole file (a missing column; no line) ends the list: nothing
    after it can be checked. A clean file gives []. Costs one check per error found."""
    errors: list[ValidationError] = []
    while len(errors) < limit:
        try:
            check(table)
            break
        except ValidationError as exc:
            errors.append(exc)
            if exc.line is None:
                break
            keep = table.lines != exc.line
            if keep.all() or not keep.any():
                break
            table = replace(table, frame=table.frame[keep].reset_index(drop=True), lines=table.lines[keep])
    return errors
