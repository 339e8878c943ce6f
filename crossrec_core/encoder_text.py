"""Item text (title, category, brand, description as one string) and its hash, the embedding cache key.

Vectorised with Arrow compute; no model is needed, so training and serving read vectors by these hashes
without importing the encoder's heavy parts."""
from __future__ import annotations

import hashlib
from typing import Iterable

import pandas as pd

from .config import EncoderSettings
from .errors import CrossRecError

DEFAULT_MAX_CHARS: int = EncoderSettings.max_text_chars
HASH_CHARS = 20


def _column(items: pd.DataFrame, col: str, cut: int | None = None):
    """A column as an Arrow string array, whitespace runs collapsed and trimmed; null where empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if col not in items.columns:
        return pa.nulls(len(items), pa.string())
    arr = pa.array(items[col].astype("string"), type=pa.string(), from_pandas=True)
    if cut is not None:  # descriptions may be 50k characters: cut before the regex
        arr = pc.utf8_slice_codeunits(arr, 0, cut)
    if pc.any(pc.match_substring_regex(arr, r"\s\s|[\t\n\r\f\v]")).as_py():  # (the regex is the slow part)
        arr = pc.replace_substring_regex(arr, r"\s+", " ")
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _sentence(arr):
    """End each part with a full stop unless it already ends with . ! or ?."""
    import pyarrow.compute as pc

    ends = pc.fill_null(pc.match_substring_regex(arr, r"[.!?]$"), True)
    return pc.if_else(ends, arr, pc.binary_join_element_wise(arr, ".", ""))


def item_text(items: pd.DataFrame, max_chars: int = DEFAULT_MAX_CHARS) -> pd.Series:
    """Each item's text, e.g. "Sigma 35mm Lens. Photography > Lenses. Brand: Sigma. <description>".

    Empty parts (and the 'Uncategorised' category) are skipped, whitespace runs become one space, and the
    result is cut to `max_chars`. Vectorised with Arrow compute: about 0.3 s for 50k items.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if max_chars < 1:
        raise CrossRecError(f"max_text_chars must be at least 1, got {max_chars}")
    if items.empty:
        return pd.Series([], index=items.index, dtype=object)
    null = pa.scalar(None, pa.string())
    title = _column(items, "title")
    category = _column(items, "category")
    category = pc.if_else(pc.fill_null(pc.equal(category, "Uncategorised"), False), null, category)
    brand = pc.binary_join_element_wise("Brand: ", _column(items, "brand"), "")
    desc = _column(items, "description", cut=max_chars + 1)
    text = _sentence(title)
    for part in (_sentence(category), _sentence(brand), desc):
        # (null_handling="skip" with several arguments drops rows in pyarrow 26, so join pairwise)
        text = pc.coalesce(pc.binary_join_element_wise(text, part, " "), text, part)
    text = pc.utf8_rtrim_whitespace(pc.utf8_slice_codeunits(pc.fill_null(text, ""), 0, max_chars))
    return pd.Series(text.to_numpy(zero_copy_only=False), index=items.index, dtype=object)


def text_hash(texts: Iterable[str]) -> list[str]:
    """Short sha1 hex (20 characters) of each text's UTF-8 bytes: the embedding cache key."""
    return [hashlib.sha1(t.encode("utf-8")).hexdigest()[:HASH_CHARS] for t in texts]
