"""Export speed (issue 17): shoppers/s of `crossrec export`'s CSV, split into its two halves, in one process.

    .venv/bin/python benchmarks/export_speed.py --db shop.duckdb [--users N] [--mode all] [--repeats 3]

- scoring: `Recommender.ranked_batches` alone (the lists, contributions and base of every shopper);
- explain + CSV: `export.iter_csv` with that scoring replayed from memory (reasons, evidence, rounding,
  quoting, bytes), against the per-shopper frames of `recommend_batch(explain=True)` replayed the same way;
- end to end: `export.iter_csv` as `crossrec export` runs it.
Medians of `--repeats` runs (the peer once per repeat too). `export_rates` is what benchmarks/scale.py's serve
step can call with its fitted recommender."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def export_rates(rec, users: list[str], *, k: int = 20, mode: str = "all", repeats: int = 3) -> dict:
    """Shoppers/s of the export's scoring, of its explanation + CSV half (scoring replayed), of the
    per-shopper frames peer on the same replayed scoring, and end to end; seconds are medians."""
    from crossrec_core.export import iter_csv

    users = list(users)
    n = max(len(users), 1)
    t0 = time.perf_counter()
    cached = list(rec.ranked_batches(users, k, mode))
    scoring = time.perf_counter() - t0
    real = rec.ranked_batches

    def replay(ids, *args, **kwargs):  # this export's batches from memory; anything else (fallbacks) scored
        return iter(cached) if ids is users else real(ids, *args, **kwargs)

    rec.ranked_batches = replay
    try:
        explain = _median_seconds(lambda: sum(map(len, iter_csv(rec, users, k=k, mode=mode))), repeats)
        peer = _median_seconds(lambda: [rec._frame(ctx, r, ranked, True) for _, ctx, ranked in cached
                                        for r in range(ctx.n)], repeats)
    finally:
        del rec.ranked_batches
    total = _median_seconds(lambda: sum(map(len, iter_csv(rec, users, k=k, mode=mode))), repeats)
    return {"shoppers": len(users), "scoring_s": scoring, "explain_csv_s": explain, "per_shopper_frames_s": peer,
            "end_to_end_s": total, "scoring_per_s": n / scoring, "explain_csv_per_s": n / explain,
            "per_shopper_frames_per_s": n / peer, "end_to_end_per_s": n / total,
            "explain_speedup_vs_frames": peer / explain}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True, help="a trained CrossRec database (its live run is served)")
    ap.add_argument("--users", type=int, default=0, help="first N shoppers (default: all)")
    ap.add_argument("--mode", default="all")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-serving", default="exhaustive",
                    help="also export once with this setting retrieval.serving (the one-stage path) and "
                         "compare; '' skips")
    args = ap.parse_args()

    from crossrec_core.runs import serving_recommender
    from crossrec_core.store import Store

    with Store(args.db, read_only=True) as store:
        rec = serving_recommender(store)
        if rec is None:
            raise SystemExit(f"{args.db}: no trained run; run `crossrec train --db {args.db}` first")
        users = store.user_ids()
        users = users[: args.users] if args.users else users
        from crossrec_core.export import iter_csv

        b"".join(iter_csv(rec, users[:8], k=args.k, mode=args.mode))  # warm: compiled evidence kernels, caches
        r = export_rates(rec, users, k=args.k, mode=args.mode, repeats=args.repeats)
        ours = b"".join(iter_csv(rec, users, k=args.k, mode=args.mode))
        peer = None
        if args.peer_serving and args.peer_serving != rec.settings.retrieval.serving:  # the one-stage path, same run
            served_as = rec.settings
            rec.settings = rec.scorer_.settings = served_as.replace({"retrieval.serving": args.peer_serving})
            t0 = time.perf_counter()
            theirs = b"".join(iter_csv(rec, users, k=args.k, mode=args.mode))
            peer = time.perf_counter() - t0
            rec.settings = rec.scorer_.settings = served_as
            same = _same_lists(ours, theirs)
    print(f"{r['shoppers']:,} shoppers, mode {args.mode}, k {args.k} (medians of {args.repeats})")
    print(f"  scoring (ranked_batches)     {r['scoring_s']:7.2f} s  {r['scoring_per_s']:8,.0f} shoppers/s")
    print(f"  explain + CSV (iter_csv)     {r['explain_csv_s']:7.2f} s  {r['explain_csv_per_s']:8,.0f} shoppers/s")
    print(f"  peer: per-shopper frames     {r['per_shopper_frames_s']:7.2f} s  {r['per_shopper_frames_per_s']:8,.0f} "
          f"shoppers/s  ({r['explain_speedup_vs_frames']:.1f}x slower than explain + CSV)")
    print(f"  end to end (crossrec export) {r['end_to_end_s']:7.2f} s  {r['end_to_end_per_s']:8,.0f} shoppers/s")
    if peer is not None:
        n = max(r["shoppers"], 1)
        print(f"  peer: serving={args.peer_serving} end to end {peer:7.2f} s  {n / peer:8,.0f} shoppers/s "
              f"(ours {peer / r['end_to_end_s']:.1f}x faster); the same item at the same rank in {same:.1%} of rows")


def _same_lists(a: bytes, b: bytes) -> float:
    """The share of (shopper, rank) rows of CSV `a` whose item is the one CSV `b` has there."""
    import io

    import pandas as pd

    key = ["user_id", "rank"]
    fa = pd.read_csv(io.BytesIO(a), usecols=[*key, "item_id"], dtype=str, encoding="utf-8-sig")
    fb = pd.read_csv(io.BytesIO(b), usecols=[*key, "item_id"], dtype=str, encoding="utf-8-sig")
    both = fa.merge(fb, on=key, how="left", suffixes=("", "_peer"))
    return float((both["item_id"] == both["item_id_peer"]).mean()) if len(both) else 1.0


if __name__ == "__main__":
    main()
