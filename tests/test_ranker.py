"""The learned ranker: candidates and features, training windows before the cut, exact TreeSHAP
explanations, the served list equal to the evaluated one, JSON-only persistence."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.evaluate import make_split, model_top_k, prepare_events, time_split
from crossrec_core.ranker import ItemStats, LearnedRanker, sub_codes
from crossrec_core.ranker_fit import fit_ranker, windows
from crossrec_core.recommender import Recommender
from crossrec_core.scorer import FusedScorer
from crossrec_core.signals.registry import contributions, names
from crossrec_core.store import Store

SIGNALS, CONTRIBUTIONS = names(), contributions()

pytestmark = pytest.mark.slow
SETTINGS = {"signals.als.factors": 8, "signals.als.iterations": 5, "retrieval.candidates": 30}


@pytest.fixture(scope="module")
def shop(ranker_shop):
    """A small generated shop (no encoder: the ranker must work without text)."""
    return ranker_shop


@pytest.fixture(scope="module")
def trained(ranker_trained):
    """(settings, items, events before the test cut, cut, ranker, report)."""
    return ranker_trained


def test_training_windows_end_before_the_test_cut(trained):
    settings, items, events, cut, ranker, report = trained
    assert ranker is not None, report
    ends = [pd.Timestamp(w["end"]) for w in report["windows"].values()]
    starts = [pd.Timestamp(w["signals_before"]) for w in report["windows"].values()]
    assert max(ends) < cut and max(starts) < max(ends)
    # the windows are the last two of the period, of equal length
    T, L = windows(events[events["ts"] < cut], settings)
    assert max(ends) == T and all(end - start == L for start, end in zip(starts, ends))
    assert report["model_rows"] > 0 and report["choice"] in ("ranker", "fusion", *SIGNALS)


def test_ranker_contributions_add_up_to_the_score(trained, shop):
    settings, items, events, cut, ranker, report = trained
    rec = Recommender(settings).fit(shop).attach_ranker(ranker)
    users = shop.user_summary()
    user = users[users["purchases"] >= 3]["user_id"].iloc[0]
    df = rec.recommend(user, k=20, explain=True)
    assert len(df) == 20 and df["score"].is_monotonic_decreasing
    total = df[list(CONTRIBUTIONS)].sum(axis=1) + df["base"]
    np.testing.assert_allclose(total, df["score"], atol=1e-5)
    assert (df["base"] != 0).all()  # the booster's expected value
    assert (df[list(CONTRIBUTIONS)] < 0).any().any()  # negative contributions are shown as such
    assert (df["reason"].str.len() > 5).all()


def test_served_list_equals_evaluated_list(trained):
    settings, items, events, cut, ranker, report = trained
    split = make_split(items, events, settings, cut=cut)
    fused = FusedScorer(settings).fit(split.train, None, items)
    fused.attach_ranker(ranker, ItemStats.from_data(split.train, sub_codes(items)))
    users = list(split.users("all")[:40])
    ctx = split.context(users)
    excl = split.exclusions(users)
    evaluated = model_top_k(fused, fused.score(ctx), excl, 20)
    served, score, parts, base = fused.rank(ctx, "all", ~excl, 20)
    np.testing.assert_array_equal(served, evaluated)
    np.testing.assert_allclose(sum(parts.values()) + base, score, atol=1e-5)


def test_ranker_state_is_json_and_reloads_to_the_same_predictions(trained):
    ranker = trained[4]
    state = json.loads(json.dumps(ranker.to_state()))
    again = LearnedRanker.from_state(state)
    X = np.random.default_rng(0).normal(size=(50, len(ranker.feature_names_))).astype(np.float32)
    np.testing.assert_array_equal(again.predict(X), ranker.predict(X))
    c1, b1 = ranker.contributions(X)
    np.testing.assert_allclose(sum(c1.values()) + b1, ranker.predict(X), atol=1e-6)


def test_too_little_history_falls_back_to_the_fusion(shop):
    settings = Settings(db_path=shop.path).replace(SETTINGS)
    items = shop.items()
    events = prepare_events(shop.events())
    tiny = events[events["ts"] < events["ts"].min() + pd.Timedelta(days=2)]
    ranker, report = fit_ranker(items, tiny, settings, None)
    assert ranker is None and report["choice"] == "fusion" and report["reason"]


def test_a_run_with_the_ranker_saves_and_reloads_to_the_same_explained_lists(trained, shop, tmp_path):
    settings, items, events, cut, ranker, report = trained
    rec = Recommender(settings).fit(shop).attach_ranker(ranker)
    folder = rec.save(tmp_path / "run")
    assert not list(folder.glob("*.pkl"))
    again = Recommender.load(folder, shop)
    assert again.scorer_.model_kind == "ranker"
    for user in shop.user_ids()[:5]:
        a, b = rec.recommend(user, k=10, explain=True), again.recommend(user, k=10, explain=True)
        pd.testing.assert_frame_equal(a.drop(columns=["evidence"]), b.drop(columns=["evidence"]))


def test_choice_keeps_the_ranker_or_fusion_unless_a_signal_beats_it_beyond_noise():
    from crossrec_core.ranker_fit import choose

    rng = np.random.default_rng(0)
    base = rng.random(400)
    near = {"ranker": base, "fusion": base - 0.01, "als": base + rng.normal(0, 0.2, 400) * 0.1 + 0.001}
    assert choose(near, 0)[0] == "ranker"
    worse_ranker = {"ranker": base - 0.3, "fusion": base, "als": base + rng.normal(0.002, 0.05, 400)}
    assert choose(worse_ranker, 0)[0] == "fusion"
    clear = {"ranker": base - 0.3, "fusion": base - 0.3, "als": base}
    assert choose(clear, 0) == ("als", "als beat the ranker and the fusion on validation beyond noise")


@pytest.mark.parametrize("mode,ruled", [("all", False), ("all", True), ("cross", True)])
def test_ranker_lists_by_blocks_equal_the_dense_lists(trained, mode, ruled):
    """The learned ranker's lists scored a block of the catalogue at a time (candidates from each signal's
    streamed top-N, the fallback order from the fusion's row range) are the dense ranked_scores lists: the
    same top-20, scores, contributions and base, with and without rules, shoppers with and without history."""
    from crossrec_core.ranked import explain_at, ranked_scores
    from crossrec_core.rules import PairRule, Rule, Rules

    settings, items, events, cut, ranker, report = trained
    split = make_split(items, events, settings.replace({"retrieval.score_block": 61, "retrieval.score_cells": 0,
                                                        "retrieval.score_cache_mb": 1,
                                                        "retrieval.serving": "exhaustive"}), cut=cut)
    tops = items["cat_top"].value_counts().index
    ids = items["item_id"].to_numpy()
    rules = Rules(pairs=[PairRule(source=str(tops[0]), target=str(tops[1]), multiplier=1.8)], managed=[
        Rule("boost", category=str(tops[2]), multiplier=0.3, name="damp"),
        Rule("exclude", item=str(ids[2]), name="gone"),
        Rule("bury", category=str(tops[3]), name="down"),
        Rule("pin", item=str(ids[9]), position=4, name="pin")]) if ruled else None
    fused = FusedScorer(split.settings, rules=rules).fit(split.train, None, items)
    fused.attach_ranker(ranker, ItemStats.from_data(split.train, sub_codes(items)))
    users = [*split.users("all")[:60], *split.users("cold_users")[:5]]
    ctx = split.context(users)
    assert (np.diff(ctx.X.indptr) == 0).any() and (np.diff(ctx.X.indptr) > 0).any()
    mask = fused.candidate_mask(ctx, mode, exclude=split.exclusions(users))
    idx, score, parts, base = fused.rank(ctx, mode, mask, 20)

    total, cands, lin = ranked_scores(fused, ctx, mask, mode)
    d_idx = fused.top_items(total, mask, 20, ctx)
    safe = np.maximum(d_idx, 0)
    d_score = np.where(d_idx >= 0, np.take_along_axis(total, safe, axis=1), 0.0)
    d_lin = {s: np.where(d_idx >= 0, np.take_along_axis(v, safe, axis=1), 0.0) for s, v in lin.items()}
    d_parts, d_base = explain_at(fused, d_idx, d_score, cands, d_lin)
    assert (idx >= 0).sum() > 0.8 * idx.size
    np.testing.assert_array_equal(idx, d_idx)
    np.testing.assert_array_equal(score, d_score)
    assert set(parts) == set(d_parts)
    for s in parts:
        np.testing.assert_array_equal(parts[s], d_parts[s])
    np.testing.assert_array_equal(base, d_base)


def test_fewest_rounds_within_noise_of_the_best_are_chosen():
    from crossrec_core.ranker_fit import fewest_rounds

    rng = np.random.default_rng(0)
    base = rng.random(600)

    def around(mean: float) -> np.ndarray:  # per-shopper values whose mean gain over base is `mean`
        noise = rng.normal(0, 0.05, 600)
        return base + noise - noise.mean() + mean

    near = {25: around(-0.05), 50: around(0.0), 100: around(0.001), 300: around(0.002)}
    assert fewest_rounds(near, 0) == 50  # 100 and 300 lead by noise only
    clear = {25: around(-0.05), 50: around(-0.03), 100: around(0.0), 300: around(0.0005)}
    assert fewest_rounds(clear, 0) == 100


def test_training_stops_two_tree_counts_past_the_best(trained):
    """The trees are scored at each count of the grid as they grow; two counts in a row without a new best
    end the training (the rest would only be measured to be left out), and the count chosen was scored."""
    from crossrec_core.ranker_fit import ROUND_GRID

    *_, report = trained
    counts = sorted(int(r) for r in report["rounds_ndcg"])
    means = [report["rounds_ndcg"][str(r)] for r in counts]
    best = max(range(len(means)), key=lambda i: (means[i], -i))
    assert counts == [r for r in ROUND_GRID if r <= counts[-1]]
    assert len(counts) - 1 - best <= 2
    if counts[-1] < max(ROUND_GRID):
        assert len(counts) - 1 - best == 2
    assert report["rounds"] in counts and report["rounds"] <= counts[best]
