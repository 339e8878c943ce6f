"""The signal registry: one module plus one registry line add a signal that is scored, explained,
exported and drawable (labels and colours for the dashboard come from the registry too)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from crossrec_core.config import Settings
from crossrec_core.export import columns, export_bytes
from crossrec_core.recommender import Recommender
from crossrec_core.signals import Evidence, Signal, Words, registry
from crossrec_core.store import Store


class ToySignal(Signal):
    """A toy ninth signal: favours items late in the catalog; cites the shopper's first history item."""

    name = "toy"
    label = "toy pick"
    color = "#123456"
    default_weight = 0.5

    def __init__(self, *, slope: float = 1.0):  # its hyper-parameters and their defaults, declared here only
        self.slope = slope

    def fit(self, data, embeddings=None) -> "ToySignal":
        self.n_items_ = data.n_items
        return self

    def score(self, ctx) -> np.ndarray:
        row = float(self.slope) * np.arange(self.n_items_, dtype=np.float32) / self.n_items_
        return np.tile(row, (ctx.n, 1))

    def evidence(self, ctx, row, items) -> list[Evidence]:
        hist = ctx.X[row].indices
        return [Evidence([(int(hist[0]), 1.0)] if len(hist) else []) for _ in items]

    def phrase(self, ev: Evidence, item: int, words: Words) -> str:
        return f"a toy pick after {words.title(ev[0][0])}" if ev else "a toy pick"


@pytest.fixture
def toy():
    registry.register(ToySignal)  # the one registry line
    yield ToySignal
    registry.unregister("toy")


def test_the_registered_signals_describe_themselves():
    names = registry.names()
    assert names == ("cooc", "als", "graph", "ease", "neighbours", "content", "content_tuned", "transition",
                     "popularity")
    assert registry.contributions() == (*names, "context", "rules")
    assert registry.weights_for(Settings()) == registry.default_weights()
    assert registry.weights_for(Settings().replace({"ranker.weights.cooc": 0.5}))["cooc"] == 0.5
    assert registry.label("cooc") == "bought together" and registry.label("rules") == "merchandiser rules"
    assert len({registry.color(s) for s in registry.contributions()}) == len(registry.contributions())
    assert "transition=0.1" in registry.weights_help()


def test_a_toy_signal_is_scored_explained_exported_and_drawable(toy, small_shop_db):
    assert "toy" in registry.names() and registry.weights_for(Settings())["toy"] == 0.5
    assert registry.parse_weights("toy=2")["toy"] == 2.0
    assert registry.label("toy") == "toy pick" and registry.color("toy") == "#123456"
    assert "toy=0.5" in registry.weights_help()
    with Store(small_shop_db, read_only=True) as store:
        weights = {**registry.weights_for(Settings()), "toy": 5.0}  # large enough to lead every reason
        # its parameters come from the settings' `signals` section like any other signal's: nothing to add there
        settings = Settings(db_path=small_shop_db).replace({"signals.toy.slope": 2.0})
        rec = Recommender(settings, weights).fit(store)
        assert rec.scorer_.signals_["toy"].slope == 2.0
        user = store.user_summary().sort_values("purchases", ascending=False)["user_id"].iloc[0]
        df = rec.recommend(user, k=10, explain=True)
        assert (df["toy"] > 0).all()
        parts = [*registry.names(), "context", "rules"]
        np.testing.assert_allclose(df[parts].sum(axis=1) + df["base"], df["score"], atol=1e-5)
        assert df["reason"].str.startswith("A toy pick after ").all()
        assert all(ev["toy"] and ev["toy"][0]["share"] == 1.0 for ev in df["evidence"])
        csv = pd.read_csv(io.BytesIO(export_bytes(rec, [user], k=5)), encoding="utf-8-sig")
        assert list(csv.columns) == columns() and "toy" in csv.columns
        assert (csv["toy"] > 0).all()
