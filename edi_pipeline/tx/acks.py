"""Inbound acknowledgments of either kind, 999 or 277CA: one entry point for ingest and convert."""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse
from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import IssueList
from edi_pipeline.tx.parse_277ca import is_277ca, parse_277ca
from edi_pipeline.tx.parse_999 import is_999, parse_999, stream_records

AckRecord = SetResponse | GroupResponse | ClaimStatus | LevelStatus

__all__ = ["AckRecord", "is_ack", "ack_set_records", "iter_acks"]


def is_ack(tx: Transaction) -> bool:
    return is_999(tx) or is_277ca(tx)


def ack_set_records(tx: Transaction, issues: IssueList) -> Iterator[AckRecord]:
    """The records of one 999 or 277CA set (none for any other set): what document.transaction_records
    can yield for them, each with to_dict(plain) giving its NDJSON object."""
    if is_999(tx):
        yield from parse_999(tx, issues)
    elif is_277ca(tx):
        yield from parse_277ca(tx, issues)


def iter_acks(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
              issues: IssueList | None = None) -> Iterator[AckRecord]:
    """Stream the acknowledgment records of a file holding 999s, 277CAs or both, set by set; other sets
    are skipped with a warning, an unreadable file is one ENV-UNREADABLE issue."""
    yield from stream_records(source, filename, issues, is_ack, ack_set_records, "999 or 277CA")
