"""X12 output: the one envelope writer (segments to text with the input's delimiters, trailer recounts)
and the renumbering of SE01, HL and LX after segments were dropped."""

from __future__ import annotations

from typing import IO, Callable, Sequence

from edi_pipeline.x12.envelope import EnvelopeSegment, Transaction
from edi_pipeline.x12.reader import Delimiters
from edi_pipeline.x12.segment import Segment


class X12Writer:
    """The one envelope writer: envelope segments and transaction sets, each with its own delimiters.

    With `recount`, SE01, GE01 and IEA01 are rewritten from what was actually written. With `lazy`, an
    ISA and GS are held until a transaction set follows them, so a group or interchange left without
    sets disappears (and stray segments outside an envelope are not copied); only the pending ISA/GS
    are held, never a set. Output goes to `out`, or to the file `open_file()` returns on the first
    write, so an output nothing is written to is never created. `written` counts the segments written."""

    def __init__(self, out: IO[str] | None = None, recount: bool = True, *, lazy: bool = False,
                 open_file: Callable[[], IO[str]] | None = None):
        self.fh = out
        self.open_file = open_file
        self.recount = recount
        self.lazy = lazy
        self.pending: list[EnvelopeSegment] = []
        self.open_isa = False
        self.open_gs = False
        self.groups = 0
        self.sets = 0
        self.written = 0

    def _emit(self, d: Delimiters, texts: Sequence[str]) -> None:
        if self.fh is None:
            self.fh = self.open_file()  # type: ignore[misc]
        end = d.segment + d.suffix
        self.fh.write(end.join(texts) + end)
        self.written += len(texts)

    def _trailer(self, seg: EnvelopeSegment, n: int) -> str:
        if not self.recount:
            return seg.text
        e = seg.text.split(seg.delimiters.element)
        if len(e) > 1:
            e[1] = str(n)
        return seg.delimiters.element.join(e)

    def envelope(self, seg: EnvelopeSegment) -> None:
        if not self.lazy:
            if seg.tag == "ISA":
                self.groups = 0
            elif seg.tag == "GS":
                self.groups += 1
                self.sets = 0
            text = self._trailer(seg, self.sets if seg.tag == "GE" else self.groups) \
                if seg.tag in ("GE", "IEA") else seg.text
            self._emit(seg.delimiters, (text,))
        elif seg.tag == "ISA":
            self.pending = [seg]
            self.open_isa = False
            self.groups = 0
        elif seg.tag == "GS":
            self.pending.append(seg)
            self.open_gs = False
            self.sets = 0
        elif seg.tag == "GE":
            if self.open_gs:
                self._emit(seg.delimiters, (self._trailer(seg, self.sets),))
                self.open_gs = False
            elif self.pending and self.pending[-1].tag == "GS":
                self.pending.pop()
        elif seg.tag == "IEA":
            if self.open_isa:
                self._emit(seg.delimiters, (self._trailer(seg, self.groups),))
                self.open_isa = False
            self.pending = []

    def transaction(self, tx: Transaction, segments: list[str] | None = None) -> int:
        """Write a set (its own segments, or `segments` in their place); returns its ST's segment index in
        the output (1 = the first segment written)."""
        for p in self.pending:
            self._emit(p.delimiters, (p.text,))
            if p.tag == "ISA":
                self.open_isa = True
            elif p.tag == "GS":
                self.open_gs = True
                self.groups += 1
        self.pending = []
        segs = tx.segments if segments is None else segments
        self.sets += 1
        if self.recount and segs:
            segs = set_se_count(segs, tx.delimiters)
        self._emit(tx.delimiters, segs)
        return self.written - len(segs) + 1

    def write(self, item: EnvelopeSegment | Transaction) -> None:
        if isinstance(item, Transaction):
            self.transaction(item)
        else:
            self.envelope(item)


def set_se_count(segs: list[str], d: Delimiters) -> list[str]:
    """Return segs with SE01 equal to the number of segments (a copy only when it changes)."""
    last = segs[-1]
    if not last.startswith("SE" + d.element):
        return segs
    count = str(len(segs))
    e = last.split(d.element, 2)  # read without building a Segment: most sets are counted right
    if len(e) > 1 and e[1] != count:
        se = Segment(last, d)
        se["SE01"] = count
        segs = segs[:-1] + [se.text]
    return segs


def renumber_hl_at(segs: list[str], hl_at: list[int], d: Delimiters) -> None:
    """Renumber HL01 1..n and fix HL02 parents (and HL04 child flags) after HL loops were dropped, in place,
    given the offsets of all the HL segments, in order."""
    mapping: dict[str, str] = {}
    rows = []
    for n, i in enumerate(hl_at, 1):
        hl = Segment(segs[i], d)
        new = str(n)
        mapping[hl["HL01"]] = new
        if hl["HL02"]:
            hl["HL02"] = mapping.get(hl["HL02"], hl["HL02"])
        hl["HL01"] = new
        rows.append(hl)
    parents = {hl["HL02"] for hl in rows if hl["HL02"]}
    for i, hl in zip(hl_at, rows):
        if len(hl) >= 4:
            hl["HL04"] = "1" if hl["HL01"] in parents else "0"
        segs[i] = hl.text


def renumber_lx(segs: list[str], d: Delimiters) -> list[str]:
    """Renumber LX01 1..n within each claim (restarting at every CLM)."""
    out = list(segs)
    n = 0
    clm, lx = "CLM" + d.element, "LX" + d.element
    for i, text in enumerate(out):
        if text.startswith(clm):
            n = 0
        elif text.startswith(lx):
            n += 1
            e = text.split(d.element, 2)
            if len(e) > 1 and e[1] != str(n):  # built only for an LX that changes
                seg = Segment(text, d)
                seg["LX01"] = str(n)
                out[i] = seg.text
    return out
