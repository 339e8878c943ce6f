"""A seeded, realistic fake online shop: the embedded default dataset of the dashboard.

The catalogue is package data (`catalogue.json`, read by `catalogue`); `items` draws the items,
`generate` the shoppers and their events (three pandas frames, nothing else), `build` loads them into
a database. The shop has ~15 top-level categories and ~65 sub-categories, Zipf popularity within
sub-categories, cold-start users, new items and planted cross-category journeys, so that the
recommenders have something true to find. Same seed → identical frames."""
from __future__ import annotations

from .build import build_demo
from .catalogue import PLANTED_JOURNEYS
from .generate import DemoShop, generate

__all__ = ["DemoShop", "PLANTED_JOURNEYS", "build_demo", "generate"]
