"""A 2-D map of the item embeddings (UMAP, cosine), cached in the store.

The coordinates are stored under a fingerprint of (model, catalog, max_points, seed), so a map is
computed once per catalog state (events do not move it) and read back in milliseconds afterwards. UMAP's first run in a
process pays ~25-30 s of numba compilation: compute ahead with `ensure_projection` (e.g. after
training), or on demand with a progress message.

Past `max_points` items the map is a seeded sample, stratified by top-level category so small
categories stay visible; `projection_note()` says so in one line.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .progress import Progress
from .vectors import unit_rows

if TYPE_CHECKING:
    from .recommender import Recommender
    from .store import Store


UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine"}
_VERSION = 2  # 2: exact neighbours from 4,096 points on


def projection_fingerprint(model_id: str, catalog_fingerprint: str, max_points: int, seed: int = 42) -> str:
    """The key coordinates are stored under in the store's projections table (new events keep the map)."""
    payload = json.dumps({"model": model_id, "catalog": catalog_fingerprint, "max_points": int(max_points),
                          "seed": int(seed), "umap": UMAP_PARAMS, "v": _VERSION}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:20]


def stratified_sample(categories: pd.Series, n: int, seed: int = 42) -> np.ndarray:
    """Sorted positions of a seeded sample of `n` rows, each category keeping its share (at least one row)."""
    cats = pd.Series(np.asarray(categories, dtype=object)).fillna("")
    total = len(cats)
    if total <= n:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    sizes = cats.value_counts()
    quota = np.maximum(1, np.floor(sizes / total * n)).astype(int)
    # hand out what flooring left over to the largest categories first
    left = n - int(quota.sum())
    for cat in sizes.index:
        if left <= 0:
            break
        if quota[cat] < sizes[cat]:
            quota[cat] += 1
            left -= 1
    picks = []
    for cat, positions in cats.groupby(cats).groups.items():
        positions = np.asarray(positions)
        k = min(int(quota[cat]), len(positions))
        picks.append(rng.choice(positions, k, replace=False))
    out = np.concatenate(picks)
    if len(out) > n:  # more categories than points: the at-least-one rule overshoots
        out = rng.choice(out, n, replace=False)
    return np.sort(out)


def cached_projection(store: Store, model_id: str, *, max_points: int = 50_000, seed: int = 42) -> pd.DataFrame | None:
    """The stored map for the store's current state, or None if it was not computed yet."""
    fp = projection_fingerprint(model_id, store.catalog_fingerprint(), max_points, seed)
    df = store.projection(fp)
    return None if df.empty else df


def item_projection(
    store: Store,
    embeddings: np.ndarray,
    items: pd.DataFrame,
    model_id: str,
    *,
    max_points: int = 50_000,
    seed: int = 42,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """DataFrame(item_id, x, y) of the items' embeddings mapped to 2-D, read from the store if cached.

    `embeddings` rows align with `items` rows. Items whose vector is all zeros (no text encoded) are
    left out. `df.attrs` holds `total` (items with a vector), `points` and `computed_s` (0 when cached).
    """
    if len(items) != len(embeddings):
        raise ValueError(f"{len(items)} items but {len(embeddings)} embedding rows")
    emb = np.asarray(embeddings, dtype=np.float32)
    has_vec = np.abs(emb).sum(axis=1) > 0
    fp = projection_fingerprint(model_id, store.catalog_fingerprint(), max_points, seed)
    cached = store.projection(fp)
    if not cached.empty:
        cached.attrs.update(total=int(has_vec.sum()), points=len(cached), computed_s=0.0)
        return cached
    t0 = time.perf_counter()
    candidates = np.flatnonzero(has_vec)
    cats = items["cat_top"].to_numpy()[candidates] if "cat_top" in items else np.zeros(len(candidates), object)
    if progress:
        progress(0.05, f"sampling {min(max_points, len(candidates)):,} of {len(candidates):,} items")
    pos = candidates[stratified_sample(pd.Series(cats), max_points, seed)]
    xy = umap_2d(emb[pos], seed=seed, progress=progress)
    frame = pd.DataFrame({"item_id": items["item_id"].to_numpy()[pos], "x": xy[:, 0].astype(np.float32),
                          "y": xy[:, 1].astype(np.float32)})
    if progress:
        progress(0.95, "saving the map")
    store.put_projection(fp, frame)
    frame = frame.sort_values("item_id").reset_index(drop=True)
    frame.attrs.update(total=int(has_vec.sum()), points=len(frame), computed_s=time.perf_counter() - t0)
    if progress:
        progress(1.0, "map ready")
    return frame


def exact_cosine_knn(vectors: np.ndarray, k: int, progress: Progress | None = None,
                     chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by cosine (each point first, as its own neighbour at distance 0).

    Blocked matrix products with torch (multi-threaded; numpy's BLAS is kept to one thread here). On
    50,000 × 384 this takes ~19 s on 2 cores, against ~33 s for UMAP's approximate NN-descent, and it
    skips NN-descent's numba compilation in a fresh process."""
    x = np.asarray(vectors, dtype=np.float32)
    x = unit_rows(x)
    n = len(x)
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    try:
        import torch
    except ImportError:  # numpy fallback: same result, slower
        torch = None
    full = torch.from_numpy(x) if torch is not None else x
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = np.arange(stop - start)
        if torch is not None:
            sims = full[start:stop] @ full.T
            sims[rows, start + rows] = 2.0  # self first, whatever duplicates exist
            val, pos = torch.topk(sims, k, dim=1)
            val, pos = val.numpy(), pos.numpy()
        else:
            sims = full[start:stop] @ full.T
            sims[rows, start + rows] = 2.0
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
            pos = np.take_along_axis(part, order, axis=1)
            val = np.take_along_axis(sims, pos, axis=1)
        idx[start:stop] = pos
        dist[start:stop] = np.clip(1.0 - val, 0.0, 2.0)
        if progress:
            progress(stop / n, f"nearest neighbours: {stop:,} of {n:,} items")
    return idx, dist


def umap_2d(vectors: np.ndarray, *, seed: int = 42, progress: Progress | None = None) -> np.ndarray:
    """UMAP (n_neighbors=15, min_dist=0.1, cosine, seeded) to 2-D; tiny inputs get a trivial layout.

    From 4,096 points on (where UMAP would switch to approximate NN-descent) the 15 nearest neighbours
    are computed exactly with `exact_cosine_knn` and handed to UMAP as `precomputed_knn`: the same
    graph UMAP wants, exact instead of approximate, and faster here."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 4:
        return np.column_stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)])
    if progress:
        progress(0.1, "loading UMAP")
    import warnings

    import umap

    k = min(UMAP_PARAMS["n_neighbors"], n - 1)
    knn = None
    if n >= 4096:
        sub = (lambda f, m: progress(0.12 + 0.38 * f, m)) if progress else None
        idx, dist = exact_cosine_knn(vectors, k, progress=sub)
        knn = (idx, dist, None)
    if progress:
        progress(0.5 if knn else 0.15, f"laying out {n:,} points (the first run in a process also compiles UMAP)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs is 1 with a random_state; UMAP says so every time
        reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=UMAP_PARAMS["min_dist"],
                            metric=UMAP_PARAMS["metric"], random_state=seed, precomputed_knn=knn or (None, None, None))
        return np.asarray(reducer.fit_transform(np.asarray(vectors, dtype=np.float32)), dtype=np.float32)


def projection_note(frame: pd.DataFrame, n_items: int) -> str:
    """One line for the page: how many items the map shows, and why not all."""
    points = len(frame)
    total = int(frame.attrs.get("total", n_items))
    parts = [f"{points:,} items on the map"]
    if points < total:
        parts.append(f"a seeded sample of {total:,} items with text vectors, stratified by top-level category")
    if total < n_items:
        parts.append(f"{n_items - total:,} items have no text vector yet (run `crossrec encode`)")
    return "; ".join(parts) + "."


def ensure_projection(store: Store, settings=None, *, rec: Recommender | None = None, progress: Progress | None = None) -> pd.DataFrame | None:
    """Compute (or read) the map for the store's current items: call after training so the Map page is instant.

    Uses the fitted recommender's embeddings when given, else the store's stored vectors. None when no
    item text is encoded yet.
    """
    from .config import Settings

    settings = settings or Settings(db_path=store.path)
    if rec is not None and getattr(rec, "embeddings_", None) is not None:
        embeddings, items, model_id = rec.embeddings_, rec.items_, rec.model_id_
    else:
        from .encoder import item_embeddings

        from .encoder import Encoder
        model_id = Encoder.from_settings(settings).model_id
        if store.embedding_count(model_id) == 0:
            return None
        items = store.items().sort_values("item_id").reset_index(drop=True)
        embeddings = item_embeddings(store, model_id, items, settings.encoder.max_text_chars)
    return item_projection(store, embeddings, items, model_id, max_points=settings.dashboard.umap_max_points,
                           seed=settings.seed, progress=progress)
