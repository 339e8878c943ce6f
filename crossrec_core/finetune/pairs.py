"""Training pairs for the encoder: (history item A, candidate item B) that one shopper bought together.

Only the events handed in are read, so the caller decides the period: `crossrec finetune` passes the
events before the evaluation's test cut (and carves its own validation period from them), never later.

- A basket is one shopper's run of events with no gap longer than `window_minutes`.
- `order`: 'same' pairs items of one basket (both directions), 'next' pairs an item of a basket with
  the items of the shopper's next basket (A earlier, B later: what a history predicts), 'both' does both.
- Weight: `lift` = n_ab · N / (n_a · n_b) over baskets (shrunk towards 1 by `lift_shrink` co-baskets,
  so a pair seen once between two rare items is not a certainty), `count` = n_ab, `log` = log(1 + n_ab).
- Popular items' share is capped: an item is the A side of at most `max_per_item` pairs (its heaviest).
- Cross-category pairs (different top-level categories) are kept at `cross_share` of the pairs when
  set, by dropping the lightest pairs of the side over its share; None keeps the natural mix.
- Pairs are de-duplicated: one row per (A, B) with the basket count, the weight and the last event time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import CrossRecError

ORDERS = ("same", "next", "both")
WEIGHTINGS = ("lift", "count", "log")


@dataclass
class PairSettings:
    window_minutes: float = 60.0
    order: str = "both"
    weighting: str = "count"
    lift_shrink: float = 2.0
    max_per_item: int = 200
    max_basket: int = 40  # larger baskets are sampled down to this many items (pairs grow with its square)
    cross_share: float | None = None
    event_types: tuple[str, ...] | None = None  # None: every event type
    seed: int = 42

    def to_dict(self) -> dict:
        d = asdict(self)
        d["event_types"] = None if self.event_types is None else list(self.event_types)
        return d

    def check(self) -> "PairSettings":
        if self.order not in ORDERS:
            raise CrossRecError(f"unknown pair order '{self.order}' (use {', '.join(ORDERS)})")
        if self.weighting not in WEIGHTINGS:
            raise CrossRecError(f"unknown pair weighting '{self.weighting}' (use {', '.join(WEIGHTINGS)})")
        if self.window_minutes <= 0 or self.max_per_item < 1 or self.max_basket < 2:
            raise CrossRecError("window_minutes must be > 0, max_per_item >= 1 and max_basket >= 2")
        if self.cross_share is not None and not 0.0 <= self.cross_share <= 1.0:
            raise CrossRecError(f"cross_share must be between 0 and 1, got {self.cross_share}")
        return self


def baskets(events: pd.DataFrame, item_index: pd.Index, window_minutes: float,
            event_types: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Events coded as (basket, user, i, ts), one row per distinct item of a basket, oldest first."""
    ev = events if event_types is None else events[events["event_type"].isin(event_types)]
    i = item_index.get_indexer(ev["item_id"])
    ev = pd.DataFrame({"user": ev["user_id"].to_numpy(), "i": i, "ts": pd.to_datetime(ev["ts"]).to_numpy()})
    ev = ev[ev["i"] >= 0].sort_values(["user", "ts", "i"], kind="stable").reset_index(drop=True)
    if ev.empty:
        return ev.assign(basket=np.zeros(0, np.int64))
    user = ev["user"].to_numpy()
    ts = ev["ts"].to_numpy()
    new_user = np.r_[True, user[1:] != user[:-1]]
    gap = np.r_[np.inf, np.diff(ts).astype("timedelta64[s]").astype(np.float64)]
    ev["basket"] = np.cumsum(new_user | (gap > window_minutes * 60.0)) - 1
    return ev.drop_duplicates(["basket", "i"], keep="last").reset_index(drop=True)


def _pairs_within(b: pd.DataFrame, rng: np.random.Generator, max_basket: int, basket_of_b=None):
    """Ordered (A, B) pairs between the items of basket k (A side) and basket `basket_of_b[k]` (B side);
    same basket when basket_of_b is None. Returns a, b, ts (of B's event)."""
    # sample large baskets down
    size = b.groupby("basket")["i"].transform("size").to_numpy()
    keep = (size <= max_basket) | (rng.random(len(b)) < max_basket / np.maximum(size, 1))
    b = b[keep]
    bk = b["basket"].to_numpy()
    starts = np.flatnonzero(np.r_[True, bk[1:] != bk[:-1]])
    ends = np.r_[starts[1:], len(bk)]
    first = np.full(int(bk.max()) + 1 if len(bk) else 0, -1, np.int64)
    count = np.zeros_like(first)
    first[bk[starts]] = starts
    count[bk[starts]] = ends - starts
    src_basket = bk[starts]
    dst_basket = src_basket if basket_of_b is None else basket_of_b[src_basket]
    ok = dst_basket >= 0
    ok[ok] = count[dst_basket[ok]] > 0
    src_basket, dst_basket = src_basket[ok], dst_basket[ok]
    n_src, n_dst = count[src_basket], count[dst_basket]
    per = n_src * n_dst
    total = int(per.sum())
    if total == 0:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, "datetime64[ns]")
    owner = np.repeat(np.arange(len(per)), per)
    offset = np.arange(total) - np.repeat(np.cumsum(per) - per, per)
    ia = first[src_basket][owner] + offset // n_dst[owner]
    ib = first[dst_basket][owner] + offset % n_dst[owner]
    items = b["i"].to_numpy()
    tss = b["ts"].to_numpy()
    a, bb = items[ia], items[ib]
    distinct = a != bb
    return a[distinct], bb[distinct], tss[ib][distinct]


def build_pairs(items: pd.DataFrame, events: pd.DataFrame, settings: PairSettings | None = None) -> pd.DataFrame:
    """De-duplicated weighted pairs: columns a, b (item positions in `items` order), a_id, b_id, n (baskets),
    weight, cross (different top-level category), last_ts (latest event behind the pair)."""
    s = (settings or PairSettings()).check()
    rng = np.random.default_rng(s.seed)
    item_ids = items["item_id"].to_numpy(dtype=object)
    item_index = pd.Index(item_ids)
    b = baskets(events, item_index, s.window_minutes, s.event_types)
    cols = ["a", "b", "a_id", "b_id", "n", "weight", "cross", "last_ts"]
    if b.empty:
        return pd.DataFrame({c: [] for c in cols})
    parts = []
    if s.order in ("same", "both"):
        parts.append(_pairs_within(b, rng, s.max_basket))
    if s.order in ("next", "both"):
        bk = b["basket"].to_numpy()
        user = b["user"].to_numpy()
        n_b = int(bk.max()) + 1
        first_row = np.full(n_b, -1, np.int64)
        first_row[bk[::-1]] = np.arange(len(bk))[::-1]
        buser = user[first_row]
        nxt = np.r_[np.arange(1, n_b), -1]
        nxt[:-1][buser[1:] != buser[:-1]] = -1  # the next basket must be the same shopper's
        parts.append(_pairs_within(b, rng, s.max_basket, basket_of_b=nxt))
    a = np.concatenate([p[0] for p in parts])
    bb = np.concatenate([p[1] for p in parts])
    ts = np.concatenate([p[2] for p in parts])
    # de-duplicate on one int64 key: n = co-baskets (a pair occurs once per basket, once per basket pair)
    n_all = np.int64(len(item_ids))
    key = a.astype(np.int64) * n_all + bb
    order = np.argsort(key, kind="stable")
    key, ts = key[order], ts[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    agg = pd.DataFrame({"a": key[starts] // n_all, "b": key[starts] % n_all,
                        "n": np.diff(np.r_[starts, len(key)]),
                        "last_ts": np.maximum.reduceat(ts.astype("datetime64[ns]").astype(np.int64), starts)
                        .astype("datetime64[ns]")})
    n_baskets = b["basket"].nunique()
    item_baskets = np.bincount(b["i"].to_numpy(), minlength=len(item_ids)).astype(np.float64)
    n = agg["n"].to_numpy(np.float64)
    if s.weighting == "lift":
        expected = item_baskets[agg["a"]] * item_baskets[agg["b"]] / max(n_baskets, 1)
        w = (n + s.lift_shrink * expected) / (expected * (1.0 + s.lift_shrink) + 1e-12)
        w = np.log1p(w)  # lift spans orders of magnitude: its log keeps the sampling from collapsing
    elif s.weighting == "log":
        w = np.log1p(n)
    else:
        w = n
    agg["weight"] = w
    tops = items["cat_top"].to_numpy(dtype=object) if "cat_top" in items.columns else np.zeros(len(items), object)
    agg["cross"] = tops[agg["a"]] != tops[agg["b"]]
    # cap popular items: an item is the A side of at most max_per_item pairs (its heaviest)
    agg = agg.sort_values(["a", "weight", "b"], ascending=[True, False, True], kind="stable")
    agg = agg[agg.groupby("a").cumcount() < s.max_per_item]
    if s.cross_share is not None and len(agg):
        agg = _set_cross_share(agg, s.cross_share)
    agg["a_id"] = item_ids[agg["a"].to_numpy()]
    agg["b_id"] = item_ids[agg["b"].to_numpy()]
    return agg[cols].reset_index(drop=True)


def _set_cross_share(pairs: pd.DataFrame, share: float) -> pd.DataFrame:
    cross = pairs[pairs["cross"]]
    within = pairs[~pairs["cross"]]
    have = len(cross) / len(pairs)
    if have > share and share < 1.0:  # too many cross pairs: keep the heaviest ones
        keep = int(round(share * len(within) / (1.0 - share)))
        cross = cross.nlargest(keep, "weight")
    elif have < share and share > 0.0:
        keep = int(round((1.0 - share) * len(cross) / share))
        within = within.nlargest(keep, "weight")
    return pd.concat([within, cross]).sort_values(["a", "b"], kind="stable")


def pair_summary(pairs: pd.DataFrame) -> dict:
    """Counts for the card: pairs, distinct A and B items, cross share, the latest event time."""
    if pairs.empty:
        return {"pairs": 0, "a_items": 0, "b_items": 0, "cross_share": None, "last_ts": None}
    return {"pairs": int(len(pairs)), "a_items": int(pairs["a"].nunique()), "b_items": int(pairs["b"].nunique()),
            "cross_share": float(pairs["cross"].mean()), "last_ts": str(pd.Timestamp(pairs["last_ts"].max()))}
