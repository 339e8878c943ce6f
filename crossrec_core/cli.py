"""`crossrec` command line: thin, like the pages. Every command takes --db and exits non-zero with a
one-line reason on bad input."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .config import Settings, default_db_path
from .errors import CrossRecError, DatabaseLockedError, environment_error

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_").replace("_", "-")] = fn
    return fn


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr driven by the core's `progress(fraction, message)` callbacks."""
    if not enabled or not sys.stderr.isatty() and not _force_progress():
        yield lambda frac, msg: None
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, bar_format="{desc:<40} |{bar}| {percentage:3.0f}% {elapsed}", leave=False)

    def update(frac: float, msg: str) -> None:
        bar.set_description_str(msg[:40])
        bar.n = int(max(0.0, min(1.0, frac)) * 1000)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _force_progress() -> bool:
    import os

    return os.environ.get("CROSSREC_PROGRESS") == "1"


def _settings(args: argparse.Namespace) -> Settings:
    from .finetune.registry import with_chosen_encoder

    return with_chosen_encoder(Settings(db_path=Path(args.db)))  # the encoder `encoders use` chose


def _open(args: argparse.Namespace, *, write: bool = False, create: bool = False):
    from .store import Store

    return Store(args.db, read_only=not write, create=create)


# ---- commands ---------------------------------------------------------------------------------


@command
def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo shop database."""
    from .demo import build_demo

    path = Path(args.db)
    if path.exists() and not args.force:
        raise CrossRecError(f"{path} exists already; pass --force to rebuild it")
    from .bigshop import build_big_shop, wants_big_shop

    with progress_bar(not args.quiet) as progress:
        if wants_big_shop(args):  # --events/--items/--users: the big shop, streamed to Parquet and ingested
            stats = build_big_shop(_settings(args), args, progress=progress)
        else:
            stats = build_demo(_settings(args), seed=args.seed, force=args.force, encode=not args.no_encode,
                               progress=progress)
    print(f"demo shop built at {path}: {stats['items']:,} items, {stats['users']:,} users, "
          f"{stats['events']:,} events, {stats['top_level_categories']} top-level categories")
    return 0


@command
def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate input files and load them in one transaction."""
    if args.items is None and args.events is None and args.users is None:
        raise CrossRecError("nothing to ingest: give --items, --events and/or --users")  # before creating --db
    import duckdb

    db = Path(args.db)
    created = not db.exists()
    try:
        with _open(args, write=True, create=True) as store, progress_bar(not args.quiet) as progress:
            report = store.ingest_files(args.items, args.events, args.users, encoding=args.encoding,
                                        settings=_settings(args), progress=progress)
    except (CrossRecError, OSError, duckdb.Error) as exc:  # OSError, IOException: an unreadable file, a full disk
        if created and not isinstance(exc, DatabaseLockedError):
            # a failed first load leaves no empty database behind: the file is as before (absent)
            for leftover in (db, Path(f"{db}.wal")):
                leftover.unlink(missing_ok=True)
        reason = environment_error(exc)
        if reason and reason.startswith("no space left") and not created:
            raise CrossRecError(f"{reason}; the data is as it was, but the file keeps the space the failed load "
                                "took: `crossrec compact` gives it back") from None
        raise
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        for line in report.lines():
            print(line)
    return 0


@command
def cmd_events(args: argparse.Namespace) -> int:
    """`events delete`: remove events by time, user and/or item in one transaction."""
    filters = {"before": args.before, "after": args.after, "user": args.user, "item": args.item}
    with _open(args, write=True) as store:
        n = store.delete_events(**filters)
    print(f"removed {n:,} events ({', '.join(f'{k} {v}' for k, v in filters.items() if v is not None)})")
    return 0


@command
def cmd_compact(args: argparse.Namespace) -> int:
    """Rewrite the database file at the size its data needs."""
    from .store import compact

    before, after = compact(Path(args.db))
    print(f"compacted {args.db}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB")
    return 0


@command
def cmd_stats(args: argparse.Namespace) -> int:
    """Counts, categories, date range and event-type mix."""
    with _open(args) as store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"database     {args.db}")
    print(f"items        {stats['items']:,}")
    print(f"users        {stats['users']:,}")
    print(f"events       {stats['events']:,}")
    print(f"categories   {stats['categories']:,} ({stats['top_level_categories']} top-level)")
    print(f"first event  {stats['first_event']}")
    print(f"last event   {stats['last_event']}")
    for kind, n in stats["event_types"].items():
        share = n / stats["events"] if stats["events"] else 0
        print(f"  {kind:<10} {n:>10,}  {share:6.1%}")
    return 0


def _print_json(obj) -> None:
    print(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


@command
def cmd_encode(args: argparse.Namespace) -> int:
    """Embed item texts; only new or changed texts are encoded."""
    from .encoder import Encoder, encode_items

    settings = _settings(args)
    settings = settings.replace(model=args.model or settings.model, device=args.device, precision=args.precision,
                                batch_size=args.batch_size, encoder_backend=args.backend)
    encoder = Encoder.from_settings(settings)
    with _open(args, write=True) as store, progress_bar(not args.quiet) as progress:
        result = encode_items(store, encoder, progress=progress)
    print(f"encoded {result.encoded:,} texts, reused {result.reused:,} ({encoder.model_id}, "
          f"{encoder.device}, {encoder.precision}) in {result.seconds:.1f} s")
    if encoder.backend_ is not None and "int8" in encoder.precision_reason_:
        print(encoder.precision_reason_)
    return 0


@command
def cmd_finetune(args: argparse.Namespace) -> int:
    """Tune the item encoder on co-purchases of the training period; adopt it only when better."""
    from .finetune.run import FinetuneOptions, finetune

    opts = FinetuneOptions(mode=args.mode, base=args.base, device=args.device, max_minutes=args.max_minutes,
                           epochs=args.epochs, batch_size=args.batch_size, name=args.name, resume=args.resume,
                           force=args.force)
    settings = Settings(db_path=Path(args.db))
    with _open(args, write=True) as store, progress_bar(not args.quiet) as progress:
        res = finetune(store, settings, opts, progress=progress)
    card = res.card
    tr = card["training"]
    base, tuned = card["validation"]["base"], card["validation"]["tuned"]
    print(f"tuned encoder '{res.name}' ({res.mode}, {res.device}/{card['precision']}): {card['pairs']['pairs']:,} pairs, "
          f"{tr['step']:,} steps, {tr['epoch']:.2f} epochs, {tr['examples_per_s']:,.0f} examples/s"
          + (" (stopped at --max-minutes; --resume continues)" if tr["stopped"] == "time" else ""))
    for label, key in (("content Recall@20", "all"), ("cold items Recall@20", "cold_items"),
                       ("pair Recall@10", "pair_recall")):
        b, t = base.get(key), tuned.get(key)
        if b is not None and t is not None:
            print(f"  {label:<21} base {b:.4f}  tuned {t:.4f}  (validation period)")
    print(("adopted: " if res.adopted else "kept the current encoder: ") + res.reason)
    print(f"saved in {res.folder}")
    return 0


@command
def cmd_encoders(args: argparse.Namespace) -> int:
    """List the stored encoders, or choose the one `encode`, `train` and serving use."""
    from .finetune import registry

    settings = Settings(db_path=Path(args.db))
    if args.action == "use":
        if not args.target:
            raise CrossRecError("say which encoder: crossrec encoders use NAME (or 'base')")
        folder = registry.use_encoder(settings, args.target)
        model_id = registry.read_card(folder).get("model_id") if folder else None
        stored = True
        if model_id:
            with _open(args) as store:
                stored = store.embedding_count(model_id) > 0
        step = "" if stored else "`crossrec encode` to store its item vectors, then "
        print(f"encoder '{args.target}' chosen; run {step}`crossrec train` to refit with it")
        return 0
    rows = registry.list_encoders(settings)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        figs = "" if r["val_content_recall"] is None else (
            f"  val content R@20 {r['val_content_recall']:.4f}  pair R@10 {r['val_pair_recall'] or 0:.4f}")
        print(f"{'*' if r['chosen'] else ' '} {r['name']:<24} {r['mode']:<5} {r['created'][:19]:<19}{figs}")
    return 0


def _recommender(args: argparse.Namespace, store):
    from .recommender import Recommender
    from .train import load_run, serving_recommender

    if getattr(args, "run", None):
        return load_run(store, args.run)
    rec = serving_recommender(store, _settings(args))
    if rec is None:
        print("no trained run yet: fitting with default weights (run `crossrec train` to learn them)",
              file=sys.stderr)
        rec = Recommender(_settings(args)).fit(store)
    return rec


@command
def cmd_recommend(args: argparse.Namespace) -> int:
    """Top-k for a user, seed items or a query, with explanations."""
    contexts = [x for x in (args.user, args.items, args.query) if x is not None]
    if len(contexts) != 1:
        raise CrossRecError("give exactly one of --user, --items or --query")
    if args.mode == "target" and not args.category:
        raise CrossRecError("--mode target needs --category")
    if args.k < 1:
        raise CrossRecError("--k must be at least 1")
    with _open(args) as store:
        rec = _recommender(args, store)
        explain = args.explain or args.json
        if args.user is not None:
            df = rec.recommend(args.user, k=args.k, mode=args.mode, category=args.category, explain=explain)
        elif args.items is not None:
            df = rec.recommend_for_items(args.items.split(","), k=args.k, mode=args.mode, category=args.category,
                                         explain=explain)
        else:
            df = rec.recommend_for_query(args.query, k=args.k, mode=args.mode, category=args.category,
                                         explain=explain)
    from .config import CONTRIBUTIONS

    if args.json:  # "rules" appears only when a pair rule moved the ranker's score
        _print_json([
            {"rank": int(r["rank"]), "item_id": r["item_id"], "title": r["title"], "category": r["category"],
             "score": float(r["score"]), "base": float(r["base"]),
             "contributions": {s: float(r[s]) for s in CONTRIBUTIONS if s != "rules" or r[s] != 0},
             "reason": r["reason"]}
            for r in df.to_dict(orient="records")
        ])
        return 0
    if df.empty:
        print("no items to recommend in this mode")
        return 0
    for r in df.itertuples(index=False):
        title = r.title if len(r.title) <= 60 else r.title[:59] + "…"
        print(f"{r.rank:>3}. {title:<60} {r.category[:40]:<40} {r.score:6.3f}")
        if args.explain:
            parts = ", ".join(f"{s} {getattr(r, s):+.2f}" for s in CONTRIBUTIONS if getattr(r, s) != 0)
            print(f"     {r.reason}")
            print(f"     [{parts}]")
    return 0


@command
def cmd_train(args: argparse.Namespace) -> int:
    """Learn weights on a validation carve-out, evaluate, fit for serving, record a run."""
    from .config import parse_weights
    from .train import train

    weights = parse_weights(args.weights) if args.weights else None
    with _open(args, write=True) as store, progress_bar(not args.quiet) as progress:
        if args.engine == "ray":  # the batch steps on a Ray cluster first; ALS and the rest stay here
            from .engine.ray_jobs import run_batch_steps

            run_batch_steps(store, _settings(args), address=args.address, work_dir=args.work_dir, progress=progress)
        run = train(store, _settings(args), weights=weights, name=args.name, learn=not args.no_learn,
                    project=True, progress=progress)
    m = (run["metrics"].get("slices", {}).get("all") or {}).get("crossrec") or {}

    def num(key: str) -> str:
        value = m.get(key)
        return "–" if value is None else f"{float(value):.4f}"

    w = ", ".join(f"{k}={v:.2f}" for k, v in run["weights"].items())
    print(f"run {run['name']} is serving ({run['duration_s']:.0f} s); weights: {w}")
    print(f"held-out @{run['metrics']['k']}: recall {num('recall')}, ndcg {num('ndcg')}, "
          f"cross recall {num('cross_recall')} ({m.get('users') or 0} users)")
    ranker = run["metrics"].get("ranker") or {}
    model = run["metrics"].get("model", "fusion")
    print(f"model: {'learned ranker' if model == 'ranker' else 'linear fusion of the signals'}"
          + (f" ({ranker['reason']})" if ranker.get("reason") else ""))
    _print_intervals(run["metrics"])
    return 0


def _print_intervals(result: dict) -> None:
    """crossrec minus the best baseline, with its 95 % paired-bootstrap interval over users."""
    for metric, iv in (result.get("intervals") or {}).items():
        if not iv:
            continue
        verdict = ("above" if iv["low"] > 0 else "below" if iv["high"] < 0 else "within noise of")
        ratio = f" ({iv['ratio']:.3f}x)" if iv.get("ratio") else ""
        print(f"{metric}: crossrec - {iv['best']} = {iv['diff']:+.4f} [95% {iv['low']:+.4f}, {iv['high']:+.4f}]"
              f"{ratio}: {verdict} the best baseline")


@command
def cmd_eval(args: argparse.Namespace) -> int:
    """The metrics table, ours against the baselines, for each slice."""
    from .evaluate import metrics_table
    from .train import eval_run

    settings = _settings(args).replace(k=args.k)
    with _open(args, write=True) as store, progress_bar(not args.quiet and not args.json) as progress:
        result = eval_run(store, settings, record=not args.no_record, progress=progress)
    if args.json:
        _print_json(result)
        return 0
    table = metrics_table(result)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        for slice_name, part in table.groupby("slice", sort=False):
            print(f"\n== {slice_name} (K={result['k']})")
            print(part.drop(columns=["slice"]).set_index("model").to_string())
    print()
    _print_intervals(result)
    return 0


@command
def cmd_export(args: argparse.Namespace) -> int:
    """Recommendation lists to an Excel-safe CSV, one row per (user, rank)."""
    from .export import check_out_path, write_csv
    from .ingest import read_table

    check_out_path(args.out, args.db, force=args.force)
    with _open(args) as store:
        if args.users:
            table = read_table(args.users, "users")
            user_ids = table.frame["user_id"].astype(str).str.strip().tolist()
            unknown = [u for u in user_ids if not store.has_user(u)]
            if unknown:
                raise CrossRecError(f"{Path(args.users).name}: unknown user '{unknown[0]}' ({len(unknown)} unknown)")
        else:
            user_ids = store.user_ids()
        rec = _recommender(args, store)
        with progress_bar(not args.quiet) as progress:
            n = write_csv(rec, args.out, user_ids, k=args.k, mode=args.mode, category=args.category,
                          progress=progress)
    print(f"wrote {n:,} rows for {len(user_ids):,} users to {args.out}")
    return 0


@command
def cmd_app(args: argparse.Namespace) -> int:
    """Start the dashboard on --db (building the demo shop first when it is the default and absent)."""
    import os
    import subprocess

    path = Path(args.db)
    if not path.exists():
        if Path(args.db).resolve() != default_db_path().resolve():
            raise CrossRecError(f"no database at {path}: run `crossrec demo --db {path}` or ingest files")
        print(f"building the demo shop at {path} (first start only)…", file=sys.stderr)
        from .demo import build_demo

        with progress_bar(not args.quiet) as progress:
            build_demo(_settings(args), progress=progress)
    app = Path(__file__).resolve().parents[1] / "app.py"
    env = {**os.environ, "CROSSREC_DB": str(path.resolve())}
    cmd = app_command(app, args.host, args.port)
    print(f"CrossRec dashboard on http://{'localhost' if args.host == '127.0.0.1' else args.host}:{args.port} "
          f"(database {path})", file=sys.stderr)
    if args.host != "127.0.0.1":
        print(f"it listens on {args.host} without authentication: put an authenticating proxy in front "
              "(README, 'Serving the dashboard to others')", file=sys.stderr)
    return subprocess.call(cmd, env=env, cwd=str(app.parent))


def app_command(app: Path, host: str, port: int) -> list[str]:
    """`streamlit run` bound to `host` only (127.0.0.1 unless --host says otherwise)."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]


# ---- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossrec", description="CrossRec: explainable cross-category recommendation")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=str(default_db_path()), help="DuckDB file (default: %(default)s; env CROSSREC_DB)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("demo", parents=[common], help="build the demo shop database")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--force", action="store_true", help="rebuild when the file exists")
    p.add_argument("--no-encode", action="store_true", help="skip embedding item texts")
    from .bigshop import add_demo_scale_args

    add_demo_scale_args(p)

    p = sub.add_parser("ingest", parents=[common], help="validate and load items/events/users files")
    p.add_argument("--items", help="items CSV or Parquet")
    p.add_argument("--events", help="events CSV or Parquet")
    p.add_argument("--users", help="users CSV or Parquet")
    p.add_argument("--encoding", default="utf-8", help="text encoding of CSV files (default utf-8)")
    p.add_argument("--json", action="store_true", help="print the load report as JSON")

    p = sub.add_parser("events", parents=[common], help="remove events (e.g. outlier timestamps)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    d = actions.add_parser("delete", parents=[common], help="remove the events matching every filter given, in "
                                                            "one transaction (at least one filter)")
    d.add_argument("--before", help="events earlier than this time (ISO 8601, UTC unless it says otherwise)")
    d.add_argument("--after", help="events later than this time")
    d.add_argument("--user", help="events of this user")
    d.add_argument("--item", help="events of this item")

    sub.add_parser("compact", parents=[common], help="rewrite the database file at the size its data needs "
                                                      "(e.g. after a load failed on a full disk)")

    p = sub.add_parser("stats", parents=[common], help="counts, categories, date range, event mix")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("encode", parents=[common], help="embed item texts (only new or changed ones)")
    p.add_argument("--model", default=None,
                   help="model folder or name (default: the chosen encoder, else the packaged all-MiniLM-L6-v2)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx-int8"],
                   help="auto: int8 ONNX Runtime on a CPU without bf16, only where it reproduces fp32")
    p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("recommend", parents=[common], help="top-k for a user, seed items or a query")
    p.add_argument("--user", help="user id")
    p.add_argument("--items", help="comma-separated seed item ids (a cart or an item page)")
    p.add_argument("--query", help="free-text query")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--mode", default="all", choices=["all", "cross", "target"])
    p.add_argument("--category", help="category for --mode target (top-level name or path)")
    p.add_argument("--explain", action="store_true", help="show contributions and the reason")
    p.add_argument("--run", help="use this run instead of the serving one")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("train", parents=[common], help="learn weights, evaluate, fit for serving, record a run")
    p.add_argument("--weights", help="e.g. cooc=0.3,als=0.1,graph=0.3,content=0.1,transition=0.1,popularity=0.1")
    p.add_argument("--name", help="run name (default: run-<time>)")
    p.add_argument("--no-learn", action="store_true", help="use default weights instead of learning them")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="ray: encode item texts on a Ray cluster first (pip install 'crossrec[ray]')")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local one)")
    p.add_argument("--work-dir", default=None, help="folder every Ray node sees, for the jobs' Parquet files")

    p = sub.add_parser("eval", parents=[common], help="metrics table: ours against the baselines")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--no-record", action="store_true", help="do not record the evaluation as a run")

    p = sub.add_parser("export", parents=[common], help="recommendation lists to an Excel-safe CSV")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--force", action="store_true", help="replace --out when it exists")
    p.add_argument("--users", help="CSV/Parquet with a user_id column (default: every user)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--mode", default="all", choices=["all", "cross", "target"])
    p.add_argument("--category", help="category for --mode target")
    p.add_argument("--run", help="use this run instead of the serving one")

    p = sub.add_parser("finetune", parents=[common], help="tune the item encoder on co-purchases (training period)")
    p.add_argument("--base", default=Settings.model, help="base model folder or name (default: packaged MiniLM)")
    p.add_argument("--mode", default="auto", choices=["auto", "head", "lora", "full"],
                   help="head: a network on frozen vectors (CPU default); lora/full: the transformer (CUDA: full)")
    p.add_argument("--max-minutes", type=float, help="stop at a checkpoint after this long (--resume continues)")
    p.add_argument("--epochs", type=float, help="passes over the pairs (default: head 10, lora/full 1)")
    p.add_argument("--batch-size", type=int, help="pairs per batch (default: head 256, lora/full 64)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--name", help="encoder name (default: ft-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint of --name")
    p.add_argument("--force", action="store_true", help="adopt even when not better; replace an encoder of that name")

    p = sub.add_parser("encoders", parents=[common], help="list tuned encoders, or choose one (or 'base')")
    p.add_argument("action", choices=["list", "use"])
    p.add_argument("target", nargs="?", help="for use: an encoder name, or 'base'")
    p.add_argument("--json", action="store_true", help="print one JSON document (list)")

    p = sub.add_parser("app", parents=[common], help="start the dashboard")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 exposes it "
                        "without authentication: see the README on putting a proxy in front)")

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a full disk or a closed pipe on stdout shows here, not after main returns
        return code
    except CrossRecError as exc:
        print(f"crossrec {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crossrec {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `crossrec stats | head`: the reader has all it wanted; leave quietly
        _silence_stdout()
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, the traceback on request
        import os

        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            _silence_stdout()  # stdout itself failed (e.g. > a full disk): nothing more may go there
        reason = environment_error(exc)
        if reason is not None:
            print(f"crossrec {args.command}: {reason}", file=sys.stderr)
            return 2
        if os.environ.get("CROSSREC_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"crossrec {args.command}: internal error: {type(exc).__name__}: {first} "
              f"(set CROSSREC_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail a second time."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
