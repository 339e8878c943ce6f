"""What every signal (and every baseline) looks like, implicit-style: its hyper-parameters are its
constructor's keyword arguments (with their defaults: the one place they are declared), built from the
settings by `Signal.build`, `fit(data, embeddings)` returns self, fitted attributes end in `_`,
`score(ctx)` returns a dense (users × items) array of raw scores for a batch of users described by a
`Context`."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from ..errors import CrossRecError
from ..profiles import Context  # noqa: F401  (a signal's `score(ctx)` takes one; defined beside the profiles)

if TYPE_CHECKING:
    from ..config import Settings


@dataclass(frozen=True)
class Flow:
    """A category flow behind a score: shoppers of `source` go on to `target` with chance `p`, `lift`× chance."""

    source: str
    target: str
    p: float
    lift: float


class Evidence(list):
    """What drove one item's score: history items as (position, share) pairs, strongest first, and, for
    category signals, the strongest `flow` into the item's category (None when there is none); for shopper
    signals, `peers` = (similar shoppers who bought the item, similar shoppers) (None when not given)."""

    def __init__(self, pairs=(), flow: Flow | None = None, peers: tuple[int, int] | None = None):
        super().__init__(pairs)
        self.flow = flow
        self.peers = peers

    def records(self, words: "Words") -> list[dict]:
        """The evidence as plain records (history items with title and share, the flow, the similar shoppers)."""
        out = [{"item_id": words.item_id(j), "title": words.title(j), "share": round(share, 3)} for j, share in self]
        if self.flow is not None:
            f = self.flow
            out.append({"from": f.source, "to": f.target, "p": round(f.p, 3), "lift": round(f.lift, 2)})
        if self.peers is not None:
            out.append({"similar_shoppers_who_bought": int(self.peers[0]), "similar_shoppers": int(self.peers[1])})
        return out


class EvidenceBatch:
    """The evidence of many (shopper row, listed item) pairs as arrays, so a whole export batch is explained
    at once: per pair up to `top` history items (`hist`, positions, -1 padded) with their `share`, strongest
    first, and for category signals the strongest flow into the item's category (`flows[p]`, None when there
    is none), and for shopper signals `peers[p]` = (similar shoppers who bought the item, similar shoppers).
    `at(p)` is pair p's `Evidence`."""

    def __init__(self, hist: np.ndarray, share: np.ndarray, flows: list | None = None,
                 peers: np.ndarray | None = None):
        self.hist = hist
        self.share = share
        self.flows = flows
        self.peers = peers  # n × 2 int64, or None

    @classmethod
    def empty(cls, n: int, top: int = 3) -> "EvidenceBatch":
        return cls(np.full((n, top), -1, np.int64), np.zeros((n, top)))

    @classmethod
    def from_list(cls, evs: Sequence[Evidence], top: int = 3) -> "EvidenceBatch":
        """Pack per-pair Evidence (a signal that explains one shopper at a time)."""
        out = cls.empty(len(evs), max([top, *map(len, evs)]))
        for p, ev in enumerate(evs):
            for j, (h, share) in enumerate(ev):
                out.hist[p, j], out.share[p, j] = h, share
        if any(ev.flow is not None for ev in evs):
            out.flows = [ev.flow for ev in evs]
        if any(ev.peers is not None for ev in evs):
            out.peers = np.array([ev.peers if ev.peers is not None else (0, 0) for ev in evs], np.int64)
        return out

    def __len__(self) -> int:
        return len(self.hist)

    @property
    def first(self) -> np.ndarray:
        """Each pair's strongest history item (-1: none)."""
        return self.hist[:, 0]

    def at(self, p: int) -> Evidence:
        n = int((self.hist[p] >= 0).sum())
        pairs = zip(self.hist[p, :n].tolist(), self.share[p, :n].tolist())
        peers = None if self.peers is None else (int(self.peers[p, 0]), int(self.peers[p, 1]))
        return Evidence(pairs, self.flows[p] if self.flows is not None else None, peers)

    def take(self, pairs: np.ndarray) -> "EvidenceBatch":
        """The evidence of some of the pairs."""
        flows = None if self.flows is None else [self.flows[p] for p in np.asarray(pairs).tolist()]
        return EvidenceBatch(self.hist[pairs], self.share[pairs], flows,
                             None if self.peers is None else self.peers[pairs])

    def as_list(self) -> list[Evidence]:
        return [self.at(p) for p in range(len(self))]


def by_row(rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(row, the pairs of that row) for each distinct row of `rows`, pairs in their order."""
    rows = np.asarray(rows)
    order = np.argsort(rows, kind="stable")
    bounds = np.flatnonzero(np.r_[True, rows[order][1:] != rows[order][:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        yield int(rows[order[a]]), order[a:b]


def user_terms(rows: np.ndarray, items: np.ndarray, terms_of) -> EvidenceBatch:
    """`shares` of terms a signal computes one user at a time (a small dense product per user):
    `terms_of(row, pairs)` gives (the user's history items, |history| × |pairs| terms), or None."""
    pair, hist, terms = [], [], []
    for row, at in by_row(rows):
        got = terms_of(row, at)
        if got is not None:
            h, contrib = got
            pair.append(np.repeat(at, len(h)))
            hist.append(np.tile(np.asarray(h, dtype=np.int64), len(at)))
            terms.append(contrib.T.ravel())
    if not pair:
        return EvidenceBatch.empty(len(items))
    return shares(np.concatenate(pair), np.concatenate(hist), np.concatenate(terms), len(items))


def shares(pair: np.ndarray, hist: np.ndarray, terms: np.ndarray, n_pairs: int, top: int = 3) -> EvidenceBatch:
    """The one evidence-share rule on ragged arrays: `terms[t]` is history item `hist[t]`'s term of pair
    `pair[t]`'s score (each pair's terms in history order); per pair, the `top` positive terms as shares of
    the sum of its positive terms, strongest first (ties: the earlier history item). Sums and shares stay
    in the terms' dtype and are added in history order, as `evidence_shares` does for one shopper."""
    from .evidence_kernels import outputs, terms_top

    out = outputs(n_pairs, top, terms.dtype)
    terms_top(np.asarray(pair, np.int64), np.asarray(hist, np.int64), terms, *out)
    return ranked_shares(*out)


def ranked_shares(hist: np.ndarray, best: np.ndarray, total: np.ndarray) -> EvidenceBatch:
    """An EvidenceBatch from a kernel's per-pair best terms and sums (shares in the terms' dtype)."""
    found = hist >= 0
    share = np.zeros(hist.shape)
    share[found] = (best / np.where(total > 0, total, 1)[:, None])[found]
    return EvidenceBatch(hist, share)


@dataclass
class Words:
    """What a signal's sentence may mention: the catalog columns (item_id, title, cat_top in item order),
    the typed profile text and the search query. Shortened titles are kept once made, so one Words serves
    a whole export."""

    items: dict[str, np.ndarray]
    profile_text: str | None = None
    query: str | None = None
    _short: dict = field(default_factory=dict, repr=False, compare=False)

    def item_id(self, pos: int) -> str:
        return str(self.items["item_id"][pos])

    def title(self, pos: int, limit: int = 60) -> str:
        t = str(self.items["title"][pos]) or str(self.items["item_id"][pos])
        return t if len(t) <= limit else t[: limit - 1] + "…"

    def titles(self, positions: np.ndarray) -> list[str]:
        """`title` of many item positions (each distinct item shortened once)."""
        short = self._short
        return [short[p] if p in short else short.setdefault(p, self.title(p)) for p in np.asarray(positions).tolist()]

    def cat_top(self, pos: int) -> str:
        return str(self.items["cat_top"][pos])


_DECLARED = ("name", "label", "color", "default_weight", "needs_embeddings", "state_fields")


class Signal:
    """Base class: subclasses declare who they are (`name`, plain `label`, `color`, `default_weight`,
    `needs_embeddings`) and implement `fit` and `score`; `evidence` and `phrase` explain a score.

    Hyper-parameters are the keyword arguments of the subclass's `__init__`, each stored under its own
    name (scikit-learn's convention): `params()` lists them, `build(settings)` makes the signal with
    `settings.signals[name]`, and a model file records them. Saving (crossrec_core.modelio):
    `state_fields` names the fitted attributes; `to_state`/`from_state` write and read both (arrays and
    JSON only)."""

    name: str = "signal"
    label: str = "signal"  # plain words for merchandisers (sentences, legend, sliders)
    color: str = "#9ca3af"  # how the dashboard draws its part of a score
    default_weight: float = 0.0  # fusion weight before any is learned
    needs_embeddings: bool = False  # fitted only when item text embeddings exist
    state_fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **declared) -> None:
        """A signal declares who it is in its class statement, `class X(Signal, name=..., label=..., color=...,
        default_weight=..., state_fields=...)`: one line, not a block repeated in every module."""
        super().__init_subclass__()
        for key, value in declared.items():
            if key not in _DECLARED:
                raise TypeError(f"{cls.__name__}: unknown signal declaration '{key}' (known: {', '.join(_DECLARED)})")
            setattr(cls, key, value)

    @classmethod
    def params(cls) -> dict[str, Any]:
        """The hyper-parameters (the constructor's keyword arguments) with their defaults."""
        sig = inspect.signature(cls.__init__)
        return {p.name: p.default for p in sig.parameters.values()
                if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    def get_params(self) -> dict[str, Any]:
        """This signal's hyper-parameters as set."""
        return {name: getattr(self, name) for name in self.params()}

    @classmethod
    def build(cls, settings: Settings, given: Mapping[str, Any] | None = None, where: str | None = None,
              **fixed: Any) -> "Signal":
        """The one way a signal is made from the settings: its keyword arguments from `given` (default
        `settings.signals[name]`; `where` names them in errors), the settings' `seed` as `random_state`
        where the signal takes one and they do not set it, then `fixed`. A name the class does not take is
        a one-line error."""
        where = where or f"signals.{cls.name}"
        given = dict(settings.signals.get(cls.name, {}) if given is None else given)
        known = cls.params()
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise CrossRecError(f"setting {where}.{unknown[0]} is not a parameter of {cls.name} "
                                f"(its parameters: {', '.join(known) or 'none'})")
        if "random_state" in known and "random_state" not in given:
            given["random_state"] = int(settings.seed)
        return cls(**{**given, **fixed})

    @classmethod
    def available(cls, settings: Settings, embeddings: np.ndarray | None) -> bool:
        """Whether a shop with these settings and item embeddings (None: none) fits this signal at all; one that
        is not is left out of the fit (it costs nothing and its part of every score is 0)."""
        return embeddings is not None or not cls.needs_embeddings

    def fit(self, data: Interactions, embeddings: np.ndarray | None = None) -> "Signal":
        raise NotImplementedError

    def score(self, ctx: Context) -> np.ndarray:
        """B × n_items raw scores (higher = better); not normalised."""
        raise NotImplementedError

    def block_scorer(self, ctx: Context):
        """A function (a, b) -> B × (b − a) raw scores of items a..b-1, so fusion can score the catalogue a
        block at a time (crossrec_core.blocked). This default scores everything once and slices; signals
        override it to compute only the block."""
        full: list[np.ndarray] = []

        def block(a: int, b: int) -> np.ndarray:
            if not full:
                full.append(self.score(ctx))
            return full[0][:, a:b]
        return block

    # ---- retrieval (crossrec_core.retrieval): the candidates of a served list --------------------

    def retrieve(self, ctx: Context, allowed: np.ndarray, n: int) -> np.ndarray:
        """B × n: each row's n best allowed items by this signal (best first, equal scores in item order, -1
        pads). This default scores the catalogue (`score`) once per batch, which `score_at` then reads;
        signals override both with a search that needs no score per shopper × catalogue."""
        from ..retrieval_kernels import dense_top

        scores = self._dense(ctx)
        out = np.full((ctx.n, n), -1, np.int64)
        dense_top(scores, np.arange(scores.shape[1], dtype=np.int64), allowed, n, out)
        return out

    def score_at(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The raw score of each (row, item) pair, as `score(ctx)[rows, items]` gives it."""
        return self._dense(ctx)[rows, items]

    def row_range(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """Each row's lowest and highest score over the whole catalogue (B each, float32): what the linear
        fusion's min-max normalisation needs, found without a shopper × catalogue array where the signal
        can (its scores outside its neighbour lists are 0, its categories' items share a score)."""
        dense = self._dense(ctx)
        if dense.shape[1] == 0:
            return np.zeros(ctx.n, np.float32), np.zeros(ctx.n, np.float32)
        return dense.min(axis=1), dense.max(axis=1)

    def _dense(self, ctx: Context) -> np.ndarray:
        return ctx.cached((id(self), "dense"), lambda: np.asarray(self.score(ctx), dtype=np.float32))

    def to_state(self, state) -> None:
        """Write the hyper-parameters and fitted attributes into a modelio.State."""
        state.put("options", self.get_params())
        state.put_attrs(self, self.state_fields)

    @classmethod
    def from_state(cls, state, settings: Settings) -> "Signal":
        """The saved signal: its recorded hyper-parameters over what `settings` give (a model file of an
        earlier version recorded only some, and None for "from the settings")."""
        known = cls.params()
        saved = {k: v for k, v in state.get("options").items() if k in known and v is not None}
        obj = cls.build(settings, **saved)
        state.get_attrs(obj, cls.state_fields)
        return obj

    def evidence(self, ctx: Context, row: int, items: np.ndarray) -> list[Evidence]:
        """For user `row` of ctx and each of `items`: what drove the score (history items with shares,
        strongest first, or a category flow). Signals without evidence return empty ones."""
        items = np.asarray(items)
        if _overrides(self, "evidence_batch"):
            return self.evidence_batch(ctx, np.full(len(items), row), items).as_list()
        return [Evidence() for _ in items]

    def evidence_batch(self, ctx: Context, rows: np.ndarray, items: np.ndarray) -> EvidenceBatch:
        """`evidence` of many pairs at once (pair p: user `rows[p]` of ctx, item `items[p]`): what an export
        batch asks. Signals override it with array code; this default asks `evidence` one user at a time."""
        rows, items = np.asarray(rows), np.asarray(items)
        if not _overrides(self, "evidence"):
            return EvidenceBatch.empty(len(items))
        out: list[Evidence] = [Evidence()] * len(items)
        for row in np.unique(rows).tolist():
            at = np.flatnonzero(rows == row)
            for p, ev in zip(at.tolist(), self.evidence(ctx, row, items[at])):
                out[p] = ev
        return EvidenceBatch.from_list(out)

    def phrase(self, ev: Evidence, item: int, words: Words) -> str:
        """This signal's part of an item's one-sentence reason ("" when it has nothing to say)."""
        if _overrides(self, "phrases"):
            return self.phrases(EvidenceBatch.from_list([ev]), np.array([item]), words)[0]
        return self.label

    def phrases(self, ev: EvidenceBatch, items: np.ndarray, words: Words) -> list[str]:
        """`phrase` of many pairs at once (`ev` and `items` pair by pair); this default asks `phrase`."""
        return [self.phrase(ev.at(p), item, words) for p, item in enumerate(np.asarray(items).tolist())]


def _overrides(signal: Signal, method: str) -> bool:
    """Whether the signal's class defines `method` itself rather than inheriting Signal's default (each
    explaining method's default falls back on its one-pair or many-pair twin)."""
    return getattr(type(signal), method) is not getattr(Signal, method)


def cited(ev: EvidenceBatch, words: Words, template: str, otherwise: str) -> list[str]:
    """Per pair, `template` with the title of its strongest history item in place of {}, or `otherwise`
    when the pair has none (the sentence of every signal that cites one history item)."""
    src = ev.first
    titles = words.titles(np.maximum(src, 0))
    return [template.format(t) if s >= 0 else otherwise for s, t in zip(src.tolist(), titles)]


def evidence_shares(contrib: np.ndarray, hist: np.ndarray, top: int = 3) -> list[Evidence]:
    """The one evidence-share rule: `contrib` is |history| × |items| (each history item's term of each
    item's score); per item, the `top` positive terms as shares of the sum of the positive terms."""
    pos = np.clip(contrib, 0, None)
    totals = pos.sum(axis=0)
    out = []
    for col in range(contrib.shape[1]):
        c, total = pos[:, col], totals[col]
        if total <= 0:
            out.append(Evidence())
            continue
        order = np.argsort(-c)[:top]
        out.append(Evidence((int(hist[j]), float(c[j] / total)) for j in order if c[j] > 0))
    return out


def item_evidence(x: sp.csr_matrix, sim: sp.csr_matrix, items: np.ndarray, top: int = 3) -> list[Evidence]:
    """For one user's history row `x` (1 × n) and an item-item matrix `sim` (history → candidate):
    which history items contribute most to each candidate's score x @ sim[:, i], as shares."""
    hist = x.indices
    if len(hist) == 0:
        return [Evidence() for _ in items]
    return evidence_shares(sim[hist][:, items].toarray() * x.data[:, None], hist, top)


def sparse_blocks(product: sp.spmatrix):
    """A block scorer over a sparse B × n product (history @ item-item matrix): columns sliced from CSC."""
    csr = sp.csr_matrix(product, dtype=np.float32)
    held: list[sp.csc_matrix] = []

    def block(a: int, b: int) -> np.ndarray:
        if a == 0 and b >= csr.shape[1]:  # the whole catalogue in one block (a single shopper): no CSC copy
            return csr.toarray()
        if not held:
            held.append(csr.tocsc())
        return held[0][:, a:b].toarray()
    return block


def top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row of a CSR matrix (vectorised per row chunk)."""
    m = m.tocsr()
    m.eliminate_zeros()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    keep = np.ones(m.nnz, dtype=bool)
    for r in np.flatnonzero(counts > k):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        seg = m.data[lo:hi]
        drop = np.argpartition(-seg, k)[k:]
        keep[lo + drop] = False
    m.data = np.where(keep, m.data, 0)
    m.eliminate_zeros()
    return m
