"""Typed 837P and 835 records: dataclasses with Decimal money, date dates and source positions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from edi_pipeline.core.errors import Position
from edi_pipeline.x12.reader import Delimiters
from edi_pipeline.x12.segment import Segment


@dataclass(slots=True)
class Party:
    name: str | None = None
    id: str | None = None


@dataclass(slots=True)
class Provider:
    npi: str | None = None
    name: str | None = None
    taxonomy: str | None = None


@dataclass(slots=True)
class Person:
    member_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    birth_date: date | None = None
    gender: str | None = None


@dataclass(slots=True)
class ServiceLine:
    line_number: int
    procedure: str
    modifiers: list[str]
    description: str | None
    charge: Decimal | None
    units: Decimal | None
    unit_basis: str | None
    service_date: date | None
    service_date_end: date | None
    dx_pointers: list[int]
    place_of_service: str | None
    control_number: str | None  # REF*6R
    prior_authorization: str | None  # 2400 REF*G1
    rendering_npi: str | None  # 2420A
    source: Position
    start: int  # offset of LX in the transaction's segments
    end: int  # offset after the last segment of the 2400 loop


@dataclass(slots=True)
class Claim:
    """One 837P 2300 claim with its 2400 lines and the parties above it."""

    patient_control_number: str
    total_charge: Decimal | None
    claim_filing_indicator: str | None
    payer: Party
    subscriber: Person
    patient: Person | None
    billing_provider: Provider
    rendering_provider: Provider | None
    place_of_service: str | None
    frequency_code: str | None
    prior_authorization: str | None
    payer_claim_control_number: str | None
    service_date: date | None  # 2300 DTP*472 / 434 when present
    diagnoses: list[str]
    lines: list[ServiceLine]
    source: Position
    segments: list[str]  # the transaction's segment list (shared, not copied)
    start: int  # offset of CLM in `segments`
    end: int  # offset after the claim's last segment
    hl_subscriber: int = 0  # offset of the subscriber HL (2000B)
    hl_patient: int | None = None  # offset of the patient HL (2000C)
    hl_billing: int = 0  # offset of the billing provider HL (2000A)
    tx_lines: list[int] | None = None  # line numbers of `segments`
    tx_first_index: int = 0  # file segment index of `segments[0]`
    delimiters: Delimiters = Delimiters()  # those `segments` are written with
    _member_key: str | None = field(default=None, init=False, repr=False, compare=False)
    _member_hash: str | None = field(default=None, init=False, repr=False, compare=False)  # member_hash

    def position_at(self, offset: int, loop: str | None = None, element: str | None = None) -> Position:
        """Position of the transaction segment at `offset`."""
        text = self.segments[offset]
        seg_id = text[:3].rstrip("*~|^:!")
        line = self.tx_lines[offset] if self.tx_lines else self.source.line
        return Position(self.source.file, line, self.tx_first_index + offset, offset + 1, seg_id, loop, element)

    def find(self, prefix: str, start: int | None = None, end: int | None = None) -> int | None:
        """Offset of the first segment starting with `prefix` in [start, end) (default: the claim)."""
        for k in range(self.start if start is None else start, self.end if end is None else end):
            if self.segments[k].startswith(prefix):
                return k
        return None

    def segment(self, offset: int) -> Segment:
        """The segment at `offset` in `segments`, to read or edit by reference designator (a copy)."""
        return Segment(self.segments[offset], self.delimiters)

    @property
    def raw(self) -> list[str]:
        return self.segments[self.start:self.end]

    @property
    def member_key(self) -> str:
        """Who the claim is for, for session and history matching (never logged).
        Computed once, when first asked (after the parser has set payer, subscriber and patient)."""
        if self._member_key is None:
            p = self.patient or self.subscriber
            self._member_key = "|".join([self.payer.id or "", self.subscriber.member_id or "",
                                         p.last_name or "", p.first_name or "",
                                         p.birth_date.isoformat() if p.birth_date else ""])
        return self._member_key

    def to_dict(self, plain: bool = False) -> dict[str, Any]:
        """The NDJSON contract; with `plain`, money is text. Dates stay `date`s, which orjson (and
        convert.json_default) write as ISO text."""
        m = _text if plain else _same
        lines = [
            {"line_number": ln.line_number, "procedure": ln.procedure, "modifiers": ln.modifiers,
             "description": ln.description, "charge": m(ln.charge), "units": m(ln.units),
             "unit_basis": ln.unit_basis, "service_date": ln.service_date, "dx_pointers": ln.dx_pointers,
             "control_number": ln.control_number, "prior_authorization": ln.prior_authorization,
             "source": {"line": (s := ln.source).line, "segment_index": s.segment_index,
                        "st_position": s.st_position, "loop": s.loop}}
            for ln in self.lines]
        payer, bp, rp, src = self.payer, self.billing_provider, self.rendering_provider, self.source
        return {
            "type": "837P_claim",
            "patient_control_number": self.patient_control_number,
            "total_charge": m(self.total_charge),
            "claim_filing_indicator": self.claim_filing_indicator,
            "payer": {"name": payer.name, "id": payer.id},
            "subscriber": _person(self.subscriber),
            "patient": _person(self.patient) if self.patient else None,
            "billing_provider": {"npi": bp.npi, "name": bp.name, "taxonomy": bp.taxonomy},
            "rendering_provider": {"npi": rp.npi, "name": rp.name} if rp else None,
            "place_of_service": self.place_of_service,
            "frequency_code": self.frequency_code,
            "prior_authorization": self.prior_authorization,
            "payer_claim_control_number": self.payer_claim_control_number,
            "service_date": self.service_date,
            "diagnoses": self.diagnoses,
            "lines": lines,
            "source": {"line": src.line, "segment_index": src.segment_index, "st_position": src.st_position,
                       "loop": src.loop, "file": src.file},
        }


@dataclass(slots=True)
class Adjustment:
    group: str
    reason: str
    amount: Decimal
    quantity: Decimal | None = None

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"group": self.group, "reason": self.reason, "amount": m(self.amount), "quantity": m(self.quantity)}


@dataclass(slots=True)
class ServicePayment:
    procedure: str
    modifiers: list[str]
    original_procedure: str | None  # SVC06
    charge: Decimal | None
    paid: Decimal | None
    units: Decimal | None
    service_date: date | None
    control_number: str | None  # REF*6R
    adjustments: list[Adjustment]
    remarks: list[str]  # LQ*HE
    allowed: Decimal | None
    source: Position


@dataclass(slots=True)
class ProviderAdjustment:
    provider_id: str
    fiscal_period_end: date | None
    reason: str
    reference: str | None
    amount: Decimal

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {"provider_id": self.provider_id, "fiscal_period_end": self.fiscal_period_end,
                "reason": self.reason, "reference": self.reference, "amount": m(self.amount)}


@dataclass(slots=True)
class RemitHeader:
    """The 835 transaction header: payment, payer, payee and provider-level adjustments."""

    payment_amount: Decimal | None
    credit_debit: str | None
    payment_method: str | None
    payment_date: date | None
    trace_number: str | None
    payer: Party
    payee: Provider
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)
    source: Position | None = None
    bpr_position: Position | None = None

    def to_dict(self, plain: bool = False) -> dict:
        m = _text if plain else _same
        return {
            "type": "835_header",
            "payment_amount": m(self.payment_amount),
            "credit_debit": self.credit_debit,
            "payment_method": self.payment_method,
            "payment_date": self.payment_date,
            "trace_number": self.trace_number,
            "payer": _party(self.payer),
            "payee": {"npi": self.payee.npi, "name": self.payee.name},
            "provider_adjustments": [p.to_dict(plain) for p in self.provider_adjustments],
            "source": self.source.source_dict() if self.source else None,
        }


@dataclass(slots=True)
class ClaimPayment:
    """One 835 2100 claim payment with its 2110 service payments."""

    patient_control_number: str
    status_code: str
    charge: Decimal | None
    paid: Decimal | None
    patient_responsibility: Decimal | None
    claim_filing_indicator: str | None
    payer_claim_control_number: str | None
    frequency_code: str | None
    header: RemitHeader
    adjustments: list[Adjustment]
    remarks: list[str]  # MOA remark codes
    lines: list[ServicePayment]
    service_date: date | None
    source: Position

    @property
    def payer(self) -> Party:
        return self.header.payer

    def to_dict(self, plain: bool = False) -> dict[str, Any]:
        m = _text if plain else _same
        h = self.header
        return {
            "type": "835_claim_payment",
            "patient_control_number": self.patient_control_number,
            "status_code": self.status_code,
            "charge": m(self.charge),
            "paid": m(self.paid),
            "patient_responsibility": m(self.patient_responsibility),
            "claim_filing_indicator": self.claim_filing_indicator,
            "payer_claim_control_number": self.payer_claim_control_number,
            "frequency_code": self.frequency_code,
            "payer": _party(h.payer),
            "payee": {"npi": h.payee.npi, "name": h.payee.name},
            "trace_number": h.trace_number,
            "payment_date": h.payment_date,
            "adjustments": [a.to_dict(plain) for a in self.adjustments],
            "remarks": self.remarks,
            "lines": [
                {
                    "procedure": ln.procedure,
                    "modifiers": ln.modifiers,
                    "original_procedure": ln.original_procedure,
                    "charge": m(ln.charge),
                    "paid": m(ln.paid),
                    "units": m(ln.units),
                    "service_date": ln.service_date,
                    "control_number": ln.control_number,
                    "adjustments": [a.to_dict(plain) for a in ln.adjustments],
                    "remarks": ln.remarks,
                    "source": ln.source.source_dict(False),
                }
                for ln in self.lines
            ],
            "source": self.source.source_dict(),
        }


def _same(v):
    return v


def _text(v):
    return None if v is None else str(v)


def _party(p: Party) -> dict:
    return {"name": p.name, "id": p.id}


def _person(p: Person) -> dict:
    return {"member_id": p.member_id, "last_name": p.last_name, "first_name": p.first_name,
            "birth_date": p.birth_date, "gender": p.gender}


def member_hash(claim: Claim) -> str:
    """A stable key for the patient that keeps no name or member id in the store (computed once a claim)."""
    if claim._member_hash is None:
        claim._member_hash = hashlib.sha256(claim.member_key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return claim._member_hash
