"""What every `crossrec` command shares: the command table, progress bars, opening the store, JSON output."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..config import Settings

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

    bar = tqdm(total=1000, file=sys.stderr, bar_format="{percentage:3.0f}% |{bar:20}| {elapsed} {desc}", leave=False)

    def update(frac: float, msg: str) -> None:
        bar.set_description_str(msg)  # in full, after the bar: a long message no longer hides the figures
        bar.n = int(max(0.0, min(1.0, frac)) * 1000)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _force_progress() -> bool:
    import os

    return os.environ.get("CROSSREC_PROGRESS") == "1"


def db_arg(text: str) -> str:
    """The argparse type of --db: `~` expanded and a symbolic link followed to the real file (`paths.db_file`)."""
    from ..paths import db_file

    return str(db_file(text))


def check_k_arg(args: argparse.Namespace) -> None:
    """--k (read as text: `--k 1e20` is a number, too large) made an int by the one rule for k
    (1 <= k <= the setting evaluation.max_k), or one line before anything is opened."""
    from ..bounds import check_k

    args.k = check_k(args.k, name="--k")


def input_files(args: argparse.Namespace, *flags: str) -> None:
    """Refuse, before opening any, an input file option that is not a regular file (a FIFO, /dev/zero)."""
    from ..paths import input_file

    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            input_file(value, flag)


def settings_for(args: argparse.Namespace) -> Settings:
    from ..finetune.registry import with_chosen_encoder

    return with_chosen_encoder(Settings(db_path=Path(args.db)))  # the encoder `encoders use` chose


def open_store(args: argparse.Namespace, *, write: bool = False, create: bool = False):
    from ..store import Store

    return Store(args.db, read_only=not write, create=create)


def print_json(obj) -> None:
    print(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))

