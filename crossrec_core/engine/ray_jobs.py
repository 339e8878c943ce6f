"""The heavy batch steps as Ray jobs that read and write Parquet (`crossrec train --engine ray`).

- text encoding: Ray Data `map_batches` over an actor pool, each actor holding one encoder (a GPU each
  where the cluster has GPUs, fp16 there; else one CPU each, fp32);
- co-occurrence counts: the (shopper, item) pairs partitioned by shopper, each partition's item-pair
  counts computed where it lies, then reduced by item pair; the cooc signal fits from them
  (`ray_training` makes every cooc fit of a training run count its pairs there);
- candidate scoring and explained export for every shopper: `ray_export.export_job`.

Each job reads Parquet the driver wrote into a work folder and writes Parquet there; the driver reads it
back into the DuckDB store. On a cluster of several machines the work folder must be storage every node
sees (NFS, or a mounted bucket): `--work-dir`. ALS and the rest of training stay on the driver's node.
Ray is optional (`pip install crossrec[ray]`); nothing here is imported by the local engine.
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..errors import CrossRecError

Progress = Callable[[float, str], None]
PAIR_PARTITIONS = 16  # shopper partitions of the co-occurrence job


def _ray():
    try:
        import ray
    except ImportError:
        raise CrossRecError("--engine ray needs Ray: pip install 'crossrec[ray]'") from None
    return ray


@contextmanager
def cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[object]:
    """Connect to a Ray cluster (`address`, else $RAY_ADDRESS, else a local one started for this command).

    The package travels to the workers as a runtime-env module, so a cluster needs Ray and the same
    dependencies, not CrossRec itself installed."""
    ray = _ray()
    import crossrec_core

    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"py_modules": [str(Path(crossrec_core.__file__).parent)],
           "env_vars": {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}}
    kw = {} if address else {"include_dashboard": False, "num_cpus": num_cpus}
    try:
        ray.init(address=address, runtime_env=env, log_to_driver=False, configure_logging=False, **kw)
    except Exception as exc:  # noqa: BLE001 - any connection failure becomes one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CrossRecError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {first[:200]}") \
            from None
    import logging

    for name in ("ray", "ray.data"):  # Ray Data logs its progress to stdout; the command has its own bar
        logging.getLogger(name).setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()


@contextmanager
def work_folder(base: Path | None, db_path: Path) -> Iterator[Path]:
    """A fresh folder for one job's Parquet files: under `base` when given (shared storage on a real
    cluster), else beside the database's artefacts; removed afterwards."""
    root = Path(base) if base else Path(str(db_path) + ".artefacts")
    folder = root / f"ray-work-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- text encoding ------------------------------------------------------------------------------


class _EncodeActor:
    """One encoder per actor: loaded once, then batch after batch of (text_hash, text)."""

    def __init__(self, model: str, device: str, precision: str, batch_size: int, threads: int):
        import torch

        from crossrec_core.encoder import Encoder

        torch.set_num_threads(max(1, threads))
        self.encoder = Encoder(model, device=device, precision=precision, batch_size=batch_size, backend="torch")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        vectors = self.encoder.encode(batch["text"].tolist())
        return pd.DataFrame({"text_hash": batch["text_hash"].to_numpy(),
                             "vector": [v.tobytes() for v in vectors.astype(np.float32)]})


def encode_job(ray, store, settings, work: Path, progress: Progress | None = None) -> dict:
    """Encode the item texts that have no stored vector yet on the cluster; store what comes back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..encoder import missing_texts

    report = progress or (lambda _f, _m: None)
    from ..encoder import Encoder
    model_id = Encoder.from_settings(settings).model_id
    report(0.0, "looking up stored vectors")
    by_hash, missing = missing_texts(store, model_id, store.items(), settings.encoder.max_text_chars)
    if not missing:
        return {"encoded": 0, "reused": len(by_hash), "model_id": model_id}
    texts = pd.DataFrame({"text_hash": missing, "text": [by_hash[h] for h in missing]})
    texts = texts.iloc[np.argsort(-texts["text"].str.len().to_numpy(), kind="stable")]  # similar lengths batch well
    pq.write_table(pa.Table.from_pandas(texts, preserve_index=False), work / "texts.parquet")
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    # one CPU stays free for Ray Data's own read and write tasks (a pool holding every CPU starves them)
    cpus = int(res.get("CPU", 1))
    actors = max(1, min(gpus or cpus - 1, len(missing) // max(1, settings.encoder.batch_size) or 1))
    actor_cpus = 0 if gpus else (1 if cpus > 1 else 0.5)
    device = "cuda" if gpus else "cpu"
    report(0.05, f"encoding {len(missing):,} texts on {actors} Ray actor{'s' * (actors > 1)} ({device})")
    ds = ray.data.read_parquet(str(work / "texts.parquet"))
    ds = ds.map_batches(_EncodeActor, batch_format="pandas", batch_size=settings.encoder.batch_size * 8,
                        fn_constructor_kwargs={"model": settings.encoder.model, "device": device,
                                               "precision": settings.encoder.precision,
                                               "batch_size": settings.encoder.batch_size, "threads": 1},
                        compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=1 if gpus else 0,
                        num_cpus=actor_cpus)
    ds.write_parquet(str(work / "vectors"))
    report(0.9, "storing the vectors")
    table = pq.read_table(work / "vectors")
    hashes = table.column("text_hash").to_pylist()
    vectors = np.stack([np.frombuffer(b, dtype=np.float32) for b in table.column("vector").to_pylist()])
    store.put_embeddings(model_id, hashes, vectors)
    report(1.0, f"{len(hashes):,} encoded on Ray")
    return {"encoded": len(hashes), "reused": len(by_hash) - len(missing), "model_id": model_id}


# ---- co-occurrence counts -----------------------------------------------------------------------


def pair_counts(pairs: pd.DataFrame, mirror: bool = False) -> pd.DataFrame:
    """(item_i, item_j, n): how many shoppers touched both, from (user, item) codes; item_i < item_j, or with
    `mirror` both orientations (every row's pairs, the diagonal left out)."""
    import scipy.sparse as sp

    if pairs.empty:
        return pd.DataFrame({"item_i": np.zeros(0, np.int64), "item_j": np.zeros(0, np.int64),
                             "n": np.zeros(0, np.int64)})
    users, u = np.unique(pairs["user"].to_numpy(), return_inverse=True)
    items = pairs["item"].to_numpy(np.int64)
    n_items = int(items.max()) + 1
    b = sp.csr_matrix((np.ones(len(u), np.int64), (u, items)), shape=(len(users), n_items))
    b.data[:] = 1  # duplicates summed by the constructor: one per shopper and item
    c = (b.T.tocsr() @ b).tocoo()
    keep = (c.row != c.col if mirror else c.row < c.col) & (c.data != 0)
    return pd.DataFrame({"item_i": c.row[keep].astype(np.int64), "item_j": c.col[keep].astype(np.int64),
                         "n": c.data[keep].astype(np.int64)})


def shopper_item_pairs(store) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct (user code, item code) pairs of every event, and the item ids the codes index."""
    events = store.events()[["user_id", "item_id"]].drop_duplicates()
    item_codes, item_ids = pd.factorize(events["item_id"], sort=True)
    user_codes, _ = pd.factorize(events["user_id"], sort=True)
    return (pd.DataFrame({"user": user_codes.astype(np.int64), "item": item_codes.astype(np.int64)}),
            np.asarray(item_ids, dtype=object))


def cooc_counts_local(store) -> pd.DataFrame:
    """The local engine's co-occurrence counts (item_id_i, item_id_j, users): the peer of `cooc_counts_job`."""
    pairs, ids = shopper_item_pairs(store)
    return _named(pair_counts(pairs), ids)


def _named(counts: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame({"item_id_i": ids[counts["item_i"].to_numpy()], "item_id_j": ids[counts["item_j"].to_numpy()],
                        "users": counts["n"].to_numpy(np.int64)})
    return out.sort_values(["item_id_i", "item_id_j"], kind="stable").reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _map_counts(src: str, out: str, buckets: int, mirror: bool = False) -> int:
    """Map: one shopper partition's item-pair counts, split into `buckets` files by item_i."""
    import pyarrow.parquet as pq

    counts = pair_counts(pq.read_table(src).to_pandas(), mirror)
    bucket = counts["item_i"].to_numpy() % buckets
    for b in range(buckets):
        _write(counts[bucket == b], Path(f"{out}-bucket-{b:04d}.parquet"))
    return len(counts)


def _reduce_counts(srcs: list[str], out: str) -> int:
    """Reduce: the partial counts of one bucket of item pairs, summed pair by pair."""
    import pyarrow.parquet as pq

    parts = pd.concat([pq.read_table(s).to_pandas() for s in srcs], ignore_index=True)
    total = parts.groupby(["item_i", "item_j"], sort=True, as_index=False)["n"].sum()
    _write(total, Path(out))
    return len(total)


def _count_on_cluster(ray, pairs: pd.DataFrame, work: Path, partitions: int, mirror: bool,
                      report: Progress) -> list[Path]:
    """Map per shopper partition, reduce per bucket of item_i: the bucket files (plain Ray tasks passing
    Parquet paths; no shuffle service, so a small cluster never starves)."""
    part = pairs["user"].to_numpy() % partitions
    for sub in ("pairs", "partial", "counts"):
        (work / sub).mkdir(parents=True)
    for p in range(partitions):
        _write(pairs[part == p], work / "pairs" / f"part-{p:04d}.parquet")
    report(0.1, f"counting item pairs of {pairs['user'].nunique():,} shoppers in {partitions} partitions")
    mapper, reducer = ray.remote(num_cpus=1)(_map_counts), ray.remote(num_cpus=1)(_reduce_counts)
    ray.get([mapper.remote(str(work / "pairs" / f"part-{p:04d}.parquet"), str(work / "partial" / f"part-{p:04d}"),
                           partitions, mirror) for p in range(partitions)])
    report(0.6, "reducing by item pair")
    outs = [work / "counts" / f"bucket-{b:04d}.parquet" for b in range(partitions)]
    ray.get([reducer.remote([str(work / "partial" / f"part-{p:04d}-bucket-{b:04d}.parquet") for p in range(partitions)],
                            str(outs[b])) for b in range(partitions)])
    return outs


def cooc_counts_job(ray, store, work: Path, partitions: int = PAIR_PARTITIONS,
                    progress: Progress | None = None) -> pd.DataFrame:
    """Co-occurrence counts of the store's events on the cluster (the peer of `cooc_counts_local`)."""
    import pyarrow.parquet as pq

    report = progress or (lambda _f, _m: None)
    pairs, ids = shopper_item_pairs(store)
    _count_on_cluster(ray, pairs, work, partitions, False, report)
    report(0.9, "reading the counts back")
    return _named(pq.read_table(work / "counts").to_pandas(), ids)


def incidence_pairs(B) -> pd.DataFrame:
    """(user, item) codes of the stored entries of a users × items sparse matrix."""
    B = B.tocsr()
    users = np.repeat(np.arange(B.shape[0], dtype=np.int64), np.diff(B.indptr))
    return pd.DataFrame({"user": users, "item": B.indices.astype(np.int64)})


class RayPairCounter:
    """The co-occurrence signal's pair counter on a Ray cluster (see `crossrec_core.engine.counting_with`):
    the binary users × items matrix goes out as (user, item) Parquet partitions by shopper, and the counts
    come back one bucket of items at a time (each bucket holds whole rows), so the driver never holds them all."""

    def __init__(self, ray, work: Path, partitions: int = PAIR_PARTITIONS, progress: Progress | None = None):
        self.ray, self.work, self.partitions = ray, Path(work), partitions
        self.progress = progress or (lambda _f, _m: None)
        self.jobs = 0

    def __call__(self, B) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        pairs = incidence_pairs(B)
        self.jobs += 1
        work = self.work / f"cooc-{self.jobs:03d}"
        try:
            for path in _count_on_cluster(self.ray, pairs, work, self.partitions, True, self.progress):
                counts = pq.read_table(path).to_pandas()
                yield pd.DataFrame({"row": counts["item_i"], "col": counts["item_j"], "n": counts["n"]})
        finally:
            shutil.rmtree(work, ignore_errors=True)


def local_pair_counter(B) -> Iterator[pd.DataFrame]:
    """The same counts in this process, one chunk (the peer of `RayPairCounter` in tests and benchmarks)."""
    counts = pair_counts(incidence_pairs(B), mirror=True)
    yield pd.DataFrame({"row": counts["item_i"], "col": counts["item_j"], "n": counts["n"]})


# ---- the hook `crossrec train --engine ray` calls ---------------------------------------------


@contextmanager
def ray_training(store, settings, *, address: str | None = None, work_dir: str | Path | None = None,
                 progress: Progress | None = None) -> Iterator[dict]:
    """Encode the missing item texts on the cluster, then keep it for the block: every co-occurrence signal
    fitted inside (validation, ranker windows, evaluation, serving) counts its item pairs there."""
    from . import counting_with

    report = progress or (lambda _f, _m: None)
    report(0.0, f"connecting to Ray ({address or os.environ.get('RAY_ADDRESS') or 'local'})")
    with cluster(address) as ray, work_folder(Path(work_dir) if work_dir else None, settings.db_path) as work:
        done = encode_job(ray, store, settings, work, progress)
        with counting_with(RayPairCounter(ray, work)):
            yield done
