"""Scale: the big demo shop streamed to Parquet, and the int8 ONNX encoder's guard."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_int8_encoder_is_used_only_when_it_reproduces_fp32(tmp_path):
    from crossrec_core.demo import generate
    from crossrec_core.encoder import Encoder, item_text

    texts = list(item_text(generate(n_items=600, n_users=60).items))[:400]
    cache = tmp_path / "db.duckdb.artefacts" / "onnx"
    int8 = Encoder(backend="onnx-int8", cache_dir=cache)
    int8.check_texts = texts
    got = int8.encode(texts)
    record_path = next(cache.glob("*/check.json"))
    record = json.loads(record_path.read_text())
    assert record["sample"] >= 400 and 0.9 < record["mean_cosine"] < 1.0
    fp32 = Encoder(backend="torch").encode(texts)
    cos = np.sum(got * fp32, axis=1)
    passed = record["mean_cosine"] >= 0.99 and record["top10_overlap"] >= 0.95
    assert int8.precision_ == ("int8" if passed else "fp32") and int8.backend_ == ("onnx-int8" if passed else "torch")
    assert cos.mean() >= (0.99 if passed else 0.9999)

    # a threshold the int8 model cannot meet: the recorded check (not measured again) sends it back to fp32
    stamp = record_path.stat().st_mtime_ns
    strict = Encoder(backend="onnx-int8", cache_dir=cache, int8_min_cosine=0.99999)
    strict_vectors = strict.encode(texts)
    assert record_path.stat().st_mtime_ns == stamp
    assert strict.precision_ == "fp32" and strict.backend_ == "torch"
    assert "int8 ONNX rejected" in strict.precision_reason_ and "using fp32" in strict.precision_reason_
    assert np.sum(strict_vectors * fp32, axis=1).min() > 0.9999

    # without a folder to cache the build in, nothing is written and torch runs
    plain = Encoder(backend="onnx-int8")
    plain.encode(texts[:3])
    assert plain.backend_ == "torch"
