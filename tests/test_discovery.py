"""The cross-mode ranker (crossrec_core.discovery, ranker_fit.fit_cross): exploration facts on a hand-made
shop, labels only in new top-level categories, the cross ranker serving cross mode only when it won on
validation, the served cross list equal to the evaluated one, exact explanations, persistence."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.data import build_interactions
from crossrec_core.discovery import FEATURES, DiscoveryStats, discovery_features
from crossrec_core.evaluate import _cross_lists, make_split, prepare_events, time_split
from crossrec_core.profiles import context_for_users
from crossrec_core.ranker import ItemStats, LearnedRanker, sub_codes
from crossrec_core.ranker_fit import build_fold, fit_ranker, windows
from crossrec_core.recommender import Recommender
from crossrec_core.scorer import FusedScorer
from crossrec_core.store import Store

SETTINGS = {"signals.als.factors": 8, "signals.als.iterations": 5, "retrieval.candidates": 30}
DAY0 = pd.Timestamp("2024-01-01")


def _hand_made(path) -> tuple[Settings, pd.DataFrame, pd.DataFrame]:
    """Three top-level categories; u1 and u2 enter Bakery (u2 with two items on one day, then a third item
    later), u3's first purchase is Bakery (no entry: their history had just begun) and enters Dairy later;
    u4 buys only Home."""
    items = pd.DataFrame({"item_id": ["A1", "A2", "B1", "B2", "B3", "C1"],
                          "title": ["milk", "cheese", "bread", "bagel", "cake", "soap"],
                          "category": ["Dairy > Milk", "Dairy > Cheese", "Bakery > Bread", "Bakery > Bread",
                                       "Bakery > Cakes", "Home > Soap"]})
    rows = [("u1", "A1", 0), ("u1", "A1", 30), ("u1", "B1", 40),
            ("u2", "A1", 0), ("u2", "B1", 50), ("u2", "B2", 50), ("u2", "B3", 60),
            ("u3", "B2", 0), ("u3", "A2", 35), ("u3", "A2", 36), ("u4", "C1", 0), ("u4", "C1", 45)]
    events = pd.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                           "event_type": "purchase",
                           "timestamp": [(DAY0 + pd.Timedelta(days=r[2])).isoformat() for r in rows]})
    with Store(path) as store:
        store.ingest_frames(items=items, events=events)
        settings = Settings(db_path=path).replace(SETTINGS)
        return settings, store.items(), prepare_events(store.events())


def test_entry_items_rates_and_lift_on_a_hand_made_shop(tmp_path):
    settings, items, events = _hand_made(tmp_path / "hand.duckdb")
    data = build_interactions(items, events, settings)
    st = DiscoveryStats.from_data(data, settings.evaluation.positive_types)
    at = {i: data.item_index.get_loc(i) for i in data.item_ids}
    # entry items: B1 (u1, u2), B2 (u2; u3's B2 was their first purchase), A2 (u3); B3 came after u2's entry
    np.testing.assert_array_equal([st.entry_users[at[i]] for i in ("A1", "A2", "B1", "B2", "B3", "C1")],
                                  [0, 1, 2, 1, 0, 0])
    bakery = data.cat_top[at["B1"]]
    assert st.entry_share[at["B1"]] == pytest.approx(2 / (2 + 10))  # over Bakery's 2 newcomers, shrunk
    u = {x: data.user_index.get_loc(x) for x in ("u1", "u2", "u3")}
    # u2: one entry over three active weeks (days 0, 50, 60); u1: one over three (0, 30, 40)
    assert st.entry_rate[u["u2"]] == pytest.approx(1 / 3) and st.entry_rate[u["u1"]] == pytest.approx(1 / 3)
    dairy = data.cat_top[at["A1"]]
    assert st.log_lift[dairy, bakery] > 0  # both Dairy shoppers went on to Bakery
    assert st.log_lift[dairy, dairy] == 0
    # the pair features: a Dairy-only shopper and the Bakery items
    ctx = context_for_users(data, np.array([u["u1"]]))
    ctx.X = ctx.X.multiply(np.asarray([[1 if t == dairy else 0 for t in data.cat_top]])).tocsr()
    ctx.X.eliminate_zeros()
    feats = discovery_features(np.zeros(2, np.int64), np.array([at["B1"], at["C1"]]), ctx, st, data.cat_top,
                               len(data.cat_top_names), np.array([u["u1"]]))
    col = {name: j for j, name in enumerate(FEATURES)}
    assert feats.shape == (2, len(FEATURES))
    assert feats[0, col["breadth"]] == pytest.approx(np.log1p(1))
    assert feats[0, col["entry_users"]] == pytest.approx(np.log1p(2)) and feats[1, col["entry_users"]] == 0
    assert feats[0, col["lift_max"]] == pytest.approx(st.log_lift[dairy, bakery])
    assert feats[0, col["lift_mean"]] == pytest.approx(st.log_lift[dairy, bakery])
    assert feats[0, col["entry_rate"]] == pytest.approx(1 / 3)
    # state: named arrays only
    again = DiscoveryStats.from_arrays({k: v.copy() for k, v in st.to_arrays().items()})
    for k in DiscoveryStats.ARRAYS:
        np.testing.assert_array_equal(getattr(again, k), getattr(st, k))


@pytest.fixture(scope="module")
def shop(ranker_shop):
    return ranker_shop


@pytest.fixture(scope="module")
def data(ranker_trained):
    """(settings, items, events, test cut) of the shop."""
    return ranker_trained[:4]


@pytest.mark.slow
def test_cross_labels_count_only_new_top_level_categories(data):
    settings, items, events, cut = data
    train = events[events["ts"] < cut]
    T, L = windows(train, settings)
    fold = build_fold(items, train, settings, T - L, T, None, 30, max_users=400, keep_scores=False, cross=True)
    split = make_split(items, train[train["ts"] < T], settings, cut=T - L)
    cat_top = split.train.cat_top
    labelled = 0
    for b, (cands, labels) in enumerate(fold.cross.batches):
        users = list(fold.users[b * 256:(b + 1) * 256])
        tops = split.tops(users)
        assert not tops[cands.rows, cat_top[cands.items]].any()  # every candidate is in a new category
        assert cands.X.shape[1] == fold.batches[b][0].X.shape[1] + len(FEATURES)
        every = split.positives(users)
        for j in range(len(users)):
            mine = cands.items[(cands.rows == j) & (labels == 1)]
            new = every[j][~tops[j, cat_top[every[j]]]]
            assert set(mine) <= set(new)  # labels: positives in new categories only
            assert set(mine) == set(new) & set(cands.items[cands.rows == j])
            labelled += len(mine)
    assert labelled > 0
    # the general window labels positives in known categories too
    assert sum(int(lab.sum()) for _, lab in fold.batches) > labelled


@pytest.fixture(scope="module")
def trained(ranker_trained):
    """(ranker, report), both rankers forced."""
    return ranker_trained[4:]


@pytest.mark.slow
def test_the_cross_ranker_serves_cross_mode_only_when_it_won_on_validation(data, trained):
    settings, items, events, cut = data
    ranker, report = trained
    c = report["cross"]
    assert ranker.cross_ is not None and list(ranker.cross_.extra_features_) == list(FEATURES)  # forced
    assert c["serves"] == (c["interval"][0] > 0)  # beyond noise only
    assert c["validation_cross_recall"]["cross"] > c["validation_cross_recall"]["ranker"] or not c["serves"]
    # unforced: the cross ranker rides along exactly when it won
    general, rep = fit_ranker(items, events[events["ts"] < cut], settings, None)
    if general is not None:
        won = rep["cross"].get("serves", False)
        assert (general.cross_ is not None) == won
    off, rep_off = fit_ranker(items, events[events["ts"] < cut], settings.replace({"ranker.cross_kind": "off"}), None,
                              force=True)
    assert off.cross_ is None and "cross" not in rep_off
    split = make_split(items, events, settings, cut=cut)
    fused = FusedScorer(settings).fit(split.train, None, items)
    fused.attach_ranker(off, ItemStats.from_data(split.train, sub_codes(items)))
    assert fused.ranker_for("cross") is off and fused.discovery_ is None
    fused.attach_ranker(ranker, ItemStats.from_data(split.train, sub_codes(items)))
    assert fused.ranker_for("cross") is ranker.cross_ and fused.ranker_for("all") is ranker
    assert fused.discovery_ is not None


@pytest.fixture(scope="module")
def served_model(data, trained):
    """(the test split, the fused scorer on its training period serving both forced rankers)."""
    settings, items, events, cut = data
    split = make_split(items, events, settings, cut=cut)
    fused = FusedScorer(settings).fit(split.train, None, items)
    fused.attach_ranker(trained[0], ItemStats.from_data(split.train, sub_codes(items)))
    return split, fused


@pytest.mark.slow
def test_served_cross_list_equals_evaluated_and_contributions_add_up(served_model):
    split, fused = served_model
    users = list(split.users("all")[:60])
    ctx = split.context(users)
    excl = split.exclusions(users)
    new_only = excl | split.tops(users)[:, split.train.cat_top]
    evaluated = _cross_lists(fused, None, np.arange(len(users)), lambda: split.context(users), new_only, 20)
    mask = fused.candidate_mask(ctx, "cross", exclude=excl)
    np.testing.assert_array_equal(mask, ~new_only)
    served, score, parts, base = fused.rank(ctx, "cross", mask, 20)
    np.testing.assert_array_equal(served, evaluated)
    listed = served >= 0
    assert listed.sum() > 0
    assert not split.tops(users)[np.nonzero(listed)[0], split.train.cat_top[served[listed]]].any()
    np.testing.assert_allclose((sum(parts.values()) + base)[listed], score[listed], atol=1e-5)
    assert np.abs(parts["context"][listed]).sum() > 0  # the exploration facts explain as "context"
    # the cross ranker is what ordered it: its own predictions, not the general ranker's
    all_served = fused.rank(ctx, "all", ~excl, 20)[0]
    assert not np.array_equal(all_served, served)


@pytest.mark.slow
def test_a_run_with_a_cross_ranker_saves_and_reloads_to_the_same_cross_lists(data, trained, shop, tmp_path):
    settings, *_ = data
    ranker, _ = trained
    state = json.loads(json.dumps(ranker.to_state()))
    assert LearnedRanker.from_state(state).cross_.feature_names_ == ranker.cross_.feature_names_
    rec = Recommender(settings).fit(shop).attach_ranker(ranker)
    folder = rec.save(tmp_path / "run")
    assert not list(folder.glob("*.pkl"))
    again = Recommender.load(folder, shop)
    assert again.scorer_.ranker_for("cross") is not None and again.scorer_.discovery_ is not None
    users = shop.user_summary()
    for user in users[users["purchases"] >= 3]["user_id"].iloc[:4]:
        a = rec.recommend(user, k=10, mode="cross", explain=True)
        b = again.recommend(user, k=10, mode="cross", explain=True)
        pd.testing.assert_frame_equal(a.drop(columns=["evidence"]), b.drop(columns=["evidence"]))


@pytest.mark.slow
def test_eval_reports_cross_recall_against_the_best_baseline_with_a_paired_interval(served_model):
    from crossrec_core.baselines import fit_baselines
    from crossrec_core.evaluate import evaluate, paired_interval

    split, fused = served_model
    settings = split.settings
    models = {"crossrec": fused, **fit_baselines(split, settings, None, names=["popularity", "itemknn"])}
    result = evaluate(models, split, None, 20, per_user=True)
    iv = result["intervals"]["cross_recall"]
    per = result["per_user"]
    best = max(("popularity", "itemknn"), key=lambda m: per[m]["cross_recall"].mean())
    assert iv["best"] == best
    assert len(per["crossrec"]["cross_recall"]) == len(per[best]["cross_recall"]) > 0  # the same shoppers
    diff, lo, hi = paired_interval(per["crossrec"]["cross_recall"], per[best]["cross_recall"], settings.seed)
    assert iv["diff"] == pytest.approx(diff, abs=1e-6) and iv["low"] == pytest.approx(lo, abs=1e-6)
    assert result["slices"]["all"]["crossrec"]["cross_recall"] == pytest.approx(per["crossrec"]["cross_recall"].mean())
