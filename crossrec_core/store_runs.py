"""The store's run registry and what-if scenarios. Methods of `Store`."""
from __future__ import annotations

import json

import pandas as pd

from .errors import CrossRecError
from .store_base import StoreBase, execute, utcnow



class RunQueries(StoreBase):
    """Training runs (which one serves) and saved what-if scenarios (methods of `Store`)."""

    # ---- runs -------------------------------------------------------------------------------

    def add_run(
        self,
        *,
        name: str,
        kind: str,
        fingerprint: str,
        settings: dict,
        weights: dict,
        metrics: dict,
        duration_s: float,
        artefact_path: str | None,
        serve: bool = True,
    ) -> int:
        """Record a finished run in one transaction; with `serve` it becomes the serving run."""
        with self.transaction() as con:
            if con.execute("SELECT count(*) FROM runs WHERE name = ?", [name]).fetchall()[0][0]:
                raise CrossRecError(f"a run named '{name}' already exists; choose another --name")
            run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()[0][0]
            if serve:
                execute(con, "UPDATE runs SET serving = FALSE WHERE serving")
            execute(con,
                "INSERT INTO runs (run_id, name, created_at, kind, fingerprint, settings, weights, metrics, "
                "duration_s, artefact_path, serving) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, name, utcnow(), kind, fingerprint, json.dumps(settings, default=str),
                 json.dumps(weights), json.dumps(metrics, default=float), duration_s, artefact_path, serve],
            )
        return int(run_id)

    def update_run_metrics(self, name: str, extra: dict) -> None:
        """Add or replace keys of a recorded run's metrics (e.g. the time of a step that ran after recording)."""
        with self.transaction() as con:
            rows = con.execute("SELECT metrics FROM runs WHERE name = ?", [name]).fetchall()
            if not rows:
                raise CrossRecError(f"no run named '{name}'")
            metrics = {**json.loads(rows[0][0] or "{}"), **extra}
            execute(con, "UPDATE runs SET metrics = ? WHERE name = ?", [json.dumps(metrics, default=float), name])

    def runs(self) -> pd.DataFrame:
        """Every run, newest first; JSON columns parsed to dicts."""
        df = self._df("SELECT * FROM runs ORDER BY run_id DESC")
        for col in ("settings", "weights", "metrics"):
            df[col] = df[col].map(lambda s: json.loads(s) if isinstance(s, str) else (s or {}))
        return df

    def run(self, name: str | None = None) -> dict | None:
        """A run by name, or the serving run when `name` is None."""
        df = self.runs()
        if df.empty:
            return None
        row = df[df["name"] == name] if name is not None else df[df["serving"]]
        return None if row.empty else row.iloc[0].to_dict()

    def set_serving(self, name: str) -> None:
        """Make run `name` the serving (live) run, with its audit-log row (so `undo` reverts it)."""
        self.set_live_run(name, f"made run '{name}' live", require_model=False)

    def run_names(self) -> list[str]:
        return self._column("SELECT name FROM runs ORDER BY run_id")

    # ---- scenarios --------------------------------------------------------------------------

    def save_scenario(self, name: str, spec: dict, result: dict | None = None) -> int:
        with self.transaction() as con:
            execute(con, "DELETE FROM scenarios WHERE name = ?", [name])
            sid = con.execute("SELECT coalesce(max(scenario_id), 0) + 1 FROM scenarios").fetchall()[0][0]
            execute(con,
                "INSERT INTO scenarios VALUES (?, ?, ?, ?, ?)",
                [sid, name, utcnow(), json.dumps(spec), json.dumps(result, default=float) if result else None],
            )
        return int(sid)

    def scenarios(self) -> pd.DataFrame:
        df = self._df("SELECT * FROM scenarios ORDER BY created_at DESC")
        for col in ("spec", "result"):
            df[col] = df[col].map(lambda s: json.loads(s) if isinstance(s, str) else None)  # NULL came back as NaN
        return df

    def delete_scenario(self, name: str) -> None:
        with self.transaction() as con:
            execute(con, "DELETE FROM scenarios WHERE name = ?", [name])

