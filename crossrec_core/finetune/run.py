"""`crossrec finetune`: tune the item encoder on the shop's co-purchases, guarded and versioned.

1. Periods: the evaluation's test cut (`time_split`) is never crossed. Inside the training period the
   validation cut (`carve_validation`) splits it again: pairs come from before the validation cut, the
   guard's held-out pairs and users from after it.
2. Base vectors: the base encoder's item vectors (cached in the store by text hash, like `encode`).
3. Training by mode: `head` (frozen base + trainable head, the CPU default), `lora` or `full` (the
   transformer itself; `full` is the CUDA default). `max_minutes` stops at a step boundary and keeps a
   checkpoint (`<name>.partial/`) that `resume` continues.
4. Guard: content-only Recall@20 (all users, cold items) and pair Recall@10/MRR on the validation
   period, base against tuned, then the fused list's Recall@20 with the base text signal alone and with the
   tuned one beside it (the `content_tuned` signal; `fused_verdict`: not significantly worse overall, not
   worse on cold items). The tuned encoder is adopted only when it is better and the fused list is no worse
   (`force` overrides).
5. Versioned: the folder is written under a temporary name and renamed into place with its card and its
   item vectors (`vectors.npz`, what `content_tuned` reads); the vectors are also stored by text hash (the
   Map page's tuned projection); only then does the shop switch to it (`registry.use_encoder`).
"""
from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import Settings
from ..signals.registry import weights_for
from ..errors import CrossRecError
from ..progress import Progress, sub_progress
from . import registry
from .head import HeadSettings, TrainState
from .pairs import PairSettings, build_pairs, pair_summary

if TYPE_CHECKING:
    from ..store import Store


MODES = ("auto", "head", "lora", "full")
STATE_FILE = "state.json"


@dataclass
class FinetuneOptions:
    mode: str = "auto"
    base: str = "all-MiniLM-L6-v2"
    device: str = "auto"
    max_minutes: float | None = None
    epochs: float | None = None
    batch_size: int | None = None
    name: str | None = None
    resume: bool = False
    force: bool = False
    judge_fused: bool = True  # the guard also compares the fused list with base and tuned vectors
    pairs: PairSettings = field(default_factory=PairSettings)
    head: HeadSettings = field(default_factory=HeadSettings)
    lora_rank: int = 8
    lora_layers: int = 2  # LoRA on the top this many transformer layers
    max_pairs: int | None = 100_000  # lora/full: the heaviest this many pairs (an epoch of text is slow)


@dataclass
class FinetuneResult:
    name: str
    folder: Path
    mode: str
    device: str
    adopted: bool
    reason: str
    card: dict


# ---- pure choices (tested on any machine) ------------------------------------------------------


def choose_mode(mode: str, device: str) -> str:
    """'auto' → 'full' on CUDA (a GPU tunes the transformer in minutes), 'head' on CPU."""
    m = (mode or "auto").strip().lower()
    if m not in MODES:
        raise CrossRecError(f"unknown mode '{mode}' (use {', '.join(MODES)})")
    if m == "auto":
        return "full" if device == "cuda" else "head"
    return m


def training_precision(device: str, cuda_bf16: bool, cpu_bf16: bool) -> str:
    """Autocast dtype for training: CUDA → bf16 where the GPU supports it, else fp16; CPU → bf16 only
    on a CPU with native bf16 (AMX/AVX512-bf16), else fp32."""
    if device == "cuda":
        return "bf16" if cuda_bf16 else "fp16"
    return "bf16" if cpu_bf16 else "fp32"


def resolve_training_device(device: str) -> tuple[str, str]:
    """(device, precision) for this machine: 'auto' picks CUDA when PyTorch sees one."""
    from ..encoder import cpu_supports_bf16, resolve_device

    dev = resolve_device(device)
    cuda_bf16 = False
    if dev == "cuda":
        import torch

        cuda_bf16 = bool(torch.cuda.is_bf16_supported())
    return dev, training_precision(dev, cuda_bf16, dev == "cpu" and cpu_supports_bf16())


def fused_verdict(base: dict | None, tuned: dict | None, seed: int = 42) -> tuple[bool, str]:
    """The guard's fused-list check: the fused model's Recall@20 with the tuned vectors must not be worse
    than with the base ones on the validation period — not significantly on all shoppers (95 % paired
    interval), and not at all on the cold-item slice, where only text reaches."""
    if base is None or tuned is None:
        return True, ""
    from ..evaluate import paired_interval

    d, lo, hi = paired_interval(tuned["per_user"], base["per_user"], seed)
    if hi < 0:
        return False, f"the fused list's Recall@20 falls {d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
    cb, ct = base["slices"].get("cold_items"), tuned["slices"].get("cold_items")
    if cb is not None and ct is not None and ct < cb:
        return False, f"the fused list's cold-item Recall@20 falls {cb:.4f} → {ct:.4f}"
    return True, f"fused Recall@20 {d:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def improved(base: dict, tuned: dict) -> tuple[bool, str]:
    """The guard: content-only Recall@20 of all users and pair Recall@10 on the validation period must
    not fall, and one of them must rise."""
    pairs = [("content Recall@20", base.get("all"), tuned.get("all")),
             ("pair Recall@10", base.get("pair_recall"), tuned.get("pair_recall"))]
    known = [(n, b, t) for n, b, t in pairs if b is not None and t is not None]
    if not known:
        return False, "no validation users or pairs to judge the tuned encoder on"
    worse = [f"{n} {b:.4f} → {t:.4f}" for n, b, t in known if t < b]
    if worse:
        return False, "worse on the validation period: " + ", ".join(worse)
    if not any(t > b for _, b, t in known):
        return False, "no better than the base on the validation period"
    return True, "better on the validation period: " + ", ".join(f"{n} {b:.4f} → {t:.4f}" for n, b, t in known)


# ---- the run -----------------------------------------------------------------------------------


def _figures(split, pairs_held: pd.DataFrame, history: np.ndarray, candidate: np.ndarray | None = None) -> dict:
    from .measure import content_recall, pair_recall

    out = content_recall(split, history, candidate)
    out.update(pair_recall(pairs_held, history, candidate))
    return out


def finetune(store: Store, settings: Settings, opts: FinetuneOptions, progress: Progress | None = None) -> FinetuneResult:
    """Tune, guard, store and (when better, or forced) adopt an encoder for the shop in `store`."""
    from ..encoder import encode_items, item_embeddings
    from ..split import carve_validation, prepare_events, time_split

    t0 = time.perf_counter()
    device, precision = resolve_training_device(opts.device)
    mode = choose_mode(opts.mode, device)
    name = registry.check_name(opts.name) if opts.name else registry.default_name()
    root = registry.encoders_root(settings)
    final = root / name
    partial = root / f"{name}.partial"
    if final.exists() and not (opts.force or opts.resume):
        raise CrossRecError(f"an encoder named '{name}' exists already: pass --force or another --name")
    if opts.resume and not (partial / STATE_FILE).is_file():
        raise CrossRecError(f"nothing to resume: no checkpoint of '{name}' in {root}")
    hs = opts.head
    if opts.epochs is not None:
        hs.epochs = opts.epochs
    if opts.batch_size is not None:
        hs.batch_size = int(opts.batch_size)

    report = sub_progress(progress, 0.0, 0.1)
    if report:
        report(0.0, "reading the training period")
    items = store.items().sort_values("item_id").reset_index(drop=True)
    events = prepare_events(store.events())
    if items.empty or events.empty:
        raise CrossRecError("nothing to tune on: ingest items and events first")
    test_cut = time_split(events, settings)
    train_events = events[events["ts"] < test_cut]
    val = carve_validation(items, train_events, settings)
    pairs = build_pairs(items, val.train_events, opts.pairs)
    held = build_pairs(items, val.test_events, PairSettings(**{**opts.pairs.to_dict(), "order": "same",
                                                               "cross_share": None, "max_per_item": 10**9,
                                                               "event_types": opts.pairs.event_types}))
    if len(pairs) == 0:
        raise CrossRecError("no training pairs: no shopper bought two items together before the validation cut")
    if report:
        report(0.5, f"{len(pairs):,} pairs; base item vectors")
    from ..encoder import Encoder
    base_enc = Encoder.from_settings(settings, model=opts.base, device=device)
    encode_items(store, base_enc, items, progress=sub_progress(report, 0.5, 1.0))
    E = item_embeddings(store, base_enc.model_id, items, settings.encoder.max_text_chars)
    base_fig = _figures(val, held, E)

    root.mkdir(parents=True, exist_ok=True)
    max_seconds = None if opts.max_minutes is None else max(0.0, float(opts.max_minutes) * 60.0)
    train_progress = sub_progress(progress, 0.1, 0.85)
    if mode == "head":
        from .head import load_head, save_head, train_head

        head, state = None, None
        if opts.resume:
            head, state = load_head(partial, device=device), _read_state(partial)

        def checkpoint(h, s: TrainState) -> None:
            tmp = root / f".ck-{uuid.uuid4().hex[:8]}"
            save_head(h, tmp, hs, E.shape[1])
            registry.write_json_atomic(tmp / STATE_FILE, s.to_dict())
            shutil.rmtree(partial, ignore_errors=True)
            tmp.rename(partial)

        head, state = train_head(E, pairs, hs, max_seconds=max_seconds, progress=train_progress, device=device,
                                 head=head, state=state, checkpoint=checkpoint)
        from .head import apply_head

        H, G = apply_head(head, E, "history"), apply_head(head, E, "candidate")
        tuned_fig = _figures(val, held, G, G)  # what the shop serves: one vector per item (candidate tower)
        two_sided = _figures(val, held, H, G) if not hs.shared else None

        def write_model(tmp: Path) -> None:
            save_head(head, tmp, hs, E.shape[1])
            cfg = registry.read_json(tmp / "head.json")
            registry.write_json_atomic(tmp / "head.json", {**cfg, "base": base_enc.model_path, "side": "candidate"})
        vectors = G
        settings_used = {"head": hs.to_dict()}
    else:
        from .transformer import encode_texts, train_transformer

        two_sided = None
        epochs = 1.0 if opts.epochs is None else float(opts.epochs)
        batch_size = 64 if opts.batch_size is None else int(opts.batch_size)
        model, state = train_transformer(items, pairs, base_enc.model_path, mode=mode, device=device,
                                         precision=precision, epochs=epochs, batch_size=batch_size,
                                         max_seconds=max_seconds, progress=train_progress,
                                         lora_rank=opts.lora_rank, lora_layers=opts.lora_layers,
                                         max_pairs=opts.max_pairs, resume_from=partial if opts.resume else None,
                                         checkpoint_dir=partial)
        vectors = encode_texts(model, items, settings, progress=sub_progress(progress, 0.85, 0.9))
        tuned_fig = _figures(val, held, vectors)

        def write_model(tmp: Path) -> None:
            model.save_pretrained(str(tmp), safe_serialization=True, create_model_card=False)
        settings_used = {"epochs": epochs, "batch_size": batch_size, "lora_rank": opts.lora_rank,
                         "lora_layers": opts.lora_layers, "max_pairs": opts.max_pairs}

    ok, reason = improved(base_fig, tuned_fig)
    fused = {"base": None, "tuned": None}
    if ok and opts.judge_fused:
        from .measure import fused_recall

        if progress:
            progress(0.86, "judging the fused list with base and tuned item vectors")
        from ..signals.content_tuned import save_vectors

        weights = weights_for(settings)
        # the base text signal only, whatever the shop chose before
        alone = settings.replace({"encoder.tuned_encoder": None})
        beside = root / f".guard-{uuid.uuid4().hex[:8]}"  # the tuned vectors as content_tuned reads them
        save_vectors(beside, items["item_id"], vectors)
        try:
            k = settings.evaluation.k
            tuned = alone.replace({"encoder.tuned_encoder": str(beside)})
            fused = {"base": fused_recall(items, train_events, E, alone, weights, k),
                     "tuned": fused_recall(items, train_events, E, tuned, weights, k)}
        finally:
            shutil.rmtree(beside, ignore_errors=True)
        fused_ok, fused_reason = fused_verdict(fused["base"], fused["tuned"], settings.seed)
        reason = f"{reason}; {fused_reason}" if fused_ok else f"{fused_reason} on the validation period"
        ok = fused_ok
    adopt = ok or opts.force
    if not ok and opts.force:
        reason += " (adopted anyway: --force)"
    card = {
        "name": name, "mode": mode, "base": base_enc.model_name, "base_model_id": base_enc.model_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
        "precision": precision, "data_fingerprint": store.fingerprint(), "test_cut": str(test_cut),
        "validation_cut": str(val.cut), "pairs": {**pair_summary(pairs), "held_out": int(len(held))},
        "pair_settings": opts.pairs.to_dict(), "settings": settings_used,
        "training": {**state.to_dict(), "examples_per_s": state.examples / max(state.seconds, 1e-9)},
        "validation": {"base": base_fig, "tuned": tuned_fig, "tuned_two_sided": two_sided,
                       "fused_base": (fused["base"] or {}).get("slices"),
                       "fused_tuned": (fused["tuned"] or {}).get("slices")},
        "adopted": bool(adopt), "guard": reason,
    }
    if progress:
        progress(0.9, "saving the tuned encoder")
    tmp = root / f".tmp-{uuid.uuid4().hex[:8]}"
    write_model(tmp)
    from ..signals.content_tuned import save_vectors

    save_vectors(tmp, items["item_id"], vectors)
    registry.write_json_atomic(tmp / registry.CARD, card)
    registry.install_folder(tmp, final, force=opts.force or opts.resume)
    if not state.stopped:  # a run cut short keeps its checkpoint for --resume
        shutil.rmtree(partial, ignore_errors=True)
    tuned_enc = Encoder.from_settings(settings, model=str(final), device=device, batch_size=64)
    card["model_id"] = tuned_enc.model_id
    registry.write_json_atomic(final / registry.CARD, card)
    if adopt:
        if progress:
            progress(0.95, "storing the tuned item vectors")
        _store_vectors(store, tuned_enc.model_id, items, vectors, settings)
        registry.use_encoder(settings, name)
    card["seconds"] = time.perf_counter() - t0
    registry.write_json_atomic(final / registry.CARD, card)
    if progress:
        progress(1.0, "done")
    return FinetuneResult(name=name, folder=final, mode=mode, device=device, adopted=bool(adopt), reason=reason,
                          card=card)


def _read_state(folder: Path) -> TrainState:
    d = registry.read_json(folder / STATE_FILE)
    return TrainState(**{k: v for k, v in d.items() if k in TrainState.__dataclass_fields__})


def _store_vectors(store: Store, model_id: str, items: pd.DataFrame, vectors: np.ndarray, settings: Settings) -> None:
    """Put the tuned vectors in the store's text-hash cache, so `train` and serving find them."""
    from ..encoder import item_text, text_hash

    texts = item_text(items, settings.encoder.max_text_chars)
    keep = (texts != "").to_numpy()
    hashes = np.asarray(text_hash(texts[keep]), dtype=object)
    vecs = np.asarray(vectors, np.float32)[keep]
    _, first = np.unique(hashes, return_index=True)
    store.put_embeddings(model_id, list(hashes[first]), vecs[first])
