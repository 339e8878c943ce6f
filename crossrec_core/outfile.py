"""Writing a file the user named (`export --out`), nothing else: a regular file is written to a temp file
created exclusively (O_EXCL | O_NOFOLLOW, a random name, in the target's own folder, so it can be no existing
file: not the database, not a hard or symbolic link to one, not the user's own `<out>.part`) and renamed
into place; a pipe, a terminal, a character device or /dev/stdout (or a link to one, like /proc/self/fd/1)
is streamed to as it is, never renamed over."""
from __future__ import annotations

import os
import re
import secrets
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

_OWN_FD = re.compile(r"/(?:proc/(?:self|(\d+))|dev)/fd/(\d+)")
_STD = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_TRIES = 100


def own_fd(path: str | os.PathLike) -> int | None:
    """The descriptor of this process that `path` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N, or a chain of
    links reaching one), else None. Only links are read; nothing is opened."""
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):  # the kernel's own limit on a chain of links
        if p in _STD:
            return _STD[p]
        m = _OWN_FD.fullmatch(p)
        if m and (m.group(1) is None or int(m.group(1)) == os.getpid()):
            return int(m.group(2))
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def is_stream(path: str | os.PathLike) -> bool:
    """Whether `path` is written by streaming into it: one of this process's descriptors, or (following links)
    a FIFO or a character device (a terminal, /dev/null)."""
    if own_fd(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def exclusive_temp(folder: Path, name: str) -> tuple[int, Path]:
    """(descriptor, path) of a new empty file in `folder`, created exclusively under a random name that
    starts with `.name.`: never an existing file, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TRIES):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.part"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


@contextmanager
def output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a stream (see `is_stream`) directly, else an exclusive temp file
    renamed over the real file (a symlinked --out keeps its link) when the block ends without an error; a
    failure removes the temp file and leaves `path` as it was."""
    fd = own_fd(path)
    if fd is not None:
        sys.stdout.flush()  # what was printed before comes first
        with os.fdopen(os.dup(fd), "wb") as f:
            yield f
        return
    if is_stream(path):  # opened without O_CREAT or O_TRUNC, then checked: still no regular file is touched
        handle = os.open(path, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            with os.fdopen(handle, "wb") as f:
                yield f
            return
        os.close(handle)  # it became a regular file meanwhile: written like one
    target = Path(os.path.realpath(path))
    handle, tmp = exclusive_temp(target.parent, target.name)
    try:
        with os.fdopen(handle, "wb") as f:
            yield f
        if target.exists():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))  # a replaced file keeps its permissions
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
