"""The serving API on a small real demo database: modes, contributions, cold start, real-time updates."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.demo import generate
from crossrec_core.encoder import Encoder, encode_items
from crossrec_core.errors import CrossRecError
from crossrec_core.recommender import Recommender
from crossrec_core.scorer import PairRule, Rules
from crossrec_core.signals.registry import names
from crossrec_core.store import Store

SIGNALS = names()

OUTDOOR_TOPS = {"Sports & Outdoors", "Shoes"}


@pytest.fixture(scope="module")
def shop_db(small_shop_db):
    return small_shop_db


@pytest.fixture(scope="module")
def rec(shop_db):
    store = Store(shop_db, read_only=True)  # read-only: CLI subprocesses may read it too
    yield Recommender(Settings(db_path=shop_db)).fit(store)
    store.close()


def _user_with_history(rec, min_tops=1, max_tops=3):
    summary = rec.store.user_summary()
    pick = summary[(summary["purchases"] >= 2) & summary["top_categories"].between(min_tops, max_tops)]
    return pick["user_id"].iloc[0]


def test_contributions_add_up_to_score(rec):
    user = _user_with_history(rec)
    df = rec.recommend(user, k=20, explain=True)
    assert len(df) == 20
    np.testing.assert_allclose(df[list(SIGNALS)].sum(axis=1), df["score"], atol=1e-6)
    assert df["score"].is_monotonic_decreasing
    assert (df["reason"].str.len() > 10).all()


def test_cross_mode_only_new_top_categories(rec):
    user = _user_with_history(rec)
    hist = rec.store.user_events(user)
    owned_tops = set(hist.loc[hist["event_type"].isin(["cart", "purchase"]), "cat_top"])
    df = rec.recommend(user, k=20, mode="cross")
    assert len(df) > 0
    assert not (set(df["cat_top"]) & owned_tops)


def test_cross_mode_skips_bought_or_carted_categories_but_not_only_viewed_ones(rec):
    """"New" means no cart or purchase in the top-level category: a view alone does not count."""
    found = 0
    for user in rec.store.user_summary().sort_values("events", ascending=False)["user_id"][:60]:
        hist = rec.store.user_events(user)
        owned = set(hist.loc[hist["event_type"].isin(["cart", "purchase"]), "cat_top"])
        viewed_only = set(hist["cat_top"]) - owned
        if not viewed_only or not owned:
            continue
        tops = set(rec.recommend(user, k=200, mode="cross")["cat_top"])
        assert not tops & owned
        found += bool(tops & viewed_only)
    assert found > 0


def test_target_mode_only_that_category(rec):
    user = _user_with_history(rec)
    df = rec.recommend(user, k=10, mode="target", category="Photography")
    assert len(df) > 0 and set(df["cat_top"]) == {"Photography"}
    sub = rec.recommend(user, k=5, mode="target", category="photography > lenses")  # case-insensitive path
    assert set(sub["category"]) == {"Photography > Lenses"}


def test_bought_items_are_excluded(rec):
    user = _user_with_history(rec)
    hist = rec.store.user_events(user)
    bought = set(hist.loc[hist["event_type"] == "purchase", "item_id"])
    df = rec.recommend(user, k=50)
    assert not (set(df["item_id"]) & bought)


def test_zero_weight_removes_a_signal(rec):
    user = _user_with_history(rec)
    weights = {**rec.weights, "popularity": 0.0}
    without = rec.with_weights(weights).recommend(user, k=20)
    assert (without["popularity"] == 0).all()
    only_pop = rec.with_weights({s: (1.0 if s == "popularity" else 0.0) for s in SIGNALS}).recommend(user, k=20)
    # popularity alone ranks every user the same way: the list must differ from the fused one
    assert list(only_pop["item_id"]) != list(without["item_id"])
    assert (only_pop[[s for s in SIGNALS if s != "popularity"]] == 0).all().all()


def test_pair_rule_boosts_target_category(rec):
    user = _user_with_history(rec)
    tops = set(rec.store.user_events(user)["cat_top"])
    source = sorted(tops)[0]
    target = "Pets" if "Pets" not in tops else "Books"
    base = rec.recommend(user, k=20)
    boosted = rec.with_weights(rules=Rules(pairs=[PairRule(source, target, 5.0)])).recommend(user, k=20)
    assert (boosted["cat_top"] == target).sum() > (base["cat_top"] == target).sum()
    np.testing.assert_allclose(boosted[list(SIGNALS)].sum(axis=1), boosted["score"], atol=1e-6)


def test_cold_start_profile_text_matches(rec):
    df = rec.recommend_for_profile("trail running and hiking in the mountains", k=20, explain=True)
    outdoor = df["cat_top"].isin(OUTDOOR_TOPS).mean()
    assert outdoor >= 0.6, df[["title", "category"]]


def test_cold_start_user_from_store(rec):
    summary = rec.store.user_summary()
    cold = summary[(summary["events"] == 0) & summary["has_profile_text"]]["user_id"].iloc[0]
    df = rec.recommend(cold, k=10, explain=True)
    assert len(df) == 10 and (df["content"] > 0).any()


def test_query_and_seed_contexts(rec):
    q = rec.recommend_for_query("camera lens", k=10)
    assert (q["cat_top"] == "Photography").mean() >= 0.5
    item = rec.store.items().query("category == 'Photography > Cameras'")["item_id"].iloc[0]
    seeds = rec.recommend_for_items([item], k=10, explain=True)
    assert item not in set(seeds["item_id"]) and len(seeds) == 10


def test_bad_input_is_a_clear_error(rec):
    with pytest.raises(CrossRecError, match="unknown user 'nobody'"):
        rec.recommend("nobody")
    with pytest.raises(CrossRecError, match="unknown category 'Spaceships'"):
        rec.recommend(_user_with_history(rec), mode="target", category="Spaceships")
    with pytest.raises(CrossRecError, match="empty query"):
        rec.recommend_for_query("   ")
    with pytest.raises(CrossRecError, match="unknown item"):
        rec.recommend_for_items(["nope"])


def test_new_item_without_events_reaches_lists_through_content(tmp_path):
    path = tmp_path / "copy.duckdb"
    shop = generate(3, n_items=700, n_users=500, days=60)
    new_item = pd.DataFrame([{"item_id": "NEW-1", "title": "Trailblazer X Trail Running Shoe for Hiking",
                              "category": "Shoes > Trail Running Shoes", "description": "A trail running and hiking shoe.",
                              "brand": "Trailblazer", "price": 129.0}])
    with Store(path) as store:
        store.ingest_frames(items=pd.concat([shop.items, new_item]), events=shop.events, users=shop.users)
        encode_items(store, Encoder())
        rec = Recommender(Settings(db_path=path)).fit(store)
        df = rec.recommend_for_profile("trail running and hiking", k=20)
    assert "NEW-1" in set(df["item_id"])


def test_new_event_changes_next_list_without_refit(tmp_path):
    path = tmp_path / "live.duckdb"
    shop = generate(3, n_items=700, n_users=500, days=60)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        encode_items(store, Encoder())
        rec = Recommender(Settings(db_path=path)).fit(store)
        user = _user_with_history(rec, 1, 1)
        assert "Photography" not in set(store.user_events(user)["cat_top"])
        before = rec.recommend(user, k=20, mode="target", category="Photography")
        camera = store.items().query("category == 'Photography > Cameras'")["item_id"].iloc[0]
        last = store.user_events(user)["ts"].max()
        store.ingest_frames(events=pd.DataFrame([{"user_id": user, "item_id": camera, "event_type": "purchase",
                                                  "timestamp": pd.Timestamp(last, tz="UTC") + pd.Timedelta(hours=1)}]))
        after = rec.recommend(user, k=20, mode="target", category="Photography", explain=True)
    assert list(before["item_id"]) != list(after["item_id"])
    assert camera not in set(after["item_id"])  # just bought: excluded
    collaborative = ["cooc", "graph", "content"]
    assert after[collaborative].to_numpy().sum() > before[collaborative].to_numpy().sum()
    evidence = [e["item_id"] for ev in after["evidence"] for sig in ev.values() for e in sig if "item_id" in e]
    assert camera in evidence  # the new purchase is named as the evidence


def test_save_and_load_round_trip_gives_the_same_lists_in_every_mode(rec, tmp_path):
    """The model folder holds arrays, JSON and Parquet only, and serves exactly the lists it was saved with."""
    users = rec.store.user_summary().query("events > 0")["user_id"].head(40).tolist()
    folder = rec.save(tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == ["data.events.parquet", "items.parquet", "model.json", "model.npz"]
    again = Recommender.load(folder, rec.store)
    top = rec.items_["cat_top"].iloc[0]
    for mode, category in (("all", None), ("cross", None), ("target", top)):
        for (u, a), (_, b) in zip(rec.recommend_batch(users, k=10, mode=mode, category=category),
                                  again.recommend_batch(users, k=10, mode=mode, category=category)):
            pd.testing.assert_frame_equal(a, b, obj=f"{mode} list of {u}")
    seeds = rec.items_["item_id"].iloc[:2].tolist()
    pd.testing.assert_frame_equal(rec.recommend_for_items(seeds, k=10, explain=True),
                                  again.recommend_for_items(seeds, k=10, explain=True))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "crossrec_core.cli", *args], capture_output=True, text=True)


def test_cli_recommend_json_and_errors(shop_db, rec):
    summary = rec.store.user_summary()
    user = summary[summary["purchases"] >= 2]["user_id"].iloc[0]
    out = _cli("recommend", "--db", str(shop_db), "--user", user, "--k", "5", "--json", "--quiet")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc) == 5 and set(doc[0]) == {"rank", "item_id", "title", "category", "score", "base",
                                             "contributions", "reason"}
    for r in doc:  # the JSON contract: contributions (one per signal, plus context) and base add up to the score
        assert {*SIGNALS, "context"} <= set(r["contributions"])
        assert sum(r["contributions"].values()) + r["base"] == pytest.approx(r["score"], abs=1e-6)
    assert abs(sum(doc[0]["contributions"].values()) - doc[0]["score"]) < 1e-6
    for args, msg in ((["--user", "nobody"], "unknown user 'nobody'"),
                      (["--user", user, "--mode", "target"], "--mode target needs --category"),
                      (["--user", user, "--mode", "target", "--category", "Spaceships"], "unknown category"),
                      (["--query", " "], "empty query")):
        bad = _cli("recommend", "--db", str(shop_db), "--quiet", *args)
        assert bad.returncode == 2, bad.stderr
        assert msg in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) <= 2  # the reason (plus the 'no trained run' notice)


def test_cyclist_and_coffee_profile_covers_both_interests_with_few_variants(rec):
    """The cold-start box's own example: a cycling item appears, and no product family fills the list."""
    from crossrec_core.recommender import split_interests
    from crossrec_core.variants import family_codes

    text = "keen road cyclist who drinks a lot of coffee"
    assert split_interests(text) == ["keen road cyclist", "drinks a lot of coffee"]
    df = rec.recommend_for_profile(text, k=20, explain=True)
    assert len(df) == 20 and list(df["rank"]) == list(range(1, 21))
    assert df["category"].str.contains("Bike|Cycl", case=False).any()
    assert df["title"].str.contains("coffee", case=False).any()
    fam = pd.Series(family_codes(rec.items_), index=rec.items_.sort_values("item_id")["item_id"].to_numpy())
    assert fam[df["item_id"]].value_counts().max() <= 2


def test_cli_recommend_profile_gives_the_user_pages_cold_start_list(shop_db, rec):
    """`crossrec recommend --profile TEXT` is the cold-start box: interests split and interleaved, not one query."""
    text = "keen road cyclist who drinks a lot of coffee"
    out = _cli("recommend", "--db", str(shop_db), "--profile", text, "--k", "10", "--json", "--quiet")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    page = rec.recommend_for_profile(text, k=10)
    assert [r["item_id"] for r in doc] == page["item_id"].tolist()
    query = rec.recommend_for_query(text, k=10)
    assert [r["item_id"] for r in doc] != query["item_id"].tolist()  # --query stays a single-intent search
    bad = _cli("recommend", "--db", str(shop_db), "--quiet", "--profile", "  ")
    assert bad.returncode == 2 and "empty profile text" in bad.stderr
    both = _cli("recommend", "--db", str(shop_db), "--quiet", "--profile", text, "--query", text)
    assert both.returncode == 2 and "exactly one of --user, --items, --query or --profile" in both.stderr
