"""`crossrec` command line: thin, like the pages. Every command takes --db and exits non-zero with a
one-line reason on bad input. One module per command group; `crossrec_core.cli:main` is the entry point."""
from __future__ import annotations

import argparse
import sys

from ..config import default_db_path
from ..errors import CrossRecError, environment_error
from . import data, gov, model, serve
from .base import COMMANDS, command, db_arg, progress_bar  # noqa: F401  (the command table, for tests and tools)
from .serve import app_command  # noqa: F401

GROUPS = (data, serve, model, gov)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossrec", description="CrossRec: explainable cross-category recommendation")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    # `~` expanded and a link followed, once, here: every check and every open then sees the one real file
    common.add_argument("--db", default=str(default_db_path()), type=db_arg,
                        help="DuckDB file (default: %(default)s; env CROSSREC_DB)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    for group in GROUPS:
        group.add_parsers(sub, common)
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
