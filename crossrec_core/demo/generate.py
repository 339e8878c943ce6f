"""The demo shop's shoppers and their behaviour: users with 1-3 interest categories and heavy-tailed
activity, cold-start users (profile text, no events), sessions with a view → cart → purchase funnel,
and planted cross-category journeys (`PLANTEDJOURNEYS`) with matching item pairs. `generate()`
returns three frames and nothing else; same seed → identical frames."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalogue import CATALOG, JOURNEYS, PROFILE_PHRASES, TOP_WEIGHT
from .items import Catalog, build_catalog, pick, sample_items

EVENT_NAMES = np.array(["view", "cart", "purchase"])
VIEW, CART, PURCHASE = 0, 1, 2
DAY = 86_400


@dataclass
class DemoShop:
    """The generated shop: three frames in the column layout the ingest module expects."""

    items: pd.DataFrame  # item_id, title, category, description, brand, price
    events: pd.DataFrame  # user_id, item_id, event_type, timestamp
    users: pd.DataFrame  # user_id, profile_text


# ---- users -------------------------------------------------------------------------------------


@dataclass
class _Users:
    """Per-user arrays; `interests` is padded with -1 beyond `n_interests`."""

    ids: np.ndarray
    interests: np.ndarray  # n_users × 3 top-category indices
    n_interests: np.ndarray
    cold: np.ndarray  # bool: profile text, no events
    sessions: np.ndarray  # organic sessions per user (0 for cold)
    join_day: np.ndarray


def _tops() -> list[str]:
    return list(dict.fromkeys(s.top for s in CATALOG))


def _build_users(rng: np.random.Generator, n_users: int, days: int) -> _Users:
    """Interests (1-3 tops, weighted, no repeats), heavy-tailed activity, join day, cold starters."""
    tops = _tops()
    w = np.array([TOP_WEIGHT.get(t, 1.0) for t in tops])
    gumbel = np.log(w) - np.log(-np.log(rng.random((n_users, len(tops)))))
    interests = np.argsort(-gumbel, axis=1)[:, :3]
    n_int = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.4, 0.25])
    interests = np.where(np.arange(3) < n_int[:, None], interests, -1)
    cold = np.zeros(n_users, dtype=bool)
    cold[rng.choice(n_users, size=min(50, n_users // 20), replace=False)] = True
    sessions = np.clip(np.round(rng.lognormal(np.log(11.5), 1.0, n_users)), 1, 400).astype(int)
    sessions[cold] = 0
    join = np.where(rng.random(n_users) < 0.55, 0, rng.integers(0, max(1, int(days * 0.8)), n_users))
    ids = np.array([f"U{k + 1:05d}" for k in range(n_users)])
    return _Users(ids=ids, interests=interests, n_interests=n_int, cold=cold, sessions=sessions, join_day=join)


def _profile_texts(rng: np.random.Generator, users: _Users) -> np.ndarray:
    """Text for every cold starter and ~200 active users, from their first one or two interests."""
    tops = _tops()
    texts = np.full(len(users.ids), "", dtype=object)
    active = np.flatnonzero(~users.cold)
    chosen = np.concatenate([np.flatnonzero(users.cold),
                             rng.choice(active, size=min(200, len(active) // 10), replace=False)])
    for u in np.sort(chosen):
        k = min(int(users.n_interests[u]), 1 + int(rng.random() < 0.4))
        phrases = [pick(rng, list(PROFILE_PHRASES[tops[t]])) for t in users.interests[u, :k]]
        texts[u] = ". ".join(dict.fromkeys(phrases)) + "."
    return texts


# ---- behaviour ---------------------------------------------------------------------------------


@dataclass
class _Sessions:
    """Parallel arrays, one entry per browsing session."""

    user: np.ndarray
    start: np.ndarray  # seconds since the window start
    sub: np.ndarray
    first_item: np.ndarray  # -1, or an item the session opens with (a journey's matching item)
    boosted: np.ndarray  # bool: a journey follow-up, with more intent to buy


def _day_cdf(days: int, start: pd.Timestamp) -> np.ndarray:
    """Cumulative weights of the days: weekend bump and a gentle upward trend."""
    weekday = (start.dayofweek + np.arange(days)) % 7
    w = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.25, 1.3])[weekday] * np.linspace(0.9, 1.15, days)
    return np.cumsum(w) / w.sum()


def _hour_weights() -> np.ndarray:
    """Quiet nights, a lunch bump and an evening peak."""
    h = np.arange(24)
    w = 0.15 + 0.6 * np.exp(-((h - 12.5) / 2.0) ** 2) + 1.0 * np.exp(-((h - 20.5) / 2.2) ** 2) + 0.3 * (h >= 8)
    return w / w.sum()


def _session_subs(rng: np.random.Generator, users: _Users, s_user: np.ndarray) -> np.ndarray:
    """Sub-category of each session: mostly one of the user's interests, sometimes anything."""
    tops = _tops()
    by_top = [[j for j, s in enumerate(CATALOG) if s.top == t] for t in tops]
    width = max(len(b) for b in by_top)
    table = np.zeros((len(tops), width), dtype=int)
    cum = np.ones((len(tops), width))
    for t, members in enumerate(by_top):
        w = np.array([CATALOG[j].weight for j in members])
        table[t, : len(members)] = members
        table[t, len(members):] = members[-1]
        cum[t, : len(members)] = np.cumsum(w) / w.sum()
    slot = (rng.random(len(s_user)) * users.n_interests[s_user]).astype(int)
    top = users.interests[s_user, slot]
    col = (rng.random(len(s_user))[:, None] > cum[top]).sum(axis=1)
    sub = table[top, np.minimum(col, width - 1)]
    g = np.array([s.weight * TOP_WEIGHT.get(s.top, 1.0) for s in CATALOG])
    explore = rng.random(len(s_user)) < 0.12
    sub[explore] = rng.choice(len(CATALOG), size=int(explore.sum()), p=g / g.sum())
    return sub


def _organic_sessions(rng: np.random.Generator, users: _Users, days: int, start: pd.Timestamp) -> _Sessions:
    """All everyday sessions: when (after joining, weekly rhythm, hour of day) and where."""
    s_user = np.repeat(np.arange(len(users.ids)), users.sessions)
    cdf = _day_cdf(days, start)
    before = np.concatenate([[0.0], cdf])[users.join_day[s_user]]
    day = np.searchsorted(cdf, before + rng.random(len(s_user)) * (1.0 - before), side="left")
    hour = rng.choice(24, size=len(s_user), p=_hour_weights())
    t = np.minimum(day, days - 1) * DAY + hour * 3600 + rng.integers(0, 3600, len(s_user))
    n = len(s_user)
    return _Sessions(user=s_user, start=t, sub=_session_subs(rng, users, s_user),
                     first_item=np.full(n, -1), boosted=np.zeros(n, dtype=bool))


def _session_events(rng: np.random.Generator, cat: Catalog, s: _Sessions) -> pd.DataFrame:
    """Views (distinct items per session), then carts and purchases of some viewed items."""
    n_views = np.minimum(rng.geometric(0.42, len(s.user)), 10)
    sess = np.repeat(np.arange(len(s.user)), n_views)
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    pos = np.arange(len(sess)) - first[sess]
    item = sample_items(rng, cat, s.sub[sess])
    opener = (pos == 0) & (s.first_item[sess] >= 0)
    item[opener] = s.first_item[sess][opener]
    gaps = np.where(pos == 0, 0, rng.integers(20, 240, len(sess)))
    offset = np.cumsum(gaps)
    t_view = s.start[sess] + offset - offset[first[sess]]
    _, keep = np.unique(sess.astype(np.int64) * len(cat.sub) + item, return_index=True)
    keep = np.sort(keep)
    sess, item, t_view = sess[keep], item[keep], t_view[keep]
    boost = s.boosted[sess]
    p_cart = np.clip(0.235 * cat.buy_factor[item] * np.where(boost, 1.6, 1.0), 0, 0.9)
    cart = rng.random(len(item)) < p_cart
    t_cart = t_view + rng.integers(15, 400, len(item))
    buy = np.where(cart, rng.random(len(item)) < np.where(boost, 0.7, 0.56),
                   rng.random(len(item)) < 0.04 * cat.buy_factor[item])
    wait = np.where(rng.random(len(item)) < 0.85, rng.integers(30, 1800, len(item)),
                    rng.integers(3600, 2 * DAY, len(item)))
    t_buy = np.where(cart, t_cart, t_view) + wait
    user = s.user[sess]
    return pd.DataFrame({
        "user": np.concatenate([user, user[cart], user[buy]]),
        "item": np.concatenate([item, item[cart], item[buy]]),
        "type": np.concatenate([np.full(len(item), VIEW), np.full(int(cart.sum()), CART),
                                np.full(int(buy.sum()), PURCHASE)]),
        "t": np.concatenate([t_view, t_cart[cart], t_buy[buy]]),
    })


def _sub_index(path: str) -> int:
    top, name = path.split(" > ")
    return next(j for j, s in enumerate(CATALOG) if s.top == top and s.name == name)


def _matching_items(cat: Catalog, src: int, dst: int) -> np.ndarray:
    """For every active item of sub `src`, its partner in sub `dst` (-1 elsewhere).

    Same brand (or the lens mount of a camera's brand) when there is one, else the item at the same
    price percentile, so expensive bodies pair with expensive lenses.
    """
    price = cat.frame["price"].to_numpy()
    pair = np.full(len(cat.sub), -1)
    cand = np.flatnonzero((cat.sub == dst) & cat.active)
    cand = cand[np.argsort(price[cand], kind="stable")]
    src_prices = np.sort(price[(cat.sub == src) & cat.active])
    for i in np.flatnonzero((cat.sub == src) & cat.active):
        pool = cand[cat.compat[cand] == cat.compat[i]]
        pool = pool if len(pool) else cand
        pct = np.searchsorted(src_prices, price[i]) / max(1, len(src_prices) - 1)
        pair[i] = pool[min(int(round(pct * (len(pool) - 1))), len(pool) - 1)]
    return pair


def _journey_sessions(rng: np.random.Generator, cat: Catalog, events: pd.DataFrame) -> _Sessions:
    """Follow-up sessions: after a user's first purchase in a journey's `from` sub-category, with
    the journey's probability, a session in its `to` sub-category a few hours to weeks later that
    usually opens with the matching item."""
    buys = events[events["type"] == PURCHASE].sort_values(["t", "user", "item"], kind="stable")
    parts: list[tuple[np.ndarray, ...]] = []
    for src_path, dst_path, prob in JOURNEYS:
        src, dst = _sub_index(src_path), _sub_index(dst_path)
        first = buys[cat.sub[buys["item"].to_numpy()] == src].drop_duplicates("user")
        first = first[rng.random(len(first)) < prob]
        n = len(first)
        delay = 1800 + rng.exponential(4 * DAY, n).astype(np.int64)
        matching = _matching_items(cat, src, dst)[first["item"].to_numpy()]
        opener = np.where(rng.random(n) < 0.75, matching, -1)
        parts.append((first["user"].to_numpy(), first["t"].to_numpy() + delay, np.full(n, dst), opener))
    user, start, sub, opener = (np.concatenate(x) for x in zip(*parts))
    return _Sessions(user=user, start=start, sub=sub, first_item=opener, boosted=np.ones(len(user), dtype=bool))


# ---- assembly ----------------------------------------------------------------------------------


def _events_frame(cat: Catalog, users: _Users, raw: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Integer events → the public frame, inside the window, time-ordered, without duplicates."""
    raw = raw[(raw["t"] >= 0) & (raw["t"] < days * DAY)]
    raw = raw.drop_duplicates(["user", "item", "type", "t"]).sort_values(["t", "user", "type", "item"], kind="stable")
    base = start.as_unit("us").value // 1000  # µs since the epoch
    ts = pd.to_datetime(base + raw["t"].to_numpy(np.int64) * 1_000_000, unit="us", utc=True)
    return pd.DataFrame({
        "user_id": users.ids[raw["user"].to_numpy()],
        "item_id": cat.frame["item_id"].to_numpy()[raw["item"].to_numpy()],
        "event_type": EVENT_NAMES[raw["type"].to_numpy()],
        "timestamp": ts,
    }).reset_index(drop=True)


def generate(seed: int = 7, *, n_items: int = 3200, n_users: int = 2200, days: int = 120,
             end: str = "2026-10-31", progress: Callable[[float, str], None] | None = None) -> DemoShop:
    """Build the demo shop. Events span the `days` days up to and including the day `end` (UTC)."""
    report = progress or (lambda _f, _m: None)
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(end, tz="UTC").normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=days)

    report(0.0, "building the catalogue")
    cat = build_catalog(rng, n_items)
    report(0.3, "creating users")
    users = _build_users(rng, n_users, days)
    texts = _profile_texts(rng, users)
    report(0.45, "simulating sessions")
    organic = _session_events(rng, cat, _organic_sessions(rng, users, days, start))
    report(0.75, "planting cross-category journeys")
    organic = organic[organic["t"] < days * DAY]
    follow = _session_events(rng, cat, _journey_sessions(rng, cat, organic))
    events = _events_frame(cat, users, pd.concat([organic, follow], ignore_index=True), start, days)

    items = cat.frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    items["price"] = items["price"].astype(float)
    users_frame = pd.DataFrame({"user_id": users.ids, "profile_text": texts.astype(str)})
    report(1.0, f"{len(items):,} items, {len(users_frame):,} users, {len(events):,} events")
    return DemoShop(items=items, events=events, users=users_frame)
