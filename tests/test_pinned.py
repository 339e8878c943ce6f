"""The demo shop's lists pinned for a fixed seed: a refactor that changes a served list, a reason or a
held-out metric fails here (figures taken from main before issue 13's reshaping).

Changed on purpose since: issue 17's cooc neighbours keep equally similar items in a fixed order (they were
argpartition's arbitrary pick, and the Ray engine's counts must fit to the very same state), which swaps
U00078's 6th and 7th items and moves NDCG by +.00002 and AUC by +.00015."""
from __future__ import annotations

import pytest

from crossrec_core.config import Settings
from crossrec_core.signals.registry import weights_for
from crossrec_core.recommender import Recommender
from crossrec_core.store import Store
from crossrec_core.train import evaluate_weights

PINNED = {
    ("U00029", "all"): ["P000268", "P000654", "P000354", "P000508", "P000311", "P000438", "P000073", "P000420", "P000446", "P000274"],
    ("U00029", "cross"): ["P000555", "P000352", "P000590", "P000008", "P000349", "P000525", "P000346", "P000327", "P000357", "P000126"],
    ("U00042", "all"): ["P000114", "P000510", "P000097", "P000620", "P000576", "P000697", "P000249", "P000143", "P000344", "P000058"],
    ("U00042", "cross"): ["P000346", "P000347", "P000330", "P000459", "P000033", "P000008", "P000590", "P000019", "P000451", "P000513"],
    ("U00046", "all"): ["P000268", "P000634", "P000654", "P000354", "P000035", "P000438", "P000447", "P000311", "P000274", "P000307"],
    ("U00046", "cross"): ["P000576", "P000537", "P000330", "P000114", "P000590", "P000580", "P000143", "P000464", "P000349", "P000451"],
    ("U00048", "all"): ["P000587", "P000349", "P000046", "P000424", "P000392", "P000671", "P000495", "P000232", "P000088", "P000504"],
    ("U00048", "cross"): ["P000620", "P000346", "P000678", "P000198", "P000318", "P000369", "P000114", "P000008", "P000464", "P000508"],
    ("U00078", "all"): ["P000413", "P000249", "P000555", "P000217", "P000231", "P000697", "P000357", "P000327", "P000143", "P000359"],
    ("U00078", "cross"): ["P000114", "P000620", "P000510", "P000008", "P000077", "P000346", "P000097", "P000069", "P000356", "P000152"],
}
# signals added after the pins (issue 25's neighbours) weigh 0 here, so the pins still say whether the
# signals they were taken with score as before
PINNED_SETTINGS = {"encoder.precision": "fp32", "ranker.weights.neighbours": 0.0}
QUERY = ["P000597", "P000144", "P000623", "P000471", "P000122", "P000384", "P000501", "P000577", "P000691", "P000452"]
REASONS = [
    "Goes with Sleep Solutions for Babies (Kindle Edition, Little Steps Pr… in other shoppers' baskets; 52% of "
    "shoppers who bought Simply Mediterranean (Spiral-Bound, Penguin Kitchen) also bought this.",
    "89% of shoppers who bought A Map of Small Fires (Paperback, Northwind Press) also bought this; shoppers who "
    "bought A Map of Small Fires (Paperback, Northwind Press) went on to it.",
    "Goes with Trail Running Routes of Europe (Pocket Edition, Lonely Comp… in other shoppers' baskets; 50% of "
    "shoppers who bought Simply Mediterranean (Spiral-Bound, Penguin Kitchen) also bought this.",
]


@pytest.fixture(scope="module")
def store(small_shop_db):
    s = Store(small_shop_db, read_only=True)
    yield s
    s.close()


@pytest.fixture(scope="module")
def rec(store, small_shop_db):
    return Recommender(Settings(db_path=small_shop_db).replace(PINNED_SETTINGS)).fit(store)


def test_served_lists_are_pinned(rec):
    got = {(u, mode): rec.recommend(u, k=10, mode=mode)["item_id"].tolist() for u, mode in PINNED}
    assert got == PINNED
    assert rec.recommend_for_query("tripod for travel", k=10)["item_id"].tolist() == QUERY


def test_reasons_are_pinned(rec):
    assert rec.recommend("U00029", k=3, explain=True)["reason"].tolist() == REASONS


def test_held_out_metrics_are_pinned(store, small_shop_db):
    settings = Settings(db_path=small_shop_db).replace(PINNED_SETTINGS)
    result, _, _ = evaluate_weights(store, settings, weights_for(settings), baselines=False)
    fused = result["slices"]["all"]["crossrec"]
    assert fused["users"] == 287
    assert fused["recall"] == pytest.approx(0.37724465333350354, abs=1e-9)
    assert fused["ndcg"] == pytest.approx(0.21129200225881126, abs=1e-9)
    assert fused["auc"] == pytest.approx(0.8456988333482236, abs=1e-9)
    assert fused["coverage"] == pytest.approx(0.6414285714285715, abs=1e-9)
    assert fused["cross_recall"] == pytest.approx(0.24114387464387463, abs=1e-9)
