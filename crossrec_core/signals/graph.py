"""graph: RP3beta, a popularity-damped three-step random walk item → user → item.

P_ui = the user × item matrix (data.X under `weighting`, default binary) row-normalised, entries
raised to `alpha`; P_iu = the item × user matrix row-normalised, entries raised to `alpha`.
W = P_iu @ P_ui; column i divided by deg_i^`beta` (deg = users of i); zero diagonal; the
`neighbours` largest entries of each row kept.

    score = rownorm(q(ctx.X))^alpha @ W      q = `query` mapping (default log1p of the confidence)

so the walk starts from the user's current history (new events count without a refit), each history
item weighted by its event type and recency. α and β are the signal's `alpha` / `beta`
(settings `signals.graph`; `benchmarks/tune.py` measures β's grid on the validation period).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from .base import EvidenceBatch, Words, cited
from .cooc import ItemItemSignal, check_weightings, item_item, row_of, weigh


def _row_normalise_pow(m: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Each row divided by its sum, then entries raised to alpha (a copy; float32)."""
    m = sp.csr_matrix(m, dtype=np.float64, copy=True)
    sums = np.asarray(m.sum(axis=1)).ravel()
    counts = np.diff(m.indptr)
    inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    m.data *= np.repeat(inv, counts)
    if alpha != 1.0:
        m.data = np.power(m.data, alpha)
    return m.astype(np.float32)


class GraphSignal(ItemItemSignal, name="graph", label="shopper paths", color="#0891b2", default_weight=0.25,
                  state_fields=("W_", "degree_")):
    """RP3beta item-item walk; score = normalised current history @ W."""

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.1, neighbours: int = 200, weighting: str = "binary",
                 query: str = "log"):
        super().__init__(neighbours=neighbours, weighting=weighting, query=query)
        self.alpha = alpha
        self.beta = beta  # chosen on the validation period of the demo shop and Instacart (benchmarks/tune.py)

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "GraphSignal":
        check_weightings(self.weighting, self.query)
        alpha, beta = float(self.alpha), float(self.beta)
        B = weigh(data.X, self.weighting)
        P_ui = _row_normalise_pow(B, alpha)
        P_iu = _row_normalise_pow(B.T.tocsr(), alpha)
        degree = np.diff(B.tocsc().indptr).astype(np.float64)  # users of each item
        damp = np.divide(1.0, np.power(degree, beta), out=np.zeros_like(degree), where=degree > 0)

        def finish(block: sp.csr_matrix, a: int, b: int) -> sp.csr_matrix:
            block.data = (block.data * damp[block.indices]).astype(np.float32)
            block.data[block.indices == a + row_of(block)] = 0.0  # zero diagonal (removed by top-k)
            return block

        self.W_ = item_item(P_iu, P_ui, int(self.neighbours), finish)
        self.degree_ = degree
        return self

    def similarity(self) -> sp.csr_matrix:
        return self.W_

    def _query(self, X: sp.csr_matrix) -> sp.csr_matrix:
        return _row_normalise_pow(weigh(X, self.query), float(self.alpha))

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        return cited(ev, words, "shoppers who bought {} went on to it", self.label)
