"""The Item page and its core (crossrec_core/item_view.py), the URL state (ui/url.py) and the category
palette: typo-tolerant search on a real DuckDB file, an item's neighbours from the fitted model, rules that
touch it, and the dashboard through AppTest (`?item=`, `?user=…&mode=cross`, `?category=`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from crossrec_core import item_view
from crossrec_core.rules import Rule
from crossrec_core.store import Store
from test_app import trained_shop  # noqa: F401  (the session's small trained shop)

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def shop(trained_shop: Path) -> dict:
    """Facts read before any app opens the file: a titled item with buyers and a heavy user."""
    from crossrec_core.train import load_run

    with Store(trained_shop) as store:
        ev = store.events()
        buys = ev[ev["event_type"] == "purchase"]["item_id"].value_counts()
        item = store.item(buys.index[0])
        users = store.user_summary().sort_values("purchases", ascending=False)
        rec = load_run(store, "first")
        together = item_view.goes_with(rec, item["item_id"], 5)
        similar = item_view.instead_of(rec, item["item_id"], 5)
        hits = {q: item_view.search_items(store, q, 10) for q in _queries(item["title"])}
        nonsense, blank = item_view.search_items(store, "qqqq zzzzxw", 10), item_view.search_items(store, "  ", 10)
        facts = item_view.buyers(store, item["item_id"])
        top = store.categories().groupby("cat_top")["events"].sum().idxmax()
    return {"top": top, "nonsense": nonsense, "blank": blank, "item": item, "user": str(users["user_id"].iloc[0]), "together": together, "similar": similar,
            "hits": hits, "buyers": facts, "n_buyers": int(buys.iloc[0])}


def _queries(title: str) -> list[str]:
    word = max(title.split(), key=len).strip(",.").lower()
    typo = word[:-2] + word[-1]  # one letter dropped: 'tripod' -> 'tripd'
    return [title.lower(), title[:8], typo]


def test_search_ranks_exact_then_prefix_and_forgives_typos(shop):
    title = shop["item"]["title"]
    exact, prefix, typo = (shop["hits"][q] for q in _queries(title))
    assert exact["item_id"].iloc[0] == shop["item"]["item_id"] and exact["match"].iloc[0] == 4.0
    assert (prefix["match"] >= 3.0).any() and prefix["title"].iloc[0].startswith(title[:8])
    assert shop["item"]["item_id"] in set(typo["item_id"]), typo  # a dropped letter still finds it
    assert typo["match"].is_monotonic_decreasing


def test_search_of_nonsense_finds_nothing(shop):
    assert shop["nonsense"].empty and shop["blank"].empty


def test_buyers_count_matches_the_event_log(shop):
    b = shop["buyers"]
    assert b["count"] > 0 and b["trend"]["buyers"].sum() >= b["count"]
    assert (b["categories"]["share"] <= 1).all()


def test_goes_with_and_instead_of(shop):
    together, similar = shop["together"], shop["similar"]
    iid = shop["item"]["item_id"]
    assert len(together) and iid not in set(together["item_id"])
    assert together["together"].is_monotonic_decreasing or together["basket"].notna().any()
    assert together["reason"].str.len().min() > 0
    assert len(similar) == 5 and iid not in set(similar["item_id"])
    assert np.all(np.diff(similar["similarity"].to_numpy()) <= 1e-9)  # most alike first


def test_rules_touching_an_item():
    item = {"item_id": "P1", "brand": "Acme", "category": "Electronics > Cameras > Lenses", "price": 20.0}
    assert item_view.touches(Rule(kind="pin", item="P1", position=1), item)
    assert not item_view.touches(Rule(kind="pin", item="P2", position=1), item)
    assert item_view.touches(Rule(kind="exclude", brand="acme"), item)
    assert item_view.touches(Rule(kind="boost", category="Electronics > Cameras", multiplier=2), item)
    assert not item_view.touches(Rule(kind="boost", category="Electro", multiplier=2), item)
    assert item_view.touches(Rule(kind="boost", price_min=10, price_max=30, multiplier=2), item)
    assert not item_view.touches(Rule(kind="boost", price_min=25, multiplier=2), item)


def test_palette_has_no_two_categories_alike():
    from ui.charts import _PALETTE

    def lab(h: str) -> np.ndarray:
        rgb = np.array([int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
        f = np.cbrt(xyz / np.array([0.95047, 1, 1.08883]))
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    L = np.array([lab(c) for c in _PALETTE[:15]])
    d = np.linalg.norm(L[:, None] - L[None], axis=2) + np.eye(15) * 1e9
    assert d.min() > 25  # CIELAB ΔE: clearly different hues for 15 top-level categories (the demo has 15)


# ---- the dashboard --------------------------------------------------------------------------------------


def run_app(db: Path, monkeypatch, page: str, **params) -> AppTest:
    monkeypatch.setenv("CROSSREC_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"views/{page}.py")
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_item_page_opens_from_the_url_and_links_items(trained_shop, shop, monkeypatch):
    at = run_app(trained_shop, monkeypatch, "item", item=shop["item"]["item_id"])
    assert not at.exception, [e.value for e in at.exception]
    assert at.subheader[0].value.replace("\\", "") == shop["item"]["title"]
    tables = [d for d in at.dataframe if "title" in d.value.columns]
    titles = [v for d in tables for v in d.value["title"]]
    assert titles and all(v and not v.startswith("item?") for v in titles)  # the titles themselves, shown as text
    assert all("button" in str(d.proto.columns) for d in tables)  # a click opens the item (ButtonColumn)


def test_a_clicked_title_opens_its_item_page_in_the_same_session(trained_shop, shop, monkeypatch):
    at = run_app(trained_shop, monkeypatch, "user", user=shop["user"])
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["_open_item"] = shop["item"]["item_id"]  # what a title's click records (ui.links)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Item" and at.subheader[0].value.replace("\\", "") == shop["item"]["title"]
    assert at.query_params["item"] in (shop["item"]["item_id"], [shop["item"]["item_id"]])


def test_item_page_search_opens_an_item(trained_shop, shop, monkeypatch):
    at = run_app(trained_shop, monkeypatch, "item")
    assert not at.exception
    at.text_input(key="item_search").input(_queries(shop["item"]["title"])[2]).run()
    at.selectbox(key="item_hit").select(shop["item"]["item_id"]).run()
    assert not at.exception
    assert at.query_params["item"] == [shop["item"]["item_id"]] or at.query_params["item"] == shop["item"]["item_id"]
    assert at.subheader[0].value.replace("\\", "") == shop["item"]["title"]


def test_user_link_opens_that_view_and_pickers_follow(trained_shop, shop, monkeypatch):
    at = run_app(trained_shop, monkeypatch, "user", user=shop["user"], mode="cross")
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="user_id_input").value == shop["user"]
    assert at.session_state["user_mode"] == "New categories only"
    assert any("never touched" in c.value for c in at.caption)
    pick = at.selectbox(key="pick_heavy")
    other = next(o.split(" ·")[0] for o in pick.options if not o.startswith(shop["user"] + " "))
    pick.select(other).run()
    assert at.text_input(key="user_id_input").value == other and at.query_params["user"] in (other, [other])
    at.text_input(key="user_id_input").input(shop["user"]).run()
    assert at.selectbox(key="pick_heavy").value is None  # the picker no longer shows another user


def test_category_link_and_bridges_by_lift(trained_shop, shop, monkeypatch):
    top = shop["top"]
    at = run_app(trained_shop, monkeypatch, "category", category=top)
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cat_pick").value == top
    bridges = [d.value for d in at.dataframe if "lift" in d.value and "title" in d.value]
    if bridges and len(bridges[0]) > 1:
        assert bridges[0]["lift"].is_monotonic_decreasing and (bridges[0]["users"] >= 2).all()


def test_rank_by_lift_prefers_the_specific_item():
    import pandas as pd

    bridges = pd.DataFrame({"item_id": ["best", "niche", "rare"], "users": [50, 10, 1], "share": [.5, .1, .01]})
    base = pd.DataFrame({"item_id": ["best", "niche", "rare"], "base": [.5, .01, .0001]})
    out = item_view.rank_by_lift(bridges, base)
    assert out["item_id"].tolist() == ["niche", "best"]  # the best-seller's lift is 1; 'rare' has one buyer


def test_selection_becomes_a_segment_and_one_rule_change(trained_shop, tmp_path):
    import shutil

    from crossrec_core.governance import history, replace_rules, rule_list
    from crossrec_core.segments import resolve_segment, save_list_segment

    path = tmp_path / "shop.duckdb"
    shutil.copy(trained_shop, path)
    with Store(path) as store:
        ev = store.events()
        ids = ev[ev["event_type"] == "purchase"]["item_id"].unique()[:3].tolist()
        buyers = item_view.buyers_of(store, ids)
        assert set(buyers) == set(ev[(ev["event_type"] == "purchase") & ev["item_id"].isin(ids)]["user_id"])
        save_list_segment(store, "lasso", buyers)
        assert sorted(resolve_segment(store, "lasso")) == sorted(buyers)
        before = len(history(store))
        replace_rules(store, [*rule_list(store), *item_view.selection_rules(ids, "boost", "lasso", 1.5)], note="map")
        assert [r.item for r in rule_list(store)][-3:] == ids and len(history(store)) == before + 1


@pytest.mark.slow
def test_map_switches_to_a_tuned_encoders_projection_computed_once(trained_shop, tmp_path):
    """Issue 15: with a tuned encoder stored, the Map can draw its projection: encoded and mapped on demand
    with progress, stored, then read back."""
    import shutil

    from crossrec_core.cli import main
    from crossrec_core.config import Settings
    from crossrec_core.map_encoders import encoder_names, projection_for_encoder, stored_projection

    path = tmp_path / "shop.duckdb"
    shutil.copy(trained_shop, path)
    assert main(["finetune", "--db", str(path), "--epochs", "3", "--name", "t1", "--quiet"]) == 0
    settings = Settings(db_path=path)
    assert encoder_names(settings) == ["base", "t1"]
    calls = []
    with Store(path) as store:
        assert stored_projection(store, settings, "t1") is None
        items = store.items().sort_values("item_id").reset_index(drop=True)
        frame = projection_for_encoder(store, settings, "t1", items, progress=lambda f, m: calls.append((f, m)))
        assert len(frame) == len(items) and frame[["x", "y"]].notna().all().all()
        again = stored_projection(store, settings, "t1")
        assert again is not None and again["item_id"].tolist() == frame["item_id"].tolist()
        base = stored_projection(store, settings, "base")
        assert base is None or not np.allclose(base["x"].to_numpy(), again["x"].to_numpy())
    assert calls and calls[-1][0] == 1.0 and [f for f, _ in calls] == sorted(f for f, _ in calls)
