"""Line-rule registry: findings, proposed edits, sessions and the rule runner.

Rules (in pain_rules.py) are small functions registered with `@rule(ID, scope=...)`. They read
claims and sessions and *propose* corrections as `Edit`s on the transaction's segment list;
scrub.py applies them and the writer writes. Rule metadata (profile, severity, action, text)
comes from codes.py (`CodeTables.rules`, i.e. data/rules.toml), never from this module.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import IO, Callable, Iterable, Iterator, Protocol

from edi_pipeline.codes.tables import CodeTables, PayerProfiles, Profile
from edi_pipeline.core.errors import Severity
from edi_pipeline.x12.segment import Segment
from edi_pipeline.tx.model import Claim, ServiceLine
from edi_pipeline.tx.model import member_hash

# ---------------------------------------------------------------- edits


# Edits of one segment's elements (SetElement, SetProcedure, RemoveModifiers) change it through
# x12.segment.Segment, by reference designator; the scrubber applies them (scrub.scrubber.apply_edits).


@dataclass(frozen=True, slots=True)
class SetElement:
    """Set the element or component `element` (a reference designator, "SV104") of the segment at
    transaction offset `offset`."""

    offset: int
    element: str
    value: str

    def apply(self, seg: Segment) -> None:
        seg[self.element] = self.value


@dataclass(frozen=True, slots=True)
class SetProcedure:
    """Set SV101-2 (the procedure code) of the SV1 at `offset`."""

    offset: int
    code: str

    def apply(self, seg: Segment) -> None:
        seg["SV101-2"] = self.code


@dataclass(frozen=True, slots=True)
class RemoveModifiers:
    """Drop these modifiers from SV101-3..6 of the SV1 at `offset` (the rest close up)."""

    offset: int
    modifiers: frozenset[str]

    def apply(self, seg: Segment) -> None:
        c = seg.components("SV101")
        mods = [m for m in c[2:6] if m and m not in self.modifiers]
        rest = c[6:]  # SV101-7, the description
        new = c[:2] + mods
        if rest:
            new += [""] * (4 - len(mods)) + rest
        while len(new) > 2 and not new[-1]:
            new.pop()
        seg.set_components("SV101", new)


@dataclass(frozen=True, slots=True)
class RemoveSegments:
    """Remove the segments at offsets [start, end) (a whole 2400 loop)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class InsertSegments:
    """Insert segments (texts without terminator) before the segment at `before`."""

    before: int
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetTotal:
    """Set CLM02 to the sum of the surviving SV102 (done for every changed claim anyway)."""

    offset: int


Edit = SetElement | SetProcedure | RemoveModifiers | RemoveSegments | InsertSegments | SetTotal


# ---------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """What a finding keeps of its claim once the transaction set is freed (see Finding.detach)."""

    patient_control_number: str


@dataclass(frozen=True, slots=True)
class LineRef:
    """What a finding keeps of its service line once the transaction set is freed."""

    line_number: int
    procedure: str


@dataclass(slots=True)
class Finding:
    rule: str
    severity: Severity
    claim: Claim
    line: ServiceLine | None
    action: str  # the correction name (set_units, ...) or "none"
    message: str  # no PHI: codes, counts, positions only
    edits: tuple[Edit, ...] = ()
    hold: bool = False  # the claim goes to the rejects file
    requires: tuple[Claim, ...] = ()  # edits only stand if these claims are emitted too
    data: dict | None = None  # rule-specific payload (AUTH-REQUIRED: the authorization used)

    @property
    def procedure(self) -> str | None:
        return self.line.procedure if self.line else None

    def detach(self) -> None:
        """Let go of the claim, line and related claims (and so of their transaction set's segments),
        keeping what the report reads; called once the scrub has written the transaction set."""
        self.claim = ClaimRef(self.claim.patient_control_number)  # type: ignore[assignment]
        if self.line is not None:
            self.line = LineRef(self.line.line_number, self.line.procedure)  # type: ignore[assignment]
        self.requires = ()

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "patient_control_number": self.claim.patient_control_number,
            "line": self.line.line_number if self.line else None,
            "procedure": self.procedure,
            "action": self.action,
            "message": self.message,
        }


class FindingLog:
    """A scrub's findings in order. The first `keep` stay in memory; later ones go, detached, to an
    anonymous temporary file and come back as plain findings (no edits), so memory stays flat however
    many findings a large file has."""

    def __init__(self, keep: int = 20_000):
        self.keep = keep
        self._held: list[Finding] = []
        self._spill: IO[bytes] | None = None
        self._count = 0

    def append(self, f: Finding) -> None:
        self._count += 1
        if len(self._held) < self.keep:
            self._held.append(f)
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        line = f.line
        pickle.dump((f.rule, f.severity, f.claim.patient_control_number,
                     None if line is None else (line.line_number, line.procedure), f.action, f.message),
                    self._spill)

    def extend(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.append(f)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Finding]:
        yield from self._held
        if self._spill is None:
            return
        self._spill.flush()
        self._spill.seek(0)
        try:
            while True:
                try:
                    rule, severity, pcn, line, action, message = pickle.load(self._spill)
                except EOFError:
                    break
                yield Finding(rule, severity, ClaimRef(pcn),  # type: ignore[arg-type]
                              LineRef(*line) if line else None, action, message)  # type: ignore[arg-type]
        finally:
            self._spill.seek(0, os.SEEK_END)


# ---------------------------------------------------------------- sessions


@dataclass(slots=True)
class Item:
    """One service line with its claim (a session member)."""

    claim: Claim
    line: ServiceLine

    @property
    def code(self) -> str:
        return self.line.procedure

    @property
    def units(self) -> Decimal:
        return self.line.units if self.line.units is not None else Decimal(1)


@dataclass(slots=True)
class Session:
    """One patient + rendering provider + date of service, across every claim of a transaction set."""

    key: tuple
    items: list[Item]
    service_date: date | None

    _codes: frozenset[str] | None = None

    def codes(self) -> frozenset[str]:
        if self._codes is None:
            self._codes = frozenset([it.line.procedure for it in self.items])
        return self._codes

    def having(self, group: frozenset[str] | set[str]) -> list[Item]:
        if self.codes().isdisjoint(group):
            return []
        return [it for it in self.items if it.line.procedure in group]


def line_date(claim: Claim, line: ServiceLine) -> date | None:
    return line.service_date or claim.service_date


def rendering_npi(claim: Claim, line: ServiceLine) -> str | None:
    """2420A line rendering, else 2310B claim rendering, else 2010AA billing provider."""
    if line.rendering_npi:
        return line.rendering_npi
    if claim.rendering_provider and claim.rendering_provider.npi:
        return claim.rendering_provider.npi
    return claim.billing_provider.npi


def sessions_of(claims: Iterable[Claim]) -> list[Session]:
    """Group every line of `claims` into sessions, keeping first-seen order."""
    groups: dict[tuple, Session] = {}
    for c in claims:
        mk = c.member_key
        claim_date = c.service_date
        rp = c.rendering_provider
        claim_npi = rp.npi if rp and rp.npi else c.billing_provider.npi  # rendering_npi() of a line without its own
        for ln in c.lines:
            d = ln.service_date or claim_date
            key = (mk, ln.rendering_npi or claim_npi, d)
            s = groups.get(key)
            if s is None:
                s = groups[key] = Session(key, [], d)
            s.items.append(Item(c, ln))
    return list(groups.values())


# ---------------------------------------------------------------- history


_first = itemgetter(0)


def line_key(line: tuple) -> tuple:
    """Canonical order of DUPLICATE-CLAIM's (date, code, charge) lines (None sorts first)."""
    d, code, charge = line
    return d or date.min, code, charge if charge is not None else Decimal(0)


class History(Protocol):
    """What the visit-history rules (visit counts, frequency, auth units, NCCI units, DUPLICATE-CLAIM,
    CORRECTED-NO-F8) read of the claims sent before this file: store.history.StoreHistory answers from the
    SQLite store, MemoryHistory from rows in memory (a Spark group). `file_exact` and `file_lines` are
    DUPLICATE-CLAIM's record of this file's own claims so far (see CachedHistory)."""

    file_exact: dict[int, str]
    file_lines: dict[int, str]

    def visit_dates(self, member: str, codes: frozenset[str], since: date, until: date) -> set[date]:
        """Distinct service dates of the member's lines with any of `codes` in [since, until], voids left out."""

    def procedure_lines(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str]]:
        """(service date, patient control number) of the member's lines of `code` in [since, until], sorted."""

    def procedure_units(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str, Decimal]]:
        """(service date, patient control number, units) of the member's lines of `code` in [since, until]."""

    def sent_claims(self, member: str, dates: set[date]) -> list[tuple[str, tuple]]:
        """(patient control number, sorted (date, code, charge) lines) of the member's claims with a line on
        one of `dates`; voids, and claims a void cancelled, left out."""

    def payer_claim_known(self, icn: str) -> bool | None:
        """Whether a remit on file carries this payer claim control number (CLP07); None: no remits to ask."""


class CachedHistory:
    """The History answers from each member's whole history, fetched once per (member, codes) by the
    subclass (`_visit_dates`, `_procedure_lines`, `_sent`, `_empty`); each window is a binary search."""

    def __init__(self) -> None:
        self._dates: dict[tuple, list[date]] = {}
        self._lines: dict[tuple, list[tuple[date, str]]] = {}
        self._sent_of: dict[str, list[tuple[str, tuple]]] = {}
        self._is_empty: bool | None = None
        # DUPLICATE-CLAIM, the claims read so far in this file (the history holds the earlier files), kept as
        # hashes so memory stays small: hash((member, sorted lines)) and hash((member, one line)) -> the
        # first claim's patient control number (a 64-bit collision is the price, about 1 in 10^7 at 10^6 claims)
        self.file_exact: dict[int, str] = {}
        self.file_lines: dict[int, str] = {}

    def _empty(self) -> bool:
        raise NotImplementedError

    def _visit_dates(self, member: str, codes: frozenset[str]) -> Iterable[date]:
        raise NotImplementedError

    def _procedure_lines(self, member: str, code: str) -> Iterable[tuple[date, str]]:
        raise NotImplementedError

    def _sent(self, member: str) -> Iterable[tuple[str, tuple]]:
        """(pcn, lines in line_key order) of each of the member's claims, voids and voided claims left out."""
        raise NotImplementedError

    def empty(self) -> bool:
        if self._is_empty is None:
            self._is_empty = self._empty()
        return self._is_empty

    def visit_dates(self, member: str, codes: frozenset[str], since: date, until: date) -> set[date]:
        if self.empty():
            return set()
        key = (member, codes)
        every = self._dates.get(key)
        if every is None:
            every = self._dates[key] = sorted(self._visit_dates(member, codes))
        return set(every[bisect_left(every, since):bisect_right(every, until)])

    def procedure_lines(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str]]:
        if self.empty():
            return []
        key = (member, code)
        rows = self._lines.get(key)
        if rows is None:
            rows = self._lines[key] = sorted(self._procedure_lines(member, code))
        return rows[bisect_left(rows, since, key=_first):bisect_right(rows, until, key=_first)]

    def sent_claims(self, member: str, dates: set[date]) -> list[tuple[str, tuple]]:
        if self.empty() or not dates:
            return []
        every = self._sent_of.get(member)
        if every is None:
            every = self._sent_of[member] = list(self._sent(member))
        return [(pcn, lines) for pcn, lines in every if any(x[0] in dates for x in lines)]


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One service line of a claim sent before, as MemoryHistory holds it (`claim` tells claims apart)."""

    claim: object
    member: str  # member_hash
    patient_control_number: str
    frequency_code: str | None
    service_date: date | None
    procedure: str | None
    charge: Decimal | None
    units: Decimal | None = None  # None: 1


class MemoryHistory(CachedHistory):
    """History from rows in memory: the lines of the claims sent before (other files) and the payer claim
    control numbers of the remits on file (None: no remits to ask). MemoryHistory() is no history at all."""

    def __init__(self, lines: Iterable[HistoryLine] = (), payer_claims: Iterable[str] | None = None):
        super().__init__()
        self.by_member: dict[str, list[HistoryLine]] = defaultdict(list)
        for ln in lines:
            self.by_member[ln.member].append(ln)
        self.payer_claims = None if payer_claims is None else frozenset(payer_claims)

    def _empty(self) -> bool:
        return not self.by_member

    def _live(self, member: str) -> Iterator[HistoryLine]:
        return (ln for ln in self.by_member.get(member, ()) if (ln.frequency_code or "1") != "8")

    def _visit_dates(self, member: str, codes: frozenset[str]) -> set[date]:
        return {ln.service_date for ln in self._live(member) if ln.procedure in codes and ln.service_date}

    def _procedure_lines(self, member: str, code: str) -> list[tuple[date, str]]:
        return [(d, pcn) for d, pcn, _ in self.procedure_units(member, code, date.min, date.max)]

    def procedure_units(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str, Decimal]]:
        return [(ln.service_date, ln.patient_control_number, Decimal(1) if ln.units is None else ln.units)
                for ln in self._live(member)
                if ln.procedure == code and ln.service_date and since <= ln.service_date <= until]

    def _sent(self, member: str) -> list[tuple[str, tuple]]:
        voided = {ln.patient_control_number for ln in self.by_member.get(member, ()) if ln.frequency_code == "8"}
        claims: dict[object, tuple[str, list]] = {}
        for ln in self._live(member):
            if ln.patient_control_number not in voided:
                claims.setdefault(ln.claim, (ln.patient_control_number, []))[1].append(
                    (ln.service_date, ln.procedure, ln.charge))
        return [(pcn, tuple(sorted(lines, key=line_key))) for pcn, lines in claims.values()]

    def payer_claim_known(self, icn: str) -> bool | None:
        return None if self.payer_claims is None else icn in self.payer_claims


def year_before(d: date) -> date:
    """First day of the rolling 12 months that end on `d`."""
    try:
        return d.replace(year=d.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28) + timedelta(days=1)


# ---------------------------------------------------------------- context


@dataclass
class Context:
    """What a rule can see: the transaction's claims and sessions, tables, profiles, history, auths."""

    claims: list[Claim]
    tables: CodeTables
    profiles: PayerProfiles
    history: History = field(default_factory=MemoryHistory)
    auths: object | None = None  # scrub.AuthBook: find(claim, lines) -> (auth, units) | None
    today: date = field(default_factory=date.today)  # the scrub date (TIMELY-FILING counts to it)
    _sessions: list[Session] | None = None
    _profile: dict[int, Profile] = field(default_factory=dict)
    memo: dict = field(default_factory=dict)  # work shared by several transaction rules, keyed by the rule module
    ncci_tables: object | None = None  # codes.ncci.Ncci: the shipped table and the store's imports
    _by_code: dict[str, list[tuple[int, Claim, ServiceLine]]] | None = None  # lines_with's index

    @property
    def ncci(self):
        """The NCCI tables in force (codes.ncci.Ncci): those given, else the shipped table."""
        if self.ncci_tables is None:
            from edi_pipeline.codes.ncci import shipped_ncci

            self.ncci_tables = shipped_ncci()
        return self.ncci_tables

    def profile(self, claim: Claim) -> Profile:
        p = self._profile.get(id(claim))
        if p is None:
            p = self._profile[id(claim)] = self.profiles.profile_for(claim.claim_filing_indicator, claim.payer.id)
        return p

    def member(self, claim: Claim) -> str:
        return member_hash(claim)

    def lines_with(self, codes: Iterable[str]) -> list[tuple[Claim, ServiceLine]]:
        """(claim, line) of each of the set's lines billing one of `codes`, in file order (from an index by
        code, built on first use)."""
        index = self._by_code
        if index is None:
            index = self._by_code = {}
            k = 0
            for c in self.claims:
                for ln in c.lines:
                    rows = index.get(ln.procedure)
                    if rows is None:
                        rows = index[ln.procedure] = []
                    rows.append((k, c, ln))
                    k += 1
        found = [index[code] for code in codes if code in index]
        if not found:
            return []
        rows = found[0] if len(found) == 1 else sorted((r for rs in found for r in rs), key=_first)
        return [(c, ln) for _, c, ln in rows]

    @property
    def sessions(self) -> list[Session]:
        if self._sessions is None:
            self._sessions = sessions_of(self.claims)
        return self._sessions

    def group(self, name: str) -> frozenset[str]:
        return self.tables.groups[name]

    def finding(self, rule_id: str, claim: Claim, line: ServiceLine | None, message: str,
                edits: Iterable[Edit] = (), hold: bool = False, severity: Severity | None = None,
                requires: Iterable[Claim] = (), data: dict | None = None) -> Finding:
        info = self.tables.rules[rule_id]
        edits = tuple(edits)
        action = info.action if edits else "none"
        sev = Severity(severity or info.severity)
        req = tuple(c for c in requires if c is not claim)
        return Finding(rule_id, sev, claim, line, action, message, edits,
                       hold or (not edits and sev is Severity.ERROR), req, data)


# ---------------------------------------------------------------- registry

RuleFn = Callable[..., Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    scope: str  # "session", "claim" or "transaction"
    fn: RuleFn
    needs: tuple[str, ...] = ()  # code groups a session (claim) must each touch for the rule to fire
    when: Callable[[frozenset[str], Context], bool] | None = None  # session rules: a test of the session's codes

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


REGISTRY: dict[str, Rule] = {}


def rule(rule_id: str, scope: str = "session", needs: tuple[str, ...] = (),
         when: Callable[[frozenset[str], Context], bool] | None = None) -> Callable[[RuleFn], RuleFn]:
    """Register a rule function under its RULES.md id.

    scope "session": fn(session, ctx) per session; "claim": fn(claim, ctx) per claim;
    "transaction": fn(ctx) once per transaction set (rules that count across sessions).
    `needs` (session and claim rules): code groups the rule cannot fire without -- a session (a claim)
    with no line of one of them is not passed to the rule at all. `when(codes, ctx)` (session rules):
    false when the rule cannot fire on a session billing `codes` nor on one billing some of them (it is
    asked once per distinct code set). Both are only shortcuts: the rule must return no finding for
    such a session or claim anyway.
    """
    if scope not in ("session", "claim", "transaction"):
        raise ValueError(f"unknown rule scope {scope!r}")
    if needs and scope == "transaction":
        raise ValueError("needs is for session and claim rules")
    if when is not None and scope != "session":
        raise ValueError("when is for session rules")

    def register(fn: RuleFn) -> RuleFn:
        if rule_id in REGISTRY:
            raise ValueError(f"rule {rule_id} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, scope, fn, tuple(needs), when)
        return fn

    return register


def registry() -> dict[str, Rule]:
    from edi_pipeline.rules import pain as pain_rules  # noqa: F401  (registers the rules, in catalogue order)
    from edi_pipeline.rules import ncci as ncci_rules  # noqa: F401

    return REGISTRY


def _restrict(session: Session, ctx: Context, profile: str) -> Session | None:
    """The session's lines whose claim's payer profile runs rules of this catalogue profile."""
    if profile == "all":
        return session
    items = [it for it in session.items if ctx.profile(it.claim).applies(profile)]
    if not items:
        return None
    if len(items) == len(session.items):
        return session
    return Session(session.key, items, session.service_date)


def _session_plan(ctx: Context, rules: Iterable[Rule]) -> dict[str, list[Session]]:
    """For each session rule, the sessions (in order) that touch every code group the rule needs.
    Sessions with the same codes get the same rules, so the check runs once per distinct code set."""
    rules = [r for r in rules if r.scope == "session"]
    needs = {r.id: [ctx.group(g) for g in r.needs] for r in rules}
    by_codes: dict[frozenset[str], list[str]] = {}
    plan: dict[str, list[Session]] = {r.id: [] for r in rules}
    for s in ctx.sessions:
        codes = s.codes()
        ids = by_codes.get(codes)
        if ids is None:
            ids = by_codes[codes] = [r.id for r in rules
                                     if all(not codes.isdisjoint(g) for g in needs[r.id])
                                     and (r.when is None or r.when(codes, ctx))]
        for rid in ids:
            plan[rid].append(s)
    return plan


def _claims_touching(ctx: Context, groups: tuple[str, ...]) -> list[Claim]:
    """The set's claims (in order) with a line in each of the code groups."""
    ids: set[int] | None = None
    for g in groups:
        have = {id(c) for c, _ in ctx.lines_with(ctx.group(g))}
        ids = have if ids is None else ids & have
    return [c for c in ctx.claims if id(c) in ids] if ids else []


def run(ctx: Context, only: Iterable[str] | None = None) -> list[Finding]:
    """Run every registered rule (or `only` these ids) over one transaction set's claims.

    Findings on claims whose payer profile does not run the rule (Medicare-only rules on a
    commercial, WC or no-fault claim, or a rule in the profile's `disabled_rules`) are never produced.
    """
    rules = registry()
    wanted = set(only) if only is not None else None
    findings: list[Finding] = []
    plan: dict[str, list[Session]] | None = None
    restricted: dict[tuple[str, int], Session | None] = {}  # (catalogue profile, id(session)) -> view
    for rid, r in rules.items():
        if wanted is not None and rid not in wanted:
            continue
        info = ctx.tables.rules.get(rid)
        if info is None:
            continue
        prof = info.profile
        if r.scope == "session":
            if plan is None:
                plan = _session_plan(ctx, rules.values())
            fn = r.fn
            for s in plan[rid]:
                if prof != "all":
                    key = (prof, id(s))
                    if key not in restricted:
                        restricted[key] = _restrict(s, ctx, prof)
                    s = restricted[key]
                    if s is None:
                        continue
                got = fn(s, ctx)
                if got:
                    findings.extend(got)
        elif r.scope == "claim":
            fn = r.fn
            claims = ctx.claims if not r.needs else _claims_touching(ctx, r.needs)
            for c in claims:
                if prof == "all" or ctx.profile(c).applies(prof):
                    got = fn(c, ctx)
                    if got:
                        findings.extend(got)
        else:
            findings.extend(f for f in r.fn(ctx) if ctx.profile(f.claim).applies(prof))
    if any(p.disabled_rules for p in ctx.profiles.profiles.values()):
        findings = [f for f in findings if f.rule not in ctx.profile(f.claim).disabled_rules]
    return findings


def by_claim(findings: Iterable[Finding]) -> dict[int, list[Finding]]:
    out: dict[int, list[Finding]] = defaultdict(list)
    for f in findings:
        out[id(f.claim)].append(f)
    return out


def iter_rule_info(tables: CodeTables) -> Iterator:
    """RuleInfo of every registered rule, in registry (catalogue) order."""
    for rid in registry():
        if rid in tables.rules:
            yield tables.rules[rid]
