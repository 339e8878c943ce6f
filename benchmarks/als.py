"""ALS signal vs plain `implicit`, and the fit times of the other signals, on instacart_sample.

    .venv/bin/python benchmarks/als.py [--repeats 3] [--users 1000] [--data DIR]

Times are medians of `--repeats` runs in one process, the two fits interleaved. The ALS overhead
(goal ≤ 1.1×) is ALSSignal.build(settings).fit(data) — confidence mapping, implicit fit, zeroing factors
of untouched items, YᵀY — against implicit.als.AlternatingLeastSquares(same settings).fit(the same
confidence matrix, built outside the timer). Scoring: ALSSignal.score() for `--users` users
(user factors re-solved from their histories, dense scores over the whole catalog) against
implicit's batch recommend(N=20) with the fitted user factors.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import crossrec_core  # noqa: E402,F401  (sets OPENBLAS_NUM_THREADS before numpy loads)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crossrec_core.config import Settings  # noqa: E402
from crossrec_core.data import build_interactions  # noqa: E402
from crossrec_core.ingest import split_category  # noqa: E402
from crossrec_core.profiles import make_context  # noqa: E402
from crossrec_core.signals import SIGNAL_CLASSES, ALSSignal  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "instacart_sample"


def load(folder: Path, settings: Settings):
    items = pd.read_parquet(folder / "items.parquet")
    items = pd.concat([items.drop(columns=["category"]), split_category(items["category"])], axis=1)
    events = pd.read_parquet(folder / "events.parquet")
    events["ts"] = pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None)
    events = events.drop(columns=["timestamp"])
    return build_interactions(items, events, settings)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args(argv)
    if not (args.data / "items.parquet").exists() or not (args.data / "events.parquet").exists():
        print(f"skipped: no items.parquet/events.parquet in {args.data}")
        return 0

    import implicit.als
    import implicit.gpu

    settings = Settings()
    t = time.perf_counter()
    data = load(args.data, settings)
    print(f"data: {data.n_users} users × {data.n_items} items, {data.X.nnz} non-zeros, "
          f"{len(data.cat_flow_names)} flow categories (built in {time.perf_counter() - t:.2f} s)")
    ours = ALSSignal.build(settings)
    print(f"implicit {implicit.__version__}, CUDA: {implicit.gpu.HAS_CUDA}, "
          f"factors={ours.factors} iterations={ours.iterations} reg={ours.regularization}")

    C = ours.confidence_matrix(data.X)
    touched = np.flatnonzero(np.diff(C.tocsc().indptr) > 0)
    C_touched = C[:, touched]

    def plain(matrix=C):
        m = implicit.als.AlternatingLeastSquares(
            factors=ours.factors, regularization=ours.regularization, alpha=1.0,
            iterations=ours.iterations, random_state=ours.random_state, use_gpu=implicit.gpu.HAS_CUDA)
        m.fit(matrix, show_progress=False)
        return m

    plain()  # warm-up (imports, thread pool)
    ours_t, plain_t, plain_touched_t = [], [], []
    for _ in range(args.repeats):
        plain_t.append(timed(plain))
        ours_t.append(timed(lambda: ALSSignal.build(settings).fit(data)))
        plain_touched_t.append(timed(lambda: plain(C_touched)))
    p, o, pt = median(plain_t), median(ours_t), median(plain_touched_t)
    print(f"ALS fit   implicit on the full matrix ({C.shape[1]} items): {p:.3f} s   ALSSignal: {o:.3f} s   "
          f"ratio {o / p:.3f}× (goal ≤ 1.1×)")
    print(f"          ALSSignal fits the {len(touched)} items with events; implicit on that same matrix: {pt:.3f} s "
          f"-> wrapper overhead {o / pt:.3f}×")

    # scoring: a batch of users (sampled with replacement when the data has fewer)
    rng = np.random.default_rng(settings.seed)
    rows = rng.choice(data.n_users, size=args.users, replace=data.n_users < args.users)
    emb = rng.standard_normal((data.n_items, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ctx = make_context(data, data.X[rows], emb)
    model = plain()
    Crows = C[rows]
    sig = {name: ALSSignal.build(settings, solver=name).fit(data) for name in ("implicit", "numpy")}
    res = {}
    for name, s in sig.items():
        s.score(ctx)
        res[name] = median([timed(lambda: s.score(ctx)) for _ in range(args.repeats)])
    rec = median([timed(lambda: model.recommend(rows, Crows, N=20)) for _ in range(args.repeats)])

    f_imp = median([timed(lambda: sig["implicit"].user_factors(ctx.X)) for _ in range(args.repeats)])
    f_np = median([timed(lambda: sig["numpy"].user_factors(ctx.X)) for _ in range(args.repeats)])
    print(f"ALS score {args.users} users: user solve implicit-native {f_imp * 1e3:.1f} ms, numpy {f_np * 1e3:.1f} ms; "
          f"score() (numpy solve + dense {args.users}×{data.n_items}) {res['numpy'] * 1e3:.1f} ms "
          f"(native solve {res['implicit'] * 1e3:.1f} ms); "
          f"implicit recommend(N=20) {rec * 1e3:.1f} ms")
    a = sig["implicit"].score(ctx)
    b = sig["numpy"].score(ctx)
    print(f"  native vs numpy solve: max |Δscore| = {np.abs(a - b).max():.2e}")

    # every other signal's fit on the same data
    parts = []
    for name, cls in SIGNAL_CLASSES.items():
        if name == "als":
            continue
        t_fit = median([timed(lambda: cls.build(settings).fit(data, emb)) for _ in range(args.repeats)])
        s = cls.build(settings).fit(data, emb)
        t_score = median([timed(lambda: s.score(ctx)) for _ in range(args.repeats)])
        parts.append(f"{name} fit {t_fit:.3f} s / score {t_score * 1e3:.0f} ms")
    print("other signals (" + f"{args.users} users scored): " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
