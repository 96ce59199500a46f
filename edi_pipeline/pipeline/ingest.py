"""Loading 837P claims, 835 remittances and payers' 999s and 277CAs into the store, one file per transaction.

A file streams into one `Store.transaction()`, transaction set by transaction set. It is
**rejected** (the transaction rolled back, the store as it was before the file) when the reader
raises `EdiError`, when the reader reports any error-severity issue (envelope defects such as a
truncated file or a wrong SE01 count, unreadable money amounts), or when it holds no set of a type
read here (tx.registry). Otherwise everything in the file - files row, claims and lines, remits,
claim/service payments, adjustments, PLB, findings and the claim status events its acknowledgments
tie to (acks_in.py; those tied to nothing are listed in the result) - commits together.

A file already in the store (same sha256, or same ISA06 sender + ISA13 control number + kind)
is skipped as a duplicate. 835 balancing (checks.check_remit) becomes findings, not a rejection.
A database error while writing (locked, disk full) rolls the file back and rejects it; any other
exception propagates after the rollback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datetime import date

from edi_pipeline.validate.checks import check_remit
from edi_pipeline.tx.document import check_version, transaction_records
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment
from edi_pipeline.x12.isa import Isa
from edi_pipeline.core.errors import EdiError, Issue, IssueList, Position, Severity
from edi_pipeline.core.values import to_date
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader
from edi_pipeline.tx.registry import Kind, kind_label, lookup
from edi_pipeline.pipeline.acks_in import AckTies
from edi_pipeline.store.store import STORE_ERRORS, Store
from edi_pipeline.core.files import path_sha256

INGESTED, DUPLICATE, REJECTED = "ingested", "already ingested", "rejected"
STORE_ERROR = "store error"  # how the reason of a file rejected because the store failed begins


@dataclass
class IngestResult:
    """What happened to one file."""

    path: str
    status: str  # INGESTED, DUPLICATE or REJECTED
    sha256: str | None = None
    key: str | None = None  # the file's record in the store (rows carry it): sha256, or sha256:835
    kind: str | None = None  # its kinds' stored label (tx.registry): "837P", "835", "837P+835", "999", "277CA"
    claims: int = 0
    payments: int = 0
    remits: int = 0
    ack_events: int = 0  # claim status events its 999s and 277CAs tied to claims
    unmatched_acks: list[dict] = field(default_factory=list)  # acknowledgments that tie to nothing we sent
    reason: str | None = None  # why rejected / which earlier file it duplicates
    issues: IssueList = field(default_factory=IssueList)  # reader issues
    findings: IssueList = field(default_factory=IssueList)  # balancing and code-list findings

    @property
    def ok(self) -> bool:
        return self.status != REJECTED

    def to_dict(self) -> dict:
        return {
            "file": self.path, "status": self.status, "sha256": self.sha256, "kind": self.kind,
            "claims": self.claims, "payments": self.payments, "remits": self.remits,
            "ack_events": self.ack_events, "unmatched_acks": self.unmatched_acks, "reason": self.reason,
            "errors": len(self.issues.errors), "findings": [f.to_dict() for f in self.findings],
        }


def _finding_row(issue: Issue) -> dict:
    pcn = None
    msg = issue.message
    if msg.startswith("claim payment "):
        pcn = msg[len("claim payment "):].split(":", 1)[0].split(" ", 1)[0]
    return {"patient_control_number": pcn, "rule": issue.code, "severity": issue.severity.value,
            "line": issue.pos.line, "procedure": None, "action": None, "message": msg}


class _Rejected(Exception):
    """The file cannot go in; the store transaction is rolled back."""


class _Duplicate(Exception):
    def __init__(self, earlier: dict):
        self.earlier = earlier


def ingest_file(path: str | os.PathLike, store: Store, origin: str = "ingest",
                remits_only: bool = False, sha256: str | None = None, name: str | None = None) -> IngestResult:
    """Load one X12 file (837P claims, 835 remittances, 999s, 277CAs) into `store`. Never prints.

    The file streams transaction set by transaction set into one store transaction, which is
    rolled back if anything turns out to be wrong, so memory stays flat in file size.
    `remits_only` loads just the other sets of a file whose 837P sets scrub has stored; the file is
    then recorded under `<sha256>:835`, so each part has its own idempotent record.
    `sha256` is the file's digest when the caller has already read it; `name` names the file in the
    result, its messages and the store (default: `path`; `<stdin>` for a copy of stdin).
    """
    name = name or str(path)
    result = IngestResult(name, REJECTED)
    try:
        sha = result.sha256 = sha256 or path_sha256(path)
        if remits_only:
            sha += ":835"
        result.key = sha
    except OSError as exc:
        result.reason = f"cannot read: {exc.strerror or exc}"
        return result
    earlier = store.seen_file(sha)
    if earlier:
        return _duplicate(result, earlier)
    try:
        with store.staged():
            interchanges = _stream_into(store, path, name, sha, origin, result, remits_only)
            errors = result.issues.errors
            if errors:
                raise _Rejected(f"{len(errors)} envelope/syntax error(s), first: {errors[0]}")
            if result.kind is None:
                raise _Rejected("no 837P claims, 835 remittances, 999s or 277CAs in the file")
            earlier = store.earlier_interchanges(interchanges, exclude_sha=sha)
            if earlier:
                k, row = next(iter(earlier.items()))
                if len(earlier) == len(interchanges):  # all of it came before, in other bytes: nothing new
                    raise _Duplicate(row)
                sender, control, _, pos = interchanges[k]
                raise _Rejected(f"{pos} TA1-025 interchange {control} from {sender} came before, in {row['name']} "
                                f"(ingested {row['ingested_at']}); the file's other interchanges are new, so "
                                "nothing of it was ingested: they need a file of their own")
            sender, control = interchanges[0][:2]  # a file with a kind wrote the sets of an interchange
            store.add_file(sha, name, result.kind, sender, control, origin,
                           claims=result.claims, payments=result.payments)
            store.add_interchanges(sha, interchanges)
            findings = [_finding_row(i) for i in result.findings]
            findings += [_finding_row(i) for i in result.issues if i.severity is not Severity.ERROR]
            store.save_findings(findings, sha)
    except _Duplicate as dup:
        _nothing_kept(result)
        return _duplicate(result, dup.earlier)
    except (_Rejected, EdiError) as exc:  # rolled back: the store is as it was before this file
        _nothing_kept(result)
        result.reason = str(exc)
        return result
    except STORE_ERRORS as exc:
        _nothing_kept(result)
        result.reason = f"{STORE_ERROR}, nothing from this file was kept: {exc}"
        return result
    result.status = INGESTED
    return result


def _nothing_kept(result: IngestResult) -> None:
    result.claims = result.payments = result.remits = result.ack_events = 0
    result.unmatched_acks = []


def _stream_into(store: Store, source, name: str, sha: str, origin: str,
                 result: IngestResult, remits_only: bool = False) -> list[tuple[str, str, str, Position]]:
    """Write each transaction set as it is read; raise _Rejected at the first error. Returns the
    interchanges whose sets it wrote: ISA06 sender, ISA13 control number, kind of sets, ISA position."""
    interchanges: dict[tuple[str, str], tuple[set[Kind], Position]] = {}
    held: set[Kind] = set()
    kinds: set[Kind] = set()
    ties = AckTies(store, os.path.basename(name))
    issues = result.issues
    with EnvelopeReader(source, name) as env:
        try:
            for item in env:
                if isinstance(item, EnvelopeSegment):
                    if item.tag == "ISA":
                        isa = Isa.of(item.elements)
                        held = interchanges.setdefault(
                            (isa.sender, isa.control),
                            (set(), Position(name, item.line, item.index, None, "ISA", None, "ISA13")))[0]
                    continue
                check_version(item, issues)
                tt = lookup(item)
                claims: list[Claim] = []
                remits: list[tuple[RemitHeader, list[ClaimPayment]]] = []
                answers = []
                for rec in transaction_records(item, issues):
                    if isinstance(rec, Claim):
                        claims.append(rec)
                    elif isinstance(rec, RemitHeader):
                        remits.append((rec, []))
                    elif isinstance(rec, ClaimPayment):
                        remits[-1][1].append(rec)
                    else:
                        answers.append(rec)
                if issues.errors or env.issues.errors:
                    break
                if claims and not remits_only:
                    store.save_claims(claims, sha, origin)
                    result.claims += len(claims)
                    held.add(tt.kind)
                if remits:
                    for header, payments in remits:
                        check_remit(header, payments, result.findings)
                    result.payments += store.save_remits_bulk(remits, sha)
                    result.remits += len(remits)
                    held.add(tt.kind)
                if tt is not None and not (claims or remits) and tt.kind is not Kind.CLAIM_837P:
                    ties.add(answers, to_date((item.gs.split(item.delimiters.element) + [""] * 5)[4])
                             or date.today())
                    held.add(tt.kind)  # an acknowledgment is taken even when it answers nothing we sent
                kinds |= held
        finally:
            issues.extend(env.issues)
    if ties.events:
        store.add_claim_events(ties.events)
    result.ack_events, result.unmatched_acks = len(ties.events), ties.unmatched
    result.kind = kind_label(kinds) or None
    return [(sender, control, kind_label(sets), pos)
            for (sender, control), (sets, pos) in interchanges.items() if sets]


def _duplicate(result: IngestResult, earlier: dict) -> IngestResult:
    result.status = DUPLICATE
    result.kind = result.kind or earlier.get("kind")
    result.reason = f"same as {earlier.get('name')} ingested {earlier.get('ingested_at')}"
    return result
