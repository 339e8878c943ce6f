"""Training runs: recorded with weights and metrics, served, atomic under SIGKILL."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.signals.registry import names
from crossrec_core.store import Store
from crossrec_core.train import compare_runs, serving_recommender, train

SIGNALS = names()

MODELS = {"crossrec", "popularity", "itemknn", "als", "ease", "rp3beta", "content"}
METRICS = {"recall", "ndcg", "hit_rate", "mrr", "auc", "coverage", "diversity", "novelty", "cross_recall",
           "cross_hit_rate", "users"}


@pytest.fixture(scope="module")
def trained_db(small_shop_db, tmp_path_factory):
    """A copy of the small shop with one learned run and one with given weights."""
    path = tmp_path_factory.mktemp("train") / "shop.duckdb"
    path.write_bytes(Path(small_shop_db).read_bytes())
    with Store(path) as store:
        train(store, Settings(db_path=path), name="first")
        train(store, Settings(db_path=path), name="given", weights={s: 1.0 for s in SIGNALS},
              promote=True)
    return path


def test_run_is_recorded_with_weights_metrics_and_artefact(trained_db):
    with Store(trained_db, read_only=True) as store:
        runs = store.runs()
        first = store.run("first")
        serving = store.run()
    assert list(runs["name"]) == ["given", "first"]
    assert serving["name"] == "given"
    assert abs(sum(first["weights"].values()) - 1.0) < 1e-3
    assert first["metrics"]["weights_source"].startswith("learned")
    slices = first["metrics"]["slices"]
    assert set(slices) == {"all", "cold_users", "cold_items"}
    assert set(slices["all"]) == MODELS
    assert set(slices["all"]["crossrec"]) == METRICS
    assert slices["all"]["crossrec"]["users"] > 50
    folder = Path(str(trained_db) + ".artefacts", first["artefact_path"])
    assert sorted(p.name for p in folder.iterdir()) == ["data.events.parquet", "items.parquet", "model.json", "model.npz"]
    given = store_weights(trained_db, "given")
    assert given == {s: 1.0 for s in SIGNALS}


def store_weights(path, name):
    with Store(path, read_only=True) as store:
        return store.run(name)["weights"]


def test_baselines_are_sane_on_the_demo(trained_db):
    with Store(trained_db, read_only=True) as store:
        m = store.run("first")["metrics"]["slices"]["all"]
    assert m["popularity"]["recall"] < m["als"]["recall"]
    assert m["popularity"]["recall"] < m["rp3beta"]["recall"]
    for model, values in m.items():
        assert 0 <= values["recall"] <= 1 and 0 <= values["ndcg"] <= 1, model
        assert 0 <= values["coverage"] <= 1


def test_serving_recommender_and_duplicate_name(trained_db):
    with Store(trained_db) as store:
        rec = serving_recommender(store)
        assert rec.weights == {s: 1.0 for s in SIGNALS}
        before = store.runs()
        with pytest.raises(CrossRecError, match="a run named 'first' already exists"):
            train(store, Settings(db_path=trained_db), name="first")
        assert len(store.runs()) == len(before)
        cmp = compare_runs(store, "first", "given", n_users=50)
    assert cmp["users_compared"] == 50 and 0 <= cmp["lists_changed"] <= 50
    assert set(cmp["weights"]) == {"a", "b"}


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kill_at", ["fitting signals", "recording the run"])
def test_killed_training_leaves_runs_and_serving_artefacts_as_before(trained_db, tmp_path, kill_at):
    path = tmp_path / "kill.duckdb"
    path.write_bytes(Path(trained_db).read_bytes())
    dst_art = Path(str(path) + ".artefacts")
    shutil.copytree(str(trained_db) + ".artefacts", dst_art)
    with Store(path) as store:
        runs_before = store.runs().drop(columns=["created_at"]).to_json()
        given = dst_art / store.run("given")["artefact_path"] / "model.npz"
    model_before = _digest(given)
    script = textwrap.dedent(f"""
        import os, signal
        from crossrec_core.config import Settings
        from crossrec_core.store import Store
        from crossrec_core.train import train
        def progress(frac, msg):
            if {kill_at!r} in msg:
                os.kill(os.getpid(), signal.SIGKILL)
        with Store({str(path)!r}) as store:
            train(store, Settings(db_path={str(path)!r}), name="doomed", progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr
    with Store(path) as store:
        assert store.runs().drop(columns=["created_at"]).to_json() == runs_before
        assert store.run()["name"] == "given"
        rec = serving_recommender(store)
        assert rec.weights == {s: 1.0 for s in SIGNALS}
    assert _digest(given) == model_before
    if kill_at != "recording the run":
        assert sorted(p.name for p in dst_art.iterdir()) == sorted(json.loads(runs_before)["artefact_path"].values())


def test_a_moved_database_keeps_its_runs(trained_db, tmp_path):
    """The .artefacts folder travels with the database file: runs load from the new place."""
    moved = tmp_path / "elsewhere" / "shop.duckdb"
    moved.parent.mkdir()
    shutil.copy(trained_db, moved)
    shutil.copytree(str(trained_db) + ".artefacts", str(moved) + ".artefacts")
    shutil.rmtree(str(trained_db) + ".artefacts.hidden", ignore_errors=True)
    os.rename(str(trained_db) + ".artefacts", str(trained_db) + ".artefacts.hidden")
    try:
        with Store(moved) as store:
            rec = serving_recommender(store)
            user = store.user_summary().query("events > 0")["user_id"].iloc[0]
            assert len(rec.recommend(user, k=5)) == 5
    finally:
        os.rename(str(trained_db) + ".artefacts.hidden", str(trained_db) + ".artefacts")


def test_a_model_from_another_version_asks_for_a_retrain(trained_db, tmp_path):
    from crossrec_core.recommender import Recommender

    with Store(trained_db, read_only=True) as store:
        src = Path(str(trained_db) + ".artefacts", store.run("first")["artefact_path"])
    old = tmp_path / "old"
    shutil.copytree(src, old)
    doc = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**doc, "format": -1}))
    with pytest.raises(CrossRecError, match="another version of CrossRec; retrain with `crossrec train`"):
        Recommender.load(old)
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / "model.npz").write_bytes((src / "model.npz").read_bytes()[:200])
    with pytest.raises(CrossRecError, match="cannot be read"):
        Recommender.load(broken)


def test_training_is_reproducible(trained_db, tmp_path):
    """Same data, same settings: the same learned weights and the same held-out figures."""
    copy = tmp_path / "again.duckdb"
    copy.write_bytes(Path(trained_db).read_bytes())
    tuned = Path(str(copy) + ".artefacts") / "encoders" / "tuned"  # a fine-tuned encoder beside the runs
    tuned.mkdir(parents=True)
    (tuned / "card.json").write_text("{}")
    stray = Path(str(copy) + ".artefacts") / "tmp-0badc0de"  # what a killed run leaves
    stray.mkdir()
    with Store(copy) as store:
        again = train(store, Settings(db_path=copy), name="again", baselines=False)
        first = store.run("first")
    assert (tuned / "card.json").exists() and not stray.exists()
    assert again["weights"] == first["weights"]
    assert again["metrics"]["cross_weights"] == first["metrics"]["cross_weights"]
    a, b = again["metrics"]["slices"]["all"]["crossrec"], first["metrics"]["slices"]["all"]["crossrec"]
    assert a["recall"] == pytest.approx(b["recall"], abs=1e-9) and a["ndcg"] == pytest.approx(b["ndcg"], abs=1e-9)
