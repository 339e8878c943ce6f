"""Honest deltas: paired-bootstrap intervals on every what-if and run comparison, a per-rule breakdown,
plain metric names, and a scenario promoted to the live rules only after its held-out effect is known."""
from __future__ import annotations

import numpy as np

from crossrec_core import governance
from crossrec_core.config import Settings
from crossrec_core.deltas import compare_runs_heldout, paired_deltas, rule_breakdown
from crossrec_core.metric_names import described, label
from crossrec_core.rules import PairRule, Rules
from crossrec_core.runs import compare_runs, serving_recommender
from crossrec_core.signals.registry import names
from crossrec_core.store import Store
from crossrec_core.train import train
from crossrec_core.whatif import simulate

SIGNALS = names()


def test_metric_names_in_one_place():
    assert described("recall", 20) == "Recall@20: share of a shopper's later purchases found in the top 20"
    assert label("cross_recall", 10) == "New-category recall@10" and label("unknown") == "unknown"


def test_a_delta_that_crosses_zero_is_within_noise():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    same = paired_deltas({"a": {"recall": a}, "b": {"recall": a + rng.normal(0, 0.1, 300)}}, "a", "b", k=20)
    better = paired_deltas({"a": {"recall": a}, "b": {"recall": a + 0.2}}, "a", "b", k=20)
    assert same["recall"].within_noise and same["recall"].low < 0 < same["recall"].high
    assert not better["recall"].within_noise and better["recall"].low > 0.19
    assert better["recall"].verdict().endswith(": up") and "within noise" in same["recall"].verdict()


def test_whatif_deltas_carry_intervals_and_a_per_rule_breakdown(ruled_copy):
    with Store(ruled_copy, read_only=True) as store:
        rec = serving_recommender(store)
        tops = store.categories()["cat_top"].unique()
        rules = Rules(pairs=[PairRule(tops[0], tops[1], 0.0), PairRule(tops[1], tops[2], 1.0)])
        res = simulate(rec, rules, n_users=40)
        nothing = simulate(rec, Rules(), n_users=10)
        parts = rule_breakdown(rec, rules)
    d = res.deltas["recall"]
    assert d.low <= d.diff <= d.high and d.users > 0 and d.within_noise == (d.low <= 0 <= d.high)
    assert abs(d.diff - (res.metric_delta["recall"][1] - res.metric_delta["recall"][0])) < 1e-9
    assert nothing.deltas["recall"].diff == 0 and nothing.deltas["recall"].within_noise
    assert [p["what"] for p in parts] == [f"{tops[0]} → {tops[1]}", f"{tops[1]} → {tops[2]}"]
    assert parts[1]["deltas"]["recall"]["diff"] == 0  # a ×1 pair moves nothing
    assert set(res.to_dict()["deltas"]["recall"]) >= {"diff", "low", "high", "within_noise", "label"}


def test_run_comparison_pairs_the_same_shoppers(ruled_copy):
    with Store(ruled_copy) as store:
        train(store, Settings(db_path=ruled_copy), name="flat", learn=False, baselines=False, promote=False,
              weights={s: 1.0 for s in SIGNALS})
        deltas = compare_runs_heldout(store, "first", "flat")
        cmp = compare_runs(store, "first", "flat", n_users=20, deltas=True)
        assert store.run()["name"] == "first"
    assert {"recall", "ndcg"} <= set(deltas) and deltas["recall"].users > 0
    assert all(d.low <= d.diff <= d.high for d in deltas.values())
    assert cmp["deltas"]["recall"] == deltas["recall"].to_dict() and cmp["users_compared"] == 20


def test_scenario_promotion_shows_its_effect_then_changes_the_live_rules_and_undo_restores(ruled_copy):
    with Store(ruled_copy) as store:
        tops = store.categories()["cat_top"].unique()
        store.save_scenario("less of it", {"rules": Rules(pairs=[PairRule(tops[0], tops[1], 0.5)]).to_dict()})
        effect = governance.scenario_effect(store, "less of it")
        assert effect["rules"] == [f"damped ×0.5 {tops[0]} → {tops[1]}"]
        assert "within_noise" in effect["deltas"]["recall"]
        governance.promote_scenario(store, "less of it")
        live = governance.rule_list(store)
        assert [(r.kind, r.from_category, r.category, r.multiplier, r.name) for r in live] == [
            ("boost", tops[0], tops[1], 0.5, f"less of it: {tops[0]} → {tops[1]}")]
        assert store.audit_log()["what"].iloc[0] == "scenario promotion"
        governance.undo(store)
        assert governance.rule_list(store) == []
