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
    recorded after its last submission and payment says otherwise (lifecycle.state_reader).
Days outstanding
    Service date to the last active payment's date; for a claim with no remit, to `as_of`.
Reading
    A whole store is read as SQL streams sorted by patient control number (claims; payments with their
    CAS totals summed in SQL; claim lines and service payments in index order) merged group by group, so
    memory stays flat in the store's size (ReconStream; reconcile() keeps the groups as lists). The few
    PCNs a replacement or void links to another are reconciled together first and merged in, in order.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Callable, Iterable, Iterator

from edi_pipeline.codes.tables import CodeTables, load_tables
from edi_pipeline.core.safe_text import SafeCsvWriter
from edi_pipeline.store.rows import ClaimLineRow, ClaimRow, ServicePaymentRow
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import cents_text

AGING_BUCKETS = ("0-30", "31-60", "61-90", "90+")
SCOPED_READ_MAX_SHARE = 0.5  # reconcile(pcns=...) scopes over this share of the store's claims are read whole
SCOPED_STREAM_MIN = 50_000  # reconcile_pcns streams scopes of more claims than this (held whole: ~2 KB each)
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


@dataclass(slots=True)
class Group:
    """One claim group reconciled: its claim (None when its remits match no claim) or its unmatched-remit
    row, and its active (not reversed) payments; `first_seq` is its first submission's ingest order."""

    claim: ClaimRecon | None
    unmatched: dict | None
    active: list[Payment]
    first_seq: int = 0

    @property
    def patient_control_number(self) -> str:
        return self.claim.patient_control_number if self.claim else self.unmatched["patient_control_number"]


class Aging:
    """A/R aging: balances added up by days from the date of service to `as_of` (AGING_BUCKETS). A claim
    with no service date counts as 0 days, or (undated=False) is left out."""

    def __init__(self, as_of: date, undated: bool = True):
        self.as_of, self.undated = as_of, undated
        self._buckets = {b: [0, 0] for b in AGING_BUCKETS}  # claims, cents

    def add(self, service_date: str | None, cents: int) -> str | None:
        """Age one balance; returns its bucket (None when left out)."""
        if not service_date and not self.undated:
            return None
        bucket = aging_bucket(max(_days(service_date, self.as_of) or 0, 0))
        self._buckets[bucket][0] += 1
        self._buckets[bucket][1] += cents
        return bucket

    def table(self) -> dict[str, dict]:
        """bucket -> {"claims": n, "balance": cents}."""
        return {b: {"claims": n, "balance": cents} for b, (n, cents) in self._buckets.items()}


class _Summary:
    """What a reconciliation adds up over its groups: the unmatched remits, the aging of claims with no
    remit (their pcns in first-submission order) and the count per status."""

    def __init__(self, as_of: date):
        self.as_of = as_of
        self.unmatched_remits: list[dict] = []
        self.statuses: dict[str, int] = defaultdict(int)
        self._aging = Aging(as_of)  # of the billed charge of claims with no remit
        self._open: list[tuple[int, str, str]] = []  # first_seq, bucket, pcn

    def add(self, g: Group) -> None:
        c = g.claim
        if c is None:
            self.unmatched_remits.append(g.unmatched)
            return
        self.statuses[c.status] += 1
        if c.status == "open":
            bucket = self._aging.add(c.service_date, c.billed or 0)
            self._open.append((g.first_seq, bucket, c.patient_control_number))

    def aging(self) -> dict[str, dict]:
        out = {b: {"claims": v["claims"], "billed": v["balance"], "patient_control_numbers": []}
               for b, v in self._aging.table().items()}
        self._open.sort()
        for _, bucket, pcn in self._open:
            out[bucket]["patient_control_numbers"].append(pcn)
        return out


def _document(as_of: date, unmatched: list[dict], aging: dict[str, dict], claims: list[dict]) -> dict:
    return {
        "as_of": as_of.isoformat(), "claims": claims, "unmatched_remits": unmatched,
        "aging": {b: {"claims": v["claims"], "billed": cents_text(v["billed"]),
                      "patient_control_numbers": v["patient_control_numbers"]} for b, v in aging.items()},
    }


def _write_json(as_of: date, groups: Iterable[Group], summary: _Summary, write: Callable[[str], object],
                dumps: Callable[[object], str], batch: int) -> None:
    """Compact JSON of the groups' reconciliation, holding the dicts of only `batch` claims at a time."""
    write(dumps(_document(as_of, [], {}, [])).partition('"claims":[]')[0] + '"claims":[')
    part: list[dict] = []
    first = True
    for g in groups:
        summary.add(g)
        if g.claim is not None:
            part.append(g.claim.to_dict())
            if len(part) >= batch:
                write(("" if first else ",") + dumps(part)[1:-1])
                first, part = False, []
    if part:
        write(("" if first else ",") + dumps(part)[1:-1])
    write("]" + dumps(_document(as_of, summary.unmatched_remits, summary.aging(), [])).partition('"claims":[]')[2])


@dataclass
class Reconciliation:
    """A reconciliation held whole (reconcile); ReconStream reads the same one group at a time."""

    as_of: date
    claims: list[ClaimRecon]
    unmatched_remits: list[dict]
    aging: dict[str, dict]  # bucket -> {"claims": n, "billed": cents, "patient_control_numbers": [...]}
    active: list[Payment] = field(default_factory=list)  # every active (not reversed) payment, matched or not
    claim_of_payment: dict[str, str] = field(default_factory=dict)  # payment id -> group pcn
    groups: list[Group] = field(default_factory=list)  # in patient control number order

    @classmethod
    def of(cls, as_of: date, groups: Iterable[Group]) -> "Reconciliation":
        summary = _Summary(as_of)
        rec = cls(as_of, [], summary.unmatched_remits, {}, groups=list(groups))
        for g in rec.groups:
            summary.add(g)
            rec.active.extend(g.active)
            if g.claim is not None:
                rec.claims.append(g.claim)
                for p in g.active:
                    rec.claim_of_payment[p.id] = g.claim.patient_control_number
        rec.aging = summary.aging()
        return rec

    def iter_groups(self) -> Iterator[Group]:
        return iter(self.groups)

    def to_dict(self, claims: bool = True) -> dict:
        return _document(self.as_of, self.unmatched_remits, self.aging,
                         [c.to_dict() for c in self.claims] if claims else [])

    def write_json(self, write: Callable[[str], object], dumps: Callable[[object], str], batch: int = 512) -> None:
        """Write compact JSON, the same text as dumps(self.to_dict()), holding the dicts of only
        `batch` claims at a time (a whole store's claims as dicts would cost hundreds of MB)."""
        _write_json(self.as_of, self.groups, _Summary(self.as_of), write, dumps, batch)


class ReconStream:
    """A whole store's reconciliation read one claim group at a time, in patient control number order, so
    memory stays flat in the store's size: `claims` and `iter_groups()` read the store once each; the
    unmatched remits, the aging and the statuses are there once a pass has ended."""

    def __init__(self, store: Store, as_of: date, tables: CodeTables, lines: bool, scope: set[str] | None = None):
        self.as_of = as_of
        read = functools.partial(_stream_groups, store, as_of, tables, lines)
        # A scope closed under replacement links (Store.linked_pcns) holds each group whole or not at all.
        self._read = read if scope is None else lambda: (g for g in read() if g.patient_control_number in scope)
        self._summary: _Summary | None = None

    def iter_groups(self) -> Iterator[Group]:
        summary = _Summary(self.as_of)
        for g in self._read():
            summary.add(g)
            yield g
        self._summary = summary

    @property
    def claims(self) -> Iterator[ClaimRecon]:
        return (g.claim for g in self.iter_groups() if g.claim is not None)

    def _done(self) -> _Summary:
        if self._summary is None:
            for _ in self.iter_groups():
                pass
        return self._summary

    @property
    def unmatched_remits(self) -> list[dict]:
        return self._done().unmatched_remits

    @property
    def aging(self) -> dict[str, dict]:
        return self._done().aging()

    @property
    def statuses(self) -> dict[str, int]:
        return dict(self._done().statuses)

    def write_json(self, write: Callable[[str], object], dumps: Callable[[object], str], batch: int = 512) -> None:
        summary = _Summary(self.as_of)
        _write_json(self.as_of, self._read(), summary, write, dumps, batch)
        self._summary = summary


# ------------------------------------------------------------------------------ matching


def find_root(parent: dict[str, str], x: str) -> str:
    """The claim group `x` is in: the root of a union-find forest of linked patient control numbers
    (`parent` maps a number to the one it was joined to; a number not in it is its own root)."""
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
    ("exact", lambda c: (c.procedure, c.modifiers, c.service_date, c.charge_cents),
     lambda s: (s.billed_procedure, s.modifiers, s.service_date, s.charge_cents)),
    ("procedure+date", lambda c: (c.procedure, c.service_date), lambda s: (s.billed_procedure, s.service_date)),
    ("procedure", lambda c: c.procedure, lambda s: s.billed_procedure),
)


def match_lines(claim_lines: list[ClaimLineRow], service_payments: list[ServicePaymentRow]) -> list[LineMatch]:
    """Pair a claim's lines with the service payments of its active payments."""
    out: list[LineMatch] = []
    pending = []
    paired: set[str] = set()  # ids of the service payments paired on 6R
    by_6r = {sp.control_number: sp for sp in service_payments if sp.control_number}
    for cl in claim_lines:
        sp = by_6r.get(cl.control_number) if cl.control_number else None
        if sp is not None and cl.procedure in (sp.procedure, sp.original_procedure):
            del by_6r[cl.control_number]  # a renumbered resend's 6R may name another line
            paired.add(sp.id)
            out.append(LineMatch(cl.line_number, cl.procedure, cl.charge_cents, sp.paid_cents, "6R"))
        else:
            pending.append(cl)
    free = [sp for sp in service_payments if sp.id not in paired]
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
                out.append(LineMatch(cl.line_number, cl.procedure, cl.charge_cents, sp.paid_cents, how))
        pending = still
    out.extend(LineMatch(cl.line_number, cl.procedure, cl.charge_cents, None, None) for cl in pending)
    out.extend(LineMatch(None, s.billed_procedure, s.charge_cents, s.paid_cents, None) for s in free)
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


def _settle(claims: list[ClaimRow], pays: list[Payment], as_of: date, lines_of: dict[str, list] | None,
            services_of: dict[str, list] | None, state_of: Callable[[str, str], str]) -> Group:
    """Reconcile one group: its submissions in ingest order and its payments in payment order (with their
    CAS totals); with `lines_of` (claim id -> lines) and `services_of` (payment id -> service payments),
    match the latest submission's lines."""
    if len(pays) == 1 and pays[0].status_code != "22":  # most groups: one payment, not a reversal
        active, reversals = pays[:], 0
    else:
        active, reversals = _net(pays) if pays else ([], 0)
    if not claims:
        last = pays[-1]
        return Group(None, {
            "patient_control_number": last.patient_control_number,
            "payer_claim_control_number": last.payer_claim_control_number,
            "payer": last.payer_name or last.payer_id,
            "payments": len(active),
            "charge": cents_text(sum(p.charge or 0 for p in active)),
            "paid": cents_text(sum(p.paid or 0 for p in active)),
            "last_payment_date": last.payment_date,
        }, active)
    row = claims[-1]  # the latest submission is the claim of record
    freq = row.frequency_code
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
    days = _days(row.service_date, last_date if active else as_of)
    rec = ClaimRecon(row.patient_control_number, row.payer_name or row.payer_id, row.service_date, row.charge_cents,
                     paid, pr, adj, denied, status, days, len(active), reversals, freq, last_date)
    if lines_of is not None:
        rec.lines = match_lines(lines_of.get(row.id, []), [sp for p in active for sp in services_of.get(p.id, ())])
    rec.state = state_of(rec.patient_control_number, status)
    return Group(rec, None, active, claims[0].rowid if len(claims) == 1 else min(r.rowid for r in claims))


def _grouped(claim_rows: list[ClaimRow], payments: list[Payment], as_of: date,
             lines_of: dict | None, services_of: dict | None, state_of) -> list[Group]:
    """Reconcile rows held whole (a scope's, or the groups linked by replacements): union the PCNs a
    replacement/void's REF*F8 = a payment's CLP07 links, then settle each group; in pcn order."""
    parent: dict[str, str] = {}
    pcn_of_icn: dict[str, str] = {}
    for p in payments:
        if p.payer_claim_control_number:
            pcn_of_icn.setdefault(p.payer_claim_control_number, p.patient_control_number)
    for c in claim_rows:
        f8 = c.payer_claim_control_number
        if c.frequency_code in ("7", "8") and f8 and f8 in pcn_of_icn:
            a, b = find_root(parent, pcn_of_icn[f8]), find_root(parent, c.patient_control_number)
            if a != b:
                parent[a] = b  # the replacement's PCN names the group
    root = {x: find_root(parent, x) for x in parent}  # a PCN not in it is its own group
    claims_of: dict[str, list[ClaimRow]] = defaultdict(list)
    pays_of: dict[str, list[Payment]] = defaultdict(list)
    for c in claim_rows:  # ingest order: the last one is the claim of record
        claims_of[root.get(c.patient_control_number, c.patient_control_number)].append(c)
    for p in payments:
        pays_of[root.get(p.patient_control_number, p.patient_control_number)].append(p)
    groups = [_settle(claims_of.get(key, []), pays_of.get(key, []), as_of, lines_of, services_of, state_of)
              for key in {**claims_of, **pays_of}]
    groups.sort(key=lambda g: g.patient_control_number)
    return groups


def _by_pcn(rows: Iterable, skip: set[str]) -> Iterator[tuple[str, list]]:
    """Rows read in patient control number order, as (pcn, rows) runs; pcns in `skip` left out."""
    for pcn, run in itertools.groupby(rows, key=operator.attrgetter("patient_control_number")):
        if pcn not in skip:
            yield pcn, list(run)


def _stream_groups(store: Store, as_of: date, tables: CodeTables, lines: bool) -> Iterator[Group]:
    """Every claim group of the store, in pcn order, read as sorted streams merged pcn by pcn. The few
    PCNs a replacement or void links to another (recon_links) are reconciled together first, held whole,
    and merged in."""
    from edi_pipeline.analytics.lifecycle import state_reader  # here: lifecycle builds on this module

    state_of = state_reader(store)
    not_denial = not_denial_reasons(tables)
    linked = {pcn for pair in store.recon_links() for pcn in pair}
    held: list[Group] = []
    if linked:
        held = list(_scoped_groups(store, linked, as_of, tables, lines, state_of, filter_here=False))
    streams = [_by_pcn(store.iter_claims_by_pcn(), linked),
               _by_pcn(store.iter_payments_by_pcn(not_denial, row=Payment), linked)]
    if lines:
        streams += [_by_pcn(store.iter_claim_lines_by_pcn(), linked),
                    _by_pcn(store.iter_service_payments_by_pcn(), linked)]
    heads = [next(it, None) for it in streams]
    held_at = 0
    while any(heads):
        pcn = min(h[0] for h in heads if h)
        runs = []
        for k, h in enumerate(heads):
            if h and h[0] == pcn:
                runs.append(h[1])
                heads[k] = next(streams[k], None)
            else:
                runs.append([])
        while held_at < len(held) and held[held_at].patient_control_number < pcn:
            yield held[held_at]
            held_at += 1
        lines_of = services_of = None
        if lines:
            lines_of, services_of = defaultdict(list), defaultdict(list)
            for ln in runs[2]:
                lines_of[ln.claim_id].append(ln)
            for sp in runs[3]:
                services_of[sp.claim_payment_id].append(sp)
        yield _settle(runs[0], runs[1], as_of, lines_of, services_of, state_of)
    yield from held[held_at:]


def _scoped_groups(store: Store, scope: set[str], as_of: date, tables: CodeTables, lines: bool, state_of,
                   filter_here: bool) -> list[Group]:
    """The groups of the claims and payments of the PCNs in `scope`, read whole (`filter_here`: the whole
    store read and filtered here, faster for a scope holding much of it)."""
    lines_of: dict[str, list] | None = defaultdict(list) if lines else None
    services_of: dict[str, list] | None = defaultdict(list) if lines else None
    with store.recon_scope(scope) if not filter_here else contextlib.nullcontext():
        claim_rows = store.recon_claims()
        payments = store.recon_payments(row=Payment)
        adjustment_totals = store.recon_adjustment_totals(not_denial_reasons(tables))
        if lines:  # rows outside a filtered scope are never asked for
            for r in store.recon_claim_lines():
                lines_of[r.claim_id].append(r)
            for r in store.recon_service_payments():
                services_of[r.claim_payment_id].append(r)
    if filter_here:
        claim_rows = [r for r in claim_rows if r.patient_control_number in scope]
        payments = [p for p in payments if p.patient_control_number in scope]
    by_id = {p.id: p for p in payments}
    for cp_id, adj, denied in adjustment_totals:
        p = by_id.get(cp_id)
        if p is not None:
            p.adjustments = adj or 0
            p.denied = denied or 0
    return _grouped(claim_rows, payments, as_of, lines_of, services_of, state_of)


def reconcile_stream(store: Store, as_of: date | None = None, tables: CodeTables | None = None,
                     lines: bool = False) -> ReconStream:
    """The whole store's reconciliation, read one claim group at a time (memory flat in the store's size)."""
    return ReconStream(store, as_of or date.today(), tables or load_tables(), lines)


def reconcile_pcns(store: Store, pcns: Iterable[str], as_of: date | None = None,
                   tables: CodeTables | None = None) -> Reconciliation | ReconStream:
    """The claim groups of these patient control numbers (and those linked to them), as reconcile(pcns=...)
    gives them, but a scope of over SCOPED_STREAM_MIN claims is read as a filtered whole-store stream, so
    memory stays flat however many claims a run's remits touch."""
    as_of = as_of or date.today()
    tables = tables or load_tables()
    scope = store.linked_pcns(pcns)
    if len(scope) <= SCOPED_STREAM_MIN:
        return _reconcile_closed(store, as_of, tables, False, scope)
    return ReconStream(store, as_of, tables, False, scope)


def reconcile(store: Store, as_of: date | None = None, tables: CodeTables | None = None,
              lines: bool = False, pcns: Iterable[str] | None = None) -> Reconciliation:
    """Match every payment in the store to its claim; net reversals; age claims with no remit.

    With `pcns`, only the claim groups of those patient control numbers (and the replacements and
    voids linked to them) are read and reconciled, with the same results as in a whole-store run."""
    as_of = as_of or date.today()
    tables = tables or load_tables()
    if pcns is None:
        return Reconciliation.of(as_of, _stream_groups(store, as_of, tables, lines))
    return _reconcile_closed(store, as_of, tables, lines, store.linked_pcns(pcns))


def _reconcile_closed(store: Store, as_of: date, tables: CodeTables, lines: bool, scope: set[str]) -> Reconciliation:
    """reconcile(pcns=scope) of a scope already closed under replacement links (Store.linked_pcns)."""
    from edi_pipeline.analytics.lifecycle import state_reader  # here: lifecycle builds on this module

    # A scope holding much of the store is read faster whole and filtered here: the same rows either way.
    filter_here = len(scope) > SCOPED_READ_MAX_SHARE * store.claims_upper_bound()
    return Reconciliation.of(as_of, _scoped_groups(store, scope, as_of, tables, lines, state_reader(store),
                                                   filter_here))


CLAIM_COLUMNS = ("patient_control_number", "payer", "service_date", "billed", "paid", "patient_responsibility",
                 "adjustments", "status", "state", "days_outstanding")


def claim_rows(rec: Reconciliation | ReconStream) -> list[dict]:
    """Flat rows for table output."""
    return [{k: v for k, v in c.to_dict().items() if k != "lines"} for c in rec.claims]


def write_claims_csv(rec: Reconciliation | ReconStream, out: IO[str]) -> int:
    """One CSV row per claim (CLAIM_COLUMNS, header even when there is none), streamed, cells safe for
    spreadsheets (safe_text.csv_cell); returns the count."""
    w = SafeCsvWriter(out)
    w.writerow(CLAIM_COLUMNS)
    n = 0
    for n, c in enumerate(rec.claims, 1):
        d = c.to_dict()
        w.writerow([d[k] for k in CLAIM_COLUMNS])
    return n


def statuses(rec: Reconciliation | ReconStream) -> dict[str, int]:
    if isinstance(rec, ReconStream):
        return rec.statuses
    out: dict[str, int] = defaultdict(int)
    for c in rec.claims:
        out[c.status] += 1
    return dict(out)


__all__ = ["reconcile", "reconcile_pcns", "reconcile_stream", "ReconStream", "Group", "match_lines", "Reconciliation", "ClaimRecon", "LineMatch", "Payment",
           "not_denial_reasons", "aging_bucket", "Aging", "AGING_BUCKETS", "claim_rows", "write_claims_csv",
           "CLAIM_COLUMNS", "statuses"]
