"""What-if: a category-pair boost changes lists and is measured on held-out data."""
from __future__ import annotations

import pytest

from crossrec_core.config import Settings
from crossrec_core.recommender import Recommender
from crossrec_core.scorer import PairRule, Rules
from crossrec_core.store import Store
from crossrec_core.whatif import simulate


@pytest.fixture(scope="module")
def rec(small_shop_db):
    store = Store(small_shop_db, read_only=True)
    yield Recommender(Settings(db_path=small_shop_db)).fit(store)
    store.close()


def test_no_change_affects_nobody(rec):
    res = simulate(rec, Rules(), n_users=60, evaluate=False)
    assert res.users_total == 60 and res.users_affected == 0 and res.items_in.empty


def test_pair_boost_moves_items_of_the_target_category(rec):
    rules = Rules(pairs=[PairRule("Photography", "Electronics", 3.0)])
    res = simulate(rec, rules, n_users=150, evaluate=True)
    assert res.users_affected > 0
    assert (res.items_in["category"].str.startswith("Electronics")).mean() > 0.8
    assert {"recall", "ndcg", "cross_recall"} <= set(res.metric_delta)
    base, new = res.metric_delta["recall"]
    assert 0 <= base <= 1 and 0 <= new <= 1
    d = res.to_dict()
    assert d["users_affected"] == res.users_affected


def test_damping_to_zero_removes_the_category_for_source_users(rec):
    rules = Rules(pairs=[PairRule("Photography", "Photography", 0.0)])
    users = rec.store.users_in_category("Photography")[:30]
    scenario = rec.with_weights(rules=rules)
    for _, df in scenario.recommend_batch(users, k=10, explain=False):
        assert (df["cat_top"] != "Photography").all() or (df["score"] == 0).all()
