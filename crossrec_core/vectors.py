"""The one vector normaliser: rows scaled to unit length (profiles, item embeddings, the encoder's output)."""
from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray, dtype=None) -> np.ndarray:
    """Each row divided by its Euclidean length; all-zero rows stay zero. `dtype` converts first
    (default: keep a floating input's dtype, float32 otherwise)."""
    x = np.asarray(x, dtype=dtype)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
