"""Why an item is recommended: per-signal contributions, the evidence behind them, one plain sentence.

Each signal explains itself (`Signal.evidence_batch` and `Signal.phrases`); this module only puts the parts
together: the two largest contributions, each in its signal's words. It works on pairs (a shopper row of a
batch, a listed item), so an export explains a whole batch of shoppers with one evidence call per signal,
asked only for the pairs whose sentence names that signal."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .signals.base import Context, EvidenceBatch, Words
from .signals.registry import label, names

GENERAL = "Recommended as a good general pick."


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


def signal_parts(parts: dict[str, np.ndarray], n: int) -> np.ndarray:
    """pairs × signals (registry order) contributions as float64; a signal absent from `parts` is 0."""
    zero = np.zeros(n)
    return np.stack([np.asarray(parts[s], np.float64) if s in parts else zero for s in names()], axis=1) \
        if names() else np.zeros((n, 0))


def reasons(scorer, ctx: Context, rows: np.ndarray, items: np.ndarray, parts: dict[str, np.ndarray],
            words: Words, evidence: dict[str, EvidenceBatch] | None = None) -> list[str]:
    """The one-sentence reason of each pair (user `rows[p]` of ctx, item `items[p]`), `parts` holding each
    signal's contribution per pair: its two largest positive contributions (ties: registry order), each in
    its signal's words. A signal's evidence is gathered only for the pairs whose sentence names it, unless
    `evidence` already holds it for every pair."""
    rows, items = np.asarray(rows), np.asarray(items, dtype=np.int64)
    n = len(items)
    V = signal_parts(parts, n)
    top = np.argsort(-V, axis=1, kind="stable")[:, :2]
    named = np.take_along_axis(V, top, axis=1) > 0
    bits = [[""] * n for _ in range(top.shape[1])]
    signals = scorer.signals_
    for k, name in enumerate(names()):
        hit = (top == k) & named
        sel = np.flatnonzero(hit.any(axis=1))
        if name not in signals or not len(sel):
            continue
        sig = signals[name]
        ev = evidence[name].take(sel) if evidence and name in evidence else \
            sig.evidence_batch(ctx, rows[sel], items[sel])
        for p, slot, bit in zip(sel.tolist(), hit[sel].argmax(axis=1).tolist(), sig.phrases(ev, items[sel], words)):
            bits[slot][p] = bit
    out = []
    for pair_bits in zip(*bits):
        text = "; ".join(b for b in pair_bits if b)
        out.append(text[0].upper() + text[1:] + "." if text else GENERAL)
    return out


def explain_items(
    scorer,
    ctx: Context,
    row: int,
    items_idx: np.ndarray,
    parts: dict[str, np.ndarray],
    items: dict[str, np.ndarray],
    profile_text: str | None = None,
    query: str | None = None,
) -> list[Explanation]:
    """Explanations for `items_idx` of user `row` of `ctx`; `parts` holds each signal's contribution to each
    listed item and `items` the catalog columns (item_id, title, cat_top) in item order. A signal's
    evidence is listed for the items it contributes to."""
    items_idx = np.asarray(items_idx, dtype=np.int64)
    words = Words(items, profile_text, query)
    rows = np.full(len(items_idx), row)
    V = signal_parts(parts, len(items_idx))
    col = {name: k for k, name in enumerate(names())}
    evid = {name: sig.evidence_batch(ctx, rows, items_idx) for name, sig in scorer.signals_.items()
            if name in col and (V[:, col[name]] > 0).any()}
    why = reasons(scorer, ctx, rows, items_idx, parts, words, evid)
    out = []
    for n in range(len(items_idx)):
        contrib = dict(zip(names(), V[n].tolist()))
        ev = {name: lists.at(n).records(words) if contrib[name] > 0 else [] for name, lists in evid.items()}
        out.append(Explanation(contributions=contrib, evidence=ev, reason=why[n]))
    return out
