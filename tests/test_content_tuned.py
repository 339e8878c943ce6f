"""The tuned encoder as its own signal (content_tuned), beside the base text signal: absent without a tuned
encoder, fitted from the chosen encoder's vectors.npz when there is one, served two-stage like every signal,
explained, saved with the run, and chosen through the same `encoders use` path (the guard decides adoption)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crossrec_core.config import Settings
from crossrec_core.encoder import Encoder, item_embeddings
from crossrec_core.finetune import registry as encoders
from crossrec_core.modelio import State
from crossrec_core.profiles import Context
from crossrec_core.scorer import FusedScorer
from crossrec_core.signals import ContentTunedSignal, Words, registry
from crossrec_core.signals.content_tuned import save_vectors
from crossrec_core.split import make_split, prepare_events, time_split
from crossrec_core.store import Store
from crossrec_core.topk import top_k


@pytest.fixture(scope="module")
def shop(small_shop_db, tmp_path_factory):
    """(split, base embeddings, settings naming a tuned encoder whose vectors are a rotation of the base ones
    with the last 50 catalogue items missing)."""
    with Store(small_shop_db, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = prepare_events(store.events())
        settings = Settings(db_path=small_shop_db)
        emb = item_embeddings(store, Encoder.from_settings(settings).model_id, items, settings.encoder.max_text_chars)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(emb.shape[1], emb.shape[1])))
    tuned = (emb @ q + 0.3 * rng.normal(size=emb.shape)).astype(np.float32)
    tuned /= np.linalg.norm(tuned, axis=1, keepdims=True)
    folder = tmp_path_factory.mktemp("enc") / "t1"
    save_vectors(folder, items["item_id"][:-50], tuned[:-50])
    settings = settings.replace({"encoder.tuned_encoder": str(folder)})
    split = make_split(items, events, settings, cut=time_split(events, settings))
    return split, emb, settings, tuned


def test_without_a_tuned_encoder_the_signal_is_absent_and_the_base_text_signal_stays(shop):
    split, emb, tuned_settings, _ = shop
    plain = FusedScorer(tuned_settings.replace({"encoder.tuned_encoder": None})).fit(split.train, emb)
    assert "content_tuned" not in plain.signals_ and "content" in plain.signals_
    assert not ContentTunedSignal.available(tuned_settings.replace({"encoder.tuned_encoder": None}), emb)
    missing = tuned_settings.replace({"encoder.tuned_encoder": str(tuned_settings.db_path) + ".nowhere"})
    assert not ContentTunedSignal.available(missing, emb)  # a chosen folder without vectors: absent, no error
    both = FusedScorer(tuned_settings).fit(split.train, emb)
    assert {"content", "content_tuned"} <= set(both.signals_)
    np.testing.assert_array_equal(both.signals_["content"].embeddings_, emb)  # the base text signal is unchanged


def test_scores_are_the_history_in_the_tuned_space_and_items_without_a_vector_score_zero(shop):
    split, emb, settings, tuned = shop
    sig = ContentTunedSignal().fit(split.train)
    users = list(split.users("all")[:30])
    ctx = split.context(users, emb)
    dense = sig.score(ctx)
    T = tuned.copy()
    T[-50:] = 0
    P = np.asarray(ctx.X @ T)
    P /= np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(dense, P @ T.T, atol=1e-5)
    assert not dense[:, -50:].any() and np.abs(dense[:, :-50]).sum() > 0
    typed = Context(X=ctx.X[:2] * 0, profile=ctx.profile[:2])  # a typed profile: the base text signal's job
    assert not sig.score(typed).any()
    # two-stage serving: retrieval is the dense top-N, score_at and row_range read the dense scores
    allowed = ~split.exclusions(users)
    want, _ = top_k(dense, allowed, 25)
    got = sig.retrieve(ctx, allowed, 25)
    for r in range(ctx.n):
        m = int((got[r] >= 0).sum())
        np.testing.assert_array_equal(got[r][:m], want[r][:m])
    rows, cols = np.arange(ctx.n).repeat(7), np.tile(np.arange(0, 700, 100), ctx.n)
    np.testing.assert_array_equal(sig.score_at(ctx, rows, cols), dense[rows, cols])
    lo, hi = sig.row_range(ctx)
    np.testing.assert_array_equal(hi, dense.max(axis=1))


def test_evidence_names_similar_history_items_and_the_state_round_trips(shop, tmp_path):
    split, emb, settings, _ = shop
    sig = ContentTunedSignal().fit(split.train)
    ctx = split.context(list(split.users("all")[:5]), emb)
    items = sig.retrieve(ctx, np.ones((ctx.n, split.train.n_items), bool), 2)[:, 0]
    ev = sig.evidence_batch(ctx, np.arange(ctx.n), items)
    assert (ev.first >= 0).any()
    words = Words({"item_id": split.train.item_ids, "title": split.train.item_ids, "cat_top": split.train.item_ids})
    said = sig.phrases(ev, items, words)
    p = int(np.flatnonzero(ev.first >= 0)[0])
    assert said[p] == f"like {split.train.item_ids[ev.first[p]]} by the shop's tuned text model"
    state = State()
    sig.to_state(state.sub("content_tuned"))
    state.save(tmp_path / "m", {})
    _, loaded = State.load(tmp_path / "m")
    back = ContentTunedSignal.from_state(loaded.sub("content_tuned"), settings.replace({"encoder.tuned_encoder": None}))
    np.testing.assert_array_equal(back.score(ctx), sig.score(ctx))  # a saved run needs no encoder folder


def test_choosing_an_encoder_names_it_beside_the_base_model_and_records_it_portably(tmp_path):
    db = tmp_path / "shop.duckdb"
    settings = Settings(db_path=db)
    folder = encoders.encoders_root(settings) / "t1"
    folder.mkdir(parents=True)
    (folder / encoders.CARD).write_text(json.dumps({"name": "t1"}))
    assert encoders.with_chosen_encoder(settings).encoder.tuned_encoder is None
    encoders.use_encoder(settings, "t1")
    chosen = encoders.with_chosen_encoder(settings)
    assert chosen.encoder.model == settings.encoder.model and chosen.encoder.tuned_encoder == str(folder)
    recorded = chosen.to_dict()
    assert recorded["encoder"]["tuned_encoder"] == "{artefacts}/encoders/t1"
    moved = tmp_path / "elsewhere" / "shop.duckdb"
    back = Settings.from_dict(recorded).replace(db_path=moved).resolve_model()
    assert back.encoder.tuned_encoder == str(moved.with_name("shop.duckdb.artefacts") / "encoders" / "t1")
    encoders.use_encoder(settings, "base")
    assert encoders.with_chosen_encoder(settings).encoder.tuned_encoder is None


@pytest.mark.slow
def test_the_ranker_learns_from_both_text_signals(shop):
    from crossrec_core.ranker_fit import fit_ranker

    split, emb, settings, _ = shop
    with Store(settings.db_path, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        events = prepare_events(store.events())
    small = settings.replace({"signals.als.factors": 8, "signals.als.iterations": 5})
    ranker, _ = fit_ranker(items, events[events["ts"] < split.cut], small, emb, force=True)
    assert {"content", "content_tuned", "neighbours"} <= set(ranker.signals_)


def test_it_is_registered_after_the_base_text_signal():
    names = registry.names()
    assert names.index("content_tuned") == names.index("content") + 1
    assert registry.label("content_tuned") == "similar text (tuned)"
