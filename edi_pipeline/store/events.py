"""The lifecycle family of the store: claim events (999 and 277CA answers), the sets batch sent on and their
claims, and the reads that tie an acknowledgment back to a claim or build a claim's timeline."""

from __future__ import annotations

import contextlib
import itertools

from edi_pipeline.store.rows import AckEventRow, ClaimTimelineRows, RecordedEventRow
from edi_pipeline.store.sql import now, store_row


class ClaimEvents:
    """The claim_events, outbound_sets and outbound_claims families of Store (composed into store.Store)."""

    def report_ack_events(self) -> list[AckEventRow]:
        """The payers' 277CA answers recorded in claim_events (lifecycle.py's
        states 'accepted by payer' / 'rejected by payer', read as A2 / A7)."""
        return list(itertools.starmap(AckEventRow, self.conn.execute(
            "select patient_control_number, event_date, case state when 'accepted by payer' then 'A2' else 'A7' end "
            "from claim_events where state in ('accepted by payer', 'rejected by payer')")))

    _EVENT_COLS = ("id", "patient_control_number", "state", "event_date", "source_file", "segment_index", "line",
                   "detail", "recorded_at")

    def add_claim_events(self, rows: list[tuple]) -> None:
        """Insert claim_events rows (_EVENT_COLS order); an event's id is its source and position, so a
        replay replaces it."""
        self.insert_rows("claim_events", self._EVENT_COLS, rows)

    def claim_timeline_rows(self, pcn: str) -> ClaimTimelineRows:
        """What one claim's timeline is made of: its submissions (with file name), its claim payments
        (with payment date, file name and ingest time), its error findings and its recorded events, each in
        store order."""
        claims = list(self.query(
            "select c.frequency_code, c.payer_claim_control_number, c.origin, c.submitted_at, c.segment_index, "
            "c.line, c.total_charge_cents, f.name as file from claims c left join files f on f.sha256 = c.file_sha256 "
            "where c.patient_control_number = ? order by c.rowid", [pcn]))
        payments = list(self.query(
            "select cp.status_code, cp.charge_cents, cp.paid_cents, cp.payer_claim_control_number, cp.segment_index, "
            "cp.line, r.payment_date, f.name as file, f.ingested_at from claim_payments cp join remits r on r.id = cp.remit_id "
            "left join files f on f.sha256 = r.file_sha256 where cp.patient_control_number = ? order by cp.rowid",
            [pcn]))
        findings = list(self.query(
            "select fi.rule, fi.line, fi.action, f.name as file, f.ingested_at from findings fi "
            "left join files f on f.sha256 = fi.file_sha256 "
            "where fi.patient_control_number = ? and fi.severity = 'error' order by fi.rowid", [pcn]))
        events = list(self.query(
            "select * from claim_events where patient_control_number = ? order by rowid", [pcn]))
        return ClaimTimelineRows(claims, payments, findings, events)

    def latest_recorded_events(self) -> dict[str, RecordedEventRow]:
        """Per claim, its last recorded event."""
        return {pcn: RecordedEventRow(state, at) for pcn, state, at in self.conn.execute(
            "select patient_control_number, state, recorded_at from claim_events order by recorded_at, rowid")}

    def last_stored_at(self) -> dict[str, str]:
        """Per claim with a recorded event (claim_events), when the store last took a submission of it or a
        payment for it (ISO timestamp)."""
        return {pcn: at for pcn, at in self.conn.execute(
            "select pcn, max(at) from (select patient_control_number as pcn, submitted_at as at from claims "
            "where patient_control_number in (select patient_control_number from claim_events) "
            "union all select cp.patient_control_number, f.ingested_at from claim_payments cp "
            "join files f on f.sha256 = cp.file_sha256 "
            "where cp.patient_control_number in (select patient_control_number from claim_events)) group by pcn")}

    def add_outbound_sets(self, sets: list[tuple], claims: list[tuple]) -> None:
        """Record outbound sets (id, file_sha256, outbound_file, ISA06, ISA08, ISA13, GS06, ST02, claims,
        sent_order: the batch's order of the file, or None) and their claims (set id, CLM01, REF*D9), in one
        transaction; recording the same set again replaces it.
        Inside staged(), they are staged with the job's other rows (and the copy into the store replaces)."""
        staging = self._schema != "main"
        with contextlib.nullcontext() if staging else self.transaction():
            if not staging:
                self.conn.executemany("delete from outbound_claims where set_id = ?", [(s[0],) for s in sets])
            self.insert_rows("outbound_sets", ("id", "file_sha256", "outbound_file", "isa_sender", "isa_receiver",
                                               "isa_control", "gs_control", "st_control", "claims", "sent_order",
                                               "recorded_at"),
                             [(*s, now()) for s in sets])
            self.insert_rows("outbound_claims", ("set_id", "patient_control_number", "clearinghouse_trace"), claims)

    def outbound_sets_of(self, gs06: str, st02: str | None, our_id: str) -> list[dict]:
        """The sets last sent with this GS06 (and ST02, unless None) in one outbound file, preferring those
        sent by `our_id` (the 999's ISA08): id, outbound_file, st_control, and pcns (their CLM01s). Last: in
        the batch's order of their files (sent_order), so not by how parallel workers committed them."""
        where, params = "gs_control = ?", [gs06]
        if st02 is not None:
            where, params = where + " and st_control = ?", params + [st02]
        order = "order by sent_order is not null, sent_order, rowid"
        rows = list(self.query(f"select * from outbound_sets where {where} and isa_sender = ? {order}",
                               params + [our_id])) or \
            list(self.query(f"select * from outbound_sets where {where} {order}", params))
        if not rows:
            return []
        last = rows[-1]["file_sha256"]
        rows = [r for r in rows if r["file_sha256"] == last]
        for r in rows:
            r["pcns"] = [pcn for (pcn,) in self.conn.execute(
                "select patient_control_number from outbound_claims where set_id = ? order by rowid", [r["id"]])]
        return rows

    def claim_of_ack(self, pcn: str, payer_icn: str | None, trace: str | None) -> str | None:
        """The CLM01 a 277CA claim status names: its TRN02 when the store holds that claim, else the claim its
        REF*1K (the payer's claim control number, from an 835 or a replacement's REF*F8) or its REF*D9 (as
        batch sent it) leads to."""
        if pcn and self.conn.execute("select 1 from claims where patient_control_number = ? limit 1",
                                     store_row([pcn])).fetchone():
            return pcn
        for sql, value in (("select patient_control_number from claim_payments where payer_claim_control_number = ?",
                            payer_icn),
                           ("select patient_control_number from claims where payer_claim_control_number = ? "
                            "and frequency_code in ('7', '8')", payer_icn),
                           ("select patient_control_number from outbound_claims where clearinghouse_trace = ?",
                            trace)):
            if value:
                row = self.conn.execute(sql + " limit 1", store_row([value])).fetchone()
                if row:
                    return row[0]
        return None

