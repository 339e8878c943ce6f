"""The signal registry: every list of signal names, labels, colours and default weights derives from it.

Adding a signal is one module (a `Signal` subclass declaring name, label, colour, default weight) plus
one line in `CLASSES`. The functions here are what the rest of CrossRec reads (config's SIGNALS, the
CSV columns, the CLI's --weights help, the dashboard's legend), so they also see a signal added with
`register` (used by the toy-signal test)."""
from __future__ import annotations

from .als import ALSSignal
from .base import Signal
from .content import ContentSignal
from .content_tuned import ContentTunedSignal
from .cooc import CoocSignal
from .ease import EASE
from .graph import GraphSignal
from .neighbours import NeighbourSignal
from .popularity import PopularitySignal
from .transition import TransitionSignal

CLASSES: list[type[Signal]] = [
    CoocSignal,
    ALSSignal,
    GraphSignal,
    EASE,
    NeighbourSignal,
    ContentSignal,
    ContentTunedSignal,
    TransitionSignal,
    PopularitySignal,
]

# Parts of a listed item's score that are not signals: the learned ranker's shopper and item facts, and
# the merchandiser's pair rules applied over the ranker (score == base + Σ parts).
EXTRA_PARTS: dict[str, tuple[str, str]] = {
    "context": ("shopper & item facts", "#475569"),
    "rules": ("merchandiser rules", "#a16207"),
}


def classes() -> dict[str, type[Signal]]:
    """name -> signal class, in registry order."""
    return {cls.name: cls for cls in CLASSES}


def names() -> tuple[str, ...]:
    """The signal names, in registry order."""
    return tuple(cls.name for cls in CLASSES)


def contributions() -> tuple[str, ...]:
    """What a listed item's score splits into: one part per signal, then "context" and "rules"."""
    return (*names(), *EXTRA_PARTS)


def label(name: str) -> str:
    """Plain words for a signal (or score part), as merchandisers read them."""
    if name in EXTRA_PARTS:
        return EXTRA_PARTS[name][0]
    cls = classes().get(name)
    return cls.label if cls is not None else name


def color(name: str) -> str:
    """The colour a signal (or score part) is drawn in."""
    if name in EXTRA_PARTS:
        return EXTRA_PARTS[name][1]
    cls = classes().get(name)
    return cls.color if cls is not None else "#9ca3af"


def default_weights() -> dict[str, float]:
    """Each signal's fusion weight before any is learned."""
    return {cls.name: float(cls.default_weight) for cls in CLASSES}


def weights_help() -> str:
    """The CLI's --weights example, every signal with its default weight."""
    return "e.g. " + ",".join(f"{n}={w:g}" for n, w in default_weights().items())


def register(cls: type[Signal]) -> type[Signal]:
    """Add a signal class at run time (the registry line, for code that cannot edit CLASSES)."""
    if cls.name in classes() or cls.name in EXTRA_PARTS:
        raise ValueError(f"a signal named '{cls.name}' is already registered")
    CLASSES.append(cls)
    return cls


def unregister(name: str) -> None:
    """Remove a signal added with `register`."""
    CLASSES[:] = [cls for cls in CLASSES if cls.name != name]
