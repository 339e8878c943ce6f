"""The scoring signals, implicit / scikit-learn style: hyper-parameters are the constructor's keyword
arguments (`Signal.build` makes one from the settings' `signals` section),
`fit(data, embeddings)` returns self, `score(ctx)` gives B × n_items raw float32 scores,
`evidence(ctx, row, items)` says what drove a score and `phrase` puts it in words (`evidence_batch` and
`phrases` do the same for many (shopper, item) pairs at once: what an export asks).
Which signals exist is `registry.CLASSES`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import registry
from .als import ALSSignal
from .base import Context, Evidence, Flow, Signal, Words
from .content import ContentSignal
from .content_tuned import ContentTunedSignal
from .cooc import CoocSignal
from .ease import EASE
from .graph import GraphSignal
from .neighbours import NeighbourSignal
from .popularity import PopularitySignal
from .transition import TransitionSignal

if TYPE_CHECKING:
    from ..config import Settings


def make_signals(settings: Settings) -> dict[str, Signal]:
    """One unfitted instance of each registered signal, in registry order, with the settings' parameters."""
    return {name: cls.build(settings) for name, cls in registry.classes().items()}


def __getattr__(name: str):
    if name == "SIGNAL_CLASSES":  # name -> class, read from the registry when asked
        return registry.classes()
    raise AttributeError(name)


__all__ = [
    "ALSSignal", "CoocSignal", "ContentSignal", "ContentTunedSignal", "Context", "EASE", "Evidence", "Flow",
    "GraphSignal", "NeighbourSignal",
    "PopularitySignal", "Signal", "SIGNAL_CLASSES", "TransitionSignal", "Words", "make_signals", "registry",
]
