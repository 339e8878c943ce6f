"""Item queries for the Item page and map selections: fuzzy search by name, an item's buyers and where
they go next, the buyers of a set of items, items' base rates. DuckDB's fts extension is not used
because it does not load offline; search is Jaro-Winkler per word after exact, prefix and contains."""
from __future__ import annotations

import re

import pandas as pd

from .store_base import StoreBase

_WORDS = re.compile(r"[^\w]+")

# score: 4 exact title or id, 3 title starts with the query, 2 title/brand contains it, else the mean over
# query words of the best Jaro-Winkler similarity to a title word (0..1), kept from `min_similarity` up
_SEARCH_SQL = """
WITH scored AS (
  SELECT item_id, title, category, brand, price,
         CASE WHEN lower(title) = $q OR lower(item_id) = $q THEN 4.0
              WHEN starts_with(lower(title), $q) THEN 3.0
              WHEN contains(lower(title), $q) OR contains(lower(coalesce(brand, '')), $q)
                   OR contains(lower(item_id), $q) THEN 2.0
              ELSE coalesce(list_avg(list_transform($words::VARCHAR[], lambda q: list_max(list_transform(
                     string_split_regex(lower(title || ' ' || coalesce(brand, '')), '[^[:alnum:]]+'),
                     lambda w: jaro_winkler_similarity(w, q))))), 0.0)
         END AS match
  FROM items)
SELECT * FROM scored WHERE match >= $min ORDER BY match DESC, length(title), title, item_id LIMIT $limit
"""



class ItemQueries(StoreBase):
    """Reads about single items and item selections."""

    def find_items(self, text: str, limit: int = 20, *, min_similarity: float = 0.85) -> pd.DataFrame:
        """Items matching `text` by title, brand or id, best first (columns item_id, title, category, brand,
        price, match). Exact and prefix matches come first; misspellings still match by word similarity."""
        q = " ".join(str(text).lower().split())
        if not q:
            return pd.DataFrame(columns=["item_id", "title", "category", "brand", "price", "match"])
        words = [w for w in _WORDS.split(q) if w]
        return self._df(_SEARCH_SQL, {"q": q, "words": words or [q], "min": float(min_similarity), "limit": int(limit)})

    def item_buyers(self, item_id: str) -> dict:
        """Who bought the item: `count` (distinct buyers), `events` per type, `trend` (week, buyers) and
        `categories` (cat_top, buyers, share): the other top-level categories its buyers bought in."""
        counts = self._df("""SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users
                              FROM events WHERE item_id = ? GROUP BY 1 ORDER BY 2 DESC""", [item_id])
        trend = self._df("""SELECT date_trunc('week', ts) AS week, count(DISTINCT user_id) AS buyers
                             FROM events WHERE item_id = ? AND event_type = 'purchase' GROUP BY 1 ORDER BY 1""",
                          [item_id])
        n = int(counts.loc[counts["event_type"] == "purchase", "users"].sum()) if not counts.empty else 0
        cats = self._df("""WITH b AS (SELECT DISTINCT user_id FROM events WHERE item_id = ? AND event_type = 'purchase')
                            SELECT i.cat_top, count(DISTINCT e.user_id) AS buyers
                            FROM events e SEMI JOIN b USING (user_id) JOIN items i USING (item_id)
                            WHERE e.event_type = 'purchase' AND e.item_id <> ?
                            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12""", [item_id, item_id])
        cats["share"] = cats["buyers"] / n if n else 0.0
        return {"count": n, "events": counts, "trend": trend, "categories": cats}

    def item_next_categories(self, item_id: str, limit: int = 12) -> pd.DataFrame:
        """Where the item's buyers go next: categories (level 2) bought after their first purchase of the item,
        with users, share of the item's buyers and lift against the category's share of all buyers."""
        return self._df("""
            WITH first AS (SELECT user_id, min(ts) AS t0 FROM events WHERE item_id = ? AND event_type = 'purchase'
                           GROUP BY 1),
                 after AS (SELECT DISTINCT e.user_id, i.cat_sub FROM events e JOIN first f USING (user_id)
                           JOIN items i USING (item_id)
                           WHERE e.event_type = 'purchase' AND e.ts > f.t0 AND e.item_id <> ?),
                 base AS (SELECT i.cat_sub, count(DISTINCT e.user_id) AS users FROM events e JOIN items i USING (item_id)
                          WHERE e.event_type = 'purchase' GROUP BY 1),
                 everyone AS (SELECT count(DISTINCT user_id) AS n FROM events WHERE event_type = 'purchase')
            SELECT a.cat_sub AS category, count(*) AS users,
                   count(*) / (SELECT count(*) FROM first) AS share,
                   (count(*) / (SELECT count(*) FROM first)) / (any_value(b.users) / (SELECT n FROM everyone)) AS lift
            FROM after a JOIN base b USING (cat_sub) GROUP BY 1 ORDER BY users DESC, lift DESC LIMIT ?""",
                         [item_id, item_id, int(limit)])

    def buyers_of(self, item_ids: list[str]) -> list[str]:
        """Shoppers with a purchase of any of these items (a map selection's buyers, e.g. for a segment)."""
        ids = pd.DataFrame({"item_id": [str(i) for i in item_ids]})
        with self._lock:
            self.con.register("picked_items", ids)
            try:
                rows = self.con.execute("""SELECT DISTINCT user_id FROM events SEMI JOIN picked_items USING (item_id)
                                            WHERE event_type = 'purchase' ORDER BY 1""").fetchall()
            finally:
                self.con.unregister("picked_items")
        return [r[0] for r in rows]

    def item_base_rates(self, event_types: list[str]) -> pd.DataFrame:
        """Per item, the share of all shoppers with an event of `event_types` who had one on it (item_id, base)."""
        return self._df("""SELECT item_id, count(DISTINCT user_id) / (SELECT count(DISTINCT user_id) FROM events
                                                                       WHERE list_contains($t, event_type)) AS base
                            FROM events WHERE list_contains($t, event_type) GROUP BY 1""", {"t": list(event_types)})
