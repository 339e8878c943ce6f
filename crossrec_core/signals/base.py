"""What every signal (and every baseline) looks like, implicit-style: settings in the constructor,
`fit(data, embeddings)` returns self, fitted attributes end in `_`, `score(ctx)` returns a dense
(users × items) array of raw scores for a batch of users described by a `Context`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..config import Settings
from ..data import Interactions


@dataclass
class Context:
    """A batch of users as the models see them at request time.

    `X` is built from the users' *current* histories (read from the store when serving), so new
    events change the next list without a refit. Items are in the fitted catalog order.
    """

    X: sp.csr_matrix  # B × n_items confidence (event weight × recency)
    profile: np.ndarray | None = None  # B × d unit profile vectors (history embeddings + typed text), or None
    user_rows: np.ndarray | None = None  # B rows in the fitted data (-1: unknown to the fit)
    seeds: list[np.ndarray] | None = None  # per user, item positions the list is about (cart / item page)
    owned: sp.csr_matrix | None = None  # B × n_items, 1 where carted or bought (None: every history item)
    user_ids: np.ndarray | None = None  # B shopper ids when known (segment rules need them)

    def owned_items(self) -> sp.csr_matrix:
        """The items that make a category not new to the user (carted or bought)."""
        return self.owned if self.owned is not None else (self.X > 0).astype(np.float32).tocsr()

    @property
    def n(self) -> int:
        return self.X.shape[0]


class Signal:
    """Base class: subclasses set `name` and implement `fit` and `score`.

    Saving (crossrec_core.modelio): `options` names the constructor's keyword arguments and
    `state_fields` the fitted attributes; `to_state`/`from_state` write and read both (arrays and JSON only)."""

    name: str = "signal"
    options: tuple[str, ...] = ()
    state_fields: tuple[str, ...] = ()

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "Signal":
        raise NotImplementedError

    def score(self, ctx: Context) -> np.ndarray:
        """B × n_items raw scores (higher = better); not normalised."""
        raise NotImplementedError

    def to_state(self, state) -> None:
        """Write the options and fitted attributes into a modelio.State."""
        state.put("options", {o: getattr(self, o) for o in self.options})
        state.put_attrs(self, self.state_fields)

    @classmethod
    def from_state(cls, state, settings: Settings) -> "Signal":
        obj = cls(settings, **state.get("options"))
        state.get_attrs(obj, cls.state_fields)
        return obj

    def evidence(self, ctx: Context, row: int, items: np.ndarray) -> list[list[tuple[int, float]]]:
        """For user `row` of ctx and each of `items`: the history items (position, share) that drove the
        score, strongest first. Signals without item evidence return empty lists."""
        return [[] for _ in items]


def item_evidence(x: sp.csr_matrix, sim: sp.csr_matrix, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
    """For one user's history row `x` (1 × n) and an item-item matrix `sim` (history → candidate):
    which history items contribute most to each candidate's score x @ sim[:, i], as shares."""
    hist = x.indices
    if len(hist) == 0:
        return [[] for _ in items]
    contrib = sim[hist][:, items].toarray() * x.data[:, None]  # |hist| × |items|
    out = []
    for col in range(len(items)):
        c = contrib[:, col]
        total = c.sum()
        if total <= 0:
            out.append([])
            continue
        order = np.argsort(-c)[:top]
        out.append([(int(hist[j]), float(c[j] / total)) for j in order if c[j] > 0])
    return out


def top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row of a CSR matrix (vectorised per row chunk)."""
    m = m.tocsr()
    m.eliminate_zeros()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    keep = np.ones(m.nnz, dtype=bool)
    for r in np.flatnonzero(counts > k):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        seg = m.data[lo:hi]
        drop = np.argpartition(-seg, k)[k:]
        keep[lo + drop] = False
    m.data = np.where(keep, m.data, 0)
    m.eliminate_zeros()
    return m
