"""Where the cross-mode list loses its discoveries: the share of the validation window's purchases in
top-level categories new to each shopper that the retrieved candidates hold, per signal, at two candidate
depths, and what an "entry items" source (the items newcomers to a category buy first, optionally weighted
by the lift of entering that category from the shopper's own) would add beside them.

Validation carve-out of the training period only (the test period is never read).

    python benchmarks/cross_candidates.py [--dataset completejourney] [--users 600]
"""
from __future__ import annotations

import argparse
import os

from _shared import database, settings_for  # crossrec_core first: it pins BLAS threads

import numpy as np  # noqa: E402
from crossrec_core.discovery import DiscoveryStats  # noqa: E402
from crossrec_core.fitting import fit_on_split  # noqa: E402
from crossrec_core.retrieval import candidate_recall, retrieve  # noqa: E402
from crossrec_core.signals.registry import names  # noqa: E402
from crossrec_core.split import time_split  # noqa: E402
from crossrec_core.store import Store  # noqa: E402
from crossrec_core.train import _embeddings  # noqa: E402


def entry_picks(stats: DiscoveryStats, ctx, cat_top: np.ndarray, n_top: int, new_only: np.ndarray, n: int,
                strength: np.ndarray, lift: bool) -> np.ndarray:
    """Each row's n best allowed items by entry strength (× the exp lift from the shopper's categories)."""
    owned = ctx.owned_items().tocsr()
    counts = np.zeros((ctx.n, n_top), np.float32)
    np.add.at(counts, (np.repeat(np.arange(ctx.n), np.diff(owned.indptr)), cat_top[owned.indices]), 1.0)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    weight = np.exp(share @ stats.log_lift) if lift else np.ones((ctx.n, n_top), np.float32)
    S = weight[:, cat_top] * strength[None, :]
    S[new_only | (strength <= 0)[None, :]] = -1.0
    top = np.argpartition(-S, n, axis=1)[:, :n]
    return np.where(np.take_along_axis(S, top, 1) > 0, top, -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="completejourney")
    ap.add_argument("--users", type=int, default=600)
    args = ap.parse_args()
    path, _ = database(args.dataset)
    settings = settings_for(path)
    with Store(path, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = store.events()
        embeddings, _ = _embeddings(store, settings, items)
        profiles = store.profile_texts()
    train_events = events[events["ts"] < time_split(events, settings)]
    val, scorer = fit_on_split(items, train_events, settings, {s: 1.0 for s in names()}, validation=True,
                               embeddings=embeddings, profile_texts=profiles)
    train = val.train
    users = val.users("all")
    users = list(np.sort(np.random.default_rng(settings.seed).choice(users, min(args.users, len(users)),
                                                                       replace=False)))
    ctx = val.context(users, embeddings)
    new_only = val.cross_exclusions(users, val.exclusions(users))
    cross = val.cross_positives(users)
    rows = np.concatenate([np.full(len(c), j, np.int64) for j, c in enumerate(cross)])
    want_items = np.concatenate(cross).astype(np.int64)
    want = rows * train.n_items + want_items
    print(f"{args.dataset}: {len(want)} new-category positives of {sum(len(c) > 0 for c in cross)} shoppers "
          f"(validation window, {len(users)} shoppers sampled)")
    signals = list(scorer.signals_)
    for n in (100, 200):
        found = retrieve(scorer.signals_, signals, ctx, ~new_only, n)
        held = candidate_recall(found, rows, want_items, train.n_items)
        print(f"  {n} per signal: {len(found) / ctx.n:.0f} candidates a shopper, share held "
              + ", ".join(f"{k} {v:.3f}" for k, v in held.items()))
    found = retrieve(scorer.signals_, signals, ctx, ~new_only, int(settings.retrieval.candidates))
    base = found.rows * train.n_items + found.items
    stats = DiscoveryStats.from_data(train, tuple(settings.evaluation.positive_types))
    cat_top = np.asarray(train.cat_top, np.int64)
    strengths = {"newcomers who bought it": np.log1p(stats.entry_users),
                 "recent newcomers": np.log1p(stats.entry_recent),
                 "share of newcomers": stats.entry_share,
                 "both counts": np.log1p(stats.entry_users) + np.log1p(stats.entry_recent)}
    print(f"  entry items beside the {settings.retrieval.candidates}-per-signal candidates:")
    for label, strength in strengths.items():
        for lift in (False, True):
            for n in (50, 100):
                top = entry_picks(stats, ctx, cat_top, len(train.cat_top_names), new_only, n, strength, lift)
                r, c = np.nonzero(top >= 0)
                keys = r.astype(np.int64) * train.n_items + top[r, c]
                print(f"    {label:24s} lift {'on ' if lift else 'off'} n {n:3d}: alone {np.isin(want, keys).mean():.3f}, "
                      f"with the others {np.isin(want, np.union1d(keys, base)).mean():.3f} "
                      f"({np.setdiff1d(keys, base).size / ctx.n:.1f} new candidates a shopper)")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
