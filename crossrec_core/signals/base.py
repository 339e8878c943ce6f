"""What every signal (and every baseline) looks like, implicit-style: settings in the constructor,
`fit(data, embeddings)` returns self, fitted attributes end in `_`, `score(ctx)` returns a dense
(users × items) array of raw scores for a batch of users described by a `Context`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..config import Settings
from ..data import Interactions
from ..profiles import Context  # noqa: F401  (a signal's `score(ctx)` takes one; defined beside the profiles)


@dataclass(frozen=True)
class Flow:
    """A category flow behind a score: shoppers of `source` go on to `target` with chance `p`, `lift`× chance."""

    source: str
    target: str
    p: float
    lift: float


class Evidence(list):
    """What drove one item's score: history items as (position, share) pairs, strongest first, and, for
    category signals, the strongest `flow` into the item's category (None when there is none)."""

    def __init__(self, pairs=(), flow: Flow | None = None):
        super().__init__(pairs)
        self.flow = flow

    def records(self, words: "Words") -> list[dict]:
        """The evidence as plain records (history items with title and share, or the flow)."""
        out = [{"item_id": words.item_id(j), "title": words.title(j), "share": round(share, 3)} for j, share in self]
        if self.flow is not None:
            f = self.flow
            out.append({"from": f.source, "to": f.target, "p": round(f.p, 3), "lift": round(f.lift, 2)})
        return out


@dataclass
class Words:
    """What a signal's sentence may mention: the catalog columns (item_id, title, cat_top in item order),
    the typed profile text and the search query."""

    items: dict[str, np.ndarray]
    profile_text: str | None = None
    query: str | None = None

    def item_id(self, pos: int) -> str:
        return str(self.items["item_id"][pos])

    def title(self, pos: int, limit: int = 60) -> str:
        t = str(self.items["title"][pos]) or str(self.items["item_id"][pos])
        return t if len(t) <= limit else t[: limit - 1] + "…"

    def cat_top(self, pos: int) -> str:
        return str(self.items["cat_top"][pos])


_DECLARED = ("name", "label", "color", "default_weight", "needs_embeddings", "options", "state_fields")


class Signal:
    """Base class: subclasses declare who they are (`name`, plain `label`, `color`, `default_weight`,
    `needs_embeddings`) and implement `fit` and `score`; `evidence` and `phrase` explain a score.

    Saving (crossrec_core.modelio): `options` names the constructor's keyword arguments and
    `state_fields` the fitted attributes; `to_state`/`from_state` write and read both (arrays and JSON only)."""

    name: str = "signal"
    label: str = "signal"  # plain words for merchandisers (sentences, legend, sliders)
    color: str = "#9ca3af"  # how the dashboard draws its part of a score
    default_weight: float = 0.0  # fusion weight before any is learned
    needs_embeddings: bool = False  # fitted only when item text embeddings exist
    options: tuple[str, ...] = ()
    state_fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **declared) -> None:
        """A signal declares who it is in its class statement, `class X(Signal, name=..., label=..., color=...,
        default_weight=..., state_fields=...)`: one line, not a block repeated in every module."""
        super().__init_subclass__()
        for key, value in declared.items():
            if key not in _DECLARED:
                raise TypeError(f"{cls.__name__}: unknown signal declaration '{key}' (known: {', '.join(_DECLARED)})")
            setattr(cls, key, value)

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

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

    def to_state(self, state) -> None:
        """Write the options and fitted attributes into a modelio.State."""
        state.put("options", {o: getattr(self, o) for o in self.options})
        state.put_attrs(self, self.state_fields)

    @classmethod
    def from_state(cls, state, settings: Settings) -> "Signal":
        obj = cls(settings, **state.get("options"))
        state.get_attrs(obj, cls.state_fields)
        return obj

    def evidence(self, ctx: Context, row: int, items: np.ndarray) -> list[Evidence]:
        """For user `row` of ctx and each of `items`: what drove the score (history items with shares,
        strongest first, or a category flow). Signals without evidence return empty ones."""
        return [Evidence() for _ in items]

    def phrase(self, ev: Evidence, item: int, words: Words) -> str:
        """This signal's part of an item's one-sentence reason ("" when it has nothing to say)."""
        return self.label


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
