"""One large 837P file split across the batch's workers: each transaction set's TR3 walk made in the pool.

The batch's parent process reads the file (pipeline.one_pass's one read) a few sets ahead of the scrub
(ReadAhead), hands each set to the pool as it is read (tr3.compiled.walk_set: the walk
SetValidation.feed would make, at the same time stamp) and feeds the walks back in file order, each with
the reader's issue count as it stood when its item was read, into the same ValidationPass. The
Validation, its 999s and the scrub are therefore those of one process, while the workers walk the sets
the parent has yet to scrub. The pool is the batch's (`splitting`), for a file of at least SPLIT_BYTES.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from contextvars import ContextVar
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


__all__ = ["AHEAD", "AHEAD_SEGMENTS", "SPLIT_BYTES", "ReadAhead", "hand_out", "pool_for", "splitting"]
