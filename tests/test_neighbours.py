"""The neighbours signal (shopper similarity, TIFU-KNN style): decayed basket vectors, sparse top-k cosine
neighbours, the alpha mix, two-stage serving against its dense scores, evidence, saving, cold shoppers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.data import build_interactions
from crossrec_core.modelio import State
from crossrec_core.profiles import Context
from crossrec_core.signals import NeighbourSignal, Words, registry
from crossrec_core.split import make_split, prepare_events, time_split
from crossrec_core.store import Store
from crossrec_core.topk import top_k


@pytest.fixture(scope="module")
def split(small_shop_db):
    with Store(small_shop_db, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = prepare_events(store.events())
    settings = Settings(db_path=small_shop_db)
    return make_split(items, events, settings, cut=time_split(events, settings))


@pytest.fixture(scope="module")
def fitted(split):
    return NeighbourSignal(k=15).fit(split.train)


def _batch(split, n: int = 40) -> Context:
    """The split's first shoppers with history, one shopper the fit never saw and one without rows."""
    users = list(split.users("all")[:n])
    ctx = split.context(users)
    ctx.user_rows = np.r_[ctx.user_rows[:-2], -1, ctx.user_rows[-1]]
    return ctx


def _tiny() -> tuple:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "title": list("ABCD"), "category": ["X"] * 4,
                          "cat_top": ["X"] * 4, "cat_sub": ["X"] * 4})
    rows = [("u1", "a", "2024-01-01 10:00"), ("u1", "a", "2024-01-01 11:00"), ("u1", "b", "2024-01-03 09:00"),
            ("u2", "a", "2024-01-02 10:00"), ("u2", "c", "2024-01-02 12:00"),
            ("u3", "d", "2024-01-02 10:00")]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"]).assign(event_type="purchase")
    events["ts"] = pd.to_datetime(events["ts"])
    return build_interactions(items, events, Settings())


def test_history_vectors_are_decayed_means_of_day_baskets_and_neighbours_share_an_item():
    data = _tiny()
    sig = NeighbourSignal(k=5, alpha=0.6, decay=0.5).fit(data)
    V = sig.vectors_.toarray()
    u1, u2, u3 = data.user_rows(["u1", "u2", "u3"])
    a, b, c, d = data.item_rows(["a", "b", "c", "d"])
    w = Settings().behaviour.event_weights["purchase"]
    # u1: day 1 {a} (twice in one basket: counted once), day 3 {b}; the older basket weighs 0.5 of the newer
    np.testing.assert_allclose(V[u1, [a, b, c, d]], w * np.array([0.5 / 1.5, 1 / 1.5, 0, 0]), rtol=1e-6)
    np.testing.assert_allclose(V[u2, [a, b, c, d]], w * np.array([1, 0, 1, 0]), rtol=1e-6)
    # u1 and u2 share item a; u3 shares nothing: no neighbour at all, and nobody's neighbour
    assert sig.neighbours_[u1, 0] == u2 and sig.neighbours_[u2, 0] == u1
    assert (sig.neighbours_[u3] == -1).all() and (sig.neighbours_[:, 0] != u3).all()
    cos = V[u1] @ V[u2] / np.linalg.norm(V[u1]) / np.linalg.norm(V[u2])
    assert sig.similarity_[u1, 0] == pytest.approx(cos, rel=1e-5)
    # score = 0.6 · own + 0.4 · mean of the neighbours' vectors
    ctx = Context(X=data.X[[u1, u3]], user_rows=np.array([u1, u3]))
    np.testing.assert_allclose(sig.score(ctx)[0], 0.6 * V[u1] + 0.4 * V[u2], rtol=1e-6)
    np.testing.assert_allclose(sig.score(ctx)[1], 0.6 * V[u3], rtol=1e-6)


def test_neighbours_are_the_top_k_cosines_never_oneself(split, fitted):
    V = fitted.vectors_.toarray().astype(np.float64)
    norms = np.linalg.norm(V, axis=1)
    U = np.divide(V, norms[:, None], out=np.zeros_like(V), where=norms[:, None] > 0)
    cos = U @ U.T
    np.fill_diagonal(cos, 0)
    for u in range(0, len(V), 37):
        got = fitted.neighbours_[u][fitted.neighbours_[u] >= 0]
        assert u not in got
        want = np.sort(cos[u])[::-1][:len(got)]
        np.testing.assert_allclose(np.sort(cos[u, got])[::-1], want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fitted.similarity_[u][:len(got)], cos[u, got], rtol=1e-4, atol=1e-6)
        assert (np.diff(fitted.similarity_[u][:len(got)]) <= 0).all()
    assert (fitted.neighbours_ >= 0).sum(axis=1).mean() > 10


@pytest.mark.parametrize("n", [1, 25, 10_000])
def test_retrieval_is_a_prefix_of_the_dense_top_n_and_score_at_equals_the_dense_scores(split, fitted, n):
    ctx = _batch(split)
    dense = fitted.score(ctx)
    assert dense.dtype == np.float32 and (dense >= 0).all()
    allowed = ~split.exclusions(list(split.users("all")[:40]))
    want, _ = top_k(dense, allowed, min(n, dense.shape[1]))
    got = fitted.retrieve(ctx, allowed, min(n, dense.shape[1]))
    for r in range(ctx.n):
        m = int((got[r] >= 0).sum())
        np.testing.assert_array_equal(got[r][:m], want[r][:m])
        assert m == min(n, int(((dense[r] > 0) & allowed[r]).sum()))  # stops only where the scores reach 0
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, ctx.n, 500), rng.integers(0, dense.shape[1], 500)
    np.testing.assert_array_equal(fitted.score_at(ctx, rows, cols), dense[rows, cols])
    lo, hi = fitted.row_range(ctx)
    np.testing.assert_array_equal(hi, dense.max(axis=1))
    np.testing.assert_array_equal(lo, dense.min(axis=1))


def test_a_cold_or_typed_shopper_has_a_zero_row(split, fitted):
    ctx = _batch(split)
    assert (fitted.score(ctx)[-2] == 0).all()  # a shopper the fit never saw
    assert (fitted.retrieve(ctx, np.ones((ctx.n, split.train.n_items), bool), 20)[-2] == -1).all()
    typed = Context(X=ctx.X[:3], profile=None, user_rows=None)  # a typed profile or a cart: no fitted shopper
    assert not fitted.score(typed).any()
    assert fitted.evidence_batch(typed, np.array([0, 1]), np.array([3, 4])).peers.tolist() == [[0, 0], [0, 0]]


def test_evidence_counts_the_neighbours_who_bought_the_item_in_plain_words(split, fitted):
    ctx = _batch(split)
    picks = fitted.retrieve(ctx, np.ones((ctx.n, split.train.n_items), bool), 3)
    rows = np.repeat(np.arange(5), 3)
    items = picks[:5].ravel()
    ev = fitted.evidence_batch(ctx, rows, items)
    owned = split.train.X.copy()
    buyers = (split.train.events.loc[split.train.events["event_type"].isin(["cart", "purchase"])])
    for p, (r, i) in enumerate(zip(rows.tolist(), items.tolist())):
        nbr = fitted.neighbours_[ctx.user_rows[r]]
        nbr = nbr[nbr >= 0]
        want = buyers.loc[buyers["u"].isin(nbr) & (buyers["i"] == i), "u"].nunique()
        assert tuple(ev.peers[p]) == (want, len(nbr))
    assert ev.peers[:, 0].sum() > 0 and owned.nnz
    words = Words({"item_id": split.train.item_ids, "title": split.train.item_ids,
                   "cat_top": split.train.item_ids})
    said = fitted.phrases(ev, items, words)
    b, n = ev.peers[0]
    assert said[0] == f"bought by {b} of the {n} shoppers who shop most like this one"
    rec = ev.at(0).records(words)
    assert rec == [{"similar_shoppers_who_bought": int(b), "similar_shoppers": int(n)}]


def test_saved_as_arrays_and_loaded_it_scores_the_same(split, fitted, tmp_path):
    state = State()
    fitted.to_state(state.sub("neighbours"))
    state.save(tmp_path / "m", {})
    assert not list(tmp_path.rglob("*.pkl"))
    _, loaded = State.load(tmp_path / "m")
    back = NeighbourSignal.from_state(loaded.sub("neighbours"), split.settings)
    assert (back.k, back.alpha, back.decay, back.max_item_users) == (15, 0.7, 0.9, 5000)
    ctx = _batch(split)
    np.testing.assert_array_equal(back.score(ctx), fitted.score(ctx))
    np.testing.assert_array_equal(back.neighbours_, fitted.neighbours_)


@pytest.mark.parametrize("bad, message", [({"k": 0}, "k must be"), ({"alpha": 1.5}, "alpha must"),
                                          ({"decay": 0}, "decay must")])
def test_bad_options_are_refused_in_one_line(split, bad, message):
    with pytest.raises(ValueError, match=message):
        NeighbourSignal(**bad).fit(split.train)


def test_it_is_registered_and_declares_itself():
    assert registry.classes()["neighbours"] is NeighbourSignal
    assert registry.label("neighbours") == "shoppers like you"
    assert registry.weights_for(Settings())["neighbours"] == NeighbourSignal.default_weight


def test_items_nearly_everyone_holds_are_left_out_of_the_likeness():
    data = _tiny()
    everyone = NeighbourSignal(k=5, max_item_users=1).fit(data)  # item a (two users) no longer makes neighbours
    assert (everyone.neighbours_ == -1).all()
    assert NeighbourSignal(k=5, max_item_users=2).fit(data).neighbours_[data.user_rows(["u1"])[0], 0] >= 0


def test_served_lists_use_it_with_its_reason_and_evidence(small_shop_db):
    """Serving reads the shopper's fitted row: a list led by this signal says how many similar shoppers bought
    each item, and its parts still add up to the score."""
    from crossrec_core.recommender import Recommender

    with Store(small_shop_db, read_only=True) as store:
        weights = {**{s: 0.05 for s in registry.names()}, "neighbours": 5.0}
        rec = Recommender(Settings(db_path=small_shop_db), weights).fit(store)
        user = store.user_summary().sort_values("purchases", ascending=False)["user_id"].iloc[0]
        df = rec.recommend(user, k=10, explain=True)
    assert (df["neighbours"] > 0).all()
    assert df["reason"].str.contains(r"ought by \d+ of the 100 shoppers who shop most like this one").all()
    peers = [ev["neighbours"][0] for ev in df["evidence"]]
    assert all(p["similar_shoppers"] == 100 and 0 < p["similar_shoppers_who_bought"] <= 100 for p in peers)
    parts = [*registry.names(), "context", "rules"]
    np.testing.assert_allclose(df[parts].sum(axis=1) + df["base"], df["score"], atol=1e-5)
