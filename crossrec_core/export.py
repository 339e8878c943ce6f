"""Recommendation lists as CSV that opens cleanly in Excel: UTF-8 BOM, CRLF, quoting, and every text
cell that Excel could read as a formula (starting with = + - @ tab or CR) neutralised with a leading
apostrophe, as OWASP's CSV-injection advice says. Streams over users a batch at a time."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from .config import CONTRIBUTIONS

Progress = Callable[[float, str], None]
COLUMNS = ["user_id", "rank", "item_id", "title", "category", "score", "base", *CONTRIBUTIONS, "reason"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """Prefix a text cell that a spreadsheet would evaluate; numbers pass through."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


FALLBACK = {"cross": "Fallback (this shopper has bought in every category, so no new category is left): ",
            "target": "Fallback (nothing left to recommend in the chosen category): "}


def _rows(rec, user_ids: Sequence[str], k: int, mode: str, category: str | None, progress: Progress | None):
    """CSV rows; a shopper whose list in `mode` is empty gets the all-categories list, each reason
    saying so, so an export of N shoppers always lists N shoppers."""
    for uid, df in rec.recommend_batch(user_ids, k=k, mode=mode, category=category, explain=True, progress=progress):
        prefix = ""
        if df.empty and mode != "all":
            df = rec.recommend_batch([uid], k=k, mode="all", explain=True).__next__()[1]
            prefix = FALLBACK[mode]
        for r in df.itertuples(index=False):
            yield [neutralise(str(uid)), int(r.rank), neutralise(str(r.item_id)), neutralise(str(r.title)),
                   neutralise(str(r.category)), round(float(r.score), 6), round(float(r.base), 6),
                   *(round(float(getattr(r, s)), 6) for s in CONTRIBUTIONS), neutralise(prefix + str(r.reason))]


def write_stream(rec, out: BinaryIO, user_ids: Sequence[str], *, k: int = 20, mode: str = "all",
                 category: str | None = None, progress: Progress | None = None) -> int:
    """Write the CSV to a binary stream; returns the number of data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    n = 0
    for row in _rows(rec, user_ids, k, mode, category, progress):
        writer.writerow(row)
        n += 1
    text.flush()
    text.detach()
    return n


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
