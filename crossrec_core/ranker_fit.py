"""Training the learned ranker on rolling windows of the period it is given, and choosing the serving
model on validation (ranker, linear fusion or the best single signal) — never on later events.

Given events up to T and a window length L (the held-out window's length, capped at a quarter of the
period so that early windows still have history):
- fold A: signals fitted on events before T - 2L, labels = discoveries in [T - 2L, T - L);
- fold B: signals fitted on events before T - L, labels = discoveries in [T - L, T).
The ranker learned on A is scored on B: half of B's shoppers choose the number of boosting rounds, the
other half compare it with the linear fusion and every single signal (NDCG@K). The ranker finally
serving is retrained on B (the most recent window) with the chosen rounds. Windows of equal length
matter: measured on completejourney, training on shorter or older windows lost to the best signal.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import Settings
from .evaluate import paired_interval
from .metrics import hit_matrix, ndcg_at_k, recall_at_k, top_k_items
from .fitting import fit_on_split
from .split import prepare_events
from .errors import CrossRecError
from .ranker import Candidates, ItemStats, LearnedRanker, build_candidates, candidate_features, sub_codes
from .retrieval import retrieve
from .progress import Progress, sub_progress

ROUND_GRID = (25, 50, 100, 200, 300)


@dataclass
class Fold:
    """One labelled window: fitted scorer, candidate batches with labels, and the shoppers' positives."""

    cut: pd.Timestamp
    end: pd.Timestamp
    scorer: object
    stats: ItemStats
    batches: list[tuple[Candidates, np.ndarray]] = field(default_factory=list)
    users: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    positives: list[np.ndarray] = field(default_factory=list)
    # kept for validation, a batch at a time: exclusions sparse, and the top-K lists (not the B × catalogue
    # scores, which for 3,000 shoppers × 200k items × 8 models would be ~19 GB)
    exclusions: list[sp.csr_matrix] = field(default_factory=list)
    fused: list[np.ndarray] = field(default_factory=list)  # linear fusion's top-K of each batch
    singles: dict[str, list[np.ndarray]] = field(default_factory=dict)
    # the cross-mode window: candidates of new top-level categories only, with the exploration features
    # appended, labelled by the discoveries in those categories (positives = the cross positives)
    cross: "Fold | None" = None


def windows(events: pd.DataFrame, settings: Settings) -> tuple[pd.Timestamp, pd.Timedelta]:
    """End T of the period and the window length L."""
    ts = prepare_events(events)["ts"]
    lo, hi = ts.min(), ts.max()
    span = hi - lo
    test = settings.evaluation.test_fraction
    frac = test / (1.0 - test)  # the held-out window, relative to this period
    L = min(span * frac, span / 4)
    return pd.Timestamp(hi), pd.Timedelta(L)


def label_batches(cands: Candidates, positives: list[np.ndarray], n_items: int) -> np.ndarray:
    """1 where (row, item) is one of the row's positives."""
    lens = np.fromiter((len(p) for p in positives), np.int64, len(positives))
    if lens.sum() == 0:
        return np.zeros(len(cands.rows), np.int8)
    keys = np.unique(np.repeat(np.arange(len(positives)), lens) * n_items
                     + np.concatenate([np.asarray(p, np.int64) for p in positives]))
    return np.isin(cands.rows * n_items + cands.items, keys).astype(np.int8)


def build_fold(items: pd.DataFrame, events: pd.DataFrame, settings: Settings, cut: pd.Timestamp,
               end: pd.Timestamp, embeddings: np.ndarray | None, n_candidates: int, *, max_users: int,
               keep_scores: bool, weights: dict[str, float] | None = None,
               profile_texts: pd.DataFrame | None = None, progress: Progress | None = None,
               cross: bool = False) -> Fold | None:
    """Fit the signals before `cut` (through `fit_on_split`, profile texts included, as training and
    serving do), build every shopper's candidates and label them with [cut, end). `cross` also builds the
    cross-mode window (`Fold.cross`) from the same fitted signals (retrieval as cross-mode serving does it)."""
    try:
        split, scorer = fit_on_split(items, events[events["ts"] < end], settings, weights, cut=cut,
                                     embeddings=embeddings, profile_texts=profile_texts, progress=progress)
    except CrossRecError:  # nothing to learn from before this cut
        return None
    users = split.users("all")
    if len(users) == 0 or split.train.n_users == 0:
        return None
    rng = np.random.default_rng(settings.seed)
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    stats = ItemStats.from_data(split.train, sub_codes(items))
    fold = Fold(cut=cut, end=end, scorer=scorer, stats=stats, users=users)
    names = list(scorer.signals_)
    if cross:
        from .discovery import DiscoveryStats

        discovery = DiscoveryStats.from_data(split.train, tuple(settings.evaluation.positive_types))
        fold.cross = Fold(cut=cut, end=end, scorer=scorer, stats=stats, users=users)
    for start in range(0, len(users), 256):
        batch = list(users[start:start + 256])
        ctx = split.context(batch, embeddings)
        excl = split.exclusions(batch)
        pos = split.positives(batch)
        retrieved = settings.retrieval.serving == "retrieve"
        if retrieved:  # the candidates serving retrieves (crossrec_core.retrieval), not a dense row per signal
            found = retrieve(scorer.signals_, names, ctx, ~excl, n_candidates)
            cands = candidate_features(found.rows, found.items, found.raw, ctx, stats, split.train.cat_top,
                                       len(split.train.cat_top_names), names)
        else:
            raw = {s: scorer.signals_[s].score(ctx) for s in names}
            cands = build_candidates(raw, ~excl, ctx, stats, split.train.cat_top, len(split.train.cat_top_names),
                                     n_candidates, names)
        fold.batches.append((cands, label_batches(cands, pos, split.train.n_items)))
        fold.positives += pos
        if cross:
            _cross_batch(fold.cross, split, batch, ctx, excl, discovery, names, n_candidates)
        if keep_scores:  # the contenders' lists: the fusion's as served, each signal's own best items
            k = settings.evaluation.k
            fold.exclusions.append(sp.csr_matrix(excl))
            none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            fold.fused.append(scorer.held_out(ctx, excl, k, none)[0] if retrieved
                              else top_k_items(scorer.score(ctx), excl, k))
            for s in names:
                fold.singles.setdefault(s, []).append(
                    scorer.signals_[s].retrieve(ctx, ~excl, k) if retrieved else top_k_items(raw[s], excl, k))
    return fold


def _cross_batch(fold: Fold, split, batch: list, ctx, excl: np.ndarray, discovery, names: list[str],
                 n_candidates: int) -> None:
    """Add one batch to a cross-mode window: the candidates retrieved among items of top-level categories new
    to each shopper (as `FusedScorer.candidate_mask` in "cross" mode), their features with the exploration
    facts, and labels = the shoppers' positives in those categories."""
    from .discovery import with_discovery

    train = split.train
    new_only = split.cross_exclusions(batch, excl)
    found = retrieve(fold.scorer.signals_, names, ctx, ~new_only, n_candidates)
    cands = candidate_features(found.rows, found.items, found.raw, ctx, fold.stats, train.cat_top,
                               len(train.cat_top_names), names)
    cands = with_discovery(cands, ctx, discovery, train)
    pos = split.cross_positives(batch)
    fold.batches.append((cands, label_batches(cands, pos, train.n_items)))
    fold.positives += pos
    fold.exclusions.append(sp.csr_matrix((len(batch), train.n_items), dtype=bool))  # its B; lists come from cands


def _ranker_scores(booster, fold: Fold, rounds: int, k: int, columns: int | None = None) -> list[np.ndarray]:
    """The top-k of each batch of a fold by a LightGBM booster's first `rounds` trees, from the candidates
    alone (equal scores in item order); `columns`: the booster reads the first ones only (the general
    ranker on the cross-mode window's candidates)."""
    from .served import best

    out = []
    for (cands, _), excl in zip(fold.batches, fold.exclusions):
        X = cands.X if columns is None else cands.X[:, :columns]
        pred = (booster.predict(X, num_iteration=rounds) if len(cands.rows)
                else np.zeros(0)).astype(np.float32)
        out.append(best(cands.rows, cands.items, pred, np.zeros(len(pred), bool), excl.shape[0], k))
    return out


def _ndcg_users(topks: list[np.ndarray], fold: Fold, rows: np.ndarray, k: int, metric=ndcg_at_k) -> np.ndarray:
    """NDCG@k (or `metric`, e.g. recall_at_k) of each shopper of `rows` (positions in fold.users) from each
    batch's top-k lists."""
    per = []
    for b, (t, ex) in enumerate(zip(topks, fold.exclusions)):
        sel = rows[(rows >= b * 256) & (rows < b * 256 + ex.shape[0])] - b * 256
        if len(sel) == 0:
            continue
        pos = [fold.positives[b * 256 + j] for j in sel]
        topk = t[sel]
        n_pos = np.fromiter((len(p) for p in pos), np.int64, len(pos))
        per.append(metric(hit_matrix(topk, pos), n_pos, k))
    return np.concatenate(per) if per else np.zeros(0)


def grid_stopper(fold: Fold, rows: np.ndarray, k: int, round_users: dict[int, np.ndarray], patience: int = 2):
    """A LightGBM callback that scores the fold's `rows` (NDCG@k per shopper) at each count of ROUND_GRID as
    the trees are added, into `round_users`, and stops the training once `patience` counts in a row have not
    beaten the best mean: the trees past them would only be measured to be left out."""
    import lightgbm as lgb

    def stop(env) -> None:
        done = env.iteration + 1
        if done not in ROUND_GRID:
            return
        round_users[done] = _ndcg_users(_ranker_scores(env.model, fold, done, k), fold, rows, k)
        means = [(r, float(v.mean()) if len(v) else 0.0) for r, v in sorted(round_users.items())]
        best_at = max(range(len(means)), key=lambda i: (means[i][1], -i))
        if len(means) - 1 - best_at >= patience:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    stop.order = 40
    return stop


def fewest_rounds(round_users: dict[int, np.ndarray], seed: int) -> int:
    """The fewest trees whose validation NDCG per shopper is within noise of the best count's (the paired
    interval of best − fewer reaches 0): more trees must earn their place, as they cost every served list
    its prediction and explanation time, and a lead inside the noise is a pick of the noise."""
    means = {r: float(v.mean()) if len(v) else 0.0 for r, v in round_users.items()}
    best = max(means, key=lambda r: (means[r], -r))
    for r in sorted(round_users):
        if r == best or not len(round_users[r]):
            return r if r == best else best
        _, lo, _ = paired_interval(round_users[best], round_users[r], seed)
        if lo <= 0:
            return r
    return best


def choose(per_user: dict[str, np.ndarray], seed: int) -> tuple[str, str]:
    """The serving model from validation NDCG per shopper: the ranker, else the fusion, unless a
    contender beats it with a paired-bootstrap interval above 0 — picking the highest mean among
    near-ties would pick noise (on Instacart ALS won validation by .001 and lost the test by 9 %).
    Returns (choice, why)."""
    means = {m: float(v.mean()) for m, v in per_user.items()}
    best = max(means, key=means.get)
    for preferred in ("ranker", "fusion"):
        if preferred not in per_user:
            continue
        if preferred == best:
            return preferred, ""
        _, lo, _ = paired_interval(per_user[best], per_user[preferred], seed)
        if lo <= 0:
            return preferred, f"{best} scored {means[best]:.4f} against {means[preferred]:.4f}: within noise"
    return best, f"{best} beat the ranker and the fusion on validation beyond noise"


def fit_ranker(items: pd.DataFrame, events: pd.DataFrame, settings: Settings, embeddings: np.ndarray | None,
               fusion_weights: dict[str, float] | None = None, *, ranker: LearnedRanker | None = None,
               profile_texts: pd.DataFrame | None = None, max_users: int = 3000, force: bool = False,
               progress: Progress | None = None) -> tuple[LearnedRanker | None, dict]:
    """Learn the ranker on the windows of `events` and choose the serving model on validation.

    Returns (the ranker, or None when the data is too small or another model won — `force` keeps the
    ranker whatever validation says; a report with the windows, validation NDCG of every contender, the
    choice and the ranker's importance per signal)."""
    t0 = time.perf_counter()
    ranker = ranker or LearnedRanker(n_candidates=settings.retrieval.candidates)
    events = prepare_events(events)
    items = items.sort_values("item_id").reset_index(drop=True)
    T, L = windows(events, settings)
    report: dict = {"window_days": round(L.total_seconds() / 86400, 2), "windows": {
        "earlier": {"signals_before": str(T - 2 * L), "end": str(T - L)},
        "latest": {"signals_before": str(T - L), "end": str(T)}}}

    if progress:
        progress(0.0, "ranker: fitting the signals on the earlier window")
    cross = settings.ranker.cross_kind == "auto"
    fold_a = build_fold(items, events, settings, T - 2 * L, T - L, embeddings, ranker.n_candidates,
                        max_users=max_users, keep_scores=False, profile_texts=profile_texts,
                        progress=sub_progress(progress, 0.0, 0.35), cross=cross)
    if progress:
        progress(0.4, "ranker: fitting the signals on the latest window")
    fold_b = build_fold(items, events, settings, T - L, T, embeddings, ranker.n_candidates,
                        max_users=max_users, keep_scores=True, weights=fusion_weights, profile_texts=profile_texts,
                        progress=sub_progress(progress, 0.4, 0.75), cross=cross)
    if fold_a is None or fold_b is None:
        report["choice"] = "fusion"
        report["reason"] = "too little history for two labelled windows"
        return None, report
    names = list(fold_b.scorer.signals_)
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(fold_b.users))
    stop_half, select_half = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    k = settings.evaluation.k
    round_users: dict[int, np.ndarray] = {}  # filled as the trees grow, on the half that picks the count
    try:
        ranker.fit_frames(names, fold_a.batches, rounds=max(ROUND_GRID),
                          callbacks=[grid_stopper(fold_b, stop_half, k, round_users)])
    except CrossRecError as exc:
        report.update(choice="fusion", reason=str(exc))
        return None, report
    if progress:
        progress(0.8, "ranker: choosing rounds and the serving model on validation")
    grown = ranker.booster_.current_iteration()
    for r in ROUND_GRID:  # counts the stopper did not see (a shop too small for the grid's first count)
        if r <= grown and r not in round_users:
            round_users[r] = _ndcg_users(_ranker_scores(ranker.booster_, fold_b, r, k), fold_b, stop_half, k)
    if not round_users:
        round_users[grown] = _ndcg_users(_ranker_scores(ranker.booster_, fold_b, grown, k), fold_b, stop_half, k)
    by_rounds = {r: float(v.mean()) if len(v) else 0.0 for r, v in round_users.items()}
    best_rounds = fewest_rounds(round_users, settings.seed)
    per_user = {"ranker": _ndcg_users(_ranker_scores(ranker.booster_, fold_b, best_rounds, k), fold_b, select_half,
                                      k),
                "fusion": _ndcg_users(fold_b.fused, fold_b, select_half, k)}
    for s, mats in fold_b.singles.items():
        per_user[s] = _ndcg_users(mats, fold_b, select_half, k)
    contenders = {m: float(v.mean()) for m, v in per_user.items()}
    choice, why = choose(per_user, settings.seed)
    report.update(rounds_ndcg={str(r): round(v, 5) for r, v in by_rounds.items()}, rounds=best_rounds,
                  validation_ndcg={m: round(v, 5) for m, v in contenders.items()}, choice=choice,
                  users={"earlier": int(len(fold_a.users)), "latest": int(len(fold_b.users))})
    if why:
        report["reason"] = why
    if choice != "ranker" and not force:
        return None, report
    if progress:
        progress(0.9, "ranker: retraining on the latest window")
    final = LearnedRanker(**ranker.get_params()).fit_frames(names, fold_b.batches, rounds=best_rounds)
    report["importance"] = final.importance()
    report["model_rows"] = final.train_rows_
    if cross:
        if progress:
            progress(0.95, "ranker: the cross-mode ranker")
        t1 = time.perf_counter()
        final.cross_, report["cross"] = fit_cross(fold_a, fold_b, ranker, best_rounds, names, stop_half,
                                                  select_half, settings, force=force)
        report["cross"]["fit_seconds"] = round(time.perf_counter() - t1, 1)
    report["fit_seconds"] = round(time.perf_counter() - t0, 1)
    if progress:
        progress(1.0, "ranker trained")
    return final, report


def fit_cross(fold_a: Fold, fold_b: Fold, general: LearnedRanker, general_rounds: int, names: list[str],
              stop_half: np.ndarray, select_half: np.ndarray, settings: Settings, force: bool = False
              ) -> tuple[LearnedRanker | None, dict]:
    """The cross-mode ranker: trained on the earlier window's discoveries in new top-level categories (with
    the exploration features), its trees counted on `stop_half` of the latest window as the general
    ranker's are, then compared with the general ranker (learned on the same window, `general_rounds`
    trees) on `select_half`'s CrossRecall@K over the same new-category candidates. It serves (retrained on
    the latest window) only when it beat the general ranker there beyond noise, the paired interval of the
    difference above 0 (or `force`): on completejourney a lead of +0.006 inside [-0.011, +0.023] on
    validation was a loss of 0.006 on the test period. The report says both means and the interval."""
    from .discovery import FEATURES

    ca, cb = fold_a.cross, fold_b.cross
    k = settings.evaluation.k
    has = np.fromiter((len(p) > 0 for p in cb.positives), bool, len(cb.positives))
    stop, select = stop_half[has[stop_half]], select_half[has[select_half]]
    out: dict = {"users": {"stop": int(len(stop)), "select": int(len(select))}}
    if not len(stop) or not len(select):
        out["reason"] = "no shopper of the validation window discovered a new category"
        return None, out
    cross = LearnedRanker(**general.get_params())
    round_users: dict[int, np.ndarray] = {}
    try:
        cross.fit_frames(names, ca.batches, rounds=max(ROUND_GRID), extra=FEATURES,
                         callbacks=[grid_stopper(cb, stop, k, round_users)])
    except CrossRecError as exc:
        out["reason"] = str(exc)
        return None, out
    if not round_users:
        grown = cross.booster_.current_iteration()
        round_users[grown] = _ndcg_users(_ranker_scores(cross.booster_, cb, grown, k), cb, stop, k)
    rounds = fewest_rounds(round_users, settings.seed)
    n_general = len(general.feature_names_)
    mine = _ndcg_users(_ranker_scores(cross.booster_, cb, rounds, k), cb, select, k, recall_at_k)
    theirs = _ndcg_users(_ranker_scores(general.booster_, cb, general_rounds, k, n_general), cb, select, k,
                         recall_at_k)
    diff, lo, hi = paired_interval(mine, theirs, settings.seed)
    won = lo > 0  # beyond noise, as `choose` asks of a contender: a lead inside it is a pick of the noise
    out.update(rounds=rounds, validation_cross_recall={"cross": round(float(mine.mean()), 5),
                                                       "ranker": round(float(theirs.mean()), 5)},
               interval=[round(lo, 5), round(hi, 5)], serves=won)
    if not won and not force:
        out["reason"] = "the general ranker's cross-mode list was within noise of it (or better) on validation"
        return None, out
    final = LearnedRanker(**general.get_params()).fit_frames(names, cb.batches, rounds=rounds, extra=FEATURES)
    out["importance"] = {k2: round(float(v), 4) for k2, v in _feature_gain(final).items()}
    return final, out


def _feature_gain(ranker: LearnedRanker, top: int = 8) -> dict[str, float]:
    """The `top` features by gain share (the cross ranker's report: which exploration facts it uses)."""
    gain = ranker.booster_.feature_importance("gain", iteration=ranker.best_iteration_)
    total = float(gain.sum()) or 1.0
    order = np.argsort(-gain)[:top]
    return {ranker.feature_names_[j]: float(gain[j]) / total for j in order}
