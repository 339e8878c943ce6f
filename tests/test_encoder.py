"""Encoder: precision/device selection, item text, the real MiniLM model on CPU, and the store cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core.encoder import (
    DEFAULT_MODEL,
    Encoder,
    EncodeResult,
    choose_precision,
    cpu_supports_bf16,
    encode_items,
    encode_query,
    item_embeddings,
    item_text,
    resolve_device,
    resolve_model,
    text_hash,
)
from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store

# ---- pure selection logic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "device, requested, bf16, expected",
    [
        ("cuda", "auto", False, "fp16"),
        ("cuda", "auto", True, "fp16"),
        ("cpu", "auto", True, "bf16"),
        ("cpu", "auto", False, "fp32"),
        ("cpu", "fp32", True, "fp32"),
        ("cpu", "bf16", False, "bf16"),  # an explicit request wins (it is still checked against fp32)
        ("cuda", "fp32", False, "fp32"),
        ("cuda", "bf16", False, "bf16"),
        ("cuda", "fp16", False, "fp16"),
        ("cpu", "fp16", True, "fp32"),  # fp16 is slower than fp32 on CPU: documented fallback
        ("cpu", "FP32", True, "fp32"),
    ],
)
def test_choose_precision(device: str, requested: str, bf16: bool, expected: str) -> None:
    assert choose_precision(device, requested, bf16) == expected


def test_choose_precision_rejects_unknown() -> None:
    with pytest.raises(CrossRecError, match="unknown precision"):
        choose_precision("cpu", "int8", True)


def test_resolve_device() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CrossRecError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CrossRecError, match="no CUDA"):
            resolve_device("cuda")


def test_cpu_supports_bf16_matches_cpuinfo() -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert cpu_supports_bf16() == ("amx_bf16" in flags or "avx512_bf16" in flags)


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(CrossRecError):
        Encoder(precision="int4")
    with pytest.raises(CrossRecError):
        Encoder(device="tpu")
    with pytest.raises(CrossRecError):
        Encoder(batch_size=0)


# ---- item text -----------------------------------------------------------------------------------


def test_item_text_joins_skips_and_truncates() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "title": ["Sigma 35mm Lens", "  Hello\n  world! ", None, "", "Tent"],
            "category": ["Photography > Lenses", "Uncategorised", "Home > Garden", "", "Outdoor"],
            "brand": ["Sigma", "", None, "", 7],
            "description": ["Sharp  and\tfast.", None, "Solar lamp", "", ""],
            "price": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    text = item_text(items, 1000)
    assert list(text.index) == list(items.index)
    assert text.tolist() == [
        "Sigma 35mm Lens. Photography > Lenses. Brand: Sigma. Sharp and fast.",
        "Hello world!",
        "Home > Garden. Solar lamp",
        "",
        "Tent. Outdoor. Brand: 7.",
    ]
    short = item_text(items, 10)
    assert short.tolist() == ["Sigma 35mm", "Hello worl", "Home > Gar", "", "Tent. Outd"]
    assert all(len(t) <= 10 for t in short)


def test_item_text_missing_columns_and_empty_frame() -> None:
    assert item_text(pd.DataFrame({"title": ["Mug"]}), 100).tolist() == ["Mug."]
    assert item_text(pd.DataFrame({"title": []}), 100).tolist() == []
    with pytest.raises(CrossRecError):
        item_text(pd.DataFrame({"title": ["x"]}), 0)


def test_text_hash() -> None:
    h = text_hash(["Mug.", "Mug.", "mug.", "Läufer – grün"])
    assert h[0] == h[1] != h[2]
    assert all(len(x) == 20 and int(x, 16) >= 0 for x in h)
    assert text_hash(["Mug."]) == h[:1]  # stable across calls


# ---- model resolution and ids --------------------------------------------------------------------


def test_resolve_model_default_and_aliases() -> None:
    path = resolve_model(DEFAULT_MODEL)
    assert Path(path).is_dir()
    assert resolve_model(f"sentence-transformers/{DEFAULT_MODEL}") == path
    assert resolve_model(path) == path


def test_unknown_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(CrossRecError, match="does not exist"):
        Encoder(str(tmp_path / "no-such-model"))
    with pytest.raises(CrossRecError, match="offline"):
        resolve_model("no-such-org/no-such-model")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(CrossRecError, match="cannot load model"):
        Encoder(str(empty)).load()


def test_model_id_ignores_precision_and_needs_no_load(tmp_path: Path) -> None:
    ids = {Encoder(m, precision=p).model_id for m in (DEFAULT_MODEL, resolve_model(DEFAULT_MODEL))
           for p in ("fp32", "bf16", "auto")}
    assert ids == {"all-MiniLM-L6-v2@384"}
    enc = Encoder()
    assert enc.model_id and enc._model is None  # read from the folder's config files
    copy = tmp_path / "my-minilm"
    shutil.copytree(resolve_model(DEFAULT_MODEL), copy)
    local_id = Encoder(str(copy)).model_id
    assert local_id.startswith("my-minilm-") and local_id.endswith("@384")
    assert Encoder(str(copy)).model_id == local_id


# ---- the real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(device="cpu").load()


@pytest.fixture(scope="module")
def encoder_fp32() -> Encoder:
    return Encoder(device="cpu", precision="fp32").load()


def test_encode_shape_norm_and_similarity(encoder: Encoder) -> None:
    vecs = encoder.encode(["trail running shoes", "hiking boots", "baby stroller"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_encode_duplicates_order_progress_and_empty(encoder: Encoder) -> None:
    texts = [f"product number {i}" for i in range(40)] + ["product number 3", ""]
    calls: list[tuple[float, str]] = []
    small = Encoder(device="cpu", batch_size=4).load()  # chunks of 8 batches: 41 distinct texts → 2 reports
    vecs = small.encode(texts, progress=lambda f, m: calls.append((f, m)))
    assert vecs.shape == (42, 384)
    np.testing.assert_array_equal(vecs[40], vecs[3])
    assert len(calls) >= 2 and calls[-1][0] == 1.0
    assert all(a <= b for (a, _), (b, _) in zip(calls, calls[1:]))
    one = small.encode(["product number 37"])[0]
    assert float(one @ vecs[37]) > 0.999  # independent of batch composition and order
    assert encoder.encode([]).shape == (0, 384)


def test_encode_query(encoder: Encoder) -> None:
    v = encode_query(encoder, "  waterproof jacket ")
    assert v.shape == (384,)
    assert float(v @ encoder.encode(["waterproof jacket"])[0]) > 0.9999
    for blank in ("", "   ", "\n"):
        with pytest.raises(CrossRecError, match="empty query"):
            encode_query(encoder, blank)


def test_precision_choice_on_this_cpu(encoder: Encoder, encoder_fp32: Encoder) -> None:
    assert encoder.device_ == "cpu"
    if cpu_supports_bf16():
        assert encoder.precision_ == "bf16", encoder.precision_reason_
        assert encoder.check_min_cosine_ is not None and encoder.check_min_cosine_ >= 0.999
    else:
        assert encoder.precision_ == "fp32" and "no native bf16" in encoder.precision_reason_
    assert encoder_fp32.precision_ == "fp32"
    fp16 = Encoder(device="cpu", precision="fp16").load()
    assert fp16.precision_ == "fp32" and "slower" in fp16.precision_reason_


def test_failed_check_falls_back_to_fp32(monkeypatch: pytest.MonkeyPatch, encoder_fp32: Encoder) -> None:
    import crossrec_core.encoder as encoder_module

    monkeypatch.setattr(encoder_module, "MIN_COSINE", 1.5)  # a bar no reduced precision can pass
    monkeypatch.setattr(encoder_module, "_check_cache", {})
    enc = Encoder(device="cpu", precision="bf16").load()
    assert enc.precision_ == "fp32" and "rejected" in enc.precision_reason_
    texts = ["trail running shoes", "Organic Bananas. Grocery > Fruit."]
    cos = np.sum(enc.encode(texts) * encoder_fp32.encode(texts), axis=1)
    assert cos.min() > 0.99999  # the fp32 weights were reloaded, not rounded bf16 ones


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_bf16_matches_fp32(encoder_fp32: Encoder) -> None:
    bf16 = Encoder(device="cpu", precision="bf16").load()
    assert bf16.precision_ == "bf16", bf16.precision_reason_
    texts = item_text(_catalog(), 1000).tolist() + ["gift for a dad who likes camping", "Organic bananas"]
    cos = np.sum(bf16.encode(texts) * encoder_fp32.encode(texts), axis=1)
    assert cos.min() >= 0.999


# ---- store cache ---------------------------------------------------------------------------------


def _catalog() -> pd.DataFrame:
    rows = [
        ("i01", "Trail Running Shoes", "Sports > Running > Shoes", "Fast grip on rocky trails.", "Salomon", 120.0),
        ("i02", "Hiking Boots", "Sports > Outdoor > Footwear", "Waterproof leather boots.", "Meindl", 180.0),
        ("i03", "Baby Stroller", "Baby > Strollers", "Light stroller with rain cover.", "Joie", 250.0),
        ("i04", "Sigma 35mm Lens", "Photography > Lenses", "", "Sigma", 799.0),
        ("i05", "Espresso Beans 1 kg", "Grocery > Coffee", "Dark roast.", "Lavazza", 19.5),
        ("i06", "Cast Iron Skillet", "Home > Kitchen > Cookware", "Pre-seasoned, 12 inch.", "Lodge", 39.0),
        ("i07", "Yoga Mat", "Sports > Fitness", "Non-slip, 6 mm.", "", 25.0),
        ("i08", "Organic Bananas", "Grocery > Fruit", "", "", 2.0),
        ("i09", "Kids Bike Helmet", "Sports > Cycling", "Adjustable.", "Giro", 45.0),
        ("i10", "Wireless Headphones", "Electronics > Audio", "Noise cancelling.", "Sony", 299.0),
        ("i11", "Organic Bananas", "Grocery > Fruit", "", "", 2.5),  # same text as i08: encoded once
        ("i12", "", "", "", "", 1.0),  # no text at all: no vector, a zero row
    ]
    return pd.DataFrame(rows, columns=["item_id", "title", "category", "description", "brand", "price"])


def test_encode_items_caches_by_text(tmp_path: Path, encoder: Encoder) -> None:
    df = _catalog()
    n_texts = df["item_id"].nunique() - 2
    with Store(tmp_path / "shop.duckdb") as store:
        store.ingest_frames(items=df)
        calls: list[float] = []
        first = encode_items(store, encoder, progress=lambda f, m: calls.append(f))
        assert isinstance(first, EncodeResult)
        assert (first.encoded, first.reused) == (n_texts, 0)
        assert first.model_id == encoder.model_id == "all-MiniLM-L6-v2@384"
        assert calls[0] == 0.0 and calls[-1] == 1.0
        assert store.embedding_count(encoder.model_id) == n_texts

        second = encode_items(store, encoder)
        assert (second.encoded, second.reused) == (0, n_texts)

        changed = df.copy()
        changed.loc[changed["item_id"] == "i04", "title"] = "Sigma 50mm Portrait Lens"
        store.ingest_frames(items=changed)
        third = encode_items(store, encoder)
        assert (third.encoded, third.reused) == (1, n_texts - 1)
        assert store.embedding_count(encoder.model_id) == n_texts + 1

        # the recommender's catalog matrix: rows in the order of the frame given, zeros where unknown
        items = store.items().sample(frac=1.0, random_state=1).reset_index(drop=True)
        extra = pd.DataFrame([{"item_id": "zz", "title": "Never encoded", "category": "X", "description": "",
                               "brand": "", "price": 1.0}])
        frame = pd.concat([items, extra], ignore_index=True)
        mat = item_embeddings(store, encoder.model_id, frame, 1000)
        assert mat.shape == (len(frame), 384) and mat.dtype == np.float32
        pos = {iid: i for i, iid in enumerate(frame["item_id"])}
        assert not mat[-1].any() and not mat[pos["i12"]].any()
        has_text = (item_text(frame, 1000) != "").to_numpy().copy()
        has_text[-1] = False
        np.testing.assert_allclose(np.linalg.norm(mat[has_text], axis=1), 1.0, atol=1e-5)
        fresh = encoder.encode(item_text(frame[has_text], 1000).tolist())
        assert np.sum(mat[has_text] * fresh, axis=1).min() > 0.999
        np.testing.assert_array_equal(mat[pos["i08"]], mat[pos["i11"]])
        sims = mat @ mat[pos["i01"]]
        assert sims[pos["i02"]] > sims[pos["i03"]]

        # the fp32 encoder shares the cache (same model id): nothing to encode
        assert encode_items(store, Encoder(device="cpu", precision="fp32")).encoded == 0


def test_encode_items_empty_catalog(tmp_path: Path, encoder: Encoder) -> None:
    with Store(tmp_path / "empty.duckdb") as store:
        res = encode_items(store, encoder)
        assert (res.encoded, res.reused) == (0, 0)
        assert item_embeddings(store, encoder.model_id, store.items(), 1000).shape == (0, 384)
