"""Ingest throughput: CrossRec's validated, transactional `Store.ingest_files(items, events)` against a bare
DuckDB `CREATE TABLE …; INSERT INTO … SELECT * FROM read_parquet(…)` of the same events file, in one process.

Uses the largest shared dataset by events (../shared/datasets from the repository root). Each side runs on
3 fresh database files (after one untimed warm-up each); the median is reported as events per second.

    python benchmarks/ingest.py            # figures
    python benchmarks/ingest.py --profile  # plus a cProfile of one ingest, by cumulative time
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from crossrec_core.store import Store

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
REPEATS = 3


def largest_dataset() -> Path | None:
    if not DATASETS.is_dir():
        return None
    folders = [p for p in DATASETS.iterdir() if (p / "events.parquet").is_file() and (p / "items.parquet").is_file()]
    if not folders:
        return None
    return max(folders, key=lambda p: pq.ParquetFile(p / "events.parquet").metadata.num_rows)


def ours(folder: Path, db: Path) -> tuple[float, int]:
    with Store(db) as store:  # opening (schema creation) is not timed; the load and its commit are
        start = time.perf_counter()
        report = store.ingest_files(folder / "items.parquet", folder / "events.parquet")
        elapsed = time.perf_counter() - start
    return elapsed, report.events_added


def bare(folder: Path, db: Path) -> tuple[float, int]:
    events = str(folder / "events.parquet")
    con = duckdb.connect(str(db))
    try:
        start = time.perf_counter()
        con.execute("CREATE TABLE events AS SELECT * FROM read_parquet(?) LIMIT 0", [events])
        con.execute("INSERT INTO events SELECT * FROM read_parquet(?)", [events])
        elapsed = time.perf_counter() - start
        rows = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        con.close()
    return elapsed, rows


def median_time(fn, folder: Path, workdir: Path, label: str) -> tuple[float, int]:
    fn(folder, workdir / f"{label}-warmup.duckdb")
    runs = [fn(folder, workdir / f"{label}-{k}.duckdb") for k in range(REPEATS)]
    return statistics.median(t for t, _ in runs), runs[0][1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one ingest")
    args = parser.parse_args()

    folder = largest_dataset()
    if folder is None:
        print(f"skipped: no shared datasets (items.parquet + events.parquet) under {DATASETS}")
        return 0
    n_events = pq.ParquetFile(folder / "events.parquet").metadata.num_rows
    n_items = pq.ParquetFile(folder / "items.parquet").metadata.num_rows
    print(f"dataset      {folder.name}: {n_events:,} events in file, {n_items:,} items in file")

    with tempfile.TemporaryDirectory(prefix="crossrec-bench-") as tmp:
        work = Path(tmp)
        t_ours, loaded = median_time(ours, folder, work, "ours")
        t_bare, inserted = median_time(bare, folder, work, "bare")
        ours_rate, bare_rate = n_events / t_ours, n_events / t_bare
        print(f"crossrec     Store.ingest_files(items, events): {t_ours:.3f} s median of {REPEATS}, "
              f"{ours_rate:,.0f} events/s ({loaded:,} distinct events loaded, items validated and loaded too)")
        print(f"bare duckdb  CREATE TABLE + INSERT … SELECT * FROM read_parquet: {t_bare:.3f} s median of {REPEATS}, "
              f"{bare_rate:,.0f} events/s ({inserted:,} rows, no validation)")
        print(f"ratio        bare / crossrec = {bare_rate / ours_rate:.1f}x "
              f"(crossrec takes {t_ours / t_bare:.1f}x the time of the bare insert)")

        if args.profile:
            profiler = cProfile.Profile()
            with Store(work / "profiled.duckdb") as store:
                profiler.enable()
                store.ingest_files(folder / "items.parquet", folder / "events.parquet")
                profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
