"""The six scoring signals, implicit / scikit-learn style: settings in the constructor,
`fit(data, embeddings)` returns self, `score(ctx)` gives B × n_items raw float32 scores,
`evidence(ctx, row, items)` names the history items behind a score."""
from __future__ import annotations

from ..config import Settings
from .als import ALSSignal
from .base import Context, Signal
from .content import ContentSignal
from .cooc import CoocSignal
from .ease import EASE
from .graph import GraphSignal
from .popularity import PopularitySignal
from .transition import TransitionSignal

SIGNAL_CLASSES: dict[str, type[Signal]] = {
    "cooc": CoocSignal,
    "als": ALSSignal,
    "graph": GraphSignal,
    "ease": EASE,
    "content": ContentSignal,
    "transition": TransitionSignal,
    "popularity": PopularitySignal,
}


def make_signals(settings: Settings | None = None) -> dict[str, Signal]:
    """One unfitted instance of each signal, in the order of SIGNAL_CLASSES."""
    settings = settings or Settings()
    return {name: cls(settings) for name, cls in SIGNAL_CLASSES.items()}


__all__ = [
    "ALSSignal", "CoocSignal", "ContentSignal", "Context", "EASE", "GraphSignal", "PopularitySignal", "Signal",
    "SIGNAL_CLASSES", "TransitionSignal", "make_signals",
]
