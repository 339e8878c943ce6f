"""One top-k for serving and evaluation: on the same scores, ties included, the served list is the
evaluated list, and both put equal scores in item order."""
from __future__ import annotations

import numpy as np

from crossrec_core.config import Settings
from crossrec_core.evaluate import model_top_k, top_k_items
from crossrec_core.scorer import FusedScorer
from crossrec_core.topk import top_k


def _reference(scores: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Sort every allowed item by (score desc, position asc): the definition, without partitions."""
    out = np.full((len(scores), k), -1)
    for b, row in enumerate(scores):
        cand = [i for i in range(len(row)) if allowed[b, i] and not np.isnan(row[i])]
        cand.sort(key=lambda i: (-row[i], i))
        out[b, :min(k, len(cand))] = cand[:k]
    return out


def test_ties_are_broken_by_item_order_at_the_cut_too():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 40)).astype(np.float32)  # many ties, across the k-th place
    scores[3] = 1.0  # a row of equal scores
    scores[7, ::3] = np.nan
    allowed = rng.random((50, 40)) > 0.2
    allowed[9] = False  # nothing allowed: all padding
    allowed[11, :] = False
    allowed[11, [5, 2]] = True  # fewer candidates than k
    for k in (1, 5, 10, 40, 45):
        idx, val = top_k(scores, allowed, k)
        np.testing.assert_array_equal(idx, _reference(scores, allowed, k))
        assert idx.shape == val.shape == (50, k)
        assert np.isneginf(val[idx < 0]).all()


def test_served_list_equals_evaluated_list_on_the_same_scores():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random((30, 60)), 1).astype(np.float32)  # ~10 distinct values: ties everywhere
    exclude = rng.random((30, 60)) > 0.7
    scorer = FusedScorer(Settings().replace({"ranker.variant_cap": 0, "ranker.diversity": 0.0}))
    served = scorer.top_items(scores, ~exclude, 20)
    evaluated = top_k_items(scores, exclude, 20)
    np.testing.assert_array_equal(served, evaluated)
    np.testing.assert_array_equal(model_top_k(scorer, scores, exclude, 20), evaluated)
    np.testing.assert_array_equal(evaluated, _reference(scores, ~exclude, 20))
