"""Batch explanations (one evidence call per signal for a whole batch of shoppers) say exactly what the
per-shopper path said before them (tests/explain_reference.py): the same reasons, the same evidence, and
a byte-identical export CSV."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from crossrec_core.config import Settings
from crossrec_core.explain import explain_items
from crossrec_core.export import columns, export_bytes
from crossrec_core.recommender import Recommender
from crossrec_core.rules import Rule
from crossrec_core.scorer import Rules
from crossrec_core.signals.registry import contributions
from crossrec_core.store import Store

import explain_reference as ref


@pytest.fixture(scope="module")
def rec(small_shop_db):
    store = Store(small_shop_db, read_only=True)
    yield Recommender(Settings(db_path=small_shop_db)).fit(store)
    store.close()


@pytest.fixture(scope="module")
def ruled(rec):
    """The same fit serving a pin, a boost of one category and a pair rule."""
    items = rec.items_
    cat = items["category"].iloc[5]
    return rec.with_weights(rules=Rules(managed=[Rule("pin", item=items["item_id"].iloc[7], position=2, name="pinned"),
                                                 Rule("boost", category=cat, multiplier=2.0, name="more of it")]))


@pytest.mark.parametrize("mode", ["all", "cross"])
def test_batch_reasons_and_evidence_equal_the_per_shopper_path(rec, mode):
    users = rec.store.user_ids()[:80]
    n_pairs = 0
    for _, ctx, (idx, _, parts, _) in rec.ranked_batches(users, 20, mode, batch_size=32):
        keep = idx >= 0
        rows, _ = np.nonzero(keep)
        got = rec.reasons(ctx, rows, idx[keep], {name: v[keep] for name, v in parts.items()})
        want = []
        for row in range(ctx.n):
            items = idx[row][keep[row]]
            if not len(items):
                continue
            listed = {name: v[row][keep[row]].astype(np.float64) for name, v in parts.items()}
            contribs = [dict(zip(listed, vals)) for vals in zip(*listed.values())]
            old = ref.explain_items(rec.scorer_, ctx, row, items, contribs, rec.item_columns)
            new = explain_items(rec.scorer_, ctx, row, items, listed, rec.item_columns)
            assert [e.reason for e in new] == [r for r, _ in old]
            assert [e.evidence for e in new] == [ev for _, ev in old]
            want += [r for r, _ in old]
        assert got == want
        n_pairs += len(got)
    assert n_pairs > 1000


def test_user_page_lists_keep_their_reasons_and_evidence(rec):
    """recommend(explain=True), what the User page shows, against the per-shopper reference."""
    for uid in rec.store.user_ids()[:5]:
        df = rec.recommend(uid, k=20, explain=True)
        ctx, _ = rec.user_context([uid])
        items = rec.data_.item_index.get_indexer(df["item_id"])
        contribs = [{s: float(v) for s, v in zip(contributions(), vals)} for vals in df[list(contributions())].to_numpy()]
        old = ref.explain_items(rec.scorer_, ctx, 0, items, contribs, rec.item_columns)
        assert df["reason"].tolist() == [r for r, _ in old]
        assert df["evidence"].tolist() == [ev for _, ev in old]
        assert any(ev for e in df["evidence"] for ev in e.values())  # some evidence is cited at all


def _reference_csv(rec, users, **kw) -> bytes:
    buf = io.BytesIO()
    text = io.TextIOWrapper(buf, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns())
    writer.writerows(ref.iter_rows(rec, users, **kw))
    text.flush()
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["all", "cross", "target"])
def test_export_csv_is_byte_identical_to_the_per_shopper_export(ruled, mode):
    category = ruled.items_["cat_top"].iloc[3] if mode == "target" else None
    users = ruled.store.user_ids()[:120]
    new = export_bytes(ruled, users, k=20, mode=mode, category=category)
    assert new == _reference_csv(ruled, users, k=20, mode=mode, category=category, batch_size=256)
    assert new.count(b"\r\n") > 120 * 5 and (b"pinned" in new or mode != "all")


def test_fallback_lists_are_byte_identical_too(ruled):
    """Every item of the target category excluded by a rule: some shoppers of each batch fall back to their
    all-categories list (scored together in the batch path, one by one before)."""
    cat = ruled.items_["category"].iloc[11]
    gone = ruled.with_weights(rules=Rules(managed=[*ruled.rules.managed, Rule("exclude", category=cat, name="gone")]))
    users = gone.store.user_ids()[:70]
    new = export_bytes(gone, users, k=20, mode="target", category=cat)
    assert new == _reference_csv(gone, users, k=20, mode="target", category=cat, batch_size=256)
    assert b"Fallback (nothing left" in new
