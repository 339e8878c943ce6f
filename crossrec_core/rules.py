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


KINDS = ("pin", "exclude", "bury", "boost")  # a damp is a boost with a multiplier below 1


@dataclass
class Rule:
    """One merchandising rule, as a merchandiser manages it: pin an item at a position; exclude or bury an
    item, brand or category; boost or damp (multiplier) an item, brand, category, price range or category
    pair. Optionally only for the shoppers of a named segment, and only between `start` and `end` (ISO
    dates, inclusive)."""

    kind: str
    item: str | None = None
    brand: str | None = None
    category: str | None = None
    from_category: str | None = None  # boost: only shoppers with history in this category (a pair rule)
    price_min: float | None = None
    price_max: float | None = None
    position: int | None = None  # pin: 1 = first
    multiplier: float | None = None  # boost: > 1 boosts, < 1 damps
    segment: str | None = None
    start: str | None = None
    end: str | None = None
    name: str = ""
    note: str = ""
    id: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @property
    def target(self) -> str:
        """'item', 'brand', 'category', 'price' or 'pair'."""
        if self.item is not None:
            return "item"
        if self.brand is not None:
            return "brand"
        if self.category is not None:
            return "pair" if self.from_category is not None else "category"
        return "price"

    def what(self) -> str:
        """What the rule is about, in words: "item P000123", "brand Acme", "Photography → Electronics"."""
        t = self.target
        if t == "pair":
            return f"{self.from_category} → {self.category}"
        if t == "price":
            lo = "" if self.price_min is None else f"{self.price_min:g}"
            hi = "" if self.price_max is None else f"{self.price_max:g}"
            return f"price {lo}–{hi}"
        return f"{t} {getattr(self, t)}"

    def verb(self) -> str:
        """How the rule changed a listed item: "pinned at 3", "boosted ×1.5", "damped ×0.5", "buried"."""
        if self.kind == "pin":
            return f"pinned at {self.position}"
        if self.kind == "boost":
            m = float(self.multiplier if self.multiplier is not None else 1.0)
            return f"{'boosted' if m >= 1 else 'damped'} ×{m:g}"
        return {"bury": "buried", "exclude": "excluded"}[self.kind]

    def label(self) -> str:
        """The note a list shows beside an item this rule changed: "pinned at 3 by rule 'Summer tripods'"."""
        return f"{self.verb()} by rule '{self.name or self.what()}'"

    def check(self, max_multiplier: float | None = None) -> "Rule":
        """The rule's own shape (names are checked against the shop by `governance.check_rule`); a boost's
        multiplier at most `max_multiplier` (default `RankerSettings.max_multiplier`), a damp's at least its
        reciprocal, or exactly 0 (which sinks the items)."""
        from datetime import date

        from .config import RankerSettings

        top = float(RankerSettings.max_multiplier if max_multiplier is None else max_multiplier)
        if self.kind not in KINDS:
            raise CrossRecError(f"unknown rule kind '{self.kind}' (kinds: {', '.join(KINDS)})")
        targets = [t for t in ("item", "brand", "category") if getattr(self, t) is not None]
        has_price = self.price_min is not None or self.price_max is not None
        if len(targets) + has_price != 1:
            raise CrossRecError("a rule is about exactly one item, brand, category or price range")
        if self.kind == "pin" and (self.item is None or self.position is None or int(self.position) < 1):
            raise CrossRecError("a pin needs an item and a position of 1 or more")
        if self.kind == "boost" and (self.multiplier is None or not (float(self.multiplier) == 0
                                                                     or 1 / top <= float(self.multiplier) <= top)):
            raise CrossRecError(f"a boost or damp needs a multiplier from {1 / top:g} to {top:g}, or 0 "
                                f"(above 1 boosts, below 1 damps; settings max_multiplier), got {self.multiplier}")
        if has_price and None not in (self.price_min, self.price_max) and float(self.price_min) > float(self.price_max):
            raise CrossRecError(f"price range {self.price_min:g}-{self.price_max:g} ends below where it starts")
        if has_price and any(p is not None and not 0 <= float(p) < float("inf") for p in (self.price_min, self.price_max)):
            raise CrossRecError("a price range needs prices of 0 or more")
        if self.kind in ("exclude", "bury") and has_price:
            raise CrossRecError(f"{self.kind} works on an item, a brand or a category, not a price range")
        if self.from_category is not None and (self.kind != "boost" or self.category is None):
            raise CrossRecError("--from-category goes with a category boost (a category pair)")
        for label in ("start", "end"):
            day = getattr(self, label)
            if day is not None:
                try:
                    if len(str(day)) != 10:
                        raise ValueError
                    setattr(self, label, date.fromisoformat(str(day)).isoformat())  # compared as text later
                except ValueError:
                    raise CrossRecError(f"rule {label} '{day}' is not a date (YYYY-MM-DD)") from None
        if self.start and self.end and str(self.start) > str(self.end):
            raise CrossRecError(f"rule ends ({self.end}) before it starts ({self.start})")
        return self

    def active_on(self, day) -> bool:
        """In force on `day` (a date): on or after its start, on or before its end."""
        iso = day.isoformat()
        return (self.start is None or str(self.start) <= iso) and (self.end is None or iso <= str(self.end))


@dataclass
class Rules:
    """Merchandising rules applied after fusion: the what-if page's category pairs and exclusions, and the
    managed rules (`managed`, from the store's live rule set). `segments` maps the segment names the
    rules use to their shoppers' ids (resolved from the store when the rules are loaded)."""

    pairs: list[PairRule] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    exclude_items: list[str] = field(default_factory=list)
    managed: list[Rule] = field(default_factory=list)
    segments: dict[str, frozenset] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Rules":
        d = d or {}
        return cls(
            pairs=[PairRule(**p) for p in d.get("pairs", [])],
            exclude_categories=list(d.get("exclude_categories", [])),
            exclude_items=list(d.get("exclude_items", [])),
            managed=[Rule.from_dict(r) for r in d.get("managed", [])],
        )

    def to_dict(self) -> dict:
        out = {
            "pairs": [p.to_dict() for p in self.pairs],
            "exclude_categories": list(self.exclude_categories),
            "exclude_items": list(self.exclude_items),
        }
        if self.managed:
            out["managed"] = [r.to_dict() for r in self.managed]
        return out

    def all(self) -> list[Rule]:
        """Every rule as a `Rule`: the pairs and exclusions first, then the managed ones in their order."""
        return [*(Rule("boost", category=p.target, from_category=p.source, multiplier=float(p.multiplier))
                  for p in self.pairs),
                *(Rule("exclude", category=c) for c in self.exclude_categories),
                *(Rule("exclude", item=i) for i in self.exclude_items),
                *self.managed]

    def plus(self, other: "Rules") -> "Rules":
        """These rules and `other`'s together (a scenario over the live rules)."""
        return Rules([*self.pairs, *other.pairs], [*self.exclude_categories, *other.exclude_categories],
                     [*self.exclude_items, *other.exclude_items], [*self.managed, *other.managed],
                     {**self.segments, **other.segments})

    def __bool__(self) -> bool:
        return bool(self.pairs or self.exclude_categories or self.exclude_items or self.managed)


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
