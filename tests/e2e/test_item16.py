"""Issue 16's flows in Chromium: search an item (a typo) → its page; a pasted `?user=…&mode=cross` link opens
that view; an item title in a list opens the item's page in the same tab; and `crossrec app` on a first start serves the
dashboard at once with a "building the demo shop" page (issue 16 item 8)."""
from __future__ import annotations

import os
import sys
import time

import pytest

from .conftest import OUT, free_port, launch, no_exception, open_page, shot, stop, wait_idle

pytestmark = pytest.mark.slow

MAIN = '[data-testid="stMain"]'


def test_search_an_item_with_a_typo_opens_its_page(page, server):
    open_page(page, server, "item")
    no_exception(page)
    box = page.get_by_role("textbox", name="Find an item by name, brand or id")
    box.fill("travel tripd")  # 'tripod' misspelt
    box.press("Enter")
    wait_idle(page)
    page.locator(".st-key-item_hit").get_by_role("combobox").click()
    option = page.get_by_role("option").first
    title = option.inner_text().split(" · ")[0]
    assert "tripod" in title.lower()
    option.click()
    wait_idle(page)
    no_exception(page)
    assert page.locator(f"{MAIN} h3").first.inner_text().startswith(title.rstrip("…"))
    assert "item=" in page.url
    for heading in ("Goes with", "Instead of", "Where its buyers go next", "Rules that touch it"):
        assert heading in page.locator(MAIN).inner_text()
    shot(page, "item")


def test_a_pasted_link_opens_that_user_in_new_categories_mode(page, server, demo_facts):
    uid = demo_facts["heavy"][3]
    open_page(page, server, f"user?user={uid}&mode=cross")
    no_exception(page)
    assert page.get_by_role("textbox", name="User id").input_value() == uid
    assert page.get_by_role("tab", name="New categories only").get_attribute("aria-selected") == "true"
    assert "never touched" in page.locator(MAIN).inner_text()
    assert f"user={uid}" in page.url and "mode=cross" in page.url


def test_an_item_title_in_a_list_opens_the_item_page(page, server, demo_facts):
    uid = demo_facts["heavy"][0]
    open_page(page, server, f"user?user={uid}")
    page.get_by_text("Why #1").wait_for()
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # the first row's title: after the row-selection box (~35 px) and the '#' column (~36 px), below the header
    # row (~36 px high)
    x, y = box["x"] + 110, box["y"] + 36 + 17
    page.mouse.move(x, y)  # the grid arms a button cell on hover
    page.wait_for_timeout(500)
    page.mouse.click(x, y)
    page.wait_for_url("**/item?item=*", timeout=60_000)  # in this tab: in-app navigation keeps the session
    wait_idle(page, rerun=False)
    no_exception(page)
    assert len(page.context.pages) == 1
    assert page.locator(f"{MAIN} h1").first.inner_text() == "Item"
    assert "Goes with" in page.locator(MAIN).inner_text()


def test_first_start_serves_the_dashboard_at_once_while_the_demo_is_built(page, tmp_path):
    db = tmp_path / "first" / "demo.duckdb"
    port = free_port()
    env = {**os.environ, "CROSSREC_DB": str(db), "PYTHONUNBUFFERED": "1"}
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc, base = launch([sys.executable, "-m", "crossrec_core.cli", "app", "--port", str(port)], port,
                        OUT.parent / "e2e-first-start.log", env)
    try:
        served = time.perf_counter() - t0
        page.goto(base)
        page.get_by_role("heading", name="Building the demo shop").wait_for(timeout=60_000)
        page.get_by_text("step 1 of 5").or_(page.get_by_text("step 2 of 5")).or_(
            page.get_by_text("step 3 of 5")).first.wait_for(timeout=120_000)
        no_exception(page)
        assert not db.exists()  # nothing half-built in place: the build works on a temporary file
        assert served < 60, served
        shot(page, "first-start")
    finally:
        stop(proc)
    log = (OUT.parent / "e2e-first-start.log").read_text()
    assert "first start" in log and "[demo" in log and "step 1 of 5, generating the shop" in log
