"""fitting.text_embedder: one loaded encoder per model for the process, each profile text encoded once."""
from __future__ import annotations

import numpy as np

from crossrec_core import fitting
from crossrec_core.config import Settings
from crossrec_core.encoder import Encoder


def test_profile_texts_are_encoded_once_per_process(tmp_path, monkeypatch):
    settings = Settings(db_path=tmp_path / "shop.duckdb").replace({"encoder.precision": "fp32"})
    assert fitting.text_embedder(settings, False) is None  # no item vectors: profiles are not read as text
    first = fitting.text_embedder(settings, True)
    v1 = first(["organic oat milk", "dark roast coffee beans"])
    key = fitting._model_key(settings)
    enc, memo = fitting._EMBEDDERS[key]
    assert set(memo) == {"organic oat milk", "dark roast coffee beans"}
    again = fitting.text_embedder(settings, True)
    v2 = again(["dark roast coffee beans", "organic oat milk", "dark roast coffee beans"])
    assert fitting._EMBEDDERS[key][0] is enc  # the model was not loaded a second time
    assert np.array_equal(v2[0], v1[1]) and np.array_equal(v2[1], v1[0]) and np.array_equal(v2[2], v1[1])
    fresh = Encoder(precision="fp32").encode(["organic oat milk"])
    assert np.allclose(v1[0], fresh[0], atol=1e-5)
    assert again([]).shape == (0, fresh.shape[1])
    # a bounded memo: past the limit it starts again and still answers every text of the call
    monkeypatch.setattr(fitting, "MAX_CACHED_TEXTS", 2)
    v3 = again(["fresh basil", "dark roast coffee beans"])
    assert set(memo) == {"fresh basil", "dark roast coffee beans"}
    assert np.array_equal(v3[1], v1[1])
    other = settings.replace({"encoder.batch_size": 8})
    assert fitting._model_key(other) == key  # batch size does not change a vector
    assert fitting._model_key(settings.replace({"encoder.precision": "bf16"})) != key


def test_queries_and_profiles_share_one_encoder(tmp_path):
    settings = Settings(db_path=tmp_path / "shop.duckdb").replace({"encoder.precision": "fp32"})
    enc = fitting.shared_encoder(settings)
    assert fitting._EMBEDDERS[fitting._model_key(settings)][0] is enc is fitting.shared_encoder(settings)
    assert fitting.shared_encoder(settings.replace({"encoder.precision": "bf16"})) is not enc
