"""The store's governance tables: versioned rule sets, the audit log, named segments and run notes.

Mixed into `Store` (crossrec_core/store.py creates the tables with the rest of the schema). Every
change and its audit row are written in one transaction: the log never misses a change that happened
nor lists one that did not. A database opened read-only by an older CrossRec has none of these tables:
it then has no rules, no history and no segments.
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .errors import CrossRecError
from .store_base import StoreBase, execute, utcnow


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _parse(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else None


_AUDIT = ("""SELECT change_id, changed_at AS "at", what, before_state AS "before", after_state AS "after", note, """
          """undoable, undone FROM audit_log""")


class GovernanceQueries(StoreBase):
    """Rule versions, audit log, segments and run notes (methods of `Store`)."""

    def _has_table(self, name: str) -> bool:
        return bool(self._one("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]))

    # ---- rule sets ------------------------------------------------------------------------------

    def rule_set(self, version: int | None = None) -> tuple[int, list[dict]]:
        """(version, rules as dicts) of the live rule set (the newest version) or of `version`; (0, [])
        before any rule was written."""
        if not self._has_table("rule_versions"):
            return 0, []
        if version is None:
            version = self._one("SELECT max(version) FROM rule_versions")
        if not version:
            return 0, []
        rules = self._one("SELECT rules FROM rule_versions WHERE version = ?", [int(version)])
        if rules is None:
            raise CrossRecError(f"no rule set version {version}")
        return int(version), json.loads(rules)

    def rule_versions(self) -> pd.DataFrame:
        """Every version of the rule set, newest first (version, created_at, rules, note)."""
        if not self._has_table("rule_versions"):
            return pd.DataFrame(columns=["version", "created_at", "rules", "note"])
        df = self._df("SELECT * FROM rule_versions ORDER BY version DESC")
        df["rules"] = df["rules"].map(_parse)
        return df

    def write_rule_set(self, rules: list[dict], *, what: str, note: str = "", before: Any = None,
                       after: Any = None) -> int:
        """A new live version of the rule set and its audit row, in one transaction; the new version."""
        with self.transaction() as con:
            old = con.execute("SELECT coalesce(max(version), 0) FROM rule_versions").fetchall()[0][0]
            new = int(old) + 1
            execute(con, "INSERT INTO rule_versions VALUES (?, ?, ?, ?)", [new, utcnow(), json.dumps(rules), note])
            self._audit(con, what, {"version": int(old), **(before or {})}, {"version": new, **(after or {})},
                        note, undoable=True)
        return new

    # ---- audit log ------------------------------------------------------------------------------

    def _audit(self, con, what: str, before: Any, after: Any, note: str, *, undoable: bool) -> int:
        change = con.execute("SELECT coalesce(max(change_id), 0) + 1 FROM audit_log").fetchall()[0][0]
        execute(con, "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, FALSE)",
           [change, utcnow(), what, _json(before), _json(after), note or "", undoable])
        return int(change)

    def audit_log(self, limit: int | None = None) -> pd.DataFrame:
        """The history, newest first: change_id, at, what, before, after, note, undoable, undone."""
        if not self._has_table("audit_log"):
            return pd.DataFrame(columns=["change_id", "at", "what", "before", "after", "note", "undoable", "undone"])
        sql = f"""{_AUDIT} ORDER BY change_id DESC""" + (f" LIMIT {int(limit)}" if limit else "")
        df = self._df(sql)
        for col in ("before", "after"):
            df[col] = df[col].map(_parse)
        return df

    def last_undoable(self, kinds: tuple[str, ...] | None = None) -> dict | None:
        """The newest change that undo can revert (not undone yet; of `kinds` when given), or None."""
        where = "" if kinds is None else " AND list_contains(?, what)"
        df = self._df(f"{_AUDIT} WHERE undoable AND NOT undone{where} ORDER BY change_id DESC LIMIT 1",
                      None if kinds is None else [list(kinds)]) if self._has_table("audit_log") else pd.DataFrame()
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["before"], row["after"] = _parse(row["before"]), _parse(row["after"])
        return row

    def undo_rule_set(self, change: dict, note: str) -> int:
        """Revert a rule-set change: its `before` version becomes live again (as a new version)."""
        _, rules = self.rule_set(int(change["before"]["version"])) if change["before"]["version"] else (0, [])
        with self.transaction() as con:
            old = con.execute("SELECT coalesce(max(version), 0) FROM rule_versions").fetchall()[0][0]
            execute(con, "INSERT INTO rule_versions VALUES (?, ?, ?, ?)", [int(old) + 1, utcnow(), json.dumps(rules), note])
            self._close_change(con, change, {"version": int(old)}, {"version": int(old) + 1}, note)
        return int(old) + 1

    def undo_live_run(self, change: dict, note: str) -> None:
        """Revert a live-run change: the run live before it is live again (or none)."""
        name = change["before"].get("run")
        if name is None:  # every list is served by the live run: none live would break recommend and export
            raise CrossRecError(f"cannot undo change {int(change['change_id'])}: it made run "
                                f"'{change['after'].get('run')}' live, with none live before, and undoing it "
                                "would leave no live run; make another run live instead (`crossrec runs promote "
                                "NAME`); `crossrec rules undo` still reverts the rules")
        with self.transaction() as con:
            if name is not None and not con.execute("SELECT count(*) FROM runs WHERE name = ?", [name]).fetchall()[0][0]:
                raise CrossRecError(f"cannot undo: run '{name}', live before, has been deleted since")
            execute(con, "UPDATE runs SET serving = (name IS NOT DISTINCT FROM ?)", [name])
            self._close_change(con, change, change["after"], change["before"], note)

    def _close_change(self, con, change: dict, before: Any, after: Any, note: str) -> None:
        execute(con, "UPDATE audit_log SET undone = TRUE WHERE change_id = ?", [int(change["change_id"])])
        self._audit(con, "undo", before, {**(after or {}), "undid": int(change["change_id"])}, note, undoable=False)

    # ---- live run -------------------------------------------------------------------------------

    def set_live_run(self, name: str | None, note: str = "", *, require_model: bool = True) -> None:
        """Make run `name` live (None: no live run), with its audit row, in one transaction."""
        with self.transaction() as con:
            rows = [] if name is None else con.execute("SELECT artefact_path FROM runs WHERE name = ?",
                                                       [name]).fetchall()
            if name is not None and not rows:
                raise CrossRecError(f"no run named '{name}'")
            if rows and require_model and rows[0][0] is None:
                raise CrossRecError(f"run '{name}' has no fitted model (it was an evaluation); choose a trained run")
            old = con.execute("SELECT name FROM runs WHERE serving").fetchall()
            before = old[0][0] if old else None
            execute(con, "UPDATE runs SET serving = (name IS NOT DISTINCT FROM ?)", [name])
            self._audit(con, "live run", {"run": before}, {"run": name}, note, undoable=True)

    def set_run_note(self, name: str, note: str) -> None:
        with self.transaction() as con:
            if not con.execute("SELECT count(*) FROM runs WHERE name = ?", [name]).fetchall()[0][0]:
                raise CrossRecError(f"no run named '{name}'")
            before = con.execute("SELECT note FROM runs WHERE name = ?", [name]).fetchall()[0][0]
            con.execute("UPDATE runs SET note = ? WHERE name = ?", [note, name]).fetchall()
            self._audit(con, "run note", {"run": name, "note": before}, {"run": name, "note": note}, "", undoable=False)

    def delete_run_row(self, name: str, note: str = "") -> str | None:
        """Remove a run's row (never the live one); its model folder (relative name) for the caller to remove."""
        with self.transaction() as con:
            rows = con.execute("SELECT serving, artefact_path FROM runs WHERE name = ?", [name]).fetchall()
            if not rows:
                raise CrossRecError(f"no run named '{name}'")
            if rows[0][0]:
                raise CrossRecError(f"run '{name}' is live; make another run live first (`crossrec runs promote`)")
            con.execute("DELETE FROM runs WHERE name = ?", [name]).fetchall()
            self._audit(con, "run deleted", {"run": name}, None, note, undoable=False)
        return rows[0][1]

    # ---- catalog look-ups for rules --------------------------------------------------------------

    def has_item(self, item_id: str) -> bool:
        return bool(self._one("SELECT count(*) FROM items WHERE item_id = ?", [item_id]))

    def brand_name(self, brand: str) -> str | None:
        """The brand as the catalog spells it (case-insensitive match), or None."""
        return self._one("SELECT brand FROM items WHERE lower(brand) = lower(?) LIMIT 1", [brand])

    # ---- segments -------------------------------------------------------------------------------

    def put_segment(self, name: str, spec: dict, user_ids: list[str] | None = None, note: str = "") -> None:
        """Save (or replace) a named segment, a rule spec or a list of shopper ids, with its audit row
        (undoable: the segment as it was comes back)."""
        with self.transaction() as con:
            before = self._segment_state(con, name)
            self._write_segment(con, name, spec, user_ids)
            after = {"segment": name, "spec": spec, "users": len(dict.fromkeys(user_ids or []))}
            self._audit(con, "segment", before, after, note or f"saved segment '{name}'", undoable=True)

    def _segment_state(self, con, name: str) -> dict:
        """A segment as the audit log keeps it for undo: its spec and listed shoppers (spec None: none)."""
        row = con.execute("SELECT spec FROM segments WHERE name = ?", [name]).fetchall()
        users = [u for (u,) in con.execute("SELECT user_id FROM segment_users WHERE segment = ? ORDER BY user_id",
                                           [name]).fetchall()]
        return {"segment": name, "spec": _parse(row[0][0]) if row else None, "users": users}

    @staticmethod
    def _write_segment(con, name: str, spec: dict | None, user_ids: list[str] | None) -> None:
        execute(con, "DELETE FROM segments WHERE name = ?", [name])
        execute(con, "DELETE FROM segment_users WHERE segment = ?", [name])
        if spec is None:
            return
        execute(con, "INSERT INTO segments VALUES (?, ?, ?)", [name, utcnow(), json.dumps(spec)])
        if user_ids:
            con.register("new_members", pd.DataFrame({"user_id": list(dict.fromkeys(user_ids))}))
            execute(con, "INSERT INTO segment_users SELECT ?, user_id FROM new_members", [name])
            con.unregister("new_members")

    def undo_segment(self, change: dict, note: str) -> None:
        """Revert a segment change: the segment as it was before (or no segment of that name)."""
        before = change["before"]
        with self.transaction() as con:
            now = self._segment_state(con, before["segment"])
            self._write_segment(con, before["segment"], before.get("spec"), before.get("users"))
            self._close_change(con, change, {**now, "users": len(now["users"])},
                               {**before, "users": len(before.get("users") or [])}, note)

    def segments(self) -> pd.DataFrame:
        """Every saved segment (name, created_at, spec), with its number of listed shoppers."""
        if not self._has_table("segments"):
            return pd.DataFrame(columns=["name", "created_at", "spec", "listed"])
        df = self._df("""SELECT s.name, s.created_at, s.spec, count(u.user_id) AS listed FROM segments s
                         LEFT JOIN segment_users u ON u.segment = s.name GROUP BY ALL ORDER BY s.name""")
        df["spec"] = df["spec"].map(_parse)
        return df

    def segment_spec(self, name: str) -> dict | None:
        if not self._has_table("segments"):
            return None
        return _parse(self._one("SELECT spec FROM segments WHERE name = ?", [name]))

    def delete_segment(self, name: str, note: str = "") -> None:
        """Delete a segment, with its audit row (undoable)."""
        with self.transaction() as con:
            before = self._segment_state(con, name)
            if before["spec"] is None:  # nothing to delete: no change, so no audit row for undo to "undo"
                raise CrossRecError(f"no segment '{name}' (see `crossrec segments list`)")
            self._write_segment(con, name, None, None)
            self._audit(con, "segment", before, {"segment": name, "spec": None}, note or f"deleted segment '{name}'",
                        undoable=True)

    def segment_list(self, name: str) -> list[str]:
        return self._column("SELECT user_id FROM segment_users WHERE segment = ? ORDER BY user_id", [name])

    def users_buying(self, category: str, days: int | None = None) -> list[str]:
        """Shoppers who carted or bought in `category` (top level, level-2 path or full path), within the
        `days` before the newest event when given."""
        sql = """SELECT DISTINCT e.user_id FROM events e JOIN items i USING (item_id)
                 WHERE (i.cat_top = ? OR i.cat_sub = ? OR i.category = ?)
                   AND e.event_type IN ('cart', 'purchase')"""
        params: list[Any] = [category] * 3
        if days is not None:
            sql += " AND e.ts >= (SELECT max(ts) FROM events) - to_days(?)"
            params.append(int(days))
        return self._column(sql + " ORDER BY 1", params)
