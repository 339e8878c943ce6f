"""The store's catalog queries: items, users, categories, and what is derived from item text
(embeddings by text hash, map projections). Methods of `Store`."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Sequence

import duckdb

import numpy as np
import pandas as pd

from .store_base import StoreBase, execute



def _kept(column: str, stored: str = "i") -> str:
    """SQL of a column the file did not have: the stored value of a row already stored, else the new row's
    (its empty default)."""
    return f"(CASE WHEN {stored}.added_at IS NULL THEN n.{column} ELSE {stored}.{column} END)"


# a row's attributes: the stored ones with the file's on top, key by key (a JSON null, from a Parquet null,
# takes the key out; a key the file did not have keeps its stored value)
_MERGED_ATTRS = """(CASE WHEN i.attrs IS NULL THEN n.attrs::JSON WHEN n.attrs IS NULL THEN i.attrs
                    ELSE json_merge_patch(i.attrs, n.attrs::JSON) END)"""


class CatalogQueries(StoreBase):
    """Items, users, categories, embeddings and projections (methods of `Store`)."""

    def items(self, columns: str = "*") -> pd.DataFrame:
        """The whole catalog, ordered by item_id (the engine's item index)."""
        return self._df(f"SELECT {columns} FROM items ORDER BY item_id")

    def item(self, item_id: str) -> dict | None:
        df = self._df("SELECT * FROM items WHERE item_id = ?", [item_id])
        return None if df.empty else df.iloc[0].to_dict()

    def items_by_id(self, item_ids: Sequence[str]) -> pd.DataFrame:
        ids = pd.DataFrame({"item_id": list(item_ids)})
        with self._lock:
            self.con.register("wanted_items", ids)
            try:
                return self.con.execute(
                    "SELECT i.* FROM wanted_items w JOIN items i USING (item_id)"
                ).df()
            finally:
                self.con.unregister("wanted_items")

    def search_items(self, text: str, limit: int = 50) -> pd.DataFrame:
        """Items whose id, title or brand contains `text` (case-insensitive)."""
        like = f"%{text.strip()}%"
        return self._df(
            """SELECT item_id, title, category, brand, price FROM items
               WHERE item_id ILIKE ? OR title ILIKE ? OR brand ILIKE ? ORDER BY title LIMIT ?""",
            [like, like, like, limit],
        )

    def has_user(self, user_id: str) -> bool:
        return bool(self._one("SELECT count(*) FROM users WHERE user_id = ?", [user_id]))

    def user(self, user_id: str) -> dict | None:
        df = self._df("SELECT * FROM users WHERE user_id = ?", [user_id])
        return None if df.empty else df.iloc[0].to_dict()

    def profile_texts(self) -> pd.DataFrame:
        """Users with non-empty profile text."""
        return self._df(
            "SELECT user_id, profile_text FROM users WHERE coalesce(trim(profile_text), '') <> '' ORDER BY user_id"
        )

    def user_ids(self) -> list[str]:
        return self._column("SELECT user_id FROM users ORDER BY user_id")

    def user_summary(self) -> pd.DataFrame:
        """Per user: events, purchases, distinct top categories, first/last event, has profile text."""
        return self._df(
            """SELECT u.user_id,
                      count(e.item_id) AS events,
                      count(e.item_id) FILTER (WHERE e.event_type = 'purchase') AS purchases,
                      count(DISTINCT i.cat_top) AS top_categories,
                      min(e.ts) AS first_event, max(e.ts) AS last_event,
                      coalesce(trim(u.profile_text), '') <> '' AS has_profile_text
               FROM users u LEFT JOIN events e USING (user_id) LEFT JOIN items i USING (item_id)
               GROUP BY u.user_id, u.profile_text ORDER BY u.user_id"""
        )

    def users_in_category(self, category: str, event_types: Sequence[str] = ("purchase",)) -> list[str]:
        """Users with an event of `event_types` in a category (top level, level-2 path or full path)."""
        types = list(event_types)
        rows = self._df(
            """SELECT DISTINCT e.user_id FROM events e JOIN items i USING (item_id)
               WHERE (i.cat_top = ? OR i.cat_sub = ? OR i.category = ?) AND list_contains(?, e.event_type)
               ORDER BY e.user_id""",
            [category, category, category, types],
        )
        return rows["user_id"].tolist()

    def categories(self) -> pd.DataFrame:
        """Every category path with its levels, item count and event count."""
        return self._df(
            """SELECT i.category, i.cat_top, i.cat_sub, count(DISTINCT i.item_id) AS items,
                      count(e.item_id) AS events
               FROM items i LEFT JOIN events e USING (item_id)
               GROUP BY i.category, i.cat_top, i.cat_sub ORDER BY i.category"""
        )

    def catalog_fingerprint(self) -> str:
        """Changes whenever the items (their ids or text) change, not with events: keys the item map."""
        row = self._one("SELECT count(*)::VARCHAR || ':' || coalesce(bit_xor(hash(item_id, title, category, "
                        "description, brand))::VARCHAR, '') FROM items")
        return hashlib.sha1(str(row).encode()).hexdigest()[:16]

    # ---- loading (the ingest's last step, inside its transaction) ---------------------------------

    @staticmethod
    def load_new_items(con: duckdb.DuckDBPyConnection, now: datetime, absent: Sequence[str] = ()) -> tuple[int, int]:
        """Insert or replace the rows of `new_items` (a clean table or frame in the store's shape); how many
        were in the store already and how many of those changed. An item already stored keeps its value of
        each column in `absent` (optional columns its file did not have) and of each attribute the file did
        not have (an empty cell is what clears one)."""
        existing = con.execute("SELECT count(*) FROM new_items n JOIN items i USING (item_id)").fetchall()[0][0]
        if not existing:  # all new: a plain insert (OR REPLACE looks every key up: 3 s for 200k items)
            execute(con,
                """INSERT INTO items SELECT item_id, title, category, cat_top, cat_sub, cat_depth, description,
                          brand, price, attrs::JSON, ?::TIMESTAMP FROM new_items""",
                [now],
            )
            return 0, 0
        kept = {c: _kept(c) if c in absent else f"n.{c}" for c in ("description", "brand", "price")}
        execute(con,
            f"""CREATE OR REPLACE TEMP TABLE crossrec_merged_items AS
                SELECT n.item_id, n.title, n.category, n.cat_top, n.cat_sub, n.cat_depth, {kept['description']}
                       AS description, {kept['brand']} AS brand, {kept['price']} AS price, {_MERGED_ATTRS} AS attrs,
                       coalesce(i.added_at, ?) AS added_at
                FROM new_items n LEFT JOIN items i USING (item_id)""",
            [now],
        )
        try:
            changed = con.execute(
                """SELECT count(*) FROM crossrec_merged_items n JOIN items i USING (item_id)
                   WHERE i.title IS DISTINCT FROM n.title OR i.category IS DISTINCT FROM n.category
                      OR i.description IS DISTINCT FROM n.description OR i.brand IS DISTINCT FROM n.brand
                      OR i.price IS DISTINCT FROM n.price"""
            ).fetchall()[0][0]
            execute(con, "INSERT OR REPLACE INTO items SELECT * FROM crossrec_merged_items")
        finally:
            con.execute("DROP TABLE IF EXISTS crossrec_merged_items")
        return int(existing), int(changed)

    @staticmethod
    def load_new_users(con: duckdb.DuckDBPyConnection, now: datetime, absent: Sequence[str] = ()) -> int:
        """Insert or replace the rows of `new_users`; how many users are new. A stored user keeps its
        profile text when "profile_text" is `absent` (the file had no profile column) and each attribute
        the file did not have."""
        existing = con.execute("SELECT count(*) FROM new_users JOIN users USING (user_id)").fetchall()[0][0]
        total = con.execute("SELECT count(*) FROM new_users").fetchall()[0][0]
        profile = _kept("profile_text", "u") if "profile_text" in absent else "n.profile_text"
        execute(con,
            f"""INSERT OR REPLACE INTO users
               SELECT n.user_id, {profile}, {_MERGED_ATTRS.replace('i.', 'u.')}, coalesce(u.added_at, ?)
               FROM new_users n LEFT JOIN users u USING (user_id)""",
            [now],
        )
        return int(total - existing)

    # ---- embeddings -------------------------------------------------------------------------

    def embeddings(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of `model_id` for the given text hashes (missing ones are absent)."""
        wanted = pd.DataFrame({"text_hash": list(dict.fromkeys(text_hashes))})
        with self._lock:
            self.con.register("wanted_hashes", wanted)
            try:
                rows = self.con.execute(
                    """SELECT e.text_hash, e.vector FROM embeddings e SEMI JOIN wanted_hashes w USING (text_hash)
                       WHERE e.model_id = ?""",
                    [model_id],
                ).fetchnumpy()
            finally:
                self.con.unregister("wanted_hashes")
        return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["text_hash"], rows["vector"])}

    def put_embeddings(self, model_id: str, text_hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (one row per text hash); existing ones are replaced."""
        if len(text_hashes) == 0:
            return
        frame = pd.DataFrame(
            {"model_id": model_id, "text_hash": list(text_hashes), "vector": list(np.asarray(vectors, np.float32))}
        )
        with self.transaction() as con:
            con.register("new_vectors", frame)
            execute(con, "INSERT OR REPLACE INTO embeddings SELECT model_id, text_hash, vector FROM new_vectors")
            con.unregister("new_vectors")

    def embedding_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._one("SELECT count(*) FROM embeddings"))
        return int(self._one("SELECT count(*) FROM embeddings WHERE model_id = ?", [model_id]))

    # ---- projections ------------------------------------------------------------------------

    def projection(self, fingerprint: str) -> pd.DataFrame:
        return self._df("SELECT item_id, x, y FROM projections WHERE fingerprint = ? ORDER BY item_id", [fingerprint])

    def put_projection(self, fingerprint: str, frame: pd.DataFrame) -> None:
        with self.transaction() as con:
            execute(con, "DELETE FROM projections WHERE fingerprint = ?", [fingerprint])
            con.register("new_xy", frame[["item_id", "x", "y"]])
            execute(con, "INSERT INTO projections SELECT ?, item_id, x, y FROM new_xy", [fingerprint])
            con.unregister("new_xy")
