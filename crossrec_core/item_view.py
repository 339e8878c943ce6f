"""One item as a merchandiser looks at it: find it by name (typo tolerant), its buyers over time and
their other categories, where they go next, what goes with it (co-purchase), what could stand in for it
(text similarity) and every rule that touches it.

Reads only (the store's connection, no writes); the fitted model's item-to-item parts come from the
serving recommender. Search ranks an exact title first, then a title that starts with the query, then
one that contains it, then titles whose words are close to the query's words (Jaro-Winkler per word,
so 'tripd' finds 'Travel tripod'); DuckDB's fts extension is not used because it does not load offline.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .rules import Rule

def search_items(store, text: str, limit: int = 20, *, min_similarity: float = 0.85) -> pd.DataFrame:
    """Items matching `text` by title, brand or id, best first (`Store.find_items`)."""
    return store.find_items(text, limit, min_similarity=min_similarity)


def buyers(store, item_id: str) -> dict:
    """Who bought the item: count, events per type, weekly trend, their other categories (`Store.item_buyers`)."""
    return store.item_buyers(item_id)


def next_categories(store, item_id: str, limit: int = 12) -> pd.DataFrame:
    """Where the item's buyers go next, with share and lift (`Store.item_next_categories`)."""
    return store.item_next_categories(item_id, limit)


def _position(rec, item_id: str) -> int:
    pos = int(rec.data_.item_index.get_indexer([item_id])[0])
    if pos < 0:
        from .errors import CrossRecError

        raise CrossRecError(f"item '{item_id}' is not in the serving run's catalog: retrain on the Runs page")
    return pos


def _frame(rec, pos: np.ndarray, extra: dict) -> pd.DataFrame:
    items = rec.items_
    out = pd.DataFrame({"item_id": items["item_id"].to_numpy()[pos], "title": items["title"].to_numpy()[pos],
                        "category": items["category"].to_numpy()[pos], **extra})
    for col in ("brand", "price"):
        if col in items:
            out[col] = items[col].to_numpy()[pos]
    return out.reset_index(drop=True)


def goes_with(rec, item_id: str, k: int = 10) -> pd.DataFrame:
    """Complements from co-purchase: the 'bought together' signal's item-to-item similarity row, with the
    share of the item's shoppers who also bought each one, and the basket model's (EASE) weight beside it.
    Columns: item_id, title, category, together (0..1), basket (EASE weight, NaN when not modelled),
    shoppers (both), reason."""
    signals = rec.scorer_.signals_ or {}
    i = _position(rec, item_id)
    cooc, ease = signals.get("cooc"), signals.get("ease")
    scores = np.zeros(rec.data_.n_items, np.float64)
    if cooc is not None:
        scores += cooc.S_[i].toarray().ravel()
    basket = np.full(rec.data_.n_items, np.nan)
    if ease is not None and len(ease.items_):
        where = np.searchsorted(ease.items_, i)
        if where < len(ease.items_) and ease.items_[where] == i:
            basket[ease.items_] = ease.B_[where]
    ranked = scores + 0.5 * np.nan_to_num(np.clip(basket, 0, None) / max(np.nanmax(np.abs(basket)), 1e-9)
                                          if np.isfinite(basket).any() else 0.0)
    ranked[i] = 0.0
    top = np.argsort(-ranked, kind="stable")[:k]
    top = top[ranked[top] > 0]
    if cooc is not None:
        both = np.array([cooc.co_count(i, int(j)) for j in top], np.int64)  # k pairs, not a hot path
        n_i = int(cooc.n_users_[i])
    else:
        both, n_i = np.zeros(len(top), np.int64), 0
    reasons = [f"{b:,} of this item's {n_i:,} shoppers also shopped it ({b / n_i:.0%})" if n_i and b
               else "goes with it in other shoppers' baskets" for b in both]
    return _frame(rec, top, {"together": scores[top], "basket": basket[top], "shoppers": both, "reason": reasons})


def instead_of(rec, item_id: str, k: int = 10) -> pd.DataFrame:
    """Substitutes from text similarity: the items whose text embedding is closest (cosine), with whether
    they share the category. Empty when item texts are not encoded."""
    E = getattr(rec, "embeddings_", None)
    cols = ["item_id", "title", "category", "similarity", "reason"]
    if E is None:
        return pd.DataFrame(columns=cols)
    i = _position(rec, item_id)
    if not np.abs(E[i]).sum():
        return pd.DataFrame(columns=cols)
    sims = E @ E[i]
    sims[i] = -np.inf
    top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    top = top[np.isfinite(sims[top])]
    cats = rec.items_["category"].to_numpy()
    same = cats[top] == cats[i]
    reasons = [f"similar text ({s:.2f} cosine)" + (", same category" if m else ", another category")
               for s, m in zip(sims[top], same)]
    return _frame(rec, top, {"similarity": sims[top].astype(float), "reason": reasons})


def touches(rule: Rule, item: dict) -> bool:
    """Whether a rule names this item, its brand, its category (any level) or a price range holding it."""
    if rule.item is not None:
        return str(rule.item) == str(item["item_id"])
    if rule.brand is not None:
        return str(rule.brand).lower() == str(item.get("brand") or "").lower()
    if rule.category is not None:
        path = str(item.get("category") or "")
        c = str(rule.category)
        return path == c or path.startswith(c + " > ")
    price = item.get("price")
    if price is None or pd.isna(price):
        return False
    return (rule.price_min is None or price >= rule.price_min) and (rule.price_max is None or price <= rule.price_max)


def rules_touching(store, item: dict) -> pd.DataFrame:
    """The live rules that touch the item: id, name, what the rule does (in words), segment, dates."""
    from .governance import rule_list

    rows = [{"id": r.id, "name": r.name, "rule": r.label(), "segment": r.segment or "everyone",
             "from": r.start or "", "until": r.end or ""} for r in rule_list(store) if touches(r, item)]
    return pd.DataFrame(rows, columns=["id", "name", "rule", "segment", "from", "until"])


def buyers_of(store, item_ids: list[str]) -> list[str]:
    """Shoppers with a purchase of any of these items (`Store.buyers_of`)."""
    return store.buyers_of(item_ids)


def selection_rules(item_ids: list[str], kind: str, name: str, multiplier: float | None = None) -> list[Rule]:
    """One rule per selected item ("boost", "bury" or "exclude"), named `name`: added together as one change."""
    return [Rule(kind=kind, item=str(i), name=name, multiplier=multiplier if kind == "boost" else None)
            for i in item_ids]


def item_base_rates(store, event_types: list[str]) -> pd.DataFrame:
    """Per item, the share of all such shoppers who had one on it (`Store.item_base_rates`)."""
    return store.item_base_rates(event_types)


def rank_by_lift(bridges: pd.DataFrame, base: pd.DataFrame, *, min_users: int = 2, top: int = 20) -> pd.DataFrame:
    """Bridge items ranked by lift (their share among the category's buyers against their share among all
    shoppers), not by raw share, which only finds best-sellers; items behind fewer than `min_users` are noise."""
    out = bridges.merge(base, on="item_id", how="left")
    out["lift"] = out["share"] / out["base"].where(out["base"] > 0)
    out = out[out["users"] >= min_users]
    return out.sort_values(["lift", "users", "item_id"], ascending=[False, False, True]).head(top).reset_index(drop=True)
