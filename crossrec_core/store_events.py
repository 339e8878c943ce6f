"""The store's event queries: windows of events, one shopper's history, removal by filter, counts,
health and the data fingerprint that keys fitted models. Methods of `Store`."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Sequence

import duckdb
import pandas as pd

from .config import EVENT_TYPES
from .errors import CrossRecError
from .store_base import StoreBase, execute, utcnow



class EventQueries(StoreBase):
    """Events, their removal, stats, health and the data fingerprint (methods of `Store`)."""

    @staticmethod
    def _event_filter(before: str | None, after: str | None, user: str | None, item: str | None
                      ) -> tuple[str, list[Any]]:
        """SQL condition and parameters for events before/after a time (UTC) and/or of a user/item."""
        where, params = [], []
        for flag, value, op in (("--before", before, "<"), ("--after", after, ">")):
            if value is None:
                continue
            try:
                t = pd.Timestamp(value)
            except (ValueError, TypeError):
                t = pd.NaT
            if pd.isna(t):
                raise CrossRecError(f"{flag} '{value}' is not a date or time (ISO 8601, e.g. 2024-01-31)")
            where.append(f"ts {op} ?")
            params.append((t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t).to_pydatetime())
        for col, value in (("user_id", user), ("item_id", item)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if not where:
            raise CrossRecError("give at least one of --before, --after, --user, --item: refusing to remove every event")
        return " AND ".join(where), params

    def count_events(self, *, before: str | None = None, after: str | None = None, user: str | None = None,
                     item: str | None = None) -> int:
        """How many events `delete_events` with the same filters would remove."""
        where, params = self._event_filter(before, after, user, item)
        return int(self._one(f"SELECT count(*) FROM events WHERE {where}", params))

    def delete_events(self, *, before: str | None = None, after: str | None = None, user: str | None = None,
                      item: str | None = None) -> int:
        """Remove the events matching every given filter in one transaction (recorded in the load history);
        the number removed. No filter at all is refused."""
        where, params = self._event_filter(before, after, user, item)
        described = ", ".join(f"{k} {v}" for k, v in (("before", before), ("after", after), ("user", user),
                                                         ("item", item)) if v is not None)
        with self.transaction() as con:
            n = con.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchall()[0][0]
            execute(con, f"DELETE FROM events WHERE {where}", params)
            execute(con, "INSERT INTO ingest_log VALUES (?, ?, ?)",
               [utcnow(), f"events removed ({described})", json.dumps({"notes": [f"removed {n:,} events ({described})"]})])
        return int(n)

    def events(
        self,
        *,
        before: datetime | pd.Timestamp | None = None,
        since: datetime | pd.Timestamp | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Events (user_id, item_id, event_type, ts, value) in a time window, oldest first."""
        where, params = [], []
        if before is not None:
            where.append("ts < ?")
            params.append(pd.Timestamp(before).tz_localize(None) if pd.Timestamp(before).tzinfo else before)
        if since is not None:
            where.append("ts >= ?")
            params.append(pd.Timestamp(since).tz_localize(None) if pd.Timestamp(since).tzinfo else since)
        sql = "SELECT user_id, item_id, event_type, ts, value FROM events"
        if user_ids is not None and len(user_ids) == 1:  # the serving path: one user, an index-free filter
            where.append("user_id = ?")
            params.append(user_ids[0])
            return self._df(sql + " WHERE " + " AND ".join(where) + " ORDER BY ts, item_id", params)
        if user_ids is not None:
            with self._lock:
                self.con.register("wanted_users", pd.DataFrame({"user_id": list(user_ids)}))
                try:
                    sql += " SEMI JOIN wanted_users w USING (user_id)"
                    if where:
                        sql += " WHERE " + " AND ".join(where)
                    return self.con.execute(sql + " ORDER BY ts, user_id, item_id", params).df()
                finally:
                    self.con.unregister("wanted_users")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._df(sql + " ORDER BY ts, user_id, item_id", params)

    def user_events(self, user_id: str) -> pd.DataFrame:
        """One user's history with item details, newest first."""
        return self._df(
            """SELECT e.ts, e.event_type, e.item_id, i.title, i.category, i.cat_top, i.brand, i.price, e.value
               FROM events e JOIN items i USING (item_id) WHERE e.user_id = ? ORDER BY e.ts DESC""",
            [user_id],
        )

    def time_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        with self._lock:
            lo, hi = self.con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]
        return (pd.Timestamp(lo) if lo else None, pd.Timestamp(hi) if hi else None)

    def event_type_counts(self) -> dict[str, int]:
        df = self._df("SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC")
        return {r.event_type: int(r.n) for r in df.itertuples()}

    def funnel(self) -> pd.DataFrame:
        """Distinct users and (user, item) pairs at each event type, in funnel order."""
        df = self._df(
            """SELECT event_type, count(DISTINCT user_id) AS users,
                      count(DISTINCT (user_id, item_id)) AS user_items, count(*) AS events
               FROM events GROUP BY 1"""
        )
        order = {t: i for i, t in enumerate(EVENT_TYPES)}
        return df.sort_values("event_type", key=lambda s: s.map(order)).reset_index(drop=True)

    def stats(self) -> dict[str, Any]:
        """Counts in the shape of `crossrec stats --json` (DESIGN.md)."""
        with self._lock:
            items, users, events = self.con.execute(
                "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM users), (SELECT count(*) FROM events)"
            ).fetchall()[0]
            tops, cats = self.con.execute(
                "SELECT count(DISTINCT cat_top), count(DISTINCT category) FROM items"
            ).fetchall()[0]
        lo, hi = self.time_range()
        iso = lambda t: None if t is None else t.tz_localize("UTC").isoformat().replace("+00:00", "Z")  # noqa: E731
        return {
            "items": int(items),
            "users": int(users),
            "events": int(events),
            "top_level_categories": int(tops),
            "categories": int(cats),
            "event_types": self.event_type_counts(),
            "first_event": iso(lo),
            "last_event": iso(hi),
        }

    def health(self) -> dict[str, Any]:
        """Data-health facts for the Overview page."""
        with self._lock:
            no_text, no_desc, uncategorised, no_events, users_no_events = self.con.execute(
                """SELECT count(*) FILTER (WHERE coalesce(trim(title), '') = ''),
                          count(*) FILTER (WHERE coalesce(trim(description), '') = ''),
                          count(*) FILTER (WHERE cat_top = 'Uncategorised'),
                          count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.item_id = i.item_id)),
                          (SELECT count(*) FROM users u
                           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = u.user_id))
                   FROM items i"""
            ).fetchall()[0]
            log = self.con.execute("SELECT loaded_at, files, report FROM ingest_log ORDER BY loaded_at").fetchall()
        rejected_items = rejected_types = 0
        for _, _, rep in log:
            r = json.loads(rep)
            rejected_items += int(r.get("unknown_items", 0))
            rejected_types += sum(int(v) for v in r.get("unknown_event_types", {}).values())
        return {
            "items_without_title": int(no_text),
            "items_without_description": int(no_desc),
            "items_uncategorised": int(uncategorised),
            "items_without_events": int(no_events),
            "users_without_events": int(users_no_events),
            "events_rejected_unknown_item": rejected_items,
            "events_rejected_unknown_type": rejected_types,
            "loads": len(log),
        }

    @staticmethod
    def load_new_events(con: duckdb.DuckDBPyConnection, now: datetime, report: Any) -> None:
        """Insert the rows of `new_events` (user_id, item_id, event_type, ts naive UTC, value) whose item is in
        the catalog and that are not loaded yet, once each, and the users first seen in them; the counts go
        into the ingest `report` (events on unknown items, added, already loaded, repeated in the file)."""
        unknown = con.execute(
            """SELECT count(*), list(DISTINCT item_id)[1:3] FROM new_events n
               WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = n.item_id)"""
        ).fetchall()[0]
        if unknown[0]:
            report.unknown_items = int(unknown[0])
            report.unknown_item_examples = [f"'{x}'" for x in (unknown[1] or [])]
        rows, before = con.execute("SELECT (SELECT count(*) FROM new_events), (SELECT count(*) FROM events)").fetchall()[0]
        # the file's distinct events on known items, once (counted, then inserted where not loaded yet)
        execute(con, """CREATE OR REPLACE TEMP TABLE crossrec_distinct_events AS
                        SELECT DISTINCT n.user_id, n.item_id, n.event_type, n.ts::TIMESTAMP AS ts, n.value
                        FROM new_events n SEMI JOIN items i ON i.item_id = n.item_id""")
        distinct = con.execute("SELECT count(*) FROM crossrec_distinct_events").fetchall()[0][0]
        execute(con,
            """INSERT INTO events SELECT * FROM crossrec_distinct_events n
               WHERE NOT EXISTS (
                   SELECT 1 FROM events e WHERE e.user_id = n.user_id AND e.item_id = n.item_id
                   AND e.event_type = n.event_type AND e.ts = n.ts AND e.value IS NOT DISTINCT FROM n.value)
               ORDER BY user_id, ts"""
            if before else "INSERT INTO events SELECT * FROM crossrec_distinct_events ORDER BY user_id, ts"
        )  # each load clustered by shopper: a shopper's history read skips the row groups (zonemaps) not holding them
        execute(con, "DROP TABLE crossrec_distinct_events")  # (a failed load's rollback drops it too)
        after = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        report.events_added = after - before
        report.events_repeated_in_file = rows - report.unknown_items - distinct
        report.events_duplicate = distinct - report.events_added
        before_users = con.execute("SELECT count(*) FROM users").fetchall()[0][0]
        execute(con,
            """INSERT INTO users SELECT DISTINCT n.user_id, NULL, NULL, ?::TIMESTAMP FROM new_events n
               SEMI JOIN items i ON i.item_id = n.item_id
               WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = n.user_id)""",
            [now],
        )
        report.users_added += con.execute("SELECT count(*) FROM users").fetchall()[0][0] - before_users

    def ingest_log(self) -> pd.DataFrame:
        return self._df("SELECT loaded_at, files, report FROM ingest_log ORDER BY loaded_at DESC")

    def fingerprint(self) -> str:
        """Changes whenever items or events change: keys cached models and projections."""
        with self._lock:
            row = self.con.execute(
                """SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM events),
                          (SELECT max(ts) FROM events), (SELECT max(added_at) FROM items),
                          (SELECT bit_xor(hash(item_id, title, category, description, brand)) FROM items),
                          (SELECT bit_xor(hash(user_id, item_id, event_type, ts)) FROM events)"""
            ).fetchall()[0]
        return hashlib.sha1(repr(row).encode()).hexdigest()[:16]

