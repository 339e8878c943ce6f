"""Split and fit, written once: training's evaluation, weight learning and what-if's held-out metrics all
fit the fused scorer on a time split's training period through `fit_on_split`, with the same inputs
(items, events, item embeddings and the users' typed profile texts), so their figures agree."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import Settings
from .split import Split, carve_validation, make_split
from .scorer import FusedScorer, Rules
from .progress import Progress


# one loaded encoder (and the profile texts it has already encoded) per model, for the life of the process:
# a training fits five times (weights, two ranker windows, evaluation, serving) on the same profile texts
_EMBEDDERS: dict[tuple, tuple[object, dict[str, np.ndarray]]] = {}
MAX_CACHED_TEXTS = 200_000  # past this many distinct texts the memo starts again (about 300 MB at 384 dims)


def _model_key(settings: Settings) -> tuple:
    """What decides the vectors: the model (its folder's modification time, so a rewritten folder reloads),
    device, precision, backend and where its int8 build is cached."""
    try:
        stamp = Path(settings.encoder.model).stat().st_mtime_ns
    except (OSError, ValueError):
        stamp = None
    e = settings.encoder
    return (e.model, stamp, e.device, e.precision, e.backend,
            str(settings.artefact_dir))


def _entry(settings: Settings) -> tuple:
    """(the process's encoder for these settings, the texts it has encoded)."""
    from .encoder import Encoder

    key = _model_key(settings)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = (Encoder.from_settings(settings), {})
    return _EMBEDDERS[key]


def shared_encoder(settings: Settings):
    """The one encoder of these settings in this process (queries, profiles and the fits' profile texts)."""
    return _entry(settings)[0]


def text_embedder(settings: Settings, has_embeddings: bool) -> Callable[[list[str]], np.ndarray] | None:
    """The encoder of the item embeddings, for users' typed profile texts (None without embeddings). The
    model is loaded once per process and a text already encoded is not encoded again."""
    if not has_embeddings:
        return None
    enc, memo = _entry(settings)

    def embed(texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            if len(memo) + len(missing) > MAX_CACHED_TEXTS:
                memo.clear()
                missing = list(dict.fromkeys(texts))
            memo.update(zip(missing, enc.encode(missing)))
        if not texts:
            return np.zeros((0, enc.dim), np.float32)
        return np.stack([memo[t] for t in texts]).astype(np.float32, copy=False)

    return embed


def fit_on_split(
    items: pd.DataFrame,
    events: pd.DataFrame,
    settings: Settings,
    weights: dict[str, float] | None = None,
    *,
    validation: bool = False,
    cut: pd.Timestamp | None = None,
    embeddings: np.ndarray | None = None,
    profile_texts: pd.DataFrame | None = None,
    cross_weights: dict[str, float] | None = None,
    rules: Rules | None = None,
    progress: Progress | None = None,
    fitted: dict | None = None,
) -> tuple[Split, FusedScorer]:
    """The time split of `events` (at `cut` when given; with `validation`, the carve-out inside them: pass
    training events) and a fused scorer fitted on its training period. Profile texts become vectors with
    the encoder of the item embeddings, as at serving time. `fitted`: signals already fitted on this split's
    training period (`FusedScorer.fit`)."""
    embed = text_embedder(settings, embeddings is not None)
    if validation:
        split = carve_validation(items, events, settings, profile_texts=profile_texts, embed_texts=embed)
    else:
        split = make_split(items, events, settings, cut=cut, profile_texts=profile_texts, embed_texts=embed)
    fused = FusedScorer(settings, weights, rules, cross_weights=cross_weights).fit(split.train, embeddings, items,
                                                                                  progress, fitted)
    return split, fused
