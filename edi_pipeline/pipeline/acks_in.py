"""What answers what we sent: inbound 999s and 277CAs tied to batch's outbound sets (recorded as they are
written, store.scrub_sink.sent_set) as claim status events.

- `AckTies.add(records)`: a 999's set response ties by GS06/ST02 as sent to the claims of that set (file
  accepted / rejected); its group response answers the group's sets no set response named. A 277CA claim
  status ties by TRN02 = CLM01, else REF*1K or REF*D9, its lines by REF*FJ = REF*6R (accepted / rejected by
  payer). What ties to nothing is listed in `unmatched`, never dropped. Events are keyed by their source
  position, so the same acknowledgment again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable

from edi_pipeline.analytics.lifecycle import (CLAIM_ACCEPTED, CLAIM_REJECTED, FILE_ACCEPTED, FILE_REJECTED,
                                              event_row)
from edi_pipeline.store.store import Store
from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse

__all__ = ["AckTies"]


def _code_text(codes) -> str:
    return ":".join(x for x in (codes.category, codes.code, codes.entity) if x)


@dataclass
class AckTies:
    """Ties the acknowledgment records of one file (named `source_file`) to the store, collecting the
    claim_events rows to write and what matched nothing."""

    store: Store
    source_file: str
    events: list[tuple] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)
    informational: int = 0  # 277CA statuses that change no state (A1 received, A0 forwarded)
    _answered: dict[str, set[str]] = field(default_factory=dict)  # GS06 -> the ST02s its set responses named

    def add(self, records: Iterable, day: date) -> None:
        """Tie one set's records; `day` is the date of an answer that carries none (the set's GS04)."""
        for rec in records:
            if isinstance(rec, SetResponse):
                self._set_response(rec, day)
            elif isinstance(rec, GroupResponse):
                self._group_response(rec, day)
            elif isinstance(rec, ClaimStatus):
                self._claim_status(rec, day)
            elif isinstance(rec, LevelStatus) and rec.rejected:  # no claim of it may follow: listed, not dropped
                codes = ", ".join(_code_text(c) for st in rec.statuses for c in st.codes)
                self._unmatched(rec, f"277CA {rec.level} level rejected as a whole ({codes})")

    def _unmatched(self, rec, why: str) -> None:
        self.unmatched.append({"file": self.source_file, "line": rec.source.line,
                               "segment_index": rec.source.segment_index, "reason": why})

    def _event(self, pcn: str, state: str, day: date, rec, detail: str) -> None:
        self.events.append(event_row(pcn, state, day, self.source_file, rec.source.segment_index,
                                     rec.source.line, detail))

    def _set_response(self, rec: SetResponse, day: date) -> None:
        self._answered.setdefault(rec.group_control_number, set()).add(rec.control_number)
        sent = self.store.outbound_sets_of(rec.group_control_number, rec.control_number, rec.envelope.receiver_id)
        if not sent:
            self._unmatched(rec, f"999 answers group {rec.group_control_number} set {rec.control_number}, "
                            "which no outbound file recorded holds")
            return
        state = FILE_ACCEPTED if rec.accepted else FILE_REJECTED
        for s in sent:
            for pcn in s["pcns"]:
                detail = f"999 IK5 {rec.code} for {s['outbound_file']} set {rec.control_number}"
                if rec.reasons:
                    detail += f", reasons {' '.join(rec.reasons)}"
                errors = [f"{e.segment_id} at {e.position} ({e.code})" for e in rec.errors if e.claim == pcn]
                if errors:
                    detail += f", errors {'; '.join(errors)}"
                self._event(pcn, state, day, rec, detail)

    def _group_response(self, rec: GroupResponse, day: date) -> None:
        answered = self._answered.get(rec.group_control_number, set())
        sent = [s for s in self.store.outbound_sets_of(rec.group_control_number, None, rec.envelope.receiver_id)
                if s["st_control"] not in answered]
        if not sent and not answered:
            self._unmatched(rec, f"999 answers group {rec.group_control_number}, which no outbound file recorded "
                            "holds")
        # AK901 P (partly accepted) says nothing of a set no IK5 named; A/E accept it, R/M/W/X reject it
        state = FILE_ACCEPTED if rec.code in ("A", "E") else FILE_REJECTED if rec.code != "P" else None
        for s in sent if state else ():
            for pcn in s["pcns"]:
                self._event(pcn, state, day, rec, f"999 AK9 {rec.code} for {s['outbound_file']} group "
                            f"{rec.group_control_number}")

    def _claim_status(self, rec: ClaimStatus, day: date) -> None:
        pcn = self.store.claim_of_ack(rec.patient_control_number, rec.payer_claim_control_number,
                                      rec.clearinghouse_trace)
        if pcn is None:
            self._unmatched(rec, f"277CA claim {rec.patient_control_number} matches no claim sent (TRN02, REF*1K, "
                            "REF*D9)")
            return
        if rec.rejected:
            state = CLAIM_REJECTED
        elif rec.accepted:
            state = CLAIM_ACCEPTED
        else:
            self.informational += 1
            return
        parts = [f"277CA STC {', '.join(_code_text(c) for s in rec.statuses for c in s.codes)}"]
        if rec.payer_claim_control_number:
            parts.append(f"payer claim {rec.payer_claim_control_number}")
        lines = self.store.line_controls(pcn) if rec.lines else {}
        for ln in rec.lines:
            codes = ", ".join(_code_text(c) for s in ln.statuses for c in s.codes)
            number = lines.get(ln.control_number or "")
            parts.append(f"line {number} {codes}" if number is not None
                         else f"line REF*FJ {ln.control_number or '(none)'} not on the claim {codes}")
        self._event(pcn, state, rec.status_date or rec.receipt_date or day, rec, "; ".join(parts))
