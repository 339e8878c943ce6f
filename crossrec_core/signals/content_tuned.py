"""content_tuned: the shop's tuned text encoder (`crossrec finetune`) as a signal of its own, beside the base
text signal, so the ranker weighs both (a tuned encoder that learned what sells can lift the list without
taking away the base model's plain text likeness, which is what reaches new items).

Its item vectors are the chosen tuned encoder's (`Settings.tuned_encoder`, set from `crossrec encoders use`
or an adopted fine-tune: the guard decides), read from `vectors.npz` in that encoder's folder, matched to
the catalogue by item id (an item added after the fine-tune has no vector: it scores 0 here and the base
text signal still reaches it). With no tuned encoder the signal is not fitted at all (`available`), so it
costs nothing and contributes nothing.

score = unit(ctx.X @ T) @ Tᵀ: the shopper's confidence-weighted history in the tuned space. A typed profile
or a query is text the tuned item tower was not trained for: those contexts score 0 here (the base text
signal serves them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Settings
from ..data import Interactions
from ..vectors import unit_rows
from .base import Context, EvidenceBatch, Words, cited
from .content import ContentSignal

VECTORS = "vectors.npz"

_LOADED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # one tuned encoder's vectors per process


def save_vectors(folder: Path, item_ids, vectors: np.ndarray) -> Path:
    """Write a tuned encoder's item vectors (item ids as text, float32 rows) into its folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / VECTORS
    np.savez(path, item_ids=np.asarray(list(item_ids), dtype=str), vectors=np.asarray(vectors, np.float32))
    return path


def vectors_path(settings: Settings) -> Path | None:
    """The chosen tuned encoder's item vectors file, or None (no tuned encoder, or it has none)."""
    if not settings.encoder.tuned_encoder:
        return None
    path = Path(settings.encoder.tuned_encoder) / VECTORS
    return path if path.is_file() else None


def tuned_vectors(settings: Settings, item_ids: np.ndarray) -> np.ndarray | None:
    """n_items × d tuned vectors in the catalogue order of `item_ids` (zero rows for items without one), or None."""
    path = vectors_path(settings)
    if path is None:
        return None
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _LOADED:
        with np.load(path, allow_pickle=False) as z:
            _LOADED.clear()
            _LOADED[key] = (z["item_ids"], np.asarray(z["vectors"], np.float32))
    ids, vecs = _LOADED[key]
    pos = pd.Index(ids).get_indexer(np.asarray(item_ids, dtype=str))
    out = np.zeros((len(item_ids), vecs.shape[1]), np.float32)
    out[pos >= 0] = vecs[pos[pos >= 0]]
    return out


class ContentTunedSignal(ContentSignal, name="content_tuned", label="similar text (tuned)", color="#65a30d",
                         default_weight=0.1, needs_embeddings=False):
    """score = unit(history @ T) @ Tᵀ over the tuned encoder's item vectors T; evidence as the text signal's."""

    @classmethod
    def available(cls, settings: Settings, embeddings: np.ndarray | None) -> bool:
        return vectors_path(settings) is not None

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "ContentTunedSignal":
        return super().fit(data, tuned_vectors(data.settings, data.item_ids))

    def _profile(self, ctx: Context) -> np.ndarray:
        """B × d unit history vectors in the tuned space (zero rows: no history), once per batch."""
        E = self.embeddings_
        return ctx.cached((id(self), "profile"), lambda: unit_rows(np.asarray(ctx.X @ E, np.float32)))

    def score(self, ctx: Context) -> np.ndarray:
        if self.embeddings_.shape[1] == 0:
            return np.zeros((ctx.n, self.n_items_), np.float32)
        return np.asarray(self._profile(ctx) @ self.embeddings_.T, dtype=np.float32)

    def block_scorer(self, ctx: Context):
        E = self.embeddings_
        if E.shape[1] == 0:
            return lambda a, b: np.zeros((ctx.n, b - a), dtype=np.float32)
        P = self._profile(ctx)
        return lambda a, b: np.asarray(P @ E[a:b].T, dtype=np.float32)

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return cited(ev, words, "like {} by the shop's tuned text model", self.label)
