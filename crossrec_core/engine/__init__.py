"""Where the heavy batch steps run: `local` (this process, the default, no Ray needed) or `ray`.

The co-occurrence signal asks `pair_counter()` for the engine that counts its item pairs: None on the local
engine (the signal multiplies its sparse matrices itself); inside `counting_with(counter)` (what
`crossrec train --engine ray` sets up) the counter is handed the binary users × items matrix and returns
the co-counts as row-complete chunks, which the signal turns into the same fitted state."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator

ENGINES = ("local", "ray")

# binary users × items CSR -> chunks of DataFrame(row, col, n): every (item, other item, shoppers of both)
# with row != col, both orientations, each row's pairs all in one chunk
PairCounter = Callable[[object], Iterable[object]]
_COUNTER: ContextVar[PairCounter | None] = ContextVar("crossrec_pair_counter", default=None)


def pair_counter() -> PairCounter | None:
    """The active pair counter (None: the local engine)."""
    return _COUNTER.get()


@contextmanager
def counting_with(counter: PairCounter | None) -> Iterator[None]:
    """Co-occurrence signals fitted inside this block take their pair counts from `counter`."""
    token = _COUNTER.set(counter)
    try:
        yield
    finally:
        _COUNTER.reset(token)
