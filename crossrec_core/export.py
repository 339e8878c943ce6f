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
    arrays: each batch's reasons are made at once (`Recommender.reasons` over all its listed pairs), so
    there is no frame and no evidence call per shopper. A shopper whose list in `mode` is empty gets the
    all-categories list, each reason saying so, so an export of N shoppers always lists N shoppers."""
    cells: dict[int, tuple] = {}  # item position -> its neutralised (item_id, title, category)
    for batch, ctx, ranked in rec.ranked_batches(user_ids, k, mode, category, batch_size, progress):
        listed = (ranked[0] >= 0).any(axis=1)
        lists = dict(zip(np.flatnonzero(listed).tolist(), _block_rows(rec, ctx, ranked, listed, cells)))
        empty = [row for row in range(len(batch)) if not listed[row]]
        if empty and mode != "all":  # fallbacks: the all-categories lists of these shoppers, scored together
            (_, fctx, franked), = rec.ranked_batches([batch[r] for r in empty], k, "all", batch_size=len(empty))
            flisted = (franked[0] >= 0).any(axis=1)
            for n, rows in zip(np.flatnonzero(flisted).tolist(),
                               _block_rows(rec, fctx, franked, flisted, cells, FALLBACK[mode])):
                lists[empty[n]] = rows
        for row, uid in enumerate(batch):
            if row in lists:
                user = neutralise(str(uid))
                for line in lists[row]:
                    line[0] = user
                    yield line


def _block_rows(rec, ctx, ranked: tuple, rows: np.ndarray, cells: dict[int, tuple], prefix: str = "") -> list[list[list]]:
    """The CSV rows (user cell left to fill) of each selected row of a ranked batch, reasons made for all
    their listed pairs at once."""
    idx, score, parts, base = ranked
    keep = (idx >= 0) & rows[:, None]
    row_of, _ = np.nonzero(keep)
    rank = np.cumsum(keep, axis=1)[keep]
    items = idx[keep]
    listed = {name: v[keep] for name, v in parts.items()}
    reasons = rec.reasons(ctx, row_of, items, listed)
    if rec.scorer_.rules:
        engine = rec.scorer_.rule_engine()
        bounds = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1], True])
        notes = [note for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())
                 for note in engine.notes(ctx, int(row_of[a]), items[a:b])]
    else:
        notes = [""] * len(items)
    zero = [0.0] * len(items)
    values = [_rounded(listed[name]) if name in listed else zero for name in contributions()]
    cols = rec.item_columns
    out: list[list[list]] = []
    last = -1
    for n, (r, j, item, sc, bs, why, note) in enumerate(zip(row_of.tolist(), rank.tolist(), items.tolist(),
                                                            _rounded(score[keep]), _rounded(base[keep]), reasons,
                                                            notes)):
        cell = cells.get(item)
        if cell is None:
            cell = cells[item] = tuple(neutralise(str(cols[c][item])) for c in ("item_id", "title", "category"))
        if r != last:
            out.append([])
            last = r
        out[-1].append([None, j, *cell, sc, bs, *(v[n] for v in values), neutralise(prefix + why),
                        neutralise(str(note))])
    return out


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
