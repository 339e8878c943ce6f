"""Training at scale: time and peak memory per step (recorded in the run, printed by the CLI), and where ALS fits."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crossrec_core.config import Settings
from crossrec_core.errors import CrossRecError
from crossrec_core.resources import StepLog, peak_rss, step, steps_table
from crossrec_core.signals.als import ALSSignal, als_device
from crossrec_core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_peak_rss_sees_a_step_that_allocates_and_frees():
    with peak_rss() as mem:
        block = np.ones(40_000_000, dtype=np.float32)  # 153 MB, held for a few samples, then freed
        time.sleep(0.15)
        del block
    assert 120 < mem["mb"] < 400
    assert mem["peak_mb"] >= mem["start_mb"] + mem["mb"] - 1


def test_steps_nest_and_merge_by_name():
    log = StepLog()
    with step("outside any log"):  # no active log: nothing recorded, nothing fails
        pass
    with log.active():
        with step("fit"):
            for _ in range(3):
                with step("signal: bought together"):
                    time.sleep(0.01)
            with step("signal: taste match"):
                pass
        with step("save"):
            pass
    steps = log.to_list()
    assert [s["step"] for s in steps] == ["fit", "save"]
    parts = steps[0]["parts"]
    assert [(p["step"], p["times"]) for p in parts] == [("signal: bought together", 3), ("signal: taste match", 1)]
    assert parts[0]["seconds"] >= 0.03 and steps[0]["seconds"] >= parts[0]["seconds"]
    assert all(s["peak_rss_mb"] > 0 for s in steps)
    table = steps_table(steps)
    assert "  signal: bought together (×3)" in table and table.count(" GB") == 4
    assert "signal" not in steps_table(steps, expand={"save"}) and steps_table(steps, expand=set()).count(" GB") == 2


def test_a_failing_step_is_still_recorded():
    log = StepLog()
    with log.active(), pytest.raises(ValueError):
        with step("load"):
            raise ValueError("bad file")
    assert log.to_list()[0]["step"] == "load"


def test_als_device_choice():
    assert als_device("auto", has_cuda=False) == "cpu"
    assert als_device("auto", has_cuda=True) == "cuda"
    assert als_device("cpu", has_cuda=True) == "cpu"
    assert als_device("cuda", has_cuda=True) == "cuda"
    with pytest.raises(CrossRecError, match="no CUDA"):
        als_device("cuda", has_cuda=False)
    with pytest.raises(CrossRecError, match="auto, cpu, cuda"):
        als_device("tpu", has_cuda=False)


def _interactions(db: Path):
    from crossrec_core.data import build_interactions

    with Store(db, read_only=True) as store:
        items = store.items().sort_values("item_id").reset_index(drop=True)
        return build_interactions(items, store.events(), Settings())


def test_als_fits_on_the_device_asked(small_shop_db):
    import implicit.gpu

    data = _interactions(small_shop_db)
    if implicit.gpu.HAS_CUDA:  # pragma: no cover - a CUDA machine: auto takes the GPU, factors come back as numpy
        sig = ALSSignal(device="auto").fit(data)
        assert sig.device_ == "cuda" and isinstance(sig.item_factors_, np.ndarray)
        return
    sig = ALSSignal(device="auto", iterations=3).fit(data)
    assert sig.device_ == "cpu" and sig.item_factors_.shape == (data.n_items, 64) and sig.fitted_
    with pytest.raises(CrossRecError, match="als device is 'cuda' but implicit has no CUDA"):
        ALSSignal(device="cuda").fit(data)


def test_train_records_each_step_and_the_cli_prints_them(small_shop_db, tmp_path):
    path = tmp_path / "shop.duckdb"
    path.write_bytes(Path(small_shop_db).read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "crossrec_core.cli", "train", "--db", str(path), "--name", "steps",
                          "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    with Store(path, read_only=True) as store:
        run = store.run("steps")
    steps = run["metrics"]["steps"]
    names = [s["step"] for s in steps]
    assert names[:2] == ["load the data", "split by time"] and "learn the weights" in names
    assert names[-3:] == ["fit for serving", "save the model", "compute the item map"]
    assert "evaluate on the held-out period" in names
    serving = steps[names.index("fit for serving")]
    assert {p["step"] for p in serving["parts"]} >= {"signal: bought together", "signal: taste match"}
    assert all(s["seconds"] >= 0 and s["peak_rss_mb"] > 50 for s in steps)
    assert sum(s["seconds"] for s in steps) <= run["duration_s"] + max(s["seconds"] for s in steps) + 1
    assert run["metrics"]["als_device"] == "cpu"
    assert "time and peak memory per step" in out.stdout
    assert "  signal: bought together" in out.stdout and "fit for serving" in out.stdout
