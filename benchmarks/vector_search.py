"""Which search serves the vector signals' candidates (issue 23): exact inner product (one matrix product and
the numba heap top-n that `Signal.retrieve` runs) against faiss's exact flat index and its HNSW graph, on the
shop's real item text vectors and on a 200k-item catalogue made from them. Per query batch size: median
milliseconds per shopper, HNSW's build time and its recall of the exact top-n. Nothing here asserts.

    .venv/bin/python benchmarks/vector_search.py [--db benchmarks/out/completejourney.duckdb] [--n 100]

faiss (`pip install faiss-cpu`) is only this benchmark's peer: without it the exact rows alone print.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def exact(E: np.ndarray, Q: np.ndarray, n: int) -> np.ndarray:
    """The served path: scores = Q Eᵀ, then each row's n best allowed items by the heap kernel."""
    from crossrec_core.retrieval_kernels import dense_top

    scores = Q @ E.T
    out = np.full((len(Q), n), -1, np.int64)
    allowed = np.ones((len(Q), E.shape[0]), bool)
    dense_top(scores, np.arange(E.shape[0], dtype=np.int64), allowed, n, out)
    return out


def timed(fn, Q: np.ndarray, batch: int, repeats: int = 3) -> tuple[float, np.ndarray]:
    """Median ms per query over `repeats` passes of Q in batches of `batch`, and the last pass's result."""
    times, got = [], None
    for _ in range(repeats):
        parts = []
        t0 = time.perf_counter()
        for s in range(0, len(Q), batch):
            parts.append(fn(Q[s:s + batch]))
        times.append((time.perf_counter() - t0) / len(Q) * 1e3)
        got = np.vstack(parts)
    return float(np.median(times)), got


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a[a >= 0], b[b >= 0])) / max((b >= 0).sum(), 1)
                          for a, b in zip(found, truth)]))


def vectors(db: Path | None) -> np.ndarray:
    if db is not None and db.exists():
        from crossrec_core.config import Settings
        from crossrec_core.encoder import item_embeddings
        from crossrec_core.store import Store

        settings = Settings(db_path=db)
        with Store(db, read_only=True) as store:
            items = store.items().sort_values("item_id").reset_index(drop=True)
            from crossrec_core.encoder import Encoder

            E = item_embeddings(store, Encoder.from_settings(settings).model_id, items,
                                settings.encoder.max_text_chars)
        if E is not None and len(E):
            return np.ascontiguousarray(E, np.float32)
    rng = np.random.default_rng(0)
    E = rng.standard_normal((50_000, 384)).astype(np.float32)
    return E / np.linalg.norm(E, axis=1, keepdims=True)


def catalogue(E: np.ndarray, size: int, rng) -> np.ndarray:
    """`size` unit vectors: the real ones, then perturbed copies of them (a bigger shop of similar texts)."""
    extra = size - len(E)
    if extra <= 0:
        return E[:size]
    base = E[rng.integers(0, len(E), extra)]
    more = base + 0.15 * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(E.shape[1])
    out = np.vstack([E, more]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=Path(__file__).resolve().parent / "out" / "completejourney.duckdb")
    ap.add_argument("--n", type=int, default=100, help="candidates per shopper (Settings.ranker_candidates)")
    ap.add_argument("--queries", type=int, default=512)
    args = ap.parse_args()
    try:
        import faiss
    except ImportError:
        faiss = None
    rng = np.random.default_rng(1)
    E0 = vectors(args.db)
    print(f"{os.cpu_count()} CPUs; {len(E0):,} real item vectors of {E0.shape[1]} dims; top-{args.n}"
          + ("" if faiss else "; faiss not installed: exact only"))
    print(f"{'items':>8} {'batch':>5}  {'exact ms/shopper':>16}  {'faiss flat':>10}  {'faiss HNSW':>10}  "
          f"{'HNSW recall':>11}  {'HNSW build':>10}")
    for size in sorted({len(E0), 200_000}):
        E = catalogue(E0, size, rng)
        # a shopper's query: the mean of a few of their items' vectors, as the text signal's profile is
        picks = rng.integers(0, len(E), (args.queries, 5))
        Q = E[picks].mean(axis=1).astype(np.float32)
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        hnsw = build_s = None
        if faiss is not None:
            flat = faiss.IndexFlatIP(E.shape[1])
            flat.add(E)
            t0 = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(E.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            hnsw.add(E)
            build_s = time.perf_counter() - t0
            hnsw.hnsw.efSearch = max(128, 2 * args.n)
        for batch in (1, 256):
            q = Q[: 64] if batch == 1 else Q
            ms, truth = timed(lambda b: exact(E, b, args.n), q, batch)
            row = f"{size:>8,} {batch:>5}  {ms:>16.2f}"
            if faiss is not None:
                f_ms, _ = timed(lambda b: flat.search(b, args.n)[1], q, batch)
                h_ms, found = timed(lambda b: hnsw.search(b, args.n)[1], q, batch)
                row += (f"  {f_ms:>10.2f}  {h_ms:>10.2f}  {recall(found, truth):>11.3f}  {build_s:>9.1f}s"
                        f"   (exact/HNSW {ms / h_ms:.1f}x)")
            print(row, flush=True)


if __name__ == "__main__":
    main()
