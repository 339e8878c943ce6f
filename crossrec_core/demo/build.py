"""`build_demo`: the demo shop generated, ingested, embedded and trained into a database file."""
from __future__ import annotations

import uuid

from collections.abc import Callable

from .generate import generate


def build_demo(
    settings,
    *,
    seed: int = 7,
    force: bool = False,
    encode: bool = True,
    train: bool = True,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Generate the demo shop into `settings.db_path`: ingest, embed item texts, train a first run.

    The database is built under a temporary name and moved into place at the end, so an interrupted
    build never leaves a half-built demo behind.
    """
    from pathlib import Path

    from ..store import holding

    # (share of the bar, what the step does): shares follow a measured build on a busy 2-core machine (3 s to
    # generate and load, 254 s to encode, 273 s to learn and fit, 57 s to map), so the bar moves evenly.
    steps = [(0.01, "generating the shop"), (0.01, "loading it"), (0.43 if encode else 0.0, "encoding item texts"),
             (0.45 if train else 0.0, "learning weights, evaluating and fitting the first run"),
             (0.10 if encode and train else 0.0, "mapping the catalog for the Map page")]
    total = sum(w for w, _ in steps) or 1.0
    shown = [label for w, label in steps if w > 0]

    def part(index: int):
        """The progress of step `index`: 'step 3 of 5, encoding item texts: encoded 1,024 of 8,000 texts'."""
        w, label = steps[index]
        lo = sum(x for x, _ in steps[:index]) / total
        head = f"step {shown.index(label) + 1} of {len(shown)}, {label}"
        return (lambda f, m: progress(lo + w / total * max(0.0, min(1.0, f)), f"{head}: {m}")) if progress else None

    path = Path(settings.db_path)
    # the one-writer rule: a file another process holds (the dashboard) is refused now, before minutes of
    # building, and held until it is replaced, so nobody opens it meanwhile or mid-swap
    with holding(path, force):
        stats = _build(settings, path, seed, force, encode, train, part)
    return stats


def _build(settings, path, seed: int, force: bool, encode: bool, train: bool, part) -> dict:
    """Generate, load, encode and train under a temporary name, then move the database (and its runs'
    artefacts) into place; the caller holds the old file meanwhile."""
    from pathlib import Path

    from ..store import Store

    # a fresh random name: a file of the user's called `<db>.building` is never touched
    tmp = path.with_name(f"{path.name}.building-{uuid.uuid4().hex[:12]}")
    shop = generate(seed, progress=part(0))
    tmp_settings = settings.replace(db_path=tmp)
    with Store(tmp) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users, settings=settings,
                            progress=part(1), source="demo")
        if encode:
            from ..encoder import encode_items

            from ..encoder import Encoder
            encode_items(store, Encoder.from_settings(settings), progress=part(2))
        if train:
            from ..train import _project, train as train_run

            train_run(store, tmp_settings, name="demo-initial", progress=part(3))
            if encode:  # the map as its own step, from the stored vectors (inside training it sat at 99 %)
                _project(store, tmp_settings, None, part(4))
        stats = store.stats()
    if force:
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
        import shutil

        shutil.rmtree(settings.artefact_dir, ignore_errors=True)
    tmp.rename(path)
    _move_artefacts(tmp_settings.artefact_dir, settings.artefact_dir, path)
    return stats


def _move_artefacts(src, dst, db_path) -> None:
    """Artefacts of the runs built under the temporary name follow the database to its final name (runs
    record their folders relative to the artefacts folder, so nothing in the database changes)."""
    if src.exists():
        src.rename(dst)
