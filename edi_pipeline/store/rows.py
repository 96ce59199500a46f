"""Typed rows of the store's reads: what a query returns, by name (money in cents, dates as ISO text)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Iterator, NamedTuple


class ClaimRow(NamedTuple):
    """A claim submission as reconcile reads it; `rowid` is its ingest order."""

    id: str
    patient_control_number: str
    frequency_code: str | None
    payer_claim_control_number: str | None  # REF*F8
    charge_cents: int | None
    service_date: str | None
    payer_id: str | None
    payer_name: str | None
    rowid: int | None = None


class ClaimLineRow(NamedTuple):
    claim_id: str
    line_number: int | None
    procedure: str | None
    modifiers: str | None
    charge_cents: int | None
    service_date: str | None
    control_number: str | None  # REF*6R
    patient_control_number: str | None = None  # of its claim, in reads ordered by claim


class ServicePaymentRow(NamedTuple):
    id: str
    claim_payment_id: str
    procedure: str | None  # SVC01
    modifiers: str | None
    original_procedure: str | None  # SVC06
    charge_cents: int | None
    paid_cents: int | None
    service_date: str | None
    control_number: str | None  # REF*6R
    remarks: str | None
    patient_control_number: str | None = None  # of its claim payment, in reads ordered by claim

    @property
    def billed_procedure(self) -> str | None:
        """The code as billed: SVC06 when the payer changed it, else SVC01."""
        return self.original_procedure or self.procedure


class DenialAdjustmentRow(NamedTuple):
    claim_payment_id: str
    service_payment_id: str | None  # None: a claim-level (2100) adjustment
    group_code: str
    reason: str
    amount_cents: int


class DenialClaimRow(NamedTuple):
    """A claim submission as the denial back-links read it."""

    id: str
    patient_control_number: str
    frequency_code: str | None
    payer_claim_control_number: str | None
    claim_filing_indicator: str | None  # SBR09
    profile: str | None
    payer_id: str | None


class PaidLineRow(NamedTuple):
    """A paid service line of a claim payment that is not a reversal."""

    patient_control_number: str
    payer_id: str | None
    procedure: str | None
    charge_cents: int
    paid_cents: int
    payment_date: str


class PaymentRow(NamedTuple):
    """A claim payment as reconcile reads it, in payment order; the CAS totals only where the read sums them."""

    id: str
    patient_control_number: str
    status_code: str  # CLP02
    charge_cents: int | None
    paid_cents: int | None
    patient_responsibility_cents: int | None
    payer_claim_control_number: str | None  # CLP07
    payment_date: str | None
    payer_id: str | None
    payer_name: str | None
    remarks: str
    service_date: str | None
    adjustments_cents: int = 0  # non-PR CAS total
    denied_cents: int = 0  # denial CAS total


class ReplacementLinkRow(NamedTuple):
    """A replacement or void (frequency 7/8) and the claim whose payment its REF*F8 names (CLP07)."""

    patient_control_number: str
    paid_patient_control_number: str


class AdjustmentTotalsRow(NamedTuple):
    claim_payment_id: str
    adjustments_cents: int | None  # non-PR CAS total
    denied_cents: int | None  # denial CAS total


class DenialLineRow(NamedTuple):
    claim_id: str
    procedure: str | None


class DenialServiceRow(NamedTuple):
    """A service payment of a claim payment; the codes None for a claim payment without SVC."""

    claim_payment_id: str
    claim_filing_indicator: str | None  # CLP06
    original_procedure: str | None  # SVC06
    procedure: str | None  # SVC01


class UnitsRow(NamedTuple):
    """A stored line of a procedure for a patient (visit history)."""

    service_date: date
    patient_control_number: str
    units: Decimal


class ProcedureDateRow(NamedTuple):
    service_date: date
    patient_control_number: str


class ScrubCounts(NamedTuple):
    scrubbed: int  # claims the scrubber emitted or held
    changed: int  # of them, those it corrected or held


class AckEventRow(NamedTuple):
    """A payer's 277CA answer recorded in claim_events."""

    patient_control_number: str
    event_date: str | None
    category: str  # STC01-1: A2 accepted, A7 rejected


class RecordedEventRow(NamedTuple):
    state: str
    recorded_at: str


class PayerKeysRow(NamedTuple):
    """What picks a claim's payer profile."""

    claim_filing_indicator: str | None  # SBR09
    payer_id: str | None  # 2010BB


class DenialContext(NamedTuple):
    """What the denial back-links read about some claims (store.denial_context)."""

    claims: list[DenialClaimRow]
    lines: list[DenialLineRow]
    services: list[DenialServiceRow]


class ClaimTimelineRows(NamedTuple):
    """What one claim's timeline is made of (store.claim_timeline_rows), each in store order."""

    submissions: list[dict]  # with the file's name
    payments: list[dict]  # with payment date, file name and ingest time
    findings: list[dict]  # error findings
    events: list[dict]  # recorded claim_events rows


class ExportRows(NamedTuple):
    """One exported table: its column names and its rows streamed, as tuples in those columns' order (the
    one read whose rows are positional: export writes any table, column by column)."""

    columns: list[str]
    rows: Iterator[tuple]
