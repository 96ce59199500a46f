"""The batch's single read of an 837P file: the validation teed off the scrub's read.

validate.ValidationPass sees each envelope item before the scrub does, and hands the scrub the claims
it parsed; a set is withheld (as a 999 rejection) when the pass finds an error in it as it is read.
At the end, inside the store transaction, the finished Validation must agree: same 837P sets
rejected, no interchange rejected by a TA1. Where it does not, or the file cannot be read or scrubbed,
the scrub is undone (no store row, no output) and `validate_and_scrub` returns None: the caller then
validates and scrubs in two reads, as `validate_file` and `scrub_file` alone do. The 277CAs are
rendered in the same read too (scrub.ack277.AckSpool), unless a later hold would change one already
rendered; then write_277cas reads the file again. Inside pipeline.split.splitting, a large file's sets
are walked by the batch's workers, read ahead of the scrub, with the same results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edi_pipeline.core.errors import EdiError
from edi_pipeline.pipeline import split
from edi_pipeline.pipeline.split import ReadAhead
from edi_pipeline.scrub.ack277 import AckSpool
from edi_pipeline.scrub import scrubber
from edi_pipeline.scrub.scrubber import ScrubResult
from edi_pipeline.validate.validator import Validation, ValidationPass
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment


class _Disagrees(Exception):
    """The finished validation rejects other sets than the read withheld: undo the scrub."""


class _Tee:
    """scrub.ScrubTee over a ValidationPass; the scrub's `withheld` test asks it about the set last fed."""

    def __init__(self, path: str, name: str, pool=None):
        self.path = path
        self.pool = pool  # its sets' TR3 walks are made there (pipeline.split), read ahead of the scrub
        self.ahead: ReadAhead | None = None
        self.run = ValidationPass(name)
        self.decided: dict[tuple[int, str, str], bool] = {}  # each 837P set's key -> withheld
        self.conflict = False  # two sets of one key decided apart
        self.env: EnvelopeReader | None = None
        self.validation: Validation | None = None
        self.acks = AckSpool()  # the 277CAs, from the same read
        self.isa: list[str] = []
        self.gs: list[str] = []
        self.isa_index = 0

    def start(self, env: EnvelopeReader):
        self.env = env
        self.run.reader_issues = env.issues
        self.run.reader_name = env.filename
        if self.pool is not None and self.run.sets is not None:
            self.ahead = ReadAhead(env, self.pool, self.run.sets.filename, self.run.sets.now)
            return self.ahead
        return env

    def feed(self, item) -> None:
        if self.ahead is not None:
            self.run.feed(item, *self.ahead.taken(item))
        else:
            self.run.feed(item)
        if isinstance(item, EnvelopeSegment):  # the envelope the 277CAs answer, as set_outcomes reads it
            if item.tag == "ISA":
                self.isa, self.gs, self.isa_index = item.elements, [], item.index
            elif item.tag == "GS":
                self.gs = self.gs or item.elements

    def scrubbed(self, done) -> None:
        if done.profile_of is not None and self.isa:  # an 837P set scrubbed, not withheld
            self.acks.add(self.isa_index, self.isa, self.gs, self.run.claims, self.run.claim_issues, done.findings)

    def claims(self, tx, issues):
        return self.run.claims_of(tx, issues)

    def __contains__(self, key: tuple[int, str, str]) -> bool:
        rejected = self.run.set_rejected()
        self.conflict |= self.decided.setdefault(key, rejected) != rejected
        return rejected

    def finish(self) -> None:
        validation = self.run.finish(self.env.issues, self.path)
        final = validation.rejected_sets()
        if self.conflict or validation.rejected_interchanges() or any(
                (key in final) != withheld for key, withheld in self.decided.items()):
            raise _Disagrees
        self.validation = validation


@dataclass
class OnePass:
    validation: Validation
    scrubbed: ScrubResult
    claim_acks: AckSpool | None  # None: write_277cas must read the file again (see AckSpool.stale)


def validate_and_scrub(path: str | os.PathLike, name: str, out_path, rejects_path, store,
                       sha256: str, data: bytes | None = None) -> OnePass | None:
    """validate_file(path, name) and scrub_file(path, out_path, rejects_path, store, sha256=sha256,
    withheld=<its rejected sets>) in one read, or None (nothing written) when the read cannot stand
    for the two (see the module docstring). `data`: the file's bytes, read already (the caller's one
    read); `path` is then read again only where validation walks a faulty envelope's whole text."""
    tee = _Tee(str(path), name, split.pool_for(path, data))
    try:
        scrubbed = scrubber.scrub_file(path, out_path, rejects_path, store, sha256=sha256, withheld=tee, tee=tee,
                                       data=data)
    except (_Disagrees, EdiError):
        return None
    return OnePass(tee.validation, scrubbed, None if tee.acks.stale else tee.acks)


__all__ = ["OnePass", "validate_and_scrub"]
