"""`crossrec recommend|export|app`: the lists, as text, JSON, CSV or the dashboard."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import MODES, EvaluationSettings, Settings, default_db_path
from ..errors import CrossRecError
from ..paths import expand
from .base import check_k_arg, command, input_files, open_store, print_json, progress_bar, settings_for

if TYPE_CHECKING:
    from ..store import Store


def _recommender(args: argparse.Namespace, store: Store):
    from ..recommender import Recommender
    from ..runs import load_run, serving_recommender, with_live_rules

    if getattr(args, "run", None):
        return load_run(store, args.run)
    rec = serving_recommender(store, settings_for(args))
    if rec is None:
        print("no trained run yet: fitting with default weights (run `crossrec train` to learn them)",
              file=sys.stderr)
        rec = with_live_rules(Recommender(settings_for(args)).fit(store), store)
    return rec


@command
def cmd_recommend(args: argparse.Namespace) -> int:
    """Top-k for a user, seed items, a query or typed profile text, with explanations."""
    contexts = [x for x in (args.user, args.items, args.query, args.profile) if x is not None]
    if len(contexts) != 1:
        raise CrossRecError("give exactly one of --user, --items, --query or --profile")
    if args.mode == "target" and not args.category:
        raise CrossRecError("--mode target needs --category")
    check_k_arg(args)
    with open_store(args) as store:
        rec = _recommender(args, store)
        explain = args.explain or args.json
        if args.user is not None:
            df = rec.recommend(args.user, k=args.k, mode=args.mode, category=args.category, explain=explain)
        elif args.items is not None:
            df = rec.recommend_for_items(args.items.split(","), k=args.k, mode=args.mode, category=args.category,
                                         explain=explain)
        elif args.profile is not None:  # the User page's cold-start box: each interest gets its turn
            df = rec.recommend_for_profile(args.profile, k=args.k, mode=args.mode, category=args.category,
                                           explain=explain)
        else:
            df = rec.recommend_for_query(args.query, k=args.k, mode=args.mode, category=args.category,
                                         explain=explain)
    from ..signals.registry import contributions

    if args.json:  # "rules" appears only when a rule moved the ranker's score, "applied_rules" when a rule
        print_json([    # changed the item ("pinned at 3 by rule 'Summer tripods'")
            {"rank": int(r["rank"]), "item_id": r["item_id"], "title": r["title"], "category": r["category"],
             "score": float(r["score"]), "base": float(r["base"]),
             "contributions": {s: float(r[s]) for s in contributions() if s != "rules" or r[s] != 0},
             "reason": r["reason"],
             **({"applied_rules": r["applied_rules"].split("; ")} if r["applied_rules"] else {})}
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
            parts = ", ".join(f"{s} {getattr(r, s):+.2f}" for s in contributions() if getattr(r, s) != 0)
            print(f"     {r.reason}")
            print(f"     [{parts}]")
    return 0



@command
def cmd_export(args: argparse.Namespace) -> int:
    """Recommendation lists to an Excel-safe CSV, one row per (user, rank)."""
    from ..export import check_out_path, write_csv
    from ..ingest import read_table

    check_k_arg(args)
    input_files(args, "--users")
    check_out_path(args.out, args.db, force=args.force)
    with open_store(args) as store:
        if args.users:
            table = read_table(args.users, "users")
            user_ids = table.frame["user_id"].astype(str).str.strip().tolist()
            unknown = [u for u in user_ids if not store.has_user(u)]
            if unknown:
                raise CrossRecError(f"{Path(args.users).name}: unknown user '{unknown[0]}' ({len(unknown)} unknown)")
        elif args.segment:
            from ..segments import resolve_segment

            user_ids = resolve_segment(store, args.segment)
        else:
            user_ids = store.user_ids()
        if args.engine == "ray":  # partitions of shoppers on a Ray cluster, each loading the saved run
            from ..engine.ray_export import export_on_ray

            with progress_bar(not args.quiet) as progress:
                n = export_on_ray(store, args.run, user_ids, args.out, k=args.k, mode=args.mode,
                                  category=args.category, address=args.address, work_dir=args.work_dir,
                                  progress=progress)
            _wrote(n, user_ids, args.out)
            return 0
        rec = _recommender(args, store)
        with progress_bar(not args.quiet) as progress:
            n = write_csv(rec, args.out, user_ids, k=args.k, mode=args.mode, category=args.category,
                          progress=progress)
    _wrote(n, user_ids, args.out)
    return 0


def _wrote(n: int, user_ids: list, out: str) -> None:
    """The summary line: on stderr when the CSV itself went to a stream (it may be stdout, read by a program)."""
    from ..outfile import is_stream

    print(f"wrote {n:,} rows for {len(user_ids):,} users to {out}", file=sys.stderr if is_stream(out) else sys.stdout)


@command
def cmd_app(args: argparse.Namespace) -> int:
    """Start the dashboard on --db (building the demo shop first when it is the default and absent)."""
    import os
    import subprocess

    args.port = check_listen(args.host, args.port)  # before Streamlit starts: one line, not its traceback
    path = Path(args.db)
    app = Path(__file__).resolve().parents[2] / "app.py"
    env = {**os.environ, "CROSSREC_DB": str(path.resolve())}
    if not path.exists():
        if Path(args.db).resolve() != default_db_path().resolve():
            raise CrossRecError(f"no database at {path}: run `crossrec demo --db {path}` or ingest files")
        # served at once: the dashboard builds the shop in the background and shows each step meanwhile
        # (ui/firstrun.py); the steps are printed here too
        print(f"first start: the dashboard builds the demo shop at {path} and fills in when it is ready",
              file=sys.stderr)
        env["CROSSREC_BUILD_DEMO"] = "1"
    cmd = app_command(app, args.host, args.port)
    print(f"CrossRec dashboard on http://{'localhost' if args.host == '127.0.0.1' else args.host}:{args.port} "
          f"(database {path})", file=sys.stderr)
    if args.host != "127.0.0.1":
        print(f"it listens on {args.host} without authentication: put an authenticating proxy in front "
              "(README, 'Serving the dashboard to others')", file=sys.stderr)
    return subprocess.call(cmd, env=env, cwd=str(app.parent))


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_listen(host: str, port: object) -> int:
    """The port as an int when `port` is one (1 to 65535) and `host` an IP address or a host name, else a
    CrossRecError in one line."""
    import ipaddress

    try:
        number = int(str(port).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise CrossRecError(f"--port {port} is not a port: give a number from 1 to 65535")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if not (0 < len(host) <= 253 and all(_HOST_LABEL.fullmatch(x) for x in host.removesuffix(".").split("."))):
            raise CrossRecError(f"--host {host!r} is neither an IP address nor a host name "
                                "(e.g. 127.0.0.1, 0.0.0.0 or myhost.example.com)") from None
    return number


def app_command(app: Path, host: str, port: int) -> list[str]:
    """`streamlit run` bound to `host` only (127.0.0.1 unless --host says otherwise)."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]



def add_parsers(sub, common) -> None:
    p = sub.add_parser("recommend", parents=[common], help="top-k for a user, seed items, a query or a profile")
    p.add_argument("--user", help="user id")
    p.add_argument("--items", help="comma-separated seed item ids (a cart or an item page)")
    p.add_argument("--query", help="free-text search query (one intent)")
    p.add_argument("--profile", help="a new shopper described in words, as the User page's cold-start box: "
                                     "its interests are split and their lists interleaved")
    p.add_argument("--k", default=EvaluationSettings.k, help="list length, 1 to %d" % EvaluationSettings.max_k)
    p.add_argument("--mode", default=MODES[0], choices=MODES)
    p.add_argument("--category", help="category for --mode target (top-level name or path)")
    p.add_argument("--explain", action="store_true", help="show contributions and the reason")
    p.add_argument("--run", help="use this run instead of the serving one")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p = sub.add_parser("export", parents=[common], help="recommendation lists to an Excel-safe CSV")
    p.add_argument("--out", required=True, type=expand, help="CSV file to write (or a pipe, a terminal, /dev/stdout)")
    p.add_argument("--force", action="store_true", help="replace --out when it exists")
    p.add_argument("--users", type=expand, help="CSV/Parquet with a user_id column (default: every user)")
    p.add_argument("--segment", help="the shoppers of this saved segment (`crossrec segments list`)")
    p.add_argument("--k", default=EvaluationSettings.k, help="list length, 1 to %d" % EvaluationSettings.max_k)
    p.add_argument("--mode", default=MODES[0], choices=MODES)
    p.add_argument("--category", help="category for --mode target")
    p.add_argument("--run", help="use this run instead of the serving one")
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="ray: score and explain shopper partitions on a Ray cluster (pip install 'crossrec[ray]')")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local one)")
    p.add_argument("--work-dir", default=None, type=expand, help="folder every Ray node sees, for the job's files")
    p = sub.add_parser("app", parents=[common], help="start the dashboard")
    p.add_argument("--port", default=8501, help="port to listen on, 1 to 65535 (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 exposes it "
                        "without authentication: see the README on putting a proxy in front)")
