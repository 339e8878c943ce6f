"""Fusion of the signals into one score per (user, item), with modes and category-pair rules.

Each signal is min-max normalised per user over the catalog, so weights are comparable; the fused
score is Σ w_k · norm_k, times the product of the category-pair multipliers that apply. Each
signal's contribution is w_k · norm_k · multiplier, so contributions add up to the score exactly.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .config import Settings
from .data import Interactions
from .errors import CrossRecError
from .rules import CategoryMatcher, PairRule, Rules  # noqa: F401  (re-exported: older imports)
from .signals.base import Context, Signal
from .signals.registry import names as signal_names, weights_for
from .topk import top_k


def normalise(raw: np.ndarray) -> np.ndarray:
    """Per-row min-max to [0, 1]; a constant row becomes 0."""
    lo = raw.min(axis=1, keepdims=True)
    hi = raw.max(axis=1, keepdims=True)
    span = hi - lo
    out = np.subtract(raw, lo, dtype=np.float32)
    np.divide(out, span, out=out, where=span > 0)
    out[np.broadcast_to(span <= 0, out.shape)] = 0.0
    return out


class FusedScorer:
    """The `crossrec` model: fitted signals + weights + rules. `score(ctx)` is what evaluation ranks by."""

    name = "crossrec"

    def __init__(self, settings: Settings | None = None, weights: dict[str, float] | None = None,
                 rules: Rules | None = None, signals: dict[str, Signal] | None = None,
                 cross_weights: dict[str, float] | None = None):
        self.settings = settings or Settings()
        self.weights = {s: float((weights or weights_for(self.settings)).get(s, 0.0)) for s in signal_names()}
        # The cross-mode list chooses among categories new to the user: its own weights (learned).
        self.cross_weights = {s: float((cross_weights or self.weights).get(s, 0.0)) for s in signal_names()}
        self.rules = rules or Rules()
        self.signals_ = signals
        self.data_: Interactions | None = None
        self.matcher_: CategoryMatcher | None = None
        self.families_: np.ndarray | None = None  # product family of each item (variants.family_codes)
        self.ranker_ = None  # a LearnedRanker when the run serves one (crossrec_core.ranker)
        self.stats_ = None  # its ItemStats
        self.discovery_ = None  # the cross-mode ranker's exploration facts (crossrec_core.discovery), if it has one
        self.catalog_: dict[str, np.ndarray] = {}  # brand and price per item, for brand and price rules
        self._engine = None

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None, items=None, progress=None,
            fitted: dict | None = None) -> "FusedScorer":
        """Fit every signal (all of them, so weights can change later without a refit); a signal the shop
        cannot have (`Signal.available`: item embeddings, a tuned encoder) is left out. `fitted`: signals
        already fitted on this very `data` (the signal tuning's, on the same carve-out), taken as they are
        where their parameters match."""
        from .resources import step
        from .signals import make_signals

        signals = {k: v for k, v in make_signals(self.settings).items() if v.available(self.settings, embeddings)}
        for n, (name, sig) in enumerate(signals.items()):
            done = (fitted or {}).get(name)
            if done is not None and done.get_params() == sig.get_params():
                signals[name] = done
                continue
            if progress:
                progress(n / len(signals), f"fitting {name}")
            with step(f"signal: {sig.label}"):  # its time and memory in training's step table
                sig.fit(data, embeddings)
        self.signals_ = signals
        self.attach(data, items)
        return self

    def attach(self, data: Interactions, items=None) -> "FusedScorer":
        """Bind the fitted data (and the items frame for category names) without refitting."""
        self.data_ = data
        if items is not None:
            from .variants import family_codes

            items = items.sort_values("item_id")
            self.families_ = family_codes(items)
            self.set_catalog(items)
            self.matcher_ = CategoryMatcher(items["cat_top"].to_numpy(), items["cat_sub"].to_numpy(),
                                            items["category"].to_numpy())
        return self

    def set_catalog(self, items) -> "FusedScorer":
        """The item facts brand and price rules match on (items in fitted order)."""
        self.catalog_ = {c: items[c].to_numpy() for c in ("brand", "price") if c in items}
        self._engine = None
        return self

    def rule_engine(self):
        """The rules compiled against this catalog (crossrec_core.rules_apply), built once per scorer."""
        from .rules_apply import RuleEngine

        if self._engine is None:
            self._engine = RuleEngine(self.rules, self.matcher_, self.data_.item_index, self.catalog_.get("brand"),
                                      self.catalog_.get("price"), self.data_.user_ids,
                                      max_multiplier=self.settings.ranker.max_multiplier)
        return self._engine

    def to_state(self, state) -> None:
        """Weights, rules, each fitted signal and the category matcher into a modelio.State (the
        Interactions are the owner's: `from_state` is given them back)."""
        state.put("weights", self.weights)
        state.put("cross_weights", self.cross_weights)
        state.put("rules", self.rules.to_dict())
        state.put("signals", list(self.signals_ or {}))
        for name, sig in (self.signals_ or {}).items():
            sig.to_state(state.sub(f"signal.{name}"))
        if self.matcher_ is not None:
            self.matcher_.to_state(state.sub("matcher"))
        if self.families_ is not None:
            state.put("families", self.families_)
        if self.ranker_ is not None:  # the booster as LightGBM's own text model, its item facts as arrays
            state.put("ranker", self.ranker_.to_state())
            for name, arr in self.stats_.to_arrays().items():
                state.put(f"ranker_stats.{name}", arr)
            if self.discovery_ is not None:
                for name, arr in self.discovery_.to_arrays().items():
                    state.put(f"ranker_discovery.{name}", arr)

    @classmethod
    def from_state(cls, state, settings: Settings, data: Interactions) -> "FusedScorer":
        from .signals.registry import classes

        signals = {name: classes()[name].from_state(state.sub(f"signal.{name}"), settings)
                   for name in state.get("signals")}
        scorer = cls(settings, state.get("weights"), Rules.from_dict(state.get("rules")), signals,
                     state.get("cross_weights"))
        scorer.data_ = data
        if "matcher.top" in state:
            scorer.matcher_ = CategoryMatcher.from_state(state.sub("matcher"))
        if "families" in state:
            scorer.families_ = np.asarray(state.get("families"), np.int64)
        if "ranker" in state:
            from .ranker import ItemStats, LearnedRanker

            from .discovery import DiscoveryStats

            stats = ItemStats.from_arrays({k: state.get(f"ranker_stats.{k}") for k in ItemStats.ARRAYS})
            found = f"ranker_discovery.{DiscoveryStats.ARRAYS[0]}" in state
            discovery = DiscoveryStats.from_arrays({k: state.get(f"ranker_discovery.{k}")
                                                    for k in DiscoveryStats.ARRAYS}) if found else None
            scorer.attach_ranker(LearnedRanker.from_state(state.get("ranker")), stats, discovery)
        return scorer

    def with_weights(self, weights: dict[str, float], rules: Rules | None = None,
                     cross_weights: dict[str, float] | None = None) -> "FusedScorer":
        """A scorer sharing these fitted signals with other weights/rules (what-if, weight search).

        Cross-mode weights follow `weights` unless given, so a what-if on weights applies to both."""
        other = FusedScorer(self.settings, weights, rules if rules is not None else self.rules, self.signals_,
                            cross_weights)
        other.data_, other.matcher_, other.families_ = self.data_, self.matcher_, self.families_
        other.catalog_ = self.catalog_
        if other.weights == self.weights and other.cross_weights == self.cross_weights:
            # rules only: the rankers keep serving
            other.ranker_, other.stats_, other.discovery_ = self.ranker_, self.stats_, self.discovery_
        return other

    def attach_ranker(self, ranker, stats, discovery=None) -> "FusedScorer":
        """Serve the learned ranker (fitted on features of these signals) instead of the linear fusion; its
        cross-mode ranker (`ranker.cross_`) reads `discovery` (DiscoveryStats), computed from this fit's data
        when not given."""
        missing = [s for s in ranker.signals_ if s not in (self.signals_ or {})]
        if missing:
            raise CrossRecError(f"the ranker needs the signal(s) {', '.join(missing)}, which this fit lacks")
        self.ranker_, self.stats_ = ranker, stats
        self.discovery_ = None
        if ranker.cross_ is not None:
            from .discovery import DiscoveryStats

            positive_types = tuple(self.settings.evaluation.positive_types)
            self.discovery_ = discovery or DiscoveryStats.from_data(self.data_, positive_types)
        return self

    def ranker_for(self, mode: str = "all"):
        """The learned ranker that orders `mode`'s lists: the cross-mode one in "cross" (when the run has one;
        with two-stage serving), else the general one (None: the linear fusion)."""
        if mode == "cross" and self.ranker_ is not None and self.ranker_.cross_ is not None \
                and self.settings.retrieval.serving == "retrieve":
            return self.ranker_.cross_
        return self.ranker_

    @property
    def model_kind(self) -> str:
        """'ranker' or 'fusion': what orders the lists."""
        return "ranker" if self.ranker_ is not None else "fusion"

    # ---- scoring ----------------------------------------------------------------------------

    def weights_for(self, mode: str = "all") -> dict[str, float]:
        return self.cross_weights if mode == "cross" else self.weights

    def active(self, mode: str = "all") -> list[str]:
        w = self.weights_for(mode)
        return [s for s in signal_names() if w.get(s, 0) > 0 and self.signals_ and s in self.signals_]

    def normalised(self, ctx: Context, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Per-user normalised score of each active signal (B × n_items)."""
        return {name: normalise(self.signals_[name].score(ctx)) for name in (names or self.active())}

    def multipliers(self, ctx: Context) -> np.ndarray | None:
        """B × n_items product of the boosts and damps (pair rules included) that apply to each user
        (None if there are none)."""
        if not self.rules:
            return None
        return self.rule_engine().multipliers(ctx)

    def row_weights(self, ctx: Context, mode: str = "all") -> dict[str, np.ndarray]:
        """Each fused signal's weight per user (B × 1 float32): the mode's weights, `cold_weights` for users
        with no history in the context."""
        w = self.weights_for(mode)
        cold = np.diff(ctx.X.indptr) == 0
        cold_w = {s: float(self.settings.ranker.cold_weights.get(s, 0.0)) for s in signal_names()}
        names = self.active(mode)
        if cold.any():
            names = [s for s in signal_names() if s in self.signals_ and (s in names or cold_w[s] > 0)]
        return {s: np.where(cold, cold_w[s], w[s]).astype(np.float32)[:, None] for s in names}

    def contributions(self, ctx: Context, mode: str = "all") -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Fused scores (B × n) and each signal's contribution (they sum to the score).

        Users with no history in the context are weighted by `settings.ranker.cold_weights`."""
        row_w = self.row_weights(ctx, mode)
        parts = {}
        for name, s in self.normalised(ctx, list(row_w)).items():
            parts[name] = row_w[name] * s
        total = np.zeros((ctx.n, self.data_.n_items), dtype=np.float32)
        for p in parts.values():
            total += p
        mult = self.multipliers(ctx)
        if mult is not None:
            total *= mult
            parts = {k: v * mult for k, v in parts.items()}
        return total, parts

    def score(self, ctx: Context) -> np.ndarray:
        """B × n scores of every item (evaluation ranks by these; history items are not candidates).

        With exclusions, buries or pins, the scores order items as the served list does (rules applied),
        so that held-out metrics measure the lists shoppers would see."""
        allowed = ~(ctx.X > 0).toarray()
        if self.ranker_ is None:
            scores = self.contributions(ctx)[0]
        else:
            from .ranked import ranked_scores

            scores = ranked_scores(self, ctx, allowed)[0]
        if self.rules and self.rule_engine().has_list_rules:
            scores = self._as_served(ctx, scores, allowed)
        return scores

    def _as_served(self, ctx: Context, scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Scores whose top is the served list (rules applied) and whose excluded items are NaN."""
        excluded = self.rule_engine().excluded(ctx)
        if excluded is not None:
            allowed = allowed & ~excluded
        k = int(self.settings.evaluation.k)
        idx = self.top_items(scores, allowed, k, ctx)
        out = np.where(allowed, scores, np.nan).astype(np.float32)
        finite = np.where(np.isfinite(out), out, 0.0)
        top = float(finite.max()) + 1.0 if finite.size else 1.0
        rows, cols = np.nonzero(idx >= 0)
        out[rows, idx[rows, cols]] = top + (k - cols)
        return out

    def score_cross(self, ctx: Context) -> np.ndarray:
        """Scores of the cross-mode list: cross-mode weights, or the ranker over new-category items."""
        if self.ranker_ is None:
            scores = self.contributions(ctx, "cross")[0]
            if self.rules and self.rule_engine().has_list_rules:  # the served cross lists on top, as `score`
                scores = self._as_served(ctx, scores, self.candidate_mask(ctx, "cross", exclude=(ctx.X > 0).toarray()))
            return scores
        from .ranked import ranked_scores

        allowed = self.candidate_mask(ctx, "cross", exclude=(ctx.X > 0).toarray())
        return ranked_scores(self, ctx, allowed, "cross")[0]

    def top_items(self, scores: np.ndarray, allowed: np.ndarray, k: int, ctx: Context | None = None) -> np.ndarray:
        """B × k best allowed items (-1 pads), at most `variant_cap` of one product family: the one list
        selection of serving, export and evaluation. Given the batch's `ctx`, bury and pin rules apply:
        buried items come after every other allowed item (in score order), pins go to their positions."""
        engine = self.rule_engine() if ctx is not None and self.rules else None
        buried = engine.buried(ctx) if engine is not None else None
        idx = self._top_items(scores, allowed, k, buried)
        return idx if engine is None else engine.place_pins(idx, allowed, ctx)

    def _top_items(self, scores: np.ndarray, allowed: np.ndarray, k: int, buried: np.ndarray | None = None
                   ) -> np.ndarray:
        pool = min(scores.shape[1], self._pool(k))
        idx, _ = top_k(scores, allowed if buried is None else allowed & ~buried, pool)
        if buried is not None:  # the buried items fill what the others leave
            low, _ = top_k(scores, allowed & buried, pool)
            both = np.concatenate([idx, low], axis=1)
            idx = np.take_along_axis(both, np.argsort(both < 0, axis=1, kind="stable")[:, :pool], axis=1)
        return self._pick(idx, k)

    def _pool(self, k: int) -> int:
        """How many best items a list of k is picked from: k, or 3k + 10 when families are capped or
        lists diversified."""
        ranker = self.settings.ranker
        return k if int(ranker.variant_cap) <= 0 and float(ranker.diversity) <= 0 else 3 * k + 10

    def _pick(self, idx: np.ndarray, k: int) -> np.ndarray:
        """The k listed of each row's best items `idx` (best first): diversified, at most `variant_cap` of
        one product family."""
        from .variants import diversify, select

        cap = int(self.settings.ranker.variant_cap)
        diverse = float(self.settings.ranker.diversity)
        content = (self.signals_ or {}).get("content")
        unit = getattr(content, "embeddings_", None)
        idx = diversify(idx, unit, diverse)
        pos = select(idx, self.families_, unit, cap, float(self.settings.ranker.variant_similarity), k)
        return np.where(pos >= 0, np.take_along_axis(idx, np.maximum(pos, 0), axis=1), -1)

    def rank(self, ctx: Context, mode: str, mask: np.ndarray, k: int
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The top-k allowed items of each row and their explanation: (idx B × k with -1 padding,
        scores B × k, contributions signal -> B × k, base B × k); Σ contributions + base == score."""
        if self.settings.retrieval.serving == "retrieve":
            from . import served

            return served.rank(self, ctx, mode, mask, k)
        if self.ranker_ is None:
            return self._rank_blocked(ctx, mode, mask, k)
        from .ranked import explain_at, ranked_lists

        engine = self.rule_engine() if self.rules else None
        pins = engine.pinned_items() if engine is not None else np.zeros(0, np.int64)
        found, cands = ranked_lists(self, ctx, mask, mode, min(self.data_.n_items, self._pool(k)), pins)
        idx, score, lin = self._listed(ctx, found, pins, mask, k)
        parts, base = explain_at(self, idx, score, cands, lin)
        return idx, score, parts, base

    def block_size(self, rows: int) -> int:
        """Items scored at a time for a batch of `rows`: `score_block`, or more while rows × block stays
        under `score_cells` (one block for a single shopper)."""
        r = self.settings.retrieval
        return max(int(r.score_block), int(r.score_cells) // max(int(rows), 1), 1)

    def scan(self, ctx: Context, mode: str, allowed: np.ndarray, keep: int, at=None, extra=None, bury: bool = True,
             ranges: bool = False):
        """The batch's `keep` best allowed items by the fused score with the rules' multipliers (and buries,
        unless `bury` is False), a block of the catalogue at a time (crossrec_core.blocked.scan)."""
        from .blocked import block_fns, scan

        engine = self.rule_engine() if self.rules else None
        row_w = self.row_weights(ctx, mode)
        return scan(block_fns(self, ctx, list(row_w)), row_w, allowed, self.data_.n_items, keep,
                    self.block_size(ctx.n), int(self.settings.retrieval.score_cache_mb) << 20,
                    mult=None if engine is None else engine.multiplier_blocks(ctx),
                    buried=None if engine is None or not bury else engine.item_blocks("bury", ctx), at=at,
                    extra=extra, ranges=ranges)

    def held_out(self, ctx: Context, exclude: np.ndarray, k: int, at: tuple[np.ndarray, np.ndarray],
                 mode: str = "all") -> tuple[np.ndarray, np.ndarray] | None:
        """What evaluation reads, without a B × catalogue array: the served top-k lists with `exclude` (B × n
        bool) not allowed, and the scores at the (rows, items) pairs `at` (NaN where the rules exclude). With
        two-stage serving these are the served pipeline's (crossrec_core.served); serving exhaustively, the
        fusion's block scan, or None for the learned ranker (evaluation then ranks its dense scores)."""
        if self.settings.retrieval.serving == "retrieve":
            from . import served

            return served.held_out(self, ctx, exclude, k, at, mode)
        if self.ranker_ is None:
            return self.fusion_held_out(ctx, exclude, k, at, mode)
        return None

    def fusion_held_out(self, ctx: Context, exclude: np.ndarray, k: int, at: tuple[np.ndarray, np.ndarray],
                        mode: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """`held_out` of the linear fusion: the top-k list `model_top_k` picks from `score(ctx)` (mode "all")
        or `score_cross(ctx)` ("cross"), a block of the catalogue at a time, and the scores at `at`."""
        pool = min(self.data_.n_items, self._pool(k))
        listed = bool(self.rules) and self.rule_engine().has_list_rules
        if not listed:  # the scores are the fused scores: their top-k is the list
            found = self.scan(ctx, mode, ~exclude, pool, at=at, bury=False)
            return self._pick(found.idx, k), found.at
        # `_as_served`: the served lists (rules applied) on top, in their order, then the fused order; a
        # cross-mode list is served from the new categories (`exclude` says which are not)
        allowed = ~(ctx.X > 0).toarray() if mode == "all" else ~np.asarray(exclude, bool)
        excluded = self.rule_engine().excluded(ctx)
        if excluded is not None:
            allowed &= ~excluded
        served = self.scan(ctx, mode, allowed, pool, at=(np.zeros(0, np.int64), np.zeros(0, np.int64)))
        idx = self.rule_engine().place_pins(self._pick(served.idx, k), allowed, ctx)
        rest = self.scan(ctx, mode, allowed & ~exclude, pool + k, at=at, bury=False)
        first = np.where((idx >= 0) & ~np.take_along_axis(exclude, np.maximum(idx, 0), axis=1), idx, -1)
        taken = (rest.idx[:, :, None] == first[:, None, :]).any(axis=2)
        both = np.concatenate([first, np.where(taken, -1, rest.idx)], axis=1)
        both = np.take_along_axis(both, np.argsort(both < 0, axis=1, kind="stable")[:, :pool], axis=1)
        vals = rest.at.copy()
        rows, items = at
        vals[~allowed[rows, items]] = np.nan
        # the listed items' scores, as `_as_served` sets them (the largest finite score, 0 for a NaN, + 1 + k - col)
        top = served.allowed_max if np.isfinite(served.allowed_max) else -np.inf
        top = (max(top, 0.0) if not allowed.all() else top) + 1.0
        n = self.data_.n_items
        r, c = np.nonzero(idx >= 0)
        keys = r * n + idx[r, c]
        order = np.argsort(keys)
        want = np.asarray(rows, np.int64) * n + np.asarray(items, np.int64)
        pos = np.minimum(np.searchsorted(keys[order], want), max(len(keys) - 1, 0))
        hit = keys[order][pos] == want if len(keys) else np.zeros(len(want), bool)
        vals[hit] = (top + (k - c[order][pos][hit])).astype(np.float32)
        return self._pick(both, k), vals

    def _rank_blocked(self, ctx: Context, mode: str, mask: np.ndarray, k: int):
        """`rank` of the linear fusion, a block of the catalogue at a time (crossrec_core.blocked): the same
        lists as the dense path, rules included, in O(batch × (block + candidates)) memory."""
        engine = self.rule_engine() if self.rules else None
        pins = engine.pinned_items() if engine is not None else np.zeros(0, np.int64)
        found = self.scan(ctx, mode, mask, min(self.data_.n_items, self._pool(k)), extra=pins)
        idx, score, at = self._listed(ctx, found, pins, mask, k)
        return idx, score, at, np.zeros(idx.shape)

    def _listed(self, ctx: Context, found, pins: np.ndarray, mask: np.ndarray, k: int):
        """The k listed of a scan's best items (picked, pins placed) with their scores and parts (B × k each)."""
        idx = self._pick(found.idx, k)
        if self.rules:
            idx = self.rule_engine().place_pins(idx, mask, ctx)
        # where each listed item sits among the candidates (and the pinned items, scored wherever they rank)
        cand = np.concatenate([found.idx, np.broadcast_to(pins, (ctx.n, len(pins)))], axis=1)
        val = np.concatenate([found.val, found.extra_val], axis=1)
        parts = {s: np.concatenate([v, found.extra_parts[s]], axis=1) for s, v in found.parts.items()}
        pos = np.full(idx.shape, -1, np.int64)
        for j in range(idx.shape[1]):  # k columns (not items): a few vector operations each
            hit = (cand == idx[:, j:j + 1]) & (idx[:, j:j + 1] >= 0)
            pos[:, j] = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        safe = np.maximum(pos, 0)
        at = {s: np.where(pos >= 0, np.take_along_axis(p, safe, axis=1), 0.0) for s, p in parts.items()}
        score = np.where(pos >= 0, np.take_along_axis(val, safe, axis=1), 0.0)
        return idx, score, at

    # ---- candidates -------------------------------------------------------------------------

    def candidate_mask(self, ctx: Context, mode: str = "all", category: str | None = None,
                       exclude: np.ndarray | sp.spmatrix | None = None) -> np.ndarray:
        """B × n_items boolean: which items may be recommended to each user in `mode`. `exclude` (B × n, bool
        or a sparse matrix whose positive entries count) takes items out."""
        data = self.data_
        mask = np.ones((ctx.n, data.n_items), dtype=bool)
        if sp.issparse(exclude):  # from its non-zeros: no B × n float copy of a sparse history
            ex = exclude.tocoo()
            pos = ex.data > 0
            mask[ex.row[pos], ex.col[pos]] = False
        elif exclude is not None:
            mask &= ~np.asarray(exclude, dtype=bool)
        if mode == "cross":
            owned = ctx.owned_items().tocsr()
            has_top = np.zeros((ctx.n, len(data.cat_top_names)), dtype=bool)  # B × n_tops carted or bought in
            nz = owned.data != 0
            has_top[np.repeat(np.arange(ctx.n), np.diff(owned.indptr))[nz], data.cat_top[owned.indices[nz]]] = True
            mask &= ~has_top[:, data.cat_top]
        elif mode == "target":
            if not category:
                raise CrossRecError("mode 'target' needs --category")
            mask &= self.matcher_.mask(category)[None, :]
        elif mode != "all":
            raise CrossRecError(f"unknown mode '{mode}' (modes: all, cross, target)")
        excluded = self.rule_engine().excluded(ctx) if self.rules else None
        if excluded is not None:
            mask &= ~excluded
        return mask

