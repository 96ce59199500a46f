"""Typed rows of the store's reads: what a query returns, by name (money in cents, dates as ISO text)."""

from __future__ import annotations

from typing import NamedTuple


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
