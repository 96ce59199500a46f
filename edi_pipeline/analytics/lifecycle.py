"""A claim's lifecycle from the store: its timeline of events, its latest state, the worklist of claims
leaking money and A/R aging over every unpaid balance.

Most events are read from the rows the store already holds: a submission (claims; origin "scrub" is a
claim the scrubber sent, CLM05-3 = 7 corrected, 8 voided), a scrubber hold (an error finding on the
claim), an adjudication (claim_payments: CLP02 22 reversed, else paid / partially paid / denied by
amounts). Events nothing else records (a 999 for the file, a 277CA for the claim) go into claim_events
through `record_event`, each with its date, source file and position, and a detail.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Callable

from edi_pipeline.analytics.reconcile import Aging, Reconciliation, reconcile_stream
from edi_pipeline.codes.tables import PayerProfiles, load_profiles
from edi_pipeline.store.sql import now
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import cents_text

SUBMITTED, HELD, SENT = "submitted", "held by scrubber", "sent"
FILE_ACCEPTED, FILE_REJECTED = "file accepted", "file rejected"  # 999
CLAIM_ACCEPTED, CLAIM_REJECTED = "accepted by payer", "rejected by payer"  # 277CA
PAID, PARTIALLY_PAID, DENIED = "paid", "partially paid", "denied"  # 835
REVERSED, CORRECTED, VOIDED = "reversed", "corrected", "voided"
STATES = (SUBMITTED, HELD, SENT, FILE_ACCEPTED, FILE_REJECTED, CLAIM_ACCEPTED, CLAIM_REJECTED, PAID,
          PARTIALLY_PAID, DENIED, REVERSED, CORRECTED, VOIDED)

UNDERPAID_TOLERANCE = Decimal("0.05")  # paid this share below the payer's usual rate counts as underpaid
UNDERPAID_MIN_PAYMENTS = 3  # earlier paid lines of a payer and code needed before its usual rate is trusted


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a claim's life: when, what state, where it was read (file, segment index, line)."""

    day: str | None  # ISO date
    state: str
    source_file: str | None
    segment_index: int | None
    line: int | None
    detail: str | None = None

    def to_dict(self) -> dict:
        return {"date": self.day, "state": self.state, "source_file": self.source_file,
                "segment_index": self.segment_index, "line": self.line, "detail": self.detail}


def event_row(pcn: str, state: str, day: date, source_file: str, segment_index: int,
              line: int | None = None, detail: str | None = None) -> tuple:
    """A claim_events row; its id is its source position and claim, so the same event again replaces it."""
    if state not in STATES:
        raise ValueError(f"unknown claim state {state!r}")
    return (f"{source_file}:{segment_index}:{pcn}", pcn, state, day.isoformat(), source_file, segment_index, line,
            detail, now())


def record_event(store: Store, pcn: str, state: str, day: date, source_file: str, segment_index: int,
                 line: int | None = None, detail: str | None = None) -> None:
    """Store one claim status event (a 999 or 277CA answer); the same source position again replaces it.
    Commits, unless called inside the caller's store.transaction() (then it commits with it)."""
    row = event_row(pcn, state, day, source_file, segment_index, line, detail)
    with store.transaction():
        store.add_claim_events([row])


def _adjudication(status_code: str | None, charge: int | None, paid: int | None) -> str:
    if status_code == "22":
        return REVERSED
    if not paid or paid <= 0:
        return DENIED
    return PARTIALLY_PAID if charge and paid < charge else PAID


def timeline(store: Store, pcn: str) -> list[Event]:
    """Every event of the claims with this CLM01 in the order the store learned them (ingest or record
    time: an 835 ingested after its 837P follows it even when the files' own dates say otherwise), each
    with its own date."""
    claims, payments, findings, recorded = store.claim_timeline_rows(pcn)
    events: list[tuple[str, int, Event]] = []
    for c in claims:
        state = {"7": CORRECTED, "8": VOIDED}.get(c["frequency_code"] or "", SENT if c["origin"] == "scrub"
                                                  else SUBMITTED)
        detail = f"charge {cents_text(c['total_charge_cents'])}"
        if c["payer_claim_control_number"]:
            detail += f", replaces payer claim {c['payer_claim_control_number']}"
        events.append((c["submitted_at"] or "", len(events),
                       Event((c["submitted_at"] or "")[:10] or None, state, c["file"], c["segment_index"], c["line"],
                             detail)))
    for f in findings:
        events.append((f["ingested_at"] or "", len(events),
                       Event((f["ingested_at"] or "")[:10] or None, HELD, f["file"], None, f["line"], f["rule"])))
    for p in payments:
        state = _adjudication(p["status_code"], p["charge_cents"], p["paid_cents"])
        detail = f"CLP02 {p['status_code']}, paid {cents_text(p['paid_cents'])}"
        if p["payer_claim_control_number"]:
            detail += f", payer claim {p['payer_claim_control_number']}"
        events.append((p["ingested_at"] or "", len(events),
                       Event(p["payment_date"], state, p["file"], p["segment_index"], p["line"], detail)))
    for e in recorded:
        events.append((e["recorded_at"] or "", len(events),
                       Event(e["event_date"], e["state"], e["source_file"], e["segment_index"], e["line"], e["detail"])))
    events.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in events]


def state_reader(store: Store) -> Callable[[str, str], str]:
    """state_of(pcn, reconciled status): the claim's latest state, the last event of its timeline: a
    999/277CA event recorded after the store last took a submission of the claim or a payment for it wins
    over the reconciliation's status ("submitted" for an open claim). Reads only the claims with events."""
    recorded = store.latest_recorded_events()
    stored = store.last_stored_at() if recorded else {}

    def state_of(pcn: str, status: str) -> str:
        ev = recorded.get(pcn)
        if ev and ev.recorded_at >= stored.get(pcn, ""):
            return ev.state
        return status if status != "open" else SUBMITTED
    return state_of


def latest_states(store: Store, rec: Reconciliation) -> dict[str, str]:
    """Per reconciled claim, its latest state (state_reader)."""
    state_of = state_reader(store)
    return {c.patient_control_number: state_of(c.patient_control_number, c.status) for c in rec.claims}


@dataclass(slots=True)
class WorkItem:
    patient_control_number: str
    payer: str | None
    reason: str
    age_days: int | None
    at_stake: int  # cents
    next_action: str
    rule: str | None = None

    def to_dict(self) -> dict:
        return {"patient_control_number": self.patient_control_number, "payer": self.payer,
                "reason": self.reason, "age_days": self.age_days, "at_stake": cents_text(self.at_stake),
                "rule": self.rule, "next_action": self.next_action}


WORK_COLUMNS = ("patient_control_number", "payer", "reason", "age_days", "at_stake", "rule", "next_action")


def _age(service_date: str | None, as_of: date) -> int | None:
    return (as_of - date.fromisoformat(service_date)).days if service_date else None


def _shortfalls(store: Store) -> dict[str, int]:
    """Per CLP01, cents paid below expectation: over its paid service lines, the line charge times the
    median paid / charge of the same payer's lines of the same procedure paid on earlier days (once there
    are UNDERPAID_MIN_PAYMENTS of them), minus what was paid, where that is over UNDERPAID_TOLERANCE.
    The lines come sorted by payer, procedure and day; each code's earlier rates are a running median."""
    out: dict[str, int] = {}
    for _, lines in itertools.groupby(store.paid_service_lines(), key=lambda r: (r.payer_id, r.procedure)):
        earlier = _RunningMedian()  # the rates of the days before the current one
        for _, day in itertools.groupby(lines, key=lambda r: r.payment_date):
            day = list(day)
            if len(earlier) >= UNDERPAID_MIN_PAYMENTS:
                rate = earlier.median()
                for r in day:
                    expected = Decimal(r.charge_cents) * rate
                    if r.paid_cents < expected * (1 - UNDERPAID_TOLERANCE):
                        out[r.patient_control_number] = out.get(r.patient_control_number, 0) + int(expected) \
                            - r.paid_cents
            for r in day:
                earlier.add(Decimal(r.paid_cents) / Decimal(r.charge_cents))
    return out


class _RunningMedian:
    """The median of the values added so far, in O(log n) per value: the lower half in a max-heap (negated),
    the upper half in a min-heap, the lower holding the middle one of an odd count."""

    def __init__(self):
        self._low: list[Decimal] = []
        self._high: list[Decimal] = []

    def __len__(self) -> int:
        return len(self._low) + len(self._high)

    def add(self, v: Decimal) -> None:
        if self._low and v > -self._low[0]:
            heapq.heappush(self._high, v)
        else:
            heapq.heappush(self._low, -v)
        if len(self._low) > len(self._high) + 1:
            heapq.heappush(self._high, -heapq.heappop(self._low))
        elif len(self._high) > len(self._low):
            heapq.heappush(self._low, -heapq.heappop(self._high))

    def median(self) -> Decimal:
        if len(self._low) > len(self._high):
            return -self._low[0]
        return (-self._low[0] + self._high[0]) / 2


def worklist(store: Store, as_of: date | None = None, profiles: PayerProfiles | None = None,
             rec: Reconciliation | None = None) -> list[WorkItem]:
    """The claims leaking money, largest amount at stake first: rejected by the payer's front end (a 277CA,
    or its set by a 999) and not resent, denied (with the scrubber rule that would have prevented it when one fired on the claim),
    open past the turnaround_days of the payer profile (of `profiles`, default the shipped ones) that its
    latest submission's SBR09 and payer id select, and paid below the rate of the same payer's earlier
    payments of the same procedure code (_shortfalls)."""
    as_of = as_of or date.today()
    rules = store.denial_rules()
    shortfall = _shortfalls(store)
    profiles = profiles or load_profiles()
    payer_keys = store.claim_payer_keys()
    items: list[WorkItem] = []
    for c in (rec or reconcile_stream(store, as_of=as_of)).claims:
        pcn, billed = c.patient_control_number, c.billed or 0
        age = _age(c.service_date, as_of)
        if c.state == CLAIM_REJECTED:
            items.append(WorkItem(pcn, c.payer, "rejected by payer, not resent", age, billed,
                                  "correct the claim and resend it"))
        elif c.state == FILE_REJECTED:  # its set rejected by the payer's 999: never reached adjudication
            items.append(WorkItem(pcn, c.payer, "set rejected by the payer's 999, not resent", age, billed,
                                  "fix the 999's errors (edi-pipeline status PCN) and resend the claim"))
        elif c.status == DENIED:
            rule = rules.get(pcn)
            items.append(WorkItem(pcn, c.payer, "denied" + (", correctable" if rule else ""), age,
                                  max(billed - c.paid, 0), "resubmit corrected (edi-pipeline resubmit)" if rule
                                  else "review the denial; appeal or correct", rule))
        elif c.status in ("open", REVERSED) and age is not None \
                and age > (days := profiles.profile_for(*payer_keys.get(pcn, (None, None))).turnaround_days):
            items.append(WorkItem(pcn, c.payer, f"{'reversed, not re-adjudicated' if c.status == REVERSED else 'open'}"
                                  f" past {days}-day turnaround", age, max(billed - c.paid, 0),
                                  "call the payer for claim status"))
        elif c.status in (PAID, PARTIALLY_PAID) and shortfall.get(pcn, 0) > 0:
            items.append(WorkItem(pcn, c.payer, "paid below the payer's usual rate for the code", age,
                                  shortfall[pcn], "check the contract rate; appeal the underpayment"))
    items.sort(key=lambda w: (-w.at_stake, w.patient_control_number))
    return items


def unpaid_balance(c) -> int:
    """What is still owed on a reconciled claim, in cents: all of it with no remit yet or every payment
    reversed, the denied rest of a partial payment (contractual and patient responsibility
    reductions are not owed by the payer), nothing once paid, denied or voided."""
    if c.status in ("open", REVERSED):
        return max((c.billed or 0) - c.paid, 0)
    if c.status == PARTIALLY_PAID:
        return max((c.billed or 0) - c.paid - c.patient_responsibility - (c.adjustments - c.denied), 0)
    return 0


def ar_aging(rec: Reconciliation) -> dict[str, dict]:
    """Every unpaid balance by age since the date of service at `rec.as_of`: bucket -> claims, balance cents."""
    aging = Aging(rec.as_of)
    for c in rec.claims:
        owed = unpaid_balance(c)
        if owed > 0:
            aging.add(c.service_date, owed)
    return aging.table()


__all__ = ["STATES", "Event", "event_row", "record_event", "timeline", "state_reader", "latest_states", "WorkItem", "WORK_COLUMNS",
           "worklist", "unpaid_balance", "ar_aging", *[n for n in ("SUBMITTED", "HELD", "SENT", "FILE_ACCEPTED",
           "FILE_REJECTED", "CLAIM_ACCEPTED", "CLAIM_REJECTED", "PAID", "PARTIALLY_PAID", "DENIED", "REVERSED",
           "CORRECTED", "VOIDED")]]
