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
from typing import BinaryIO, Iterator, Sequence

import numpy as np

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


def _rounded(values: np.ndarray) -> list[float]:
    return [round(v, 6) for v in np.asarray(values, np.float64).tolist()]


def iter_rows(rec, user_ids: Sequence[str], k: int = 20, mode: str = "all", category: str | None = None,
              progress: Progress | None = None, batch_size: int = 256) -> Iterator[list]:
    """The CSV's data rows (in `columns()` order), streamed a batch of shoppers at a time from the scorer's
    arrays (no frame per shopper): what `crossrec export` writes and a page can stream. A shopper whose
    list in `mode` is empty gets the all-categories list, each reason saying so, so an export of N
    shoppers always lists N shoppers."""
    parts_names = contributions()
    cols = rec.item_columns
    cells: dict[int, tuple] = {}  # item position -> its neutralised (item_id, title, category)
    engine = rec.scorer_.rule_engine() if rec.scorer_.rules else None
    for batch, ctx, (idx, score, parts, base) in rec.ranked_batches(user_ids, k, mode, category, batch_size, progress):
        for row, uid in enumerate(batch):
            keep = idx[row] >= 0
            prefix, c, r, p, b, s = "", ctx, row, parts, base, score
            if not keep.any() and mode != "all":
                _, c, (fi, s, p, b) = next(rec.ranked_batches([uid], k, "all"))
                r, keep, prefix = 0, fi[0] >= 0, FALLBACK[mode]
                items = fi[0][keep]
            else:
                items = idx[row][keep]
            if not len(items):
                continue
            listed = {name: v[r][keep] for name, v in p.items()}
            reasons = rec.reasons(c, r, items, listed)
            notes = engine.notes(c, r, items) if engine is not None else [""] * len(items)
            values = [_rounded(listed[name]) if name in listed else [0.0] * len(items) for name in parts_names]
            sc, bs = _rounded(s[r][keep]), _rounded(b[r][keep])
            user = neutralise(str(uid))
            for j, item in enumerate(items.tolist()):
                cell = cells.get(item)
                if cell is None:
                    cell = cells[item] = tuple(neutralise(str(cols[col][item])) for col in ("item_id", "title", "category"))
                yield [user, j + 1, *cell, sc[j], bs[j], *(v[j] for v in values), neutralise(prefix + reasons[j]),
                       neutralise(str(notes[j]))]


def write_stream(rec, out: BinaryIO, user_ids: Sequence[str], *, k: int = 20, mode: str = "all",
                 category: str | None = None, progress: Progress | None = None) -> int:
    """Write the CSV to a binary stream; returns the number of data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns())
    n = 0
    for row in iter_rows(rec, user_ids, k, mode, category, progress):
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
