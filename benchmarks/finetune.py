"""`crossrec finetune` measured: base against tuned encoder on the held-out test period.

For each dataset (the demo shop, then every shared dataset; absent ones are skipped):
- fine-tune with the command's own code (pairs before the validation cut; guard on the validation
  period), a copy of the database so the shared one keeps its encoder;
- on the TEST period (never seen by the fine-tune): content-only Recall@20 through the project's
  `content` baseline (`fit_baselines(..., names=['content'])` + `evaluate`, as `crossrec eval` does),
  on all users and on the cold-item slice; pair Recall@10 / MRR on the test period's same-basket pairs;
- the fine-tune's wall time and examples/s on this machine;
- the fused model (weights learned on a validation carve-out of the training period, per encoder;
  with `--ranker` the learned ranker too, as `crossrec train` chooses it) on the test period with the
  base and with the tuned item vectors: Recall@20 / NDCG@20 on every slice, and tuned − base with its
  95 % paired-bootstrap interval over the same shoppers.

    python benchmarks/finetune.py [--dataset NAME ...] [--mode head] [--max-minutes 4] [--epochs 10]
                                  [--from-dir DIR]   (use DIR/<name>.duckdb when present: already encoded)
                                  [--no-fused] [--ranker]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _shared import database, dataset_names, settings_for  # noqa: E402
from crossrec_core.encoder import Encoder, item_embeddings  # noqa: E402
from crossrec_core.evaluate import evaluate, fit_baselines, make_split  # noqa: E402
from crossrec_core.finetune.measure import pair_recall  # noqa: E402
from crossrec_core.finetune.pairs import PairSettings, build_pairs  # noqa: E402
from crossrec_core.finetune.run import FinetuneOptions, finetune  # noqa: E402
from crossrec_core.evaluate import paired_interval  # noqa: E402
from crossrec_core.split import time_split  # noqa: E402
from crossrec_core.store import Store  # noqa: E402
from crossrec_core.train import evaluate_weights, learn_weights  # noqa: E402


def test_figures(store, settings, vectors) -> dict:
    items = store.items().sort_values("item_id").reset_index(drop=True)
    split = make_split(items, store.events(), settings)
    models = fit_baselines(split, settings, vectors, names=["content"])
    res = evaluate(models, split, vectors, settings.evaluation.k)["slices"]
    held = build_pairs(items, split.test_events, PairSettings(order="same", max_per_item=10**9))
    pr = pair_recall(held, vectors)
    return {"recall": res["all"]["content"]["recall"], "users": res["all"]["content"]["users"],
            "cold_recall": res["cold_items"]["content"]["recall"], "cold_users": res["cold_items"]["content"]["users"],
            "pair_recall": pr["pair_recall"], "pair_mrr": pr["pair_mrr"]}


def fused_figures(store, settings, vectors, with_ranker: bool) -> dict:
    """The fused model with these item vectors, chosen on the training period only, on the test period."""
    items = store.items()
    events = store.events()
    train_events = events[events["ts"] < time_split(events, settings)]
    weights, cross_weights, _ = learn_weights(items, train_events, settings, vectors)
    ranker = None
    if with_ranker:
        from crossrec_core.ranker_fit import fit_ranker

        ranker, _ = fit_ranker(items, train_events, settings, vectors, weights)
    from crossrec_core.evaluate import evaluate

    _, split, fused = evaluate_weights(store, settings, weights, cross_weights=cross_weights, baselines=False,
                                       items=items, events=events, embeddings=vectors, ranker=ranker)
    res = evaluate({"crossrec": fused}, split, vectors, settings.evaluation.k, per_user=True)
    slices = {name: {m: res["slices"][name]["crossrec"].get(m) for m in ("recall", "ndcg", "users")}
              for name in res["slices"]}
    return {"slices": slices, "per_user": res["per_user"]["crossrec"], "weights": weights,
            "model": fused.model_kind}


def source_db(name: str, from_dir: Path | None) -> Path:
    if from_dir is not None and (from_dir / f"{name}.duckdb").is_file():
        return from_dir / f"{name}.duckdb"
    return database(name)[0]


def run(name: str, args) -> dict:
    src = source_db(name, args.from_dir)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        db = Path(tmp) / f"{name}.duckdb"
        shutil.copyfile(src, db)
        settings = settings_for(db)
        with Store(db) as store:
            items = store.items().sort_values("item_id").reset_index(drop=True)
            base_id = Encoder().model_id
            base = item_embeddings(store, base_id, items, settings.encoder.max_text_chars)
            t0 = time.perf_counter()
            res = finetune(store, settings, FinetuneOptions(mode=args.mode, max_minutes=args.max_minutes,
                                                            epochs=args.epochs, name="bench", force=True))
            wall = time.perf_counter() - t0
            tuned = item_embeddings(store, res.card["model_id"], items, settings.encoder.max_text_chars)
            before = test_figures(store, settings, base)
            after = test_figures(store, settings, tuned)
            fused = None
            if not args.no_fused:
                fb = fused_figures(store, settings, base, args.ranker)
                ft = fused_figures(store, settings, tuned, args.ranker)
                fused = {"base": fb, "tuned": ft,
                         "diff": {m: paired_interval(ft["per_user"][m], fb["per_user"][m], settings.seed)
                                  for m in ("recall", "ndcg")}}
    tr = res.card["training"]
    return {"name": name, "base": before, "tuned": after, "wall_s": wall, "train_s": tr["seconds"],
            "examples_per_s": tr["examples_per_s"], "epochs": tr["epoch"], "pairs": res.card["pairs"]["pairs"],
            "guard": res.reason, "validation": res.card["validation"], "fused": fused}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", action="append", help="demo or a folder of ../shared/datasets (repeatable)")
    ap.add_argument("--mode", default="head", choices=["head", "lora", "full"])
    ap.add_argument("--max-minutes", type=float, default=4.0)
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--from-dir", type=Path, default=None)
    ap.add_argument("--no-fused", action="store_true", help="skip the fused model with base and tuned vectors")
    ap.add_argument("--ranker", action="store_true", help="the fused comparison with the learned ranker too")
    ap.add_argument("--tmp", default=None, help="folder for the database copies (default: the system's)")
    args = ap.parse_args()
    names = args.dataset or ["demo", *[n for n in ("instacart_sample", "completejourney") if n in dataset_names()]]
    rows = []
    for name in names:
        if name != "demo" and name not in dataset_names():
            print(f"-- {name}: not under ../shared/datasets, skipped")
            continue
        r = run(name, args)
        rows.append(r)
        b, t = r["base"], r["tuned"]
        print(f"\n== {name}: {r['pairs']:,} pairs, {r['epochs']:.2f} epochs in {r['train_s']:.0f} s "
              f"({r['examples_per_s']:,.0f} examples/s; whole fine-tune {r['wall_s']:.0f} s); guard: {r['guard']}")
        print(f"   {'test period':<34} {'base':>8} {'tuned':>8} {'ratio':>7}")
        for label, key in (("content-only Recall@20, all", "recall"), ("content-only Recall@20, cold items", "cold_recall"),
                           ("pair Recall@10", "pair_recall"), ("pair MRR", "pair_mrr")):
            bv, tv = b[key], t[key]
            ratio = f"{tv / bv:6.2f}x" if bv else "    -"
            print(f"   {label:<34} {bv if bv is not None else float('nan'):8.4f} "
                  f"{tv if tv is not None else float('nan'):8.4f} {ratio}")
        print(f"   users: all {b['users']}, cold items {b['cold_users']}")
        f = r["fused"]
        if f:
            print(f"   fused model ({f['base']['model']} / {f['tuned']['model']}), test period:")
            print(f"   {'slice':<14} {'R@20 base':>9} {'tuned':>8} {'NDCG base':>9} {'tuned':>8}")
            for sl, fbs in f["base"]["slices"].items():
                fts = f["tuned"]["slices"][sl]
                print(f"   {sl:<14} {fbs['recall'] or 0:9.4f} {fts['recall'] or 0:8.4f} "
                      f"{fbs['ndcg'] or 0:9.4f} {fts['ndcg'] or 0:8.4f}")
            for m, (d, lo, hi) in f["diff"].items():
                verdict = "within noise" if lo <= 0 <= hi else ("better" if lo > 0 else "worse")
                print(f"   tuned - base {m}: {d:+.4f} [{lo:+.4f}, {hi:+.4f}] ({verdict})")


if __name__ == "__main__":
    main()
