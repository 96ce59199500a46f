"""Reading a whole X12 file as typed records, each set by the parser its registered type names: 837P claims,
835 headers and claim payments, 999 set and group responses, 277CA claim and level statuses."""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.core.errors import Issue, IssueList, Severity
from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader
from edi_pipeline.tx.registry import lookup

Record = Claim | ClaimPayment | RemitHeader | SetResponse | GroupResponse | ClaimStatus | LevelStatus


def check_version(tx: Transaction, issues: IssueList) -> None:
    """Warn on a label of a type's family other than the one it is read as (837P X222A2, read as A1)."""
    tt = lookup(tx)
    if tt is not None and tt.relabelled(tx):
        issues.append(Issue("SYN-VERSION", f"version label {tx.version} read as {tt.version}",
                            tx.position(0, None, "ST03"), Severity.WARNING))


def transaction_records(tx: Transaction, issues: IssueList) -> Iterator[Record]:
    """The typed records of one set, by its registered type's parser (none for a type we do not read)."""
    tt = lookup(tx)
    if tt is not None:
        yield from tt.parse(tx, issues)
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
