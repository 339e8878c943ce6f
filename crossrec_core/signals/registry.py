"""The signal registry: every list of signal names, labels, colours and default weights derives from it.

Adding a signal is one module (a `Signal` subclass declaring name, label, colour, default weight) plus
one line in `CLASSES`; its hyper-parameters are its constructor's keyword arguments (set per shop in the
settings' `signals` section). The functions here are what the rest of CrossRec reads (the signal names,
the fusion weights, the CSV columns, the CLI's --weights help, the dashboard's legend), so they also see
a signal added with `register` (used by the toy-signal test)."""
from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ..config import Settings

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


def weights_for(settings: Settings) -> dict[str, float]:
    """The fusion weights the settings ask for: each signal's default weight unless `ranker.weights`
    names it (a name that is no signal, from a run of another version, is kept and reads as nothing)."""
    return {**default_weights(), **{n: float(w) for n, w in settings.ranker.weights.items()}}


def parse_weights(text: str, base: dict[str, float] | None = None) -> dict[str, float]:
    """Parse `cooc=0.3,content=0.2` into a full weight dict (unnamed signals keep `base`, by default each
    signal's default weight)."""
    from ..errors import CrossRecError

    signals = names()
    weights = dict(base if base is not None else default_weights())
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise CrossRecError(f"weight '{part}' is not of the form name=value")
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in signals:
            raise CrossRecError(f"unknown signal '{name}' in --weights (signals: {', '.join(signals)})")
        try:
            w = float(value)
        except ValueError:
            raise CrossRecError(f"weight of '{name}' is '{value.strip()}', not a number") from None
        if w < 0 or w != w:
            raise CrossRecError(f"weight of '{name}' must be a number >= 0, got {value.strip()}")
        weights[name] = w
    return weights


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
