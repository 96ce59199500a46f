"""Reading a whole X12 file as typed records: 837P claims, 835 headers and claim payments."""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.core.errors import Issue, IssueList, Severity
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader
from edi_pipeline.tx.parse_835 import is_835, parse_835, parse_835_header
from edi_pipeline.tx.parse_837p import is_837p, parse_837p

Record = Claim | ClaimPayment | RemitHeader


def check_version(tx: Transaction, issues: IssueList) -> None:
    """Warn on 837P version labels other than 005010X222A1 (they are read as A1)."""
    if is_837p(tx):
        v = tx.version
        if v != "005010X222A1":
            issues.append(Issue("SYN-VERSION", f"version label {v} read as 005010X222A1",
                                tx.position(0, None, "ST03"), Severity.WARNING))


def transaction_records(tx: Transaction, issues: IssueList) -> Iterator[Record]:
    if is_837p(tx):
        yield from parse_837p(tx, issues)
    elif is_835(tx):
        header = parse_835_header(tx, issues)
        yield header
        yield from parse_835(tx, header, issues)
    elif tx.set_id == "837":
        issues.append(Issue("ENV-UNSUPPORTED", f"837 version {tx.version} is not 005010X222 (professional)",
                            tx.position(0, None, "ST03"), Severity.WARNING))


def iter_records(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
                 issues: IssueList | None = None) -> Iterator[Record]:
    """Stream typed records from a file, transaction set by transaction set.

    Issues (envelope, syntax and value defects) are appended to `issues` as they are found.
    """
    issues = IssueList() if issues is None else issues
    with EnvelopeReader(source, filename) as env:
        try:
            for item in env.transactions():
                check_version(item, issues)
                yield from transaction_records(item, issues)
        finally:
            issues.extend(env.issues)


def iter_transactions(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
                      issues: IssueList | None = None) -> Iterator[EnvelopeSegment | Transaction]:
    """The file's envelope segments and transaction sets, in order; reader issues go to `issues`."""
    with EnvelopeReader(source, filename) as env:
        try:
            yield from env
        finally:
            if issues is not None:
                issues.extend(env.issues)
