"""Why an item is recommended: per-signal contributions, the evidence behind them, one plain sentence.

Each signal explains itself (`Signal.evidence` and `Signal.phrase`); this module only puts the parts
together: the two largest contributions, each in its signal's words."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .signals.base import Context, Words
from .signals.registry import label, names


def __getattr__(name: str):
    if name == "SIGNAL_LABELS":  # plain words of each signal, from the registry
        return {s: label(s) for s in names()}
    raise AttributeError(name)


@dataclass
class Explanation:
    """One recommended item's story: contributions sum to the score."""

    contributions: dict[str, float]
    evidence: dict[str, list[dict]] = field(default_factory=dict)
    reason: str = ""


def explain_items(
    scorer,
    ctx: Context,
    row: int,
    items_idx: np.ndarray,
    contributions: list[dict[str, float]],
    items: dict[str, np.ndarray],
    profile_text: str | None = None,
    query: str | None = None,
) -> list[Explanation]:
    """Explanations for `items_idx` of user `row` of `ctx`; `contributions` holds each listed item's
    contributions (signal -> value) and `items` the catalog columns (item_id, title, cat_top) in item order.
    A signal's evidence is listed for the items it contributes to."""
    signals = scorer.signals_
    words = Words(items, profile_text, query)
    evid = {name: sig.evidence(ctx, row, items_idx) for name, sig in signals.items()
            if any(c.get(name, 0.0) > 0 for c in contributions)}
    out = []
    for n, i in enumerate(items_idx):
        contrib = {s: float(contributions[n].get(s, 0.0)) for s in names()}
        ev = {name: lists[n].records(words) if contrib[name] > 0 else [] for name, lists in evid.items()}
        ranked = [s for s in sorted(contrib, key=contrib.get, reverse=True) if contrib[s] > 0][:2]
        bits = [bit for s in ranked if s in signals and (bit := signals[s].phrase(evid[s][n], int(i), words))]
        reason = "Recommended as a good general pick."
        if bits:
            text = "; ".join(bits)
            reason = text[0].upper() + text[1:] + "."
        out.append(Explanation(contributions=contrib, evidence=ev, reason=reason))
    return out
