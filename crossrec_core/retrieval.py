"""Stage 1 of a served list: each shopper's candidates, without a shopper × catalogue score array per signal.

Every signal retrieves its own `n` best allowed items (`Signal.retrieve`): the item-to-item signals from
the sparse product of the history with their top-M neighbour lists, EASE from its modelled items, ALS and
the text signal by an exact inner-product search, category flow by walking the flowing categories' best
items, popularity from one fixed list. The union of those (a few hundred per shopper), plus the items pin
rules place, is all that the later stages (features, ranker, rules, selection, explanation) see; each
signal's raw score at every candidate comes from `Signal.score_at`.

A signal's retrieval skips items it scores 0 or cannot score at all (they carry nothing the ranker could
use); with `n` at least the catalogue size, popularity's list holds every allowed item, so the candidates
are every allowed item, as the one-stage path had them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .signals.base import Context


@dataclass
class Retrieved:
    """A batch's candidate pairs, row-major with items ascending, and each signal's raw score there."""

    rows: np.ndarray
    items: np.ndarray
    raw: dict[str, np.ndarray]
    picked: dict[str, np.ndarray]  # signal -> the keys (row · n_items + item) of the pairs it retrieved

    def __len__(self) -> int:
        return len(self.rows)


def retrieve(signals: dict, names: list[str], ctx: Context, allowed: np.ndarray, n: int,
             extra: np.ndarray | None = None) -> Retrieved:
    """The union of each named signal's `n` best allowed items per row (and the `extra` items, e.g. pinned
    ones, where allowed), with every named signal's raw score at each pair."""
    B, n_items = allowed.shape
    n = max(1, min(int(n), n_items))
    picks = {s: signals[s].retrieve(ctx, allowed, n) for s in names}
    keys = []
    for s in names:
        r, c = np.nonzero(picks[s] >= 0)
        keys.append(r.astype(np.int64) * n_items + picks[s][r, c])
    if extra is not None and len(extra):
        r, c = np.nonzero(allowed[:, extra])
        keys.append(r.astype(np.int64) * n_items + np.asarray(extra, np.int64)[c])
    key = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    rows, items = key // n_items, key % n_items
    raw = {s: np.asarray(signals[s].score_at(ctx, rows, items), dtype=np.float32) for s in names}
    return Retrieved(rows, items, raw, dict(zip(names, keys)))


def candidate_recall(found: Retrieved, truth_rows: np.ndarray, truth_items: np.ndarray, n_items: int
                     ) -> dict[str, float]:
    """The share of the (row, item) positives `truth_*` that the candidates hold, in all and per source."""
    if not len(truth_rows):
        return {}
    want = np.asarray(truth_rows, np.int64) * n_items + np.asarray(truth_items, np.int64)
    out = {"all": float(np.isin(want, found.rows * n_items + found.items).mean())}
    for s, keys in found.picked.items():
        out[s] = float(np.isin(want, keys).mean())
    return out
