"""Time split, slices, metrics and baselines of crossrec_core.evaluate / crossrec_core.baselines."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from crossrec_core.baselines import EASE, BASELINES, ItemKNN, PopularityBaseline
from crossrec_core.config import Settings
from crossrec_core.data import build_interactions
from crossrec_core.evaluate import (
    METRICS,
    SLICES,
    carve_validation,
    coverage,
    cross_positives,
    evaluate,
    fit_baselines,
    hit_matrix,
    intra_list_diversity,
    make_split,
    metrics_table,
    mrr_at_k,
    ndcg_at_k,
    ndcg_for_scores,
    novelty,
    ranking_metrics,
    recall_at_k,
    sample_negatives,
    sampled_auc,
    time_split,
    top_k_items,
)
from crossrec_core.profiles import make_context

T0 = pd.Timestamp("2024-01-01")


# ---- helpers --------------------------------------------------------------------------------------


def catalog(n: int, n_cats: int = 1) -> pd.DataFrame:
    ids = [f"i{j:03d}" for j in range(n)]
    tops = [f"C{j * n_cats // n}" for j in range(n)]
    return pd.DataFrame({"item_id": ids, "title": ids, "category": [f"{t} > s" for t in tops],
                         "cat_top": tops, "cat_sub": [f"{t} > s" for t in tops]})


def ev(rows) -> pd.DataFrame:
    """rows of (user, item, type, day)."""
    return pd.DataFrame([(u, i, t, T0 + pd.Timedelta(days=d)) for u, i, t, d in rows],
                        columns=["user_id", "item_id", "event_type", "ts"])


def synthetic_shop(seed: int = 0, n_users: int = 300, n_items: int = 200, n_cats: int = 8):
    """Users prefer 2 of 8 categories; items have a Zipf-like popularity within their category; 60 % of
    purchases are followed (0.5-15 days later) by the item's partner in the next category."""
    rng = np.random.default_rng(seed)
    per = n_items // n_cats
    ids = [f"i{j:03d}" for j in range(n_items)]
    cats = np.arange(n_items) // per
    items = pd.DataFrame({"item_id": ids, "title": ids, "category": [f"C{c} > S" for c in cats],
                          "cat_top": [f"C{c}" for c in cats], "cat_sub": [f"C{c} > S" for c in cats]})
    pop = 1.0 / (1 + np.arange(per)) ** 0.5
    pop /= pop.sum()
    partner = (np.arange(n_items) + per) % n_items
    rows = []
    for u in range(n_users):
        prefs = rng.choice(n_cats, size=2, replace=False)
        for _ in range(rng.integers(6, 14)):
            j = rng.choice(prefs) * per + rng.choice(per, p=pop)
            day = rng.uniform(0, 100)
            rows.append((f"u{u:03d}", ids[j], "purchase", day))
            if rng.random() < 0.6:
                rows.append((f"u{u:03d}", ids[partner[j]], "purchase", min(day + rng.uniform(0.5, 15), 100)))
    return items, ev(rows).sort_values("ts").reset_index(drop=True)


def planted_pairs():
    """Items i000+i001 and i002+i003 are always bought together; i004..i009 are noise."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(40):
        a = 0 if u < 20 else 2
        rows += [(f"u{u}", f"i{a:03d}", "purchase", 1), (f"u{u}", f"i{a + 1:03d}", "purchase", 1)]
        rows.append((f"u{u}", f"i{rng.integers(4, 10):03d}", "purchase", 2))
    return catalog(10), ev(rows)


# ---- metrics by hand ------------------------------------------------------------------------------


def test_recall_with_fewer_and_more_positives_than_k():
    topk = np.array([[0, 1, 2, 3]] * 3)
    pos = [np.array([1, 9]), np.array([0, 1, 2, 3, 4, 5]), np.array([0, 5, 6, 7, 8, 9])]
    m = ranking_metrics(topk, pos, 4)
    assert m["recall"] == pytest.approx([1 / 2, 4 / 4, 1 / 4])
    assert m["hit_rate"] == pytest.approx([1, 1, 1])
    hits = hit_matrix(topk, pos)
    assert hits.tolist() == [[False, True, False, False], [True] * 4, [True, False, False, False]]
    assert recall_at_k(hits, np.array([2, 6, 6]), 4) == pytest.approx([0.5, 1.0, 0.25])


def test_ndcg_and_mrr_by_hand():
    topk = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [5, 6, 7, 8]])
    pos = [np.array([1, 3]), np.array([2, 40, 41, 42, 43]), np.array([1])]
    hits = hit_matrix(topk, pos)
    n_pos = np.array([2, 5, 1])
    ndcg = ndcg_at_k(hits, n_pos, 4)
    want0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    ideal1 = sum(1 / math.log2(r + 1) for r in range(1, 5))
    assert ndcg == pytest.approx([want0, (1 / math.log2(4)) / ideal1, 0.0])
    assert mrr_at_k(hits) == pytest.approx([1 / 2, 1 / 3, 0.0])
    assert ndcg_for_scores(np.array([[4.0, 3, 2, 1, 0]]), None, [np.array([1, 3])], 4) == pytest.approx(want0)


def test_top_k_excludes_and_pads():
    scores = np.array([[0.1, 0.9, 0.5, np.nan, 0.7], [1.0, 2.0, 3.0, 4.0, 5.0]], dtype=np.float32)
    exclude = np.array([[False, True, False, False, False], [True, True, True, True, False]])
    topk = top_k_items(scores, exclude, 4)
    assert topk.tolist() == [[4, 2, 0, -1], [4, -1, -1, -1]]


def test_sampled_auc_with_known_ordering_and_ties():
    scores = np.array([[5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0], [1, 1, 0, 0, 0, 0]], dtype=np.float32)
    pos = [np.array([1]), np.array([3]), np.array([0])]
    neg = [np.array([2, 3, 4]), np.array([0, 1, 4, 5]), np.array([1, 2])]
    assert sampled_auc(scores, pos, neg) == pytest.approx([1.0, 0.5, 0.75])
    rng = np.random.default_rng(0)
    exclude = np.zeros((1, 50), bool)
    exclude[0, :10] = True
    negs = sample_negatives(50, [np.array([10, 11])], exclude, 20, rng)[0]
    assert len(negs) == 20 == len(set(negs)) and negs.min() >= 12


def test_coverage_diversity_novelty_by_hand():
    assert coverage(np.array([[0, 1], [1, 2], [2, -1]]), 10) == pytest.approx(0.3)
    emb = np.array([[1, 0], [0, 1], [1 / math.sqrt(2), 1 / math.sqrt(2)]], dtype=np.float32)
    div = intra_list_diversity(np.array([[0, 1, -1], [0, 2, -1], [0, 1, 2], [0, -1, -1]]), emb)
    c = 1 / math.sqrt(2)
    assert div[:3] == pytest.approx([1.0, 1 - c, 1 - (0 + c + c) / 3], abs=1e-6)
    assert math.isnan(div[3])
    assert np.isnan(intra_list_diversity(np.array([[0, 1]]), None)).all()
    nov = novelty(np.array([[0, 1], [2, -1]]), np.array([9, 1, 0]), 9)
    assert nov == pytest.approx([(0 + math.log2(5)) / 2, math.log2(10)])


def test_cross_positives_and_cross_recall():
    item_tops = np.array([0, 1, 1, 2, 0])
    user_tops = np.array([[True, False, False], [False, False, False]])
    cross = cross_positives([np.array([0, 1, 2]), np.array([3, 4])], item_tops, user_tops)
    assert [c.tolist() for c in cross] == [[1, 2], [3, 4]]
    m = ranking_metrics(np.array([[1, 0, 7], [9, 8, 7]]), cross, 3)
    assert m["recall"] == pytest.approx([1 / 2, 0.0])
    assert m["hit_rate"] == pytest.approx([1.0, 0.0])


# ---- the split ------------------------------------------------------------------------------------


def test_split_puts_no_test_event_into_training():
    items, events = synthetic_shop(seed=3, n_users=60)
    s = Settings()
    cut = time_split(events, s)
    lo, hi = events["ts"].min(), events["ts"].max()
    assert cut == lo + (hi - lo) * 0.8
    split = make_split(items, events, s)
    assert split.cut == cut
    assert split.train.events["ts"].max() < cut
    assert split.train.now == cut
    ref = build_interactions(items, events[events["ts"] < cut], s, now=cut)
    assert list(split.train.user_ids) == list(ref.user_ids)
    assert (split.train.X != ref.X).nnz == 0 and split.train.X.shape == ref.X.shape
    assert (split.train.touched != ref.touched).nnz == 0
    assert np.allclose(split.train.popularity, ref.popularity)
    assert (split.test_events["ts"] >= cut).all() and len(split.train_events) + len(split.test_events) == len(events)


def test_a_big_shop_is_evaluated_on_a_seeded_sample_of_shoppers():
    """eval_max_users caps each slice at a seeded random sample (the same for every model and every run);
    the figures say how many shoppers they were sampled from; 0 keeps everyone."""
    items, events = synthetic_shop(seed=3, n_users=200)
    whole = make_split(items, events, Settings().replace({"evaluation.max_users": 0}))
    n = len(whole.users("all"))
    split = make_split(items, events, Settings().replace({"evaluation.max_users": 40}))
    again = make_split(items, events, Settings().replace({"evaluation.max_users": 40}))
    got = split.users("all")
    assert n > 40 and len(got) == 40 and set(got) <= set(whole.users("all"))
    assert list(got) == sorted(got) and list(got) == list(again.users("all"))
    assert split.population["all"] == n and list(got) != list(whole.users("all"))[:40]
    res = evaluate({"popularity": PopularityBaseline().fit(split.train)}, split)
    assert res["slices"]["all"]["popularity"]["users"] == 40
    assert res["slices"]["all"]["popularity"]["users_sampled_from"] == n
    full = evaluate({"popularity": PopularityBaseline().fit(whole.train)}, whole)
    assert "users_sampled_from" not in full["slices"]["all"]["popularity"]


def test_discovery_train_items_never_in_lists_or_positives():
    items, events = synthetic_shop(seed=4, n_users=80)
    s = Settings().replace({"evaluation.k": 10})
    split = make_split(items, events, s)
    users = split.users("all")
    assert len(users) > 20
    excl = split.exclusions(users)
    for b, pos in enumerate(split.positives(users)):
        assert len(pos) and not excl[b, pos].any()
    model = PopularityBaseline().fit(split.train)
    topk = top_k_items(model.score(split.context(users)), excl, 10)
    rows = np.repeat(np.arange(len(users)), 10)
    assert not excl[rows, topk.ravel()].any()


def _planted_cold():
    items = catalog(8, n_cats=4)  # tops: C0 = i000,i001  C1 = i002,i003  C2 = i004,i005  C3 = i006,i007
    rows = [
        # train period (days 0..7); the range is 0..10, so the 80 % cut is day 8
        ("a", "i000", "purchase", 0), ("a", "i001", "view", 1), ("b", "i002", "purchase", 2),
        ("c", "i000", "purchase", 3), ("c", "i002", "purchase", 4), ("e", "i001", "purchase", 5),
        # test period
        ("a", "i000", "purchase", 8.5),  # seen in train: not a positive (discovery)
        ("a", "i002", "purchase", 9),  # warm item, new top-level category for a
        ("a", "i006", "cart", 9.5),  # cold item (no train event at all)
        ("a", "i007", "view", 9.6),  # a view: not a positive
        ("d", "i003", "purchase", 9.7),  # d has no train event: cold user
        ("b", "i003", "view", 10),  # b only viewed: no positive, in no slice
    ]
    return items, ev(rows)


def test_cold_user_and_cold_item_slices_on_planted_data():
    items, events = _planted_cold()
    s = Settings().replace({"evaluation.k": 3})
    texts = pd.DataFrame({"user_id": ["d", "c"], "profile_text": ["loves category one", "x"]})
    seen_texts = []

    def embed(texts_):
        seen_texts.extend(texts_)
        return np.ones((len(texts_), 4), np.float32)

    split = make_split(items, events, s, profile_texts=texts, embed_texts=embed)
    assert split.cut == T0 + pd.Timedelta(days=8)
    assert not split.positive_fallback
    assert list(split.users("all")) == ["a"]
    assert list(split.users("cold_users")) == ["d"]
    assert list(split.users("cold_items")) == ["a"]
    ids = split.train.item_ids
    assert list(ids[split.positives(["a"])[0]]) == ["i002", "i006"]
    assert list(ids[split.positives(["a"], "cold_items")[0]]) == ["i006"]
    assert list(ids[split.positives(["d"], "cold_users")[0]]) == ["i003"]
    assert seen_texts == ["loves category one"]  # c is in no slice: not encoded
    assert split.tops(["a", "d"]).tolist() == [[True, False, False, False], [False] * 4]
    cross = split.cross_positives(["a"])
    assert list(ids[cross[0]]) == ["i002", "i006"]
    # cold user context: no history, profile text only
    emb = np.eye(8, 4, dtype=np.float32)
    ctx = split.context(["d", "a"], emb)
    assert ctx.X[0].nnz == 0 and ctx.X[1].nnz == 2 and list(ctx.user_rows) == [-1, split.train.user_rows(["a"])[0]]
    assert np.allclose(ctx.profile[0], 0.5)
    # the evaluation fills all three slices
    result = evaluate({"popularity": PopularityBaseline().fit(split.train)}, split, emb, k=3)
    assert {sl: result["slices"][sl]["popularity"]["users"] for sl in SLICES} == {"all": 1, "cold_users": 1, "cold_items": 1}
    cu = result["slices"]["cold_users"]["popularity"]
    assert cu["cross_recall"] == cu["recall"]  # a cold user has no train category: all positives are cross


def test_positive_types_fall_back_to_all_types():
    items = catalog(4)
    events = ev([("a", "i000", "view", 0), ("a", "i001", "view", 9), ("b", "i002", "click", 1), ("b", "i003", "view", 10)])
    split = make_split(items, events, Settings())
    assert split.positive_fallback and set(split.positive_types) == {"view", "click"}
    assert list(split.users("all")) == ["a", "b"]


def test_timestamp_strings_are_accepted():
    items = catalog(4)
    events = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["i000", "i001", "i002"],
                           "event_type": ["purchase"] * 3,
                           "timestamp": ["2024-01-01T00:00:00Z", "2024-01-10T00:00:00Z", "2024-01-02T00:00:00+01:00"]})
    split = make_split(items, events, Settings())
    assert split.cut == pd.Timestamp("2024-01-08 04:48:00")
    assert list(split.users("all")) == ["a"]


def test_validation_carve_out_stays_inside_training():
    items, events = synthetic_shop(seed=5, n_users=80)
    s = Settings()
    split = make_split(items, events, s)
    val = carve_validation(split, s)
    val2 = carve_validation(items, events[events["ts"] < split.cut], s)
    tr = split.train_events["ts"]
    assert val.cut == tr.min() + (tr.max() - tr.min()) * (1 - s.evaluation.val_fraction) == val2.cut
    assert val.cut < split.cut
    assert val.test_events["ts"].max() < split.cut
    assert val.train.events["ts"].max() < val.cut
    assert (val.train.X != val2.train.X).nnz == 0
    assert len(val.users("all")) > 10


# ---- baselines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [EASE(lam=10.0), ItemKNN(shrink=1.0)])
def test_ease_and_itemknn_recover_a_planted_co_purchase(model):
    items, events = planted_pairs()
    s = Settings()
    data = build_interactions(items, events, s)
    model.fit(data)
    pos = data.item_rows(["i000", "i002", "i001"])
    X = np.zeros((3, 10), np.float32)
    X[np.arange(3), pos] = 1.0
    import scipy.sparse as sp

    scores = model.score(make_context(data, sp.csr_matrix(X)))
    assert scores.shape == (3, 10) and scores.dtype == np.float32
    top = top_k_items(scores, X > 0, 1)[:, 0]
    assert list(data.item_ids[top]) == ["i001", "i003", "i000"]


def test_ease_restricted_to_most_popular_items_scores_the_rest_lowest():
    items, events = planted_pairs()
    data = build_interactions(items, events, Settings())
    model = EASE(lam=10.0, max_items=4).fit(data)
    assert list(data.item_ids[model.items_]) == ["i000", "i001", "i002", "i003"]
    import scipy.sparse as sp

    ctx = make_context(data, sp.csr_matrix(np.eye(1, 10, dtype=np.float32)))
    sc = model.score(ctx)[0]
    assert sc[4:].max() < sc[:4].min()


def test_collaborative_baselines_beat_popularity_on_a_structured_shop():
    items, events = synthetic_shop(seed=0)
    s = Settings().replace({"evaluation.k": 10})
    split = make_split(items, events, s)
    models = fit_baselines(split, s, None, names=["popularity", "itemknn", "ease"])
    result = evaluate(models, split, None, k=10)
    json.dumps(result, allow_nan=False)  # the eval --json contract: plain JSON, no NaN
    assert set(result) == {"k", "slices"} and set(result["slices"]) == set(SLICES)
    allm = result["slices"]["all"]
    for m in allm.values():
        assert list(m) == list(METRICS)
    assert allm["popularity"]["users"] == len(split.users("all")) > 200
    pop = allm["popularity"]["recall"]
    assert allm["itemknn"]["recall"] > pop * 1.3
    assert allm["ease"]["recall"] > pop * 1.3
    assert allm["ease"]["ndcg"] > allm["popularity"]["ndcg"]
    assert allm["popularity"]["coverage"] < allm["ease"]["coverage"]
    assert allm["popularity"]["novelty"] < allm["itemknn"]["novelty"]
    assert allm["ease"]["diversity"] is None  # no embeddings
    assert 0.5 < allm["ease"]["auc"] <= 1.0
    table = metrics_table(result)
    assert list(table.columns) == ["slice", "model", *METRICS] and len(table) == 3 * len(SLICES)


def test_default_baselines_include_the_signal_ones_and_content_with_embeddings():
    items, events = synthetic_shop(seed=2, n_users=80)
    s = Settings().replace({"evaluation.k": 10, "signals.als.iterations": 3})
    split = make_split(items, events, s)
    models = fit_baselines(split, s, None)
    assert list(models) == ["popularity", "itemknn", "als", "ease", "rp3beta"]  # content needs embeddings
    emb = np.random.default_rng(0).standard_normal((len(items), 8)).astype(np.float32)
    models = fit_baselines(split, s, emb, names=["content", "rp3beta"])
    result = evaluate(models, split, emb, k=10)
    for name in ("content", "rp3beta"):
        m = result["slices"]["all"][name]
        assert m["users"] == len(split.users("all")) and 0 <= m["recall"] <= 1
        assert 0 < m["diversity"] < 2
    assert result["slices"]["all"]["rp3beta"]["recall"] > result["slices"]["all"]["content"]["recall"]


def test_baseline_registry_and_progress():
    assert set(BASELINES) == {"popularity", "itemknn", "als", "ease", "rp3beta", "content"}
    items, events = synthetic_shop(seed=1, n_users=50)
    s = Settings().replace({"evaluation.k": 5})
    split = make_split(items, events, s)
    calls = []
    models = fit_baselines(split, s, None, names=["popularity", "ease"], progress=lambda f, m: calls.append(f))
    evaluate(models, split, None, progress=lambda f, m: calls.append(f), batch_size=16)
    assert calls and calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls)


class _Dense:
    """A fused model seen through its B × catalogue scores only (no `held_out`): the dense evaluation path."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        if name == "held_out":
            raise AttributeError(name)
        return getattr(self.model, name)


def _managed_rules(items: pd.DataFrame):
    from crossrec_core.rules import PairRule, Rule, Rules

    tops = items["cat_top"].value_counts().index
    ids = items["item_id"].to_numpy()
    return Rules(pairs=[PairRule(source=str(tops[0]), target=str(tops[1]), multiplier=1.6)], managed=[
        Rule("boost", category=str(tops[2]), multiplier=0.5, name="damp"),
        Rule("exclude", item=str(ids[3]), name="gone"),
        Rule("bury", category=str(tops[4]), name="down"),
        Rule("pin", item=str(ids[7]), position=3, name="pin"),
    ])


@pytest.mark.parametrize("ruled", [False, True])
def test_block_evaluation_equals_the_dense_evaluation(small_shop_db, ruled):
    """The fused model's held-out lists and AUC scored a block of the catalogue at a time (`held_out`) give
    the dense path's metrics, every slice and every shopper, to 1e-12: without rules, and with a pair boost,
    a damp, an exclusion, a bury and a pin (whose lists are the served ones)."""
    from crossrec_core.fitting import fit_on_split
    from crossrec_core.store import Store

    from crossrec_core.encoder import item_embeddings

    settings = Settings(db_path=small_shop_db).replace({"retrieval.score_block": 97, "retrieval.score_cells": 0,
                                                        "retrieval.serving": "exhaustive"})
    with Store(small_shop_db, read_only=True) as store:
        items, events = store.items(), store.events()
        from crossrec_core.encoder import Encoder
        emb = item_embeddings(store, Encoder.from_settings(settings).model_id, items.sort_values("item_id"),
                              settings.encoder.max_text_chars)
    split, fused = fit_on_split(items, events, settings, embeddings=emb,
                                rules=_managed_rules(items) if ruled else None)
    assert fused.ranker_ is None and (fused.rule_engine().has_list_rules if ruled else not fused.rules)
    users = list(split.users("all"))[:5]
    assert fused.held_out(split.context(users, emb), split.slice_exclusions(users), 20, (np.zeros(0, int),) * 2)
    ours = evaluate({"crossrec": fused}, split, emb, k=20, per_user=True)
    dense = evaluate({"crossrec": _Dense(fused)}, split, emb, k=20, per_user=True)
    assert ours["slices"]["all"]["crossrec"]["users"] > 100
    for name, per_model in dense["slices"].items():
        for metric, value in per_model["crossrec"].items():
            got = ours["slices"][name]["crossrec"][metric]
            assert (got is None) == (value is None), (name, metric)
            if value is not None:
                assert abs(got - value) <= 1e-12 or (math.isnan(got) and math.isnan(value)), (name, metric, got, value)
    for metric, values in dense["per_user"]["crossrec"].items():
        np.testing.assert_allclose(ours["per_user"]["crossrec"][metric], values, rtol=0, atol=1e-12, equal_nan=True)
