"""`crossrec demo|ingest|events|compact|stats|encode`: building and loading the shop's data."""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from ..config import EncoderSettings, Settings
from ..errors import CrossRecError, DatabaseLockedError, environment_error
from ..paths import expand
from .base import command, input_files, open_store, progress_bar, settings_for


@command
def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo shop database."""
    from ..demo import build_demo

    path = Path(args.db)
    if path.exists() and not args.force:
        raise CrossRecError(f"{path} exists already; pass --force to rebuild it")
    from ..bigshop import build_big_shop, wants_big_shop

    with progress_bar(not args.quiet) as progress:
        if wants_big_shop(args):  # --events/--items/--users: the big shop, streamed to Parquet and ingested
            stats = build_big_shop(settings_for(args), args, progress=progress)
        else:
            stats = build_demo(settings_for(args), seed=args.seed, force=args.force, encode=not args.no_encode,
                               progress=progress)
    print(f"demo shop built at {path}: {stats['items']:,} items, {stats['users']:,} users, "
          f"{stats['events']:,} events, {stats['top_level_categories']} top-level categories")
    return 0


@command
def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate input files and load them in one transaction."""
    if args.items is None and args.events is None and args.users is None:
        raise CrossRecError("nothing to ingest: give --items, --events and/or --users")  # before creating --db
    input_files(args, "--items", "--events", "--users")  # a FIFO or /dev/zero: refused before it is opened
    import duckdb

    db = Path(args.db)
    created = not db.exists()
    start = time.perf_counter()
    try:
        with open_store(args, write=True, create=True) as store, progress_bar(not args.quiet) as progress:
            report = store.ingest_files(args.items, args.events, args.users, encoding=args.encoding,
                                        settings=settings_for(args), progress=progress)
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
    seconds = time.perf_counter() - start
    rows = report.items_in_file + report.users_in_file + report.events_in_file
    # the process's peak resident memory (Linux reports KiB): this command does nothing but the load
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({**report.to_dict(), "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds),
                          "peak_rss_mb": round(peak_mb)}, default=str))
    else:
        for line in report.lines():
            print(line)
        print(f"loaded {rows:,} rows in {seconds:,.1f} s ({rows / seconds:,.0f} rows/s), peak RSS {peak_mb:,.0f} MB")
    return 0


@command
def cmd_events(args: argparse.Namespace) -> int:
    """`events delete`: remove events by time, user and/or item in one transaction."""
    filters = {"before": args.before, "after": args.after, "user": args.user, "item": args.item}
    with open_store(args, write=True) as store:
        n = store.delete_events(**filters)
    print(f"removed {n:,} events ({', '.join(f'{k} {v}' for k, v in filters.items() if v is not None)})")
    return 0


@command
def cmd_compact(args: argparse.Namespace) -> int:
    """Rewrite the database file at the size its data needs."""
    from ..store import compact

    before, after = compact(Path(args.db))
    print(f"compacted {args.db}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB")
    return 0


@command
def cmd_stats(args: argparse.Namespace) -> int:
    """Counts, categories, date range and event-type mix."""
    with open_store(args) as store:
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


@command
def cmd_encode(args: argparse.Namespace) -> int:
    """Embed item texts; only new or changed texts are encoded."""
    from ..encoder import Encoder, encode_items

    settings = settings_for(args)
    settings = settings.replace({"encoder.model": args.model or settings.encoder.model, "encoder.device": args.device,
                                 "encoder.precision": args.precision, "encoder.batch_size": args.batch_size,
                                 "encoder.backend": args.backend})
    encoder = Encoder.from_settings(settings)
    with open_store(args, write=True) as store, progress_bar(not args.quiet) as progress:
        result = encode_items(store, encoder, progress=progress)
    print(f"encoded {result.encoded:,} texts, reused {result.reused:,} ({encoder.model_id}, "
          f"{encoder.device}, {encoder.precision}) in {result.seconds:.1f} s")
    if encoder.backend_ is not None and "int8" in encoder.precision_reason_:
        print(encoder.precision_reason_)
    return 0



def add_parsers(sub, common) -> None:
    from ..encoder import DEVICES, PRECISIONS

    p = sub.add_parser("demo", parents=[common], help="build the demo shop database")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--force", action="store_true", help="rebuild when the file exists")
    p.add_argument("--no-encode", action="store_true", help="skip embedding item texts")
    from ..bigshop import add_demo_scale_args

    add_demo_scale_args(p)

    p = sub.add_parser("ingest", parents=[common], help="validate and load items/events/users files")
    p.add_argument("--items", type=expand, help="items CSV or Parquet")
    p.add_argument("--events", type=expand, help="events CSV or Parquet")
    p.add_argument("--users", type=expand, help="users CSV or Parquet")
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
    p.add_argument("--device", default=EncoderSettings.device, choices=DEVICES)
    p.add_argument("--precision", default=EncoderSettings.precision, choices=PRECISIONS)
    p.add_argument("--backend", default=EncoderSettings.backend, choices=["auto", "torch", "onnx-int8"],
                   help="auto: int8 ONNX Runtime on a CPU without bf16, only where it reproduces fp32")
    p.add_argument("--batch-size", type=int, default=EncoderSettings.batch_size)
