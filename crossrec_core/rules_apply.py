"""Applying business rules to lists: the one place serving, export, what-if and evaluation go through.

Boosts and damps multiply the fused score (the ranker's score gets their log added); exclusions take
items out of the candidates; buried items rank after every other allowed item; pins put an item at a
position of the finished list (when the shopper may be shown it in that mode). A rule with a segment
applies to that segment's shoppers only; a rule outside its start/end dates does not apply at all.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd

from .rules import CategoryMatcher, Rule, Rules
from .signals.base import Context


def today() -> date:
    return datetime.now(timezone.utc).date()


class RuleEngine:
    """Rules compiled against one catalog: an item mask per rule, then row × item operations."""

    def __init__(self, rules: Rules, matcher: CategoryMatcher | None, item_index: pd.Index,
                 brands: np.ndarray | None = None, prices: np.ndarray | None = None,
                 user_ids: np.ndarray | None = None, day: date | None = None, max_multiplier: float | None = None):
        from .config import RankerSettings
        from .errors import CrossRecError

        # the product of the boosts on one item is kept inside [1 / max, max] (or 0): float32 cannot overflow
        self.max_multiplier = float(RankerSettings.max_multiplier if max_multiplier is None else max_multiplier)

        day = day or today()
        self.rules: list[Rule] = [r for r in rules.all() if r.active_on(day)]
        self.segments = rules.segments
        self.item_index = item_index
        self.n = len(item_index)
        self.matcher = matcher
        self.user_ids = user_ids
        if matcher is None and any(r.category is not None or r.from_category is not None for r in self.rules):
            raise CrossRecError("category rules need category names: call attach(data, items) first")
        self.brands = None if brands is None else np.array([str(b).casefold() if isinstance(b, str) else ""
                                                            for b in brands], dtype=object)
        self.prices = None if prices is None else np.asarray(prices, np.float64)
        self.masks = [self._item_mask(r) for r in self.rules]

    def _item_mask(self, r: Rule) -> np.ndarray:
        mask = np.zeros(self.n, bool)
        t = r.target
        if t == "item":
            pos = self.item_index.get_indexer([r.item])
            mask[pos[pos >= 0]] = True
        elif t == "brand" and self.brands is not None:
            mask = self.brands == str(r.brand).casefold()
        elif t in ("category", "pair"):
            mask = self.matcher.mask(r.category)
        elif t == "price" and self.prices is not None:
            lo = -np.inf if r.price_min is None else float(r.price_min)
            hi = np.inf if r.price_max is None else float(r.price_max)
            with np.errstate(invalid="ignore"):
                mask = (self.prices >= lo) & (self.prices <= hi)  # an item without a price is in no range
        return mask

    @property
    def has_list_rules(self) -> bool:
        """Rules that change which items may be listed or where (exclude, bury, pin), not only scores."""
        return any(r.kind in ("exclude", "bury", "pin") for r in self.rules)

    def _users(self, ctx: Context) -> np.ndarray | None:
        ids = getattr(ctx, "user_ids", None)
        if ids is not None:
            return np.asarray(ids, dtype=object)
        if ctx.user_rows is not None and self.user_ids is not None:
            rows = np.asarray(ctx.user_rows)
            return np.where(rows >= 0, self.user_ids[np.maximum(rows, 0)] if len(self.user_ids) else None, None)
        return None

    def rows(self, r: Rule, ctx: Context) -> np.ndarray:
        """B bool: the shoppers of the batch the rule applies to."""
        out = np.ones(ctx.n, bool)
        if r.segment is not None:
            users = self._users(ctx)
            members = self.segments.get(r.segment, frozenset())
            out = np.zeros(ctx.n, bool) if users is None else np.fromiter(
                (u in members for u in users), bool, count=ctx.n)
        if r.from_category is not None:
            src = self.matcher.mask(r.from_category).astype(np.float32)
            out &= np.asarray((ctx.X > 0).astype(np.float32) @ src).ravel() > 0
        return out

    def _of_kind(self, kind: str):
        return [(r, m) for r, m in zip(self.rules, self.masks) if r.kind == kind]

    def _applying(self, kind: str, ctx: Context) -> list[tuple[Rule, np.ndarray, np.ndarray]]:
        """(rule, shoppers of the batch it applies to, its item mask) of each rule of a kind."""
        return [(r, self.rows(r, ctx), m) for r, m in self._of_kind(kind)]

    def multiplier_blocks(self, ctx: Context):
        """A function (a, b) -> B × (b − a) product of the boosts and damps on items a..b-1 (None when there
        are none): what `multipliers` gives, a block of the catalogue at a time."""
        boosts = self._applying("boost", ctx)
        if not boosts:
            return None

        top = self.max_multiplier

        def block(a: int, b: int) -> np.ndarray:
            mult = np.ones((ctx.n, b - a), dtype=np.float64)  # multiplied in float64, bounded, then float32
            for r, rows, mask in boosts:
                mult[np.ix_(rows, mask[a:b])] *= min(max(float(r.multiplier), 0.0), top)
            bounded = np.clip(mult, 1 / top, top)
            return np.where(mult == 0, 0.0, bounded).astype(np.float32)
        return block

    def multipliers(self, ctx: Context) -> np.ndarray | None:
        """B × n product of the boosts and damps that apply to each shopper (None when there are none)."""
        block = self.multiplier_blocks(ctx)
        return None if block is None else block(0, self.n)

    def multipliers_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """The product of the boosts and damps at (row, item) pairs (float32, as `multipliers`; None when
        no boost rule is live): the rules of a list scored on its candidates only."""
        boosts = self._applying("boost", ctx)
        if not boosts:
            return None
        top = self.max_multiplier
        mult = np.ones(len(rows), dtype=np.float64)  # as `multiplier_blocks`: float64, bounded, then float32
        for r, who, mask in boosts:
            mult[who[rows] & mask[items]] *= min(max(float(r.multiplier), 0.0), top)
        return np.where(mult == 0, 0.0, np.clip(mult, 1 / top, top)).astype(np.float32)

    def items_at(self, kind: str, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether a rule of `kind` (exclude, bury) takes each (row, item) pair."""
        out = np.zeros(len(rows), bool)
        for _, who, mask in self._applying(kind, ctx):
            out |= who[rows] & mask[items]
        return out

    def item_blocks(self, kind: str, ctx: Context):
        """A function (a, b) -> B × (b − a) bool: the items a..b-1 a rule of `kind` (exclude, bury) takes
        for each shopper (None when no such rule applies to anybody of the batch)."""
        rules = [(rows, mask) for _, rows, mask in self._applying(kind, ctx) if rows.any() and mask.any()]
        if not rules:
            return None

        def block(a: int, b: int) -> np.ndarray:
            out = np.zeros((ctx.n, b - a), bool)
            for rows, mask in rules:
                out[np.ix_(rows, mask[a:b])] = True
            return out
        return block

    def _rows_items(self, kind: str, ctx: Context) -> np.ndarray | None:
        block = self.item_blocks(kind, ctx)
        return None if block is None else block(0, self.n)

    def excluded(self, ctx: Context) -> np.ndarray | None:
        """B × n: items an exclusion takes out of each shopper's candidates (None when none)."""
        return self._rows_items("exclude", ctx)

    def buried(self, ctx: Context) -> np.ndarray | None:
        """B × n: items a bury rule puts after every other allowed item (None when none)."""
        return self._rows_items("bury", ctx)

    def pinned_items(self) -> np.ndarray:
        """The items pin rules place (each pin's first item), so list scoring can score them wherever they rank."""
        items = [int(np.flatnonzero(m)[0]) for r, m in self._of_kind("pin") if m.any()]
        return np.unique(np.asarray(items, np.int64))

    def named_items(self) -> np.ndarray:
        """The items a rule names one by one and lifts or places (pins, item boosts above 1): a two-stage list
        retrieves them for every shopper, so such a rule never misses its item for want of a signal."""
        items = [np.flatnonzero(m) for r, m in self.masks_of_named()]
        return np.unique(np.concatenate([self.pinned_items(), *items]).astype(np.int64))

    def masks_of_named(self):
        return [(r, m) for r, m in zip(self.rules, self.masks)
                if r.kind == "boost" and r.target == "item" and float(r.multiplier) > 1]

    def place_pins(self, idx: np.ndarray, allowed: np.ndarray, ctx: Context) -> np.ndarray:
        """The lists `idx` (B × k, -1 pads) with each pinned item at its position, for the shoppers the
        pin applies to and who may be shown the item; later pins go first at a shared position."""
        k = idx.shape[1]
        for r, mask in self._of_kind("pin"):
            items = np.flatnonzero(mask)
            if not len(items) or k == 0:
                continue
            item = int(items[0])
            rows = np.flatnonzero(self.rows(r, ctx) & allowed[:, item])
            if not len(rows):
                continue
            lists = idx[rows]
            lists = np.where(lists == item, -1, lists)
            order = np.argsort(lists < 0, axis=1, kind="stable")  # items first, pads last, order kept
            lists = np.take_along_axis(lists, order, axis=1)
            filled = (lists >= 0).sum(axis=1)
            at = np.minimum(int(r.position) - 1, np.minimum(filled, k - 1))  # never after a gap
            col = np.arange(k)[None, :]
            shifted = np.concatenate([lists[:, :1], lists[:, :-1]], axis=1)
            out = np.where(col < at[:, None], lists, shifted)
            out[np.arange(len(rows)), at] = item
            idx[rows] = out
        return idx

    def notes(self, ctx: Context, row: int, listed: np.ndarray) -> list[str]:
        """Per listed item (positions of one row's list), the rules that changed it, in words."""
        applies = self._applies(ctx)
        out: list[list[str]] = [[] for _ in listed]
        for j, (r, mask) in enumerate(zip(self.rules, self.masks)):
            if r.kind == "exclude" or not applies[row, j]:
                continue
            hit = mask[listed] if len(listed) else np.zeros(0, bool)
            if r.kind == "pin":
                hit &= np.arange(len(listed)) == int(r.position) - 1
            for i in np.flatnonzero(hit):
                out[i].append(r.label())
        return ["; ".join(n) for n in out]

    def _applies(self, ctx: Context) -> np.ndarray:
        """B × rules: which rule applies to which shopper of the batch (computed once per batch)."""
        cached = self.__dict__.get("_applies_cache")
        if cached is not None and cached[0] is ctx:
            return cached[1]
        table = np.stack([self.rows(r, ctx) for r in self.rules], axis=1) if self.rules else np.zeros((ctx.n, 0), bool)
        self.__dict__["_applies_cache"] = (ctx, table)
        return table
