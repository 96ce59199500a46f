"""Typed records of inbound acknowledgments: 999 set and group responses and 277CA claim statuses.

Money is Decimal, dates are date, every record has its source position. No names or member ids are kept:
claims are named by patient control number (TRN02 = CLM01), lines by REF*FJ (= REF*6R).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from edi_pipeline.core.errors import Position

__all__ = ["AckEnvelope", "ElementError", "SegmentError", "SetResponse", "GroupResponse", "StatusCode",
           "Status", "LineStatus", "ClaimStatus", "LevelStatus", "ACCEPTED_CATEGORIES", "REJECTED_CATEGORIES"]

# 277CA category codes (list 507): A2 accepted into adjudication, A5 split on acceptance; A3 returned as
# unprocessable, A4 not found, A6/A7/A8 rejected. A0 (forwarded) and A1 (received) say neither.
ACCEPTED_CATEGORIES = frozenset(("A2", "A5"))
REJECTED_CATEGORIES = frozenset(("A3", "A4", "A6", "A7", "A8"))


def _text(v: Any) -> Any:
    return None if v is None else str(v)


def _same(v: Any) -> Any:
    return v


@dataclass(frozen=True, slots=True)
class AckEnvelope:
    """Where an acknowledgment came from: its own interchange, group and set control numbers."""

    sender_id: str  # ISA06, stripped: who answers
    receiver_id: str  # ISA08, stripped
    interchange_control_number: str  # ISA13 of the acknowledgment
    group_control_number: str  # its GS06
    set_control_number: str  # its ST02

    def to_dict(self) -> dict:
        return {"sender_id": self.sender_id, "receiver_id": self.receiver_id,
                "interchange_control_number": self.interchange_control_number,
                "group_control_number": self.group_control_number, "set_control_number": self.set_control_number}


@dataclass(slots=True)
class ElementError:
    """IK4: an element in error (the bad value, IK404, is not kept: it may be PHI)."""

    position: str  # IK401: element position, "2" or "2:1" for a component
    data_element: str | None  # IK402
    code: str  # IK403
    source: Position

    def to_dict(self) -> dict:
        return {"position": self.position, "data_element": self.data_element, "code": self.code,
                "source": self.source.source_dict(False)}


@dataclass(slots=True)
class SegmentError:
    """IK3 (with its CTX context and IK4 element errors): a segment in error of the set we sent."""

    segment_id: str  # IK301
    position: int | None  # IK302: position in the set as sent (ST = 1)
    loop: str | None  # IK303
    code: str | None  # IK304
    claim: str | None  # CTX*CLM01:<patient control number>, when the sender names the claim
    elements: list[ElementError]
    source: Position

    def to_dict(self) -> dict:
        return {"segment_id": self.segment_id, "position": self.position, "loop": self.loop, "code": self.code,
                "claim": self.claim, "elements": [e.to_dict() for e in self.elements],
                "source": self.source.source_dict(False)}


@dataclass(slots=True)
class SetResponse:
    """One AK2..IK5 of a 999: the answer for one transaction set we sent, GS06/ST02 as sent."""

    group_control_number: str  # AK102: the GS06 we sent
    functional_id: str  # AK101 (HC for 837s)
    set_id: str  # AK201
    control_number: str  # AK202: the ST02 we sent
    version: str | None  # AK203
    code: str  # IK501: A accepted, E accepted with errors, R rejected (M, W, X also exist)
    reasons: list[str]  # IK502..IK506
    errors: list[SegmentError]
    envelope: AckEnvelope
    source: Position  # the IK5

    @property
    def accepted(self) -> bool:
        return self.code in ("A", "E")

    def to_dict(self, plain: bool = False) -> dict:
        return {"type": "999_set_response", "group_control_number": self.group_control_number,
                "functional_id": self.functional_id, "set_id": self.set_id, "control_number": self.control_number,
                "version": self.version, "code": self.code, "accepted": self.accepted, "reasons": self.reasons,
                "errors": [e.to_dict() for e in self.errors], "envelope": self.envelope.to_dict(),
                "source": self.source.source_dict()}


@dataclass(slots=True)
class GroupResponse:
    """The AK1/AK9 of a 999: the answer for one functional group we sent, GS06 as sent."""

    functional_id: str  # AK101
    group_control_number: str  # AK102
    version: str | None  # AK103
    code: str  # AK901: A, E, P (partially accepted), R
    included: int | None  # AK902
    received: int | None  # AK903
    accepted_sets: int | None  # AK904
    reasons: list[str]  # AK905..AK909
    envelope: AckEnvelope
    source: Position  # the AK9

    @property
    def accepted(self) -> bool:
        return self.code in ("A", "E", "P")

    def to_dict(self, plain: bool = False) -> dict:
        return {"type": "999_group_response", "functional_id": self.functional_id,
                "group_control_number": self.group_control_number, "version": self.version, "code": self.code,
                "included": self.included, "received": self.received, "accepted_sets": self.accepted_sets,
                "reasons": self.reasons, "envelope": self.envelope.to_dict(), "source": self.source.source_dict()}


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One health care claim status composite (STC01, STC10 or STC11)."""

    category: str  # list 507 (A0..A8, E0..E4)
    code: str  # list 508
    entity: str | None = None

    def to_dict(self) -> dict:
        return {"category": self.category, "code": self.code, "entity": self.entity}


@dataclass(slots=True)
class Status:
    """One STC segment."""

    codes: list[StatusCode]  # STC01, then STC10 and STC11 when present
    effective_date: date | None  # STC02
    action: str | None  # STC03: WQ accept, U reject
    amount: Decimal | None  # STC04
    message: str | None  # STC12
    source: Position

    @property
    def category(self) -> str | None:
        return self.codes[0].category if self.codes else None

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"codes": [c.to_dict() for c in self.codes], "effective_date": self.effective_date,
                "action": self.action, "amount": m(self.amount), "message": self.message,
                "source": self.source.source_dict(False)}


@dataclass(slots=True)
class LineStatus:
    """A 2220D service line status: the line by REF*FJ (our REF*6R) and its STCs."""

    procedure: str | None  # SVC01-2
    modifiers: list[str]
    charge: Decimal | None  # SVC02
    units: Decimal | None  # SVC07
    control_number: str | None  # REF*FJ
    service_date: date | None  # DTP*472
    statuses: list[Status]
    source: Position

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"procedure": self.procedure, "modifiers": self.modifiers, "charge": m(self.charge),
                "units": m(self.units), "control_number": self.control_number, "service_date": self.service_date,
                "statuses": [s.to_dict(plain) for s in self.statuses], "source": self.source.source_dict(False)}


@dataclass(slots=True)
class ClaimStatus:
    """One 2200D of a 277CA: a claim's status (TRN02 = our CLM01) with its lines."""

    patient_control_number: str  # TRN02
    payer_claim_control_number: str | None  # REF*1K
    clearinghouse_trace: str | None  # REF*D9
    statuses: list[Status]
    service_date: date | None  # DTP*472 (first day)
    service_date_end: date | None
    lines: list[LineStatus]
    source_name: str | None  # 2100A NM103: payer or clearinghouse
    source_entity: str | None  # 2100A NM101: PR payer, AY clearinghouse
    source_id: str | None  # 2100A NM109
    batch_trace: str | None  # 2200B TRN02 (the BHT03 of the 837 it answers)
    billing_provider_id: str | None  # 2100C NM109 (NPI)
    receipt_date: date | None  # 2200A DTP*050
    process_date: date | None  # 2200A DTP*009
    envelope: AckEnvelope
    source: Position  # the TRN

    @property
    def category(self) -> str | None:
        """The category of the first status (STC01-1)."""
        return self.statuses[0].category if self.statuses else None

    @property
    def accepted(self) -> bool:
        """Accepted into the payer's adjudication system (A2, A5)."""
        return self.category in ACCEPTED_CATEGORIES

    @property
    def rejected(self) -> bool:
        """Rejected before adjudication (A3, A4, A6, A7, A8 on any of its statuses): never in an 835."""
        return any(s.category in REJECTED_CATEGORIES for s in self.statuses)

    @property
    def amount(self) -> Decimal | None:
        return next((s.amount for s in self.statuses if s.amount is not None), None)

    @property
    def status_date(self) -> date | None:
        return next((s.effective_date for s in self.statuses if s.effective_date), None)

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"type": "277CA_claim_status", "patient_control_number": self.patient_control_number,
                "payer_claim_control_number": self.payer_claim_control_number,
                "clearinghouse_trace": self.clearinghouse_trace, "category": self.category,
                "accepted": self.accepted, "rejected": self.rejected, "amount": m(self.amount),
                "status_date": self.status_date, "statuses": [s.to_dict(plain) for s in self.statuses],
                "service_date": self.service_date, "service_date_end": self.service_date_end,
                "lines": [ln.to_dict(plain) for ln in self.lines], "source_name": self.source_name,
                "source_entity": self.source_entity, "source_id": self.source_id, "batch_trace": self.batch_trace,
                "billing_provider_id": self.billing_provider_id, "receipt_date": self.receipt_date,
                "process_date": self.process_date, "envelope": self.envelope.to_dict(),
                "source": self.source.source_dict()}


@dataclass(slots=True)
class LevelStatus:
    """The status of a whole batch (2200B, information receiver) or billing provider (2200C) of a 277CA,
    with its counts: a batch or provider rejected there may list no claim of its own."""

    level: str  # "receiver" (2200B) or "provider" (2200C)
    statuses: list[Status]
    accepted_count: int | None  # QTY 90 / QA
    rejected_count: int | None  # QTY AA / QC
    accepted_amount: Decimal | None  # AMT YU
    rejected_amount: Decimal | None  # AMT YY
    batch_trace: str | None  # 2200B TRN02 (the BHT03 of the 837 it answers)
    billing_provider_id: str | None  # 2100C NM109, for a provider level
    source_id: str | None  # 2100A NM109: who answers
    envelope: AckEnvelope
    source: Position  # the level's TRN

    @property
    def rejected(self) -> bool:
        return any(s.category in REJECTED_CATEGORIES for s in self.statuses)

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"type": "277CA_level_status", "level": self.level, "rejected": self.rejected,
                "statuses": [s.to_dict(plain) for s in self.statuses], "accepted_count": self.accepted_count,
                "rejected_count": self.rejected_count, "accepted_amount": m(self.accepted_amount),
                "rejected_amount": m(self.rejected_amount), "batch_trace": self.batch_trace,
                "billing_provider_id": self.billing_provider_id, "source_id": self.source_id,
                "envelope": self.envelope.to_dict(), "source": self.source.source_dict()}
