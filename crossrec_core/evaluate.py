"""Offline evaluation on a global time split: the split, the slices, the metrics, the baselines.

Protocol (the one of the datasets README):
- one global cut at (1 - test_fraction) of the event time range; train = events before it, test = events
  at/after it. The train `Interactions` is built from pre-cut events only (`now` = the cut), over the whole
  catalog, for the users with train events.
- a user's positives = distinct test items with an event in `settings.positive_types` (all event types
  when the data has none of those, recorded in `Split.positive_fallback`), minus the items the user
  touched in train (discovery: train items are also excluded from every list).
- slices: `all` (users with train history and >= 1 positive), `cold_users` (no train event, >= 1 positive;
  context = their profile text only, when given) and `cold_items` (users with history whose positives
  include items without any train event; positives restricted to those items, and lists ranked among
  those items only: a top-K of the whole catalogue almost never holds a cold item, so the slice read 0).
- metrics at K from each user's top-K list (see the pure functions below): recall, ndcg, hit_rate, mrr,
  sampled auc, coverage, diversity, novelty, cross_recall, cross_hit_rate, users. The cross metrics
  rank each model's list in cross mode (only top-level categories the user has no train events in),
  against the positives in those categories — the same filter for every model.

`carve_validation` applies the same split inside the training period (cut at 1 - val_fraction of its
range), so weights and hyper-parameters are learned without ever seeing the test period.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import Settings
from .data import Interactions, build_interactions, code_events, owned_matrix
from .errors import CrossRecError
from .profiles import make_context
from .signals.base import Context

Progress = Callable[[float, str], None]
SLICES: tuple[str, ...] = ("all", "cold_users", "cold_items")
METRICS: tuple[str, ...] = ("recall", "ndcg", "hit_rate", "mrr", "auc", "coverage", "diversity", "novelty",
                            "cross_recall", "cross_hit_rate", "users")


# ---- events and the cut ---------------------------------------------------------------------------


def _naive_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        ts = pd.to_datetime(values, unit="s", utc=True)
    elif pd.api.types.is_datetime64_any_dtype(values):
        ts = values if getattr(values.dt, "tz", None) is not None else values.dt.tz_localize("UTC")
    else:
        ts = pd.to_datetime(values, utc=True, format="ISO8601")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None)


def prepare_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events with a UTC-naive datetime `ts` column (store frames already have one; files may carry
    `timestamp` as ISO strings or Unix seconds). Returns the frame itself when nothing needs changing."""
    if "ts" not in events.columns:
        if "timestamp" not in events.columns:
            raise CrossRecError("events need a 'ts' (or 'timestamp') column")
        ev = events.copy()
        ev["ts"] = _naive_utc(ev["timestamp"])
        return ev
    ts = events["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts) and getattr(ts.dt, "tz", None) is None:
        return events
    ev = events.copy()
    ev["ts"] = _naive_utc(ts)
    return ev


def time_split(events: pd.DataFrame, settings: Settings, fraction: float | None = None) -> pd.Timestamp:
    """The global cut at (1 - fraction) of the event time range (fraction: settings.test_fraction)."""
    f = settings.test_fraction if fraction is None else float(fraction)
    if not 0.0 < f < 1.0:
        raise CrossRecError(f"the held-out fraction must be between 0 and 1, got {f}")
    ts = prepare_events(events)["ts"]
    if len(ts) == 0:
        raise CrossRecError("no events to split: ingest events first")
    lo, hi = ts.min(), ts.max()
    if lo == hi:
        raise CrossRecError("all events have the same timestamp: a time split is impossible")
    return pd.Timestamp(lo + (hi - lo) * (1.0 - f))


# ---- the split ------------------------------------------------------------------------------------


@dataclass
class Split:
    """Train `Interactions` (pre-cut only) plus per-slice users and positives of the test period."""

    items: pd.DataFrame  # catalog, sorted by item_id (= train item order)
    train: Interactions
    cut: pd.Timestamp
    settings: Settings
    train_events: pd.DataFrame  # raw events before the cut (for carve_validation)
    test_events: pd.DataFrame  # raw events at/after the cut
    positive_types: tuple[str, ...]
    positive_fallback: bool  # True: the data has no event of settings.positive_types, all types count
    slice_users: dict[str, np.ndarray]  # slice -> sorted user ids
    slice_positives: dict[str, dict[str, np.ndarray]]  # slice -> user -> item positions
    all_positives: dict[str, np.ndarray]  # every evaluable user (warm or cold) -> all discovery positives
    item_users: np.ndarray  # train users per item (popularity for novelty; 0 = cold item)
    user_tops: sp.csr_matrix  # train users × top-level categories: 1 where the user carted or bought in train
    text_vecs: dict[str, np.ndarray] = field(default_factory=dict)  # user -> profile text vector
    owned: sp.csr_matrix | None = None  # train users × items: 1 where carted or bought in train

    # -- who and what ---------------------------------------------------------------------------

    def users(self, slice_name: str = "all") -> np.ndarray:
        """The user ids of a slice, sorted."""
        if slice_name not in self.slice_users:
            raise CrossRecError(f"unknown slice '{slice_name}' (slices: {', '.join(SLICES)})")
        return self.slice_users[slice_name]

    def positives(self, users: Sequence[str], slice_name: str | None = "all") -> list[np.ndarray]:
        """Item positions each user's list is judged against (`None`: all of the user's positives)."""
        table = self.all_positives if slice_name is None else self.slice_positives[slice_name]
        empty = np.zeros(0, dtype=np.int64)
        return [table.get(u, empty) for u in users]

    def user_rows(self, users: Sequence[str]) -> np.ndarray:
        """Rows of users in the train data (-1: no train event)."""
        return self.train.user_rows(list(users))

    def history(self, users: Sequence[str]) -> sp.csr_matrix:
        """B × n_items train confidence of users (empty rows for users without train events)."""
        rows = self.user_rows(users)
        X = self.train.X[np.maximum(rows, 0)] if self.train.n_users else sp.csr_matrix(
            (len(rows), self.train.n_items), dtype=np.float32)
        if (rows < 0).any():
            X = sp.diags((rows >= 0).astype(np.float32)) @ X
            X.eliminate_zeros()
        return sp.csr_matrix(X, dtype=np.float32)

    def exclusions(self, users: Sequence[str]) -> np.ndarray:
        """B × n_items bool: the items each user touched in train (never recommended, never positive)."""
        rows = self.user_rows(users)
        out = np.zeros((len(rows), self.train.n_items), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        if len(known):
            t = self.train.touched[rows[known]].tocoo()
            out[known[t.row], t.col] = True
        return out

    def slice_exclusions(self, users: Sequence[str], slice_name: str = "all") -> np.ndarray:
        """`exclusions(users)`, plus, on the cold-item slice, every item with a training event: that slice
        ranks the catalogue's new items only (as the cross metrics rank new categories only), so it
        measures how well a model reaches items nobody had bought yet, instead of reading 0 for every
        model because no cold item makes a top-K of the whole catalogue."""
        ex = self.exclusions(users)
        if slice_name == "cold_items":
            ex |= (self.item_users > 0)[None, :]
        return ex

    def tops(self, users: Sequence[str]) -> np.ndarray:
        """B × n_top_categories bool: top-level categories the user had train events in."""
        rows = self.user_rows(users)
        out = np.zeros((len(rows), len(self.train.cat_top_names)), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        if len(known):
            out[known] = self.user_tops[rows[known]].toarray() > 0
        return out

    def cross_positives(self, users: Sequence[str], slice_name: str = "all") -> list[np.ndarray]:
        """Positives whose top-level category the user had no train event in."""
        return cross_positives(self.positives(users, slice_name), self.train.cat_top, self.tops(users))

    def context(self, users: Sequence[str], embeddings: np.ndarray | None = None) -> Context:
        """What the models see for these users: train histories (+ profile text vectors when known)."""
        users = list(users)
        X = self.history(users)
        text = None
        if embeddings is not None and self.text_vecs:
            dim = embeddings.shape[1]
            zero = np.zeros(dim, np.float32)
            text = np.stack([np.asarray(self.text_vecs.get(u, zero), np.float32) for u in users]) if users else None
        rows = self.user_rows(users)
        owned = None
        if self.owned is not None:
            owned = self.owned[np.maximum(rows, 0)] if self.train.n_users else sp.csr_matrix(X.shape, dtype=np.float32)
            if (rows < 0).any():
                owned = sp.csr_matrix(sp.diags((rows >= 0).astype(np.float32)) @ owned)
        return make_context(self.train, X, embeddings, text_vecs=text, user_rows=rows, owned=owned)

    def summary(self) -> dict:
        """Counts for reports: cut, positive types, users per slice, positives, cold-item share."""
        n_pos = sum(len(v) for v in self.slice_positives["all"].values())
        n_cold = sum(len(v) for v in self.slice_positives["cold_items"].values())
        return {
            "cut": str(self.cut),
            "positive_types": list(self.positive_types),
            "positive_fallback": self.positive_fallback,
            "train_events": int(len(self.train_events)),
            "test_events": int(len(self.test_events)),
            "train_users": int(self.train.n_users),
            "users": {s: int(len(self.slice_users[s])) for s in SLICES},
            "positives_all": int(n_pos),
            "cold_item_positive_share": (n_cold / n_pos) if n_pos else None,
        }


def _group(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    """user id per row + item position per row -> {user: sorted distinct items}."""
    if len(users) == 0:
        return {}
    frame = pd.DataFrame({"u": users, "i": items}).drop_duplicates().sort_values(["u", "i"], kind="stable")
    u = frame["u"].to_numpy()
    i = frame["i"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    return {u[s]: i[s:e] for s, e in zip(starts, ends)}


def make_split(
    items: pd.DataFrame,
    events: pd.DataFrame,
    settings: Settings,
    *,
    cut: pd.Timestamp | None = None,
    fraction: float | None = None,
    profile_texts: pd.DataFrame | None = None,
    embed_texts: Callable[[list[str]], np.ndarray] | None = None,
) -> Split:
    """Split `events` at `cut` (default: `time_split(events, settings, fraction)`) into train
    Interactions and per-slice test positives. `profile_texts` (user_id, profile_text) and `embed_texts`
    give users' typed profiles as vectors (used in the contexts of every evaluated user who has one)."""
    events = prepare_events(events)
    if "cat_top" not in items.columns:
        raise CrossRecError("items need a cat_top column (use ingest.split_category on 'category')")
    items = items.sort_values("item_id").reset_index(drop=True)
    if cut is None:
        cut = time_split(events, settings, fraction)
    cut = pd.Timestamp(cut)
    if cut.tzinfo is not None:
        cut = cut.tz_convert("UTC").tz_localize(None)
    before = (events["ts"] < cut).to_numpy()
    train_events = events[before]
    test_events = events[~before]
    item_index = pd.Index(items["item_id"].to_numpy(dtype=object))
    # users of train = users with a train event on a catalog item
    known = item_index.get_indexer(train_events["item_id"]) >= 0
    train_users = np.sort(pd.unique(train_events.loc[known, "user_id"])) if len(train_events) else np.array([], object)
    train = build_interactions(items, train_events, settings, users=train_users, now=cut)
    if not (train.X.data > 0).any():
        # nothing to learn from: no events before the cut, or (an outlier timestamp stretching the time range)
        # all of them so far before it that their recency weight is 0
        lo, hi = events["ts"].min(), events["ts"].max()
        what = (f"the training period (before {cut:%Y-%m-%d}) has no events" if len(train_events) == 0 else
                f"the {len(train_events):,} events of the training period (before {cut:%Y-%m-%d}) are so old that "
                "their recency weight is 0")
        raise CrossRecError(f"{what}; events span {lo:%Y-%m-%d} .. {hi:%Y-%m-%d}: an outlier timestamp? remove it "
                            "with `crossrec events delete --before/--after`")
    n_items = train.n_items

    pos_types = tuple(settings.positive_types)
    fallback = not events["event_type"].isin(pos_types).any()
    if fallback:
        pos_types = tuple(sorted(events["event_type"].unique()))
    test = code_events(test_events[test_events["event_type"].isin(pos_types)], train.item_index)
    t_users = test["user_id"].to_numpy(dtype=object)
    t_items = test["i"].to_numpy(np.int64)
    rows = train.user_rows(t_users) if len(t_users) else np.zeros(0, np.int64)
    # discovery: drop (user, item) pairs the user touched in train
    tc = train.touched.tocoo()
    touched_keys = tc.row.astype(np.int64) * n_items + tc.col
    keys = rows.astype(np.int64) * n_items + t_items
    seen = (rows >= 0) & np.isin(keys, touched_keys)
    t_users, t_items, rows = t_users[~seen], t_items[~seen], rows[~seen]

    item_users = np.asarray(train.touched.sum(axis=0)).ravel().astype(np.int64)
    warm = rows >= 0
    all_pos = _group(t_users, t_items)
    warm_pos = _group(t_users[warm], t_items[warm])
    cold_user_pos = _group(t_users[~warm], t_items[~warm])
    cold_item = warm & (item_users[t_items] == 0)
    cold_item_pos = _group(t_users[cold_item], t_items[cold_item])
    slice_positives = {"all": warm_pos, "cold_users": cold_user_pos, "cold_items": cold_item_pos}
    slice_users = {s: np.array(sorted(p), dtype=object) for s, p in slice_positives.items()}

    n_tops = len(train.cat_top_names)
    onehot = sp.csr_matrix((np.ones(n_items, np.float32), (np.arange(n_items), train.cat_top)), shape=(n_items, n_tops))
    owned = owned_matrix(train.events, train.n_users, n_items)
    user_tops = ((owned @ onehot) > 0).astype(np.float32).tocsr()

    text_vecs: dict[str, np.ndarray] = {}
    if embed_texts is not None and profile_texts is not None and len(profile_texts):
        wanted = set(slice_users["all"]) | set(slice_users["cold_users"])
        pt = profile_texts[profile_texts["user_id"].isin(wanted)]
        pt = pt[pt["profile_text"].fillna("").str.strip() != ""]
        if len(pt):
            vecs = np.asarray(embed_texts(pt["profile_text"].str.strip().tolist()), dtype=np.float32)
            text_vecs = dict(zip(pt["user_id"], vecs))

    return Split(items=items, train=train, cut=cut, settings=settings, train_events=train_events,
                 test_events=test_events, positive_types=pos_types, positive_fallback=bool(fallback),
                 slice_users=slice_users, slice_positives=slice_positives, all_positives=all_pos,
                 item_users=item_users, user_tops=user_tops, text_vecs=text_vecs, owned=owned)


def carve_validation(
    split_or_items: Split | pd.DataFrame,
    train_events: pd.DataFrame | Settings | None = None,
    settings: Settings | None = None,
    **kwargs,
) -> Split:
    """The same split applied inside the training period, cut at (1 - val_fraction) of its range.

    Call as `carve_validation(split, settings)` or `carve_validation(items, train_events, settings)`;
    extra keyword arguments go to `make_split` (profile_texts, embed_texts)."""
    if isinstance(split_or_items, Split):
        items = split_or_items.items
        events = split_or_items.train_events
        settings = train_events if isinstance(train_events, Settings) else (settings or split_or_items.settings)
    else:
        items, events = split_or_items, train_events
        if not isinstance(events, pd.DataFrame) or settings is None:
            raise TypeError("carve_validation(items, train_events, settings) or carve_validation(split, settings)")
    events = prepare_events(events)
    cut = time_split(events, settings, settings.val_fraction)
    return make_split(items, events, settings, cut=cut, **kwargs)


# ---- metrics: small pure functions on arrays ------------------------------------------------------


def _dense_bool(m) -> np.ndarray | None:
    if m is None:
        return None
    if sp.issparse(m):
        return m.toarray() > 0
    return np.asarray(m, dtype=bool)


def top_k_items(scores: np.ndarray, exclude=None, k: int = 20) -> np.ndarray:
    """B × k item positions, best first, never an excluded item; -1 pads rows with fewer candidates.
    NaN scores count as excluded."""
    s = np.array(scores, dtype=np.float32, copy=True)
    s[np.isnan(s)] = -np.inf
    ex = _dense_bool(exclude)
    if ex is not None:
        s[ex] = -np.inf
    n = s.shape[1]
    k_eff = min(k, n)
    if k_eff <= 0 or s.shape[0] == 0:
        return np.full((s.shape[0], max(k, 0)), -1, dtype=np.int64)
    part = np.argpartition(-s, k_eff - 1, axis=1)[:, :k_eff]
    ps = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -ps), axis=1)  # score desc, then item position (deterministic)
    idx = np.take_along_axis(part, order, axis=1)
    val = np.take_along_axis(ps, order, axis=1)
    idx = np.where(np.isfinite(val), idx, -1).astype(np.int64)
    if k_eff < k:
        idx = np.hstack([idx, np.full((idx.shape[0], k - k_eff), -1, np.int64)])
    return idx


def model_top_k(model, scores: np.ndarray, exclude, k: int) -> np.ndarray:
    """A model's top-k list: its own selection (`top_items`: the served list, variant cap included)
    when it has one, else the plain top-k of its scores."""
    select = getattr(model, "top_items", None)
    if select is None:
        return top_k_items(scores, exclude, k)
    allowed = ~_dense_bool(exclude) & ~np.isnan(scores)
    return select(np.asarray(scores, np.float32), allowed, k)


def hit_matrix(topk: np.ndarray, positives: Sequence[np.ndarray]) -> np.ndarray:
    """B × k bool: is the item at each rank one of the user's positives."""
    B, k = topk.shape
    if B == 0:
        return np.zeros((0, k), bool)
    lens = np.fromiter((len(p) for p in positives), dtype=np.int64, count=B)
    if lens.sum() == 0:
        return np.zeros((B, k), bool)
    rows = np.repeat(np.arange(B, dtype=np.int64), lens)
    cols = np.concatenate([np.asarray(p, np.int64) for p in positives])
    n = int(max(topk.max(initial=-1), cols.max())) + 1
    pos_keys = np.unique(rows * n + cols)
    keys = np.arange(B, dtype=np.int64)[:, None] * n + topk
    return (topk >= 0) & np.isin(keys, pos_keys)


def recall_at_k(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """Per user: hits / min(k, |positives|) (0 for users without positives)."""
    denom = np.minimum(k, np.asarray(n_pos, np.float64))
    return np.divide(hits[:, :k].sum(axis=1), denom, out=np.zeros(len(denom)), where=denom > 0)


def ndcg_at_k(hits: np.ndarray, n_pos: np.ndarray, k: int) -> np.ndarray:
    """Per user: binary-gain DCG@k over the ideal DCG of min(k, |positives|) hits."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_cum = np.r_[0.0, np.cumsum(discounts)]
    idcg = ideal_cum[np.minimum(k, np.asarray(n_pos, np.int64))]
    return np.divide(dcg, idcg, out=np.zeros(len(idcg)), where=idcg > 0)


def hit_rate_at_k(hits: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user: 1 if any of the top k is a positive."""
    h = hits if k is None else hits[:, :k]
    return h.any(axis=1).astype(np.float64)


def mrr_at_k(hits: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user: 1 / rank of the first hit in the top k, 0 if none."""
    h = hits if k is None else hits[:, :k]
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def sample_negatives(n_items: int, positives: Sequence[np.ndarray], exclude, n: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Per user, up to `n` distinct random items that are neither positive nor excluded."""
    ex = _dense_bool(exclude)
    out = []
    for b, pos in enumerate(positives):
        banned = np.zeros(n_items, dtype=bool) if ex is None else ex[b].copy()
        banned[np.asarray(pos, np.int64)] = True
        allowed = np.flatnonzero(~banned)
        m = min(n, len(allowed))
        out.append(np.sort(rng.choice(allowed, size=m, replace=False)) if m else np.zeros(0, np.int64))
    return out


def sampled_auc(scores: np.ndarray, positives: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> np.ndarray:
    """Per user: share of (positive, negative) pairs ranked right, ties 0.5 (NaN without pairs)."""
    out = np.full(len(positives), np.nan)
    for b, (pos, neg) in enumerate(zip(positives, negatives)):
        if len(pos) == 0 or len(neg) == 0:
            continue
        sn = np.sort(scores[b, neg].astype(np.float64))
        sp_ = scores[b, pos].astype(np.float64)
        lt = np.searchsorted(sn, sp_, side="left")
        le = np.searchsorted(sn, sp_, side="right")
        out[b] = (lt + 0.5 * (le - lt)).sum() / (len(pos) * len(neg))
    return out


def coverage(topk: np.ndarray, n_items: int) -> float:
    """Distinct recommended items over the catalog size."""
    if n_items <= 0:
        return 0.0
    return float(len(np.unique(topk[topk >= 0]))) / n_items


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)


def intra_list_diversity(topk: np.ndarray, unit_embeddings: np.ndarray | None) -> np.ndarray:
    """Per list: 1 - mean pairwise cosine of its items' (unit) embeddings; NaN for lists under 2 items
    or without embeddings."""
    B, k = topk.shape
    if unit_embeddings is None or B == 0:
        return np.full(B, np.nan)
    valid = topk >= 0
    E = unit_embeddings[np.maximum(topk, 0)] * valid[:, :, None]  # B × k × d
    G = np.einsum("bid,bjd->bij", E, E, dtype=np.float64)
    m = valid.sum(axis=1).astype(np.float64)
    pair_sum = G.sum(axis=(1, 2)) - np.einsum("bii->b", G)
    pairs = m * (m - 1)
    return np.where(pairs > 0, 1.0 - pair_sum / np.where(pairs > 0, pairs, 1.0), np.nan)


def novelty(topk: np.ndarray, item_users: np.ndarray, n_users: int) -> np.ndarray:
    """Per list: mean self-information -log2((users_i + 1) / (n_users + 1)) of its items
    (users_i = train users who touched item i; NaN for empty lists)."""
    info = -np.log2((np.asarray(item_users, np.float64) + 1.0) / (n_users + 1.0))
    valid = topk >= 0
    vals = np.where(valid, info[np.maximum(topk, 0)], 0.0)
    cnt = valid.sum(axis=1)
    return np.divide(vals.sum(axis=1), cnt, out=np.full(len(cnt), np.nan), where=cnt > 0)


def cross_positives(positives: Sequence[np.ndarray], item_tops: np.ndarray, user_tops: np.ndarray) -> list[np.ndarray]:
    """Per user, the positives whose top-level category is not among `user_tops[b]` (B × n_tops bool)."""
    out = []
    for b, pos in enumerate(positives):
        pos = np.asarray(pos, np.int64)
        out.append(pos[~user_tops[b, item_tops[pos]]] if len(pos) else pos)
    return out


def ranking_metrics(topk: np.ndarray, positives: Sequence[np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Per-user recall, ndcg, hit_rate, mrr of top-K lists."""
    hits = hit_matrix(topk, positives)
    n_pos = np.fromiter((len(p) for p in positives), dtype=np.int64, count=len(positives))
    return {"recall": recall_at_k(hits, n_pos, k), "ndcg": ndcg_at_k(hits, n_pos, k),
            "hit_rate": hit_rate_at_k(hits, k), "mrr": mrr_at_k(hits, k)}


def ndcg_for_scores(scores: np.ndarray, exclude, positives: Sequence[np.ndarray], k: int) -> float:
    """Mean NDCG@k of score rows (excluded items never ranked) — the weight-learning objective."""
    if len(positives) == 0:
        return float("nan")
    topk = top_k_items(scores, exclude, k)
    n_pos = np.fromiter((len(p) for p in positives), dtype=np.int64, count=len(positives))
    return float(ndcg_at_k(hit_matrix(topk, positives), n_pos, k).mean())


# ---- evaluation -----------------------------------------------------------------------------------


class _Accumulator:
    """Per-user metric values of one model on one slice, gathered batch by batch."""

    def __init__(self, n_items: int):
        self.n_items = n_items
        self.parts: dict[str, list[np.ndarray]] = {m: [] for m in
                                                    ("recall", "ndcg", "hit_rate", "mrr", "auc", "diversity",
                                                     "novelty", "cross_recall", "cross_hit_rate")}
        self.recommended = np.zeros(n_items, dtype=bool)
        self.users = 0

    def add(self, name: str, values: np.ndarray) -> None:
        self.parts[name].append(np.asarray(values, np.float64))

    def per_user(self, name: str) -> np.ndarray:
        return np.concatenate(self.parts[name]) if self.parts[name] else np.zeros(0)

    def result(self) -> dict:
        def mean(name: str):
            if not self.parts[name]:
                return None
            v = np.concatenate(self.parts[name])
            v = v[~np.isnan(v)]
            return float(v.mean()) if len(v) else None

        out = {m: mean(m) for m in ("recall", "ndcg", "hit_rate", "mrr", "auc")}
        out["coverage"] = float(self.recommended.sum()) / self.n_items if self.users and self.n_items else None
        out["diversity"] = mean("diversity")
        out["novelty"] = mean("novelty")
        out["cross_recall"] = mean("cross_recall")
        out["cross_hit_rate"] = mean("cross_hit_rate")
        out["users"] = int(self.users)
        return out


def evaluate(
    models: dict[str, object],
    split: Split,
    embeddings: np.ndarray | None = None,
    k: int | None = None,
    progress: Progress | None = None,
    batch_size: int = 256,
    per_user: bool = False,
) -> dict:
    """Metrics of fitted models (each with `score(ctx) -> B × n_items`) on every slice of `split`.

    Returns the `eval --json` shape: {"k": k, "slices": {slice: {model: {metric: value, ..., "users": n}}}};
    a metric that cannot be computed (no users, no embeddings, no cross-category positives) is None.
    `per_user=True` adds "per_user": {model: {metric: values over the "all" slice's users}} (same users
    and order for every model, so deltas can be paired; cross metrics over users with cross positives)."""
    settings = split.settings
    k = int(k or settings.k)
    if k < 1:
        raise CrossRecError("k must be at least 1")
    train = split.train
    n_items = train.n_items
    unit_emb = unit_rows(embeddings) if embeddings is not None else None
    sizes = {s: len(split.users(s)) for s in SLICES}
    total = sum(math.ceil(n / batch_size) for n in sizes.values()) * max(len(models), 1)
    done = 0
    result: dict[str, dict] = {}
    for s_no, name in enumerate(SLICES):
        users = split.users(name)
        acc = {m: _Accumulator(n_items) for m in models}
        for b_no, start in enumerate(range(0, len(users), batch_size)):
            batch = list(users[start:start + batch_size])
            ctx = split.context(batch, embeddings)
            excl = split.slice_exclusions(batch, name)
            pos = split.positives(batch, name)
            cross = split.cross_positives(batch, name)
            has_cross = np.fromiter((len(c) > 0 for c in cross), dtype=bool, count=len(cross))
            rng = np.random.default_rng([settings.seed, s_no, b_no])
            negs = sample_negatives(n_items, split.positives(batch, None), excl, settings.auc_negatives, rng)
            for m_name, model in models.items():
                scores = model.score(ctx)
                scores = np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)
                if scores.shape != (len(batch), n_items):
                    raise CrossRecError(f"model '{m_name}' returned scores of shape {scores.shape}, "
                                        f"expected {(len(batch), n_items)}")
                topk = model_top_k(model, scores, excl, k)
                a = acc[m_name]
                for key, val in ranking_metrics(topk, pos, k).items():
                    a.add(key, val)
                a.add("auc", sampled_auc(scores, pos, negs))
                a.add("diversity", intra_list_diversity(topk, unit_emb))
                a.add("novelty", novelty(topk, split.item_users, train.n_users))
                if has_cross.any():
                    # Cross metrics rank each model's list in cross mode: items of top-level
                    # categories new to the user only (the same filter for every model).
                    sel = np.flatnonzero(has_cross)
                    new_only = excl[sel] | split.tops([batch[j] for j in sel])[:, train.cat_top]
                    score_cross = getattr(model, "score_cross", None)
                    cross_scores = scores[sel] if score_cross is None else np.asarray(
                        score_cross(split.context([batch[j] for j in sel], embeddings)), dtype=np.float32)
                    cross_topk = model_top_k(model, cross_scores, new_only, k)
                    cm = ranking_metrics(cross_topk, [cross[j] for j in sel], k)
                    a.add("cross_recall", cm["recall"])
                    a.add("cross_hit_rate", cm["hit_rate"])
                a.recommended[topk[topk >= 0]] = True
                a.users += len(batch)
                done += 1
                if progress:
                    progress(done / total, f"{name}: {m_name} ({min(start + len(batch), len(users)):,}/{len(users):,} users)")
        result[name] = {m: acc[m].result() for m in models}
        if name == "all" and per_user:
            kept = {m: {metric: acc[m].per_user(metric) for metric in acc[m].parts} for m in models}
        if name == "all" and "crossrec" in models and len(models) > 1:
            intervals = {metric: best_baseline_interval({m: acc[m].per_user(metric) for m in models}, settings.seed)
                         for metric in ("recall", "ndcg")}
    if progress:
        progress(1.0, "evaluated")
    out = {"k": k, "slices": result}
    if per_user:
        out["per_user"] = kept
    if "crossrec" in models and len(models) > 1 and len(split.users("all")):
        out["intervals"] = intervals
    return out


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 42, n_boot: int = 1000,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a - b over the same users and its paired-bootstrap interval (users resampled)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for j in range(0, n_boot, 100):  # in chunks: B × n_users index matrices stay small
        idx = rng.integers(0, len(d), size=(min(100, n_boot - j), len(d)))
        means[j:j + len(idx)] = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(lo), float(hi)


def best_baseline_interval(per_user: dict[str, np.ndarray], seed: int = 42) -> dict:
    """crossrec minus the best baseline (by mean) on one metric: difference, 95 % paired interval, ratio."""
    base = {m: v for m, v in per_user.items() if m != "crossrec" and len(v)}
    if not base or not len(per_user.get("crossrec", [])):
        return {}
    best = max(base, key=lambda m: base[m].mean())
    diff, lo, hi = paired_interval(per_user["crossrec"], base[best], seed)
    mean_best = float(base[best].mean())
    return {"best": best, "diff": round(diff, 6), "low": round(lo, 6), "high": round(hi, 6),
            "ratio": round(float(per_user["crossrec"].mean()) / mean_best, 4) if mean_best > 0 else None}


def fit_baselines(
    split: Split,
    settings: Settings,
    embeddings: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Fit the baselines on split.train. Default names: all of BASELINES, content only with embeddings
    (and the signal-based ones skipped with a warning if `crossrec_core.signals` cannot provide them).
    Each fitted model gets `fit_seconds_`."""
    from .baselines import BASELINES

    explicit = names is not None
    names = list(names) if explicit else [n for n in BASELINES if n != "content" or embeddings is not None]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise CrossRecError(f"unknown baseline '{unknown[0]}' (baselines: {', '.join(BASELINES)})")
    models: dict[str, object] = {}
    for j, name in enumerate(names):
        if name == "content" and embeddings is None:
            raise CrossRecError("the content baseline needs item embeddings: run `crossrec encode` first")
        if progress:
            progress(j / max(len(names), 1), f"fitting baseline {name}")
        t0 = time.perf_counter()
        try:
            model = BASELINES[name](settings)
        except ImportError as exc:
            if explicit:
                raise
            warnings.warn(f"baseline {name} skipped: {exc}", RuntimeWarning, stacklevel=2)
            continue
        models[name] = model.fit(split.train, embeddings)
        models[name].fit_seconds_ = time.perf_counter() - t0
    if progress:
        progress(1.0, "baselines fitted")
    return models


def metrics_table(result: dict) -> pd.DataFrame:
    """One row per (slice, model) with every metric (None -> NaN), for printing and the dashboard."""
    rows = []
    for slice_name, models in result.get("slices", {}).items():
        for model, metrics in models.items():
            row = {"slice": slice_name, "model": model}
            for m in METRICS:
                v = metrics.get(m)
                row[m] = np.nan if v is None else v
            rows.append(row)
    df = pd.DataFrame(rows, columns=["slice", "model", *METRICS])
    df["users"] = df["users"].fillna(0).astype(int)
    return df
