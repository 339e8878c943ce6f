"""Issue 12: nothing lost, no one in. One test (or a tight group) per defect found by adversarial testing,
each on real DuckDB files and real CSVs in tmp_path; the test names state the reproduction."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core.cli import main
from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.store import Store
from crossrec_core.train import load_run, train

PACKAGE = Path(__file__).resolve().parents[1] / "crossrec_core"


@pytest.fixture(scope="module")
def tiny_shop(tmp_path_factory) -> Path:
    """A small generated shop (no item texts encoded) with one run 'r' trained with default weights."""
    from crossrec_core.demo import generate

    path = tmp_path_factory.mktemp("tiny") / "shop.duckdb"
    shop = generate(3, n_items=150, n_users=80, days=30)
    with Store(path) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users)
        train(store, Settings(db_path=path), name="r", learn=False, baselines=False)
    return path


@pytest.fixture
def shop(tiny_shop, tmp_path) -> Path:
    """A private copy of the tiny shop (database and artefacts) in this test's own folder."""
    path = tmp_path / "A" / "shop.duckdb"
    path.parent.mkdir()
    shutil.copy(tiny_shop, path)
    shutil.copytree(str(tiny_shop) + ".artefacts", str(path) + ".artefacts")
    return path


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) of `crossrec` run in this process."""

    def _run(*args: str) -> tuple[int, str, str]:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


def _run_dir(path: Path, name: str = "r") -> Path:
    with Store(path, read_only=True) as store:
        return store.artefact_dir / store.run(name)["artefact_path"]


def _a_user(path: Path) -> str:
    with Store(path, read_only=True) as store:
        return store.user_summary().query("purchases > 1")["user_id"].iloc[0]


class _Plant:
    """Unpickling this creates the marker file: what a planted model file would do if it were unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# ---- 2. runs record their model folder relative to the working directory --------------------------


def test_relative_db_from_another_cwd_serves_its_own_model_not_a_same_named_folder_there(shop, tmp_path, cli,
                                                                                          monkeypatch):
    user = _a_user(shop)
    monkeypatch.chdir(shop.parent)
    rc, own, err = cli("recommend", "--db", "shop.duckdb", "--user", user, "--k", "5", "--json", "--quiet")
    assert rc == 0, err
    # elsewhere: a folder of the same name holding another shop's model and a planted model.pkl
    elsewhere = tmp_path / "B"
    planted = elsewhere / "shop.duckdb.artefacts" / _run_dir(shop).name
    planted.mkdir(parents=True)
    marker = tmp_path / "pwned"
    (planted / "model.pkl").write_bytes(pickle.dumps(_Plant(marker)))
    monkeypatch.chdir(elsewhere)
    rc, again, err = cli("recommend", "--db", "../A/shop.duckdb", "--user", user, "--k", "5", "--json", "--quiet")
    assert rc == 0, err
    assert json.loads(again) == json.loads(own)
    assert not marker.exists()
    with Store(shop, read_only=True) as store:
        assert store.run("r")["artefact_path"] == _run_dir(shop).name  # an id, relative to the artefacts folder
        assert "/" not in store.run("r")["artefact_path"]


@pytest.mark.parametrize("where", ["model.pkl", "model.npz"])
def test_planted_malicious_model_file_raises_a_clear_error_and_never_runs(shop, tmp_path, where):
    folder = _run_dir(shop)
    marker = tmp_path / "pwned"
    if where == "model.pkl":  # an old-format run folder: model.pkl only
        for p in folder.iterdir():
            p.unlink()
        (folder / "model.pkl").write_bytes(pickle.dumps(_Plant(marker)))
        expected = r"old model\.pkl.*retrain with `crossrec train`"
    else:  # an object array inside the npz would be unpickled by np.load(allow_pickle=True)
        with open(folder / "model.npz", "wb") as f:
            np.savez(f, evil=np.array([_Plant(marker)], dtype=object))
        expected = r"cannot be read.*retrain with `crossrec train`"
    with Store(shop) as store, pytest.raises(CrossRecError, match=expected):
        load_run(store, "r")
    assert not marker.exists()


def test_a_model_folder_copied_from_another_database_is_refused(shop, tmp_path):
    from crossrec_core.demo import generate

    other = tmp_path / "other.duckdb"
    same_shop = generate(3, n_items=150, n_users=80, days=30)  # the same data, but another database
    with Store(other) as store:
        store.ingest_frames(items=same_shop.items, events=same_shop.events, users=same_shop.users)
        train(store, Settings(db_path=other), name="r", learn=False, baselines=False)
    mine = _run_dir(shop)
    shutil.rmtree(mine)
    shutil.copytree(_run_dir(other), mine)
    with Store(shop) as store, pytest.raises(CrossRecError, match="belongs to another database or run"):
        load_run(store, "r")


def test_the_package_never_uses_pickle():
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"pickle|joblib|dill|marshal|shelve", line) and "allow_pickle=False" not in line:
                hits.append(f"{path.name}:{n}: {line.strip()}")
    assert hits == []


# ---- 3. run names are used as paths ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "/an/absolute/path", "a/b/../c", ".."])
def test_run_name_with_dotdot_or_an_absolute_path_is_a_label_and_writes_only_inside_artefacts(shop, tmp_path,
                                                                                              name, cli):
    user = _a_user(shop)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    rc, out, err = cli("train", "--db", shop, "--name", name, "--no-learn", "--quiet")
    assert rc == 0, err
    added = sorted(set(str(p) for p in tmp_path.rglob("*")) - set(before))
    artefacts = str(shop) + ".artefacts" + os.sep
    assert added and all(p.startswith(artefacts) or p.startswith(str(shop)) for p in added), added
    assert not Path("/an/absolute/path").exists()
    with Store(shop) as store:
        assert store.run()["name"] == name
        assert len(load_run(store, name).recommend(user, k=3)) == 3
    rc, out, err = cli("recommend", "--db", shop, "--run", name, "--user", user, "--k", "2", "--quiet")
    assert rc == 0, err


@pytest.mark.parametrize("name, message", [
    ("bad\nname", "run name contains the control character U+000A"),
    ("tab\there", "run name contains the control character U+0009"),
    ("x" * 101, "run name has 101 characters, more than the limit of 100"),
])
def test_run_name_with_control_characters_or_over_100_characters_is_rejected_in_one_line(shop, name, message, cli):
    rc, out, err = cli("train", "--db", shop, "--name", name, "--no-learn", "--quiet")
    assert rc == 2
    assert err.startswith(f"crossrec train: {message}")
    assert len(err.strip().splitlines()) == 1
    with Store(shop, read_only=True) as store:
        assert store.run_names() == ["r"]
