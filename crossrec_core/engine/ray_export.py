"""The explained export as a Ray job (`crossrec export --engine ray`): shoppers partitioned by shopper, each
task loading the saved run by path (its npz and JSON files, as `Recommender.load` reads them) and writing a CSV part with
`export.iter_rows`; the driver puts the parts after one header into the --out file, atomically."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import CrossRecError
from .ray_jobs import Progress, cluster, work_folder


def _export_part(db: str, run: str, users_file: str, out: str, k: int, mode: str, category: str | None,
                 batch_size: int) -> int:
    """One shopper partition: load the run's saved model (npz/JSON, by path) and write its CSV rows, no header."""
    import csv
    import io

    import pyarrow.parquet as pq

    from crossrec_core.export import iter_rows
    from crossrec_core.runs import load_run
    from crossrec_core.store import Store

    user_ids = pq.read_table(users_file).column("user_id").to_pylist()
    n = 0
    with Store(db, read_only=True) as store, open(out, "wb") as f:
        rec = load_run(store, run)
        text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
        writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for row in iter_rows(rec, user_ids, k, mode, category, None, batch_size):
            writer.writerow(row)
            n += 1
        text.flush()
        text.detach()
    return n


def export_job(ray, db_path: str | Path, run: str, user_ids: list[str], out_path: str | Path, work: Path, *,
               k: int = 20, mode: str = "all", category: str | None = None, batch_size: int = 256,
               partitions: int | None = None, progress: Progress | None = None) -> int:
    """Explained top-k of every shopper in `user_ids` on the cluster, into one CSV at `out_path`.

    Shoppers are cut into contiguous partitions of whole scoring batches (so each batch is the one the local
    export scores: the same bytes); each task opens the database read-only and loads the run's saved model by
    path, and writes its rows as a CSV part; the parts follow the header in order, into a temporary file renamed
    into place. Returns the number of data rows."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..export import columns
    from ..outfile import output

    report = progress or (lambda _f, _m: None)
    n_batches = max(1, -(-len(user_ids) // batch_size))
    partitions = max(1, min(partitions or 4 * int(ray.cluster_resources().get("CPU", 1)), n_batches))
    per = -(-n_batches // partitions) * batch_size  # shoppers per partition, a multiple of the batch
    (work / "users").mkdir(parents=True)
    (work / "parts").mkdir(parents=True)
    tasks, outs = [], []
    task = ray.remote(num_cpus=1)(_export_part)
    for p, lo in enumerate(range(0, max(len(user_ids), 1), per)):
        users_file = work / "users" / f"part-{p:04d}.parquet"
        pq.write_table(pa.table({"user_id": pa.array([str(u) for u in user_ids[lo:lo + per]], pa.string())}),
                       users_file)
        outs.append(work / "parts" / f"part-{p:04d}.csv")
        tasks.append(task.remote(str(db_path), run, str(users_file), str(outs[-1]), k, mode, category, batch_size))
    report(0.02, f"exporting {len(user_ids):,} shoppers in {len(tasks)} Ray tasks")
    rows, pending = 0, list(tasks)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        rows += ray.get(done[0])
        report(1 - len(pending) / len(tasks), f"{len(tasks) - len(pending)} of {len(tasks)} parts written")
    with output(out_path) as f:  # an exclusive temp file renamed into place, or straight into a pipe
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="", write_through=True)
        csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(columns())
        text.flush()
        text.detach()
        for part in outs:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
    return rows


def export_on_ray(store, run: str | None, user_ids: list[str], out_path: str | Path, *, k: int = 20,
                  mode: str = "all", category: str | None = None, address: str | None = None,
                  work_dir: str | Path | None = None, progress: Progress | None = None) -> int:
    """`crossrec export --engine ray`: the run `run` (default: the live one) exported on a Ray cluster. The
    database must be a file every node can read (shared storage on a real cluster), as must `work_dir`."""
    if run is None:
        live = store.run()
        if live is None:
            raise CrossRecError("--engine ray exports a trained run: run `crossrec train` first")
        run = live["name"]
    elif run not in store.run_names():
        raise CrossRecError(f"no run named '{run}' (`crossrec runs list`)")
    with cluster(address) as ray, work_folder(Path(work_dir) if work_dir else None, store.path) as work:
        return export_job(ray, Path(store.path).resolve(), run, list(user_ids), out_path, work, k=k, mode=mode,
                          category=category, progress=progress)
