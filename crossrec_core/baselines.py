"""Baselines the fused model is compared with, in the signals' interface: hyper-parameters as constructor
keyword arguments (those of popularity and itemknn from the settings' `evaluation.baselines`, the others
are signals and take the signal's own), `fit(data, embeddings=None) -> self`,
`score(ctx) -> B × n_items float32` from the batch's histories ctx.X.

- popularity: train users per item (the same list for everyone).
- itemknn: cosine item-item on the binary user × item matrix, with a shrink term, pruned to the top
  `neighbours` source items of every target item; score = binary(ctx.X) @ S.
- ease: Steck's closed form B = I - P · diagMat(1 / diag(P)), P = (XᵀX + λI)⁻¹, on the binary matrix of the
  `max_items` items with most train users (the ease signal itself).
- als, rp3beta, content: the ALS, graph (RP3beta) and content signals, imported lazily.
"""
from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .config import Settings
from .data import Interactions
from .errors import CrossRecError
from .progress import Progress
from .resources import step
from .signals.base import Context, Signal, item_evidence
from .signals.ease import EASE, binary

if TYPE_CHECKING:
    from .split import Split


class PopularityBaseline(Signal):
    """Number of train users who touched each item."""

    name = "popularity"

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "PopularityBaseline":
        self.counts_ = np.diff(binary(data.X).tocsc().indptr).astype(np.float32)
        return self

    def score(self, ctx: Context) -> np.ndarray:
        return np.tile(self.counts_, (ctx.n, 1))


class ItemKNN(Signal):
    """Item-based kNN: sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink), top neighbours per item."""

    name = "itemknn"

    def __init__(self, *, neighbours: int = 200, shrink: float = 100.0):
        self.neighbours = neighbours
        self.shrink = shrink

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "ItemKNN":
        """Co-counts a block of target items at a time, the blocks sized by their product's non-zeros (as the
        cooc signal does), so a popular block cannot hold (block × catalogue) co-counts at once."""
        from .signals.cooc import item_item, row_of

        X = binary(data.X)
        norms = np.sqrt(np.diff(X.tocsc().indptr).astype(np.float64))
        shrink = float(self.shrink)

        def finish(block: sp.csr_matrix, a: int, b: int) -> sp.csr_matrix:
            rows = a + row_of(block)
            v = block.data.astype(np.float64) / (norms[rows] * norms[block.indices] + shrink + 1e-12)
            block.data = np.where(rows == block.indices, 0.0, v).astype(np.float32)  # no self-similarity
            return block

        S_t = item_item(X.T.tocsr(), X, int(self.neighbours), finish)  # target × source: co-counts, top per target
        self.sim_ = S_t.T.tocsr().astype(np.float32)  # source × target
        return self

    def score(self, ctx: Context) -> np.ndarray:
        return np.asarray((binary(ctx.X) @ self.sim_).toarray(), dtype=np.float32)

    def evidence(self, ctx: Context, row: int, items: np.ndarray) -> list[list[tuple[int, float]]]:
        return item_evidence(binary(ctx.X[row]), self.sim_, np.asarray(items))


def _own(name: str, cls: type[Signal]) -> Callable[[Settings], Signal]:
    """A baseline that is no signal: its keyword arguments from `evaluation.baselines[name]`."""
    return lambda settings: cls.build(settings, settings.evaluation.baselines.get(name, {}),
                                      f"evaluation.baselines.{name}")


def _signal(name: str) -> Callable[[Settings], Signal]:
    """A baseline that is a signal alone, with the signal's own keyword arguments (`signals[name]`)."""
    def make(settings: Settings) -> Signal:
        from .signals.registry import classes

        return classes()[name].build(settings)
    return make


BASELINES: dict[str, Callable[[Settings], Signal]] = {
    "popularity": _own("popularity", PopularityBaseline),
    "itemknn": _own("itemknn", ItemKNN),
    "als": _signal("als"),
    "ease": _signal("ease"),
    "rp3beta": _signal("graph"),
    "content": _signal("content"),
}


def fit_baselines(
    split: Split,
    settings: Settings,
    embeddings: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Fit the baselines on split.train. Default names: all of BASELINES, content only with embeddings
    (and the signal-based ones skipped with a warning if `crossrec_core.signals` cannot provide them).
    Each fitted model gets `fit_seconds_`."""
    explicit = names is not None
    names = list(names) if explicit else [n for n in BASELINES if n != "content" or embeddings is not None]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise CrossRecError(f"unknown baseline '{unknown[0]}' (baselines: {', '.join(BASELINES)})")
    models: dict[str, object] = {}
    for j, name in enumerate(names):
        if name == "content" and embeddings is None:
            raise CrossRecError("the content baseline needs item embeddings: run `crossrec encode` first")
        if progress:
            progress(j / max(len(names), 1), f"fitting baseline {name}")
        t0 = time.perf_counter()
        try:
            model = BASELINES[name](settings)
        except ImportError as exc:
            if explicit:
                raise
            warnings.warn(f"baseline {name} skipped: {exc}", RuntimeWarning, stacklevel=2)
            continue
        with step(f"baseline: {name}"):  # its time and memory in training's step table
            models[name] = model.fit(split.train, embeddings)
        models[name].fit_seconds_ = time.perf_counter() - t0
    if progress:
        progress(1.0, "baselines fitted")
    return models
