"""Block-at-a-time fusion (crossrec_core.blocked) gives the dense path's lists on the demo shop."""
from __future__ import annotations

import numpy as np
import pytest

from crossrec_core.config import Settings
from crossrec_core.recommender import Recommender
from crossrec_core.store import Store


@pytest.fixture(scope="module")
def fitted(small_shop_db):
    store = Store(small_shop_db, read_only=True)
    yield Recommender(Settings(db_path=small_shop_db)).fit(store)
    store.close()


def _dense(scorer, ctx, mode, mask, k):
    total, parts = scorer.contributions(ctx, mode)
    idx = scorer.top_items(total, mask, k, ctx)
    safe = np.maximum(idx, 0)
    at = {s: np.where(idx >= 0, np.take_along_axis(p, safe, axis=1), 0.0) for s, p in parts.items()}
    return idx, np.where(idx >= 0, np.take_along_axis(total, safe, axis=1), 0.0), at


@pytest.mark.parametrize("block,cache_mb,mode,cap", [(97, 0, "all", 2), (256, 64, "cross", 0), (4096, 0, "all", 0)])
def test_blocked_lists_equal_the_dense_lists(fitted, block, cache_mb, mode, cap):
    """Every shopper of the demo shop, several block sizes (one block smaller than a list's pool), with and
    without the first pass's cache, variant cap on and off: the same top-20, scores and contributions."""
    settings = fitted.settings.replace(score_block=block, score_cache_mb=cache_mb, variant_cap=cap)
    rec = fitted.with_weights()
    rec.settings = rec.scorer_.settings = settings
    users = list(rec.store.user_ids())
    ctx, seen = rec.user_context(users)
    scorer = rec.scorer_
    assert scorer.ranker_ is None and not scorer.rules  # the path under test
    mask = scorer.candidate_mask(ctx, mode, exclude=seen.toarray() > 0)
    idx, score, parts, base = scorer.rank(ctx, mode, mask, 20)
    d_idx, d_score, d_parts = _dense(scorer, ctx, mode, mask, 20)
    assert (idx >= 0).sum() > 0.9 * idx.size
    np.testing.assert_array_equal(idx, d_idx)
    np.testing.assert_array_equal(score, d_score)
    assert set(parts) == set(d_parts)
    for s in parts:
        np.testing.assert_array_equal(parts[s], d_parts[s])
    assert not base.any()


def test_blocked_ties_keep_item_order():
    """Equal fused scores across block borders are taken in item order, as the dense top-k does."""
    from crossrec_core.blocked import fused_top
    from crossrec_core.topk import top_k

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4, size=(5, 50)).astype(np.float32)  # many ties
    allowed = rng.random((5, 50)) > 0.2
    w = {"a": np.ones((5, 1), np.float32)}
    idx, val, _ = fused_top({"a": lambda a, b: raw[:, a:b]}, w, allowed, 50, 12, block=7)
    lo, hi = raw.min(axis=1, keepdims=True), raw.max(axis=1, keepdims=True)
    d_idx, d_val = top_k((raw - lo) / (hi - lo), allowed, 12)
    np.testing.assert_array_equal(idx, d_idx)
    np.testing.assert_array_equal(val, np.where(d_idx >= 0, d_val, 0))
