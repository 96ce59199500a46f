"""Inbound 999 (005010X231A1) transaction sets to typed SetResponse and GroupResponse records.

A payer's or clearinghouse's 999 answers a functional group we sent: AK1 names it by GS06 as sent, each
AK2..IK5 answers one of its sets by ST02 as sent (with IK3/IK4 errors), AK9 the group. Records stream set
by set (EnvelopeReader); defects of the 999 itself become issues with positions, never exceptions.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.tx.ack_records import AckEnvelope, ElementError, GroupResponse, SegmentError, SetResponse
from edi_pipeline.x12.envelope import EnvelopeReader, Transaction
from edi_pipeline.x12.isa import Isa, gs_control
from edi_pipeline.core.errors import EdiError, Issue, IssueList, Position, Severity

__all__ = ["is_999", "parse_999", "iter_999", "ack_envelope", "stream_records"]

_IK5_CODES = frozenset("AEMRWX")
_AK9_CODES = frozenset("AEMPRWX")


def is_999(tx: Transaction) -> bool:
    return tx.set_id == "999"


def ack_envelope(tx: Transaction) -> AckEnvelope:
    """The acknowledgment's own ISA06/ISA08/ISA13, GS06 and ST02."""
    sep = tx.delimiters.element
    isa = Isa.of(tx.isa, sep)
    return AckEnvelope(isa.sender, isa.receiver, isa.control, gs_control(tx.gs, sep), tx.control_number.strip())


def reporters(tx: Transaction, issues: IssueList):
    """The two helpers both readers use on a set: `src(i, loop)`, the Position of segment i, and
    `issue(code, message, i, loop, element=None)`, which records an error there."""
    segs, sep = tx.segments, tx.delimiters.element

    def src(i: int, loop: str) -> Position:
        return Position(tx.file, tx.lines[i], tx.first_index + i, i + 1, segs[i].split(sep, 1)[0][:3], loop)

    def issue(code: str, message: str, i: int, loop: str | None, element: str | None = None) -> None:
        issues.append(Issue(code, message, tx.position(i, loop, element), Severity.ERROR))

    return src, issue


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def parse_999(tx: Transaction, issues: IssueList | None = None) -> Iterator[SetResponse | GroupResponse]:
    """Yield a SetResponse at each IK5 and a GroupResponse at the AK9 of one 999 transaction set."""
    issues = IssueList() if issues is None else issues
    sep, comp = tx.delimiters.element, tx.delimiters.component
    env = ack_envelope(tx)
    segs = tx.segments
    src, issue = reporters(tx, issues)

    ak1: list[str] | None = None
    ak2: list[str] | None = None
    errors: list[SegmentError] = []
    seg_err: SegmentError | None = None
    for i in range(1, len(segs)):
        e = segs[i].split(sep)
        sid = e[0]
        e += [""] * 10
        if sid == "AK1":
            ak1 = e
            if not e[2].strip():
                issue("IK4-1", "AK102 group control number is missing", i, "HEADER", "AK102")
        elif sid == "AK2":
            ak2, errors, seg_err = e, [], None
            if ak1 is None:
                issue("IK3-3", "AK2 without an AK1 before it", i, "2000", "AK2")
            if not e[2].strip():
                issue("IK4-1", "AK202 transaction set control number is missing", i, "2000", "AK202")
        elif sid == "IK3":
            if ak2 is None:
                issue("IK3-2", "IK3 outside an AK2 loop", i, "2100", "IK3")
                continue
            seg_err = SegmentError(e[1][:3], _int(e[2]), e[3] or None, e[4] or None, None, [], src(i, "2100"))
            errors.append(seg_err)
            if e[2] and _int(e[2]) is None:
                issue("IK4-6", "IK302 segment position is not a number", i, "2100", "IK302")
        elif sid == "CTX" and seg_err is not None:
            ctx = e[1].split(comp)
            if ctx[0] == "CLM01" and len(ctx) > 1 and ctx[1]:
                seg_err.claim = ctx[1]
        elif sid == "IK4":
            if seg_err is None:
                issue("IK3-2", "IK4 outside an IK3 loop", i, "2110", "IK4")
                continue
            seg_err.elements.append(ElementError(e[1], e[2] or None, e[3], src(i, "2110")))
        elif sid == "IK5":
            if ak2 is None:
                issue("IK3-2", "IK5 outside an AK2 loop", i, "2000", "IK5")
                continue
            if e[1] not in _IK5_CODES:
                issue("IK4-7", f"IK501 {e[1][:3]!r} is not an acknowledgment code", i, "2000", "IK501")
            head = ak1 or [""] * 10
            yield SetResponse(head[2].strip(), head[1], ak2[1], ak2[2].strip(), ak2[3] or None, e[1],
                              [r for r in e[2:7] if r], errors, env, src(i, "2000"))
            ak2, errors, seg_err = None, [], None
        elif sid == "AK9":
            if ak2 is not None:
                issue("IK3-3", "AK2 loop without its IK5", i, "2000", "IK5")
                ak2 = None
            if ak1 is None:
                issue("IK3-3", "AK9 without an AK1", i, "HEADER", "AK1")
            if e[1] not in _AK9_CODES:
                issue("IK4-7", f"AK901 {e[1][:3]!r} is not an acknowledgment code", i, "SUMMARY", "AK901")
            counts = [_int(x) for x in e[2:5]]
            for k, n in enumerate(counts, start=2):
                if n is None:
                    issue("IK4-6", f"AK9{k:02d} count is not a number", i, "SUMMARY", f"AK9{k:02d}")
            head = ak1 or [""] * 10
            yield GroupResponse(head[1], head[2].strip(), head[3] or None, e[1], *counts,
                                [r for r in e[5:10] if r], env, src(i, "SUMMARY"))
    if ak2 is not None:
        issue("IK3-3", "AK2 loop without its IK5", len(segs) - 1, "2000", "IK5")


def iter_999(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
             issues: IssueList | None = None) -> Iterator[SetResponse | GroupResponse]:
    """Stream the 999 records of a file, set by set; other sets are skipped with a warning. Reader and
    parse issues go to `issues`; an unreadable file is one ENV-UNREADABLE issue."""
    yield from stream_records(source, filename, issues, is_999, parse_999, "999")


def stream_records(source, filename, issues, accept, parse, kind: str) -> Iterator:
    """The records `parse` makes of each set `accept` takes, for iter_999 and parse_277ca.iter_277ca."""
    issues = IssueList() if issues is None else issues
    try:
        with EnvelopeReader(source, filename) as env:
            try:
                for tx in env.transactions():
                    if accept(tx):
                        yield from parse(tx, issues)
                    else:
                        issues.append(Issue("ENV-NOT-ACK", f"transaction set {tx.control_number[:9]!r} "
                                            f"({tx.set_id[:3]}) is not a {kind}; skipped", tx.position(0),
                                            Severity.WARNING))
            finally:
                issues.extend(env.issues)
    except EdiError as exc:
        pos = getattr(exc, "pos", None) or Position(filename or "<input>")
        issues.append(Issue("ENV-UNREADABLE", str(exc).replace(f"{pos} ", ""), pos))
