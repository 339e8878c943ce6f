"""Offline quality: `crossrec train` (learned weights) then the held-out table, ours against every
baseline through the same split and metric code, on the demo shop and every shared dataset.
Also the wall time of `train` and export users/s.

    python benchmarks/quality.py [--dataset NAME] [--set ranker.cross_kind=off] [--set signals.ease.lam=250]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _shared import database, dataset_names, settings_for
from crossrec_core.config import LEGACY
from crossrec_core.evaluate import metrics_table
from crossrec_core.export import write_csv
from crossrec_core.runs import load_run
from crossrec_core.store import Store
from crossrec_core.train import train

COLUMNS = ["model", "recall", "ndcg", "cross_recall", "cross_hit_rate", "coverage", "users"]


def run(name: str, overrides: dict | None = None) -> None:
    path, _ = database(name)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / f"{name}.duckdb"
        db.write_bytes(path.read_bytes())
        with Store(db) as store:
            t0 = time.perf_counter()
            result = train(store, settings_for(db).replace(overrides or {}), name="bench")
            train_s = time.perf_counter() - t0
            # the run just trained (a database that already had a live run keeps it live until promoted)
            rec = load_run(store, "bench")
            users = store.user_ids()[:1000]
            t0 = time.perf_counter()
            write_csv(rec, Path(tmp) / "out.csv", users, k=20)
            export_rate = len(users) / (time.perf_counter() - t0)
            lat = []
            for u in users[:50]:
                t0 = time.perf_counter()
                rec.recommend(u, k=20, explain=True)
                lat.append(time.perf_counter() - t0)
            p50 = float(np.median(lat))
    table = metrics_table(result["metrics"])
    best = table[(table.slice == "all") & (table.model != "crossrec")]
    print(f"\n== {name}: train {train_s:.0f} s (weights learned, evaluated, fitted for serving); "
          f"export {export_rate:,.0f} users/s")
    print("   weights:", ", ".join(f"{k} {v:.2f}" for k, v in result["weights"].items()))
    print("   cross-mode weights:", ", ".join(f"{k} {v:.2f}" for k, v in result["metrics"]["cross_weights"].items()))
    tuned = result["metrics"].get("signal_tuning") or {}
    if tuned.get("ran"):
        print(f"   signals tuned on validation in {tuned['seconds']:.0f} s (box {tuned['budget_seconds']:g} s): "
              + (", ".join(f"{p} {v:g}" for p, v in tuned["changed"].items()) or "every signal kept its value"))
        for sig, entry in tuned["signals"].items():
            print(f"     {sig}: " + "; ".join(
                ", ".join(f"{p} {v:g}" for p, v in t["params"].items())
                + (f" NDCG {t['ndcg']:.4f}" if t["ndcg"] is not None else " failed") for t in entry["trials"])
                + (f" (skipped for time: {len(entry['skipped'])})" if entry["skipped"] else ""))
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        for slice_name in ("all", "cold_users", "cold_items"):
            part = table[table.slice == slice_name][COLUMNS]
            if part["users"].fillna(0).max() == 0:
                print(f"-- {slice_name}: no users in this slice")
                continue
            print(f"-- {slice_name}")
            print(part.set_index("model").to_string())
    ours = table[(table.slice == "all") & (table.model == "crossrec")].iloc[0]
    ranker = result["metrics"].get("ranker") or {}
    print(f"   serving model: {result['metrics'].get('model')}; validation NDCG: {ranker.get('validation_ndcg')}"
          + (f"; {ranker['reason']}" if ranker.get("reason") else ""))
    if ranker.get("importance"):
        print("   ranker gain by signal:", ", ".join(f"{k} {v:.0%}" for k, v in ranker["importance"].items()))
    if ranker.get("cross"):  # the cross-mode ranker: validation CrossRecall against the general ranker's
        c = ranker["cross"]
        print(f"   cross-mode ranker: serves {c.get('serves', False)}; validation CrossRecall "
              f"{c.get('validation_cross_recall')}, interval {c.get('interval')}; fit {c.get('fit_seconds')} s"
              + (f"; {c['reason']}" if c.get("reason") else ""))
    for metric, iv in (result["metrics"].get("intervals") or {}).items():
        if iv:
            print(f"   {metric}: crossrec - {iv['best']} = {iv['diff']:+.4f}, paired 95% interval over users "
                  f"[{iv['low']:+.4f}, {iv['high']:+.4f}], ratio {iv['ratio']}")
    top = best.loc[best["cross_recall"].idxmax()] if best["cross_recall"].notna().any() else None
    if top is not None:
        print(f"   cross_recall: crossrec {ours['cross_recall']:.4f} vs best baseline {top['model']} "
              f"{top['cross_recall']:.4f} ({ours['cross_recall'] / max(top['cross_recall'], 1e-12):.2f}x)")
    print(f"   explained top-20 p50 {p50 * 1000:.1f} ms over {len(lat)} shoppers")


def _value(text: str) -> int | float | str:
    """A --set value: an int, a float, or the text as given."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", action="append", help="dataset folder name or 'demo' (default: all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for this run by its dotted path (or an old flat name, config.LEGACY), e.g. "
                         "ranker.cross_kind=off; numbers are read as numbers")
    args = ap.parse_args()
    overrides = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        overrides[LEGACY.get(key, key)] = _value(value)
    for name in args.dataset or ["demo", *dataset_names()]:
        run(name, overrides)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
