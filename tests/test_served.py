"""Two-stage serving (crossrec_core.retrieval, crossrec_core.served): each signal's retrieval against its own
dense top-N, the served lists against the exhaustive one-stage lists when the candidates hold the catalogue,
the served list against the evaluated list, and exact explanations, with every rule kind."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from crossrec_core.evaluate import make_split, prepare_events, time_split
from crossrec_core.config import Settings
from crossrec_core.ranker import ItemStats, sub_codes
from crossrec_core.ranker_fit import fit_ranker
from crossrec_core.retrieval import candidate_recall, retrieve
from crossrec_core.rules import PairRule, Rule, Rules
from crossrec_core.scorer import FusedScorer
from crossrec_core.store import Store
from crossrec_core.topk import top_k

pytestmark = pytest.mark.slow
SETTINGS = {"signals.als.factors": 8, "signals.als.iterations": 5, "retrieval.candidates": 30}
MODES = ("all", "cross", "target")


@pytest.fixture(scope="module")
def fitted(small_shop_db):
    """(split, items, embeddings, a ranker forced on the shop's training windows) of the encoded small shop."""
    from crossrec_core.encoder import item_embeddings

    with Store(small_shop_db, read_only=True) as store:
        settings = Settings(db_path=small_shop_db).replace(SETTINGS)
        items = store.items().sort_values("item_id").reset_index(drop=True)
        from crossrec_core.encoder import Encoder
        emb = item_embeddings(store, Encoder.from_settings(settings).model_id, items, settings.encoder.max_text_chars)
        events = prepare_events(store.events())
    cut = time_split(events, settings)
    ranker, _ = fit_ranker(items, events[events["ts"] < cut], settings, emb, force=True)
    split = make_split(items, events, settings, cut=cut)
    return split, items, emb, ranker


def _rules(items) -> Rules:
    """One rule of every kind, on the shop's biggest top-level categories and two of its items."""
    tops = items["cat_top"].value_counts().index
    ids = items["item_id"].to_numpy()
    return Rules(pairs=[PairRule(source=str(tops[0]), target=str(tops[1]), multiplier=1.8)], managed=[
        Rule("boost", category=str(tops[2]), multiplier=0.3, name="damp"),
        Rule("boost", item=str(ids[40]), multiplier=4.0, name="lift"),
        Rule("exclude", item=str(ids[2]), name="gone"),
        Rule("bury", category=str(tops[3]), name="down"),
        Rule("pin", item=str(ids[9]), position=4, name="pin")])


def _scorer(fitted, *, rules=None, serving="retrieve", n_candidates=None, ranked=True, cross=True) -> FusedScorer:
    split, items, emb, ranker = fitted
    settings = split.settings.replace({"retrieval.serving": serving})
    if n_candidates is not None:
        settings = settings.replace({"retrieval.candidates": n_candidates})
    fused = FusedScorer(settings, rules=rules).fit(split.train, emb, items)
    if ranked:
        r = copy.copy(ranker)
        if n_candidates is not None:
            r.n_candidates = n_candidates
        if not cross:
            r.cross_ = None
        fused.attach_ranker(r, ItemStats.from_data(split.train, sub_codes(items)))
    return fused


def _batch(fitted, fused, mode):
    """A batch with and without history, its context and the mode's allowed items."""
    split, items = fitted[0], fitted[1]
    users = [*split.users("all")[:50], *split.users("cold_users")[:4]]
    ctx = split.context(users, fitted[2])
    category = str(items["cat_top"].value_counts().index[1]) if mode == "target" else None
    return ctx, fused.candidate_mask(ctx, mode, category, exclude=split.exclusions(users))


@pytest.mark.parametrize("mode", ["all", "cross"])
def test_each_signal_retrieves_a_prefix_of_its_dense_top_n_and_scores_pairs_as_its_dense_scores(fitted, mode):
    """What a signal retrieves is its dense top-N among the allowed items, best first, ties in item order,
    cut only where the rest score the row's floor (0 for a neighbour list, below the model for EASE)."""
    fused = _scorer(fitted, ranked=False)
    ctx, allowed = _batch(fitted, fused, mode)
    rng = np.random.default_rng(0)
    for name, sig in fused.signals_.items():
        dense = np.asarray(sig.score(ctx), np.float32)
        want, want_val = top_k(dense, allowed, 25)
        got = sig.retrieve(ctx, allowed, 25)
        assert got.shape == want.shape
        for r in range(ctx.n):
            n = int((got[r] >= 0).sum())
            assert (got[r][n:] < 0).all()
            np.testing.assert_array_equal(got[r][:n], want[r][:n], err_msg=f"{name} row {r}")
            rest = want_val[r][n:][np.isfinite(want_val[r][n:])]
            floor = dense[r][allowed[r]].min() if allowed[r].any() else 0.0
            assert (rest <= max(floor, 0.0)).all(), f"{name} row {r} left out an item above its floor"
        rows = rng.integers(0, ctx.n, 300)
        cols = rng.integers(0, dense.shape[1], 300)
        np.testing.assert_array_equal(sig.score_at(ctx, rows, cols), dense[rows, cols], err_msg=name)


def test_candidates_are_a_few_hundred_per_shopper_and_hold_most_of_the_served_positives(fitted):
    split, items, emb, _ = fitted
    fused = _scorer(fitted)
    ctx, allowed = _batch(fitted, fused, "all")
    found = retrieve(fused.signals_, fused.ranker_.signals_, ctx, allowed, 30)
    per_row = np.bincount(found.rows, minlength=ctx.n)
    warm = np.diff(ctx.X.indptr) > 0
    assert (per_row[warm] >= 30).all() and per_row.max() <= 30 * len(fused.ranker_.signals_)
    assert set(found.picked) == set(fused.ranker_.signals_)
    n_items = split.train.n_items
    listed = fused.rank(ctx, "all", allowed, 20)[0]
    r, c = np.nonzero(listed >= 0)
    recall = candidate_recall(found, r, listed[r, c], n_items)
    assert recall["all"] == 1.0 and 0 < recall["popularity"] <= 1.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ruled", [False, True])
@pytest.mark.parametrize("ranked", [True, False], ids=["ranker", "fusion"])
def test_retrieval_holding_the_catalogue_gives_exactly_the_exhaustive_lists(fitted, mode, ruled, ranked):
    """With a candidate count at least the catalogue, the two-stage lists are the one-stage lists: the same
    items, scores, contributions and base, rules of every kind and shoppers without history included."""
    rules = _rules(fitted[1]) if ruled else None
    n_items = fitted[0].train.n_items
    got = {}
    for serving in ("exhaustive", "retrieve"):
        # the general ranker in cross mode too: the cross-mode ranker serves two-stage only (`ranker_for`)
        fused = _scorer(fitted, rules=rules, serving=serving, n_candidates=n_items, ranked=ranked, cross=False)
        ctx, allowed = _batch(fitted, fused, mode)
        got[serving] = fused.rank(ctx, mode, allowed, 20)
    (a_idx, a_score, a_parts, a_base), (b_idx, b_score, b_parts, b_base) = got["exhaustive"], got["retrieve"]
    assert (a_idx >= 0).sum() > 0.8 * a_idx.size
    np.testing.assert_array_equal(b_idx, a_idx)
    np.testing.assert_allclose(b_score, a_score, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b_base, a_base, rtol=0, atol=1e-6)
    # a signal's float32 product over a block and over the catalogue may round apart in the last bit, which can
    # swap two equal-looking values' rank feature: the list and scores stay, a part may move by a little
    for s in set(a_parts) | set(b_parts):
        np.testing.assert_allclose(b_parts.get(s, 0 * a_base), a_parts.get(s, 0 * a_base), atol=1e-2, err_msg=s)
        assert np.mean(np.abs(b_parts.get(s, 0 * a_base) - a_parts.get(s, 0 * a_base)) > 1e-6) < 0.01, s


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ranked", [True, False], ids=["ranker", "fusion"])
def test_served_list_equals_the_evaluated_list_with_every_rule_kind(fitted, mode, ranked):
    """`held_out` (what evaluation, what-if and validation read) gives the very lists `rank` serves."""
    fused = _scorer(fitted, rules=_rules(fitted[1]), ranked=ranked)
    ctx, allowed = _batch(fitted, fused, mode)
    served, score, parts, base = fused.rank(ctx, mode, allowed, 20)
    rows = np.repeat(np.arange(ctx.n), 3)
    items = np.tile([0, 5, 9], ctx.n)
    evaluated, at = fused.held_out(ctx, ~allowed, 20, (rows, items), mode)
    np.testing.assert_array_equal(evaluated, served)
    assert np.isnan(at[~allowed[rows, items]]).all() and np.isfinite(at[allowed[rows, items]]).all()


@pytest.mark.parametrize("mode", MODES)
def test_contributions_add_up_to_the_score_for_every_listed_item(fitted, mode):
    fused = _scorer(fitted, rules=_rules(fitted[1]))
    ctx, allowed = _batch(fitted, fused, mode)
    idx, score, parts, base = fused.rank(ctx, mode, allowed, 20)
    listed = idx >= 0
    assert listed.sum() > 0.5 * idx.size
    np.testing.assert_allclose((sum(parts.values()) + base)[listed], score[listed], atol=1e-5)
    warm = np.diff(ctx.X.indptr) > 0
    assert (base[warm][listed[warm]] != 0).all()  # the booster's expected value on the ranked rows


@pytest.mark.parametrize("path,value", [("retrieval.serving", "fast"), ("ranker.kind", "lgbm"),
                                        ("ranker.exclude_seen", "all"), ("encoder.device", "gpu")])
def test_an_unknown_choice_in_the_settings_is_a_one_line_error(path, value):
    from crossrec_core.config import SECTIONS
    from crossrec_core.errors import CrossRecError

    section, field = path.split(".")
    with pytest.raises(CrossRecError, match=f"^setting {path} is '{value}', not one of"):
        Settings().replace({path: value})
    last = SECTIONS[section].CHOICES[field][-1]
    assert getattr(getattr(Settings().replace({path: last.upper()}), section), field) == last
