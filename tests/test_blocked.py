"""Block-at-a-time fusion (crossrec_core.blocked) gives the dense path's lists on the demo shop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.recommender import Recommender
from crossrec_core.store import Store


@pytest.fixture(scope="module")
def fitted(small_shop_db):
    store = Store(small_shop_db, read_only=True)
    yield Recommender(Settings(db_path=small_shop_db).replace({"retrieval.serving": "exhaustive"})).fit(store)
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
    settings = fitted.settings.replace({"retrieval.score_block": block, "retrieval.score_cells": 0,
                                        "retrieval.score_cache_mb": cache_mb, "ranker.variant_cap": cap})
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


def _ruled(fitted, k=20):
    """The demo shop's recommender with one rule of every kind (a pair boost, a brand damp, a segment boost,
    an exclusion, a bury and a pin), each on items that reach the lists."""
    from crossrec_core.rules import PairRule, Rule, Rules

    items = fitted.items_
    users = list(fitted.store.user_ids())
    ctx, seen = fitted.user_context(users[:50])
    idx = fitted.scorer_.rank(ctx, "all", fitted.scorer_.candidate_mask(ctx, "all", exclude=seen.toarray() > 0), k)[0]
    listed = items["item_id"].to_numpy()[idx[idx >= 0]]
    common = pd.Series(listed).value_counts().index  # items on many of these lists, most first
    tops = items["cat_top"].value_counts().index
    brand = items.set_index("item_id").loc[common[0], "brand"]
    rules = Rules(pairs=[PairRule(source=str(tops[0]), target=str(tops[1]), multiplier=1.7)], managed=[
        Rule("boost", brand=str(brand), multiplier=0.4, name="damp"),
        Rule("boost", category=str(tops[2]), multiplier=2.5, segment="vip", name="vip"),
        Rule("exclude", item=str(common[1]), name="gone"),
        Rule("bury", item=str(common[2]), name="down"),
        Rule("bury", category=str(tops[3]), name="down2"),
        Rule("pin", item=str(items["item_id"].iloc[5]), position=2, name="pin"),
    ], segments={"vip": frozenset(users[::3])})
    return fitted.with_weights(rules=rules), tops


@pytest.mark.parametrize("mode", ["all", "cross", "target"])
def test_blocked_lists_with_rules_equal_the_dense_lists(fitted, mode):
    """Boosts, damps, segment rules, exclusions, buries and a pin: the block-at-a-time lists are the dense
    lists (the same top-20, scores and contributions), in every mode, with blocks smaller than a list's pool."""
    rec, tops = _ruled(fitted)
    settings = rec.settings.replace({"retrieval.score_block": 97, "retrieval.score_cells": 0,
                                     "retrieval.score_cache_mb": 1})
    rec.settings = rec.scorer_.settings = settings
    scorer = rec.scorer_
    users = list(rec.store.user_ids())
    ctx, seen = rec.user_context(users)
    category = str(tops[1]) if mode == "target" else None
    mask = scorer.candidate_mask(ctx, mode, category, exclude=seen.toarray() > 0)
    idx, score, parts, _ = scorer.rank(ctx, mode, mask, 20)
    d_idx, d_score, d_parts = _dense(scorer, ctx, mode, mask, 20)
    assert (idx >= 0).sum() > 0.5 * idx.size
    np.testing.assert_array_equal(idx, d_idx)
    np.testing.assert_array_equal(score, d_score)
    for s in parts:
        np.testing.assert_array_equal(parts[s], d_parts[s])
    if mode == "all":  # the rules did act: the pin is listed second where allowed, the excluded item nowhere
        pin = rec.data_.item_index.get_loc(scorer.rules.managed[-1].item)
        assert (idx[mask[:, pin], 1] == pin).all() and mask[:, pin].any()
        gone = rec.data_.item_index.get_loc(scorer.rules.managed[3].item)
        assert not (idx == gone).any()
