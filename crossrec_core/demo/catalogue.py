"""The demo shop's catalogue as package data (`catalogue.json`, plain lists): ~65 sub-categories with
their nouns, price ranges, brands and series, title attributes, purposes and features, plus the
category weights, camera mounts, planted journeys, profile phrases and description openers.

In a series a run of '#' becomes a number with that many digits; a title template may use {b} brand,
{s} series, {a} {c} {d} attributes (an attribute list [""] means none); empty parts collapse."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Sub:
    """One sub-category of the catalogue."""

    top: str
    name: str
    noun: str  # what one item is, for descriptions ("road running shoe")
    price: tuple[float, float]
    brands: list[tuple[str, list[str]]]  # (brand, its series)
    a: list[str]
    c: list[str]
    d: list[str]
    uses: list[str]  # purposes, "... made for {use}."
    feats: list[str]  # one sentence each
    title: str
    weight: float  # organic popularity of the sub-category within its top category


def _load() -> dict:
    return json.loads(resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8"))


_DATA = _load()
CATALOG: tuple[Sub, ...] = tuple(
    Sub(top=s["top"], name=s["name"], noun=s["noun"], price=(float(s["price"][0]), float(s["price"][1])),
        brands=[(b["brand"], list(b["series"])) for b in s["brands"]], a=s["a"], c=s["c"], d=s["d"],
        uses=[u for u in s["uses"] if u], feats=[f for f in s["feats"] if f], title=s["title"],
        weight=float(s["weight"]))
    for s in _DATA["subcategories"])
TOP_WEIGHT: dict[str, float] = _DATA["top_weight"]
# Camera mount of a first-party lens brand; third-party lens brands get any mount.
MOUNTS: dict[str, str] = _DATA["mounts"]
MOUNT_OWNER = {m: b for b, m in MOUNTS.items()}
# (from, to, probability that a buyer in `from` comes back for `to`)
JOURNEYS: tuple[tuple[str, str, float], ...] = tuple((f, t, float(p)) for f, t, p in _DATA["journeys"])
PLANTED_JOURNEYS: list[tuple[str, str]] = [(f, t) for f, t, _ in JOURNEYS]
PROFILE_PHRASES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["profile_phrases"].items()}
OPENERS: tuple[str, ...] = tuple(_DATA["openers"])
