"""A `head`-mode tuned encoder as a model the project's `Encoder` can load: base SentenceTransformer +
the trained head applied to its output.

A tuned-encoder folder holds `head.json` (the base model, the head's shape, which tower items use) and
`head.safetensors`. `Encoder(folder)` notices `head.json` and loads a `HeadModel`, which answers the
few calls `Encoder` makes on a SentenceTransformer (`encode`, `get_embedding_dimension`, `to`, `eval`),
so `encode`, `train`, queries and typed profiles all go through the tuned encoder unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .head import HEAD_CONFIG, load_head


def is_head_folder(path) -> bool:
    return (Path(path) / HEAD_CONFIG).is_file()


def head_config(path) -> dict:
    return json.loads((Path(path) / HEAD_CONFIG).read_text(encoding="utf-8"))


class HeadModel:
    """SentenceTransformer-like: base model → unit vectors → head tower → unit vectors (float32)."""

    def __init__(self, base, head, side: str = "candidate"):
        self.base = base
        self.head = head
        self.side = side

    @classmethod
    def load(cls, folder, device: str, load_base) -> "HeadModel":
        """`load_base(path, device)` loads the base SentenceTransformer (the Encoder's own loader)."""
        cfg = head_config(folder)
        from ..encoder import resolve_model

        base = load_base(resolve_model(cfg["base"]), device)
        return cls(base, load_head(Path(folder), device=device), cfg.get("side", "candidate"))

    def get_embedding_dimension(self) -> int:
        return int(self.base.get_embedding_dimension())

    def to(self, dtype) -> "HeadModel":
        self.base = self.base.to(dtype)  # the head stays float32: it is tiny
        return self

    def eval(self) -> "HeadModel":
        self.base.eval()
        return self

    def encode(self, texts, batch_size: int = 64, convert_to_numpy: bool = True, normalize_embeddings: bool = False,
               show_progress_bar: bool = False, **kwargs) -> np.ndarray:
        from .head import apply_head

        x = np.asarray(self.base.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=show_progress_bar),
                       dtype=np.float32)
        return apply_head(self.head, x, self.side)
