"""edi-pipeline: read, scrub, validate and reconcile X12 837P/835 for pain-management billing."""

from .document import iter_records, iter_transactions
from .envelope import EnvelopeReader, EnvelopeSegment, Transaction
from .errors import EdiError, InterchangeError, Issue, IssueList, Position, Severity
from .model import Adjustment, Claim, ClaimPayment, RemitHeader, ServiceLine, ServicePayment
from .x12 import Delimiters, SegmentReader

__all__ = [
    "Adjustment", "Claim", "ClaimPayment", "Delimiters", "EdiError", "EnvelopeReader", "EnvelopeSegment",
    "InterchangeError", "Issue", "IssueList", "Position", "RemitHeader", "SegmentReader", "ServiceLine",
    "ServicePayment", "Severity", "Transaction", "iter_records", "iter_transactions",
]
