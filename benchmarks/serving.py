"""Serving speed of a trained database's live run: one explained top-20 in-process (p50/p95) for the 50
heaviest and 50 median shoppers, and shoppers/s of a batch, two-stage (RetrievalSettings.serving="retrieve")
against the one-stage exhaustive path in the same process (medians; process start excluded).

    .venv/bin/python benchmarks/serving.py --db shop.duckdb [--shoppers 50] [--batch 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SERVINGS = ("retrieve", "exhaustive")


def _latencies(rec, users, k: int) -> np.ndarray:
    rec.recommend(users[0], k=k, explain=True)  # warm: compiled kernels, caches
    out = []
    for u in users:
        t = time.perf_counter()
        rec.recommend(u, k=k, explain=True)
        out.append((time.perf_counter() - t) * 1000)
    return np.asarray(out)


def run(db: Path, shoppers: int, batch: int, k: int) -> None:
    import resource

    from crossrec_core.runs import serving_recommender
    from crossrec_core.store import Store

    with Store(db, read_only=True) as store:
        rec = serving_recommender(store)
        if rec is None:
            raise SystemExit(f"{db}: no trained run; run `crossrec train --db {db}` first")
        summary = store.user_summary()
        active = summary[summary["events"] > 0].sort_values("events", ascending=False)
        heavy = list(active["user_id"][:shoppers])
        mid = len(active) // 2
        median = list(active["user_id"][max(0, mid - shoppers // 2): mid + shoppers - shoppers // 2])
        rng = np.random.default_rng(0)
        many = list(rng.choice(active["user_id"].to_numpy(), min(batch, len(active)), replace=False))
        st = store.stats()
        print(f"{db.name}: {st['items']:,} items, {st['users']:,} shoppers, {st['events']:,} events; "
              f"model {rec.scorer_.model_kind}")
        rates = {}
        p50 = {}
        for serving in SERVINGS:
            rec.settings = rec.scorer_.settings = rec.settings.replace({"retrieval.serving": serving})
            for name, group in (("heaviest", heavy), ("median", median)):
                lat = _latencies(rec, group, k)
                p50[(serving, name)] = float(np.percentile(lat, 50))
                print(f"  {serving:10s} explained top-{k}, {len(group)} {name} shoppers: p50 {p50[(serving, name)]:.1f} ms, "
                      f"p95 {np.percentile(lat, 95):.1f} ms")
            t = time.perf_counter()
            n = sum(1 for _ in rec.recommend_batch(many, k=k, explain=True))
            rates[serving] = n / (time.perf_counter() - t)
            print(f"  {serving:10s} batch of {len(many):,} shoppers, explained: {rates[serving]:,.0f} shoppers/s")
        for name in ("heaviest", "median"):
            print(f"  two-stage p50 {p50[('exhaustive', name)] / p50[('retrieve', name)]:.1f}x faster ({name})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        print(f"  two-stage batch {rates['retrieve'] / rates['exhaustive']:.1f}x faster; peak RSS {rss:.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", action="append", required=True, type=Path, help="a trained database (repeatable)")
    ap.add_argument("--shoppers", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args()
    for db in args.db:
        run(db, args.shoppers, args.batch, args.k)


if __name__ == "__main__":
    main()
