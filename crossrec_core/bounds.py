"""One rule for k, the length of a list, wherever it is asked for (recommend, export, eval, the what-if and
the dashboard's pages): a whole number from 1 to the setting `evaluation.max_k`. Past the limit a list of 10^20 items would
be allocated; below 1 it would be an empty or a negative one."""
from __future__ import annotations

import math
import operator

from .config import Settings
from .errors import CrossRecError


def check_k(k: object, settings: Settings | None = None, *, name: str = "k") -> int:
    """`k` as an int when it is a whole number from 1 to `settings.evaluation.max_k`, else a CrossRecError in one line.
    Text is read as the command line gives it (`--k 1e20` is a number, too large)."""
    limit = int((settings or Settings()).evaluation.max_k)
    value: float | int | None = None
    if isinstance(k, str):
        try:
            value = int(k.strip())
        except ValueError:
            try:
                value = float(k.strip())
            except ValueError:
                value = None
    elif not isinstance(k, bool):
        try:
            value = operator.index(k)  # int, numpy integers
        except TypeError:
            value = k if isinstance(k, float) else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= limit:
        shown = k.strip() if isinstance(k, str) else k
        raise CrossRecError(f"{name} must be a whole number from 1 to {limit:,} (setting evaluation.max_k), "
                            f"got {shown}")
    return value
