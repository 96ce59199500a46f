"""Validation of one file: syntax and envelopes, TR3 via pyx12's maps, and the checks.py checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .checks import check_claim, check_remit
from .document import check_version
from .envelope import EnvelopeReader
from .errors import EdiError, Issue, IssueList, Position, Severity
from .model import ClaimPayment
from .parse_835 import is_835, parse_835, parse_835_header
from .parse_837p import is_837p, parse_837p
from .tr3 import GroupAck
from .tr3_compiled import validate_tr3_fast, validate_tr3_sets
from .writer import atomic_output, file_lock
from .x12 import upper_ids_text


@dataclass
class Validation:
    file: str
    issues: IssueList = field(default_factory=IssueList)
    acks: list[GroupAck] = field(default_factory=list)
    transactions: int = 0
    claims: int = 0
    payments: int = 0

    @property
    def ok(self) -> bool:
        return not self.issues.errors

    def rejected_sets(self) -> set[tuple[str, str, str]]:
        """(ISA13, GS06, ST02) of every transaction set a 999 of this file rejects."""
        return {(a.interchange_control_number, a.group_control_number.strip(), st02)
                for a in self.acks for st02 in a.rejected_sets}

    def to_dict(self) -> dict:
        return {"file": self.file, "ok": self.ok, "transactions": self.transactions, "claims": self.claims,
                "claim_payments": self.payments,
                "groups": [{"control_number": a.group_control_number, "type": a.transaction_type,
                            "accepted": a.accepted} for a in self.acks],
                "issues": [i.to_dict() for i in self.issues]}


# pyx12 codes for defects the envelope reader has already reported
_SAME_AS = {"IK5-4": "IK5-4", "IK5-2": "ENV-SE-MISSING", "AK9-3": "ENV-GE-MISSING",
            "TA1-023": "ENV-IEA-MISSING", "ENV-TRUNCATED": "SYN-NO-TERMINATOR", "ENV-ISA-LENGTH": "ENV-ISA-LENGTH",
            "IK5-23": "IK5-23", "TA1-025": "TA1-025"}


def _own_checks(path: str | os.PathLike | bytes, name: str, result: Validation) -> None:
    issues = result.issues
    with EnvelopeReader(path, name) as env:
        try:
            for item in env.transactions():
                result.transactions += 1
                check_version(item, issues)
                if is_837p(item):
                    for claim in parse_837p(item, issues):
                        result.claims += 1
                        check_claim(claim, issues)
                elif is_835(item):
                    header = parse_835_header(item, issues)
                    payments: list[ClaimPayment] = list(parse_835(item, header, issues))
                    result.payments += len(payments)
                    check_remit(header, payments, issues)
        finally:
            issues.extend(env.issues)


# Files larger than this are validated one transaction set at a time, in memory bounded by the largest set.
LARGE_FILE = 32 << 20


def validate_file(path: str | os.PathLike, name: str | None = None, data: bytes | None = None, *,
                  by_set: bool | None = None) -> Validation:
    """Validate a file; never raises for bad content (unreadable input becomes an Issue).

    `by_set` (default: for files over LARGE_FILE) validates each transaction set inside its own
    envelope instead of the whole text at once; the envelope reader checks the trailers either way.
    """
    name = name or os.fspath(path)
    result = Validation(name)
    if by_set is None:
        by_set = data is None and os.path.getsize(path) > LARGE_FILE
    if data is None and not by_set:
        data = Path(path).read_bytes()
    source = data if data is not None else path
    try:
        _own_checks(source, name, result)
    except EdiError as exc:
        pos = getattr(exc, "pos", None) or Position(name)
        result.issues.append(Issue("ENV-UNREADABLE", str(exc).replace(f"{pos} ", ""), pos))
        return result
    if by_set:
        tr3 = validate_tr3_sets(source, name)
    else:
        text = data.decode("utf-8", errors="replace")
        if result.issues.has("SYN-LOWERCASE"):
            text = upper_ids_text(text)
        tr3 = validate_tr3_fast(text, name)
    seen = {(i.pos.segment_index, i.code) for i in result.issues}
    ours = {i.code for i in result.issues}
    for issue in tr3.issues:
        if _SAME_AS.get(issue.code) in ours or (issue.pos.segment_index, issue.code) in seen:
            continue
        result.issues.append(issue)
    result.acks = tr3.groups
    result.issues.sort(key=lambda i: (i.pos.segment_index, i.pos.element or ""))
    return result


SEQUENCE_NAME = ".edi-pipeline-control-number"


def take_control_numbers(ack_dir: Path, count: int) -> list[int]:
    """`count` interchange control numbers never handed out before for acknowledgments written to
    `ack_dir`: the last one is kept in ACK_DIR/.edi-pipeline-control-number, read and advanced under a
    lock, so reruns and parallel workers never reuse one. 1 after 999999999."""
    ack_dir.mkdir(parents=True, exist_ok=True)
    seq = ack_dir / SEQUENCE_NAME
    with file_lock(ack_dir / f"{SEQUENCE_NAME}.lock"):
        try:
            last = int(seq.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            last = 0
        numbers = [(last + k - 1) % 999_999_999 + 1 for k in range(1, count + 1)]
        with atomic_output(seq, mode=0o644) as fh:
            fh.write(f"{numbers[-1] if numbers else last}\n")
    return numbers


def write_acks(result: Validation, ack_dir: Path, name: str | None = None) -> list[Path]:
    """Each functional group's 999 as ACK_DIR/<name, default the file's>.<GS06 acknowledged>.999, written
    atomically, each under its own interchange control number (take_control_numbers)."""
    written = []
    base = name or Path(result.file).name
    for ack, control in zip(result.acks, take_control_numbers(ack_dir, len(result.acks))):
        target = ack_dir / f"{base}.{ack.group_control_number or 'group'}.999"
        with atomic_output(target) as out:
            out.write(ack.numbered(control))
        written.append(target)
    return written


__all__ = ["validate_file", "write_acks", "Validation", "Severity"]
