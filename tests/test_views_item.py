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
        facts = item_view.buyers(store, item["item_id"])
    return {"item": item, "user": str(users["user_id"].iloc[0]), "together": together, "similar": similar,
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


def test_search_of_nonsense_finds_nothing(trained_shop):
    with Store(trained_shop, read_only=True) as store:
        assert item_view.search_items(store, "qqqq zzzzxw", 10).empty
        assert item_view.search_items(store, "   ", 10).empty


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
    links = [v for d in at.dataframe for v in d.value.get("title", [])]
    assert links and all(v.startswith("item?item=") for v in links)


def test_item_page_search_opens_an_item(trained_shop, shop, monkeypatch):
    at = run_app(trained_shop, monkeypatch, "item")
    assert not at.exception
    at.text_input(key="item_search").input(_queries(shop["item"]["title"])[2]).run()
    at.selectbox(key="item_hit").select(shop["item"]["item_id"]).run()
    assert not at.exception
    assert at.query_params["item"] == [shop["item"]["item_id"]] or at.query_params["item"] == shop["item"]["item_id"]
    assert at.subheader[0].value.replace("\\", "") == shop["item"]["title"]
