"""Training runs: tune each signal's hyper-parameters and learn fusion weights on a validation carve-out,
evaluate on the held-out period against the baselines, fit on all data for serving, and record the run
atomically (the tuned values in its settings, the trials in `metrics["signal_tuning"]`).

Atomic means: artefacts are written to a temporary folder, renamed into place, and only then is the
run row inserted (one transaction). A crash or SIGKILL at any point leaves no row, and the serving run
stays what it was; stray folders are swept on the next train, and a failed save removes its own at once.

A run's name is a label (stored as data, never a path). Its model lives in `<db>.artefacts/<id>/`, a
generated id recorded relative to the artefacts folder and resolved against the database file, never
the working directory; the model records the database's id and the folder id, and is refused by any
other database or run.
"""
from __future__ import annotations

import shutil
import time
import uuid
from typing import Callable, TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import Settings
from .signals.registry import names as signal_names, weights_for
from .errors import CrossRecError
from .recommender import Recommender
from .runs import (  # noqa: F401  (the run registry, re-exported for older imports)
    MAX_RUN_NAME, _run_name, _sweep, check_run_name, compare_runs, load_run, run_fingerprint, run_folder,
    serving_recommender,
)
from .fitting import fit_on_split
from .progress import Progress, sub_progress
from .resources import StepLog

if TYPE_CHECKING:
    from .store import Store


def _embeddings(store: Store, settings: Settings, items: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    from .encoder import item_embeddings

    from .encoder import Encoder
    model_id = Encoder.from_settings(settings).model_id
    if store.embedding_count(model_id) == 0:
        return None, None
    return item_embeddings(store, model_id, items, settings.encoder.max_text_chars), model_id


# ---- weight learning ----------------------------------------------------------------------------


def _coordinate_ascent(objective: Callable[[dict[str, float]], float], start: dict[str, float],
                       rounds: int, progress: Progress | None, label: str) -> tuple[dict[str, float], float]:
    """Improve one weight at a time over a grid, keeping any change that raises the objective."""
    weights = dict(start)
    best = objective(weights)
    grid = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0]
    steps, done = rounds * len(weights), 0
    for _ in range(rounds):
        improved = False
        for name in list(weights):
            done += 1
            if progress:
                progress(done / steps, f"tuning {label} weight of {name} ({best:.4f})")
            for g in grid:
                trial = {**weights, name: g}
                if g == weights[name] or sum(trial.values()) <= 0:
                    continue
                value = objective(trial)
                if value > best + 1e-6:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    total = sum(weights.values()) or 1.0
    return {s: round(weights.get(s, 0.0) / total, 4) for s in signal_names()}, best


def learn_weights(
    items: pd.DataFrame,
    train_events: pd.DataFrame,
    settings: Settings,
    embeddings: np.ndarray | None,
    *,
    max_users: int = 400,
    rounds: int = 2,
    profile_texts: pd.DataFrame | None = None,
    progress: Progress | None = None,
    fitted: dict | None = None,
) -> tuple[dict[str, float], dict[str, float], float]:
    """Fusion weights by coordinate ascent on a validation period carved from the *training* events.

    Two weight vectors: one maximising NDCG@K of the full list, one maximising NDCG@K of the cross-mode
    list (only top-level categories new to the user, against positives there). The normalised signals of
    a user sample are computed once — at each shopper's retrieved candidates (`serving="retrieve"`), or over
    the whole catalogue — and each trial is a weighted sum and a top-K.
    `fitted`: signals the tuning already fitted on this carve-out at the settings' values (not fitted again).
    Returns (weights, cross_weights, validation NDCG of the full list).
    """
    if progress:
        progress(0.05, "fitting signals on the validation carve-out")
    val, scorer = fit_on_split(items, train_events, settings, {s: 1.0 for s in signal_names()}, validation=True,
                               embeddings=embeddings, profile_texts=profile_texts,
                               progress=sub_progress(progress, 0.05, 0.5), fitted=fitted)
    users = val.users("all")
    if len(users) == 0:
        return weights_for(settings), weights_for(settings), float("nan")
    rng = np.random.default_rng(settings.seed)
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    ctx = val.context(users, embeddings)
    names = list(scorer.signals_)
    exclude = val.exclusions(users)
    positives = val.positives(users)
    cross = val.cross_positives(users)
    sel = np.flatnonzero([len(c) > 0 for c in cross])
    new_only = val.cross_exclusions([users[j] for j in sel], exclude[sel]) if len(sel) else None
    if settings.retrieval.serving == "retrieve":  # each trial ranks the retrieved candidates, as serving does
        from .ranked import rows_of

        list_ndcg = _candidate_ndcg(scorer, ctx, names, ~exclude, positives, settings)
        cross_ndcg = (_candidate_ndcg(scorer, rows_of(ctx, sel), names, ~new_only, [cross[j] for j in sel], settings)
                      if len(sel) else None)
    else:
        list_ndcg, cross_ndcg = _dense_ndcg(scorer, ctx, names, exclude, positives, sel, new_only,
                                            [cross[j] for j in sel], settings)
    start = {n: float(weights_for(settings).get(n, 0.0)) for n in names}
    weights, best = _coordinate_ascent(list_ndcg, start, rounds, sub_progress(progress, 0.5, 0.8), "list")
    cross_weights = weights
    if cross_ndcg is not None:
        cross_weights, _ = _coordinate_ascent(cross_ndcg, {n: weights.get(n, 0.0) for n in names}, rounds,
                                              sub_progress(progress, 0.8, 1.0), "cross-mode")
    return weights, cross_weights, best


def _candidate_ndcg(scorer, ctx, names: list[str], allowed: np.ndarray, positives, settings: Settings):
    """NDCG@K of the fusion with weights w over each row's retrieved candidates (crossrec_core.served): one
    retrieval, then each trial is a weighted sum over the candidate pairs and a top-K per row."""
    from . import served
    from .metrics import hit_matrix, ndcg_at_k
    from .retrieval import retrieve

    found = retrieve(scorer.signals_, served._names(scorer, names), ctx, allowed, int(settings.retrieval.candidates))
    norm = served.normalised_at(scorer, ctx, names, found.rows, found.items, found.raw)
    stack = np.stack([norm.pop(n) for n in names]) if names else np.zeros((0, len(found)), np.float32)
    n_pos = np.fromiter((len(p) for p in positives), np.int64, len(positives))
    none = np.zeros(len(found), bool)
    k = int(settings.evaluation.k)

    def ndcg(w: dict[str, float]) -> float:
        vec = np.array([w.get(n, 0.0) for n in names], dtype=np.float32)
        idx = served.best(found.rows, found.items, vec @ stack, none, ctx.n, k)
        return float(ndcg_at_k(hit_matrix(idx, positives), n_pos, k).mean()) if len(positives) else float("nan")
    return ndcg


def _dense_ndcg(scorer, ctx, names: list[str], exclude, positives, sel, new_only, cross_pos, settings: Settings):
    """The exhaustive objectives: every signal normalised over the whole catalogue (S × B × n floats)."""
    from .metrics import ndcg_for_scores

    norm = scorer.normalised(ctx, names)
    stack = np.empty((len(names), *norm[names[0]].shape), np.float32)  # S × B × n, filled as the dict empties
    for j, n in enumerate(names):  # (np.stack would hold both copies: 2 × 2.2 GB at 400 shoppers × 200k items)
        stack[j] = norm.pop(n)
    del norm

    def fused(w: dict[str, float], rows=slice(None)) -> np.ndarray:
        vec = np.array([w.get(n, 0.0) for n in names], dtype=np.float32)
        return np.tensordot(vec, stack[:, rows], axes=1)

    cross = (lambda w: ndcg_for_scores(fused(w, sel), new_only, cross_pos, settings.evaluation.k)) if len(sel) else None
    return (lambda w: ndcg_for_scores(fused(w), exclude, positives, settings.evaluation.k)), cross


# ---- evaluation ---------------------------------------------------------------------------------


def evaluate_weights(
    store: Store,
    settings: Settings,
    weights: dict[str, float],
    *,
    cross_weights: dict[str, float] | None = None,
    baselines: bool = True,
    items: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    embeddings: np.ndarray | None = None,
    ranker=None,
    progress: Progress | None = None,
):
    """Fit on the training period, evaluate the fused model (and the baselines) on the test period.
    With a learned `ranker` (trained on windows of the training period only), the crossrec model is
    the ranker over the signals fitted here.

    Returns (result dict in the `eval --json` shape, the split, the fitted fused scorer).
    """
    from .baselines import fit_baselines
    from .evaluate import evaluate

    items = store.items() if items is None else items
    events = store.events() if events is None else events
    split, fused = fit_on_split(items, events, settings, weights, cross_weights=cross_weights, embeddings=embeddings,
                                profile_texts=store.profile_texts(), progress=sub_progress(progress, 0.0, 0.35))
    if ranker is not None:
        from .ranker import ItemStats, sub_codes

        fused.attach_ranker(ranker, ItemStats.from_data(split.train, sub_codes(items)))
    models = {"crossrec": fused}
    if baselines:
        models.update(fit_baselines(split, settings, embeddings, progress=sub_progress(progress, 0.35, 0.7)))
    result = evaluate(models, split, embeddings, settings.evaluation.k, progress=sub_progress(progress, 0.7, 1.0))
    return result, split, fused


# ---- runs ---------------------------------------------------------------------------------------


def train(
    store: Store,
    settings: Settings | None = None,
    *,
    weights: dict[str, float] | None = None,
    name: str | None = None,
    learn: bool = True,
    baselines: bool = True,
    project: bool = False,
    promote: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Tune the signals and learn weights (unless given), evaluate on the time split, fit on all data, record a
    run. The tuning (crossrec_core.tuning, settings `tuning`) runs only when the weights are learned: a run with
    given weights or `learn=False` keeps the settings' signal values, so it compares weights alone.

    The run goes live only with `promote` (one audit row, undoable) or when no run is live yet; with
    `promote=False` (the default, as in the CLI and on the Runs page) the live run stays what it was
    until `governance.promote_run` ("Make live").

    `project=True` also computes the item map (UMAP) for the Map page when the catalog or the encoder
    changed since the last one, so that page opens instantly; a failure there does not undo the run."""
    settings = settings or Settings(db_path=store.path)
    log = StepLog()
    with log.active():
        run = _train(store, settings, log, weights=weights, name=name, learn=learn, baselines=baselines,
                     project=project, promote=promote, progress=progress)
    return run


def _train(store: Store, settings: Settings, log: StepLog, *, weights, name, learn, baselines, project, promote,
           progress) -> dict:
    t0 = time.perf_counter()
    name = check_run_name(name)
    if name is not None and name in store.run_names():
        raise CrossRecError(f"a run named '{name}' already exists; choose another --name")
    name = name or _run_name(store)
    with log.step("load the data"):
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = store.events()
        if items.empty or events.empty:
            raise CrossRecError("nothing to train on: ingest items and events first")
        embeddings, model_id = _embeddings(store, settings, items)
    report = sub_progress(progress, 0.0, 0.05)
    if report:
        report(0.5, "preparing the time split")
    from .split import time_split

    with log.step("split by time"):
        cut = time_split(events, settings)
        train_events = events[events["ts"] < cut]
    learned_from = "given"
    val_ndcg = None
    cross_weights = None
    tuning = {"ran": False, "reason": "weights given or not learned: the signals keep the settings' values"}
    if weights is None and learn:  # tuned before anything is fitted: weights, ranker, evaluation, serving use them
        fitted: dict = {}  # the tuned signals as fitted on the carve-out: weight learning takes them as they are
        settings, tuning = _tune(items, train_events, settings, embeddings, log, sub_progress(progress, 0.05, 0.1),
                                 fitted)
        try:
            with log.step("learn the weights"):
                weights, cross_weights, val_ndcg = learn_weights(items, train_events, settings, embeddings,
                                                                 profile_texts=store.profile_texts(),
                                                                 progress=sub_progress(progress, 0.1, 0.2),
                                                                 fitted=fitted)
            learned_from = "learned on validation carve-out"
        except CrossRecError as exc:  # a carve-out too small to learn from: the defaults, and why
            weights, learned_from = weights_for(settings), f"defaults (no validation carve-out: {exc})"
        del fitted
    elif weights is None:
        weights = weights_for(settings)
        learned_from = "defaults"
    ranker, ranker_report = None, {"choice": "fusion", "reason": "the linear fusion was asked for"}
    if learned_from != "learned on validation carve-out":
        ranker_report["reason"] = f"weights {learned_from}: the linear fusion with those weights serves"
    elif settings.ranker.kind == "auto":
        from .ranker_fit import fit_ranker

        with log.step("train the ranker"):
            ranker, ranker_report = fit_ranker(items, train_events, settings, embeddings, weights,
                                               profile_texts=store.profile_texts(),
                                               progress=sub_progress(progress, 0.2, 0.4))
        if ranker is None and ranker_report.get("choice") in signal_names():  # one signal beat both: serve it
            weights = {s: 1.0 if s == ranker_report["choice"] else 0.0 for s in signal_names()}
    del train_events
    with log.step("evaluate on the held-out period"):
        result, split, fused = evaluate_weights(store, settings, weights, cross_weights=cross_weights,
                                                baselines=baselines, items=items, events=events,
                                                embeddings=embeddings, ranker=ranker,
                                                progress=sub_progress(progress, 0.4, 0.75))
    cut_text = str(split.cut) if hasattr(split, "cut") else None
    del split, fused, events  # the serving fit reads the events again; the split's copies can go
    with log.step("fit for serving"):
        rec = Recommender(settings, weights, cross_weights=cross_weights).fit(store,
                                                                              sub_progress(progress, 0.75, 0.95))
        if ranker is not None:
            rec.attach_ranker(ranker)

    with log.step("save the model"):
        artefacts = store.artefact_dir
        artefacts.mkdir(parents=True, exist_ok=True)
        _sweep(artefacts, {str(p) for p in store.runs()["artefact_path"].dropna()})
        folder_id = uuid.uuid4().hex
        tmp = artefacts / f"tmp-{folder_id}"
        try:
            rec.save(tmp, fingerprint=run_fingerprint(store, folder_id))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk must not stay full of a half-written model
            raise
        final = artefacts / folder_id
        tmp.rename(final)
    if progress:
        progress(0.97, "recording the run")
    als = rec.scorer_.signals_.get("als")
    metrics = {**result, "weights_source": learned_from, "validation_ndcg": val_ndcg,
               "cross_weights": rec.cross_weights, "model": rec.scorer_.model_kind, "ranker": ranker_report,
               "cut": cut_text,
               "signal_tuning": tuning,  # each trial on the validation period and the values chosen (in `settings`)
               "encoder": model_id,  # which item vectors (base or a tuned encoder) the run used
               "als_device": getattr(als, "device_", None),  # where ALS fitted (cpu / cuda)
               "steps": log.to_list()}  # wall time and peak memory of each step (the map's added after it)
    try:
        store.add_run(name=name, kind="train", fingerprint=store.fingerprint(), settings=settings.to_dict(),
                      weights=weights, metrics=metrics, duration_s=time.perf_counter() - t0,
                      artefact_path=folder_id, serve=False)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    live = promote or store.run() is None  # the first run of a database is live
    if live:
        store.set_live_run(name, f"trained run '{name}'" + (" and made it live" if promote else " (the first run)"))
    if project:
        with log.step("compute the item map"):
            _project(store, settings, rec, sub_progress(progress, 0.97, 1.0))
        store.update_run_metrics(name, {"steps": log.to_list()})
    if progress:
        progress(1.0, f"run {name} is {'serving' if live else 'recorded'}")
    return store.run(name)


def _tune(items: pd.DataFrame, train_events: pd.DataFrame, settings: Settings, embeddings: np.ndarray | None,
          log: StepLog, progress: Progress | None, keep: dict) -> tuple[Settings, dict]:
    """`tuning.tune_signals` as a step of the run (none when tuning is off)."""
    from .tuning import tune_signals

    if settings.tuning.seconds <= 0:
        return tune_signals(items, train_events, settings, embeddings)
    with log.step("tune the signals"):
        return tune_signals(items, train_events, settings, embeddings, progress=progress, keep=keep)


def _project(store: Store, settings: Settings, rec: Recommender, progress: Progress | None) -> None:
    """The item map for the Map page (stored per model + catalog fingerprint; recomputed only on change)."""
    import warnings

    from .projection import ensure_projection

    try:
        ensure_projection(store, settings, rec=rec, progress=progress)
    except Exception as exc:  # noqa: BLE001  the run is recorded; the Map page computes on demand instead
        warnings.warn(f"the item map was not computed ({type(exc).__name__}: {exc}); the Map page will compute it")


def eval_run(store: Store, settings: Settings | None = None, *, weights: dict[str, float] | None = None,
             record: bool = True, progress: Progress | None = None) -> dict:
    """Evaluate the serving run's weights (or `weights`) against the baselines; optionally record it. The
    serving run is evaluated with the signal values it was trained with (`signals` of its settings)."""
    settings = settings or Settings(db_path=store.path)
    t0 = time.perf_counter()
    cross_weights = None
    ranker = None
    if weights is None:
        serving = store.run()
        weights = serving["weights"] if serving else weights_for(settings)
        cross_weights = serving["metrics"].get("cross_weights") if serving else None
        if serving is not None and serving.get("artefact_path"):  # the serving run's ranker, if it has one
            ranker = serving_recommender(store, settings).scorer_.ranker_
        if serving is not None:  # its signals' values (tuned on its validation period), as its weights were learned
            settings = settings.replace({"signals": Settings.from_dict(serving["settings"]).signals})
    items = store.items().sort_values("item_id").reset_index(drop=True)
    embeddings, _ = _embeddings(store, settings, items)
    result, _, _ = evaluate_weights(store, settings, weights, cross_weights=cross_weights, items=items,
                                    embeddings=embeddings, ranker=ranker, progress=progress)
    if record:
        store.add_run(name=f"eval-{_run_name(store).removeprefix('run-')}", kind="eval",
                      fingerprint=store.fingerprint(), settings=settings.to_dict(), weights=weights,
                      metrics=result, duration_s=time.perf_counter() - t0, artefact_path=None, serve=False)
    return result
