"""The demo shop generator: shape, realism, determinism and the planted cross-category journeys."""
from __future__ import annotations

import time

import pandas as pd
import pytest

from crossrec_core.demo import PLANTED_JOURNEYS, DemoShop, generate


@pytest.fixture(scope="module")
def timed() -> tuple[DemoShop, float]:
    start = time.perf_counter()
    shop = generate()
    return shop, time.perf_counter() - start


@pytest.fixture(scope="module")
def shop(timed: tuple[DemoShop, float]) -> DemoShop:
    return timed[0]


@pytest.fixture(scope="module")
def events(shop: DemoShop) -> pd.DataFrame:
    """Events with each item's category."""
    return shop.events.merge(shop.items[["item_id", "category"]], on="item_id", how="left", validate="m:1")


def _lift(events: pd.DataFrame, src: str, dst: str) -> float:
    """P(any event in dst after the first purchase in src | bought in src) / P(any event in dst)."""
    first = events[(events["category"] == src) & (events["event_type"] == "purchase")].groupby("user_id")["timestamp"].min()
    to = events[events["category"] == dst]
    base = to["user_id"].nunique() / events["user_id"].nunique()
    later = to.merge(first.rename("first_buy"), left_on="user_id", right_index=True)
    hit = later.loc[later["timestamp"] > later["first_buy"], "user_id"].nunique() / len(first)
    return hit / base


def test_generate_is_fast(timed: tuple[DemoShop, float]) -> None:
    assert timed[1] < 15.0


def test_same_seed_same_frames_other_seed_differs(shop: DemoShop) -> None:
    again = generate(7)
    pd.testing.assert_frame_equal(shop.items, again.items)
    pd.testing.assert_frame_equal(shop.events, again.events)
    pd.testing.assert_frame_equal(shop.users, again.users)
    other = generate(8)
    assert not shop.items.equals(other.items)
    assert not shop.events.equals(other.events)


def test_columns_and_types(shop: DemoShop) -> None:
    assert list(shop.items.columns) == ["item_id", "title", "category", "description", "brand", "price"]
    assert list(shop.events.columns) == ["user_id", "item_id", "event_type", "timestamp"]
    assert list(shop.users.columns) == ["user_id", "profile_text"]
    assert shop.items["item_id"].str.fullmatch(r"P\d{6}").all()
    assert shop.users["user_id"].str.fullmatch(r"U\d{5}").all()
    assert pd.api.types.is_float_dtype(shop.items["price"])
    assert (shop.items["price"] > 0).all()
    assert (shop.items["price"].round(2) == shop.items["price"]).all()
    ts = shop.events["timestamp"]
    assert isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dt.tz) == "UTC"
    assert set(shop.events["event_type"]) == {"view", "cart", "purchase"}
    for col in ("title", "description", "brand"):
        assert (shop.items[col].str.len() > 0).all(), col


def test_counts(shop: DemoShop) -> None:
    levels = shop.items["category"].str.split(" > ")
    assert levels.str.len().eq(2).all()
    assert levels.str[0].nunique() >= 8
    assert shop.items["category"].nunique() >= 40
    assert len(shop.items) >= 3000
    assert len(shop.users) >= 2000
    assert len(shop.events) >= 100_000


def test_ids_unique_and_events_reference_known_ids(shop: DemoShop) -> None:
    assert shop.items["item_id"].is_unique
    assert shop.users["user_id"].is_unique
    assert shop.events["item_id"].isin(shop.items["item_id"]).all()
    assert shop.events["user_id"].isin(shop.users["user_id"]).all()
    assert not shop.events.duplicated().any()


def test_titles_realistic_and_unique(shop: DemoShop) -> None:
    titles = shop.items["title"]
    assert titles.nunique() >= 0.99 * len(titles)
    assert (titles.str.split().str.len() >= 3).all()
    assert not titles.str.contains(r"  |#|\{|\}| ,").any()
    sentences = shop.items["description"].str.count(r"(?<!Dr)\.(?:\s|$)")  # "Dr. Brown's" is no sentence
    assert sentences.between(1, 3).all()
    trail = shop.items[shop.items["category"] == "Shoes > Trail Running Shoes"]
    assert trail["description"].str.contains("trail running and hiking").any()
    medians = shop.items.groupby("category")["price"].median()
    assert medians["Photography > Cameras"] > 10 * medians["Grocery > Snacks"]


def test_funnel(shop: DemoShop) -> None:
    counts = shop.events["event_type"].value_counts()
    assert counts["view"] > counts["cart"] > counts["purchase"] > 0
    assert 0.6 < counts["view"] / len(shop.events) < 0.8
    views = shop.events[shop.events["event_type"] == "view"].groupby(["user_id", "item_id"])["timestamp"].min()
    buys = shop.events[shop.events["event_type"] == "purchase"].set_index(["user_id", "item_id"])["timestamp"]
    joined = buys.to_frame().join(views.rename("first_view"))
    assert (joined["first_view"] < joined["timestamp"]).mean() > 0.95


def test_time_window(shop: DemoShop) -> None:
    ts = shop.events["timestamp"]
    assert ts.max() - ts.min() >= pd.Timedelta(days=90)
    assert ts.max() < pd.Timestamp("2026-11-01", tz="UTC")
    assert ts.min() >= pd.Timestamp("2026-11-01", tz="UTC") - pd.Timedelta(days=120)


def test_activity_is_heavy_tailed(shop: DemoShop) -> None:
    per_user = shop.events.groupby("user_id").size()
    assert per_user.max() > 8 * per_user.median()


def test_cold_start_users_and_profiles(shop: DemoShop) -> None:
    active = set(shop.events["user_id"])
    cold = shop.users[~shop.users["user_id"].isin(active)]
    assert 40 <= len(cold) <= 60
    assert (cold["profile_text"].str.len() > 10).all()
    with_text = shop.users[(shop.users["profile_text"] != "") & shop.users["user_id"].isin(active)]
    assert 150 <= len(with_text) <= 250
    assert (shop.users["profile_text"] == "").sum() == len(shop.users) - len(cold) - len(with_text)


def test_new_items_have_no_events(shop: DemoShop) -> None:
    new = shop.items[~shop.items["item_id"].isin(shop.events["item_id"])]
    assert 0.01 * len(shop.items) <= len(new) <= 0.06 * len(shop.items)
    assert (new["description"].str.len() > 20).all()


def test_planted_journeys(events: pd.DataFrame) -> None:
    categories = set(events["category"])
    assert len(PLANTED_JOURNEYS) >= 6
    assert sum(src.split(" > ")[0] != dst.split(" > ")[0] for src, dst in PLANTED_JOURNEYS) >= 3
    for src, dst in PLANTED_JOURNEYS:
        assert src in categories and dst in categories
        assert _lift(events, src, dst) >= 2.0, (src, dst)


def test_progress_is_reported() -> None:
    calls: list[tuple[float, str]] = []
    small = generate(3, n_items=800, n_users=400, days=95, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(small.events) > 0
    span = small.events["timestamp"].max() - small.events["timestamp"].min()
    assert span >= pd.Timedelta(days=90)
