"""The item map: seeded stratified sampling, the cache key, the note, and (slow: UMAP compiles) a
computed map stored in and read back from the store."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec_core.projection import (
    item_projection,
    projection_fingerprint,
    projection_note,
    stratified_sample,
)


def test_stratified_sample_keeps_every_category_and_is_seeded():
    cats = pd.Series(["big"] * 9000 + ["mid"] * 900 + ["tiny"] * 3)
    pos = stratified_sample(cats, 1000, seed=1)
    assert len(pos) == 1000 and len(set(pos)) == 1000 and (np.diff(pos) > 0).all()
    picked = cats.iloc[pos].value_counts()
    assert set(picked.index) == {"big", "mid", "tiny"}
    assert abs(picked["big"] / 1000 - 9000 / 9903) < 0.01
    assert (stratified_sample(cats, 1000, seed=1) == pos).all()
    assert not (stratified_sample(cats, 1000, seed=2) == pos).all()


def test_stratified_sample_small_inputs_and_many_categories():
    assert (stratified_sample(pd.Series(list("abc")), 10) == np.arange(3)).all()
    many = pd.Series([f"c{i}" for i in range(50)] * 2)
    assert len(stratified_sample(many, 20, seed=3)) == 20  # fewer points than categories


def test_fingerprint_changes_with_every_input():
    base = projection_fingerprint("m", "fp", 50_000, 42)
    assert base == projection_fingerprint("m", "fp", 50_000, 42)
    others = {projection_fingerprint("m2", "fp", 50_000, 42), projection_fingerprint("m", "fp2", 50_000, 42),
              projection_fingerprint("m", "fp", 10_000, 42), projection_fingerprint("m", "fp", 50_000, 7)}
    assert base not in others and len(others) == 4


def test_note_says_what_is_left_out():
    frame = pd.DataFrame({"item_id": ["a", "b"], "x": [0.0, 1.0], "y": [0.0, 1.0]})
    frame.attrs["total"] = 5
    note = projection_note(frame, 6)
    assert "2 items on the map" in note and "sample of 5" in note and "1 items have no text vector" in note


@pytest.mark.slow
def test_item_projection_is_computed_once_then_read_from_the_store(seeded_db):
    from crossrec_core.store import Store

    rng = np.random.default_rng(0)
    with Store(seeded_db) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        # a few hundred more items so UMAP has something to do
        extra = pd.DataFrame({"item_id": [f"x{i:03d}" for i in range(300)], "title": "t",
                              "category": [f"Cat{i % 4} > Sub" for i in range(300)]})
        store.ingest_frames(items=extra)
        items = store.items().sort_values("item_id").reset_index(drop=True)
        emb = rng.normal(size=(len(items), 16)).astype(np.float32)
        emb[0] = 0  # no text vector: left out
        first = item_projection(store, emb, items, "test-model", max_points=200, seed=1)
        assert len(first) == 200 and first.attrs["total"] == len(items) - 1 and first.attrs["computed_s"] > 0
        assert items["item_id"].iloc[0] not in set(first["item_id"])
        assert np.isfinite(first[["x", "y"]].to_numpy()).all()
        again = item_projection(store, emb, items, "test-model", max_points=200, seed=1)
        assert again.attrs["computed_s"] == 0.0
        pd.testing.assert_frame_equal(first[["item_id"]], again[["item_id"]])
        assert np.allclose(first[["x", "y"]].to_numpy(), again[["x", "y"]].to_numpy(), atol=1e-5)


def test_exact_knn_matches_brute_force_with_self_first():
    from crossrec_core.projection import exact_cosine_knn

    x = np.random.default_rng(5).normal(size=(300, 16)).astype(np.float32)
    x[7] = x[3]  # a duplicate: each must still come first in its own row
    idx, dist = exact_cosine_knn(x, 10, chunk=64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, 2.0)
    want = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    assert (idx[:, 0] == np.arange(300)).all() and np.allclose(dist[:, 0], 0, atol=1e-6)
    assert (np.sort(idx[:, 1:], axis=1) == np.sort(want[:, 1:], axis=1)).mean() > 0.99
    assert idx[3, 1] == 7 and idx[7, 1] == 3 and dist[3, 1] < 1e-5
    assert (np.diff(dist, axis=1) >= -1e-6).all()


def test_the_map_key_follows_the_catalog_not_the_events(seeded_db):
    from crossrec_core.store import Store

    with Store(seeded_db) as store:
        before, store_before = store.catalog_fingerprint(), store.fingerprint()
        items = store.items()
        user = store.user_ids()[0]
        store.ingest_frames(events=pd.DataFrame({"user_id": [user], "item_id": [items["item_id"].iloc[0]],
                                                 "event_type": ["view"], "timestamp": ["2025-01-01T00:00:00"]}))
        assert store.fingerprint() != store_before  # models are stale …
        assert store.catalog_fingerprint() == before  # … the map is not
        store.ingest_frames(items=pd.DataFrame({"item_id": [items["item_id"].iloc[0]], "title": ["A new title"],
                                                "category": [items["category"].iloc[0]]}))
        assert store.catalog_fingerprint() != before
