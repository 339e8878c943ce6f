"""The six signals on a small shop with planted structure (real Interactions, no mocks).

Planted:
- food shoppers F0..F11 buy pasta p1 and sauce s1 in one basket (p1 first), then p2 or s2 later;
  P0, P1 buy p1 alone — so 12 of the 14 people who bought p1 also bought s1;
- garden shoppers G0..G11 buy tool g1 then seeds d1 a minute later, then g2 or d2 later: the flow
  "Garden > Tools" → "Garden > Seeds" (nobody else touches seeds);
- everybody views the bestseller `pop` and two random books, days after their first baskets;
- x1 is a new toy with no events whose text embedding is next to p1's; b8 has no embedding.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossrec_core.config import Settings
from crossrec_core.data import build_interactions
from crossrec_core.profiles import context_for_users, make_context
from crossrec_core.signals import (
    SIGNAL_CLASSES, ALSSignal, CoocSignal, ContentSignal, GraphSignal, PopularitySignal, TransitionSignal,
    make_signals,
)
from crossrec_core.signals.base import Context
from crossrec_core.signals.cooc import item_item, weigh
from crossrec_core.signals.transition import first_touch, pair_counts

T0 = pd.Timestamp("2024-03-01 09:00:00")
CATS = {
    "p1": "Food > Pasta", "p2": "Food > Pasta", "s1": "Food > Sauce", "s2": "Food > Sauce",
    "g1": "Garden > Tools", "g2": "Garden > Tools", "d1": "Garden > Seeds", "d2": "Garden > Seeds",
    **{f"b{k}": "Books > Fiction" for k in range(1, 9)},
    "pop": "Books > Bestsellers", "x1": "Toys > Puzzles",
}


def _items() -> pd.DataFrame:
    ids = list(CATS)
    cat = [CATS[i] for i in ids]
    return pd.DataFrame({
        "item_id": ids,
        "title": [f"title {i}" for i in ids],
        "category": cat,
        "cat_top": [c.split(" > ")[0] for c in cat],
        "cat_sub": cat,
    })


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []

    def add(user, item, kind, day, minute=0):
        rows.append((user, item, kind, T0 + pd.Timedelta(days=day, minutes=minute)))

    for k in range(12):
        u = f"F{k}"
        add(u, "p1", "purchase", k % 3)
        add(u, "s1", "purchase", k % 3, 1)
        add(u, "p2" if k % 2 else "s2", "purchase", 4 + k % 2)
    for k in range(2):
        add(f"P{k}", "p1", "purchase", 2)
    for k in range(12):
        u = f"G{k}"
        add(u, "g1", "purchase", k % 3)
        add(u, "d1", "purchase", k % 3, 1)
        add(u, "g2" if k % 2 else "d2", "purchase", 4 + k % 2)
    users = [f"F{k}" for k in range(12)] + ["P0", "P1"] + [f"G{k}" for k in range(12)]
    for u in users:
        add(u, "pop", "view", 8)
        for b in rng.choice(8, size=2, replace=False):
            add(u, f"b{b + 1}", "view", 9 + int(rng.integers(0, 3)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])


# A tiny shop where one item is viewed by everyone: the graph needs firm popularity damping (beta) and
# ALS little regularisation to tell 40 users apart; the defaults are chosen for real catalogs.
SETTINGS = Settings(seed=3).replace({"signals.als.factors": 8, "signals.als.iterations": 30,
                                     "signals.als.regularization": 0.05, "signals.cooc.neighbours": 50,
                                     "signals.graph.neighbours": 50, "signals.graph.beta": 0.25,
                                     "behaviour.transition_level": 2})


@pytest.fixture(scope="module")
def shop():
    items, events = _items(), _events()
    return items, events, build_interactions(items, events, SETTINGS)


@pytest.fixture(scope="module")
def embeddings(shop):
    _, _, data = shop
    rng = np.random.default_rng(11)
    E = rng.standard_normal((data.n_items, 16)).astype(np.float32)
    p1 = data.item_rows(["p1"])[0]
    E[data.item_rows(["x1"])[0]] = E[p1] + 0.05 * rng.standard_normal(16).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    E[data.item_rows(["b8"])[0]] = 0.0
    return E


@pytest.fixture(scope="module")
def fitted(shop, embeddings):
    _, _, data = shop
    return {name: sig.fit(data, embeddings) for name, sig in make_signals(SETTINGS).items()}


def _ctx(data, histories: list[list[tuple[str, str]]], embeddings=None, text=None) -> Context:
    """A Context from hand-written histories: per user a list of (item_id, event_type), all 'now'."""
    rows = [(u, it, kind, data.now) for u, hist in enumerate(histories) for it, kind in hist]
    ev = pd.DataFrame(rows, columns=["u", "item_id", "event_type", "ts"])
    ev["i"] = data.item_rows(ev["item_id"]) if len(ev) else np.zeros(0, int)
    X = data.history_matrix(ev, n_rows=len(histories))
    return make_context(data, X, embeddings, text_vecs=text)


def _pos(data, item: str) -> int:
    return int(data.item_rows([item])[0])


def _rank_first(scores: np.ndarray, data, exclude: list[str]) -> str:
    s = scores.astype(np.float64).copy()
    s[[_pos(data, e) for e in exclude]] = -np.inf
    return str(data.item_ids[int(np.argmax(s))])


# ---- contract ---------------------------------------------------------------------------------


def test_registry_order_and_names():
    assert list(SIGNAL_CLASSES) == ["cooc", "als", "graph", "ease", "neighbours", "content", "content_tuned",
                                   "transition", "popularity"]
    sigs = make_signals(SETTINGS)
    assert list(sigs) == list(SIGNAL_CLASSES)
    for name, sig in sigs.items():
        assert sig.name == name
        # each signal's parameters: the settings' where they name one, else the class's own default
        want = {**type(sig).params(), **SETTINGS.signals.get(name, {})}
        if "random_state" in want:
            want["random_state"] = SETTINGS.seed
        assert sig.get_params() == want, name
    assert sigs["als"].factors == 8 and sigs["graph"].beta == 0.25 and sigs["cooc"].shrink == 10.0


def test_a_signal_parameter_the_class_does_not_take_is_a_one_line_error():
    from crossrec_core.errors import CrossRecError

    with pytest.raises(CrossRecError, match=r"^setting signals.als.factorz is not a parameter of als \(its "
                                             r"parameters: factors, iterations, "):
        make_signals(SETTINGS.replace({"signals.als.factorz": 8}))
    with pytest.raises(CrossRecError, match=r"^setting evaluation.baselines.itemknn.k is not a parameter of itemknn"):
        from crossrec_core.baselines import BASELINES

        BASELINES["itemknn"](SETTINGS.replace({"evaluation.baselines.itemknn.k": 3}))


def test_every_score_is_float32_finite_and_zero_without_history(shop, fitted, embeddings):
    _, _, data = shop
    ctx = _ctx(data, [[("p1", "purchase")], [], [("g1", "view"), ("b2", "cart")]], embeddings)
    empty = _ctx(data, [[]])  # no history and no profile at all
    for name, sig in fitted.items():
        for c in (ctx, empty, context_for_users(data, np.arange(data.n_users), embeddings)):
            s = sig.score(c)
            assert isinstance(s, np.ndarray) and s.dtype == np.float32, name
            assert s.shape == (c.n, data.n_items), name
            assert np.isfinite(s).all(), name
        if name == "popularity":
            assert np.array_equal(sig.score(empty)[0], sig.scores_) and sig.score(empty)[0].max() > 0
        else:
            assert not sig.score(empty).any(), name
            assert not sig.score(ctx)[1].any(), name  # the empty row of a mixed batch
        assert sig.evidence(empty, 0, np.arange(3)) == [[], [], []], name
        assert all(e.flow is None for e in sig.evidence(empty, 0, np.arange(3))), name


def test_scores_follow_the_current_history_not_the_fitted_rows(shop, fitted):
    _, _, data = shop
    g0 = data.user_rows(["G0"])  # a garden shopper in the fit ...
    now_food = _ctx(data, [[("p1", "purchase")]])
    now_food.user_rows = g0  # ... whose current history is pasta only
    for name in ("cooc", "als", "graph"):
        assert _rank_first(fitted[name].score(now_food)[0], data, ["p1"]) == "s1", name


# ---- cooc -------------------------------------------------------------------------------------


def test_cooc_ranks_the_co_bought_partner_first_with_evidence(shop, fitted):
    _, _, data = shop
    cooc = fitted["cooc"]
    s = cooc.score(_ctx(data, [[("p1", "purchase")], [("g1", "purchase")]]))
    assert _rank_first(s[0], data, ["p1"]) == "s1"
    assert _rank_first(s[1], data, ["g1"]) == "d1"
    # with a book view in the history too, p1 is still what drives s1
    ctx = _ctx(data, [[("p1", "purchase"), ("b3", "view")]])
    s = cooc.score(ctx)
    ev = cooc.evidence(ctx, 0, np.array([_pos(data, "s1")]))[0]
    assert ev[0][0] == _pos(data, "p1") and ev[0][1] > 0.5
    assert abs(sum(share for _, share in ev) - 1.0) < 1e-6 or len(ev) == 3
    # evidence and score agree: the history contributions add up to the score
    S = cooc.S_
    xq = weigh(ctx.X[0], cooc.query)
    assert np.isclose((xq @ S[:, [_pos(data, "s1")]]).toarray()[0, 0], s[0, _pos(data, "s1")], rtol=1e-5)


def test_co_share_on_a_hand_counted_case(shop, fitted):
    _, events, data = shop
    cooc = fitted["cooc"]
    p1, s1, g1 = _pos(data, "p1"), _pos(data, "s1"), _pos(data, "g1")
    assert cooc.co_share(p1, s1) == pytest.approx(12 / 14)  # 12 food shoppers of 14 p1 buyers
    assert cooc.co_share(s1, p1) == pytest.approx(1.0)
    assert cooc.co_share(p1, g1) == 0.0
    assert cooc.co_count(p1, s1) == 12
    assert cooc.co_share(_pos(data, "x1"), p1) == 0.0  # nobody touched x1
    # cross-check every pair against a count straight from the events
    by_item = events.groupby("item_id")["user_id"].apply(set)
    for j in ("pop", "b1", "d2"):
        for i in ("b2", "pop", "g1"):
            if i == j:
                continue
            want = len(by_item[j] & by_item.get(i, set())) / len(by_item[j])
            assert cooc.co_share(_pos(data, j), _pos(data, i)) == pytest.approx(want)


def test_cooc_similarity_is_shrunk_cosine_with_zero_diagonal(shop, fitted):
    _, _, data = shop
    S = fitted["cooc"].S_
    assert S.diagonal().sum() == 0
    p1, s1 = _pos(data, "p1"), _pos(data, "s1")
    # binary weighting: C = 12 co-buyers, n_p1 = 14, n_s1 = 12
    assert S[p1, s1] == pytest.approx(12 / (np.sqrt(14 * 12) + fitted["cooc"].shrink), rel=1e-5)


def test_item_item_blocks_give_the_same_matrix(shop):
    _, _, data = shop
    B = weigh(data.X, "binary")

    def finish(block, a, b):
        block = block.tocoo()
        keep = block.col != block.row + a
        return sp.csr_matrix((block.data[keep], (block.row[keep], block.col[keep])), shape=block.shape)

    one = item_item(B.T.tocsr(), B, 5, finish)
    many = item_item(B.T.tocsr(), B, 5, finish, budget=3)
    assert (abs(one - many)).max() == 0
    assert np.diff(one.indptr).max() <= 5


# ---- graph ------------------------------------------------------------------------------------


def test_graph_ranks_the_co_bought_partner_first_with_evidence(shop, fitted):
    _, _, data = shop
    graph = fitted["graph"]
    s = graph.score(_ctx(data, [[("p1", "purchase")], [("g1", "purchase")]]))
    assert _rank_first(s[0], data, ["p1"]) == "s1"
    assert _rank_first(s[1], data, ["g1"]) == "d1"
    ctx = _ctx(data, [[("p1", "purchase"), ("b3", "view")]])
    ev = graph.evidence(ctx, 0, np.array([_pos(data, "s1"), _pos(data, "d1")]))
    assert ev[0][0][0] == _pos(data, "p1") and ev[0][0][1] > 0.5
    assert graph.W_.diagonal().sum() == 0
    assert (graph.W_.data > 0).all()


# ---- als --------------------------------------------------------------------------------------


def test_als_scores_the_partner_above_unrelated_items(shop, fitted):
    _, _, data = shop
    als = fitted["als"]
    ctx = _ctx(data, [[("p1", "purchase")], [("g1", "purchase")]])
    s = als.score(ctx)
    for unrelated in ("g1", "d1", "g2"):
        assert s[0, _pos(data, "s1")] > s[0, _pos(data, unrelated)]
    for unrelated in ("p1", "s1", "p2"):
        assert s[1, _pos(data, "d1")] > s[1, _pos(data, unrelated)]
    assert not s[:, _pos(data, "x1")].any()  # an item without events has no factors


def test_als_numpy_and_native_solvers_agree_and_evidence_adds_up(shop, fitted):
    _, _, data = shop
    als = fitted["als"]
    native = ALSSignal.build(SETTINGS, solver="implicit")
    native.__dict__.update({k: v for k, v in als.__dict__.items() if k.endswith("_")})
    ctx = context_for_users(data, np.arange(data.n_users))
    assert np.allclose(als.score(ctx), native.score(ctx), atol=1e-4)
    ctx = _ctx(data, [[("p1", "purchase"), ("b3", "view")]])
    s1 = _pos(data, "s1")
    ev = als.evidence(ctx, 0, np.array([s1]))[0]
    assert ev and ev[0][0] == _pos(data, "p1")
    # the explain terms c_j · y_jᵀ A⁻¹ y_i sum to the score
    C = als.confidence_matrix(ctx.X)
    A, _ = als._system(C.indices, C.data.astype(np.float64))
    Y = als.item_factors_.astype(np.float64)
    terms = C.data * (Y[C.indices] @ np.linalg.solve(A, Y[s1]))
    assert terms.sum() == pytest.approx(float(als.score(ctx)[0, s1]), rel=1e-3)


def test_fitting_on_no_events_gives_zeros():
    items = _items()
    empty = pd.DataFrame(columns=["user_id", "item_id", "event_type", "ts"])
    data = build_interactions(items, empty.astype({"ts": "datetime64[ns]"}), SETTINGS, users=["u1"])
    ctx = context_for_users(data, np.array([0]))
    for name, sig in make_signals(SETTINGS).items():
        s = sig.fit(data, None).score(ctx)
        assert s.shape == (1, data.n_items) and s.dtype == np.float32 and not s.any(), name
    assert TransitionSignal.build(SETTINGS).fit(data).flows().empty


# ---- content ----------------------------------------------------------------------------------


def test_content_ranks_the_nearest_embedding_first(shop, fitted, embeddings):
    _, _, data = shop
    content = fitted["content"]
    ctx = _ctx(data, [[("p1", "purchase")], [("p1", "purchase"), ("g1", "view")]], embeddings)
    s = content.score(ctx)
    assert _rank_first(s[0], data, ["p1"]) == "x1"  # a new item, no events: carried by its text
    assert s[0, _pos(data, "b8")] == 0  # no embedding, no score
    ev = content.evidence(ctx, 1, np.array([_pos(data, "x1")]))[0]
    assert ev[0][0] == _pos(data, "p1") and ev[0][1] > 0.5


def test_content_profile_from_text_with_empty_history(shop, fitted, embeddings):
    _, _, data = shop
    content = fitted["content"]
    x1 = _pos(data, "x1")
    ctx = Context(X=sp.csr_matrix((1, data.n_items), dtype=np.float32), profile=embeddings[[x1]])
    s = content.score(ctx)[0]
    assert int(np.argmax(s)) == x1 and s[x1] == pytest.approx(1.0, abs=1e-5)
    assert content.evidence(ctx, 0, np.array([x1])) == [[]]
    # the same through make_context's typed-text path
    ctx2 = _ctx(data, [[]], embeddings, text=embeddings[[x1]])
    assert int(np.argmax(content.score(ctx2)[0])) == x1
    # no embeddings at all: zeros, not an error
    bare = ContentSignal.build(SETTINGS).fit(data, None)
    assert not bare.score(ctx2).any()


# ---- transition -------------------------------------------------------------------------------


def test_transition_finds_the_planted_flow(shop, fitted):
    _, _, data = shop
    tr = fitted["transition"]
    names = list(tr.cat_names_)
    a, b = names.index("Garden > Tools"), names.index("Garden > Seeds")
    assert tr.users_pair_[a, b] == 12 and tr.users_from_[a, b] == 12
    assert tr.p_[a, b] == pytest.approx(1.0)
    assert tr.lift_[a, b] == pytest.approx(26 / 12)  # P(B|A) = 1, P(B) = 12 of 26 users
    assert tr.users_pair_[b, a] == 0 and tr.strength_[b, a] == 0
    assert np.allclose(np.diag(tr.strength_), 0)
    flows = tr.flows(min_users=5)
    assert list(flows.columns) == ["from", "to", "users_from", "users_both", "p", "lift", "strength"]
    assert flows["strength"].is_monotonic_decreasing
    row = flows[(flows["from"] == "Garden > Tools") & (flows["to"] == "Garden > Seeds")].iloc[0]
    assert row["users_both"] == 12 and row["lift"] > 1 and row["strength"] > 0
    assert (flows["users_both"] >= 5).all()


def test_transition_pair_counts_match_a_brute_force(shop):
    _, _, data = shop
    n = len(data.cat_flow_names)
    fu, fc, ft = first_touch(data.events, data.cat_flow, n)
    want = np.zeros((n, n), dtype=np.int64)
    for u in np.unique(fu):
        m = fu == u
        for ca, ta in zip(fc[m], ft[m]):
            for cb, tb in zip(fc[m], ft[m]):
                want[ca, cb] += ta < tb
    assert np.array_equal(pair_counts(fu, fc, ft, n), want)
    assert np.array_equal(pair_counts(fu, fc, ft, n, chunk=10), want)  # many small user chunks


def test_transition_scores_the_target_category_and_reacts_to_new_events(shop, fitted):
    _, _, data = shop
    tr = fitted["transition"]
    seeds, books = [_pos(data, "d1"), _pos(data, "d2")], [_pos(data, "b1"), _pos(data, "b5")]
    before = _ctx(data, [[("b2", "view")]])
    s0 = tr.score(before)[0]
    assert s0[seeds].max() == 0  # books never lead to seeds
    after = _ctx(data, [[("b2", "view"), ("g1", "view")]])  # the same user, now with a tool event
    s1 = tr.score(after)[0]
    assert s1[seeds].min() > 0 and s1[seeds].min() > s1[books].max()
    # the category's flow, shared out by each item's standing in its category (d1: 12 buyers, d2: 6)
    assert s1[seeds[0]] > s1[seeds[1]]
    assert np.allclose(s1, tr.category_scores(after)[0][data.cat_flow] * tr.within_, rtol=1e-5)
    flow = tr.evidence(after, 0, np.array(seeds[:1]))[0].flow  # the category flow is the transition's evidence
    assert flow.source == "Garden > Tools" and flow.p == pytest.approx(1.0) and flow.lift > 1
    assert tr.evidence(before, 0, np.array(seeds[:1]))[0].flow is None
    assert tr.evidence(after, 0, np.array(seeds)) == [[], []]  # and no history items


# ---- popularity -------------------------------------------------------------------------------


def test_popularity_decays_with_age():
    items = _items()
    now = pd.Timestamp("2024-06-01")
    rows = [(f"u{k}", "b1", "purchase", now - pd.Timedelta(days=28)) for k in range(3)]
    rows += [(f"u{k}", "b2", "purchase", now) for k in range(3)]
    rows += [(f"u{k}", "pop", "purchase", now) for k in range(6)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    settings = SETTINGS.replace({"behaviour.popularity_half_life_days": 14.0})
    data = build_interactions(items, events, settings, now=now)
    pop = PopularitySignal().fit(data)
    b1, b2, p = _pos(data, "b1"), _pos(data, "b2"), _pos(data, "pop")
    assert pop.popularity_[b1] / pop.popularity_[b2] == pytest.approx(0.25)  # two half-lives old
    s = pop.score(context_for_users(data, np.arange(3)))
    assert s.dtype == np.float32 and s.flags.writeable and s.shape == (3, data.n_items)
    assert (s[:, p] > s[:, b2]).all() and (s[:, b2] > s[:, b1]).all() and s[0, _pos(data, "x1")] == 0
    assert np.array_equal(s[0], s[2])


def test_signal_fit_returns_self(shop, embeddings):
    _, _, data = shop
    for cls in (CoocSignal, GraphSignal, TransitionSignal, PopularitySignal, ContentSignal):
        sig = cls.build(SETTINGS)
        assert sig.fit(data, embeddings) is sig


def test_fitted_signals_saved_as_arrays_and_json_score_the_same(shop, fitted, embeddings, tmp_path):
    from crossrec_core.modelio import State

    _, _, data = shop
    ctx = _ctx(data, [[("p1", "purchase"), ("g1", "view")], []], embeddings)
    for name, sig in fitted.items():
        state = State()
        sig.to_state(state.sub(name))
        state.save(tmp_path / name, {})
        _, loaded = State.load(tmp_path / name)
        back = type(sig).from_state(loaded.sub(name), Settings())  # the file's parameters, not the settings'
        assert back.get_params() == sig.get_params(), name
        assert np.array_equal(back.score(ctx), sig.score(ctx)), name
