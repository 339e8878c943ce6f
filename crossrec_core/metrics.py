"""Offline metrics as small pure functions on arrays: top-k lists, hits, recall, NDCG, hit rate, MRR,
sampled AUC, coverage, diversity, novelty, the cross-category positives."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .topk import top_k

METRICS: tuple[str, ...] = ("recall", "ndcg", "hit_rate", "mrr", "auc", "coverage", "diversity", "novelty",
                            "cross_recall", "cross_hit_rate", "users")


def _dense_bool(m) -> np.ndarray | None:
    if m is None:
        return None
    if sp.issparse(m):
        return m.toarray() > 0
    return np.asarray(m, dtype=bool)


def top_k_items(scores: np.ndarray, exclude=None, k: int = 20) -> np.ndarray:
    """B × k item positions, best first, never an excluded item; -1 pads rows with fewer candidates.
    NaN scores count as excluded. The same selection as serving (`topk.top_k`), ties included."""
    ex = _dense_bool(exclude)
    return top_k(scores, None if ex is None else ~ex, k)[0]


def model_top_k(model, scores: np.ndarray, exclude, k: int) -> np.ndarray:
    """A model's top-k list: its own selection (`top_items`: the served list, variant cap included)
    when it has one, else the plain top-k of its scores."""
    select = getattr(model, "top_items", None)
    if select is None:
        return top_k_items(scores, exclude, k)
    allowed = ~_dense_bool(exclude) & ~np.isnan(scores)
    return select(np.asarray(scores, np.float32), allowed, k)


def hit_matrix(topk: np.ndarray, positives: Sequence[np.ndarray]) -> np.ndarray:
    """B × k bool: is the item at each rank one of the user's positives."""
    B, k = topk.shape
    if B == 0:
        return np.zeros((0, k), bool)
    lens = np.fromiter((len(p) for p in positives), dtype=np.int64, count=B)
    if lens.sum() == 0:
        return np.zeros((B, k), bool)
    rows = np.repeat(np.arange(B, dtype=np.int64), lens)
    cols = np.concatenate([np.asarray(p, np.int64) for p in positives])
    n = int(max(topk.max(initial=-1), cols.max())) + 1
    pos_keys = np.unique(rows * n + cols)
    keys = np.arange(B, dtype=np.int64)[:, None] * n + topk
    return (topk >= 0) & np.isin(keys, pos_keys)


def recall_at_k(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """Per user: hits / min(k, |positives|) (0 for users without positives)."""
    denom = np.minimum(k, np.asarray(n_pos, np.float64))
    return np.divide(hits[:, :k].sum(axis=1), denom, out=np.zeros(len(denom)), where=denom > 0)


def ndcg_at_k(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """Per user: binary-gain DCG@k over the ideal DCG of min(k, |positives|) hits."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_cum = np.r_[0.0, np.cumsum(discounts)]
    idcg = ideal_cum[np.minimum(k, np.asarray(n_pos, np.int64))]
    return np.divide(dcg, idcg, out=np.zeros(len(idcg)), where=idcg > 0)


def hit_rate_at_k(hits: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user: 1 if any of the top k is a positive."""
    h = hits if k is None else hits[:, :k]
    return h.any(axis=1).astype(np.float64)


def mrr_at_k(hits: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user: 1 / rank of the first hit in the top k, 0 if none."""
    h = hits if k is None else hits[:, :k]
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def sample_negatives(n_items: int, positives: Sequence[np.ndarray], exclude, n: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Per user, up to `n` distinct random items that are neither positive nor excluded."""
    ex = _dense_bool(exclude)
    out = []
    for b, pos in enumerate(positives):
        banned = np.zeros(n_items, dtype=bool) if ex is None else ex[b].copy()
        banned[np.asarray(pos, np.int64)] = True
        allowed = np.flatnonzero(~banned)
        m = min(n, len(allowed))
        out.append(np.sort(rng.choice(allowed, size=m, replace=False)) if m else np.zeros(0, np.int64))
    return out


def sampled_auc(scores: np.ndarray, positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> np.ndarray:
    """Per user: share of (positive, negative) pairs ranked right, ties 0.5 (NaN without pairs)."""
    rows, items = auc_pairs(positives, negatives)
    return sampled_auc_at(scores[rows, items], positives, negatives)


def auc_pairs(positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (row, item) pairs sampled AUC reads a score at: each row's positives, then its negatives."""
    per_row = [np.concatenate([np.asarray(p, np.int64), np.asarray(n, np.int64)]) for p, n in zip(positives, negatives)]
    lens = np.fromiter((len(x) for x in per_row), np.int64, count=len(per_row))
    items = np.concatenate(per_row) if per_row else np.zeros(0, np.int64)
    return np.repeat(np.arange(len(per_row), dtype=np.int64), lens), items


def sampled_auc_at(values: np.ndarray, positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> np.ndarray:
    """`sampled_auc` from the scores at `auc_pairs` (a model that never builds the B × catalogue array)."""
    out = np.full(len(positives), np.nan)
    start = 0
    for b, (pos, neg) in enumerate(zip(positives, negatives)):
        n_p, n_n = len(pos), len(neg)
        row = values[start:start + n_p + n_n]
        start += n_p + n_n
        if n_p == 0 or n_n == 0:
            continue
        sn = np.sort(row[n_p:].astype(np.float64))
        sp_ = row[:n_p].astype(np.float64)
        lt = np.searchsorted(sn, sp_, side="left")
        le = np.searchsorted(sn, sp_, side="right")
        out[b] = (lt + 0.5 * (le - lt)).sum() / (n_p * n_n)
    return out


def coverage(topk: np.ndarray, n_items: int) -> float:
    """Distinct recommended items over the catalog size."""
    if n_items <= 0:
        return 0.0
    return float(len(np.unique(topk[topk >= 0]))) / n_items


def intra_list_diversity(topk: np.ndarray, unit_embeddings: np.ndarray | None) -> np.ndarray:
    """Per list: 1 - mean pairwise cosine of its items' (unit) embeddings; NaN for lists under 2 items
    or without embeddings."""
    B, k = topk.shape
    if unit_embeddings is None or B == 0:
        return np.full(B, np.nan)
    valid = topk >= 0
    E = unit_embeddings[np.maximum(topk, 0)] * valid[:, :, None]  # B × k × d
    G = np.einsum("bid,bjd->bij", E, E, dtype=np.float64)
    m = valid.sum(axis=1).astype(np.float64)
    pair_sum = G.sum(axis=(1, 2)) - np.einsum("bii->b", G)
    pairs = m * (m - 1)
    return np.where(pairs > 0, 1.0 - pair_sum / np.where(pairs > 0, pairs, 1.0), np.nan)


def novelty(topk: np.ndarray, item_users: np.ndarray, n_users: int) -> np.ndarray:
    """Per list: mean self-information -log2((users_i + 1) / (n_users + 1)) of its items
    (users_i = train users who touched item i; NaN for empty lists)."""
    info = -np.log2((np.asarray(item_users, np.float64) + 1.0) / (n_users + 1.0))
    valid = topk >= 0
    vals = np.where(valid, info[np.maximum(topk, 0)], 0.0)
    cnt = valid.sum(axis=1)
    return np.divide(vals.sum(axis=1), cnt, out=np.full(len(cnt), np.nan), where=cnt > 0)


def cross_positives(positives: Sequence[np.ndarray], item_tops: np.ndarray, user_tops: np.ndarray) -> list[np.ndarray]:
    """Per user, the positives whose top-level category is not among `user_tops[b]` (B × n_tops bool)."""
    out = []
    for b, pos in enumerate(positives):
        pos = np.asarray(pos, np.int64)
        out.append(pos[~user_tops[b, item_tops[pos]]] if len(pos) else pos)
    return out


def ranking_metrics(topk: np.ndarray, positives: Sequence[np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Per-user recall, ndcg, hit_rate, mrr of top-K lists."""
    hits = hit_matrix(topk, positives)
    n_pos = np.fromiter((len(p) for p in positives), dtype=np.int64, count=len(positives))
    return {"recall": recall_at_k(hits, n_pos, k), "ndcg": ndcg_at_k(hits, n_pos, k),
            "hit_rate": hit_rate_at_k(hits, k), "mrr": mrr_at_k(hits, k)}


def ndcg_for_scores(scores: np.ndarray, exclude, positives: Sequence[np.ndarray], k: int) -> float:
    """Mean NDCG@k of score rows (excluded items never ranked) — the weight-learning objective."""
    if len(positives) == 0:
        return float("nan")
    topk = top_k_items(scores, exclude, k)
    n_pos = np.fromiter((len(p) for p in positives), dtype=np.int64, count=len(positives))
    return float(ndcg_at_k(hit_matrix(topk, positives), n_pos, k).mean())


