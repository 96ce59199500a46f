"""edi-pipeline: read, scrub, validate and reconcile X12 837P/835 for pain-management billing."""

from edi_pipeline.tx.document import iter_records, iter_transactions
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.core.errors import EdiError, InterchangeError, Issue, IssueList, Position, Severity
from edi_pipeline.tx.model import Adjustment, Claim, ClaimPayment, RemitHeader, ServiceLine, ServicePayment
from edi_pipeline.x12.reader import Delimiters, SegmentReader

__all__ = [
    "Adjustment", "Claim", "ClaimPayment", "Delimiters", "EdiError", "EnvelopeReader", "EnvelopeSegment",
    "InterchangeError", "Issue", "IssueList", "Position", "RemitHeader", "SegmentReader", "ServiceLine",
    "ServicePayment", "Severity", "Transaction", "iter_records", "iter_transactions",
]
