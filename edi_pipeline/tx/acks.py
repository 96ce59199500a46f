"""Inbound acknowledgments of either kind, 999 or 277CA: one entry point for ingest and convert."""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse
from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import IssueList
from edi_pipeline.tx.parse_999 import stream_records
from edi_pipeline.tx.registry import Kind, lookup

AckRecord = SetResponse | GroupResponse | ClaimStatus | LevelStatus

__all__ = ["AckRecord", "is_ack", "ack_set_records", "iter_acks"]


_ACK_KINDS = (Kind.ACK_999, Kind.CLAIM_ACK_277CA)


def is_ack(tx: Transaction) -> bool:
    tt = lookup(tx)
    return tt is not None and tt.kind in _ACK_KINDS


def ack_set_records(tx: Transaction, issues: IssueList) -> Iterator[AckRecord]:
    """The records of one 999 or 277CA set (none for any other set): what document.transaction_records
    can yield for them, each with to_dict(plain) giving its NDJSON object."""
    if is_ack(tx):
        yield from lookup(tx).parse(tx, issues)


def iter_acks(source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None,
              issues: IssueList | None = None) -> Iterator[AckRecord]:
    """Stream the acknowledgment records of a file holding 999s, 277CAs or both, set by set; other sets
    are skipped with a warning, an unreadable file is one ENV-UNREADABLE issue."""
    yield from stream_records(source, filename, issues, is_ack, ack_set_records, "999 or 277CA")
