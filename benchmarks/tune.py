"""Signal hyper-parameters chosen on the *validation* period only (carved from the training period, as
weight learning does): the test period is never read here.

For each dataset and each value of one setting, fit the single model that setting drives and print its
validation Recall@K / NDCG@K, plus the fused model with learned weights for the candidate defaults.

    python benchmarks/tune.py [--dataset NAME] [--setting signals.als.regularization=0.05,1,10,30,100]

A setting is its dotted path (`Settings.replace`); an old flat name (als_regularization) is read through
config.LEGACY.
"""
from __future__ import annotations

import argparse
import os

from _shared import database, dataset_names, settings_for  # crossrec_core first: it pins BLAS threads

import pandas as pd  # noqa: E402
from crossrec_core.config import LEGACY
from crossrec_core.evaluate import carve_validation, evaluate, fit_baselines, make_split
from crossrec_core.store import Store
from crossrec_core.train import _embeddings

# which single model reflects each setting (by the start of its path)
MODEL_OF = {"signals.als.": "als", "signals.graph.": "rp3beta", "signals.ease.": "ease",
            "evaluation.baselines.itemknn.": "itemknn", "signals.content.": "content"}


def _model_of(path: str) -> str:
    for start, model in MODEL_OF.items():
        if path.startswith(start):
            return model
    raise SystemExit(f"no single model reflects the setting {path} (known: {', '.join(MODEL_OF)})")


def _value(raw: str) -> int | float:
    return int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)


def _num(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def validation_split(name: str):
    path, _ = database(name)
    settings = settings_for(path)
    with Store(path, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = store.events()
        embeddings, _ = _embeddings(store, settings, items)
    split = make_split(items, events, settings)
    return carve_validation(split, settings), settings, embeddings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", action="append", help="dataset folder name or 'demo' (default: all)")
    ap.add_argument("--setting", action="append", default=None,
                    help="PATH=v1,v2,… (default: ALS regularization, graph beta and EASE lambda grids)")
    args = ap.parse_args()
    grids = args.setting or ["signals.als.regularization=0.05,5,15,30,60", "signals.graph.beta=0,0.1,0.25",
                            "signals.ease.lam=100,500,2000"]
    rows = []
    for name in args.dataset or ["demo", *dataset_names()]:
        val, base, embeddings = validation_split(name)
        for spec in grids:
            setting, _, values = spec.partition("=")
            setting = LEGACY.get(setting, setting)
            model = _model_of(setting)
            for raw in values.split(","):
                value = _value(raw)
                settings = base.replace({setting: value})
                fitted = fit_baselines(val, settings, embeddings, names=[model])
                m = evaluate(fitted, val, embeddings, settings.evaluation.k)["slices"]["all"][model]
                rows.append({"dataset": name, "setting": setting, "value": value, "model": model,
                             "val_recall": m["recall"], "val_ndcg": m["ndcg"], "val_cross_recall": m["cross_recall"]})
                print(f"{name:28s} {setting}={value:<8g} {model:8s} "
                      + " ".join(f"{k} {_num(m[k])}" for k in ("recall", "ndcg", "cross_recall")), flush=True)
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
