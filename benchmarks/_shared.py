"""Databases the benchmarks share: each dataset under ../shared/datasets and the demo shop, ingested
and encoded once into benchmarks/out/ (git-ignored) and reused by later runs."""
from __future__ import annotations

import time
from pathlib import Path

from crossrec_core.config import Settings
from crossrec_core.store import Store

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out"


def dataset_names() -> list[str]:
    if not DATASETS.is_dir():
        return []
    return sorted(p.name for p in DATASETS.iterdir() if (p / "events.parquet").is_file())


def database(name: str, *, encode: bool = True) -> tuple[Path, dict]:
    """The path of an ingested (and encoded) database for `name` ('demo' or a dataset folder)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.duckdb"
    timings: dict[str, float] = {}
    if not path.exists():
        tmp = OUT / f"{name}.building.duckdb"
        tmp.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with Store(tmp) as store:
            if name == "demo":
                from crossrec_core.demo import generate

                shop = generate()
                store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
            else:
                folder = DATASETS / name
                store.ingest_files(folder / "items.parquet", folder / "events.parquet")
            timings["ingest_s"] = time.perf_counter() - t0
            if encode:
                from crossrec_core.encoder import Encoder, encode_items

                t0 = time.perf_counter()
                encode_items(store, Encoder())
                timings["encode_s"] = time.perf_counter() - t0
        tmp.rename(path)
    return path, timings


def settings_for(path: Path) -> Settings:
    return Settings(db_path=path)
