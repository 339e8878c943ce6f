"""The serving API: fit on a store, then recommend for a user, seed items, a query or typed profile text.

Histories and profile text are read from the store at request time, so an event ingested after the
fit changes the next list; item-side models (co-occurrence, ALS, graph, flows) refresh on the next fit.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import Settings
from .data import Interactions, build_interactions, code_events, owned_matrix
from .bounds import check_k
from .errors import CrossRecError
from . import explain
from .explain import explain_items
from .profiles import make_context
from .scorer import FusedScorer, Rules
from .signals.base import Context, Words
from .signals.registry import contributions, weights_for
from .progress import Progress

_INTEREST_SPLIT = re.compile(r"[.;,\n]|\band\b|\bwho\b|\bbut\b|\balso\b|&|\bplus\b", re.IGNORECASE)
# Bump when the saved state changes shape: older folders then ask for a retrain instead of failing later.
# Format 1 was a Python object dump (model.pkl): never read, loading it could run code. Format 3 added
# the EASE signal, the learned ranker and product families.
MODEL_FORMAT = 3
MODEL_KIND = "crossrec.Recommender"
CATALOG_COLUMNS = ("item_id", "title", "category", "cat_top", "brand", "price")  # what a list shows of an item


def split_interests(text: str, limit: int = 5) -> list[str]:
    """A typed profile split into its interests ("keen road cyclist who drinks a lot of coffee" ->
    ["keen road cyclist", "drinks a lot of coffee"]); the whole text when it has one."""
    parts = [p.strip(" -") for p in _INTEREST_SPLIT.split(text.strip())]
    parts = [p for p in parts if sum(ch.isalpha() for ch in p) >= 3]
    return parts[:limit] if len(parts) > 1 else [text.strip()]


def interleave(lists: list[pd.DataFrame], k: int) -> pd.DataFrame:
    """Round-robin over ranked lists: each list's next item not already taken, re-ranked 1..k."""
    taken: list[dict] = []
    seen: set[str] = set()
    rows = [df.to_dict("records") for df in lists]
    depth = 0
    while len(taken) < k and any(depth < len(r) for r in rows):
        for r in rows:
            if depth < len(r) and r[depth]["item_id"] not in seen and len(taken) < k:
                seen.add(r[depth]["item_id"])
                taken.append(r[depth])
        depth += 1
    out = pd.DataFrame(taken, columns=lists[0].columns)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


class Recommender:
    """Fusion recommender over a CrossRec store (settings in the constructor, `fit` returns self)."""

    def __init__(self, settings: Settings | None = None, weights: dict[str, float] | None = None,
                 rules: Rules | None = None, cross_weights: dict[str, float] | None = None):
        self.settings = settings or Settings()
        self.weights = dict(weights or weights_for(self.settings))
        self.cross_weights = dict(cross_weights or self.weights)
        self.rules = rules or Rules()
        self.store = None
        self._encoder = None

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, store, progress: Progress | None = None, *, events: pd.DataFrame | None = None,
            now: pd.Timestamp | None = None) -> "Recommender":
        """Fit every signal on the store's events (or the given `events`, e.g. a training period)."""
        t0 = time.perf_counter()
        self.store = store
        if progress:
            progress(0.02, "reading the store")
        items = store.items().sort_values("item_id").reset_index(drop=True)
        if items.empty:
            raise CrossRecError("the catalog is empty: ingest items first (crossrec ingest --items F)")
        if events is None:
            events = store.events()
        users = store.user_ids()
        data = build_interactions(items, events, self.settings, users=users, now=now)
        self.items_ = items
        self.data_ = data
        self.embeddings_, self.model_id_ = self._load_embeddings(store, items)
        if progress:
            progress(0.1, "fitting signals")
        sub = (lambda f, m: progress(0.1 + 0.8 * f, m)) if progress else None
        self.scorer_ = FusedScorer(self.settings, self.weights, self.rules,
                                   cross_weights=self.cross_weights).fit(data, self.embeddings_, items, sub)
        self.profile_vecs_ = self._encode_profiles(store)
        self.fingerprint_ = store.fingerprint()
        self.fit_seconds_ = time.perf_counter() - t0
        if progress:
            progress(1.0, "fitted")
        return self

    def attach_ranker(self, ranker) -> "Recommender":
        """Serve a learned ranker over this fit's signals (its item facts from this fit's events)."""
        from .ranker import ItemStats, sub_codes

        self.scorer_.attach_ranker(ranker, ItemStats.from_data(self.data_, sub_codes(self.items_)))
        return self

    def _load_embeddings(self, store, items: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
        from .encoder import item_embeddings

        from .encoder import Encoder
        model_id = Encoder.from_settings(self.settings).model_id
        if store.embedding_count(model_id) == 0:
            return None, None
        emb = item_embeddings(store, model_id, items, self.settings.encoder.max_text_chars)
        return emb, model_id

    def _encode_profiles(self, store) -> dict[str, np.ndarray]:
        texts = store.profile_texts()
        if texts.empty or self.embeddings_ is None:
            return {}
        from .fitting import text_embedder

        vecs = text_embedder(self.settings, True)(texts["profile_text"].tolist())  # as the training's fits did
        return dict(zip(texts["user_id"], vecs))

    @property
    def encoder(self):
        """The sentence encoder, loaded on first use (queries and typed profiles need it)."""
        if self._encoder is None:
            from .fitting import shared_encoder

            self._encoder = shared_encoder(self.settings)  # the model the fits loaded, not a second copy
        return self._encoder

    # ---- persistence ------------------------------------------------------------------------

    def save(self, folder: str | Path, fingerprint: dict | None = None) -> Path:
        """Write the fitted state to `folder`: model.npz (arrays), model.json (settings, weights, format,
        `fingerprint`), items.parquet. Arrays and JSON only: loading it can never run code."""
        from .modelio import State

        state = State()
        self.to_state(state)
        return state.save(folder, {"format": MODEL_FORMAT, "kind": MODEL_KIND, "fingerprint": fingerprint})

    def to_state(self, state) -> None:
        state.put("settings", {k: v for k, v in self.settings.to_dict().items() if k != "db_path"})
        state.put("weights", self.weights)
        state.put("cross_weights", self.cross_weights)
        state.put("rules", self.rules.to_dict())
        state.put("items", self.items_)
        self.data_.to_state(state.sub("data"))
        if self.embeddings_ is not None:
            state.put("embeddings", self.embeddings_)
        state.put("model_id", self.model_id_)
        self.scorer_.to_state(state.sub("scorer"))
        users = list(self.profile_vecs_)
        state.put("profile_users", np.asarray(users, dtype=object))
        dim = self.embeddings_.shape[1] if self.embeddings_ is not None else 0
        state.put("profile_vectors", np.stack([self.profile_vecs_[u] for u in users]).astype(np.float32)
                  if users else np.zeros((0, dim), np.float32))
        state.put("fingerprint", self.fingerprint_)
        state.put("fit_seconds", float(self.fit_seconds_))

    @classmethod
    def from_state(cls, state, store=None) -> "Recommender":
        settings = Settings.from_dict(state.get("settings"))
        if store is not None:
            settings = settings.replace(db_path=Path(store.path)).resolve_model()
        rec = cls(settings, state.get("weights"), Rules.from_dict(state.get("rules")), state.get("cross_weights"))
        rec.items_ = state.get("items")
        rec.data_ = Interactions.from_state(state.sub("data"), settings)
        rec.embeddings_ = state.get("embeddings", None)
        rec.model_id_ = state.get("model_id")
        rec.scorer_ = FusedScorer.from_state(state.sub("scorer"), settings, rec.data_).set_catalog(rec.items_)
        rec.profile_vecs_ = dict(zip(state.get("profile_users"), state.get("profile_vectors")))
        rec.fingerprint_ = state.get("fingerprint")
        rec.fit_seconds_ = state.get("fit_seconds")
        rec.store = store
        return rec

    @classmethod
    def load(cls, folder: str | Path, store=None, fingerprint: dict | None = None) -> "Recommender":
        """Read a folder written by `save`. An older version's model.pkl is refused unread; with
        `fingerprint`, a folder written for another database or run is refused."""
        from .modelio import MODEL_JSON, State

        folder = Path(folder)
        try:
            names = set(os.listdir(folder)) if folder.name != "model.pkl" else set()
        except OSError as exc:  # said of the folder itself, not of a file inside it that may not exist
            raise CrossRecError(f"the run folder {folder} cannot be read ({exc.strerror or type(exc).__name__}); "
                                "let this user read it, or retrain with `crossrec train`") from None
        if folder.name == "model.pkl" or "model.pkl" in names and MODEL_JSON not in names:
            raise CrossRecError(f"the fitted model in {folder} is an old model.pkl, which CrossRec no longer "
                                "reads (it could run code); retrain with `crossrec train`")
        header, state = State.load(folder)
        if header.get("kind") != MODEL_KIND or header.get("format") != MODEL_FORMAT:
            raise CrossRecError(f"the fitted model in {folder} was saved by another version of CrossRec; "
                                "retrain with `crossrec train`")
        if fingerprint is not None and header.get("fingerprint") != fingerprint:
            raise CrossRecError(f"the fitted model in {folder} belongs to another database or run, not "
                                f"{'this one' if store is None else store.path}; refusing to serve it "
                                "(retrain with `crossrec train`)")
        try:
            rec = cls.from_state(state, store)
        except (KeyError, TypeError, ValueError) as exc:
            raise CrossRecError(f"the fitted model in {folder} is incomplete ({type(exc).__name__}: {exc}); "
                                "retrain with `crossrec train`") from None
        problem = rec._catalog_problem()
        if problem:
            raise CrossRecError(f"{folder / 'items.parquet'} {problem}: it is not the catalog this model was "
                                "fitted on; retrain with `crossrec train`")
        return rec

    def _catalog_problem(self) -> str | None:
        """What is wrong with the loaded catalog frame (another file copied over items.parquet), or None."""
        missing = [c for c in CATALOG_COLUMNS if c not in self.items_.columns]
        if missing:
            return f"has no column {', '.join(repr(c) for c in missing)}"
        ids = self.items_["item_id"].astype(str).to_numpy()
        index = np.asarray(self.data_.item_index, dtype=object).astype(str)
        if len(ids) != len(index) or (ids != index).any():
            return f"lists {len(ids):,} items, not the model's {len(index):,} in its order"
        return None

    def with_weights(self, weights: dict[str, float] | None = None, rules: Rules | None = None) -> "Recommender":
        """The same fitted signals with other weights and/or rules (no refit): what-if and tuning."""
        other = Recommender.__new__(Recommender)
        other.__dict__.update(self.__dict__)
        other.weights = dict(weights if weights is not None else self.weights)
        other.cross_weights = dict(other.weights if weights is not None else self.cross_weights)
        other.rules = rules if rules is not None else self.rules
        other.scorer_ = self.scorer_.with_weights(other.weights, other.rules, other.cross_weights)
        return other

    # ---- contexts ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "scorer_"):
            raise CrossRecError("the recommender is not fitted: run `crossrec train` first")
        if self.store is None:
            raise CrossRecError("no store attached: Recommender.load(path, store)")

    def histories(self, user_ids: Sequence[str]) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        """Current confidence histories, never-again masks (`exclude_seen`) and carted-or-bought masks
        of users, read from the store now."""
        data: Interactions = self.data_
        uniq, inverse = np.unique(np.asarray(list(user_ids), dtype=object), return_inverse=True)
        if len(uniq) < len(inverse):  # repeated ids (e.g. an uploaded segment): score each once
            X, seen, owned = self.histories(list(uniq))
            return X[inverse], seen[inverse], owned[inverse]
        ev = self.store.events(user_ids=list(user_ids))
        index = pd.Index(list(user_ids))
        coded = code_events(ev, data.item_index, index)
        X = data.history_matrix(coded, n_rows=len(index))
        kind = self.settings.ranker.exclude_seen
        if kind == "none":
            seen = sp.csr_matrix(X.shape, dtype=np.float32)
        else:
            sel = coded if kind == "interacted" else coded[coded["event_type"] == "purchase"]
            seen = sp.csr_matrix((np.ones(len(sel), np.float32), (sel["u"], sel["i"])), shape=X.shape)
        return X, seen, owned_matrix(coded, X.shape[0], X.shape[1])

    def _context(self, X: sp.csr_matrix, text_vecs: np.ndarray | None = None,
                 seeds: list[np.ndarray] | None = None, owned: sp.csr_matrix | None = None) -> Context:
        return make_context(self.data_, X, self.embeddings_, text_vecs=text_vecs, seeds=seeds, owned=owned)

    def user_context(self, user_ids: Sequence[str]) -> tuple[Context, sp.csr_matrix]:
        X, seen, owned = self.histories(user_ids)
        text = None
        if self.profile_vecs_ and self.embeddings_ is not None:
            dim = self.embeddings_.shape[1]
            text = np.stack([self.profile_vecs_.get(u, np.zeros(dim, np.float32)) for u in user_ids])
        ctx = self._context(X, text, owned=owned)
        ctx.user_ids = np.asarray(list(user_ids), dtype=object)  # segment rules apply by shopper id
        ctx.user_rows = self.data_.user_rows(list(user_ids))  # shopper signals read the fitted shoppers
        return ctx, seen

    # ---- recommending -----------------------------------------------------------------------

    def recommend(self, user_id: str, k: int = 20, mode: str = "all", category: str | None = None,
                  explain: bool = False) -> pd.DataFrame:
        """Top-k for a known user; one row per rank with per-signal contributions and a reason."""
        self._check_fitted()
        user = self.store.user(user_id)
        if user is None:
            raise CrossRecError(f"unknown user '{user_id}'")
        ctx, seen = self.user_context([user_id])
        return self._rank(ctx, seen, k, mode, category, explain,
                          profile_text=user.get("profile_text") or None)

    def recommend_for_items(self, item_ids: Sequence[str], k: int = 20, mode: str = "all",
                            category: str | None = None, explain: bool = False) -> pd.DataFrame:
        """"What goes with these": a cart or an item page as the context."""
        self._check_fitted()
        item_ids = [i.strip() for i in item_ids if i and i.strip()]
        if not item_ids:
            raise CrossRecError("no seed items given")
        pos = self.data_.item_index.get_indexer(item_ids)
        missing = [i for i, p in zip(item_ids, pos) if p < 0]
        if missing:
            raise CrossRecError(f"unknown item '{missing[0]}'")
        w = self.settings.behaviour.event_weights.get("purchase", 1.0)
        X = sp.csr_matrix((np.full(len(pos), w, np.float32), (np.zeros(len(pos), int), pos)),
                          shape=(1, self.data_.n_items))
        ctx = self._context(X, seeds=[pos])
        seen = np.zeros((1, self.data_.n_items), bool)
        seen[0, pos] = True
        return self._rank(ctx, seen, k, mode, category, explain)

    def recommend_for_query(self, text: str, k: int = 20, mode: str = "all", category: str | None = None,
                            explain: bool = False) -> pd.DataFrame:
        """A free-text search query, embedded by the same encoder."""
        return self._for_text(text, k, mode, category, explain, query=True)

    def recommend_for_profile(self, text: str, k: int = 20, mode: str = "all", category: str | None = None,
                              explain: bool = False) -> pd.DataFrame:
        """Cold start: a new shopper described only by typed profile text."""
        return self._for_text(text, k, mode, category, explain, query=False)

    def _for_text(self, text: str, k: int, mode: str, category: str | None, explain: bool, query: bool):
        self._check_fitted()
        if not text or not text.strip():
            raise CrossRecError("empty query" if query else "empty profile text")
        if self.embeddings_ is None:
            raise CrossRecError("item texts are not encoded yet: run `crossrec encode`")
        parts = [text.strip()] if query else split_interests(text)
        vecs = self.encoder.encode(parts)
        X = sp.csr_matrix((len(parts), self.data_.n_items), dtype=np.float32)
        ctx = self._context(X, text_vecs=vecs)
        none = np.zeros((len(parts), self.data_.n_items), bool)
        if len(parts) == 1:
            return self._rank(ctx, none, k, mode, category, explain,
                              profile_text=None if query else parts[0], query=parts[0] if query else None)
        # Several interests: one list per interest, interleaved, so each interest is covered.
        scorer = self.scorer_
        if mode == "target" and category:
            scorer.matcher_.resolve(category)
        ranked = scorer.rank(ctx, mode, scorer.candidate_mask(ctx, mode, category, exclude=none), k)
        lists = [self._frame(ctx, r, ranked, explain, profile_text=parts[r]) for r in range(len(parts))]
        return interleave(lists, k)

    def _rank(self, ctx: Context, seen: np.ndarray | sp.spmatrix, k: int, mode: str, category: str | None, explain: bool,
              profile_text: str | None = None, query: str | None = None) -> pd.DataFrame:
        k = check_k(k, self.settings)
        scorer = self.scorer_
        if mode == "target" and category:
            scorer.matcher_.resolve(category)
        mask = scorer.candidate_mask(ctx, mode, category, exclude=seen)
        ranked = scorer.rank(ctx, mode, mask, k)
        return self._frame(ctx, 0, ranked, explain, profile_text, query)

    @property
    def item_columns(self) -> dict[str, np.ndarray]:
        """Catalog columns as NumPy arrays in item order (pandas cell access is slow on a hot path)."""
        cols = self.__dict__.get("_item_columns")
        if cols is None:
            cols = {c: self.items_[c].to_numpy(dtype=object if c != "price" else np.float64)
                    for c in CATALOG_COLUMNS}
            self.__dict__["_item_columns"] = cols
        return cols

    def _frame(self, ctx: Context, row: int, ranked: tuple, explain: bool, profile_text: str | None = None,
               query: str | None = None) -> pd.DataFrame:
        """One user's list: `ranked` is scorer.rank's (idx, score, contributions, base) for the batch."""
        idx_all, score, parts, base = ranked
        keep = idx_all[row] >= 0
        idx = idx_all[row][keep]
        cols = self.item_columns
        zero = np.zeros(len(idx))
        contrib = {s: parts[s][row][keep].astype(np.float64) if s in parts else zero for s in contributions()}
        frame = {  # built in one go: adding columns one at a time costs more than the scoring
            "rank": np.arange(1, len(idx) + 1),
            **{c: cols[c][idx] for c in ("item_id", "title", "category", "cat_top", "brand", "price")},
            "score": score[row][keep].astype(np.float64),
            "base": base[row][keep].astype(np.float64),
            **contrib,
        }
        if explain and len(idx):
            exps = explain_items(self.scorer_, ctx, row, idx, contrib, cols, profile_text, query)
            frame["reason"] = [e.reason for e in exps]
            frame["evidence"] = [e.evidence for e in exps]
        else:
            frame["reason"] = [""] * len(idx)
        frame["applied_rules"] = (self.scorer_.rule_engine().notes(ctx, row, idx) if self.scorer_.rules
                                  else [""] * len(idx))  # "pinned at 3 by rule 'Summer tripods'"
        return pd.DataFrame(frame)

    def recommend_batch(self, user_ids: Sequence[str], k: int = 20, mode: str = "all",
                        category: str | None = None, explain: bool = True, batch_size: int = 256,
                        progress: Progress | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
        """(user_id, list) for many users, scored a batch at a time (export, what-if)."""
        for batch, ctx, ranked in self.ranked_batches(user_ids, k, mode, category, batch_size, progress):
            for row, uid in enumerate(batch):
                yield uid, self._frame(ctx, row, ranked, explain)

    def ranked_batches(self, user_ids: Sequence[str], k: int = 20, mode: str = "all", category: str | None = None,
                       batch_size: int = 256, progress: Progress | None = None
                       ) -> Iterator[tuple[list[str], Context, tuple]]:
        """(user ids, context, scorer.rank's arrays) a batch at a time: the lists without a frame per user
        (what the CSV export streams from)."""
        self._check_fitted()
        k = check_k(k, self.settings)
        user_ids = list(user_ids)
        if mode == "target" and category:
            self.scorer_.matcher_.resolve(category)
        for start in range(0, len(user_ids), batch_size):
            batch = user_ids[start:start + batch_size]
            ctx, seen = self.user_context(batch)
            mask = self.scorer_.candidate_mask(ctx, mode, category, exclude=seen)
            yield batch, ctx, self.scorer_.rank(ctx, mode, mask, k)
            if progress:
                progress(min(1.0, (start + len(batch)) / max(len(user_ids), 1)), f"{start + len(batch):,} users")

    def reasons(self, ctx: Context, row: int | np.ndarray, idx: np.ndarray, parts: dict[str, np.ndarray]) -> list[str]:
        """The one-sentence reason of each listed item `idx` of user `row` of ctx (`parts`: signal -> its
        contribution to each listed item). `row` may be an array, one row per item: a batch's lists at once."""
        rows = np.broadcast_to(np.asarray(row), (len(idx),))
        return explain.reasons(self.scorer_, ctx, rows, idx, parts, self.words)

    @property
    def words(self) -> Words:
        """What reasons may mention (catalog columns), kept so each title is shortened once per fit."""
        words = self.__dict__.get("_words")
        if words is None or words.items is not self.item_columns:
            words = self.__dict__["_words"] = Words(self.item_columns)
        return words
