"""Recommendation lists as CSV that opens cleanly in Excel: UTF-8 BOM, CRLF, quoting, and every text
cell that Excel would evaluate as a formula neutralised with a leading apostrophe, as OWASP's
CSV-injection advice says: a cell starting with = + @ tab or CR, or with - when the cell is not a number.
Ids are data, so a cell is changed only when it would be evaluated: user '-1' stays '-1' and joins back
to the shop's own tables. Streams over users a batch at a time."""
from __future__ import annotations

import codecs
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
    """round(v, 6) of every value, as Python's `round` gives it (the CSV's digits): rint(v·10⁶)/10⁶ is the
    same float wherever v·10⁶ is not within rounding error of a half (then `round` itself decides)."""
    v = np.asarray(values, np.float64)
    scaled = v * 1e6
    out = np.rint(scaled) / 1e6
    unsure = ~(np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) > 1e-6) | ~(np.abs(v) < 1e9)
    rounded = out.tolist()
    for i in np.flatnonzero(unsure).tolist():
        rounded[i] = round(float(v[i]), 6)
    return rounded


def iter_rows(rec, user_ids: Sequence[str], k: int = 20, mode: str = "all", category: str | None = None,
              progress: Progress | None = None, batch_size: int = 256) -> Iterator[list]:
    """The CSV's data rows (in `columns()` order), streamed a batch of shoppers at a time from the scorer's
    arrays: each batch's reasons are made at once (`Recommender.reasons` over all its listed pairs), so
    there is no frame and no evidence call per shopper. A shopper whose list in `mode` is empty gets the
    all-categories list, each reason saying so, so an export of N shoppers always lists N shoppers."""
    for rows in _batch_rows(rec, user_ids, k, mode, category, progress, batch_size):
        yield from rows


def _batch_rows(rec, user_ids: Sequence[str], k: int, mode: str, category: str | None,
                progress: Progress | None, batch_size: int) -> Iterator[list[list]]:
    """The CSV rows of each batch of shoppers, in shopper order."""
    cells: dict[int, tuple] = {}  # item position -> its neutralised (item_id, title, category)
    for batch, ctx, ranked in rec.ranked_batches(user_ids, k, mode, category, batch_size, progress):
        users = [neutralise(str(uid)) for uid in batch]
        listed = (ranked[0] >= 0).any(axis=1)
        row_of, rows = _block_rows(rec, ctx, ranked, listed, users, cells)
        empty = np.flatnonzero(~listed)
        if not len(empty) or mode == "all":
            yield rows
            continue
        # fallbacks: each of these shoppers' all-categories list, scored alone as before (a batch of one
        # scores the same digits as the lists exported so far), each in its place
        owner, both = [row_of], list(rows)
        for r in empty.tolist():
            (_, fctx, franked), = rec.ranked_batches([batch[r]], k, "all")
            _, frows = _block_rows(rec, fctx, franked, (franked[0] >= 0).any(axis=1), [users[r]], cells, FALLBACK[mode])
            owner.append(np.full(len(frows), r))
            both += frows
        yield [both[i] for i in np.argsort(np.concatenate(owner), kind="stable").tolist()]


def _block_rows(rec, ctx, ranked: tuple, chosen: np.ndarray, users: list[str], cells: dict[int, tuple],
                prefix: str = "") -> tuple[np.ndarray, list[list]]:
    """(ctx row of each CSV row, the CSV rows) of the `chosen` rows of a ranked batch, row by row and rank by
    rank; the reasons of all their listed pairs are made at once."""
    idx, score, parts, base = ranked
    keep = (idx >= 0) & chosen[:, None]
    row_of, _ = np.nonzero(keep)
    items = idx[keep]
    listed = {name: v[keep] for name, v in parts.items()}
    reasons = rec.reasons(ctx, row_of, items, listed)
    if rec.scorer_.rules and len(items):
        engine = rec.scorer_.rule_engine()
        bounds = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1], True])
        notes = [neutralise(str(note)) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())
                 for note in engine.notes(ctx, int(row_of[a]), items[a:b])]
    else:
        notes = [""] * len(items)
    zero = [0.0] * len(items)
    cols = rec.item_columns
    for item in np.unique(items).tolist():
        if item not in cells:
            cells[item] = tuple(neutralise(str(cols[c][item])) for c in ("item_id", "title", "category"))
    item_cells = [cells[item] for item in items.tolist()]
    rows = [list(t) for t in zip([users[r] for r in row_of.tolist()], np.cumsum(keep, axis=1)[keep].tolist(),
                                 *zip(*item_cells), _rounded(score[keep]), _rounded(base[keep]),
                                 *(_rounded(listed[name]) if name in listed else zero for name in contributions()),
                                 [neutralise(prefix + why) for why in reasons], notes)]
    return row_of, rows


def iter_csv(rec, user_ids: Sequence[str], *, k: int = 20, mode: str = "all", category: str | None = None,
             progress: Progress | None = None, counted: list | None = None) -> Iterator[bytes]:
    """The CSV file as chunks of bytes (BOM and header first, then one chunk per batch of shoppers), for a
    stream to a file or a download that never holds the whole file; `counted` gets the row count appended."""
    head = io.StringIO()
    writer = csv.writer(head, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns())
    yield codecs.BOM_UTF8 + head.getvalue().encode("utf-8")
    n = 0
    for rows in _batch_rows(rec, user_ids, k, mode, category, progress, 256):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
        n += len(rows)
        yield buf.getvalue().encode("utf-8")
    if counted is not None:
        counted.append(n)


def write_stream(rec, out: BinaryIO, user_ids: Sequence[str], *, k: int = 20, mode: str = "all",
                 category: str | None = None, progress: Progress | None = None) -> int:
    """Write the CSV to a binary stream; returns the number of data rows."""
    counted: list[int] = []
    for chunk in iter_csv(rec, user_ids, k=k, mode=mode, category=category, progress=progress, counted=counted):
        out.write(chunk)
    return counted[0]


def check_out_path(out_path: str | Path, db_path: str | Path, *, force: bool = False) -> Path:
    """Refuse an --out that would destroy data, in one line: the database itself, any file DuckDB or
    CrossRec keeps beside it (.wal, .tmp, the artefacts folder), any DuckDB database, a folder, a block
    device or a socket, a missing parent folder, or an existing file unless `force`. A pipe, a terminal, a
    character device or /dev/stdout is streamed into (`outfile.output`): it needs no --force."""
    from .outfile import is_stream
    from .paths import expand, kind_of

    out = Path(expand(out_path))
    target = out.resolve()
    db = Path(expand(db_path)).resolve()
    owned = [db, Path(f"{db}.wal"), Path(f"{db}.tmp"), Path(f"{db}.artefacts")]
    for path in owned:
        if target == path or path in target.parents:
            raise CrossRecError(f"--out {out} is {'the database itself' if path == db else 'a file the database owns'}"
                                f" ({path.name}); write the CSV somewhere else")
    if is_stream(out):
        return out
    kind = kind_of(target)
    if kind == "a folder":
        raise CrossRecError(f"--out {out} is a folder; give a file name, e.g. {out / 'recs.csv'}")
    if kind is not None:
        raise CrossRecError(f"--out {out} is {kind}: write the CSV to a file, a pipe or a terminal")
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
    """Write to the file `out_path` names (`outfile.output`: an exclusive temp file renamed into place, or
    straight into a pipe, a terminal or /dev/stdout)."""
    from .outfile import output

    with output(out_path) as f:
        return write_stream(rec, f, user_ids, k=k, mode=mode, category=category, progress=progress)


def export_bytes(rec, user_ids: Sequence[str], *, k: int = 20, mode: str = "all", category: str | None = None,
                 progress: Progress | None = None) -> bytes:
    """The same CSV in memory, for a download button."""
    buf = io.BytesIO()
    write_stream(rec, buf, user_ids, k=k, mode=mode, category=category, progress=progress)
    return buf.getvalue()
