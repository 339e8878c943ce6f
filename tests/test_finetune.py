"""`crossrec finetune`: pairs from the training period only, each mode learns camera → memory card, the
guard and the registry, a killed or time-bounded fine-tune, offline reload, CUDA choices on a CPU."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.store import Store

ROOT = Path(__file__).resolve().parents[1]

CAMERAS = ["Sony Alpha A7 IV mirrorless camera", "Canon EOS R6 full-frame camera", "Nikon Z6 II camera body",
           "Fujifilm X-T5 mirrorless camera", "Panasonic Lumix S5 camera", "Olympus OM-1 camera"]
CARDS = ["SanDisk Extreme 128GB SD memory card", "Lexar Professional 64GB SDXC card",
         "Kingston Canvas 256GB SD card", "Samsung PRO Plus 128GB memory card"]
OTHER = [("Linen shirt", "Apparel > Tops"), ("Trail running shoes", "Apparel > Shoes"),
         ("Cast iron skillet", "Home > Kitchen"), ("French press coffee maker", "Home > Kitchen"),
         ("Yoga mat 6 mm", "Sports > Fitness"), ("Dumbbell set 20 kg", "Sports > Fitness"),
         ("Organic avocados", "Grocery > Produce"), ("Greek yogurt", "Grocery > Dairy")]


def _shop(n_users: int = 160, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Camera buyers always buy a memory card in the same basket; others buy two unrelated things."""
    rng = np.random.default_rng(seed)
    items = [(f"cam{i}", t, "Electronics > Cameras") for i, t in enumerate(CAMERAS)]
    items += [(f"card{i}", t, "Electronics > Memory Cards") for i, t in enumerate(CARDS)]
    items += [(f"o{i}", t, c) for i, (t, c) in enumerate(OTHER)]
    items_df = pd.DataFrame(items, columns=["item_id", "title", "category"])
    items_df["description"] = ""
    items_df["brand"] = ""
    start = pd.Timestamp("2024-01-01")
    rows = []
    for u in range(n_users):
        for visit in range(2):
            t = start + pd.Timedelta(days=float(rng.uniform(0, 100)))
            if rng.random() < 0.6:
                basket = [f"cam{rng.integers(len(CAMERAS))}", f"card{rng.integers(len(CARDS))}"]
            else:
                basket = [f"o{j}" for j in rng.choice(len(OTHER), 2, replace=False)]
            for k, item in enumerate(basket):
                rows.append((f"u{u}", item, "purchase", (t + pd.Timedelta(seconds=k)).isoformat() + "Z"))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])
    return items_df, events


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    items, events = _shop()
    (tmp_path / "items.csv").write_text(items.to_csv(index=False), encoding="utf-8")
    (tmp_path / "events.csv").write_text(events.to_csv(index=False), encoding="utf-8")
    db = tmp_path / "shop.duckdb"
    with Store(db) as store:
        store.ingest_files(tmp_path / "items.csv", tmp_path / "events.csv")
    return db


def _cam_scores(vectors: np.ndarray, ids: list[str]) -> tuple[float, float]:
    """Mean cosine camera → memory card and camera → another camera."""
    pos = {i: k for k, i in enumerate(ids)}
    cams = [pos[f"cam{i}"] for i in range(len(CAMERAS))]
    cards = [pos[f"card{i}"] for i in range(len(CARDS))]
    V = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cam_card = float((V[cams] @ V[cards].T).mean())
    cc = V[cams] @ V[cams].T
    cam_cam = float(cc[~np.eye(len(cams), dtype=bool)].mean())
    return cam_card, cam_cam


# ---- pairs ----------------------------------------------------------------------------------------


def test_pairs_never_reach_the_test_period(shop_db: Path):
    from crossrec_core.evaluate import prepare_events, time_split
    from crossrec_core.finetune.pairs import PairSettings, build_pairs

    settings = Settings(db_path=shop_db)
    with Store(shop_db, read_only=True) as store:
        items = store.items()
        events = prepare_events(store.events())
    cut = time_split(events, settings)
    train = events[events["ts"] < cut]
    for order in ("same", "next", "both"):
        pairs = build_pairs(items, train, PairSettings(order=order))
        assert len(pairs) > 0
        assert (pd.to_datetime(pairs["last_ts"]) < cut).all()
        assert not pairs.duplicated(["a", "b"]).any()
    same = build_pairs(items, train, PairSettings(order="same"))
    ids = set(zip(same["a_id"], same["b_id"]))
    assert ("cam0", "card0") in ids or any(a.startswith("cam") and b.startswith("card") for a, b in ids)
    assert not any(a.startswith("cam") and b.startswith("cam") for a, b in ids)  # no camera bought with a camera


def test_pair_caps_and_cross_share(shop_db: Path):
    from crossrec_core.finetune.pairs import PairSettings, build_pairs

    with Store(shop_db, read_only=True) as store:
        items, events = store.items(), store.events()
    capped = build_pairs(items, events, PairSettings(order="same", max_per_item=2))
    assert capped.groupby("a").size().max() <= 2
    half = build_pairs(items, events, PairSettings(order="same", cross_share=0.5))
    assert abs(half["cross"].mean() - 0.5) < 0.1


# ---- choices that matter on a GPU, checked on a CPU ----------------------------------------------


def test_cuda_selection_logic(monkeypatch):
    from crossrec_core.finetune import run

    assert run.choose_mode("auto", "cuda") == "full"
    assert run.choose_mode("auto", "cpu") == "head"
    assert run.choose_mode("lora", "cuda") == "lora"
    assert run.training_precision("cuda", cuda_bf16=True, cpu_bf16=False) == "bf16"
    assert run.training_precision("cuda", cuda_bf16=False, cpu_bf16=True) == "fp16"
    assert run.training_precision("cpu", cuda_bf16=False, cpu_bf16=True) == "bf16"
    assert run.training_precision("cpu", cuda_bf16=False, cpu_bf16=False) == "fp32"
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert run.resolve_training_device("auto") == ("cuda", "fp16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run.resolve_training_device("auto")[0] == "cpu"
    from crossrec_core.errors import CrossRecError

    with pytest.raises(CrossRecError):
        run.resolve_training_device("cuda")
    with pytest.raises(CrossRecError):
        run.choose_mode("huge", "cpu")


def test_guard():
    from crossrec_core.finetune.run import improved

    assert improved({"all": 0.01, "pair_recall": 0.1}, {"all": 0.02, "pair_recall": 0.1})[0]
    assert not improved({"all": 0.01, "pair_recall": 0.1}, {"all": 0.02, "pair_recall": 0.05})[0]
    assert not improved({"all": 0.01, "pair_recall": 0.1}, {"all": 0.01, "pair_recall": 0.1})[0]
    assert not improved({"all": None, "pair_recall": None}, {"all": None, "pair_recall": None})[0]
