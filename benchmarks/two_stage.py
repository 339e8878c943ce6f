"""Two-stage serving against the one-stage (exhaustive) lists on the test period (issue 23's quality bar):
the live run of a trained database is fitted on the evaluation's training period (its weights and its
ranker, which was trained on windows before the test cut), and the very same fitted model is evaluated
twice, serving="retrieve" and serving="exhaustive", through the same split and metric code. Paired
bootstrap over shoppers of retrieve − exhaustive; candidate recall (the share of the test positives the
candidates hold) in all and per signal.

    .venv/bin/python benchmarks/two_stage.py --db benchmarks/out/completejourney.duckdb [--db ...]
        [--run NAME --against OLDER]   # a run trained with two-stage serving against one trained before it
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _fit(store, name: str | None, items, events, emb):
    """(the split, the run's model fitted on its training period with the run's ranker, the run's settings)."""
    from crossrec_core.runs import heldout_model, load_run, serving_recommender

    rec = serving_recommender(store, rules=False) if name is None else load_run(store, name, rules=False)
    split, fused = heldout_model(store, rec, items, events, emb)
    return split, fused, rec.settings


def run(db: Path, max_users: int, name: str | None, against: str | None) -> None:
    from crossrec_core.evaluate import evaluate, paired_interval
    from crossrec_core.retrieval import candidate_recall, retrieve
    from crossrec_core.store import Store
    from crossrec_core.train import _embeddings

    with Store(db, read_only=True) as store:
        items, events = store.items(), store.events()
        t0 = time.perf_counter()
        from crossrec_core.config import Settings

        emb, _ = _embeddings(store, Settings(db_path=db), items.sort_values("item_id").reset_index(drop=True))
        split, fused, settings = _fit(store, name, items, events, emb)
        fused.settings = settings.replace({"retrieval.serving": "retrieve"})
        if against is None:  # the very same fitted model, served one-stage
            exhaustive = copy.copy(fused)
        else:  # another run (e.g. trained before two-stage serving), served as it was
            _, exhaustive, _ = _fit(store, against, items, events, emb)
        exhaustive.settings = exhaustive.settings.replace({"retrieval.serving": "exhaustive"})
    fit_s = time.perf_counter() - t0
    ranker = fused.ranker_
    models = {"retrieve": fused, "exhaustive": exhaustive}
    times = {}
    result = {}
    for label, model in models.items():
        t0 = time.perf_counter()
        result[label] = evaluate({label: model}, split, emb, settings.evaluation.k, per_user=True)
        times[label] = time.perf_counter() - t0
    print(f"{db.name}: {name or 'live run'} two-stage against {against or 'itself'} one-stage; model "
          f"{fused.model_kind}, fit {fit_s:.0f} s; held-out evaluation retrieve {times['retrieve']:.0f} s, "
          f"exhaustive {times['exhaustive']:.0f} s ({times['exhaustive'] / max(times['retrieve'], 1e-9):.1f}x)")
    for metric in ("recall", "ndcg", "cross_recall"):
        a = np.asarray(result["retrieve"]["per_user"]["retrieve"][metric])
        b = np.asarray(result["exhaustive"]["per_user"]["exhaustive"][metric])
        ok = ~(np.isnan(a) | np.isnan(b))
        mean, lo, hi = paired_interval(a[ok], b[ok], settings.seed)
        print(f"  {metric}@{settings.evaluation.k}: retrieve {a[ok].mean():.4f}, exhaustive {b[ok].mean():.4f}, "
              f"difference {mean:+.4f} [95% {lo:+.4f}, {hi:+.4f}] over {int(ok.sum())} shoppers")
    users = list(split.users("all"))[:max_users]
    found_all, pos_rows, pos_items = [], [], []
    n_items = split.train.n_items
    names = ranker.signals_ if ranker is not None else fused.active()
    n = ranker.n_candidates if ranker is not None else settings.retrieval.candidates
    counts = []
    recall_parts: dict[str, list[float]] = {}
    for start in range(0, len(users), 256):
        batch = users[start:start + 256]
        ctx = split.context(batch, emb)
        found = retrieve(fused.signals_, names, ctx, ~split.exclusions(batch), n)
        pos = split.positives(batch)
        rows = np.repeat(np.arange(len(batch)), [len(p) for p in pos])
        its = np.concatenate([np.asarray(p, np.int64) for p in pos]) if len(rows) else np.zeros(0, np.int64)
        counts.append(np.bincount(found.rows, minlength=len(batch)))
        for key, value in candidate_recall(found, rows, its, n_items).items():
            recall_parts.setdefault(key, []).append((value, len(rows)))
    counts = np.concatenate(counts)
    print(f"  candidates per shopper: median {np.median(counts):.0f}, max {counts.max()} "
          f"({n} per signal, {len(names)} signals)")
    print("  candidate recall of the test positives: " + ", ".join(
        f"{k} {sum(v * w for v, w in parts) / max(sum(w for _, w in parts), 1):.3f}"
        for k, parts in recall_parts.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", action="append", required=True, type=Path, help="a trained database (repeatable)")
    ap.add_argument("--max-users", type=int, default=5000, help="shoppers for the candidate recall")
    ap.add_argument("--run", help="the run served two-stage (default: the live run)")
    ap.add_argument("--against", help="compare with this run served one-stage (default: the same run)")
    args = ap.parse_args()
    for db in args.db:
        run(db, args.max_users, args.run, args.against)


if __name__ == "__main__":
    main()
