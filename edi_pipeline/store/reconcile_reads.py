"""The reads reconcile and the denial back-links make of submissions and payments together: of the whole
store or, inside recon_scope(), of some claims' groups; and the store's one test of a denial adjustment."""

from __future__ import annotations

import contextlib
import itertools
from typing import Callable, Iterable, Iterator, TypeVar

from edi_pipeline.store.rows import (AdjustmentTotalsRow, ClaimLineRow, ClaimRow, DenialAdjustmentRow, DenialClaimRow,
                                     DenialContext, DenialLineRow, DenialServiceRow, PaymentRow, ReplacementLinkRow,
                                     ServicePaymentRow)
from edi_pipeline.store.sql import JSON_LIST, json_list

Row = TypeVar("Row")


class ReconcileReads:
    """Reconcile's and the denials' reads of Store (composed into store.Store)."""

    _SCOPE = "(select pcn from temp.recon_scope)"

    _SCOPED_CLAIMS = f"(select id from claims where patient_control_number in {_SCOPE})"

    _SCOPED_PAYMENTS = f"(select id from claim_payments where patient_control_number in {_SCOPE})"

    def _where(self, column: str, scoped_to: str | None = None) -> str:
        """`where column in (...)` while recon_scope() is on, else nothing. `scoped_to` is a subquery
        mapping the scope's patient control numbers to the ids `column` holds."""
        if not self._scoped:
            return ""
        return f" where {column} in {scoped_to or self._SCOPE}"

    @contextlib.contextmanager
    def _pcn_table(self, name: str) -> Iterator[Callable[[Iterable[str]], None]]:
        """A private temp table of patient control numbers; yields fill(pcns), which replaces its rows.
        Ends only the implicit transaction its rows opened, never a caller's."""
        conn = self.conn
        was_open = conn.in_transaction
        conn.execute(f"create temp table if not exists {name} (pcn text primary key)")

        def fill(pcns: Iterable[str]) -> None:
            conn.execute(f"delete from temp.{name}")
            conn.executemany(f"insert or ignore into temp.{name} values (?)", ((p,) for p in pcns))
        try:
            yield fill
        finally:
            conn.execute(f"delete from temp.{name}")
            if not was_open:
                conn.commit()

    @contextlib.contextmanager
    def recon_scope(self, pcns: Iterable[str]) -> Iterator[None]:
        """Inside, the recon_* reads see only the claims and payments of these patient control numbers."""
        with self._pcn_table("recon_scope") as fill:
            fill(pcns)
            self._scoped = True
            try:
                yield
            finally:
                self._scoped = False

    def linked_pcns(self, pcns: Iterable[str]) -> set[str]:
        """`pcns` plus every patient control number reconcile would group with them: replacements and
        voids (frequency 7/8) whose REF*F8 is a payment's CLP07, followed both ways until nothing is added.
        Each round is one set-wise query, whatever the number of pcns."""
        scope: set[str] = set()
        new = set(pcns)
        with self._pcn_table("recon_new") as fill:
            while new:
                scope |= new
                fill(new)
                found = {r[0] for r in self.conn.execute(
                    "select patient_control_number from claims where frequency_code in ('7', '8') and "
                    "payer_claim_control_number in (select payer_claim_control_number from claim_payments "
                    "where patient_control_number in (select pcn from temp.recon_new)) "
                    "union select patient_control_number from claim_payments where payer_claim_control_number in "
                    "(select payer_claim_control_number from claims where frequency_code in ('7', '8') and "
                    "patient_control_number in (select pcn from temp.recon_new))")}
                new = found - scope
        return scope

    _CLAIM_ROWS = ("select id, patient_control_number, frequency_code, payer_claim_control_number, "
                   "total_charge_cents, service_date, payer_id, payer_name, rowid from claims")

    def recon_claims(self) -> list[ClaimRow]:
        """Every claim submission in ingest order."""
        return list(itertools.starmap(ClaimRow, self.conn.execute(
            f"{self._CLAIM_ROWS}{self._where('patient_control_number')} order by rowid")))

    def recon_links(self) -> list[ReplacementLinkRow]:
        """The replacements and voids (frequency 7/8) whose REF*F8 is a payment's CLP07, in ingest order:
        (their patient control number, that of the first payment, in payment order, with the CLP07)."""
        return list(itertools.starmap(ReplacementLinkRow, self.conn.execute(
            "select pcn, paid_pcn from (select c.rowid as seq, c.patient_control_number as pcn, "
            "(select cp.patient_control_number from claim_payments cp join remits r on r.id = cp.remit_id "
            "where cp.payer_claim_control_number = c.payer_claim_control_number "
            "order by coalesce(r.payment_date, ''), cp.rowid limit 1) as paid_pcn "
            "from claims c where c.frequency_code in ('7', '8') and c.payer_claim_control_number != '') "
            "where paid_pcn is not null order by seq")))

    def iter_claims_by_pcn(self) -> Iterator[ClaimRow]:
        """Every claim submission, by patient control number, then in ingest order (streamed)."""
        return itertools.starmap(ClaimRow, self.conn.execute(f"{self._CLAIM_ROWS} order by patient_control_number, rowid"))

    _LINE_ROWS = "select claim_id, line_number, procedure, modifiers, charge_cents, service_date, control_number"

    def recon_claim_lines(self) -> list[ClaimLineRow]:
        return list(itertools.starmap(ClaimLineRow, self.conn.execute(
            f"{self._LINE_ROWS} from claim_lines{self._where('claim_id', self._SCOPED_CLAIMS)} order by rowid")))

    def iter_claim_lines_by_pcn(self) -> Iterator[ClaimLineRow]:
        """Every claim line with its claim's patient control number, by that number, then by claim and in
        ingest order (streamed)."""
        return itertools.starmap(ClaimLineRow, self.conn.execute(
            "select l.claim_id, l.line_number, l.procedure, l.modifiers, l.charge_cents, l.service_date, "
            "l.control_number, c.patient_control_number from claims c join claim_lines l on l.claim_id = c.id "
            "order by c.patient_control_number, c.rowid, l.rowid"))  # index order: no sort

    _PAYMENT_ROWS = ("select cp.id, cp.patient_control_number, cp.status_code, cp.charge_cents, cp.paid_cents, "
                     "cp.patient_responsibility_cents, cp.payer_claim_control_number, r.payment_date, r.payer_id, "
                     "r.payer_name, cp.remarks, cp.service_date")

    def recon_payments(self, row: Callable[..., Row] = PaymentRow) -> list[Row]:
        """Every claim payment in payment order, without its CAS totals. Each is made by `row` from PaymentRow's
        fields in order (reconcile passes its Payment, which has the same: one object per payment)."""
        return list(itertools.starmap(row, self.conn.execute(
            f"{self._PAYMENT_ROWS} from claim_payments cp join remits r on r.id = cp.remit_id"
            f"{self._where('cp.patient_control_number')} order by coalesce(r.payment_date, ''), cp.rowid")))

    def iter_payments_by_pcn(self, not_denial_reasons: Iterable[str],
                             row: Callable[..., Row] = PaymentRow) -> Iterator[Row]:
        """recon_payments' rows, each with its non-PR CAS total and denial CAS total in cents (see _denial;
        0 without CAS), by patient control number, then in payment order (streamed); made by `row` as there."""
        denial, params = self._denial(not_denial_reasons, "a.")
        return itertools.starmap(row, self.conn.execute(
            f"{self._PAYMENT_ROWS}, coalesce(sum(case when a.group_code != 'PR' then a.amount_cents end), 0), "
            f"coalesce(sum(case when {denial} then a.amount_cents end), 0) "
            "from claim_payments cp join remits r on r.id = cp.remit_id left join adjustments a "
            "on a.claim_payment_id = cp.id group by cp.rowid "
            "order by cp.patient_control_number, coalesce(r.payment_date, ''), cp.rowid", params))

    _SERVICE_PAYMENT_ROWS = ("select id, claim_payment_id, procedure, modifiers, original_procedure, charge_cents, "
                             "paid_cents, service_date, control_number, remarks from service_payments")

    def recon_service_payments(self) -> list[ServicePaymentRow]:
        return list(itertools.starmap(ServicePaymentRow, self.conn.execute(
            f"{self._SERVICE_PAYMENT_ROWS}{self._where('claim_payment_id', self._SCOPED_PAYMENTS)} "
            "order by rowid")))

    def iter_service_payments_by_pcn(self) -> Iterator[ServicePaymentRow]:
        """Every service payment with its claim payment's patient control number, by that number, then by
        claim payment and in ingest order (streamed)."""
        return itertools.starmap(ServicePaymentRow, self.conn.execute(
            "select sp.id, sp.claim_payment_id, sp.procedure, sp.modifiers, sp.original_procedure, "
            "sp.charge_cents, sp.paid_cents, sp.service_date, sp.control_number, sp.remarks, "
            "cp.patient_control_number from claim_payments cp join service_payments sp on sp.claim_payment_id = cp.id "
            "order by cp.patient_control_number, cp.rowid, sp.rowid"))  # index order: no sort

    @staticmethod
    def _denial(reasons: Iterable[str], table: str = "") -> tuple[str, list[str]]:
        """SQL true for an adjustment row (of `table`, a prefix such as "a.") that is a denial: a positive
        CO/PI/OA/PR amount whose reason is not in `reasons` (contractual and patient responsibility), and
        its parameters."""
        reasons = sorted(set(reasons))
        marks = ",".join("?" * len(reasons)) or "''"
        return (f"{table}group_code in ('CO', 'PI', 'OA', 'PR') and {table}amount_cents > 0 "
                f"and {table}reason not in ({marks})", reasons)

    def is_denial(self, group: str, reason: str, amount_cents: int | None, not_denial_reasons: Iterable[str]) -> bool:
        """Whether one adjustment (CAS group, reason, amount) is a denial by the store's own test (_denial)."""
        denial, params = self._denial(not_denial_reasons)
        return bool(self.conn.execute(
            f"select {denial} from (select ? as group_code, ? as reason, ? as amount_cents)",
            [*params, group, reason, amount_cents]).fetchone()[0])

    def recon_adjustment_totals(self, not_denial_reasons: Iterable[str]) -> list[AdjustmentTotalsRow]:
        """Per claim payment: its non-PR CAS total and its denial CAS total, in cents."""
        denial, params = self._denial(not_denial_reasons)
        return list(itertools.starmap(AdjustmentTotalsRow, self.conn.execute(
            "select claim_payment_id, sum(case when group_code != 'PR' then amount_cents else 0 end), "
            f"sum(case when {denial} then amount_cents else 0 end) "
            f"from adjustments{self._where('claim_payment_id', self._SCOPED_PAYMENTS)} group by claim_payment_id",
            params)))

    def denial_adjustments(self, not_denial_reasons: Iterable[str],
                           payment_ids: Iterable[str] | None = None) -> list[DenialAdjustmentRow]:
        """Every denial adjustment (see _denial), of the claim payments `payment_ids` or of all, in ingest order."""
        denial, params = self._denial(not_denial_reasons)
        scoped = ""
        if payment_ids is not None:
            scoped = f" and claim_payment_id in {JSON_LIST}"
            params.append(json_list(payment_ids))
        return list(itertools.starmap(DenialAdjustmentRow, self.conn.execute(
            "select claim_payment_id, service_payment_id, group_code, reason, amount_cents "
            f"from adjustments where {denial}{scoped} order by rowid", params)))

    def service_payments(self, ids: Iterable[str]) -> list[ServicePaymentRow]:
        """recon_service_payments' rows of these service payment ids, in ingest order."""
        return list(itertools.starmap(ServicePaymentRow, self.conn.execute(
            f"{self._SERVICE_PAYMENT_ROWS} where id in {JSON_LIST} order by rowid", [json_list(ids)])))

    def denial_context(self, pcns: Iterable[str]) -> DenialContext:
        """What the denial back-links read about the claims of these patient control numbers: their
        submissions in ingest order, the lines of those and the service payments of their claim payments
        (one row with None codes for a payment without SVC)."""
        pcns = [json_list(pcns)]  # not a temp table: creating one would abort the caller's open reads
        claims = list(itertools.starmap(DenialClaimRow, self.conn.execute(
            "select id, patient_control_number, frequency_code, payer_claim_control_number, "
            f"claim_filing_indicator, profile, payer_id from claims where patient_control_number in {JSON_LIST} "
            "order by rowid", pcns)))
        lines = list(itertools.starmap(DenialLineRow, self.conn.execute(
            "select claim_id, procedure from claim_lines where claim_id in (select id from claims where "
            f"patient_control_number in {JSON_LIST}) order by rowid", pcns)))
        services = list(itertools.starmap(DenialServiceRow, self.conn.execute(
            "select cp.id, cp.claim_filing_indicator, sp.original_procedure, sp.procedure "
            "from claim_payments cp left join service_payments sp on sp.claim_payment_id = cp.id "
            f"where cp.patient_control_number in {JSON_LIST} order by cp.rowid, sp.rowid", pcns)))
        return DenialContext(claims, lines, services)

