"""Scale benchmark (issue 17): each step next to a peer run in the same process, medians, peak RSS per step.

    .venv/bin/python benchmarks/scale.py                                  # small: about a minute or two
    .venv/bin/python benchmarks/scale.py --events 1_000_000 --items 200_000 --users 50_000
    .venv/bin/python benchmarks/scale.py --events 10_000_000 --items 200_000 --users 500_000 --encode-n 20000

Steps (sizes are arguments; nothing here asserts):
- big shop: `bigshop.write_parquet` (simulate + stream to Parquet), then the streaming ingest of those files
  (and the in-memory one up to --memory-peer-max events) against a bare DuckDB `CREATE TABLE AS SELECT * FROM
  read_parquet(...)` of the same files; with --csv, the same files as CSV streamed (vs a bare `read_csv`);
- encode: `Encoder` with the default backend (int8 ONNX where it passes its guard on this shop, cached in a
  scratch artefacts folder; its one-time build and check timed apart) against plain fp32
  `SentenceTransformer.encode`, on `--encode-n` item texts, `--repeats` times each, medians;
- serve: `Recommender.fit` on the shop (peak RSS), then explained top-20 latency per shopper (p50/p95 of
  `recommend(explain=True)`, block-at-a-time fusion) against the dense (users × catalogue) scoring of the same
  lists, and export shoppers/s of `export.iter_rows` against the per-shopper frames of `recommend_batch`,
  on `--serve-users` shoppers;
- als: the ALS signal's fit against `implicit` alone on the same confidence matrix, factors and iterations;
- engine: each batch step on the local engine against the Ray engine (a local Ray instance, `--ray-cpus`
  CPUs) on the same data (`--engine-items` items and their events), when Ray is installed: encode, the cooc
  fit (its pair counts on Ray; fitted states compared) and the explained export of every shopper of a run
  (CSV bytes compared);
- train: `train()` on a copy of the shop, one row per step as `crossrec train` prints them (wall time, RSS
  rise and peak), then the whole run.
Peak RSS per step is sampled every 20 ms (psutil) and reported as the step's peak above the process at its start.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossrec_core.resources import peak_rss  # noqa: E402  (one copy: training's step table uses it)

ROWS: list[tuple[str, float, str, float | None, float, str]] = []


def row(step: str, seconds: float, peer: str, peer_seconds: float | None, rss_mb: float, note: str = "") -> None:
    ROWS.append((step, seconds, peer, peer_seconds, rss_mb, note))
    ratio = f"{peer_seconds / seconds:6.2f}x" if peer_seconds else "     -"
    print(f"{step:<40} {seconds:9.2f} s  {peer:<30} {peer_seconds or 0:9.2f} s  {ratio}  "
          f"peak +{rss_mb:7.0f} MB  {note}", flush=True)


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_big_shop(args, scratch: Path) -> Path:
    from crossrec_core.bigshop import write_parquet

    with peak_rss() as mem:
        t0 = time.perf_counter()
        files = write_parquet(scratch / "parquet", n_events=args.events, n_items=args.items, n_users=args.users)
        gen_s = time.perf_counter() - t0
    row("big shop: generate", gen_s, "-", None, mem["mb"], f"{files.events:,} events, "
        f"{files.events / gen_s:,.0f} events/s")
    p = files.paths
    db = bench_ingest(args, scratch, p, files.events)
    if args.csv:
        bench_ingest_csv(args, scratch, p)
    return db


def _ingest_child(db: str, paths: dict[str, str], stream_mb: float) -> tuple[float, float, float]:
    """In a fresh process: one ingest; its seconds, RSS at its start and peak RSS (MB)."""
    import resource

    import psutil

    from crossrec_core.config import Settings
    from crossrec_core.store import Store, ingest  # noqa: F401  (everything the ingest imports, before the start)

    start_mb = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    with Store(db) as store:
        store.ingest_files(paths["items"], paths["events"], paths.get("users"),
                           settings=Settings().replace({"ingest.stream_mb": stream_mb}))
    return time.perf_counter() - t0, start_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ingest(db: Path, paths: dict[str, Path], stream_mb: float) -> tuple[float, float, float]:
    """Seconds, peak RSS above the start and the process's peak RSS (MB) of one ingest of `paths` into a new
    `db`, in a fresh process (a peak is then the ingest's own, not one an earlier step left behind)."""
    import multiprocessing

    db.unlink(missing_ok=True)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seconds, start, peak = pool.apply(_ingest_child, (str(db), {k: str(v) for k, v in paths.items()}, stream_mb))
    return seconds, peak - start, peak


def bench_ingest(args, scratch: Path, p: dict[str, Path], n_events: int) -> Path:
    """The streaming ingest (and, up to --memory-peer-max events, the in-memory one) against a bare DuckDB
    `CREATE TABLE AS SELECT * FROM read_parquet(...)` of the same files."""
    import duckdb

    bare = scratch / "bare.duckdb"
    t0 = time.perf_counter()
    con = duckdb.connect(str(bare))
    for kind, path in p.items():
        con.execute(f"CREATE TABLE {kind} AS SELECT * FROM read_parquet('{path}')")
    con.close()
    bare_s = time.perf_counter() - t0
    bare.unlink(missing_ok=True)
    db = scratch / "shop.duckdb"
    ingest_s, ingest_mb, peak = _ingest(db, p, 0)
    row("ingest, streamed (DuckDB)", ingest_s, "bare DuckDB insert", bare_s, ingest_mb,
        f"{n_events / ingest_s:,.0f} events/s, process peak RSS {peak:,.0f} MB (peer/ours < 1: ours is slower)")
    if n_events <= args.memory_peer_max:
        mem_s, mem_mb, peak = _ingest(scratch / "memory.duckdb", p, 1e9)
        (scratch / "memory.duckdb").unlink(missing_ok=True)
        row("ingest, in memory (pandas)", mem_s, "bare DuckDB insert", bare_s, mem_mb,
            f"{n_events / mem_s:,.0f} events/s, process peak RSS {peak:,.0f} MB")
    return db


def bench_ingest_csv(args, scratch: Path, p: dict[str, Path]) -> None:
    """The same shop as CSV files (written by DuckDB COPY), streamed: its wall time and peak RSS."""
    import duckdb

    csv = {kind: scratch / f"{kind}.csv" for kind in p}
    con = duckdb.connect()
    for kind, path in p.items():
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO '{csv[kind]}' (HEADER)")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{p['events']}')").fetchall()[0][0]
    con.close()
    t0 = time.perf_counter()
    con = duckdb.connect(str(scratch / "bare-csv.duckdb"))
    for kind, path in csv.items():
        con.execute(f"CREATE TABLE {kind} AS SELECT * FROM read_csv('{path}', all_varchar = true)")
    con.close()
    bare_s = time.perf_counter() - t0
    (scratch / "bare-csv.duckdb").unlink(missing_ok=True)
    mb = sum(path.stat().st_size for path in csv.values()) / 2**20
    seconds, above, peak = _ingest(scratch / "csv.duckdb", csv, 0)
    (scratch / "csv.duckdb").unlink(missing_ok=True)
    row("ingest CSV, streamed", seconds, "bare DuckDB read_csv", bare_s, above,
        f"{n:,} event rows, {mb:,.0f} MB of CSV, {n / seconds:,.0f} events/s, process peak RSS {peak:,.0f} MB")


def bench_encode(args, db: Path, scratch: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from crossrec_core.encoder import Encoder, item_text, resolve_model
    from crossrec_core.store import Store

    with Store(db, read_only=True) as store:
        items = store.items()
    texts = list(dict.fromkeys(t for t in item_text(items) if t))
    texts = [texts[i] for i in np.linspace(0, len(texts) - 1, min(args.encode_n, len(texts))).astype(int)]
    plain = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    cache = scratch / "artefacts" / "onnx"
    enc = Encoder(device="cpu", cache_dir=cache)
    enc.check_texts = texts
    t0 = time.perf_counter()
    enc.load()  # the one-time int8 build and guard check (recorded in check.json)
    row("encode: build + guard", time.perf_counter() - t0, "-", None, 0.0,
        f"{enc.backend_}/{enc.precision_}: {enc.precision_reason_[-160:]}")
    plain_s, _ = timed(lambda: plain.encode(texts, batch_size=64, convert_to_numpy=True), args.repeats)
    with peak_rss() as mem:
        ours_s, _ = timed(lambda: enc.encode(texts), args.repeats)
    row(f"encode ({enc.precision_}, {len(texts):,} texts)", ours_s, "SentenceTransformer fp32", plain_s, mem["mb"],
        f"{len(texts) / ours_s:,.0f} texts/s vs {len(texts) / plain_s:,.0f}")


def bench_engine(args, db: Path, scratch: Path) -> None:
    """Local engine against the Ray engine on the same data: encode, cooc fit, explained export (three rows)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print("engine: Ray is not installed (pip install 'crossrec[ray]'); skipped")
        return
    from crossrec_core.config import Settings
    from crossrec_core.data import build_interactions
    from crossrec_core.encoder import Encoder, encode_items
    from crossrec_core.engine import counting_with
    from crossrec_core.engine.ray_export import export_job
    from crossrec_core.engine.ray_jobs import RayPairCounter, cluster, encode_job, work_folder
    from crossrec_core.export import write_csv
    from crossrec_core.runs import load_run
    from crossrec_core.signals.cooc import CoocSignal
    from crossrec_core.store import Store
    from crossrec_core.train import train

    with Store(db, read_only=True) as store:
        items, events = store.items(), store.events()
    keep = items.iloc[np.linspace(0, len(items) - 1, min(args.engine_items, len(items))).astype(int)]
    ev = events[events["item_id"].isin(keep["item_id"])].rename(columns={"ts": "timestamp"})
    paths = {}
    for name in ("local", "ray"):
        paths[name] = scratch / f"engine-{name}.duckdb"
        with Store(paths[name]) as store:
            store.ingest_frames(items=keep, events=ev[["user_id", "item_id", "event_type", "timestamp"]])
    settings = Settings(db_path=paths["ray"])
    with peak_rss() as mem:
        t0 = time.perf_counter()
        with Store(paths["local"]) as store:
            encode_items(store, Encoder(backend="torch", device="cpu"))
        local_s = time.perf_counter() - t0
    os.environ.pop("RAY_ADDRESS", None)  # a local Ray instance with --ray-cpus CPUs
    t0 = time.perf_counter()
    with cluster(None, num_cpus=args.ray_cpus) as r, work_folder(None, paths["ray"]) as work:
        start_s = time.perf_counter() - t0
        with Store(paths["ray"]) as store:
            t0 = time.perf_counter()
            encode_job(r, store, settings, work)
            ray_s = time.perf_counter() - t0
            row(f"engine: encode on Ray ({len(keep):,} items)", ray_s, "local engine", local_s, mem["mb"],
                f"Ray start {start_s:.1f} s, not counted")
            data = build_interactions(store.items().sort_values("item_id").reset_index(drop=True), store.events(),
                                      settings)
            local_s, local = timed(lambda: CoocSignal.build(settings).fit(data), 1)
            with counting_with(RayPairCounter(r, work)):
                ray_s, counted = timed(lambda: CoocSignal.build(settings).fit(data), 1)
            same = all(np.array_equal(getattr(local.S_, a), getattr(counted.S_, a)) for a in ("data", "indices", "indptr"))
            row(f"engine: cooc fit on Ray ({data.X.nnz:,} pairs)", ray_s, "local engine", local_s, 0.0,
                f"fitted states equal: {same}")
            train(store, settings, name="engine", learn=False, baselines=False)
            users = list(store.user_ids())
        t0 = time.perf_counter()  # the tasks open the database read-only: the writer above has closed it
        rows = export_job(r, paths["ray"], "engine", users, scratch / "ray.csv", work / "export")
        ray_s = time.perf_counter() - t0
        with Store(paths["ray"], read_only=True) as store:
            t0 = time.perf_counter()
            write_csv(load_run(store, "engine"), scratch / "local.csv", users)
            local_s = time.perf_counter() - t0
    same = (scratch / "ray.csv").read_bytes() == (scratch / "local.csv").read_bytes()
    row(f"engine: export on Ray ({len(users):,} shoppers)", ray_s, "local engine", local_s, 0.0,
        f"{rows:,} rows; {len(users) / ray_s:,.0f} vs {len(users) / local_s:,.0f} shoppers/s; same bytes: {same}")


def bench_als(args, db: Path) -> None:
    """The ALS signal's fit against `implicit` alone on the same confidence matrix, factors and iterations."""
    import implicit.als

    from crossrec_core.config import Settings
    from crossrec_core.data import build_interactions
    from crossrec_core.signals.als import ALSSignal
    from crossrec_core.store import Store

    settings = Settings(db_path=db).replace({"signals.als.device": "cpu"})
    with Store(db, read_only=True) as store:
        data = build_interactions(store.items().sort_values("item_id").reset_index(drop=True), store.events(),
                                  settings, users=store.user_ids())
    sig = ALSSignal.build(settings)
    C = sig.confidence_matrix(data.X)

    def bare():
        implicit.als.AlternatingLeastSquares(
            factors=sig.factors, regularization=sig.regularization, alpha=1.0,
            iterations=sig.iterations, random_state=sig.random_state, use_gpu=False).fit(C, show_progress=False)

    ours, peer = [], []
    with peak_rss() as mem:
        for _ in range(min(args.repeats, 3)):  # interleaved, so a busy spell on a shared machine hits both
            ours.append(timed(lambda: sig.fit(data), 1)[0])
            peer.append(timed(bare, 1)[0])
    ours_s, peer_s = statistics.median(ours), statistics.median(peer)
    row(f"ALS fit ({C.nnz:,} pairs)", ours_s, "implicit alone", peer_s, mem["mb"],
        f"{C.shape[0]:,} users × {C.shape[1]:,} items, {sig.factors} factors, "
        f"{sig.iterations} iterations, on {sig.device_}")


def bench_train(args, db: Path, scratch: Path) -> None:
    """`train` on a copy of the shop: one row per step (wall time, peak RSS), as `crossrec train` prints them."""
    from crossrec_core.config import Settings
    from crossrec_core.store import Store
    from crossrec_core.train import train

    copy = scratch / "train.duckdb"
    shutil.copyfile(db, copy)
    with Store(copy) as store:
        from crossrec_core.encoder import Encoder
        project = store.embedding_count(Encoder.from_settings(Settings(db_path=copy)).model_id) > 0
        t0 = time.perf_counter()
        with peak_rss() as mem:
            run = train(store, Settings(db_path=copy), name="bench", project=project)
        total = time.perf_counter() - t0

    def show(steps, indent=""):
        for s in steps:
            times = f" ×{s['times']}" if s.get("times", 1) > 1 else ""
            row(f"train: {indent}{s['step']}{times}"[:40], s["seconds"], "-", None, s["rss_rise_mb"],
                f"peak {s['peak_rss_mb'] / 1024:.2f} GB")
            if not indent:
                show(s.get("parts") or [], "  ")

    show(run["metrics"]["steps"])
    row("train (all steps)", total, "-", None, mem["mb"], f"peak {mem['peak_mb'] / 1024:.2f} GB; "
        f"ALS on {run['metrics'].get('als_device')}" + ("" if project else "; no item vectors: no content, no map"))


def bench_serve(args, db: Path) -> None:
    from crossrec_core.config import Settings
    from crossrec_core.export import iter_rows
    from crossrec_core.recommender import Recommender
    from crossrec_core.store import Store

    with Store(db, read_only=True) as store:
        with peak_rss() as mem:
            t0 = time.perf_counter()
            rec = Recommender(Settings(db_path=db)).fit(store)
            fit_s = time.perf_counter() - t0
        row("fit (every signal)", fit_s, "-", None, mem["mb"], f"{rec.data_.n_items:,} items")
        users = list(store.user_ids())[: args.serve_users]
        scorer = rec.scorer_

        def dense_rank(ctx, mode, mask, k):  # the (users × catalogue) path rank() took before blocks
            total, parts = scorer.contributions(ctx, mode)
            return scorer.top_items(total, mask, k, ctx)

        lat, dense_lat, plain_lat, ctx_lat = [], [], [], []
        with peak_rss() as mem:
            for uid in users[:50]:
                t0 = time.perf_counter()
                rec.recommend(uid, k=20, explain=True)
                lat.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rec.recommend(uid, k=20, explain=False)
                plain_lat.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rec.user_context([uid])  # the history read from the store, part of every list
                ctx_lat.append(time.perf_counter() - t0)
                ctx, seen = rec.user_context([uid])
                mask = scorer.candidate_mask(ctx, "all", exclude=seen.toarray() > 0)
                t0 = time.perf_counter()
                dense_rank(ctx, "all", mask, 20)
                t1 = time.perf_counter()
                scorer.rank(ctx, "all", mask, 20)
                dense_lat.append((t1 - t0) - (time.perf_counter() - t1))  # dense minus blocked scoring
        p50, p95 = np.percentile(lat, 50) * 1e3, np.percentile(lat, 95) * 1e3
        row("explained top-20, 1 shopper", float(np.median(lat)), "same, dense scoring",
            float(np.median(lat) + np.median(dense_lat)), mem["mb"], f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        row("top-20 without reasons", float(np.median(plain_lat)), "same, dense scoring",
            float(np.median(plain_lat) + np.median(dense_lat)), 0.0,
            f"p50 {np.median(plain_lat) * 1e3:.1f} ms, p95 {np.percentile(plain_lat, 95) * 1e3:.1f} ms; of which "
            f"reading the history {np.median(ctx_lat) * 1e3:.1f} ms")
        with peak_rss() as mem:
            t0 = time.perf_counter()
            n_rows = sum(1 for _ in iter_rows(rec, users, k=20))
            ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in rec.recommend_batch(users, k=20, explain=True):
                pass
            peer = time.perf_counter() - t0
        row(f"export {len(users):,} shoppers", ours, "per-shopper frames", peer, mem["mb"],
            f"{len(users) / ours:,.0f} shoppers/s ({n_rows:,} rows) vs {len(users) / peer:,.0f}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=lambda s: int(s.replace("_", "")), default=100_000)
    ap.add_argument("--items", type=lambda s: int(s.replace("_", "")), default=5_000)
    ap.add_argument("--users", type=lambda s: int(s.replace("_", "")), default=8_000)
    ap.add_argument("--encode-n", type=int, default=1_000, help="item texts encoded by each encoder")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engine-items", type=int, default=300, help="items (and their events) in the engine step")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--serve-users", type=int, default=1_000, help="shoppers exported in the serve step")
    ap.add_argument("--steps", default="shop,encode,serve,als,engine,train")
    ap.add_argument("--csv", action="store_true", help="also ingest the shop as CSV files (streamed)")
    ap.add_argument("--memory-peer-max", type=lambda s: int(s.replace("_", "")), default=2_000_000,
                    help="also time the in-memory ingest up to this many events")
    ap.add_argument("--scratch", default=None, help="folder for the databases (default: a temporary one)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="crossrec-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    print(f"{os.cpu_count()} CPUs; {args.events:,} events, {args.items:,} items, {args.users:,} users; "
          f"scratch {scratch}")
    print(f"{'step':<40} {'ours':>11}  {'peer':<30} {'peer':>11}  {'peer/ours':>7}  {'memory':>15}")
    try:
        db = bench_big_shop(args, scratch)
        if "encode" in steps:
            bench_encode(args, db, scratch)
        if "serve" in steps:
            bench_serve(args, db)
        if "als" in steps:
            bench_als(args, db)
        if "engine" in steps:
            bench_engine(args, db, scratch)
        if "train" in steps:
            bench_train(args, db, scratch)
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
