"""`Store.version` counts committed writes (the dashboard keys its caches on it): every write path bumps it
once, a read or a rolled-back write does not."""
from __future__ import annotations

import pandas as pd
import pytest

from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store

ITEMS = pd.DataFrame([{"item_id": "A", "title": "Spade", "category": "Garden > Tools"},
                      {"item_id": "B", "title": "Rake", "category": "Garden > Tools"}])
EVENTS = pd.DataFrame([{"user_id": "u1", "item_id": "A", "event_type": "purchase", "timestamp": "2026-10-01T10:00:00Z"},
                       {"user_id": "u1", "item_id": "B", "event_type": "view", "timestamp": "2026-10-02T10:00:00Z"}])


def test_store_version_counts_committed_writes(tmp_path):
    with Store(tmp_path / "shop.duckdb") as store:
        assert store.version == 0
        store.ingest_frames(items=ITEMS, events=EVENTS)
        assert store.version == 1
        store.stats(), store.user_summary(), store.runs()  # reads change nothing
        assert store.version == 1
        store.save_scenario("s", {"rules": {"pairs": []}})
        store.delete_scenario("s")
        assert store.version == 3
        assert store.delete_events(item="B") == 1
        assert store.version == 4
        with pytest.raises(CrossRecError):
            store.set_serving("no such run")  # refused inside its transaction: rolled back, no new version
        with pytest.raises(RuntimeError), store.transaction() as con:
            con.execute("DELETE FROM events")
            raise RuntimeError("stop")
        assert store.version == 4 and store.stats()["events"] == 1
