"""Inbound 277CA (005010X214) transaction sets to typed records: a ClaimStatus per claim (2200D), and a
LevelStatus per batch (2200B) and billing provider (2200C), which carry the counts and may reject them whole.

Each record carries what ties it to our claim (TRN02 = CLM01, REF*1K, REF*D9, lines by REF*FJ = REF*6R),
its STC statuses, and who answered (2100A) for which batch (2200B TRN02) and billing provider (2100C).
Names and member ids (2100D) are not read. Defects become issues with positions, never exceptions.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.tx.ack_records import ClaimStatus, LevelStatus, LineStatus, Status, StatusCode
from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import IssueList
from edi_pipeline.tx.parse_999 import ack_envelope, reporters, stream_records
from edi_pipeline.core.values import date_range, to_date, to_decimal

__all__ = ["is_277ca", "parse_277ca", "iter_277ca"]

_CATEGORY_PREFIXES = ("A", "E", "F", "P", "R", "D")


def is_277ca(tx: Transaction) -> bool:
    """A 277 labelled 005010X214 (ST03, else GS08)."""
    return tx.set_id == "277" and tx.version.startswith("005010X214")


def parse_277ca(tx: Transaction, issues: IssueList | None = None) -> Iterator[ClaimStatus | LevelStatus]:
    """Yield the level and claim statuses of a 277CA transaction set, each when its loop ends, in order."""
    issues = IssueList() if issues is None else issues
    sep, comp = tx.delimiters.element, tx.delimiters.component
    env = ack_envelope(tx)
    segs = tx.segments
    src, issue = reporters(tx, issues)

    def status(e: list[str], i: int, loop: str) -> Status:
        codes = []
        for k in (1, 10, 11):
            if not e[k]:
                continue
            c = e[k].split(comp) + ["", ""]
            if not c[0] or not c[1]:
                issue("IK4-1", f"STC{k:02d} needs a category and a status code", i, loop, f"STC{k:02d}")
            elif not c[0].startswith(_CATEGORY_PREFIXES):
                issue("IK4-7", f"STC{k:02d}-1 {c[0][:3]!r} is not a claim status category", i, loop,
                      f"STC{k:02d}-1")
            codes.append(StatusCode(c[0], c[1], c[2] or None))
        if not codes:
            issue("IK4-1", "STC01 claim status is missing", i, loop, "STC01")
        effective = to_date(e[2]) if e[2] else None
        if e[2] and effective is None:
            issue("IK4-8", "STC02 is not a date", i, loop, "STC02")
        amount = to_decimal(e[4]) if e[4] else None
        if e[4] and amount is None:
            issue("IK4-6", "STC04 amount is not a number", i, loop, "STC04")
        return Status(codes, effective, e[3] or None, amount, e[12] or None, src(i, loop))

    level = ""  # HL03 of the open level: 20 source, 21 receiver, 19 provider, PT patient
    source_name = source_entity = source_id = batch = provider = None
    receipt = process = None
    claim: ClaimStatus | None = None
    line: LineStatus | None = None
    group: LevelStatus | None = None  # the open 2200B or 2200C
    for i in range(1, len(segs)):
        e = segs[i].split(sep)
        sid = e[0]
        e += [""] * 14
        if sid in ("HL", "SE") and claim is not None:
            yield claim
            claim = line = None
        if sid in ("HL", "SE") and group is not None:
            yield group
            group = None
        if sid == "HL":
            level = e[3]
            if level == "20":
                source_name = source_entity = source_id = batch = provider = receipt = process = None
            elif level == "19":
                provider = None
        elif sid == "NM1":
            if level == "20":
                source_entity, source_name, source_id = e[1] or None, e[3] or None, e[9] or None
            elif level == "19" and e[1] == "85":
                provider = e[9] or None
        elif sid == "DTP" and level == "20" and claim is None:
            d = to_date(e[3])
            if d is None:
                issue("IK4-8", f"DTP*{e[1][:3]} is not a date", i, "2200A", "DTP03")
            elif e[1] == "050":
                receipt = d
            elif e[1] == "009":
                process = d
        elif sid == "TRN":
            if level in ("21", "19"):
                if level == "21":
                    batch = e[2] or None
                group = LevelStatus("receiver" if level == "21" else "provider", [], None, None, None, None, batch,
                                    provider if level == "19" else None, source_id, env,
                                    src(i, "2200B" if level == "21" else "2200C"))
            elif level == "PT":
                if claim is not None:
                    yield claim
                line = None
                if not e[2]:
                    issue("IK4-1", "TRN02 patient control number is missing", i, "2200D", "TRN02")
                claim = ClaimStatus(e[2], None, None, [], None, None, [], source_name, source_entity, source_id,
                                    batch, provider, receipt, process, env, src(i, "2200D"))
        elif group is not None:
            loop = group.source.loop
            if sid == "STC":
                group.statuses.append(status(e, i, loop))
            elif sid == "QTY" and e[1] in ("90", "QA", "AA", "QC"):
                n = int(e[2]) if e[2].isdigit() else None
                if n is None:
                    issue("IK4-6", "QTY02 count is not a number", i, loop, "QTY02")
                elif e[1] in ("90", "QA"):
                    group.accepted_count = n
                else:
                    group.rejected_count = n
            elif sid == "AMT" and e[1] in ("YU", "YY"):
                amount = to_decimal(e[2])
                if amount is None:
                    issue("IK4-6", "AMT02 amount is not a number", i, loop, "AMT02")
                elif e[1] == "YU":
                    group.accepted_amount = amount
                else:
                    group.rejected_amount = amount
        elif level != "PT":
            continue
        elif claim is None:
            if sid in ("STC", "REF", "SVC"):
                issue("IK3-2", f"{sid} in a patient level before its TRN", i, "2200D", sid)
        elif sid == "STC":
            if line is not None:
                line.statuses.append(status(e, i, "2220D"))
            else:
                claim.statuses.append(status(e, i, "2200D"))
        elif sid == "REF":
            if line is not None:
                if e[1] == "FJ":
                    line.control_number = e[2] or None
            elif e[1] == "1K":
                claim.payer_claim_control_number = e[2] or None
            elif e[1] == "D9":
                claim.clearinghouse_trace = e[2] or None
        elif sid == "DTP" and e[1] == "472":
            first, last = date_range(e[3])
            if first is None:
                issue("IK4-8", "DTP*472 service date is not a date", i, "2220D" if line else "2200D", "DTP03")
            elif line is not None:
                line.service_date = first
            else:
                claim.service_date, claim.service_date_end = first, last
        elif sid == "SVC":
            c = e[1].split(comp)
            charge = to_decimal(e[2]) if e[2] else None
            if e[2] and charge is None:
                issue("IK4-6", "SVC02 line charge is not a number", i, "2220D", "SVC02")
            units = to_decimal(e[7]) if e[7] else None
            line = LineStatus(c[1] if len(c) > 1 else None, [m for m in c[2:6] if m], charge, units, None, None, [],
                              src(i, "2220D"))
            claim.lines.append(line)
    for left in (claim, group):  # a set cut short (the envelope reader reports the missing SE)
        if left is not None:
            yield left


def iter_277ca(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
               issues: IssueList | None = None) -> Iterator[ClaimStatus | LevelStatus]:
    """Stream the level and claim statuses of a file, set by set; other sets are skipped with a warning. Reader and
    parse issues go to `issues`; an unreadable file is one ENV-UNREADABLE issue."""
    yield from stream_records(source, filename, issues, is_277ca, parse_277ca, "277CA")
