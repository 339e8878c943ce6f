"""content: cosine between the user's profile vector and each item's text embedding.

The profile (ctx.profile, built by `profiles.make_context`) is the confidence-weighted mean of the
user's history embeddings plus their typed profile text — so a cold user described only by text,
and a new item that has an embedding but no events, both get scores. Items without an embedding
(zero row) and users without a profile score 0.
"""
from __future__ import annotations

import numpy as np

from ..data import Interactions
from .base import Context, EvidenceBatch, Signal, Words, cited, user_terms


class ContentSignal(Signal, name="content", label="similar text", color="#16a34a", default_weight=0.1,
                    needs_embeddings=True, state_fields=("embeddings_", "has_embedding_", "n_items_")):
    """score = ctx.profile @ Eᵀ; evidence = the history items most similar to the candidate."""

    def __init__(self, *, min_similarity: float = 0.5):
        self.min_similarity = min_similarity  # text likeness (cosine) below this is never cited as a reason

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "ContentSignal":
        if embeddings is None:
            E = np.zeros((data.n_items, 0), dtype=np.float32)
        else:
            E = np.asarray(embeddings, dtype=np.float32)  # no copy when already float32: shared with the caller
            if not np.isfinite(E).all():
                E = np.nan_to_num(E, nan=0.0, posinf=0.0, neginf=0.0)
            if E.ndim != 2 or E.shape[0] != data.n_items:
                raise ValueError(f"embeddings must be n_items × d ({data.n_items} rows), got shape {E.shape}")
        self.embeddings_ = E
        self.has_embedding_ = np.abs(E).sum(axis=1) > 0 if E.shape[1] else np.zeros(data.n_items, dtype=bool)
        self.n_items_ = data.n_items
        return self

    def score(self, ctx: Context) -> np.ndarray:
        E = self.embeddings_
        if ctx.profile is None or E.shape[1] == 0:
            return np.zeros((ctx.n, self.n_items_), dtype=np.float32)
        P = np.asarray(ctx.profile, dtype=np.float32)
        if P.shape[1] != E.shape[1]:
            raise ValueError(f"profile has {P.shape[1]} dimensions, item embeddings {E.shape[1]}")
        if not np.isfinite(P).all():
            P = np.nan_to_num(P, nan=0.0, posinf=0.0, neginf=0.0)
        return np.asarray(P @ E.T, dtype=np.float32)

    def block_scorer(self, ctx: Context):
        E = self.embeddings_
        if ctx.profile is None or E.shape[1] == 0:
            return lambda a, b: np.zeros((ctx.n, b - a), dtype=np.float32)
        P = np.nan_to_num(np.asarray(ctx.profile, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if P.shape[1] != E.shape[1]:
            raise ValueError(f"profile has {P.shape[1]} dimensions, item embeddings {E.shape[1]}")
        return lambda a, b: np.asarray(P @ E[a:b].T, dtype=np.float32)

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """Each history item's cosine to the pair's item (times its confidence), where it is a real likeness."""
        rows, items = np.asarray(rows), np.asarray(items, dtype=np.int64)
        E = self.embeddings_
        if E.shape[1] == 0 or not len(items):
            return EvidenceBatch.empty(len(items))
        X = ctx.X

        def terms(row: int, at: np.ndarray):
            lo, hi = X.indptr[row], X.indptr[row + 1]
            keep = X.data[lo:hi] > 0
            h, conf = X.indices[lo:hi][keep], X.data[lo:hi][keep].astype(np.float64)
            if not len(h):
                return None
            sims = E[h].astype(np.float64) @ E[items[at]].T.astype(np.float64)  # |history| × |pairs|
            # Only a real likeness is evidence: a lens is not "similar to" a jacket at cosine 0.3.
            return h, np.where(sims >= self.min_similarity, sims, 0.0) * conf[:, None]
        return user_terms(rows, items, terms)

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        if words.query:
            return [f"matches the search '{words.query[:60]}'"] * len(ev)
        return cited(ev, words, "similar to {}",
                     f"matches the profile '{words.profile_text[:60]}'" if words.profile_text else "")
