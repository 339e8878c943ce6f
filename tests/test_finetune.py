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
from crossrec_core.signals.registry import weights_for
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


def test_guard_judges_the_fused_list():
    """A tuned encoder that makes the served (fused) list worse is refused even when text alone gains."""
    from crossrec_core.finetune.run import fused_verdict

    per_user = np.random.default_rng(0).random(500)
    base = {"slices": {"all": 0.3, "cold_items": 0.2}, "per_user": per_user}
    assert fused_verdict(base, {"slices": {"all": 0.3, "cold_items": 0.2}, "per_user": per_user.copy()})[0]
    worse = {"slices": {"all": 0.2, "cold_items": 0.2}, "per_user": per_user - 0.1}
    ok, why = fused_verdict(base, worse)
    assert not ok and "falls -0.1000" in why
    cold = {"slices": {"all": 0.3, "cold_items": 0.1}, "per_user": per_user.copy()}
    ok, why = fused_verdict(base, cold)
    assert not ok and "cold-item" in why
    assert fused_verdict(None, None)[0]  # not judged (the text figures already refused it)


# ---- each mode learns camera → memory card ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory):
    """The tiny shop's items, its pairs (every event: no split needed here) and the base item vectors."""
    from crossrec_core.encoder import Encoder, item_text
    from crossrec_core.finetune.pairs import PairSettings, build_pairs

    items, events = _shop()
    items = items.sort_values("item_id").reset_index(drop=True)
    items["cat_top"] = items["category"].str.split(" > ").str[0]
    events["ts"] = pd.to_datetime(events["timestamp"]).dt.tz_localize(None)
    pairs = build_pairs(items, events, PairSettings(order="same"))
    enc = Encoder("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    base = enc.encode(item_text(items).tolist())
    return items, pairs, base, enc


@pytest.mark.slow
def test_head_mode_learns_goes_with(tiny_training):
    from crossrec_core.finetune.head import HeadSettings, apply_head, train_head

    items, pairs, base, _ = tiny_training
    ids = items["item_id"].tolist()
    card0, cam0 = _cam_scores(base, ids)
    assert cam0 > card0  # the off-the-shelf encoder measures sameness
    head, state = train_head(base, pairs, HeadSettings(epochs=40, batch_size=16, extra_negatives=8, shared=True))
    card1, cam1 = _cam_scores(apply_head(head, base, "candidate"), ids)
    assert card1 > cam1, (card0, cam0, card1, cam1)
    assert state.losses[-1][1] < state.losses[0][1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_transformer_modes_learn_goes_with(tiny_training, mode, tmp_path):
    from crossrec_core.finetune.transformer import encode_texts, train_transformer

    items, pairs, base, enc = tiny_training
    ids = items["item_id"].tolist()
    card0, cam0 = _cam_scores(base, ids)
    model, state = train_transformer(items, pairs, enc.model_path, mode=mode, device="cpu", precision="fp32",
                                     epochs=2, batch_size=8, checkpoint_dir=tmp_path,
                                     lr=2e-4 if mode == "full" else 3e-3, lora_layers=6)
    card1, cam1 = _cam_scores(encode_texts(model, items, Settings()), ids)
    # a few CPU steps: the memory card must gain clearly on the other cameras (on one machine it
    # overtook them after one epoch, on a busier one it came within 0.004; the head test asserts the flip)
    assert card1 - cam1 > card0 - cam0 + 0.03, (mode, card0, cam0, card1, cam1, state.to_dict())
    model.save_pretrained(str(tmp_path / "saved"), safe_serialization=True)
    assert not list((tmp_path / "saved").rglob("*.bin")) and not list((tmp_path / "saved").rglob("*.pt"))


# ---- the command: guard, registry, kill, time bound, offline reload --------------------------------


def _cli(*args: str) -> int:
    from crossrec_core.cli import main

    return main(list(args))


def _active(db: Path):
    from crossrec_core.finetune import registry

    return registry.chosen_name(Settings(db_path=db))


@pytest.mark.slow
def test_finetune_adopts_lists_and_switches(shop_db: Path, capsys):
    from crossrec_core.encoder import Encoder
    from crossrec_core.finetune import registry

    assert _cli("finetune", "--db", str(shop_db), "--epochs", "20", "--name", "t1", "--quiet") == 0
    out = capsys.readouterr().out
    assert "tuned encoder 't1' (head, cpu/" in out and "pair Recall@10" in out
    folder = registry.encoders_root(Settings(db_path=shop_db)) / "t1"
    card = json.loads((folder / "card.json").read_text())
    assert card["pairs"]["pairs"] > 0 and card["training"]["losses"] and card["validation"]["base"]
    if card["validation"]["tuned"]["all"] > card["validation"]["base"]["all"]:  # text gained: the fused list was judged
        assert set(card["validation"]["fused_base"]) >= {"all", "cold_items"}
        assert "fused" in card["guard"]
    assert pd.Timestamp(card["pairs"]["last_ts"]) < pd.Timestamp(card["validation_cut"]) < pd.Timestamp(card["test_cut"])
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.bin"))
    # forced: adopted whatever the guard said; the store holds its item vectors; settings name it beside the
    # base model (the content_tuned signal reads its vectors.npz, the base text signal keeps the base model)
    assert _cli("finetune", "--db", str(shop_db), "--epochs", "20", "--name", "t1", "--force", "--quiet") == 0
    capsys.readouterr()
    assert _active(shop_db) == "t1"
    settings = registry.with_chosen_encoder(Settings(db_path=shop_db))
    assert Path(settings.encoder.tuned_encoder) == folder and settings.encoder.model == Settings().encoder.model
    with np.load(folder / "vectors.npz", allow_pickle=False) as z:
        assert len(z["item_ids"]) == len(z["vectors"]) > 0
    model_id = Encoder(str(folder)).model_id
    assert model_id == json.loads((folder / "card.json").read_text())["model_id"]
    with Store(shop_db, read_only=True) as store:
        assert store.embedding_count(model_id) > 0
    assert _cli("encoders", "list", "--db", str(shop_db), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows if r["chosen"]] == ["t1"]
    # encode keeps the base model, whose vectors the fine-tune stored first
    assert _cli("encode", "--db", str(shop_db), "--quiet") == 0
    assert f"encoded 0 texts" in capsys.readouterr().out
    assert _cli("encoders", "use", "base", "--db", str(shop_db)) == 0
    assert _active(shop_db) == "base"
    assert _cli("encoders", "use", "nope", "--db", str(shop_db)) == 2


@pytest.mark.slow
def test_killed_finetune_leaves_the_serving_encoder(shop_db: Path, tmp_path: Path):
    from crossrec_core.finetune import registry

    settings = Settings(db_path=shop_db)
    root = registry.encoders_root(settings)
    assert _cli("finetune", "--db", str(shop_db), "--epochs", "5", "--name", "good", "--force", "--quiet") == 0
    active_before = (root / "active.json").read_bytes()
    env = {**os.environ, "CROSSREC_PROGRESS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "crossrec_core.cli", "finetune", "--db", str(shop_db),
                             "--epochs", "100000", "--name", "killed"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.time() + 120
    while b"ex/s" not in seen and time.time() < deadline and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 4096)
    assert b"ex/s" in seen, seen[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not (root / "killed").exists()
    assert (root / "active.json").read_bytes() == active_before
    assert registry.chosen_name(settings) == "good"
    with Store(shop_db) as store:  # the file is usable after the kill
        assert store.stats()["events"] > 0


@pytest.mark.slow
def test_max_minutes_is_honoured_and_resume_continues(shop_db: Path):
    from crossrec_core.finetune.run import FinetuneOptions, finetune

    settings = Settings(db_path=shop_db)
    with Store(shop_db) as store:
        t0 = time.perf_counter()
        res = finetune(store, settings, FinetuneOptions(mode="head", epochs=100000, max_minutes=0.05, name="m1"))
        wall = time.perf_counter() - t0
        tr = res.card["training"]
        assert tr["stopped"] == "time" and 2.5 <= tr["seconds"] < 6.0, tr["seconds"]
        assert wall < 60
        assert (res.folder.parent / "m1.partial" / "state.json").is_file()  # the checkpoint --resume reads
        res2 = finetune(store, settings, FinetuneOptions(mode="head", epochs=100000, max_minutes=0.1, name="m1",
                                                          resume=True))
        assert res2.card["training"]["step"] > tr["step"]


@pytest.mark.slow
def test_tuned_encoder_reloads_offline(shop_db: Path):
    from crossrec_core.finetune import registry

    assert _cli("finetune", "--db", str(shop_db), "--epochs", "5", "--name", "off", "--force", "--quiet") == 0
    folder = registry.encoders_root(Settings(db_path=shop_db)) / "off"
    code = (
        "import json, sys, numpy as np\n"
        "from crossrec_core.encoder import Encoder, item_embeddings\n"
        "from crossrec_core.store import Store\n"
        f"enc = Encoder({str(folder)!r}, device='cpu')\n"
        f"with Store({str(shop_db)!r}, read_only=True) as s:\n"
        "    items = s.items(); stored = item_embeddings(s, enc.model_id, items)\n"
        "from crossrec_core.encoder import item_text\n"
        "fresh = enc.encode(item_text(items).tolist())\n"
        "print(json.dumps({'min_cos': float(np.min(np.sum(fresh * stored, axis=1))), 'id': enc.model_id}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "HF_HOME": str(shop_db.parent / "empty-hf-home")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["min_cos"] > 0.999
    assert got["id"] == json.loads((folder / "card.json").read_text())["model_id"]


def test_cold_item_slice_ranks_new_items_only():
    """The cold-item slice read 0.0000 for every model (no cold item reaches a top-20 of the whole
    catalogue); it now ranks the items without training events, so text can show what it reaches."""
    from crossrec_core.evaluate import evaluate, fit_baselines, make_split

    items, events = _shop(n_users=80)
    extra = pd.DataFrame([("new_card", "Transcend 512GB SD memory card", "Electronics > Memory Cards", "", "")],
                         columns=items.columns)
    items = pd.concat([items, extra], ignore_index=True)
    from crossrec_core.ingest import split_category

    cats = split_category(items["category"])
    items = pd.concat([items.drop(columns="category"), cats], axis=1)
    late = pd.DataFrame([(f"u{u}", "new_card", "purchase", "2024-04-09T12:00:00Z") for u in range(0, 80, 4)],
                        columns=events.columns)
    events = pd.concat([events, late], ignore_index=True)
    settings = Settings()
    split = make_split(items, events, settings)
    users = list(split.users("cold_items"))
    assert users
    ex = split.slice_exclusions(users, "cold_items")
    warm = split.item_users > 0
    assert ex[:, warm].all() and not ex[:, ~warm].all()
    vecs = np.random.default_rng(0).normal(size=(len(split.items), 8)).astype(np.float32)
    result = evaluate(fit_baselines(split, settings, vecs, names=["content", "popularity"]), split, vecs)
    assert result["slices"]["cold_items"]["content"]["recall"] == pytest.approx(1.0)


def test_a_tuned_encoder_is_recorded_relative_to_the_database(tmp_path):
    """A run or model file names a tuned encoder relative to the database's artefacts folder, so a
    moved database still finds it (issue 12: nothing absolute is recorded)."""
    from crossrec_core.config import Settings

    db = tmp_path / "shop.duckdb"
    tuned = Settings(db_path=db).artefact_dir / "encoders" / "t1"
    recorded = Settings(db_path=db).replace({"encoder.model": str(tuned)}).to_dict()
    assert recorded["encoder"]["model"] == "{artefacts}/encoders/t1"
    moved = tmp_path / "elsewhere" / "shop.duckdb"
    back = Settings.from_dict(recorded).replace(db_path=moved).resolve_model()
    assert Path(back.encoder.model) == moved.with_name("shop.duckdb.artefacts") / "encoders" / "t1"
    assert Settings(db_path=db).replace({"encoder.model": "all-MiniLM-L6-v2"}).to_dict()["encoder"]["model"] == "all-MiniLM-L6-v2"


def test_fused_recall_fits_and_splits_like_every_measurement(small_shop_db: Path):
    """The guard's fused figures come from `fit_on_split` on the validation carve-out: the same cut and
    shoppers as `carve_validation`, one recall per evaluated shopper, and other vectors change the figures."""
    from crossrec_core.encoder import item_embeddings
    from crossrec_core.finetune.measure import fused_recall
    from crossrec_core.signals.registry import weights_for
    from crossrec_core.split import carve_validation, prepare_events, time_split

    settings = Settings(db_path=small_shop_db).replace({"encoder.precision": "fp32"})
    with Store(small_shop_db, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = prepare_events(store.events())
        from crossrec_core.encoder import Encoder
        emb = item_embeddings(store, Encoder.from_settings(settings).model_id, items, settings.encoder.max_text_chars)
    train_events = events[events["ts"] < time_split(events, settings)]
    val = carve_validation(items, train_events, settings)
    base = fused_recall(items, train_events, emb, settings, weights_for(settings), 20)
    assert len(base["per_user"]) == len(val.users("all")) > 0
    assert 0 < base["slices"]["all"] == pytest.approx(base["per_user"].mean())
    shuffled = fused_recall(items, train_events, emb[np.random.default_rng(0).permutation(len(emb))], settings,
                            weights_for(settings), 20)
    assert not np.array_equal(shuffled["per_user"], base["per_user"])
