"""The Ray engine equals the local engine, on a two-process Ray cluster this test starts itself."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec_core.store import Store

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head` plus a second worker process (one CPU each); skipped when Ray cannot start."""
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'crossrec[ray]')")
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="crx-ray-", dir="/tmp")  # Ray's socket paths must stay short
    # a private test cluster: no token (Ray 2.60 turns token auth on once ~/.ray/auth_token exists)
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # for this process's driver too
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("RAY_ADDRESS", None)
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--port", str(port), "--temp-dir", temp,
                             "--include-dashboard=false", "--object-store-memory", "150000000", *common],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    procs = [head]
    address = f"127.0.0.1:{port}"
    try:
        _wait_for(address, cpus=1, procs=procs)
        procs.append(subprocess.Popen([str(ray_bin), "start", "--address", address, "--object-store-memory",
                                       "100000000", *common], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True))
        _wait_for(address, cpus=2, procs=procs)
        yield address
    finally:
        for p in reversed(procs):  # `ray start --block` stops the processes it started when it ends
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _wait_for(address: str, *, cpus: int, procs: list, timeout: float = 120.0) -> None:
    """Poll the cluster (in a subprocess, so this process never holds a Ray connection) until it has `cpus`."""
    code = (f"import ray; ray.init(address={address!r}, log_to_driver=False); "
            f"print(int(ray.cluster_resources().get('CPU', 0))); ray.shutdown()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                pytest.skip(f"Ray could not start: {p.stderr.read().decode(errors='replace').strip()[-300:]}")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90,
                             env={**os.environ, "RAY_AUTH_MODE": "disabled"})
        if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout.strip()) >= cpus:
            return
        time.sleep(2)
    pytest.skip(f"Ray did not come up with {cpus} CPUs within {timeout:.0f} s")


def _shop(path: Path) -> Path:
    from crossrec_core.demo import generate

    shop = generate(seed=3, n_items=600, n_users=120, days=60)
    keep = shop.items.sample(160, random_state=0)
    events = shop.events[shop.events["item_id"].isin(keep["item_id"])]
    with Store(path) as store:
        store.ingest_frames(items=keep, events=events, users=shop.users, source="test")
    return path


def _top(vectors: np.ndarray, k: int = 20) -> np.ndarray:
    sim = vectors @ vectors.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def test_ray_engine_equals_local_engine(ray_cluster, tmp_path):
    from crossrec_core.config import Settings
    from crossrec_core.encoder import Encoder, encode_items, item_embeddings
    from crossrec_core.engine.ray_jobs import cluster, cooc_counts_job, cooc_counts_local, encode_job, work_folder

    local_db, ray_db = _shop(tmp_path / "local.duckdb"), _shop(tmp_path / "ray.duckdb")
    # fp32 on both sides: "auto" picks bf16 by a timing, which a loaded machine can decide either way per process
    settings = Settings(db_path=ray_db).replace({"encoder.precision": "fp32"})
    with Store(local_db) as store:
        encode_items(store, Encoder(backend="torch", precision="fp32", batch_size=settings.encoder.batch_size))
        local_counts = cooc_counts_local(store)
        local_vectors = item_embeddings(store, Encoder().model_id, store.items())
    with Store(ray_db) as store:
        with cluster(ray_cluster) as ray, work_folder(None, ray_db) as work:
            assert int(ray.cluster_resources()["CPU"]) == 2
            done = encode_job(ray, store, settings, work)
            ray_counts = cooc_counts_job(ray, store, work, partitions=4)
        ray_vectors = item_embeddings(store, Encoder().model_id, store.items())
        assert done["encoded"] == len(store.items()) > 100
    assert not any(p.name.startswith("ray-work-") for p in Path(f"{ray_db}.artefacts").glob("*"))

    pd.testing.assert_frame_equal(local_counts, ray_counts)  # equal counts, pair for pair
    assert len(local_counts) > 500 and local_counts["users"].max() > 1
    cos = np.sum(local_vectors * ray_vectors, axis=1)
    assert cos.min() >= 0.999
    assert (_top(local_vectors) == _top(ray_vectors)).all()  # the same top-20 neighbour lists


def test_ray_training_fits_the_same_cooc_and_ray_export_writes_the_local_csv(ray_cluster, tmp_path):
    """`train --engine ray` counts every cooc fit's item pairs on the cluster: the fitted cooc state equals a
    local fit on the same data; `export --engine ray` writes the same bytes as the local export."""
    import subprocess

    from crossrec_core.config import Settings
    from crossrec_core.encoder import Encoder, encode_items
    from crossrec_core.engine.ray_jobs import ray_training
    from crossrec_core.runs import load_run
    from crossrec_core.signals.cooc import CoocSignal
    from crossrec_core.train import train

    db = _shop(tmp_path / "shop.duckdb")
    settings = Settings(db_path=db)
    with Store(db) as store:
        encode_items(store, Encoder(batch_size=settings.encoder.batch_size))  # here: the encode job has nothing left
        with ray_training(store, settings, address=ray_cluster) as done:
            assert done["encoded"] == 0
            train(store, settings, name="on-ray", learn=False, baselines=False)
        rec = load_run(store, "on-ray", rules=False)
    fitted = rec.scorer_.signals_["cooc"]
    local = CoocSignal.build(settings).fit(rec.data_)
    assert fitted.S_.nnz > 1000
    for attr in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(fitted.S_, attr), getattr(local.S_, attr)), attr

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    base = [sys.executable, "-m", "crossrec_core.cli", "export", "--db", str(db), "--quiet", "--k", "10"]
    local_csv, ray_csv = tmp_path / "local.csv", tmp_path / "ray.csv"
    out = subprocess.run([*base, "--out", str(local_csv)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*base, "--out", str(ray_csv), "--engine", "ray", "--address", ray_cluster],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout
    data = ray_csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfuser_id,rank,") and data.count(b"user_id,rank,") == 1
    assert data == local_csv.read_bytes()
    with Store(db, read_only=True) as store:
        assert data.count(b"\r\n") == 1 + 10 * len(store.user_ids())  # every shopper, 10 rows each
    assert not any(p.name.startswith("ray-work-") for p in Path(f"{db}.artefacts").glob("*"))


def test_ray_export_needs_a_trained_run(tmp_path):
    """Checked before any cluster is reached: one line saying what to do."""
    import subprocess

    db = _shop(tmp_path / "untrained.duckdb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "RAY_ADDRESS": "127.0.0.1:1"}
    out = subprocess.run([sys.executable, "-m", "crossrec_core.cli", "export", "--db", str(db), "--engine", "ray",
                          "--out", str(tmp_path / "x.csv")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "run `crossrec train` first" in out.stderr
    assert not (tmp_path / "x.csv").exists()
