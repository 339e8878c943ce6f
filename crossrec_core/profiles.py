"""A batch of users as the models see them (`Context`) and what it is built from: profile vectors from
history embeddings and typed text, category affinity. Imports no signal, so every signal may import it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .data import Interactions
from .vectors import unit_rows


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
    # what the signals computed for this batch (a sparse product, user factors), shared by retrieval and
    # scoring at the candidates; it lives and dies with the batch
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()` computed once per batch under `key`."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def owned_items(self) -> sp.csr_matrix:
        """The items that make a category not new to the user (carted or bought)."""
        return self.owned if self.owned is not None else (self.X > 0).astype(np.float32).tocsr()

    @property
    def n(self) -> int:
        return self.X.shape[0]


def profile_vectors(
    X: sp.csr_matrix,
    embeddings: np.ndarray | None,
    text_vecs: np.ndarray | None = None,
    text_weight: float = 1.0,
) -> np.ndarray | None:
    """Unit vectors: confidence-weighted mean of history embeddings, plus typed profile text.

    The text counts as `text_weight` history items of average confidence, so it steers a short
    history and barely moves a long one; a user with no history is their text alone (cold start).
    Users with neither get a zero vector.
    """
    if embeddings is None:
        return None
    hist = np.asarray(X @ embeddings, dtype=np.float32)  # B × d, confidence-weighted sum
    if text_vecs is None:
        return unit_rows(hist)
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    counts = np.diff(X.indptr)
    mean_conf = np.divide(totals, counts, out=np.ones_like(totals), where=counts > 0)
    text = unit_rows(np.asarray(text_vecs, dtype=np.float32))
    return unit_rows(hist + (text_weight * mean_conf)[:, None].astype(np.float32) * text)


def category_affinity(X: sp.csr_matrix, cat_codes: np.ndarray, n_cats: int) -> np.ndarray:
    """B × n_cats share of each user's confidence per category (rows sum to 1, or 0 with no history)."""
    onehot = sp.csr_matrix(
        (np.ones(len(cat_codes), np.float32), (np.arange(len(cat_codes)), cat_codes)), shape=(len(cat_codes), n_cats)
    )
    aff = np.asarray((X @ onehot).todense(), dtype=np.float64)
    totals = aff.sum(axis=1, keepdims=True)
    return np.divide(aff, totals, out=np.zeros_like(aff), where=totals > 0)


def make_context(
    data: Interactions,
    X: sp.csr_matrix,
    embeddings: np.ndarray | None = None,
    *,
    text_vecs: np.ndarray | None = None,
    user_rows: np.ndarray | None = None,
    seeds: list[np.ndarray] | None = None,
    owned: sp.csr_matrix | None = None,
) -> Context:
    """A Context for a batch of users whose histories are the rows of `X` (`owned`: carted or bought)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    profile = profile_vectors(X, embeddings, text_vecs, data.settings.behaviour.profile_text_weight)
    return Context(X=X, profile=profile, user_rows=user_rows, seeds=seeds, owned=owned)


def context_for_users(data: Interactions, rows: np.ndarray, embeddings: np.ndarray | None = None) -> Context:
    """Context of users known to `data` from their rows of data.X (training histories)."""
    rows = np.asarray(rows)
    return make_context(data, data.X[rows], embeddings, user_rows=rows)
