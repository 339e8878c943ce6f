"""Issue 12 (4) in a real browser: `crossrec app` listens on 127.0.0.1 only unless --host says otherwise."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import free_port, launch, no_exception, open_page, stop

pytestmark = pytest.mark.slow


@pytest.fixture
def small_db(tmp_path) -> Path:
    from crossrec_core.demo import generate
    from crossrec_core.store import Store

    path = tmp_path / "small.duckdb"
    shop = generate(3, n_items=150, n_users=80, days=30)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
    return path


def test_crossrec_app_is_reachable_on_127_0_0_1_and_not_on_another_address(page, small_db, tmp_path):
    port = free_port()
    crossrec = Path(sys.executable).parent / "crossrec"
    proc, base = launch([str(crossrec), "app", "--db", str(small_db), "--port", str(port)], port,
                        tmp_path / "app.log")
    try:
        open_page(page, base)
        no_exception(page)
        assert "items" in page.locator('[data-testid="stSidebar"]').inner_text()
        # 127.0.0.2 is this machine too (the loopback network): a server bound to every interface answers there
        with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED"):
            page.goto(f"http://127.0.0.2:{port}/", timeout=10_000)
    finally:
        stop(proc)
