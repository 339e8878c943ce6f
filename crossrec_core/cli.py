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
from .errors import CrossRecError

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
    return Settings(db_path=Path(args.db))


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
    with progress_bar(not args.quiet) as progress:
        stats = build_demo(_settings(args), seed=args.seed, force=args.force, encode=not args.no_encode,
                           progress=progress)
    print(f"demo shop built at {path}: {stats['items']:,} items, {stats['users']:,} users, "
          f"{stats['events']:,} events, {stats['top_level_categories']} top-level categories")
    return 0


@command
def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate input files and load them in one transaction."""
    with _open(args, write=True, create=True) as store, progress_bar(not args.quiet) as progress:
        report = store.ingest_files(args.items, args.events, args.users, encoding=args.encoding,
                                    settings=_settings(args), progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        for line in report.lines():
            print(line)
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

    p = sub.add_parser("ingest", parents=[common], help="validate and load items/events/users files")
    p.add_argument("--items", help="items CSV or Parquet")
    p.add_argument("--events", help="events CSV or Parquet")
    p.add_argument("--users", help="users CSV or Parquet")
    p.add_argument("--encoding", default="utf-8", help="text encoding of CSV files (default utf-8)")
    p.add_argument("--json", action="store_true", help="print the load report as JSON")

    p = sub.add_parser("stats", parents=[common], help="counts, categories, date range, event mix")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except CrossRecError as exc:
        print(f"crossrec {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crossrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
