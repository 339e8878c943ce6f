"""What one signal adds: `crossrec train` with and without it (the registry's line taken out for the "without"
run), each run's step table, then the held-out period scored once for both served models, the signal alone
and the baselines, with paired-bootstrap intervals over the same shoppers.

    python benchmarks/signal_gain.py [--dataset completejourney] [--signal neighbours] [--db PATH]

`--db` measures a database of your own (copied first; its chosen tuned encoder, `crossrec encoders use`,
is read from where it is: `--signal content_tuned` needs one).

Nothing is chosen on the test period: both runs learn their weights and ranker on the training period's
validation windows, as `crossrec train` always does.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from _shared import database, settings_for
from crossrec_core.baselines import fit_baselines
from crossrec_core.evaluate import evaluate, paired_interval
from crossrec_core.finetune.registry import with_chosen_encoder
from crossrec_core.runs import heldout_model, load_run
from crossrec_core.signals import registry
from crossrec_core.split import prepare_events
from crossrec_core.store import Store
from crossrec_core.train import _embeddings, train


@contextmanager
def without(signal: str):
    """The registry without `signal` for the duration (its line put back where it was)."""
    at = registry.names().index(signal)
    cls = registry.CLASSES[at]
    registry.unregister(signal)
    try:
        yield
    finally:
        registry.CLASSES.insert(at, cls)


@contextmanager
def unchanged():
    yield


def served_model(store: Store, run_name: str, items, events, embeddings):
    """The run's served model (its settings, weights and ranker) fitted on the test split's training period."""
    return heldout_model(store, load_run(store, run_name, rules=False), items, events, embeddings)


def steps(store: Store, run_name: str) -> dict[str, float]:
    """Seconds of each step of the run's step table and of each part inside a step ("step / part")."""
    out: dict[str, float] = {}

    def walk(parts: list[dict], prefix: str) -> None:
        for p in parts:
            out[prefix + p["step"]] = float(p["seconds"])
            walk(p.get("parts") or [], f"{prefix}{p['step']} / ")
    walk(store.run(run_name)["metrics"].get("steps", []), "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="completejourney")
    ap.add_argument("--signal", default="neighbours")
    ap.add_argument("--db", type=Path, help="this database (copied) instead of --dataset's")
    args = ap.parse_args()
    sig_name = args.signal
    path = args.db if args.db else database(args.dataset)[0]
    name = path.stem if args.db else args.dataset
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / f"{name}.duckdb"
        db.write_bytes(path.read_bytes())
        settings = with_chosen_encoder(settings_for(path)).replace(db_path=db)
        with Store(db) as store:
            seconds = {}
            for variant, registry_state in (("without", without(sig_name)), ("with", unchanged())):
                with registry_state:
                    t0 = time.perf_counter()
                    run = train(store, settings, name=variant, baselines=False)
                    seconds[variant] = time.perf_counter() - t0
                    rep = run["metrics"].get("ranker") or {}
                    print(f"== train {variant} {sig_name}: {seconds[variant]:.0f} s; serving {run['metrics'].get('model')}; "
                          f"ranker validation NDCG {rep.get('validation_ndcg')}", flush=True)
                    if rep.get("importance"):
                        print("   ranker gain by signal:", ", ".join(f"{k} {v:.0%}" for k, v in rep["importance"].items()))
            a, b = steps(store, "without"), steps(store, "with")
            print("== step seconds (without -> with):")
            for step in dict.fromkeys([*a, *b]):
                print(f"   {step:70s} {a.get(step, 0):8.1f} {b.get(step, 0):8.1f}  {b.get(step, 0) - a.get(step, 0):+8.1f}")

            items = store.items().sort_values("item_id").reset_index(drop=True)
            events = prepare_events(store.events())
            embeddings, _ = _embeddings(store, settings, items)
            with without(sig_name):
                split, fused_without = served_model(store, "without", items, events, embeddings)
            _, fused_with = served_model(store, "with", items, events, embeddings)
        alone = registry.classes()[sig_name].build(settings).fit(split.train, embeddings)
        models = {"crossrec": fused_with, "crossrec_without": fused_without, sig_name: alone,
                  **fit_baselines(split, settings, embeddings)}
        res = evaluate(models, split, embeddings, settings.evaluation.k, per_user=True)
    k = settings.evaluation.k
    print(f"== held-out period, all shoppers (K={k}): model, Recall@{k}, NDCG@{k}, CrossRecall@{k}")
    for m in models:
        r = res["slices"]["all"][m]
        print(f"   {m:18s} {r['recall']:.4f} {r['ndcg']:.4f} {r['cross_recall'] if r['cross_recall'] is not None else float('nan'):.4f}")
    per = res["per_user"]
    base = [m for m in models if m not in ("crossrec", "crossrec_without", sig_name)]
    for metric in ("recall", "ndcg", "cross_recall"):
        best = max(base, key=lambda m: np.mean(per[m][metric]))
        for x, y in (("crossrec", "crossrec_without"), (sig_name, best), ("crossrec", best)):
            d, lo, hi = paired_interval(per[x][metric], per[y][metric], settings.seed)
            ratio = np.mean(per[x][metric]) / max(np.mean(per[y][metric]), 1e-12)
            print(f"   {metric:12s} {x} - {y} = {d:+.4f} [{lo:+.4f}, {hi:+.4f}] ratio {ratio:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
