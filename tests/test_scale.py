"""Scale: the big demo shop streamed to Parquet, and the int8 ONNX encoder's guard."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crossrec_core.bigshop import write_parquet
from crossrec_core.demo import PLANTED_JOURNEYS

SMALL = dict(n_events=40_000, n_items=1_500, n_users=1_500, chunk_users=600, base_items=600)


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bigshop") / "a"
    write_parquet(folder, **SMALL)
    return folder


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {k: pd.read_parquet(folder / f"{k}.parquet") for k in ("items", "events", "users")}


def test_big_shop_is_deterministic_and_consistent(small_shop, tmp_path):
    again = write_parquet(tmp_path / "b", **SMALL)
    a, b = _frames(small_shop), _frames(tmp_path / "b")
    for kind in a:
        pd.testing.assert_frame_equal(a[kind], b[kind])
    items, events, users = a["items"], a["events"], a["users"]
    assert again.events == len(events) and again.items == len(items) == SMALL["n_items"]
    assert abs(len(events) / SMALL["n_events"] - 1) < 0.15  # a target, not an exact count
    assert items["item_id"].is_unique and items["title"].is_unique  # editions past base_items keep titles apart
    assert set(events["item_id"]) <= set(items["item_id"]) and set(events["user_id"]) <= set(users["user_id"])
    assert set(events["event_type"]) == {"view", "cart", "purchase"}
    # chunks are row groups: the file is written piece by piece, never held whole
    import pyarrow.parquet as pq

    assert pq.ParquetFile(small_shop / "events.parquet").metadata.num_row_groups == 3


def test_big_shop_keeps_the_planted_journeys(small_shop):
    f = _frames(small_shop)
    ev = f["events"].merge(f["items"][["item_id", "category"]], on="item_id")
    lifts = []
    for src, dst in PLANTED_JOURNEYS:
        first_buy = ev[(ev["category"] == src) & (ev["event_type"] == "purchase")].groupby("user_id")["timestamp"].min()
        into_dst = ev[ev["category"] == dst]
        later = into_dst.merge(first_buy.rename("t0"), on="user_id")
        followed = later.loc[later["timestamp"] > later["t0"], "user_id"].nunique() / max(1, len(first_buy))
        base = into_dst["user_id"].nunique() / ev["user_id"].nunique()
        lifts.append(followed / base if base else 0.0)
    assert np.median(lifts) > 2.0, lifts


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CROSSREC_HOME": str(cwd / "home")}
    env.pop("CROSSREC_DB", None)
    return subprocess.run([sys.executable, "-m", "crossrec_core.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL, cwd=cwd)


def test_demo_big_shop_cli_loads_through_the_ingest(tmp_path):
    db, parquet = tmp_path / "big.duckdb", tmp_path / "parquet"
    proc = _cli("demo", "--db", str(db), "--events", "12_000", "--items", "700", "--users", "500",
                "--no-encode", "--parquet-dir", str(parquet), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    f = _frames(parquet)
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "events", "users")}
    finally:
        con.close()
    assert counts == {"items": len(f["items"]), "events": len(f["events"]), "users": len(f["users"])}
    assert f"{len(f['events']):,} events" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.duckdb", "parquet"]  # no temporary left behind

    proc = _cli("demo", "--db", str(tmp_path / "x.duckdb"), "--events", "1000", "--items", "600", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr == "crossrec demo: a big shop needs all three of --events, --items and --users\n"
    assert not (tmp_path / "x.duckdb").exists()


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
    # too few texts to check on (no shop texts given): no build, no record, fp32
    fresh = tmp_path / "other.artefacts" / "onnx"
    few = Encoder(backend="onnx-int8", cache_dir=fresh)
    few.encode(texts[:3])
    assert few.backend_ == "torch" and "not checked yet" in few.precision_reason_ and not fresh.exists()


def test_settings_build_the_one_encoder_and_auto_keeps_small_encodes_on_torch(tmp_path):
    """Settings.encoder is Encoder.from_settings (backend, int8 cache beside the database); "auto" asks for
    the int8 build only for a planned encode of int8_min_texts texts or more, so the many small test
    databases never build one (decided without loading a model)."""
    from crossrec_core.config import Settings
    from crossrec_core.encoder import cpu_supports_bf16
    from crossrec_core.encoder_onnx import onnxruntime_available

    settings = Settings(db_path=tmp_path / "shop.duckdb").replace({"encoder.int8_min_texts": 500})
    from crossrec_core.encoder import Encoder
    enc = Encoder.from_settings(settings, batch_size=8)
    assert (enc.requested_backend, enc.cache_dir, enc.int8_min_texts, enc.batch_size) == (
        "auto", tmp_path / "shop.duckdb.artefacts" / "onnx", 500, 8)
    assert not enc._int8_wanted("cpu")  # nothing planned: a query, a profile
    enc.planned_texts = 499
    assert not enc._int8_wanted("cpu")
    enc.planned_texts = 500
    assert enc._int8_wanted("cpu") == (onnxruntime_available() and not cpu_supports_bf16())
    assert not enc._int8_wanted("cuda")  # fp16 on the GPU instead
    assert not Encoder.from_settings(settings.replace({"encoder.backend": "torch"}))._int8_wanted("cpu")
    forced = Encoder.from_settings(settings.replace({"encoder.backend": "onnx-int8"}))
    assert forced._int8_wanted("cpu") == onnxruntime_available()  # asked for: whatever the size
    assert not (tmp_path / "shop.duckdb.artefacts").exists()  # deciding built nothing
