"""The demo shop's items: titles, descriptions and prices drawn from the catalogue, ids shuffled,
a few new items without behaviour, and the Zipf sampler the simulation draws items with."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalogue import CATALOG, MOUNT_OWNER, MOUNTS, OPENERS, Sub


def _fill_digits(rng: np.random.Generator, text: str) -> str:
    """Replace each run of '#' with a number of that many digits (1-9, 10-59, 100-999, ...)."""
    def number(m: re.Match[str]) -> str:
        n = len(m.group())
        lo, hi = (1, 10) if n == 1 else ((10, 60) if n == 2 else (10 ** (n - 1), 10**n))
        return str(int(rng.integers(lo, hi)))

    return re.sub(r"#+", number, text)


def _tidy(title: str) -> str:
    """Collapse the gaps left by empty template parts."""
    title = re.sub(r"\s+", " ", title).replace(" ,", ",").replace("()", "")
    title = re.sub(r",\s*,", ",", title).replace("(, ", "(").replace(", )", ")")
    return title.strip(" ,")


def pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _charm(price: float) -> float:
    """Shop-style prices: 7.49, 59.99, 1,249.99."""
    if price < 20:
        value = np.ceil(price * 2) / 2 - 0.01
    elif price < 300:
        value = np.ceil(price) - 0.01
    else:
        value = np.ceil(price / 10) * 10 - 0.01
    return round(float(max(value, 0.99)), 2)


def _describe(rng: np.random.Generator, sub: Sub, brand: str) -> str:
    """1-3 sentences: what the item is, what it is for, one feature, maybe a second use."""
    uses, feats = sub.uses, sub.feats
    first = int(rng.integers(len(uses)))
    article = "An" if sub.noun[0].lower() in "aeiou" else "A"
    parts = [f"{article} {sub.noun} from {brand}, {pick(rng, list(OPENERS))} {uses[first]}."]
    if feats and rng.random() < 0.85:
        parts.append(pick(rng, feats))
    if len(uses) > 1 and rng.random() < 0.5:
        parts.append(f"Also a good fit for {uses[(first + 1 + int(rng.integers(len(uses) - 1))) % len(uses)]}.")
    return " ".join(parts)


@dataclass
class Catalog:
    """Items in generation order (grouped by sub-category) plus the arrays the simulation needs."""

    frame: pd.DataFrame  # item_id, title, category, description, brand, price (generation order)
    sub: np.ndarray  # sub-category index per item
    compat: np.ndarray  # brand, or the camera brand a lens mounts on (for matching pairs)
    active: np.ndarray  # bool: has behaviour (False for new items)
    sample_key: np.ndarray  # sorted: sub index + Zipf CDF within the sub, over active items
    sample_item: np.ndarray  # item index for each sample_key entry
    buy_factor: np.ndarray  # cheaper items in a sub convert a little better


def _items_per_sub(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Split n_items over the sub-categories by weight (with noise); at least 8 each, so a tiny
    n_items (under ~520) yields a few more items than asked."""
    w = np.array([s.weight for s in CATALOG]) * rng.lognormal(0.0, 0.2, len(CATALOG))
    raw = w / w.sum() * n_items
    counts = np.maximum(np.floor(raw).astype(int), 8)
    extra = max(0, n_items - int(counts.sum()))  # largest remainders first
    counts[np.argsort(-(raw - np.floor(raw)), kind="stable")[: extra % len(counts)]] += 1
    return counts + extra // len(counts)


def _make_item(rng: np.random.Generator, sub: Sub, brands: list[tuple[str, list[str]]],
               tier: np.ndarray, seen: set[str]) -> tuple[str, str, str, float]:
    """One unique item: (title, brand, compat key, price)."""
    a, c, d = sub.a, sub.c, sub.d
    for _ in range(40):
        b = int(rng.integers(len(brands)))
        brand, series = brands[b]
        cc = pick(rng, c)
        if cc in MOUNT_OWNER and brand in MOUNTS:
            cc = MOUNTS[brand]
        fields = {"b": brand, "s": _fill_digits(rng, pick(rng, series)), "a": pick(rng, a), "c": cc,
                  "d": pick(rng, d)}
        title = _tidy(sub.title.format(**fields))
        if title not in seen:
            break
    else:  # a crowded sub-category: sell the same thing in packs
        title = next(f"{title} ({k}-Pack)" for k in range(2, 10_000) if f"{title} ({k}-Pack)" not in seen)
    seen.add(title)
    lo, hi = sub.price
    base = lo * (hi / lo) ** rng.beta(1.4, 2.2) * tier[b]
    price = _charm(min(max(base, lo * 0.9), hi * 1.15))
    return title, brand, MOUNT_OWNER.get(cc, brand), price


def build_catalog(rng: np.random.Generator, n_items: int) -> Catalog:
    """Titles, descriptions, prices; ids shuffled over the catalogue; ~3 % new items; Zipf sampler."""
    counts = _items_per_sub(rng, n_items)
    rows: list[tuple[str, str, str, str, float, str]] = []
    subs: list[int] = []
    seen: set[str] = set()
    for j, (sub, n) in enumerate(zip(CATALOG, counts)):
        brands = sub.brands
        tier = rng.uniform(0.85, 1.25, len(brands))
        for _ in range(n):
            title, brand, compat, price = _make_item(rng, sub, brands, tier, seen)
            rows.append((title, f"{sub.top} > {sub.name}", _describe(rng, sub, brand), brand, price, compat))
            subs.append(j)
    frame = pd.DataFrame(rows, columns=["title", "category", "description", "brand", "price", "compat"])
    n = len(frame)
    frame.insert(0, "item_id", [f"P{k + 1:06d}" for k in rng.permutation(n)])
    sub_arr = np.array(subs)
    active = np.ones(n, dtype=bool)
    active[rng.choice(n, size=max(1, round(0.03 * n)), replace=False)] = False
    key, item = _zipf_sampler(rng, sub_arr, active)
    return Catalog(frame=frame.drop(columns="compat"), sub=sub_arr, compat=frame["compat"].to_numpy(),
                    active=active, sample_key=key, sample_item=item,
                    buy_factor=_buy_factor(sub_arr, frame["price"].to_numpy()))


def _zipf_sampler(rng: np.random.Generator, sub: np.ndarray, active: np.ndarray,
                  exponent: float = 1.05) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys `sub + CDF` so that searchsorted(keys, sub + u) draws a Zipf-popular item of sub."""
    keys, items = [], []
    for j in range(len(CATALOG)):
        idx = np.flatnonzero((sub == j) & active)
        idx = idx[rng.permutation(len(idx))]  # popularity rank order
        p = 1.0 / np.arange(1, len(idx) + 1) ** exponent
        cdf = np.cumsum(p) / p.sum()
        cdf[-1] = 1.0
        keys.append(j + cdf)
        items.append(idx)
    return np.concatenate(keys), np.concatenate(items)


def _buy_factor(sub: np.ndarray, price: np.ndarray) -> np.ndarray:
    """(median price of the sub / price) ** 0.25, clipped: cheap items convert a little more."""
    med = pd.Series(price).groupby(sub).transform("median").to_numpy()
    return np.clip((med / price) ** 0.25, 0.7, 1.4)


def sample_items(rng: np.random.Generator, cat: Catalog, sub: np.ndarray) -> np.ndarray:
    """One Zipf-popular active item of each given sub-category."""
    pos = np.searchsorted(cat.sample_key, sub + rng.random(len(sub)), side="left")
    return cat.sample_item[np.minimum(pos, len(cat.sample_item) - 1)]
