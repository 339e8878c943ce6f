"""What live business rules cost when serving: the explained export of the same shoppers with no rules
and with a typical rule set (a pin, an exclusion, a bury, brand / category / pair boosts, one of them
for a segment), medians of several repeats in the same process, and the ratio.

    python benchmarks/rules.py [--items 2000] [--users 1000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from crossrec_core.config import Settings
from crossrec_core.demo import generate
from crossrec_core.export import write_stream
from crossrec_core.governance import add_rule
from crossrec_core.rules import Rule
from crossrec_core.runs import serving_recommender
from crossrec_core.store import Store
from crossrec_core.train import train


def _export_seconds(rec, users: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        write_stream(rec, io.BytesIO(), users, k=20)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shop.duckdb"
        shop = generate(7, n_items=args.items, n_users=args.users, days=60)
        with Store(db) as store:
            store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
            train(store, Settings(db_path=db), name="bench", learn=False, baselines=False)
            users = store.user_ids()
            plain = serving_recommender(store)
            items = store.items()
            tops = items["cat_top"].unique()
            brand = items["brand"].dropna().iloc[0]
            store.put_segment("half", {"kind": "list"}, users[::2])
            for rule in (Rule("pin", item=items["item_id"].iloc[0], position=3, name="pin"),
                         Rule("exclude", category=tops[0], name="out"),
                         Rule("bury", item=items["item_id"].iloc[1], name="down"),
                         Rule("boost", brand=brand, multiplier=1.5, name="brand"),
                         Rule("boost", category=tops[1], multiplier=0.7, segment="half", name="damp half"),
                         Rule("boost", category=tops[2], from_category=tops[1], multiplier=2.0, name="pair")):
                add_rule(store, rule)
            ruled = serving_recommender(store)
            _export_seconds(plain, users[:50], 1)  # warm caches
            base = _export_seconds(plain, users, args.repeats)
            with_rules = _export_seconds(ruled, users, args.repeats)
    print(f"explained export of {len(users):,} shoppers × 20 ({args.items:,} items), median of {args.repeats}:")
    print(f"  no rules   {base:7.2f} s  ({len(users) / base:,.0f} shoppers/s)")
    print(f"  6 rules    {with_rules:7.2f} s  ({len(users) / with_rules:,.0f} shoppers/s)")
    print(f"  ratio      {with_rules / base:.2f}x the time without rules")


if __name__ == "__main__":
    main()
