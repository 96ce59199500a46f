"""The remits family of the store: 835 transaction sets written in bulk (remits, PLB, claim payments, service
payments, CAS adjustments) and the reads of payments by file or by paid line."""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator

from edi_pipeline.core.values import cents
from edi_pipeline.store.rows import PaidLineRow
from edi_pipeline.store.sql import iso
from edi_pipeline.tx.model import ClaimPayment, RemitHeader


class Remits:
    """The remits, provider_adjustments, claim_payments, service_payments and adjustments families of Store
    (composed into store.Store)."""

    _CP_COLS = ("id", "remit_id", "file_sha256", "patient_control_number", "status_code", "charge_cents",
                "paid_cents", "patient_responsibility_cents", "claim_filing_indicator",
                "payer_claim_control_number", "frequency_code", "service_date", "remarks", "seq",
                "segment_index", "line")

    _SP_COLS = ("id", "claim_payment_id", "seq", "procedure", "modifiers", "original_procedure", "charge_cents",
                "paid_cents", "allowed_cents", "units", "service_date", "control_number", "remarks",
                "segment_index", "line")

    _ADJ_COLS = ("id", "claim_payment_id", "service_payment_id", "group_code", "reason", "amount_cents",
                 "quantity")

    def save_remits_bulk(self, remits: Iterable[tuple[RemitHeader, list[ClaimPayment]]], sha: str) -> int:
        """Insert 835 transaction sets (header, PLB, claim payments, service payments, CAS) with executemany; returns payments."""
        remit_rows, plb_rows, cps, sps, adjs = [], [], [], [], []
        key = sha[:16]
        for header, payments in remits:
            src = header.source
            rid = f"{key}:{src.segment_index if src else 0}"
            remit_rows.append((rid, sha, header.payer.id, header.payer.name, header.payee.npi, header.trace_number,
                               iso(header.payment_date), cents(header.payment_amount), header.payment_method,
                               header.credit_debit, src.segment_index if src else None, src.line if src else None))
            for k, p in enumerate(header.provider_adjustments):
                plb_rows.append((f"{rid}:{k}", rid, p.provider_id, iso(p.fiscal_period_end), p.reason,
                                 p.reference, cents(p.amount)))
            for seq, cp in enumerate(payments):
                csrc = cp.source
                cpid = f"{key}:{csrc.segment_index}"
                cps.append((cpid, rid, sha, cp.patient_control_number, cp.status_code, cents(cp.charge),
                            cents(cp.paid), cents(cp.patient_responsibility), cp.claim_filing_indicator,
                            cp.payer_claim_control_number, cp.frequency_code, iso(cp.service_date),
                            " ".join(cp.remarks), seq, csrc.segment_index, csrc.line))
                for k, a in enumerate(cp.adjustments):
                    adjs.append((f"{cpid}:c{k}", cpid, None, a.group, a.reason, cents(a.amount),
                                 None if a.quantity is None else str(a.quantity)))
                for j, sp in enumerate(cp.lines):
                    ssrc = sp.source
                    spid = f"{cpid}:{ssrc.segment_index}"
                    sps.append((spid, cpid, j, sp.procedure, " ".join(sp.modifiers), sp.original_procedure,
                                cents(sp.charge), cents(sp.paid), cents(sp.allowed),
                                None if sp.units is None else str(sp.units),
                                iso(sp.service_date or cp.service_date), sp.control_number, " ".join(sp.remarks),
                                ssrc.segment_index, ssrc.line))
                    for k, a in enumerate(sp.adjustments):
                        adjs.append((f"{spid}:l{k}", cpid, spid, a.group, a.reason, cents(a.amount),
                                     None if a.quantity is None else str(a.quantity)))
        for table, cols, rows in (
                ("remits", ("id", "file_sha256", "payer_id", "payer_name", "payee_npi", "trace_number",
                            "payment_date", "payment_cents", "payment_method", "credit_debit", "segment_index",
                            "line"), remit_rows),
                ("provider_adjustments", ("id", "remit_id", "provider_id", "fiscal_period_end", "reason",
                                          "reference", "amount_cents"), plb_rows),
                ("claim_payments", self._CP_COLS, cps), ("service_payments", self._SP_COLS, sps),
                ("adjustments", self._ADJ_COLS, adjs)):
            self.insert_rows(table, cols, rows)
        return len(cps)

    def remit_pcns(self, file_keys: Iterable[str]) -> set[str]:
        """Patient control numbers of the claim payments that came in these files."""
        pcns: set[str] = set()
        for key in file_keys:  # a file's claim payment ids start with its digest's first 16 digits
            pcns.update(r[0] for r in self.conn.execute(
                "select distinct patient_control_number from claim_payments where id >= ? and id < ? "
                "and file_sha256 = ?", [f"{key[:16]}:", f"{key[:16]};", key]))
        return pcns

    def paid_service_lines(self) -> Iterator[PaidLineRow]:
        """Every service line paid something, of a claim payment that is not a reversal, by payer id, SVC01
        procedure and payment date (streamed)."""
        return itertools.starmap(PaidLineRow, self.conn.execute(
            "select cp.patient_control_number, r.payer_id, sp.procedure, sp.charge_cents, sp.paid_cents, "
            "r.payment_date from service_payments sp join claim_payments cp on cp.id = sp.claim_payment_id "
            "join remits r on r.id = cp.remit_id where sp.paid_cents > 0 and sp.charge_cents > 0 "
            "and cp.status_code != '22' and r.payment_date is not null order by r.payer_id, sp.procedure, "
            "r.payment_date"))

