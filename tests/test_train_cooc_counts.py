"""The cooc signal fits from given pair counts (what the Ray engine computes) to the very state of its own fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.engine import counting_with, pair_counter
from crossrec_core.engine.ray_jobs import local_pair_counter, pair_counts
from crossrec_core.signals.cooc import CoocSignal
from crossrec_core.store import Store


@pytest.fixture(scope="module")
def data(small_shop_db):
    from crossrec_core.data import build_interactions

    with Store(small_shop_db, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        return build_interactions(items, store.events(), Settings())


def _same(a, b) -> None:
    for attr in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr


def test_cooc_from_pair_counts_equals_its_own_fit(data):
    settings = Settings().replace({"signals.cooc.neighbours": 15})  # rows above the cap, so the top-k (and its ties) matters
    own = CoocSignal.build(settings).fit(data)
    seen = []

    def counter(B):
        seen.append(B.shape)
        yield from local_pair_counter(B)

    assert pair_counter() is None
    with counting_with(counter):
        counted = CoocSignal.build(settings).fit(data)
    assert pair_counter() is None and seen == [data.X.shape]
    assert (np.diff(own.S_.indptr) == 15).sum() > 50
    _same(own.S_, counted.S_)
    _same(own.item_users_, counted.item_users_)


def test_chunks_of_whole_rows_give_the_same_state(data):
    """Counts arriving a bucket of rows at a time (as from the cluster's reducers) change nothing."""
    own = CoocSignal().fit(data)

    def in_buckets(B):
        (whole,) = local_pair_counter(B)
        for b in range(3):
            yield whole[whole["row"] % 3 == b].sample(frac=1.0, random_state=b)  # any order inside a chunk

    with counting_with(in_buckets):
        _same(own.S_, CoocSignal().fit(data).S_)


def test_other_weightings_keep_the_local_product(data):
    """Counts are numbers of shoppers: a log-weighted cooc cannot use them and fits as before."""
    called = []
    with counting_with(lambda B: called.append(1) or iter(())):
        weighted = CoocSignal(weighting="log").fit(data)
    assert not called
    _same(weighted.S_, CoocSignal(weighting="log").fit(data).S_)


def test_pair_counts_mirror():
    pairs = pd.DataFrame({"user": [0, 0, 0, 1, 1, 1], "item": [0, 1, 2, 1, 2, 2]})
    upper = pair_counts(pairs).sort_values(["item_i", "item_j"])
    assert upper.values.tolist() == [[0, 1, 1], [0, 2, 1], [1, 2, 2]]
    both = pair_counts(pairs, mirror=True).sort_values(["item_i", "item_j"])
    assert both.values.tolist() == [[0, 1, 1], [0, 2, 1], [1, 0, 1], [1, 2, 2], [2, 0, 1], [2, 1, 2]]
