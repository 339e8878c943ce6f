"""Serving speed: latency of one explained top-20 for a user (p50/p95) and users/s of a batch of
1,000 users, on the largest shared dataset (and the demo shop), with a fitted Recommender.

    python benchmarks/serving.py [--dataset NAME] [--requests 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _shared import database, dataset_names, settings_for
from crossrec_core.recommender import Recommender
from crossrec_core.store import Store


def run(name: str, requests: int) -> None:
    path, _ = database(name)
    with Store(path, read_only=True) as store:
        t0 = time.perf_counter()
        rec = Recommender(settings_for(path)).fit(store)
        fit_s = time.perf_counter() - t0
        summary = store.user_summary()
        users = summary[summary["events"] > 0]["user_id"].to_numpy()
        rng = np.random.default_rng(0)
        sample = rng.choice(users, requests, replace=len(users) < requests)
        rec.recommend(sample[0], k=20, explain=True)  # warm caches
        lat = []
        for u in sample:
            t = time.perf_counter()
            rec.recommend(u, k=20, explain=True)
            lat.append((time.perf_counter() - t) * 1000)
        batch = rng.choice(users, 1000, replace=len(users) < 1000)
        rates = []
        for explain in (False, True):
            t = time.perf_counter()
            n = sum(1 for _ in rec.recommend_batch(batch, k=20, explain=explain))
            rates.append(n / (time.perf_counter() - t))
        st = store.stats()
    p50, p95 = np.percentile(lat, 50), np.percentile(lat, 95)
    print(f"{name}: {st['items']:,} items, {st['users']:,} users, {st['events']:,} events; fit {fit_s:.1f} s")
    print(f"  one explained top-20: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {requests} requests (goal p50 < 50 ms)")
    print(f"  batch of 1,000 users, top-20: {rates[0]:,.0f} users/s without explanations, "
          f"{rates[1]:,.0f} users/s with explanations")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", action="append", help="dataset folder name or 'demo' (default: all)")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    names = args.dataset or ["demo", *dataset_names()]
    for name in names:
        run(name, args.requests)


if __name__ == "__main__":
    main()
