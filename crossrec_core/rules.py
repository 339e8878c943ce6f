"""Business rules applied after fusion: category-pair boosts, exclusions (and, managed in the store, pins,
buries and boosts by item, brand, category or price), and finding the items a category name means."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import CrossRecError


@dataclass
class PairRule:
    """Users with history in category `source` get items of category `target` multiplied by `multiplier`.

    Category names match a top-level name, a level-2 path or a full path.
    """

    source: str
    target: str
    multiplier: float

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "multiplier": self.multiplier}


@dataclass
class Rules:
    """Merchandising rules applied after fusion."""

    pairs: list[PairRule] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    exclude_items: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Rules":
        d = d or {}
        return cls(
            pairs=[PairRule(**p) for p in d.get("pairs", [])],
            exclude_categories=list(d.get("exclude_categories", [])),
            exclude_items=list(d.get("exclude_items", [])),
        )

    def to_dict(self) -> dict:
        return {
            "pairs": [p.to_dict() for p in self.pairs],
            "exclude_categories": list(self.exclude_categories),
            "exclude_items": list(self.exclude_items),
        }

    def __bool__(self) -> bool:
        return bool(self.pairs or self.exclude_categories or self.exclude_items)


class CategoryMatcher:
    """Finds the items of a category given by top-level name, level-2 path or full path."""

    def __init__(self, items_cat_top: np.ndarray, items_cat_sub: np.ndarray, items_category: np.ndarray):
        self.top = np.asarray(items_cat_top, dtype=object)
        self.sub = np.asarray(items_cat_sub, dtype=object)
        self.full = np.asarray(items_category, dtype=object)
        self._names = set(self.top) | set(self.sub) | set(self.full)
        self._lower = {n.lower(): n for n in self._names}

    def to_state(self, state) -> None:
        state.put("top", self.top)
        state.put("sub", self.sub)
        state.put("full", self.full)

    @classmethod
    def from_state(cls, state) -> "CategoryMatcher":
        return cls(state.get("top"), state.get("sub"), state.get("full"))

    def resolve(self, name: str) -> str:
        """The canonical category name, case-insensitively; a clear error when there is none."""
        if name in self._names:
            return name
        hit = self._lower.get(name.strip().lower())
        if hit is None:
            close = sorted(n for n in self._names if name.strip().lower() in n.lower())[:5]
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            raise CrossRecError(f"unknown category '{name}'{hint}")
        return hit

    def mask(self, name: str) -> np.ndarray:
        name = self.resolve(name)
        return (self.top == name) | (self.sub == name) | (self.full == name)
