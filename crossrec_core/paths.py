"""The paths a user names (--db, --out, --items, CROSSREC_DB ...), made what every check then sees, once:
`~` expanded (DuckDB and the shell expand it, the guards must see the same file), a database's symbolic link
followed to the real file (its runs, artefacts and compaction all belong to that file), and anything that is
not a regular file (a FIFO, /dev/zero, a socket) refused before it is opened: reading one hangs or never ends."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import CrossRecError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def expand(path: str | os.PathLike) -> str:
    """`path` with a leading `~` or `~user` expanded (nothing else changed): the argparse type of every path
    option, so each check and each open sees the one file the user meant."""
    return os.path.expanduser(os.fspath(path))


def db_file(path: str | os.PathLike) -> Path:
    """The database file `path` names: `~` expanded and a symbolic link followed to the file it points at,
    so runs, artefacts and `compact` follow the real file and the link stays a link."""
    p = Path(expand(path))
    return p.resolve() if p.is_symlink() else p


def kind_of(path: str | os.PathLike) -> str | None:
    """What `path` is when it exists and is not a regular file ("a FIFO (named pipe)", "a folder" ...), following
    links; None for a regular file or a path that does not exist. Never opens it."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return next((what for test, what in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def input_file(path: str | os.PathLike, flag: str) -> Path:
    """An input file option (--items, --events, --users), checked before it is opened: it exists and is a
    regular file (a FIFO would hang the read, /dev/zero would grow without bound). A missing file is left to
    the reader, which names it."""
    p = Path(expand(path))
    what = kind_of(p)
    if what is not None:
        raise CrossRecError(f"{flag} {p} is {what}, not a regular file: give a CSV or Parquet file")
    return p
