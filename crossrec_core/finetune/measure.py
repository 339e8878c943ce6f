"""Figures that judge an encoder for the shop: content-only Recall@20 (all users with history, and the
cold-item slice) and pair Recall@10 / MRR on held-out pairs.

The cold-item slice ranks new items only (`Split.slice_exclusions`), as `evaluate` does.
Content-only = the project's `content` baseline: a user's profile is the confidence-weighted mean of
their history's item vectors (unit length), items are ranked by cosine, train items excluded. With a
two-tower head the history uses `history` vectors and the candidates `candidate` vectors; with one set
of vectors for both sides this is exactly `ContentSignal`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import ranking_metrics, top_k_items
from ..split import Split
from ..signals.base import Context, Signal
from ..vectors import unit_rows


class TwoSidedContent(Signal):
    """score = unit(X @ H) @ Gᵀ: the content signal with separate history (H) and candidate (G) vectors."""

    name = "content"

    def __init__(self, history: np.ndarray, candidate: np.ndarray | None = None):
        super().__init__()
        self.H = np.asarray(history, np.float32)
        self.G = self.H if candidate is None else np.asarray(candidate, np.float32)

    def fit(self, data, embeddings=None) -> "TwoSidedContent":
        return self

    def score(self, ctx: Context) -> np.ndarray:
        P = unit_rows(np.asarray(ctx.X @ self.H, np.float32))
        return np.asarray(P @ self.G.T, np.float32)


def content_recall(split: Split, history: np.ndarray, candidate: np.ndarray | None = None, k: int = 20,
                   batch: int = 256) -> dict:
    """Mean Recall@k (and users) of content-only lists on the `all` and `cold_items` slices of `split`."""
    model = TwoSidedContent(history, candidate)
    out = {}
    for name in ("all", "cold_items"):
        users = split.users(name)
        vals = []
        for s in range(0, len(users), batch):
            bu = list(users[s:s + batch])
            scores = model.score(Context(X=split.history(bu)))
            topk = top_k_items(scores, split.slice_exclusions(bu, name), k)
            vals.append(ranking_metrics(topk, split.positives(bu, name), k)["recall"])
        v = np.concatenate(vals) if vals else np.zeros(0)
        out[name] = float(v.mean()) if len(v) else None
        out[f"{name}_users"] = int(len(v))
    return out


def pair_recall(pairs: pd.DataFrame, history: np.ndarray, candidate: np.ndarray | None = None, k: int = 10,
                max_anchors: int = 2000, seed: int = 0) -> dict:
    """Held-out pairs: for each A (up to `max_anchors`), rank every other item by h(A)·g(B); Recall@k over
    its B items (hits / min(k, |B|)) and MRR of the first hit."""
    if pairs is None or len(pairs) == 0:
        return {"pair_recall": None, "pair_mrr": None, "anchors": 0}
    H = np.asarray(history, np.float32)
    G = H if candidate is None else np.asarray(candidate, np.float32)
    groups = pairs.groupby("a")["b"].apply(lambda s: np.unique(s.to_numpy(np.int64)))
    anchors = groups.index.to_numpy()
    if len(anchors) > max_anchors:
        anchors = np.sort(np.random.default_rng(seed).choice(anchors, max_anchors, replace=False))
    rec, mrr = [], []
    for s in range(0, len(anchors), 512):
        an = anchors[s:s + 512]
        scores = H[an] @ G.T
        excl = np.zeros_like(scores, dtype=bool)
        excl[np.arange(len(an)), an] = True
        topk = top_k_items(scores, excl, k)
        m = ranking_metrics(topk, [groups[x] for x in an], k)
        rec.append(m["recall"])
        mrr.append(m["mrr"])
    return {"pair_recall": float(np.concatenate(rec).mean()), "pair_mrr": float(np.concatenate(mrr).mean()),
            "anchors": int(len(anchors))}


def fused_recall(items: pd.DataFrame, train_events: pd.DataFrame, vectors: np.ndarray, settings,
                 weights: dict[str, float], k: int = 20) -> dict:
    """The fused model with these item vectors, fitted and split as every other measurement is
    (`fit_on_split` on the validation carve-out of `train_events`): Recall@k per slice and per shopper.

    The guard's second question: a tuned encoder that lifts the text signal alone can still make the
    fused list worse (it learns what sells, which the collaborative signals already know, and loses
    the text similarity that reaches new items); the shop serves the fused list, so that is judged too.
    """
    from ..evaluate import evaluate
    from ..fitting import fit_on_split

    split, fused = fit_on_split(items, train_events, settings, weights, validation=True, embeddings=vectors)
    res = evaluate({"crossrec": fused}, split, vectors, k, per_user=True)
    return {"slices": {name: res["slices"][name]["crossrec"].get("recall") for name in res["slices"]},
            "per_user": np.asarray(res["per_user"]["crossrec"]["recall"], np.float64)}
