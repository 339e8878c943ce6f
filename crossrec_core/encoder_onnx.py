"""An int8 ONNX Runtime backend for the sentence encoder: the CPU path where there is no native bf16.

Built locally from the model folder (nothing is downloaded): the transformer, mean pooling and the
L2 normalisation of the sentence-transformers pipeline are exported together with `torch.onnx.export`
and the weight matrices quantised to int8 per output channel (`quantize_dynamic`, MatMuls with a
constant weight only: the attention products, the feed-forward down-projections and the layer norms
stay in float).

Where it lives: `<db>.artefacts/onnx/<model label>/` (`model.int8.onnx`, `check.json`), beside the
run folders of the database the user named; nothing is written beside the model or anywhere else.

The guard: the first time, the int8 model encodes a sample (the fixed sample sentences plus up to
`CHECK_TEXTS` of the shop's own texts) next to the fp32 model, and `check.json` records the mean and
minimum cosine and how many of each sample text's 10 nearest neighbours (within the sample) stay the
same. The backend serves only while those figures meet the thresholds (`Settings.encoder.int8_min_cosine`,
`Settings.encoder.int8_min_top10`); otherwise the encoder stays on fp32 and says why.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import CrossRecError

BACKENDS = ("auto", "torch", "onnx-int8")
ONNX_FILE = "model.int8.onnx"
CHECK_FILE = "check.json"
CHECK_TEXTS = 1000  # shop texts in the guard's sample (deterministic: evenly spaced)
MIN_SAMPLE = 200  # fewer texts than this (fixed sentences included) make no check: top-10 needs a crowd
FORMAT = 1


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def supported(model_path: str) -> str:
    """'' when the folder is a plain Transformer → mean Pooling → (Normalize) pipeline, else the reason not."""
    folder = Path(model_path)
    if (folder / "head.json").is_file():
        return "a tuned encoder with a trained head"
    try:
        modules = _read_json(folder / "modules.json")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        pooling = next((m for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
        cfg = _read_json(folder / (pooling or {}).get("path", "") / "config.json") if pooling else {}
    except (OSError, ValueError, TypeError, AttributeError):
        return "no readable modules.json"
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        return f"pipeline {' → '.join(kinds)} is not Transformer → Pooling → Normalize"
    if not cfg.get("pooling_mode_mean_tokens") or any(
            cfg.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                 "pooling_mode_mean_sqrt_len_tokens")):
        return "pooling is not plain mean pooling"
    return ""


def cache_folder(root: Path, label: str) -> Path:
    """The folder of one model's int8 build under `root` (the database's `<db>.artefacts/onnx`)."""
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in label)[:100] or "model"
    return Path(root) / safe


def _max_seq_length(folder: Path, st_model=None) -> int:
    if st_model is not None:
        return int(st_model.max_seq_length)
    try:
        return int(_read_json(folder / "sentence_bert_config.json")["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return 256


def build(st_model, model_path: str, folder: Path) -> Path:
    """Export `st_model` (fp32, on CPU) with pooling and normalisation, quantise it, and write it atomically."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    transformer = st_model[0].auto_model

    class _Sentence(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask,
                       token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1)

    folder = Path(folder)
    tmp = folder.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        enc = st_model.tokenizer(["a short text", "a somewhat longer text to export"], padding=True,
                                 return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        if "token_type_ids" not in enc:
            enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Sentence(transformer).eval().to("cpu"), tuple(enc[n].cpu() for n in names),
                              str(tmp / "model.fp32.onnx"), input_names=names, output_names=["embedding"],
                              dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
        import logging

        logging.disable(logging.WARNING)  # its root-logger advice to pre-process is not for the user
        try:
            quantize_dynamic(str(tmp / "model.fp32.onnx"), str(tmp / ONNX_FILE), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"],
                             nodes_to_exclude=_ffn_down_projections(tmp / "model.fp32.onnx"),
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.disable(logging.NOTSET)
        (tmp / "model.fp32.onnx").unlink()
        meta = {"format": FORMAT, "model_path": str(model_path), "max_seq_length": _max_seq_length(folder, st_model),
                "inputs": names, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder / ONNX_FILE


def _ffn_down_projections(path: Path) -> list[str]:
    """The feed-forward output MatMuls: their input (after GELU) has the outliers that per-tensor int8
    activations round worst (on Instacart titles, keeping them in float lifts top-10 agreement 92 → 94 %)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name]


class OnnxSentenceModel:
    """The int8 model behind the same `encode` / `get_embedding_dimension` calls as a SentenceTransformer."""

    def __init__(self, folder: Path, model_path: str, threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        folder = Path(folder)
        meta = _read_json(folder / "meta.json")
        self.max_seq_length = int(meta.get("max_seq_length", 256))
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or _threads())
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(folder / ONNX_FILE), so, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._dim = int(self.session.get_outputs()[0].shape[-1])

    def get_embedding_dimension(self) -> int:
        return self._dim

    def eval(self) -> "OnnxSentenceModel":
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_ignored) -> np.ndarray:
        """(n, dim) float32 unit vectors, batches in the given order (the caller sorts by length)."""
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_seq_length,
                                 return_tensors="np")
            feed = {n: np.asarray(enc[n] if n in enc else np.zeros_like(enc["input_ids"]), dtype=np.int64)
                    for n in self._inputs}
            out[start:start + len(batch)] = self.session.run(None, feed)[0]
        return out


def _threads() -> int:
    try:
        import torch

        return max(1, int(torch.get_num_threads()))
    except ImportError:  # pragma: no cover - torch is a dependency
        return max(1, os.cpu_count() or 1)


def _length_sorted_encode(model, texts: list[str], batch_size: int = 32) -> np.ndarray:
    order = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    out[order] = np.asarray(model.encode([texts[i] for i in order], batch_size=batch_size,
                                         convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's k nearest neighbours (cosine, itself excluded) that `a` and `b` agree on."""
    n = len(a)
    k = min(k, n - 1)
    if k < 1:
        return 1.0
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -np.inf)
    np.fill_diagonal(sb, -np.inf)
    ta = np.argpartition(-sa, k - 1, axis=1)[:, :k]
    tb = np.argpartition(-sb, k - 1, axis=1)[:, :k]
    # rows of k neighbours each: count common ids per row without a Python loop
    both = np.sort(np.concatenate([ta, tb], axis=1), axis=1)
    common = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return float(common.mean() / k)


def check_sample(shop_texts: Sequence[str], fixed: Sequence[str]) -> list[str]:
    """The guard's sample: the fixed sentences plus up to CHECK_TEXTS distinct shop texts, evenly spaced."""
    uniq = list(dict.fromkeys(t for t in shop_texts if t))
    if len(uniq) > CHECK_TEXTS:
        uniq = [uniq[i] for i in np.linspace(0, len(uniq) - 1, CHECK_TEXTS).astype(int)]
    return list(dict.fromkeys([*fixed, *uniq]))


def run_check(fp32_model, int8_model, texts: list[str]) -> dict:
    """Encode `texts` with both models and measure how closely int8 reproduces fp32."""
    t0 = time.perf_counter()
    ref = _length_sorted_encode(fp32_model, texts)
    t1 = time.perf_counter()
    low = _length_sorted_encode(int8_model, texts)
    t2 = time.perf_counter()
    cos = np.sum(ref * low, axis=1)
    return {"format": FORMAT, "sample": len(texts), "mean_cosine": round(float(cos.mean()), 6),
            "min_cosine": round(float(cos.min()), 6), "top10_overlap": round(top_k_overlap(ref, low, 10), 6),
            "fp32_seconds": round(t1 - t0, 3), "int8_seconds": round(t2 - t1, 3),
            "checked": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def verdict(record: dict, min_cosine: float, min_top10: float) -> tuple[bool, str]:
    """Whether a recorded check meets the thresholds, with a one-line reason."""
    ok = record["mean_cosine"] >= min_cosine and record["top10_overlap"] >= min_top10
    figures = (f"mean cosine {record['mean_cosine']:.4f} (min {record['min_cosine']:.4f}), top-10 neighbours "
               f"{record['top10_overlap']:.1%} equal on {record['sample']:,} texts")
    if ok:
        return True, f"int8 ONNX reproduces fp32: {figures}"
    return False, (f"int8 ONNX rejected: {figures}; needs mean cosine ≥ {min_cosine} and ≥ {min_top10:.0%} "
                   f"of top-10 neighbours equal; using fp32")


def load_checked(folder: Path, model_path: str, fp32_loader, sample: list[str], min_cosine: float,
                 min_top10: float) -> tuple[OnnxSentenceModel | None, object | None, str, dict | None]:
    """The int8 model when its recorded (or, the first time, measured) check passes.

    Returns (int8 model or None, the fp32 model if it had to be loaded or None, reason, check record or None
    when too few texts were given to check it).
    `fp32_loader()` loads the fp32 SentenceTransformer on CPU; it is called only to build or check.
    """
    folder = Path(folder)
    record_path = folder / CHECK_FILE
    fp32 = None
    if not record_path.is_file() and len(sample) < MIN_SAMPLE:
        return None, None, (f"int8 ONNX not checked yet: its check needs {MIN_SAMPLE} texts and has {len(sample)} "
                            f"(`crossrec encode` checks it on the shop's item texts); using fp32"), None
    try:
        if not (folder / ONNX_FILE).is_file():
            fp32 = fp32_loader()
            build(fp32, model_path, folder)
        record = _read_json(record_path) if record_path.is_file() else None
        if record is None or record.get("format") != FORMAT:
            fp32 = fp32 or fp32_loader()
            record = run_check(fp32, OnnxSentenceModel(folder, model_path), sample)
            tmp = record_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
            os.replace(tmp, record_path)
    except CrossRecError:
        raise
    except OSError as exc:
        raise CrossRecError(f"cannot write the int8 encoder to {folder}: {exc.strerror or exc}") from None
    ok, reason = verdict(record, min_cosine, min_top10)
    return (OnnxSentenceModel(folder, model_path) if ok else None), fp32, reason, record
