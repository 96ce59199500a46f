"""One large 837P file split across the batch's workers: each transaction set's TR3 walk made in the pool.

The batch's parent process reads the file (pipeline.one_pass's one read) a few sets ahead of the scrub
(ReadAhead), hands each set to the pool as it is read (tr3.compiled.walk_set: the walk
SetValidation.feed would make, at the same time stamp) and feeds the walks back in file order, each with
the reader's issue count as it stood when its item was read, into the same ValidationPass. The
Validation, its 999s and the scrub are therefore those of one process, while the workers walk the sets
the parent has yet to scrub. The pool is the batch's (`splitting`), for a file of at least SPLIT_BYTES.
With the batch's Walkers, a walk no worker has started when the scrub needs it is made by the parent
itself (the worker that comes to it later skips it), so the parent never waits on a queued walk.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from edi_pipeline.tr3.compiled import walk_set
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction

# A file below this is validated in its own process: a set's walk costs about 4 us a segment and handing
# it over (pickled both ways) a twentieth of that plus a few ms a set, but a file under a megabyte (some
# 2,000 claims) seldom holds more than one set, so nothing is left to walk beside its scrub.
SPLIT_BYTES = 1 << 20
# Sets read ahead of the scrub, walked or waiting in the pool: enough to keep 2-4 workers busy while the
# parent scrubs, few enough that memory stays bounded (each set is held as read until scrubbed, about
# 100 bytes a segment): at most AHEAD sets, and beyond one set at most AHEAD_SEGMENTS segments (some four
# sets of 2,000 claims), so a file of huge sets is read one set ahead.
AHEAD = 4
AHEAD_SEGMENTS = 150_000

_POOL: ContextVar[Any] = ContextVar("edi_pipeline_split_pool", default=None)

# A walk handed out through Walkers has a ticket, in a slot of a table shared with the workers: the slot
# holds the ticket while the walk waits, minus it once a worker took it, 0 once the parent did. SLOTS
# exceeds the walks ever waiting at once (AHEAD + 1), so a slot is reused only once its walk is taken.
SLOTS = 64
_TABLE: Any = None  # in a worker: the table of the Walkers whose pool it is in (share)


def walk_table(context) -> Any:
    """A table for Walkers, from a multiprocessing context: give it to each worker's share()."""
    return context.Array("q", SLOTS)


def share(table) -> None:
    """In a worker process (the pool's initializer): the table of the Walkers using its pool."""
    global _TABLE
    _TABLE = table


def _unless_taken(fn, slot: int, ticket: int, *args) -> tuple[list, list] | None:
    """fn(*args) (walk_set's) in a worker, unless the parent has taken the walk (then None: nobody waits for it)."""
    if _TABLE is not None:
        with _TABLE.get_lock():
            if _TABLE[slot] != ticket:
                return None
            _TABLE[slot] = -ticket
    return fn(*args)


class Walkers:
    """An executor's workers (each given `table` by share()) as the pool a file is split across: submit
    hands a walk out, and its result is the walk, made here if no worker has started it. One per table:
    a ticket is never given twice, so a walk left waiting by a file given up cannot pass for a later one."""

    def __init__(self, executor, table):
        self.executor, self.table = executor, table
        self.ticket = 0

    def submit(self, fn, *args) -> "_Walk":
        self.ticket += 1
        slot = self.ticket % SLOTS
        with self.table.get_lock():
            self.table[slot] = self.ticket
        return _Walk(self, slot, self.ticket, fn, args, self.executor.submit(_unless_taken, fn, slot, self.ticket, *args))

    def take(self, slot: int, ticket: int) -> bool:
        """Whether the walk of `ticket` is this process's to make (no worker has started it)."""
        with self.table.get_lock():
            if self.table[slot] != ticket:
                return False
            self.table[slot] = 0
            return True


@dataclass
class _Walk:
    walkers: Walkers
    slot: int
    ticket: int
    fn: Any
    args: tuple
    future: Any

    def result(self) -> tuple[list, list]:
        if not self.future.done() and self.walkers.take(self.slot, self.ticket):
            return self.fn(*self.args)
        return self.future.result()


@contextlib.contextmanager
def splitting(pool) -> Iterator[None]:
    """Inside: a file of at least SPLIT_BYTES that pipeline.one_pass reads has its sets walked in `pool`
    (a concurrent.futures executor: a walk a dead worker lost raises BrokenProcessPool, never waits)."""
    token = _POOL.set(pool)
    try:
        yield
    finally:
        _POOL.reset(token)


def pool_for(path: str | os.PathLike, data: bytes | None = None):
    """The pool the file at `path` (its bytes `data`, when read already) is split across, or None (its
    sets are walked in this process)."""
    pool = _POOL.get()
    if pool is None or (len(data) if data is not None else os.path.getsize(path)) < SPLIT_BYTES:
        return None
    return pool


def hand_out(pool, args: tuple) -> Any:
    """One set's walk_set(*args), started in `pool`: its Future."""
    return pool.submit(walk_set, *args)


class ReadAhead:
    """An EnvelopeReader's items, read up to `depth` transaction sets (and AHEAD_SEGMENTS segments, see
    there) ahead of their consumer, each set's walk handed to the pool once read. `taken(item)`, for the
    item just given out: the reader's issue count when it was read, and its walk (None for an envelope
    segment, or a set outside an envelope)."""

    def __init__(self, env: EnvelopeReader, pool, filename: str | None, now: datetime, depth: int = AHEAD):
        self.env, self.pool, self.filename, self.now, self.depth = env, pool, filename, now, depth
        self._out: tuple[Any, int, Any] | None = None

    def __iter__(self) -> Iterator[EnvelopeSegment | Transaction]:
        queue: deque[tuple[Any, int, Any]] = deque()
        sets = segments = 0  # transaction sets in the queue, and their segments
        isa = gs = None  # as SetValidation.feed follows them
        for item in self.env:
            walk = None
            if isinstance(item, EnvelopeSegment):
                if item.tag == "ISA":
                    isa = item
                elif item.tag == "GS":
                    gs = item
            else:
                sets += 1
                segments += len(item.segments)
                if isa is not None and gs is not None:
                    walk = hand_out(self.pool, (self.filename, isa, gs, item, self.now))
            queue.append((item, len(self.env.issues), walk))
            while sets > self.depth or sets > 1 and segments > AHEAD_SEGMENTS:
                first = queue[0][0]
                if not isinstance(first, EnvelopeSegment):
                    sets -= 1
                    segments -= len(first.segments)
                yield self._give(queue.popleft())
        while queue:
            yield self._give(queue.popleft())

    def _give(self, entry: tuple[Any, int, Any]):
        self._out = entry
        return entry[0]

    def taken(self, item) -> tuple[int, tuple[list, list] | None]:
        entry = self._out
        assert entry is not None and entry[0] is item, "ReadAhead.taken: not the item given out last"
        self._out = None
        return entry[1], entry[2].result() if entry[2] is not None else None


__all__ = ["AHEAD", "AHEAD_SEGMENTS", "SLOTS", "SPLIT_BYTES", "ReadAhead", "Walkers", "hand_out", "pool_for", "share",
           "splitting", "walk_table"]
