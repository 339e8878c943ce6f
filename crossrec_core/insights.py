"""Read-only analyses behind the dashboard's User and Category pages.

Built only on Store's public methods, the fitted Recommender and pandas: no SQL here, no scoring of
its own (lists come from the recommender, affinities use the engine's own event weighting).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence, TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import Settings
from .data import event_weights

if TYPE_CHECKING:
    from .recommender import Recommender
    from .store import Store


SEP = " > "


def top_of(path: str) -> str:
    return str(path).split(SEP)[0]


def sub_of(path: str) -> str:
    return SEP.join(str(path).split(SEP)[:2])


def in_category(paths: pd.Series, category: str) -> pd.Series:
    """Which category paths lie in `category` (a top-level name, a level-2 path or a full path)."""
    paths = paths.astype(str)
    return (paths == category) | paths.str.startswith(category + SEP)


# ---- users --------------------------------------------------------------------------------------


def user_lists(summary: pd.DataFrame, n: int = 25) -> dict[str, pd.DataFrame]:
    """Starting points for the User page: heavy buyers, single-category users, cold-start users."""
    s = summary
    heavy = s[s["purchases"] > 0].sort_values(["purchases", "events", "user_id"], ascending=[False, False, True])
    single = s[(s["top_categories"] == 1) & (s["events"] >= 3)].sort_values(["events", "user_id"],
                                                                           ascending=[False, True])
    cold = s[(s["events"] == 0) & s["has_profile_text"]].sort_values("user_id")
    return {"heavy": heavy.head(n), "single": single.head(n), "cold": cold.head(n)}


def user_affinity(store: Store, user_id: str, settings: Settings | None = None, level: str = "top") -> pd.DataFrame:
    """The user's share of behaviour per category, weighted as the engine weighs it (event type × recency).

    Columns: category, weight, share, events (level "top" = top-level, "sub" = level-2 path).
    """
    settings = settings or Settings()
    ev = store.user_events(user_id)
    if ev.empty:
        return pd.DataFrame(columns=["category", "weight", "share", "events"])
    now = store.time_range()[1]
    ts = pd.to_datetime(ev["ts"])
    w = event_weights(ev["event_type"], ts, settings, pd.Timestamp(now))
    cat = ev["cat_top"] if level == "top" else ev["category"].map(sub_of)
    df = pd.DataFrame({"category": cat.astype(str), "weight": w})
    out = df.groupby("category").agg(weight=("weight", "sum"), events=("weight", "size")).reset_index()
    total = out["weight"].sum()
    out["share"] = out["weight"] / total if total > 0 else 0.0
    return out.sort_values("share", ascending=False).reset_index(drop=True)


# ---- categories ---------------------------------------------------------------------------------


def category_flows(rec: Recommender, category: str, *, min_users: int = 5, other_top_only: bool = True) -> pd.DataFrame:
    """Where buyers of `category` go next, from the fitted transition signal.

    Columns: from, to, users_from, users_both, p, lift, strength — strongest first. Empty when the
    serving run has no transition signal.
    """
    sig = (getattr(rec.scorer_, "signals_", None) or {}).get("transition")
    if sig is None or not hasattr(sig, "flows"):
        return pd.DataFrame(columns=["from", "to", "users_from", "users_both", "p", "lift", "strength"])
    flows = sig.flows(min_users=min_users)
    # flows are at the engine's transition level: keep those inside the category, or containing it
    inside = in_category(flows["from"], category)
    contains = flows["from"].map(lambda f: category.startswith(str(f) + SEP))
    flows = flows[inside | contains]
    if other_top_only:
        a_top = top_of(category)
        flows = flows[flows["to"].map(top_of) != a_top]
    else:
        flows = flows[flows["to"] != flows["from"]]
    return flows.sort_values(["strength", "users_both"], ascending=False).reset_index(drop=True)


def sample_ids(ids: Sequence[str], n: int, seed: int) -> list[str]:
    ids = list(ids)
    if len(ids) <= n:
        return ids
    return sorted(np.random.default_rng(seed).choice(np.asarray(ids, dtype=object), n, replace=False).tolist())


def bridge_items(store: Store, category: str, *, event_types: Sequence[str] = ("purchase",), max_buyers: int = 2000,
                 top: int = 20, seed: int = 42) -> tuple[pd.DataFrame, int, int]:
    """Items of other top-level categories most often bought by `category`'s buyers *after* their first
    purchase in it. Returns (items: item_id, title, category, cat_top, users, share; buyers in the
    category; buyers looked at — a seeded sample past `max_buyers`)."""
    types = list(event_types)
    buyers = store.users_in_category(category, types)
    sample = sample_ids(buyers, max_buyers, seed)
    empty = pd.DataFrame(columns=["item_id", "title", "category", "cat_top", "users", "share"])
    if not sample:
        return empty, len(buyers), 0
    ev = store.events(user_ids=sample)
    ev = ev[ev["event_type"].isin(types)]
    items = store.items("item_id, title, category, cat_top")
    ev = ev.merge(items, on="item_id", how="inner")
    inside = in_category(ev["category"], category)
    first = ev[inside].groupby("user_id")["ts"].min().rename("first_in_a")
    a_top = top_of(category)
    later = ev[(ev["cat_top"] != a_top)].join(first, on="user_id", how="inner")
    later = later[later["ts"] > later["first_in_a"]]
    if later.empty:
        return empty, len(buyers), len(sample)
    counts = later.groupby("item_id")["user_id"].nunique().rename("users").reset_index()
    out = counts.merge(items, on="item_id").sort_values(["users", "item_id"], ascending=[False, True]).head(top)
    out["share"] = out["users"] / len(sample)
    return out[["item_id", "title", "category", "cat_top", "users", "share"]].reset_index(drop=True), len(buyers), len(sample)


def engine_cross_picks(rec: Recommender, user_ids: Sequence[str], *, k: int = 10, top: int = 20
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the engine recommends to these users in categories new to them (cross mode).

    Returns (items: item_id, title, category, cat_top, users, share, mean_rank;
    categories: cat_top, users, share, slots) — shares are of the users given.
    """
    item_users: Counter = Counter()
    ranks: dict[str, list[int]] = defaultdict(list)
    cat_users: Counter = Counter()
    cat_slots: Counter = Counter()
    meta: dict[str, tuple] = {}
    n = 0
    for _, df in rec.recommend_batch(list(user_ids), k=k, mode="cross", explain=False):
        n += 1
        for r in df.itertuples(index=False):
            item_users[r.item_id] += 1
            ranks[r.item_id].append(int(r.rank))
            cat_slots[r.cat_top] += 1
            meta[r.item_id] = (r.title, r.category, r.cat_top)
        for c in set(df["cat_top"]):
            cat_users[c] += 1
    if n == 0:
        return (pd.DataFrame(columns=["item_id", "title", "category", "cat_top", "users", "share", "mean_rank"]),
                pd.DataFrame(columns=["cat_top", "users", "share", "slots"]))
    items = pd.DataFrame(
        [(i, *meta[i], u, u / n, float(np.mean(ranks[i]))) for i, u in item_users.most_common(top)],
        columns=["item_id", "title", "category", "cat_top", "users", "share", "mean_rank"],
    )
    cats = pd.DataFrame([(c, u, u / n, cat_slots[c]) for c, u in cat_users.most_common()],
                        columns=["cat_top", "users", "share", "slots"])
    return items, cats
