"""Matching 835 claim payments to 837P claims, netting reversals, and A/R aging.

Claims
    Grouped on CLP01 = CLM01. The latest submission (last ingested) of a group wins: its charge is
    "billed" and a void (CLM05-3 = 8) as latest submission makes the claim "voided". A replacement
    or void (frequency 7/8) whose REF*F8 equals a payer's CLP07 joins the group of that payment's
    CLP01, so a replacement sent under a new CLM01 still collects its original's payments.
Payments
    Taken in payment-date order (then ingest order). A reversal (CLP02 = 22) cancels the latest
    still-active payment of the group with the same CLP07 (else the same negated CLP04, else the
    latest); both leave the totals, so a payment never counts twice. A reversal with nothing to
    cancel stays active with its (negative) amounts.
Lines
    `match_lines` pairs claim lines and service payments on REF*6R when the procedure agrees (SVC01
    or SVC06), else on (procedure - SVC06 when the payer changed the code -, modifiers, date, charge),
    then (procedure, date), then procedure.
Status
    voided (the latest submission is a void; `paid` keeps any payment the payer has not reversed
    yet, i.e. money to be returned), open (no payment), reversed (every payment reversed), denied
    (nothing paid and a denial adjustment or CLP02 = 4), partially paid (something paid and some of
    the charge denied, or CLP03 not accounted for by CLP04 + adjustments), paid (contractual and
    patient responsibility reductions only). "billed" is the latest submission's CLM02.
State
    The claim's latest lifecycle state: its status ("submitted" for open), unless a 999 or 277CA event
    recorded after its last submission and payment says otherwise (lifecycle.latest_states).
Days outstanding
    Service date to the last active payment's date; for a claim with no remit, to `as_of`.
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Callable, Iterable

from edi_pipeline.codes.tables import CodeTables, load_tables
from edi_pipeline.core.safe_text import SafeCsvWriter
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import cents_text

AGING_BUCKETS = ("0-30", "31-60", "61-90", "90+")
SCOPED_READ_MAX_SHARE = 0.5  # reconcile(pcns=...) scopes over this share of the store's claims are read whole
NOT_DENIAL_CATEGORIES = frozenset({"contractual", "patient responsibility"})


def not_denial_reasons(tables: CodeTables) -> list[str]:
    """CARCs whose adjustments are never denials (contractual reductions, patient responsibility): what
    the store's one denial test (Store._denial: a positive CO/PI/OA/PR adjustment for any other reason,
    so PR-27 coverage ended or PR-50 ABN on file are denials) leaves out."""
    return [code for code, info in tables.carc.items() if info.category in NOT_DENIAL_CATEGORIES]


def aging_bucket(days: int) -> str:
    if days <= 30:
        return "0-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


@dataclass(slots=True)
class Payment:
    id: str
    patient_control_number: str
    status_code: str
    charge: int | None
    paid: int | None
    patient_responsibility: int | None
    payer_claim_control_number: str | None
    payment_date: str | None
    payer_id: str | None
    payer_name: str | None
    remarks: str
    service_date: str | None
    adjustments: int = 0  # non-PR CAS total, cents
    denied: int = 0  # denial CAS total, cents


@dataclass(slots=True)
class LineMatch:
    line_number: int | None
    procedure: str | None
    billed: int | None
    paid: int | None
    matched_by: str | None  # "6R", "exact", "procedure+date", "procedure" or None (unmatched)

    def to_dict(self) -> dict:
        return {"line_number": self.line_number, "procedure": self.procedure, "billed": cents_text(self.billed),
                "paid": cents_text(self.paid), "matched_by": self.matched_by}


@dataclass(slots=True)
class ClaimRecon:
    patient_control_number: str
    payer: str | None
    service_date: str | None
    billed: int | None
    paid: int
    patient_responsibility: int
    adjustments: int
    denied: int
    status: str
    days_outstanding: int | None
    payments: int  # active payments
    reversals: int
    frequency_code: str | None
    last_payment_date: str | None
    lines: list[LineMatch] | None = None
    state: str | None = None  # latest lifecycle state (lifecycle.latest_states): status, or a newer 999/277CA answer

    def to_dict(self) -> dict:
        d = {
            "patient_control_number": self.patient_control_number, "payer": self.payer,
            "service_date": self.service_date, "billed": cents_text(self.billed), "paid": cents_text(self.paid),
            "patient_responsibility": cents_text(self.patient_responsibility),
            "adjustments": cents_text(self.adjustments), "status": self.status, "state": self.state,
            "days_outstanding": self.days_outstanding,
        }
        if self.lines is not None:
            d["lines"] = [m.to_dict() for m in self.lines]
        return d


@dataclass
class Reconciliation:
    as_of: date
    claims: list[ClaimRecon]
    unmatched_remits: list[dict]
    aging: dict[str, dict]  # bucket -> {"claims": n, "billed": cents, "patient_control_numbers": [...]}
    active: list[Payment] = field(default_factory=list)  # every active (not reversed) payment, matched or not
    claim_of_payment: dict[str, str] = field(default_factory=dict)  # payment id -> group pcn

    def to_dict(self, claims: bool = True) -> dict:
        """The JSON document; without `claims`, its "claims" list is left empty (write_json streams it)."""
        return {
            "as_of": self.as_of.isoformat(),
            "claims": [c.to_dict() for c in self.claims] if claims else [],
            "unmatched_remits": self.unmatched_remits,
            "aging": {b: {"claims": v["claims"], "billed": cents_text(v["billed"]),
                          "patient_control_numbers": v["patient_control_numbers"]} for b, v in self.aging.items()},
        }


    def write_json(self, write: Callable[[str], object], dumps: Callable[[object], str], batch: int = 512) -> None:
        """Write compact JSON, the same text as dumps(self.to_dict()), holding the dicts of only
        `batch` claims at a time (a whole store's claims as dicts would cost hundreds of MB)."""
        head, _, tail = dumps(self.to_dict(claims=False)).partition('"claims":[]')
        write(head + '"claims":[')
        for k in range(0, len(self.claims), batch):
            part = dumps([c.to_dict() for c in self.claims[k:k + batch]])
            write(("," if k else "") + part[1:-1])
        write("]" + tail)


# ------------------------------------------------------------------------------ matching


def _find(parent: dict[str, str], x: str) -> str:
    while parent.get(x, x) != x:
        x = parent[x]
    return x


def _net(payments: list[Payment]) -> tuple[list[Payment], int]:
    """Active payments after cancelling reversals, and the number of reversals applied."""
    active: list[Payment] = []
    reversals = 0
    for p in payments:
        if p.status_code != "22":
            active.append(p)
            continue
        target = None
        for cand in reversed(active):
            if cand.status_code != "22" and p.payer_claim_control_number \
                    and cand.payer_claim_control_number == p.payer_claim_control_number:
                target = cand
                break
        if target is None:
            for cand in reversed(active):
                if cand.status_code != "22" and p.paid is not None and cand.paid == -p.paid:
                    target = cand
                    break
        if target is None:
            target = next((c for c in reversed(active) if c.status_code != "22"), None)
        if target is None:
            active.append(p)
        else:
            active.remove(target)
            reversals += 1
    return active, reversals


_FALLBACKS = (
    ("exact", lambda c: (c[2], c[3], c[5], c[4]), lambda s: (s[4] or s[2], s[3], s[7], s[5])),
    ("procedure+date", lambda c: (c[2], c[5]), lambda s: (s[4] or s[2], s[7])),
    ("procedure", lambda c: c[2], lambda s: s[4] or s[2]),
)


def match_lines(claim_lines: list[tuple], service_payments: list[tuple]) -> list[LineMatch]:
    """Pair claim lines (claim_id, line_number, procedure, modifiers, charge, date, 6R) with service
    payments (id, cp id, procedure, modifiers, SVC06, charge, paid, date, 6R, remarks)."""
    out: list[LineMatch] = []
    pending = []
    paired: set[str] = set()  # ids of the service payments paired on 6R
    by_6r = {sp[8]: sp for sp in service_payments if sp[8]}
    for cl in claim_lines:
        sp = by_6r.get(cl[6]) if cl[6] else None
        if sp is not None and cl[2] in (sp[2], sp[4]):  # a renumbered resend's 6R may name another line
            del by_6r[cl[6]]
            paired.add(sp[0])
            out.append(LineMatch(cl[1], cl[2], cl[4], sp[6], "6R"))
        else:
            pending.append(cl)
    free = [sp for sp in service_payments if sp[0] not in paired]
    for how, key_cl, key_sp in _FALLBACKS:
        if not pending or not free:
            break
        still = []
        for cl in pending:
            k = key_cl(cl)
            sp = next((s for s in free if key_sp(s) == k), None)
            if sp is None:
                still.append(cl)
            else:
                free.remove(sp)  # short lists: a claim has at most 50 lines
                out.append(LineMatch(cl[1], cl[2], cl[4], sp[6], how))
        pending = still
    out.extend(LineMatch(cl[1], cl[2], cl[4], None, None) for cl in pending)
    out.extend(LineMatch(None, s[4] or s[2], s[5], s[6], None) for s in free)
    if len(out) > 1:
        out.sort(key=_line_order)
    return out


def _line_order(m: LineMatch) -> tuple:
    return (m.line_number is None, m.line_number or 0)


@functools.lru_cache(maxsize=4096)
def _iso_date(text: str) -> date:
    return date.fromisoformat(text)


def _days(a: str | None, b: date | str | None) -> int | None:
    if not a or not b:
        return None
    end = b if isinstance(b, date) else _iso_date(b)
    return (end - _iso_date(a)).days


def reconcile(store: Store, as_of: date | None = None, tables: CodeTables | None = None,
              lines: bool = False, pcns: Iterable[str] | None = None) -> Reconciliation:
    """Match every payment in the store to its claim; net reversals; age claims with no remit.

    With `pcns`, only the claim groups of those patient control numbers (and the replacements and
    voids linked to them) are read and reconciled, with the same results as in a whole-store run."""
    as_of = as_of or date.today()
    tables = tables or load_tables()
    not_denial = not_denial_reasons(tables)
    cl_of: dict[str, list[tuple]] = defaultdict(list)
    sp_of: dict[str, list[tuple]] = defaultdict(list)
    scope = store.linked_pcns(pcns) if pcns is not None else None
    # A scope holding much of the store is read faster whole and filtered here: the same rows either way.
    filter_here = scope is not None and len(scope) > SCOPED_READ_MAX_SHARE * store.claims_upper_bound()
    with store.recon_scope(scope) if scope is not None and not filter_here else contextlib.nullcontext():
        claim_rows = store.recon_claims()
        payments = [Payment(*r) for r in store.recon_payments()]
        adjustment_totals = store.recon_adjustment_totals(not_denial)
        if lines:  # rows outside a filtered scope are never asked for below
            for r in store.recon_claim_lines():
                cl_of[r[0]].append(r)
            for r in store.recon_service_payments():
                sp_of[r[1]].append(r)
    if filter_here:
        claim_rows = [r for r in claim_rows if r[1] in scope]
        payments = [p for p in payments if p.patient_control_number in scope]

    by_id = {p.id: p for p in payments}
    for cp_id, adj, denied in adjustment_totals:
        p = by_id.get(cp_id)
        if p is not None:
            p.adjustments = adj or 0
            p.denied = denied or 0

    # groups: union PCNs linked by a replacement/void's REF*F8 = a payment's CLP07
    parent: dict[str, str] = {}
    pcn_of_icn: dict[str, str] = {}
    for p in payments:
        if p.payer_claim_control_number:
            pcn_of_icn.setdefault(p.payer_claim_control_number, p.patient_control_number)
    for cid, pcn, freq, f8, *_ in claim_rows:
        if freq in ("7", "8") and f8 and f8 in pcn_of_icn:
            a, b = _find(parent, pcn_of_icn[f8]), _find(parent, pcn)
            if a != b:
                parent[a] = b  # the replacement's PCN names the group
    latest: dict[str, tuple] = {}
    pays_of: dict[str, list[Payment]] = defaultdict(list)
    root = {x: _find(parent, x) for x in parent}  # a PCN not in it is its own group
    for row in claim_rows:
        latest[root.get(row[1], row[1])] = row  # rows come in ingest order: last one wins
    for p in payments:
        pays_of[root.get(p.patient_control_number, p.patient_control_number)].append(p)

    result = Reconciliation(as_of, [], [], {b: {"claims": 0, "billed": 0, "patient_control_numbers": []}
                                             for b in AGING_BUCKETS})
    netted: dict[str, tuple[list[Payment], int]] = {}
    for key, pays in pays_of.items():
        netted[key] = _net(pays)
        active = netted[key][0]
        result.active.extend(active)
        if key in latest:
            for p in active:
                result.claim_of_payment[p.id] = latest[key][1]
        else:
            result.unmatched_remits.append({
                "patient_control_number": key,
                "payer_claim_control_number": pays[-1].payer_claim_control_number,
                "payer": pays[-1].payer_name or pays[-1].payer_id,
                "payments": len(active),
                "charge": cents_text(sum(p.charge or 0 for p in active)),
                "paid": cents_text(sum(p.paid or 0 for p in active)),
                "last_payment_date": pays[-1].payment_date,
            })

    for key, row in latest.items():
        cid, pcn, freq, _f8, charge, service_date, payer_id, payer_name = row
        pays = pays_of.get(key, ())
        active, reversals = netted.get(key, ((), 0))
        paid = pr = adj = denied = charged = 0
        last_date = None
        status_4 = False
        for p in active:
            paid += p.paid or 0
            pr += p.patient_responsibility or 0
            adj += p.adjustments
            denied += p.denied
            charged += p.charge or 0
            status_4 = status_4 or p.status_code == "4"
            if p.payment_date and (last_date is None or p.payment_date > last_date):
                last_date = p.payment_date
        if freq == "8":  # the claim of record is a void, even before the payer reverses its payment
            status = "voided"
        elif not pays:
            status = "open"
        elif not active:
            status = "reversed"
        elif paid <= 0 and (denied > 0 or status_4):
            status = "denied"
        elif denied > 0 or paid + pr + adj < charged:  # CLP03 not fully accounted
            status = "partially paid"
        else:
            status = "paid"
        if active:
            days = _days(service_date, last_date)
        else:
            days = _days(service_date, as_of)
        rec = ClaimRecon(pcn, payer_name or payer_id, service_date, charge, paid, pr, adj, denied, status, days,
                         len(active), reversals, freq, last_date)
        if lines:
            # popped: each is read once, and the rows go as their matches are made (peak memory)
            sps = [sp for p in active for sp in sp_of.pop(p.id, ())]
            rec.lines = match_lines(cl_of.pop(cid, []), sps)
        result.claims.append(rec)
        if status == "open":
            bucket = result.aging[aging_bucket(max(days or 0, 0))]
            bucket["claims"] += 1
            bucket["billed"] += charge or 0
            bucket["patient_control_numbers"].append(pcn)
    from edi_pipeline.analytics.lifecycle import latest_states  # here: lifecycle builds on this module

    states = latest_states(store, result)
    for c in result.claims:
        c.state = states[c.patient_control_number]
    result.claims.sort(key=lambda c: c.patient_control_number)
    result.unmatched_remits.sort(key=lambda r: r["patient_control_number"])
    return result


CLAIM_COLUMNS = ("patient_control_number", "payer", "service_date", "billed", "paid", "patient_responsibility",
                 "adjustments", "status", "state", "days_outstanding")


def claim_rows(rec: Reconciliation) -> list[dict]:
    """Flat rows for table output."""
    return [{k: v for k, v in c.to_dict().items() if k != "lines"} for c in rec.claims]


def write_claims_csv(rec: Reconciliation, out: IO[str]) -> int:
    """One CSV row per claim (CLAIM_COLUMNS, header even when there is none), streamed, cells safe for
    spreadsheets (safe_text.csv_cell); returns the count."""
    w = SafeCsvWriter(out)
    w.writerow(CLAIM_COLUMNS)
    for c in rec.claims:
        d = c.to_dict()
        w.writerow([d[k] for k in CLAIM_COLUMNS])
    return len(rec.claims)


def statuses(rec: Reconciliation) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for c in rec.claims:
        out[c.status] += 1
    return dict(out)


__all__ = ["reconcile", "match_lines", "Reconciliation", "ClaimRecon", "LineMatch", "Payment",
           "not_denial_reasons", "aging_bucket", "AGING_BUCKETS", "claim_rows", "write_claims_csv",
           "CLAIM_COLUMNS", "statuses"]
