"""`lora` and `full` modes: train the transformer itself with sentence-transformers' trainer.

- Loss: `MultipleNegativesRankingLoss` (in-batch softmax); its cached variant
  (`CachedMultipleNegativesRankingLoss`, gradient caching) past `CACHED_FROM` pairs per batch, so a
  large batch fits in memory. Batches come from the no-duplicates sampler (an item never appears twice
  in a batch, so it is never its own negative).
- Pairs: the heaviest `max_pairs` (by weight), anchor = item A's text, positive = item B's text.
- `lora`: peft LoRA adapters (rank `lora_rank`) on the attention and feed-forward projections of the
  top `lora_layers` transformer layers; merged into the weights at the end, so the saved folder is a
  plain sentence-transformers model (safetensors) that `Encoder` loads as any local model.
- Precision: CUDA trains in bf16 (where supported) or fp16 mixed precision; a CPU in bf16 only where
  it has native bf16, else fp32 (`run.training_precision`).
- Time: a callback stops at the next step boundary once `max_seconds` is spent. No trainer
  checkpoints are written (their optimizer state is a Python object dump); the weights reached so far are
  saved as safetensors in `checkpoint_dir`, and a resumed run starts from them.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .head import TrainState

CACHED_FROM = 256
TRAIN_STATE = "state.json"


def _load_st(path: str, device: str):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


def pair_texts(items: pd.DataFrame, pairs: pd.DataFrame, max_pairs: int | None, max_chars: int = 1000):
    from ..encoder import item_text

    text = item_text(items, max_chars).to_numpy(dtype=object)
    p = pairs.nlargest(max_pairs, "weight") if max_pairs and len(pairs) > max_pairs else pairs
    p = p[(text[p["a"].to_numpy()] != "") & (text[p["b"].to_numpy()] != "")]
    p = p.sample(frac=1.0, random_state=0)  # the heaviest first would put one item in every batch
    return list(text[p["a"].to_numpy()]), list(text[p["b"].to_numpy()])


def add_lora(model, rank: int, layers: int):
    """LoRA adapters on the top `layers` transformer layers of a sentence-transformers model (in place)."""
    from peft import LoraConfig, get_peft_model

    hf = model[0].auto_model
    n_layers = int(getattr(hf.config, "num_hidden_layers", 0) or 0)
    top = list(range(max(0, n_layers - layers), n_layers)) if n_layers else None
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05,
                        target_modules=["query", "key", "value", "dense"], layers_to_transform=top)
    model[0].auto_model = get_peft_model(hf, config)
    return model


def merge_lora(model):
    hf = model[0].auto_model
    if hasattr(hf, "merge_and_unload"):
        model[0].auto_model = hf.merge_and_unload()
    return model


def train_transformer(items: pd.DataFrame, pairs: pd.DataFrame, base_path: str, *, mode: str, device: str,
                      precision: str, epochs: float = 1.0, batch_size: int = 64, max_seconds: float | None = None,
                      progress=None, lora_rank: int = 8, lora_layers: int = 2, max_pairs: int | None = None,
                      resume_from: Path | None = None, checkpoint_dir: Path | None = None, lr: float | None = None):
    """Train; returns (merged SentenceTransformer, TrainState)."""
    import logging

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses
    from sentence_transformers.training_args import BatchSamplers
    from transformers import TrainerCallback

    for noisy in ("transformers", "sentence_transformers", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    start_path = str(resume_from) if resume_from is not None and (Path(resume_from) / "config.json").is_file() \
        else base_path
    state = TrainState()
    if resume_from is not None and (Path(resume_from) / TRAIN_STATE).is_file():
        d = json.loads((Path(resume_from) / TRAIN_STATE).read_text())
        state = TrainState(**{k: v for k, v in d.items() if k in TrainState.__dataclass_fields__})
    model = _load_st(start_path, device)
    if mode == "lora":
        add_lora(model, lora_rank, lora_layers)
    anchors, positives = pair_texts(items, pairs, max_pairs)
    if len(anchors) < 2:
        from ..errors import CrossRecError

        raise CrossRecError("too few pairs with text to train the transformer")
    bsz = int(max(2, min(batch_size, len(anchors))))
    data = Dataset.from_dict({"anchor": anchors, "positive": positives})
    loss = (losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=64) if bsz > CACHED_FROM
            else losses.MultipleNegativesRankingLoss(model))
    out_dir = Path(checkpoint_dir or ".") / ".trainer"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir), num_train_epochs=float(epochs), per_device_train_batch_size=bsz,
        learning_rate=lr or (1e-4 if mode == "lora" else 2e-5), warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none", logging_steps=1,
        disable_tqdm=True, fp16=precision == "fp16", bf16=precision == "bf16", use_cpu=device == "cpu",
        dataloader_num_workers=0, seed=42)
    t_start = time.perf_counter() - state.seconds
    base_examples = state.examples

    class Bound(TrainerCallback):
        def on_step_end(self, args_, tstate, control, **kw):
            state.step += 1
            state.examples = base_examples + tstate.global_step * bsz
            state.seconds = time.perf_counter() - t_start
            state.epoch = float(tstate.epoch or 0.0)
            if progress:
                total = max(tstate.max_steps, 1)
                rate = (state.examples - base_examples) / max(state.seconds, 1e-9)
                loss_now = state.losses[-1][1] if state.losses else float("nan")
                progress(tstate.global_step / total, f"epoch {state.epoch:.2f} loss {loss_now:.3f} {rate:,.1f} ex/s")
            if max_seconds is not None and state.seconds >= max_seconds:
                state.stopped = "time"
                control.should_training_stop = True
            return control

        def on_log(self, args_, tstate, control, logs=None, **kw):
            if logs and "loss" in logs:
                state.losses.append([round(float(tstate.epoch or 0.0), 3), round(float(logs["loss"]), 5)])

    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss, callbacks=[Bound()])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log dict; our progress bar says it once
    trainer.train()
    if mode == "lora":
        merge_lora(model)
    model.eval()
    if checkpoint_dir is not None and state.stopped:
        ck = Path(checkpoint_dir)
        ck.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(ck), safe_serialization=True, create_model_card=False)
        (ck / TRAIN_STATE).write_text(json.dumps(state.to_dict()))
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    return model, state


def encode_texts(model, items: pd.DataFrame, settings, progress=None) -> np.ndarray:
    """Item vectors (unit rows, zero for items without text) from a trained model."""
    from ..encoder import _unit_rows, item_text

    text = item_text(items, settings.encoder.max_text_chars)
    out = np.zeros((len(items), model.get_embedding_dimension()), np.float32)
    keep = np.flatnonzero((text != "").to_numpy())
    if len(keep):
        codes, uniq = pd.factorize(text.iloc[keep])
        vec = _unit_rows(model.encode(list(uniq), batch_size=64, convert_to_numpy=True, show_progress_bar=False))
        out[keep] = vec[codes]
    if progress:
        progress(1.0, "tuned item vectors")
    return out
