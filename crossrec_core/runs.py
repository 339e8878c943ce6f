"""The run registry: run names, where a run's model lives, which run is live, loading and comparing runs.

A run's name is a label (stored as data, never a path). Its model lives in `<db>.artefacts/<id>/`, a
generated id recorded relative to the artefacts folder and resolved against the database file, never
the working directory; the model records the database's id and the folder id, and is refused by any
other database or run.
"""
from __future__ import annotations

import re
import shutil
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Settings
from .errors import CrossRecError
from .recommender import Recommender

if TYPE_CHECKING:
    from .store import Store


MAX_RUN_NAME = 100
_RUN_FOLDER = re.compile(r"tmp-[0-9a-f]+|[0-9a-f]{32}")


def check_run_name(name: str | None) -> str | None:
    """A run name as a label: surrounding spaces dropped; control characters or more than MAX_RUN_NAME
    characters rejected in one line. `/` and `..` are fine: a name never becomes a path."""
    if name is None:
        return None
    name = name.strip()
    if not name:
        return None
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise CrossRecError(f"run name contains the control character U+{ord(bad):04X}; use printable characters")
    if len(name) > MAX_RUN_NAME:
        raise CrossRecError(f"run name has {len(name)} characters, more than the limit of {MAX_RUN_NAME}")
    return name


def run_folder(store: Store, run: dict) -> Path:
    """The model folder of a recorded run, inside this database's artefacts folder."""
    rel = run.get("artefact_path")
    if not rel:
        raise CrossRecError(f"run '{run['name']}' has no fitted model (it was an evaluation)")
    if not _RUN_FOLDER.fullmatch(str(rel)):
        raise CrossRecError(f"run '{run['name']}' was recorded by an older CrossRec (its model is not in "
                            f"{store.artefact_dir}); retrain with `crossrec train`")
    return store.artefact_dir / str(rel)


def run_fingerprint(store: Store, folder_id: str) -> dict:
    """What a model records about where it belongs: the database's id and its own folder id."""
    return {"database_id": store.database_id(), "run_folder": folder_id}


def _sweep(artefacts: Path, keep: set[str]) -> None:
    """Remove temporary and orphaned run folders (from crashed or killed runs). Only folders named
    like a run's are touched: the tuned encoders (`encoders/`) live beside them."""
    if not artefacts.exists():
        return
    for d in artefacts.iterdir():
        if d.is_dir() and d.name not in keep and _RUN_FOLDER.fullmatch(d.name):
            shutil.rmtree(d, ignore_errors=True)


def _run_name(store: Store) -> str:
    existing = set(store.run_names())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name, n = f"run-{stamp}", 1
    while name in existing:
        n += 1
        name = f"run-{stamp}-{n}"
    return name


def serving_recommender(store: Store, settings: Settings | None = None, *, rules: bool = True) -> Recommender | None:
    """The live run's fitted model, bound to `store`, with the live rules (unless `rules=False`); None
    when no run was trained yet."""
    run = store.run()
    if run is None:
        return None
    return load_run(store, run["name"], rules=rules)


def with_live_rules(rec: Recommender, store: Store) -> Recommender:
    """`rec` serving the store's live rule set (segments resolved): what serving, export and pages show."""
    from .governance import live_rules

    live = live_rules(store)
    return rec.with_weights(rules=rec.rules.plus(live)) if live else rec


def load_run(store: Store, name: str, *, rules: bool = True) -> Recommender:
    """A recorded run's fitted model, bound to `store`, with the live rules unless `rules=False`."""
    run = store.run(name)
    if run is None:
        raise CrossRecError(f"no run named '{name}'")
    folder = run_folder(store, run)
    if not folder.is_dir():
        raise CrossRecError(f"the fitted model of run '{name}' is missing at {folder}; retrain with `crossrec train`")
    rec = Recommender.load(folder, store, fingerprint=run_fingerprint(store, folder.name))
    return with_live_rules(rec, store) if rules else rec


def heldout_model(store: Store, rec: Recommender, items, events, embeddings: np.ndarray | None):
    """(the held-out split, `rec`'s model refitted on its training period): the run's own settings (its tuned
    signal values), weights and ranker, so a held-out measure of a run measures that run."""
    from .fitting import fit_on_split
    from .ranker import ItemStats, sub_codes

    split, fused = fit_on_split(items, events, rec.settings, rec.weights, cross_weights=rec.cross_weights,
                                embeddings=embeddings, profile_texts=store.profile_texts())
    if rec.scorer_.ranker_ is not None:
        fused.attach_ranker(rec.scorer_.ranker_, ItemStats.from_data(split.train, sub_codes(items)))
    return split, fused


def compare_runs(store: Store, name_a: str, name_b: str, settings: Settings | None = None, n_users: int = 200,
                 *, deltas: bool = False) -> dict:
    """Weights, metrics per slice and how many users' top-K lists differ between two runs; with `deltas`,
    also b − a per metric on today's held-out period with its 95 % paired interval and noise flag
    (`deltas.compare_runs_heldout`: both runs refitted on its training period, tens of seconds)."""
    a, b = store.run(name_a), store.run(name_b)
    for n, r in ((name_a, a), (name_b, b)):
        if r is None:
            raise CrossRecError(f"no run named '{n}'")
    settings = settings or Settings(db_path=store.path)
    changed = compared = 0
    if a.get("artefact_path") and b.get("artefact_path"):
        rec_a, rec_b = load_run(store, name_a), load_run(store, name_b)
        users = store.user_summary()
        users = users[users["events"] > 0]["user_id"].to_numpy()
        rng = np.random.default_rng(settings.seed)
        if len(users) > n_users:
            users = rng.choice(users, n_users, replace=False)
        la = {u: tuple(df["item_id"]) for u, df in rec_a.recommend_batch(users, k=settings.evaluation.k, explain=False)}
        lb = {u: tuple(df["item_id"]) for u, df in rec_b.recommend_batch(users, k=settings.evaluation.k, explain=False)}
        compared = len(users)
        changed = sum(la[u] != lb[u] for u in users)
    out_deltas = {}
    if deltas and a.get("artefact_path") and b.get("artefact_path"):
        from .deltas import compare_runs_heldout

        out_deltas = {m: d.to_dict() for m, d in compare_runs_heldout(store, name_a, name_b, settings).items()}
    return {
        "deltas": out_deltas,
        "weights": {"a": a["weights"], "b": b["weights"]},
        "metrics": {"a": a["metrics"].get("slices", {}), "b": b["metrics"].get("slices", {})},
        "lists_changed": int(changed),
        "users_compared": int(compared),
    }

