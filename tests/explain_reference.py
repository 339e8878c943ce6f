"""The per-shopper explanation path as it was before batch explanations (main at 106947e), kept only as
the reference the batch path is compared with (tests/test_explain_batch.py): each signal's old
`evidence(ctx, row, items)`, old `phrase`, and the old `explain_items` loop, copied verbatim in behaviour."""
from __future__ import annotations

import numpy as np
import scipy.linalg

from crossrec_core.profiles import category_affinity
from crossrec_core.signals.base import Evidence, Flow, Words
from crossrec_core.signals.ease import binary
from crossrec_core.signals.registry import names


def evidence_shares(contrib: np.ndarray, hist: np.ndarray, top: int = 3) -> list[Evidence]:
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


def _item_item(sig, ctx, row, items):
    x = sig._query(ctx.X[row])
    hist = x.indices
    if len(hist) == 0:
        return [Evidence() for _ in items]
    sim = sig.similarity()
    return evidence_shares(sim[hist][:, items].toarray() * x.data[:, None], hist)


def _als(sig, ctx, row, items):
    C = sig.confidence_matrix(ctx.X[row])
    hist, c = C.indices, C.data.astype(np.float64)
    if len(hist) == 0 or not sig.fitted_:
        return [Evidence() for _ in items]
    A, _ = sig._system(hist, c)
    W = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A), sig.item_factors_[items].T.astype(np.float64))
    contrib = c[:, None] * (sig.item_factors_[hist].astype(np.float64) @ W)
    return evidence_shares(contrib, hist)


def _ease(sig, ctx, row, items):
    pos = np.full(sig.n_items_, -1, dtype=np.int64)
    pos[sig.items_] = np.arange(len(sig.items_))
    hist = binary(ctx.X[row]).indices
    hist = hist[pos[hist] >= 0]
    items = np.asarray(items, dtype=np.int64)
    contrib = np.zeros((len(hist), len(items)))
    modelled = pos[items] >= 0
    contrib[:, modelled] = sig.B_[pos[hist]][:, pos[items[modelled]]]
    return evidence_shares(contrib, hist)


def _content(sig, ctx, row, items):
    x = ctx.X[row]
    keep = x.data > 0
    hist, conf = x.indices[keep], x.data[keep].astype(np.float64)
    if len(hist) == 0 or sig.embeddings_.shape[1] == 0:
        return [Evidence() for _ in items]
    E = sig.embeddings_
    sims = E[hist].astype(np.float64) @ E[items].T.astype(np.float64)
    contrib = np.where(sims >= sig.min_similarity, sims, 0.0) * conf[:, None]
    return evidence_shares(contrib, hist)


def _transition(sig, ctx, row, items):
    aff = category_affinity(ctx.X[row], sig.cat_flow_, sig.n_cats)[0]
    out = []
    for item in np.asarray(items):
        b = int(sig.cat_flow_[item])
        contrib = aff * sig.strength_[:, b]
        a = int(np.argmax(contrib)) if len(contrib) else 0
        flow = None
        if len(contrib) and contrib[a] > 0:
            flow = Flow(str(sig.cat_names_[a]), str(sig.cat_names_[b]), float(sig.p_[a, b]), float(sig.lift_[a, b]))
        out.append(Evidence(flow=flow))
    return out


def _neighbours(sig, ctx, row, items):
    """(the shopper's neighbours who carted or bought the item, the neighbours), one neighbour at a time."""
    u = -1 if ctx.user_rows is None else int(ctx.user_rows[row])
    if u < 0:
        return [Evidence(peers=(0, 0)) for _ in items]
    nbr = [int(v) for v in sig.neighbours_[u] if v >= 0]
    V = sig.vectors_
    owned = [set(V.indices[V.indptr[v]:V.indptr[v + 1]][sig.owned_[V.indptr[v]:V.indptr[v + 1]] > 0].tolist())
             for v in nbr]
    return [Evidence(peers=(sum(int(i) in o for o in owned), len(nbr))) for i in np.asarray(items)]


EVIDENCE = {"cooc": _item_item, "graph": _item_item, "als": _als, "ease": _ease, "content": _content,
            "content_tuned": _content, "transition": _transition, "neighbours": _neighbours}


def evidence(sig, ctx, row, items):
    fn = EVIDENCE.get(sig.name)
    items = np.asarray(items)
    return fn(sig, ctx, row, items) if fn else [Evidence() for _ in items]


def _co_share(sig, j, i):
    n = int(sig.n_users_[j])
    if n == 0 or j == i:
        return 0.0 if n == 0 else 1.0
    ip = sig.item_users_.indptr
    a = sig.item_users_.indices[ip[j]:ip[j + 1]]
    b = sig.item_users_.indices[ip[i]:ip[i + 1]]
    count = 0 if len(a) == 0 or len(b) == 0 else int(np.intersect1d(a, b, assume_unique=True).size)
    return count / n


def phrase(sig, ev, item, words: Words) -> str:
    name = sig.name
    if name == "cooc":
        if not ev:
            return sig.label
        src = ev[0][0]
        share = _co_share(sig, src, int(item))
        if share > 0:
            return f"{share:.0%} of shoppers who bought {words.title(src)} also bought this"
        return f"often bought with {words.title(src)}"
    if name == "als":
        return f"fits this shopper's taste (like {words.title(ev[0][0])})" if ev else sig.label
    if name == "graph":
        return f"shoppers who bought {words.title(ev[0][0])} went on to it" if ev else sig.label
    if name == "ease":
        return f"goes with {words.title(ev[0][0])} in other shoppers' baskets" if ev else sig.label
    if name == "content":
        if words.query:
            return f"matches the search '{words.query[:60]}'"
        if ev:
            return f"similar to {words.title(ev[0][0])}"
        if words.profile_text:
            return f"matches the profile '{words.profile_text[:60]}'"
        return ""
    if name == "transition":
        f = ev.flow
        if f is None:
            return sig.label
        return f"people who buy {f.source} often go on to {f.target} (lift {round(f.lift, 2):.1f})"
    if name == "neighbours":
        b, n = ev.peers
        return (f"bought by {b} of the {n} shoppers who shop most like this one" if b > 0 else
                "what shoppers like this one buy" if n > 0 else sig.label)
    if name == "content_tuned":
        return f"like {words.title(ev[0][0])} by the shop's tuned text model" if ev else sig.label
    if name == "popularity":
        return f"popular right now in {words.cat_top(item)}"
    return sig.phrase(ev, item, words)


def explain_items(scorer, ctx, row, items_idx, contributions, items, profile_text=None, query=None):
    """(reason, evidence records) per listed item, as the old explain.explain_items made them."""
    signals = scorer.signals_
    words = Words(items, profile_text, query)
    evid = {name: evidence(sig, ctx, row, items_idx) for name, sig in signals.items()
            if any(c.get(name, 0.0) > 0 for c in contributions)}
    out = []
    for n, i in enumerate(items_idx):
        contrib = {s: float(contributions[n].get(s, 0.0)) for s in names()}
        ev = {name: lists[n].records(words) if contrib[name] > 0 else [] for name, lists in evid.items()}
        ranked = [s for s in sorted(contrib, key=contrib.get, reverse=True) if contrib[s] > 0][:2]
        bits = [bit for s in ranked if s in signals and (bit := phrase(signals[s], evid[s][n], int(i), words))]
        reason = "Recommended as a good general pick."
        if bits:
            text = "; ".join(bits)
            reason = text[0].upper() + text[1:] + "."
        out.append((reason, ev))
    return out


def reasons(rec, ctx, row, idx, parts):
    """The old Recommender.reasons."""
    from crossrec_core.signals.registry import contributions

    zero = np.zeros(len(idx))
    cols = [parts.get(s, zero) for s in contributions()]
    contribs = [dict(zip(contributions(), map(float, vals))) for vals in zip(*cols)]
    return [r for r, _ in explain_items(rec.scorer_, ctx, row, idx, contribs, rec.item_columns)]


def iter_rows(rec, user_ids, k=20, mode="all", category=None, batch_size=256):
    """The old export.iter_rows: one reasons call (evidence per signal) per shopper."""
    from crossrec_core.export import FALLBACK, _rounded, neutralise
    from crossrec_core.signals.registry import contributions

    parts_names = contributions()
    cols = rec.item_columns
    cells: dict[int, tuple] = {}
    engine = rec.scorer_.rule_engine() if rec.scorer_.rules else None
    for batch, ctx, (idx, score, parts, base) in rec.ranked_batches(user_ids, k, mode, category, batch_size):
        for row, uid in enumerate(batch):
            keep = idx[row] >= 0
            prefix, c, r, p, b, s = "", ctx, row, parts, base, score
            if not keep.any() and mode != "all":
                _, c, (fi, s, p, b) = next(rec.ranked_batches([uid], k, "all"))
                r, keep, prefix = 0, fi[0] >= 0, FALLBACK[mode]
                items = fi[0][keep]
            else:
                items = idx[row][keep]
            if not len(items):
                continue
            listed = {name: v[r][keep] for name, v in p.items()}
            why = reasons(rec, c, r, items, listed)
            notes = engine.notes(c, r, items) if engine is not None else [""] * len(items)
            values = [_rounded(listed[name]) if name in listed else [0.0] * len(items) for name in parts_names]
            sc, bs = _rounded(s[r][keep]), _rounded(b[r][keep])
            user = neutralise(str(uid))
            for j, item in enumerate(items.tolist()):
                cell = cells.get(item)
                if cell is None:
                    cell = cells[item] = tuple(neutralise(str(cols[col][item])) for col in ("item_id", "title", "category"))
                yield [user, j + 1, *cell, sc[j], bs[j], *(v[j] for v in values), neutralise(prefix + why[j]),
                       neutralise(str(notes[j]))]
