"""Envelopes: group segments into ISA/GS/ST units and check control numbers and counts."""

from __future__ import annotations

import os
from bisect import bisect_left
from itertools import compress
from operator import itemgetter
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterator

from edi_pipeline.core.errors import Issue, IssueList, Position, Severity
from edi_pipeline.x12.isa import Isa
from edi_pipeline.x12.reader import Delimiters, SegmentReader


@dataclass(slots=True)
class EnvelopeSegment:
    """An ISA, GS, GE or IEA segment (or a stray one outside any transaction)."""

    tag: str  # "ISA", "GS", "GE", "IEA" or "STRAY"
    text: str
    line: int
    index: int  # segment index in the file
    delimiters: Delimiters

    @property
    def elements(self) -> list[str]:
        return self.text.split(self.delimiters.element)


@dataclass(slots=True)
class Transaction:
    """One ST..SE transaction set, with the envelope it sits in."""

    file: str
    delimiters: Delimiters
    isa: str
    gs: str
    segments: list[str]  # ST .. SE inclusive (no SE when truncated)
    lines: list[int]
    first_index: int  # file segment index of ST
    complete: bool = True

    @property
    def set_id(self) -> str:
        st = self.segments[0].split(self.delimiters.element)
        return st[1] if len(st) > 1 else ""

    @property
    def control_number(self) -> str:
        st = self.segments[0].split(self.delimiters.element)
        return st[2] if len(st) > 2 else ""

    @property
    def version(self) -> str:
        """ST03 if present, else GS08."""
        st = self.segments[0].split(self.delimiters.element)
        if len(st) > 3 and st[3]:
            return st[3]
        gs = self.gs.split(self.delimiters.element)
        return gs[8] if len(gs) > 8 else ""

    def position(self, offset: int, loop: str | None = None, element: str | None = None) -> Position:
        """Position of the segment at `offset` in `segments` (0 = ST)."""
        offset = min(max(offset, 0), len(self.segments) - 1)
        text = self.segments[offset]
        seg_id = text.split(self.delimiters.element, 1)[0][:3]
        return Position(self.file, self.lines[offset], self.first_index + offset,
                        offset + 1, seg_id, loop, element)


def upper_ids(segments: list[str], sep: str) -> None:
    """Upper-case the segment identifiers in place (lower-case ones are tolerated with a warning)."""
    for k, text in enumerate(segments):
        i = text.find(sep)
        head = text if i < 0 else text[:i]
        if not head.isupper():
            segments[k] = head.upper() + text[len(head):]


def _seg_id(text: str, sep: str) -> str:
    i = text.find(sep)
    return (text if i < 0 else text[:i]).upper()


_first = itemgetter(0)  # texts are never empty
_CLOSER_INITIALS = frozenset("SGIsgi")


class EnvelopeReader:
    """Walks a file as a stream of EnvelopeSegment and Transaction items, in file order.

    Envelope defects (count and control-number mismatches, missing trailers, segments
    outside any envelope) are collected in `issues`; reading never stops on them.
    """

    def __init__(self, source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None):
        self.reader = SegmentReader(source, filename)
        self.filename = self.reader.filename
        self.issues: IssueList = self.reader.issues

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "EnvelopeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transactions(self) -> Iterator[Transaction]:
        """Only the transaction sets, in file order."""
        for item in self:
            if isinstance(item, Transaction):
                yield item

    def _issue(self, code: str, message: str, line: int, index: int, seg: str,
               element: str | None = None, severity: Severity = Severity.ERROR,
               st_position: int | None = None) -> None:
        self.issues.append(Issue(code, message,
                                 Position(self.filename, line, index, st_position, seg, None, element),
                                 severity))

    def __iter__(self) -> Iterator[EnvelopeSegment | Transaction]:
        reader = self.reader
        filename = self.filename
        isa: EnvelopeSegment | None = None
        gs: EnvelopeSegment | None = None
        groups = 0
        sets = 0
        tx: Transaction | None = None
        index = 0
        warned_lower = False
        closers_sep = ""
        closers: set[str] = set()
        tx_segments: list[str] = []
        tx_lines: list[int] = []
        isa_controls: set[str] = set()
        st_controls: set[str] = set()
        last_line = 0
        for texts, lines in reader.batches():
            last_line = lines[-1]
            delims = reader.delimiters
            sep = delims.element
            if sep != closers_sep:
                closers_sep = sep
                closers = {"SE" + sep, "GE" + sep, "ST" + sep, "GS" + sep, "ISA", "IEA",
                           "se" + sep, "ge" + sep, "st" + sep, "gs" + sep, "isa", "iea"}
            # Segments that open or close something; everything between them belongs to the open set.
            # First letters filter in C; the few S/G/I segments left are checked in full.
            marks = [k for k in compress(range(len(texts)), map(_CLOSER_INITIALS.__contains__, map(_first, texts)))
                     if texts[k][:3] in closers]
            n = len(texts)
            j = 0
            while j < n:
                if tx is not None:
                    m = marks[bisect_left(marks, j)] if marks and marks[-1] >= j else n
                    if m > j:
                        tx_segments.extend(texts[j:m])
                        tx_lines.extend(lines[j:m])
                        index += m - j
                        j = m
                        if j == n:
                            break
                text = texts[j]
                line = lines[j]
                j += 1
                index += 1
                seg_id = _seg_id(text, sep)
                if seg_id != text[: len(seg_id)]:
                    if not warned_lower:
                        self._issue("SYN-LOWERCASE", "lower-case segment identifiers read as upper case", line,
                                    index, seg_id, severity=Severity.WARNING)
                        warned_lower = True
                    text = seg_id + text[len(seg_id):]
                if tx is not None:  # an envelope segment closes the open set, with or without its SE
                    if seg_id == "SE":
                        tx_segments.append(text)
                        tx_lines.append(line)
                        if warned_lower:
                            upper_ids(tx_segments, sep)
                        self._check_se(tx, text, line, index)
                        sets += 1
                        yield tx
                        tx = None
                        continue
                    self._close_without_se(tx, warned_lower, "", line, index, seg_id)
                    sets += 1
                    yield tx
                    tx = None
                if seg_id == "ISA":
                    if isa is not None:
                        self._issue("ENV-IEA-MISSING", "interchange has no IEA trailer", line, index, "ISA")
                    isa = EnvelopeSegment("ISA", text, line, index, delims)
                    fields = Isa.of(isa.elements)
                    raw_control, control = fields[13], fields.control
                    if not fields.control_ok:
                        # a blank or short ISA13 would escape the resend check: the interchange is refused
                        self._issue("TA1-018", f"ISA13 must be a 9-digit interchange control number (it holds "
                                    f"{len(raw_control)} characters, {sum(not c.isdigit() for c in raw_control)} "
                                    "of them not digits)", line, index, "ISA", "ISA13")
                    elif control in isa_controls:
                        self._issue("TA1-025", f"interchange control number {control} repeats an earlier ISA13",
                                    line, index, "ISA", "ISA13")
                    isa_controls.add(control)
                    gs_controls: set[str] = set()
                    groups = 0
                    gs = None
                    yield isa
                elif seg_id == "GS":
                    if isa is None:
                        self._issue("ENV-OUTSIDE", "GS outside an interchange", line, index, "GS")
                    if gs is not None:
                        self._issue("ENV-GE-MISSING", "functional group has no GE trailer", line, index, "GS")
                    gs = EnvelopeSegment("GS", text, line, index, delims)
                    if isa is not None:
                        group_control = gs.elements[6].strip() if len(gs.elements) > 6 else ""
                        if group_control in gs_controls:  # a 999 answering it could be taken for the other's
                            self._issue("AK9-6", f"group control number {group_control} repeats an earlier "
                                        "GS06 in its interchange", line, index, "GS", "GS06")
                        gs_controls.add(group_control)
                    st_controls = set()
                    groups += 1
                    sets = 0
                    yield gs
                elif seg_id == "ST":
                    if gs is None:
                        self._issue("ENV-OUTSIDE", "ST outside a functional group", line, index, "ST")
                    tx_segments = [text]
                    tx_lines = [line]
                    tx = Transaction(filename, delims, isa.text if isa else "", gs.text if gs else "",
                                     tx_segments, tx_lines, index)
                    if tx.control_number in st_controls:
                        self._issue("IK5-23", f"transaction set control number {tx.control_number} repeats in "
                                    "its functional group", line, index, "ST", "ST02", st_position=1)
                    st_controls.add(tx.control_number)
                elif seg_id == "GE":
                    ge = EnvelopeSegment("GE", text, line, index, delims)
                    self._check_trailer(ge, sets, gs, "a GS", 6, "transaction sets")
                    gs = None
                    yield ge
                elif seg_id == "IEA":
                    iea = EnvelopeSegment("IEA", text, line, index, delims)
                    if gs is not None:
                        self._issue("ENV-GE-MISSING", "functional group has no GE trailer", line, index, "IEA")
                        gs = None
                    self._check_trailer(iea, groups, isa, "an ISA", 13, "functional groups")
                    isa = None
                    yield iea
                else:
                    self._issue("ENV-OUTSIDE", "segment outside any transaction set", line, index, seg_id[:3])
                    yield EnvelopeSegment("STRAY", text, line, index, delims)
        if tx is not None:
            self._close_without_se(tx, warned_lower, " (file truncated)", tx_lines[-1], index, "SE")
            yield tx
        if gs is not None:
            self._issue("ENV-GE-MISSING", "functional group has no GE trailer (file truncated)", last_line, index,
                        "GE")
        if isa is not None:
            self._issue("ENV-IEA-MISSING", "interchange has no IEA trailer (file truncated)", last_line, index,
                        "IEA")

    def _close_without_se(self, tx: Transaction, lower_ids: bool, why: str, line: int, index: int,
                          seg_id: str) -> None:
        tx.complete = False
        if lower_ids:
            upper_ids(tx.segments, tx.delimiters.element)
        self._issue("ENV-SE-MISSING", f"transaction set {tx.control_number} has no SE trailer{why}",
                    line, index, seg_id)

    def _check_se(self, tx: Transaction, text: str, line: int, index: int) -> None:
        se = text.split(tx.delimiters.element)
        count = pos = len(tx.segments)
        if len(se) < 3:
            self._issue("ENV-SE-INVALID", "SE needs a segment count and a control number", line, index, "SE",
                        st_position=pos)
            return
        if se[1].strip() != str(count):
            self._issue("IK5-4", f"SE01 says {se[1]} segments; the transaction set has {count}",
                        line, index, "SE", "SE01", st_position=pos)
        if se[2].strip() != tx.control_number.strip():
            self._issue("IK5-3", f"SE02 {se[2]} does not match ST02 {tx.control_number}",
                        line, index, "SE", "SE02", st_position=pos)

    def _check_trailer(self, trailer: EnvelopeSegment, count: int, header: EnvelopeSegment | None,
                       header_name: str, control_at: int, what: str) -> None:
        """A GE or IEA against its open GS or ISA (`header`, None when there is none): count and control number."""
        tag = trailer.tag
        if header is None:
            self._issue("ENV-OUTSIDE", f"{tag} without {header_name}", trailer.line, trailer.index, tag)
            return
        t = trailer.elements
        h = header.elements
        if len(t) < 3:
            self._issue(f"ENV-{tag}-INVALID", f"{tag} needs a count and a control number",
                        trailer.line, trailer.index, tag)
            return
        if t[1].strip().lstrip("0") != str(count).lstrip("0"):
            self._issue(f"ENV-{tag}01", f"{tag}01 says {t[1]} {what}; found {count}",
                        trailer.line, trailer.index, tag, f"{tag}01")
        control = h[control_at].strip() if len(h) > control_at else ""
        if t[2].strip() != control:
            self._issue(f"ENV-{tag}02", f"{tag}02 {t[2]} does not match {header.tag}{control_at:02d} {control}",
                        trailer.line, trailer.index, tag, f"{tag}02")


_ACK_UNSAFE = str.maketrans("", "", "*:~^\r\n")  # what ack_element drops


def ack_element(value: str, limit: int) -> str:
    """An element value safe to place in an acknowledgment we write (no delimiters)."""
    if value.isalnum():  # most are (control numbers, codes): nothing to drop or strip
        return value[:limit]
    return value.translate(_ACK_UNSAFE).strip()[:limit]


def reply_isa(isa: Isa, ctrl: str, now: datetime) -> str:
    """The ISA of an acknowledgment to the interchange `isa`: sender and receiver swapped, fixed width,
    usage (test or production) kept."""
    qual_s, id_s = (isa.receiver_qualifier or "ZZ")[:2].ljust(2), ack_element(isa.receiver, 15).ljust(15)
    qual_r, id_r = (isa.sender_qualifier or "ZZ")[:2].ljust(2), ack_element(isa.sender, 15).ljust(15)
    usage = isa.usage[:1] or "P"
    return (f"ISA*00*{' ' * 10}*00*{' ' * 10}*{qual_s}*{id_s}*{qual_r}*{id_r}*"
            f"{now:%y%m%d}*{now:%H%M}*^*00501*{ctrl}*0*{usage}*:")
