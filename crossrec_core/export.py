"""Recommendation lists as CSV that opens cleanly in Excel: UTF-8 BOM, CRLF, quoting, and every text
cell that Excel would evaluate as a formula neutralised with a leading apostrophe, as OWASP's
CSV-injection advice says: a cell starting with = + @ tab or CR, or with - when the cell is not a number.
Ids are data, so a cell is changed only when it would be evaluated: user '-1' stays '-1' and joins back
to the shop's own tables. Streams over users a batch at a time."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import BinaryIO, Sequence

from .signals.registry import contributions
from .errors import CrossRecError
from .progress import Progress



def columns() -> list[str]:
    """The CSV's columns: one per score part of the signal registry."""
    return ["user_id", "rank", "item_id", "title", "category", "score", "base", *contributions(), "reason",
            "applied_rules"]


def __getattr__(name: str):
    if name == "COLUMNS":
        return columns()
    raise AttributeError(name)

_FORMULA_START = ("=", "+", "@", "\t", "\r")
_NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would evaluate as a formula; anything else (a negative number
    such as the id '-1' included) passes through unchanged."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START) or
                                   value.startswith("-") and not _NEGATIVE_NUMBER.fullmatch(value)):
        return "'" + value
    return value


FALLBACK = {"cross": "Fallback (this shopper has bought in every category, so no new category is left): ",
            "target": "Fallback (nothing left to recommend in the chosen category): "}


def _rows(rec, user_ids: Sequence[str], k: int, mode: str, category: str | None, progress: Progress | None):
    """CSV rows; a shopper whose list in `mode` is empty gets the all-categories list, each reason
    saying so, so an export of N shoppers always lists N shoppers."""
    parts = contributions()
    for uid, df in rec.recommend_batch(user_ids, k=k, mode=mode, category=category, explain=True, progress=progress):
        prefix = ""
        if df.empty and mode != "all":
            df = rec.recommend_batch([uid], k=k, mode="all", explain=True).__next__()[1]
            prefix = FALLBACK[mode]
        for r in df.itertuples(index=False):
            yield [neutralise(str(uid)), int(r.rank), neutralise(str(r.item_id)), neutralise(str(r.title)),
                   neutralise(str(r.category)), round(float(r.score), 6), round(float(r.base), 6),
                   *(round(float(getattr(r, s)), 6) for s in parts), neutralise(prefix + str(r.reason)),
                   neutralise(str(r.applied_rules))]


def write_stream(rec, out: BinaryIO, user_ids: Sequence[str], *, k: int = 20, mode: str = "all",
                 category: str | None = None, progress: Progress | None = None) -> int:
    """Write the CSV to a binary stream; returns the number of data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns())
    n = 0
    for row in _rows(rec, user_ids, k, mode, category, progress):
        writer.writerow(row)
        n += 1
    text.flush()
    text.detach()
    return n


def check_out_path(out_path: str | Path, db_path: str | Path, *, force: bool = False) -> Path:
    """Refuse an --out that would destroy data, in one line: the database itself, any file DuckDB or
    CrossRec keeps beside it (.wal, .tmp, the artefacts folder), any DuckDB database, a folder, a
    missing parent folder, or an existing file unless `force`."""
    out = Path(out_path)
    target = out.resolve()
    db = Path(db_path).resolve()
    owned = [db, Path(f"{db}.wal"), Path(f"{db}.tmp"), Path(f"{db}.artefacts")]
    for path in owned:
        if target == path or path in target.parents:
            raise CrossRecError(f"--out {out} is {'the database itself' if path == db else 'a file the database owns'}"
                                f" ({path.name}); write the CSV somewhere else")
    if target.is_dir():
        raise CrossRecError(f"--out {out} is a folder; give a file name, e.g. {out / 'recs.csv'}")
    if not target.parent.is_dir():
        raise CrossRecError(f"--out {out}: the folder {out.parent} does not exist")
    if target.exists():
        from .store import what_file

        if what_file(target) is None:
            raise CrossRecError(f"--out {out} is a DuckDB database; write the CSV somewhere else")
        if not force:
            raise CrossRecError(f"--out {out} exists already; pass --force to replace it")
    return out


def write_csv(rec, out_path: str | Path, user_ids: Sequence[str], *, k: int = 20, mode: str = "all",
              category: str | None = None, progress: Progress | None = None) -> int:
    """Write to a file atomically (a temp file renamed into place)."""
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            n = write_stream(rec, f, user_ids, k=k, mode=mode, category=category, progress=progress)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def export_bytes(rec, user_ids: Sequence[str], *, k: int = 20, mode: str = "all", category: str | None = None,
                 progress: Progress | None = None) -> bytes:
    """The same CSV in memory, for a download button."""
    buf = io.BytesIO()
    write_stream(rec, buf, user_ids, k=k, mode=mode, category=category, progress=progress)
    return buf.getvalue()
