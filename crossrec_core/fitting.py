"""Split and fit, written once: training's evaluation, weight learning and what-if's held-out metrics all
fit the fused scorer on a time split's training period through `fit_on_split`, with the same inputs
(items, events, item embeddings and the users' typed profile texts), so their figures agree."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .config import Settings
from .split import Split, carve_validation, make_split
from .scorer import FusedScorer, Rules
from .progress import Progress


def text_embedder(settings: Settings, has_embeddings: bool) -> Callable[[list[str]], np.ndarray] | None:
    """The encoder of the item embeddings, for users' typed profile texts (None without embeddings)."""
    if not has_embeddings:
        return None
    from .encoder import Encoder
    enc = Encoder.from_settings(settings)
    return lambda texts: enc.encode(list(texts))


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
) -> tuple[Split, FusedScorer]:
    """The time split of `events` (at `cut` when given; with `validation`, the carve-out inside them: pass
    training events) and a fused scorer fitted on its training period. Profile texts become vectors with
    the encoder of the item embeddings, as at serving time."""
    embed = text_embedder(settings, embeddings is not None)
    if validation:
        split = carve_validation(items, events, settings, profile_texts=profile_texts, embed_texts=embed)
    else:
        split = make_split(items, events, settings, cut=cut, profile_texts=profile_texts, embed_texts=embed)
    fused = FusedScorer(settings, weights, rules, cross_weights=cross_weights).fit(split.train, embeddings, items,
                                                                                  progress)
    return split, fused
