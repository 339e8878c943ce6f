"""Product families, the variant cap and the diversity knob: pure functions on small arrays."""
from __future__ import annotations

import numpy as np
import pandas as pd

from crossrec_core.variants import diversify, family_codes, select


def _items():
    return pd.DataFrame({
        "item_id": ["a", "b", "c", "d", "e"],
        "title": ["Peet's Whole Bean Coffee 500g, Decaf", "Peet's Whole Bean Coffee 1 kg, Decaf",
                  "Peet's Whole Bean Coffee 250g, Dark Roast", "Road Bike Helmet, Red", "Bike Bottle 750 ml"],
        "brand": ["Peet's", "Peet's", "Peet's", "Velora", "Velora"],
        "category": ["Grocery > Coffee"] * 3 + ["Sports > Cycling"] * 2,
    })


def test_sizes_and_variants_of_one_product_share_a_family():
    f = family_codes(_items())
    assert f[0] == f[1] == f[2] and len({f[0], f[3], f[4]}) == 3


def test_at_most_cap_variants_then_fill_only_when_short():
    f = family_codes(_items())
    idx = np.array([[0, 1, 2, 3, 4]])
    kept = select(idx, f, None, cap=2, similarity=0.9, k=4)
    assert list(idx[0][kept[0]]) == [0, 1, 3, 4]  # the third coffee size is skipped
    short = select(np.array([[0, 1, 2, -1, -1]]), f, None, cap=2, similarity=0.9, k=3)
    assert list(short[0]) == [0, 1, 2]  # nothing else to show: the skipped variant fills the list


def test_near_duplicate_texts_count_as_one_family():
    unit = np.array([[1, 0], [0.999, 0.0447], [0, 1], [0.6, 0.8]], np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    kept = select(np.array([[0, 1, 2, 3]]), np.arange(4), unit, cap=1, similarity=0.95, k=3)
    assert list(kept[0]) == [0, 2, 3]


def test_diversity_zero_keeps_the_order_and_above_zero_moves_a_duplicate_down():
    unit = np.array([[1, 0], [1, 0], [0, 1], [0.7, 0.7]], np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    idx = np.array([[0, 1, 2, 3]])
    assert (diversify(idx, unit, 0.0) == idx).all()
    moved = diversify(idx, unit, 1.0)[0]
    assert moved[0] == 0 and list(moved).index(1) > list(moved).index(2)
