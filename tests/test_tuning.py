"""Each signal tuned on the validation period: the best value wins by a margin, the held-out period is never
read, the time box holds, 0 turns it off, and a training records what it chose and serves with it."""
from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core import tuning
from crossrec_core.config import Settings
from crossrec_core.signals import registry
from crossrec_core.errors import CrossRecError
from crossrec_core.split import prepare_events, time_split
from crossrec_core.store import Store
from crossrec_core.train import train
from crossrec_core.tuning import tune_signals

EASE_ONLY = {"ease": {"lam": [1.0, 30.0, 100.0, 1000.0]}}


@pytest.fixture(scope="module")
def shop(ruled_shop):
    """(items, events before the held-out cut, the cut, settings) of the small ruled shop."""
    settings = Settings(db_path=ruled_shop)
    with Store(ruled_shop, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = store.events()
    cut = time_split(events, settings)
    return items, events[events["ts"] < cut], cut, settings


def _scores(report: dict) -> dict:
    """Every trial's values and validation figures, without its seconds."""
    return {name: [(t["params"], t["ndcg"], t["recall"]) for t in entry["trials"]]
            for name, entry in report["signals"].items()}


def test_a_bad_value_is_replaced_by_the_one_that_is_best_on_validation(shop):
    items, train_events, _, settings = shop
    start = settings.replace({"signals.ease.lam": 1e5, "tuning.grids": EASE_ONLY})
    tuned, report = tune_signals(items, train_events, start)
    ease = report["signals"]["ease"]
    scored = {t["params"]["lam"]: t["ndcg"] for t in ease["trials"]}
    assert set(scored) == {1e5, 1.0, 30.0, 100.0, 1000.0} and not ease["skipped"]
    best = max(scored, key=scored.get)
    assert best != 1e5 and scored[best] > scored[1e5] * (1 + settings.tuning.margin)
    assert ease["chosen"] == {"lam": best} and ease["changed"] and report["changed"] == {"ease.lam": best}
    assert tuned.signals["ease"]["lam"] == best and start.signals["ease"]["lam"] == 1e5  # a new Settings
    assert tuned.replace({"signals.ease.lam": 1e5}) == start  # nothing else moved
    # a margin no trial can clear keeps the settings' value: noise does not move a setting
    strict = start.replace({"tuning.margin": 1.0})
    kept, report = tune_signals(items, train_events, strict)
    assert kept == strict and report["changed"] == {} and report["signals"]["ease"]["chosen"] == {"lam": 1e5}


def test_every_grid_by_default_and_the_report_is_plain_json(shop):
    items, train_events, cut, settings = shop
    tuned, report = tune_signals(items, train_events, settings)
    assert list(report["signals"]) == list(tuning.ORDER)  # cheapest first
    assert report["skipped_for_time"] == [] and 0 < report["seconds"] <= settings.tuning.seconds
    for name, entry in report["signals"].items():
        assert entry["trials"][0]["params"] == entry["start"]
        assert len(entry["trials"]) == 1 + sum(len(v) for v in settings.tuning.grids[name].values())
        assert all(0 <= t["ndcg"] <= 1 and t["seconds"] >= 0 for t in entry["trials"])
        for param, value in entry["chosen"].items():
            assert tuned.signals.get(name, {}).get(param, entry["start"][param]) == value
    assert pd.Timestamp(report["validation"]["to"]) < cut and pd.Timestamp(report["validation"]["from"]) < cut
    assert json.loads(json.dumps(report)) == report


def test_the_held_out_period_is_never_read(tmp_path, monkeypatch):
    """The held-out events shuffled (same times, so the same cut): training tunes on exactly the same trials,
    and the tuner is only ever handed events before the cut."""
    from crossrec_core.demo import generate

    shop = generate(3, n_items=300, n_users=150, days=40)  # the ruled shop's data
    events = shop.events
    cut = time_split(events, Settings())
    after = (prepare_events(events)["ts"] >= cut).to_numpy()
    poisoned = events.copy()
    poisoned.loc[after, "item_id"] = np.random.default_rng(0).permutation(poisoned.loc[after, "item_id"].to_numpy())
    assert after.sum() > 100 and (poisoned["item_id"] != events["item_id"]).sum() > 100

    seen: list[tuple[pd.Timestamp, dict]] = []
    real = tuning.tune_signals

    class Stop(Exception):
        pass

    def spy(items, train_events, settings, *args, **kwargs):
        out = real(items, train_events, settings, *args, **kwargs)
        seen.append((train_events["ts"].max(), out[1]))
        raise Stop  # what follows the tuning is not under test here

    monkeypatch.setattr(tuning, "tune_signals", spy)
    for n, frame in enumerate((events, poisoned)):
        path = tmp_path / f"shop{n}.duckdb"
        with Store(path) as store:
            store.ingest_frames(items=shop.items, events=frame, users=shop.users)
            assert time_split(store.events(), Settings()) == cut
            with pytest.raises(Stop):
                train(store, Settings(db_path=path), baselines=False)
    (last_clean, clean), (last_dirty, dirty) = seen
    assert last_clean < cut and last_dirty < cut and pd.Timestamp(clean["validation"]["to"]) < cut
    assert clean["ran"] and _scores(clean) == _scores(dirty) and clean["changed"] == dirty["changed"]


def test_weight_learning_takes_the_tuned_fits_as_they_are_and_learns_the_same_weights(shop):
    """The tuning fits each signal on the very carve-out weight learning uses: handing those fits over saves
    fitting them again and changes nothing learned."""
    from crossrec_core.train import learn_weights

    items, train_events, _, settings = shop
    kept: dict = {}
    tuned, report = tune_signals(items, train_events, settings, keep=kept)
    assert set(kept) == set(report["signals"]) and report["changed"]
    for name, signal in kept.items():  # each at its chosen values
        assert {p: getattr(signal, p) for p in report["signals"][name]["chosen"]} == report["signals"][name]["chosen"]
    assert learn_weights(items, train_events, tuned, None, fitted=kept) == learn_weights(items, train_events, tuned, None)


def test_a_tiny_time_box_skips_every_trial_and_says_so(shop):
    items, train_events, _, settings = shop
    start = settings.replace({"tuning.seconds": 1e-9})
    tuned, report = tune_signals(items, train_events, start)
    assert tuned == start and report["ran"] and report["changed"] == {}
    assert all(not e["trials"] and not e["changed"] for e in report["signals"].values())
    wanted = sum(len(v) for g in settings.tuning.grids.values() for v in g.values()) + len(settings.tuning.grids)
    assert len(report["skipped_for_time"]) == wanted and "ease: lam 500" in report["skipped_for_time"]


def test_the_time_box_stops_trials_part_way(shop, monkeypatch):
    """A clock where every trial takes one second and nothing else takes any: a 10-second box runs ten trials,
    each signal at least its settings' values within its share of what is left, and reports the rest skipped."""
    now = [0.0]
    judge = tuning._Judge.__call__

    def one_second(self, signal):
        now[0] += 1.0
        return judge(self, signal)

    monkeypatch.setattr(tuning, "_clock", lambda: now[0])
    monkeypatch.setattr(tuning._Judge, "__call__", one_second)
    items, train_events, _, settings = shop
    _, report = tune_signals(items, train_events, settings.replace({"tuning.seconds": 10}))
    ran = {name: len(e["trials"]) for name, e in report["signals"].items()}
    assert ran == {"als": 2, "ease": 2, "graph": 3, "cooc": 3} and report["seconds"] == 10
    assert report["skipped_for_time"][:2] == ["als: regularization 60", "als: regularization 100"]
    assert len(report["skipped_for_time"]) == sum(
        len(v) for g in settings.tuning.grids.values() for v in g.values()) + 4 - 10


def test_seconds_0_turns_tuning_off(shop):
    items, train_events, _, settings = shop
    off = settings.replace({"tuning.seconds": 0, "signals.ease.lam": 1e5})
    tuned, report = tune_signals(items, train_events, off)
    assert tuned is off and report == {"ran": False, "reason": "tuning.seconds is 0: the signals keep the "
                                                              "settings' values"}


@pytest.mark.parametrize("changes,message", [
    ({"tuning.seconds": -1}, "setting tuning.seconds is -1, not a number at least 0"),
    ({"tuning.margin": 2}, "setting tuning.margin is 2, not a number between 0 and 1"),
    ({"tuning.max_users": 0}, "setting tuning.max_users is 0, not a number at least 1"),
    ({"tuning.grids": [1]}, "setting tuning.grids is list, not a mapping"),
    ({"tuning.grids.ease": 5}, "setting tuning.grids.ease is int, not a mapping"),
    ({"tuning.grids.ease.lam": []}, "setting tuning.grids.ease.lam is [], not a non-empty list of numbers"),
    ({"tuning.grids.ease.lam": ["big"]}, "setting tuning.grids.ease.lam is ['big'], not a non-empty list"),
    ({"tuning.grids.ease.lam": [-5]}, "setting tuning.grids.ease.lam is [-5], not a non-empty list"),
])
def test_a_bad_tuning_setting_is_a_one_line_error(changes, message):
    with pytest.raises(CrossRecError) as err:
        Settings().replace(changes)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("changes,message", [
    ({"tuning.grids.nosuch": {"x": [1]}}, "setting tuning.grids names 'nosuch', not a signal (signals: "),
    ({"tuning.grids.ease.lambda": [1]}, "setting tuning.grids.ease.lambda is not a parameter of ease "
                                        "(its parameters: lam, max_items)"),
])
def test_a_grid_naming_no_signal_or_parameter_fails_before_any_fit(shop, changes, message, monkeypatch):
    import crossrec_core.split

    items, train_events, _, settings = shop
    monkeypatch.setattr(crossrec_core.split, "carve_validation", lambda *a, **k: pytest.fail("carved"))
    with pytest.raises(CrossRecError) as err:
        tune_signals(items, train_events, settings.replace(changes))
    assert str(err.value).startswith(message)


def test_a_value_that_cannot_fit_is_reported_not_chosen(shop):
    items, train_events, _, settings = shop
    s = settings.replace({"tuning.grids": {"ease": {"lam": [0.0, 100.0]}}})  # λ 0: more items than shoppers
    tuned, report = tune_signals(items, train_events, s)
    zero, best = report["signals"]["ease"]["trials"][1:]
    assert zero["params"] == {"lam": 0.0} and zero["ndcg"] is None and "EASE cannot invert" in zero["error"]
    assert best["ndcg"] is not None and tuned.signals["ease"]["lam"] in (500.0, 100.0)


def test_tuning_settings_round_trip_through_a_run(tmp_path):
    s = Settings(db_path=tmp_path / "x.duckdb").replace({"tuning.seconds": 30, "tuning.grids.ease": {"lam": (10, 20)}})
    assert s.tuning.grids["ease"] == {"lam": [10, 20]} and s.tuning.grids["als"]  # the other defaults stay
    assert Settings.from_dict(json.loads(s.to_json())) == s


@pytest.fixture(scope="module")
def tuned_run(ruled_shop, tmp_path_factory):
    """A copy of the ruled shop with one learned run (the signals tuned first)."""
    path = tmp_path_factory.mktemp("tuned") / "shop.duckdb"
    shutil.copy(ruled_shop, path)
    shutil.copytree(f"{ruled_shop}.artefacts", f"{path}.artefacts")
    with Store(path) as store:
        train(store, Settings(db_path=path).replace({"ranker.kind": "fusion"}), name="tuned", baselines=False)
    return path


def test_a_training_records_the_tuning_and_serves_with_the_values_it_chose(tuned_run):
    from crossrec_core.runs import load_run

    with Store(tuned_run) as store:
        run = store.run("tuned")
        rec = load_run(store, "tuned")
        given = store.run("first")  # trained with given weights: nothing tuned
    report = run["metrics"]["signal_tuning"]
    assert report["ran"] and report["changed"], report  # ALS's regularisation 30 is far too strong for 150 shoppers
    steps = {s["step"]: s for s in run["metrics"]["steps"]}
    assert "tune the signals" in steps
    refitted = {p["step"] for p in steps["learn the weights"]["parts"]}  # the tuned fits were taken as they are
    untuned = {f"signal: {registry.label(n)}" for n in registry.names()
               if n not in Settings().tuning.grids and n in rec.scorer_.signals_}
    assert refitted == untuned and "signal: bought together" not in refitted, refitted
    stored = Settings.from_dict(run["settings"])
    for path, value in report["changed"].items():
        name, param = path.split(".")
        assert stored.signals[name][param] == value
        assert getattr(rec.scorer_.signals_[name], param) == value  # the served model is the tuned one
    assert pd.Timestamp(report["validation"]["to"]) < pd.Timestamp(run["metrics"]["cut"])
    assert given["metrics"]["signal_tuning"]["ran"] is False


def test_evaluating_the_serving_run_uses_the_signal_values_it_was_tuned_to(tuned_run, monkeypatch):
    import crossrec_core.train as train_mod

    seen = []
    monkeypatch.setattr(train_mod, "evaluate_weights", lambda store, settings, *a, **k: (seen.append(settings), None, None))
    with Store(tuned_run) as store:
        store.set_live_run("tuned", "the tuned run serves")
        changed = store.run("tuned")["metrics"]["signal_tuning"]["changed"]
        train_mod.eval_run(store, Settings(db_path=tuned_run), record=False)
    for path, value in changed.items():
        name, param = path.split(".")
        assert seen[0].signals[name][param] == value


def test_two_runs_compare_each_with_the_signal_values_it_was_trained_with(tuned_run, monkeypatch):
    import crossrec_core.fitting as fitting
    from crossrec_core.deltas import compare_runs_heldout

    fitted_with = []
    real = fitting.fit_on_split
    monkeypatch.setattr(fitting, "fit_on_split",
                        lambda items, events, settings, *a, **k: (fitted_with.append(settings.signals),
                                                                  real(items, events, settings, *a, **k))[1])
    with Store(tuned_run, read_only=True) as store:
        deltas = compare_runs_heldout(store, "first", "tuned")
        first, tuned = (Settings.from_dict(store.run(n)["settings"]).signals for n in ("first", "tuned"))
    assert first != tuned and fitted_with == [first, tuned] and deltas["recall"].users > 0


def test_a_signal_that_needs_item_vectors_is_not_tuned_without_them(shop):
    items, train_events, _, settings = shop
    s = settings.replace({"tuning.grids": {"content": {"min_similarity": [0.3]}, "cooc": {"shrink": [50.0]}}})
    _, report = tune_signals(items, train_events, s)  # the ruled shop has no item vectors
    assert list(report["signals"]) == ["cooc"]


def test_the_runs_page_says_in_shop_words_what_the_tuning_changed(tuned_run, monkeypatch):
    from test_views_item import run_app
    from ui.fmt import fmt_cross_model, fmt_tuning

    with Store(tuned_run, read_only=True) as store:
        report = store.run("tuned")["metrics"]["signal_tuning"]
    said = fmt_tuning(report)
    start = report["signals"]["als"]["start"]["regularization"]
    chosen = report["signals"]["als"]["chosen"]["regularization"]
    assert said.startswith("checked on earlier weeks in ")
    assert f"taste match regularization {start:g} → {chosen:g}" in said
    assert fmt_tuning({"ran": False, "reason": "weights given"}) == ""
    assert fmt_tuning({"ran": True, "seconds": 12.0, "signals": {"ease": {"start": {"lam": 500.0},
                                                                          "chosen": {"lam": 500.0}}}}) \
        == "checked on earlier weeks in 12.0 s; every setting kept"
    assert fmt_cross_model({"cross": {"serves": True}}).startswith("a model of their own")
    assert fmt_cross_model({"cross": {"serves": False}}).startswith("the main model")
    assert fmt_cross_model({"choice": "fusion"}) == ""
    at = run_app(tuned_run, monkeypatch, "runs")
    at = at.selectbox(key="cmp_b").set_value("tuned").run()
    assert not at.exception, [e.value for e in at.exception]
    details = " ".join(m.value for m in at.markdown if "Signal settings" in m.value)
    assert "taste match regularization" in details and "→" in details, details
    assert "New-category lists" not in details  # the fusion serves this run: no cross-mode model to name
