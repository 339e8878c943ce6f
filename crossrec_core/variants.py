"""Product families, so a list holds at most a few variants of one product (sizes, colours, roasts).

Two items are of one family when their brand and their title's product words (the part before the
first comma, without sizes, counts and other tokens with digits) match, or when their text embeddings
are near-duplicates. `select` keeps each row's best items with at most `cap` per family, and fills
from the skipped ones only when the row would otherwise fall short of k.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

_SIZE = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:kg|g|mg|ml|cl|l|oz|lb|lbs|cm|mm|m|inch|in|pack|pk|ct|count|x)?\b")
_DIGITS = re.compile(r"\S*\d\S*")
_BRACKETS = re.compile(r"\([^)]*\)")
_SPACES = re.compile(r"\s+")


def family_codes(items: pd.DataFrame) -> np.ndarray:
    """An int family code per item (catalog order: items sorted by item_id)."""
    items = items.sort_values("item_id")
    title = items["title"].fillna("").astype(str).str.split(",", n=1).str[0].str.lower()
    title = title.str.replace(_BRACKETS, " ", regex=True).str.replace(_SIZE, " ", regex=True)
    title = title.str.replace(_DIGITS, " ", regex=True)
    title = title.str.replace(_SPACES, " ", regex=True).str.strip()
    brand = items["brand"].fillna("").astype(str).str.lower().str.strip() if "brand" in items.columns else ""
    key = brand + "|" + title + "|" + items["category"].fillna("").astype(str)
    key = key.where(title != "", items["item_id"].astype(str))  # no product words: its own family
    return pd.factorize(key)[0].astype(np.int64)


def diversify(idx: np.ndarray, unit: np.ndarray | None, weight: float) -> np.ndarray:
    """Re-order each row of `idx` (B × m ranked items) by maximal marginal relevance: relevance is the
    rank (1 at the top, 0 at the bottom), minus `weight` × the highest cosine to an item already
    placed. weight 0 (or no embeddings) keeps the order."""
    if weight <= 0 or unit is None or not unit.shape[1]:
        return idx
    out = idx.copy()
    for b in range(idx.shape[0]):
        valid = np.flatnonzero(idx[b] >= 0)
        if len(valid) < 3:
            continue
        E = unit[idx[b, valid]]
        sims = E @ E.T
        rel = 1.0 - np.arange(len(valid)) / len(valid)
        placed = [0]
        best_sim = sims[0].copy()
        free = np.ones(len(valid), bool)
        free[0] = False
        while free.any():
            gain = np.where(free, rel - weight * best_sim, -np.inf)
            j = int(np.argmax(gain))
            placed.append(j)
            free[j] = False
            best_sim = np.maximum(best_sim, sims[j])
        out[b, valid] = idx[b, valid][placed]
    return out


def select(idx: np.ndarray, families: np.ndarray | None, unit: np.ndarray | None, cap: int,
           similarity: float, k: int) -> np.ndarray:
    """Positions (B × k, -1 pads) into each row of `idx` (B × m ranked items, -1 pads) of the items kept."""
    B, m = idx.shape
    out = np.full((B, k), -1, np.int64)
    if cap <= 0 or families is None:
        take = min(k, m)
        out[:, :take] = np.where(idx[:, :take] >= 0, np.arange(take)[None, :], -1)
        return out
    for b in range(B):
        row = idx[b]
        valid = np.flatnonzero(row >= 0)
        fam = families[row[valid]]
        if unit is not None and unit.shape[1]:
            # near-duplicate texts join the family of the first (best-ranked) of them
            E = unit[row[valid]]
            sims = E @ E.T
            dup = np.triu(sims >= similarity, 1)
            for j in np.flatnonzero(dup.any(axis=0)):
                fam[j] = fam[np.argmax(dup[:, j])]
        _, first = np.unique(fam, return_inverse=True)
        counts = np.zeros(first.max(initial=-1) + 1, np.int64)
        kept, skipped = [], []
        for j, f in enumerate(first):
            if counts[f] < cap:
                counts[f] += 1
                kept.append(valid[j])
            else:
                skipped.append(valid[j])
            if len(kept) == k:
                break
        kept = (kept + skipped)[:k]
        out[b, :len(kept)] = kept
    return out
