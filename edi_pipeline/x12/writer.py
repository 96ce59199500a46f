"""X12 output: segments to text with the input's delimiters, trailer recounts and atomic files."""

from __future__ import annotations

from typing import IO, Iterable

from edi_pipeline.x12.envelope import EnvelopeSegment, Transaction
from edi_pipeline.x12.reader import Delimiters


class X12Writer:
    """Writes envelope segments and transaction sets; with `recount`, rewrites SE01, GE01
    and IEA01 from what was actually written."""

    def __init__(self, out: IO[str], recount: bool = True):
        self.out = out
        self.recount = recount
        self.groups = 0
        self.sets = 0
        self.delimiters: Delimiters | None = None

    def _emit(self, texts: Iterable[str]) -> None:
        d = self.delimiters or Delimiters()
        end = d.segment + d.suffix
        self.out.write(end.join(texts) + end)

    def envelope(self, seg: EnvelopeSegment) -> None:
        self.delimiters = seg.delimiters
        text = seg.text
        if seg.tag == "ISA":
            self.groups = 0
        elif seg.tag == "GS":
            self.groups += 1
            self.sets = 0
        elif self.recount and seg.tag in ("GE", "IEA"):
            e = text.split(seg.delimiters.element)
            if len(e) > 1:
                e[1] = str(self.sets if seg.tag == "GE" else self.groups)
                text = seg.delimiters.element.join(e)
        self._emit((text,))

    def transaction(self, tx: Transaction, segments: list[str] | None = None) -> None:
        self.delimiters = tx.delimiters
        segs = tx.segments if segments is None else segments
        self.sets += 1
        if self.recount and segs:
            segs = set_se_count(segs, tx.delimiters.element)
        self._emit(segs)

    def write(self, item: EnvelopeSegment | Transaction) -> None:
        if isinstance(item, Transaction):
            self.transaction(item)
        else:
            self.envelope(item)


def set_se_count(segs: list[str], sep: str) -> list[str]:
    """Return segs with SE01 equal to the number of segments (a copy only when it changes)."""
    last = segs[-1]
    if not last.startswith("SE" + sep):
        return segs
    e = last.split(sep)
    count = str(len(segs))
    if len(e) > 1 and e[1] != count:
        e[1] = count
        segs = segs[:-1] + [sep.join(e)]
    return segs


def renumber_hl_at(segs: list[str], hl_at: list[int], sep: str) -> None:
    """Renumber HL01 1..n and fix HL02 parents (and HL04 child flags) after HL loops were dropped, in place,
    given the offsets of all the HL segments, in order."""
    mapping: dict[str, str] = {}
    rows = []
    for n, i in enumerate(hl_at, 1):
        e = segs[i].split(sep)
        new = str(n)
        mapping[e[1]] = new
        if len(e) > 2 and e[2]:
            e[2] = mapping.get(e[2], e[2])
        e[1] = new
        rows.append(e)
    parents = {e[2] for e in rows if len(e) > 2 and e[2]}
    for i, e in zip(hl_at, rows):
        if len(e) > 4:
            e[4] = "1" if e[1] in parents else "0"
        segs[i] = sep.join(e)


def renumber_lx(segs: list[str], sep: str) -> list[str]:
    """Renumber LX01 1..n within each claim (restarting at every CLM)."""
    out = list(segs)
    n = 0
    for i, text in enumerate(out):
        if text.startswith("CLM" + sep):
            n = 0
        elif text.startswith("LX" + sep):
            n += 1
            e = text.split(sep)
            if len(e) > 1 and e[1] != str(n):
                e[1] = str(n)
                out[i] = sep.join(e)
    return out
