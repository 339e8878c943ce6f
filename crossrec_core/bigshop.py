"""A big demo shop on demand: `crossrec demo --events N --items N --users N`, streamed to Parquet in chunks.

The same simulation as the demo shop (`demo.py`: catalogue, users with interests, sessions, the view →
cart → purchase funnel, Zipf popularity and the planted cross-category journeys with matching items),
run over chunks of shoppers so memory stays bounded by the chunk, not the log. Each chunk's events are
appended to `events.parquet` as a row group; `items.parquet` and `users.parquet` are written once. The
files then go through the normal ingest (`Store.ingest_files`). Same arguments → identical files: the
catalogue and the users come from fixed streams and each chunk from its own `(seed, chunk)` stream.

The number of events is a target: users get sessions in proportion to it (≈ `EVENTS_PER_SESSION` events
per session, measured on the demo shop), and the count actually written is reported (within a few %).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import CrossRecError
from .paths import expand

Progress = Callable[[float, str], None]

EVENTS_PER_SESSION = 3.1  # events one organic session yields in the demo simulation (incl. journey follow-ups)
CHUNK_USERS = 100_000  # shoppers simulated per chunk (one Parquet row group of events each; ~2M events at most)
DAYS = 365
BASE_ITEMS = 5_000  # distinct titles; larger catalogues add editions of these (see `_catalog`)


@dataclass
class BigShopFiles:
    """What `write_parquet` wrote: the three files and their row counts."""

    folder: Path
    items: int
    users: int
    events: int
    seconds: float

    @property
    def paths(self) -> dict[str, Path]:
        return {k: self.folder / f"{k}.parquet" for k in ("items", "events", "users")}


def _sim():
    """The demo simulation's building blocks (one place to adapt if the demo package moves them): the
    demo package split them into demo.items (catalogue draws) and demo.generate (shoppers, sessions)."""
    import importlib
    from types import SimpleNamespace

    items, generate = (importlib.import_module(f"{__package__}.demo.{m}") for m in ("items", "generate"))
    parts = {**vars(items), **vars(generate)}
    return SimpleNamespace(**{k: v for k, v in parts.items() if not k.startswith("__")},
                           _build_catalog=items.build_catalog)


def _catalog(sim, rng: np.random.Generator, n_items: int, base_items: int = BASE_ITEMS):
    """The demo's catalogue at `n_items`. Past BASE_ITEMS the demo's title search (unique titles, tried one
    by one) grows quadratic, so a base catalogue of BASE_ITEMS is built and each item gets editions
    (same sub-category, brand and mount, a price within ±10 %): the journeys' matching pairs keep working."""
    if n_items <= base_items:
        return sim._build_catalog(rng, n_items)
    import pandas as pd

    base = sim._build_catalog(rng, base_items)
    n_base = len(base.frame)
    src = np.arange(n_items) % n_base  # edition e of base item b sits at e * n_base + b
    edition = np.arange(n_items) // n_base + 1
    frame = base.frame.iloc[src].reset_index(drop=True)
    suffix = pd.Series(np.where(edition > 1, " · Edition " + edition.astype(str), ""))
    frame["title"] = frame["title"] + suffix
    frame["price"] = np.round(frame["price"].to_numpy() * rng.uniform(0.9, 1.1, n_items), 2)
    frame["item_id"] = [f"P{k + 1:06d}" for k in rng.permutation(n_items)]
    sub = base.sub[src]
    active = np.ones(n_items, dtype=bool)
    active[rng.choice(n_items, size=max(1, round(0.03 * n_items)), replace=False)] = False
    key, item = sim._zipf_sampler(rng, sub, active)
    return replace(base, frame=frame, sub=sub, compat=base.compat[src], active=active, sample_key=key,
                   sample_item=item, buy_factor=sim._buy_factor(sub, frame["price"].to_numpy()))


def _check_sizes(n_events: int, n_items: int, n_users: int) -> None:
    for name, value, lo in (("--events", n_events, 1), ("--items", n_items, 520), ("--users", n_users, 20)):
        if int(value) < lo:
            raise CrossRecError(f"{name} must be at least {lo:,}, got {value:,}")
    if n_events < n_users:
        raise CrossRecError(f"--events ({n_events:,}) must be at least --users ({n_users:,}): "
                            f"every active shopper has at least one session")


def _scale_sessions(users, n_events: int):
    """Users keep their heavy-tailed activity, scaled so the sessions add up to about n_events."""
    active = users.sessions > 0
    want = n_events / EVENTS_PER_SESSION
    scale = want / max(1, int(users.sessions.sum()))
    sessions = np.where(active, np.maximum(1, np.round(users.sessions * scale)), 0).astype(int)
    return replace(users, sessions=sessions)


def _chunk_users(users, lo: int, hi: int):
    return type(users)(ids=users.ids[lo:hi], interests=users.interests[lo:hi], n_interests=users.n_interests[lo:hi],
                       cold=users.cold[lo:hi], sessions=users.sessions[lo:hi], join_day=users.join_day[lo:hi])


def write_parquet(folder: str | Path, *, n_events: int, n_items: int, n_users: int, seed: int = 7,
                  days: int = DAYS, end: str = "2026-10-31", chunk_users: int = CHUNK_USERS,
                  base_items: int = BASE_ITEMS, progress: Progress | None = None) -> BigShopFiles:
    """Simulate the shop chunk by chunk into `folder` (created; must be new or empty)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_sizes(n_events, n_items, n_users)
    report = progress or (lambda _f, _m: None)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CrossRecError(f"{folder} exists and is not an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sim = _sim()
    start = pd.Timestamp(end, tz="UTC").normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=days)

    report(0.0, f"building a catalogue of {n_items:,} items")
    cat = _catalog(sim, np.random.default_rng([seed, 0]), n_items, base_items)
    items = cat.frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    items["price"] = items["price"].astype(float)
    pq.write_table(pa.Table.from_pandas(items, preserve_index=False), folder / "items.parquet")

    report(0.1, f"creating {n_users:,} shoppers")
    rng_users = np.random.default_rng([seed, 1])
    users = _scale_sessions(sim._build_users(rng_users, n_users, days), n_events)
    texts = sim._profile_texts(rng_users, users)
    pq.write_table(pa.table({"user_id": users.ids, "profile_text": texts.astype(str)}), folder / "users.parquet")

    written = 0
    schema = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("event_type", pa.string()),
                        ("timestamp", pa.timestamp("us", tz="UTC"))])
    n_chunks = max(1, -(-n_users // chunk_users))
    with pq.ParquetWriter(folder / "events.parquet", schema, compression="zstd") as writer:
        for c in range(n_chunks):
            lo, hi = c * chunk_users, min(n_users, (c + 1) * chunk_users)
            part = _chunk_users(users, lo, hi)
            rng = np.random.default_rng([seed, 2, c])
            organic = sim._session_events(rng, cat, sim._organic_sessions(rng, part, days, start))
            organic = organic[organic["t"] < days * sim.DAY]
            follow = sim._session_events(rng, cat, sim._journey_sessions(rng, cat, organic))
            frame = sim._events_frame(cat, part, pd.concat([organic, follow], ignore_index=True), start, days)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            written += len(frame)
            report(0.15 + 0.85 * (c + 1) / n_chunks, f"events: {written:,} (shoppers {hi:,} of {n_users:,})")
    return BigShopFiles(folder=folder, items=len(items), users=n_users, events=written,
                        seconds=time.perf_counter() - t0)


# ---- `crossrec demo --events --items --users` ---------------------------------------------------


def add_demo_scale_args(parser: argparse.ArgumentParser) -> None:
    """The big-shop flags of `crossrec demo` (all three together, or none for the regular demo shop)."""
    g = parser.add_argument_group("a big shop (streamed to Parquet, then ingested)")
    g.add_argument("--events", type=_count, default=None, help="about this many events, e.g. 10_000_000")
    g.add_argument("--items", type=_count, default=None, help="catalogue size, e.g. 200_000")
    g.add_argument("--users", type=_count, default=None, help="shoppers, e.g. 500_000")
    g.add_argument("--parquet-dir", default=None, type=expand,
                   help="keep the generated Parquet files in this new folder (default: a temporary folder "
                        "beside the database, removed after the load)")


def _count(text: str) -> int:
    try:
        return int(str(text).replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def wants_big_shop(args: argparse.Namespace) -> bool:
    given = [getattr(args, k, None) is not None for k in ("events", "items", "users")]
    if any(given) and not all(given):
        raise CrossRecError("a big shop needs all three of --events, --items and --users")
    return all(given)


def build_big_shop(settings, args: argparse.Namespace, progress: Progress | None = None) -> dict:
    """Generate the Parquet files, load them through the normal ingest into a new database, encode (unless
    --no-encode) and move it into place. Nothing is trained (at 10M events that is `crossrec train`'s job)."""
    from .store import holding

    def part(lo: float, hi: float):
        return (lambda f, m: progress(lo + (hi - lo) * f, m)) if progress else None

    path = Path(settings.db_path)
    _check_sizes(args.events, args.items, args.users)
    # the one-writer rule, as build_demo keeps it: the file is held from before the minutes of work until it
    # is replaced, so a file another process holds is refused now and none can open it meanwhile
    with holding(path, args.force):
        files, stats = _build(path, settings, args, part)
    return {**stats, "generated_events": files.events, "generate_seconds": files.seconds}


def _build(path: Path, settings, args: argparse.Namespace, part) -> tuple[BigShopFiles, dict]:
    """Generate, load and encode under a temporary name, then move the database (and its artefacts) into place."""
    from .store import Store

    keep = Path(args.parquet_dir) if args.parquet_dir else None
    folder = keep or path.with_name(f"{path.name}.bigshop-{uuid.uuid4().hex[:8]}")
    # a fresh random name: a file of the user's called `<db>.building` is never touched
    tmp = path.with_name(f"{path.name}.building-{uuid.uuid4().hex[:12]}")
    tmp_settings = settings.replace(db_path=tmp)
    try:
        files = write_parquet(folder, n_events=args.events, n_items=args.items, n_users=args.users,
                              seed=args.seed, progress=part(0.0, 0.4))
        with Store(tmp) as store:
            p = files.paths
            store.ingest_files(p["items"], p["events"], p["users"], settings=settings, progress=part(0.4, 0.8),
                               label=f"big demo shop (seed {args.seed})")
            if not args.no_encode:
                from .encoder import encode_items

                from .encoder import Encoder
                encode_items(store, Encoder.from_settings(tmp_settings), progress=part(0.8, 1.0))
            stats = store.stats()
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(tmp_settings.artefact_dir, ignore_errors=True)
        raise
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    if args.force:
        path.unlink(missing_ok=True)
        Path(str(path) + ".wal").unlink(missing_ok=True)
        shutil.rmtree(settings.artefact_dir, ignore_errors=True)
    os.replace(tmp, path)
    if tmp_settings.artefact_dir.exists():
        tmp_settings.artefact_dir.rename(settings.artefact_dir)
    return files, stats
