"""Governance in a real browser (Debian Chromium, Playwright) against `streamlit run` on a private copy of
the demo shop (these tests change its rules): a pin rule added on the Rules page puts its item at its
position on the User page and in the export CSV; a saved scenario is promoted after its held-out effect and
undone from History; a four-bad-row upload lists four errors. (Train → the live run is unchanged until
"Make live": tests/e2e/test_pages.py, which trains on the session's server.)"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from .conftest import export_csv, no_exception, open_page, private_copy, serve, shot, stop, wait_idle

pytestmark = pytest.mark.slow
POSITION = 2


@pytest.fixture(scope="module")
def gov(demo_db: Path, demo_facts: dict, tmp_path_factory):
    """A copy of the demo shop with one saved scenario, served on its own port; the facts the tests use."""
    from crossrec_core.store import Store

    path = private_copy(demo_db, tmp_path_factory.mktemp("gov"))
    user = demo_facts["heavy"][0]
    a, b = demo_facts["tops"][:2]
    with Store(path) as store:
        items = store.items().sort_values("item_id")
        bought = set(store.user_events(user)["item_id"])
        pin = items[~items["item_id"].isin(bought)].iloc[-1]
        store.save_scenario("more B", {"rules": {"pairs": [{"source": a, "target": b, "multiplier": 3.0}]},
                                       "weights": None, "users": 300, "k": 20, "mode": "all"})
    proc, base = serve(path, "e2e-gov-server.log")
    yield {"base": base, "user": user, "pin": str(pin["item_id"]), "title": str(pin["title"]), "a": a, "b": b}
    stop(proc)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def live_rule_count(page, base: str) -> int:
    """The number in the Rules page's "Live rules (N)" heading."""
    open_page(page, base, "rules")
    return int(main_text(page).split("Live rules (", 1)[1].split(")", 1)[0])


def press(page, button: str, done: str, shot_name: str) -> None:
    """Click a button, wait for the line that says it is done and the rerun, keep a screenshot."""
    page.get_by_role("button", name=button).click()
    # the success message (a confirmation box may quote the same words)
    page.locator('[data-testid="stAlertContentSuccess"]').get_by_text(done, exact=False).first.wait_for()
    wait_idle(page)
    shot(page, shot_name)


def test_a_pin_rule_puts_the_item_at_its_place_on_the_user_page_and_in_the_export(page, gov):
    open_page(page, gov["base"], "rules")
    no_exception(page)
    box = page.get_by_role("textbox", name="Find the item (id, title or brand)")
    box.fill(gov["pin"])
    box.press("Enter")
    wait_idle(page)
    pos = page.get_by_role("spinbutton", name="Position (1 = first)")
    pos.fill(str(POSITION))
    pos.press("Enter")
    wait_idle(page)
    name = page.get_by_role("textbox", name="Name")
    name.fill("Summer tripods")
    name.press("Enter")
    wait_idle(page)
    press(page, "Add rule", "Added rule", "rules")
    assert "Live rules (1)" in main_text(page)

    open_page(page, gov["base"], "user")
    box = page.get_by_role("textbox", name="User id")
    box.fill(gov["user"])
    box.press("Enter")
    wait_idle(page)
    no_exception(page)
    page.get_by_text("Why #1", exact=False).wait_for()
    ticks = page.locator('[data-testid="stMain"] .ytick text').all_text_contents()  # the list chart: "2. Title"
    at = [t for t in ticks if t.startswith(f"{POSITION}. ")]
    assert at and at[0].startswith(f"{POSITION}. 📌 {gov['title'][:20]}"), ticks  # the pin says so in the title

    frame = pd.read_csv(io.BytesIO(export_csv(page, gov["base"], gov["user"])), encoding="utf-8-sig",
                        dtype={"user_id": str, "item_id": str})
    row = frame[frame["rank"] == POSITION].iloc[0]
    assert row["item_id"] == gov["pin"]
    assert row["applied_rules"] == f"pinned at {POSITION} by rule 'Summer tripods'"


def test_a_scenario_goes_live_after_its_effect_and_undo_takes_it_back(page, gov):
    before = live_rule_count(page, gov["base"])
    open_page(page, gov["base"], "whatif")
    no_exception(page)
    page.get_by_role("button", name="Show its held-out effect first").click()
    sure = page.get_by_text("Yes, add these 1 rule(s) to the live rules")
    sure.wait_for(timeout=600_000)
    wait_idle(page, timeout=600)
    text = main_text(page)
    assert f"boosted ×3 {gov['a']} → {gov['b']}" in text and "95 % interval" in text
    sure.click()
    wait_idle(page)
    drop = page.get_by_text("Yes, promote even though", exact=False)
    if drop.count():  # a drop beyond noise asks for a second, explicit yes
        drop.click()
        wait_idle(page)
    press(page, "Promote to live rules", "is live", "whatif-promote")
    assert live_rule_count(page, gov["base"]) == before + 1

    open_page(page, gov["base"], "history")
    no_exception(page)
    page.get_by_text("Yes, undo change #", exact=False).click()  # undo says which change and asks first
    wait_idle(page)
    press(page, "Undo the last change", "Undid change", "history")
    assert live_rule_count(page, gov["base"]) == before


def test_a_four_bad_row_upload_lists_four_errors(page, gov):
    open_page(page, gov["base"], "data")
    bad = (b"user_id,item_id,event_type,timestamp\nu1,P1,view,2026-01-01T00:00:00Z\nu2,P2,view,yesterday\n"
           b",P3,view,2026-01-01T00:00:00Z\nu4,,view,2026-01-01T00:00:00Z\nu5,P5,view,soon\n")
    uploader = page.locator('[data-testid="stFileUploader"]').nth(1)
    uploader.locator('input[type="file"]').set_input_files(
        files=[{"name": "events.csv", "mimeType": "text/csv", "buffer": bad}])
    page.get_by_text("4 rows with errors", exact=False).first.wait_for()
    wait_idle(page)
    no_exception(page)
    assert page.get_by_role("button", name="Ingest events").is_disabled()
    shot(page, "data-errors")
