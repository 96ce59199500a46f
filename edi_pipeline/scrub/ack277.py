"""277CA (005010X214) out: the clearinghouse's claim-by-claim answer to one 837P interchange it scrubbed.

A claim sent on is acknowledged A1 (received; TR3: "this does not mean that the claim has been accepted for
adjudication"): only the payer, who adjudicates, can say A2 (accepted into its adjudication system), in its
own 277CA. A claim the scrubber held is rejected A6 (missing), A7 (invalid) or A8 (relational field in error)
with a claim status code (code list 508) that fits the finding, one STC per holding finding, the rule id in
STC12. Only rejected lines get a 2220D loop (TR3: "required when a service line is being rejected"), with
REF*FJ = the line's REF*6R. Counts and amounts accepted and rejected are given per billing provider (2200C)
and for the whole set (2200B). Names and ids are the claim's: the file holds PHI and is written 0600.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import tempfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Callable, Collection, Iterable, Iterator, Sequence

from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment
from edi_pipeline.core.errors import Issue, IssueList, Severity
from edi_pipeline.tx.model import Claim, ServiceLine
from edi_pipeline.tx.parse_837p import parse_837p
from edi_pipeline.tx.registry import Kind, kind_of
from edi_pipeline.core.paths import AckNames
from edi_pipeline.rules.engine import Finding
from edi_pipeline.x12.envelope import ack_element, reply_isa
from edi_pipeline.x12.isa import Isa, gs_control
from edi_pipeline.core.values import format_amount, format_number
from edi_pipeline.core.files import atomic_output

__all__ = ["ACCEPTED", "RULE_STATUS", "Rejection", "ClaimOutcome", "build_277ca", "write_277cas",
           "set_outcomes", "interchange_outcomes", "AckSpool"]

# STC01 of a claim sent on: A1 received, 20 accepted for processing (no entity code needed).
ACCEPTED = ("A1", "20", None)
_ACCEPTED_STC01 = ":".join(x for x in ACCEPTED if x)

# Rule id -> (category, claim status code, entity code or None). Codes: X12 list 508.
RULE_STATUS: dict[str, tuple[str, str, str | None]] = {
    "TPI-ANESTHESIA": ("A8", "454", None),  # procedure code, in relation to the session's TPI
    "ACU-ADDON-NO-PRIMARY": ("A8", "454", None),  # add-on procedure code without its primary
    "CPM-ADDON": ("A8", "454", None),
    "NCCI-AOC": ("A8", "454", None),
    "NCCI-PTP": ("A8", "453", None),  # procedure code modifier(s): a pair no modifier bypasses
    "ACU-NCD-DX": ("A8", "488", None),  # diagnosis code(s) for the services rendered
    "ACU-NCD-MAX": ("A7", "259", None),  # frequency of service
    "NCCI-MUE": ("A7", "476", None),  # missing or invalid units of service
    "UNLISTED-DESC": ("A6", "306", None),  # detailed description of service
    "DX-POINTER": ("A7", "477", None),  # diagnosis code pointer is missing or invalid
    "AUTH-REQUIRED": ("A6", "252", "1P"),  # entity's prior authorization number (provider)
    "CORRECTED-NO-F8": ("A6", "464", None),  # payer assigned claim control number
    "TIMELY-FILING": ("A7", "187", None),  # date(s) of service
    "DUPLICATE-CLAIM": ("A7", "538", None),  # claim or encounter identifier
}
# An issue in the claim's own segments (scrub.ScrubResult.claims_invalid), by element.
_ELEMENT_STATUS = {"CLM02": "178", "SV102": "583", "SV104": "476", "SV107": "477", "DTP03": "187"}
_GENERIC = "21"  # missing or invalid information: needs a second status code (STC10)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a claim (or one of its lines) was held: one STC."""

    reason: str  # rule id or issue code, echoed in STC12
    category: str  # A6 / A7 / A8
    status: str  # claim status code (list 508)
    entity: str | None = None
    line: ServiceLine | None = None

    @classmethod
    def of_finding(cls, f: Finding, claim: Claim) -> "Rejection":
        """The STC for a holding finding on `claim` (its line found by number: a finding detached after
        the scrub keeps only the line's number)."""
        category, status, entity = RULE_STATUS.get(f.rule, ("A7", _GENERIC, None))
        number = f.line.line_number if f.line is not None else None
        line = next((ln for ln in claim.lines if ln.line_number == number), None)
        return cls(f.rule, category, status, entity, line)

    @classmethod
    def of_issue(cls, issue: Issue, claim: Claim) -> "Rejection":
        element = issue.pos.element or ""
        status = _ELEMENT_STATUS.get(element[:5], _GENERIC)
        line = None
        if element.startswith("SV1") and issue.pos.st_position:
            offset = issue.pos.st_position - 1
            line = next((ln for ln in claim.lines if ln.start <= offset < ln.end), None)
        return cls(f"{issue.code} {element}".strip(), "A7", status, None, line)


@dataclass(slots=True)
class ClaimOutcome:
    """A claim of the interchange and what the scrubber did with it: sent on (no rejections) or held."""

    claim: Claim
    rejections: tuple[Rejection, ...] = ()

    @classmethod
    def of(cls, claim: Claim, findings: Iterable[Finding] = (), issues: Iterable[Issue] = ()) -> "ClaimOutcome":
        """The outcome from the claim's findings (those that hold it) and the errors in its own segments."""
        return cls(claim, tuple([Rejection.of_finding(f, claim) for f in findings if f.hold]
                                + [Rejection.of_issue(i, claim) for i in issues]))

    @property
    def sent(self) -> bool:
        return not self.rejections


def _stc(r: Rejection) -> tuple[str, str]:
    """STC01 of a rejection, and STC10 when its status is the generic 21, which needs a second code:
    454 (procedure code) for a line, 275 (claim) otherwise."""
    first = ":".join(x for x in (r.category, r.status, r.entity) if x)
    if r.status != _GENERIC:
        return first, ""
    return first, f"{r.category}:{'454' if r.line is not None else '275'}"


def _amount(value: Decimal | None) -> str:
    """An amount or quantity as X12 R text; one too large to round to cents (1E+30) as its plain digits."""
    if value is None:
        return "0"
    try:
        return format_amount(value)
    except InvalidOperation:
        return format_number(value)


@functools.lru_cache(maxsize=4096)
def _d8(d: date) -> str:
    return f"{d:%Y%m%d}"


def _header(segs: list[str], sep: str) -> dict[str, list[str]]:
    """BHT, NM1*41 (submitter) and NM1*40 (receiver) of an 837 set: what precedes its first HL."""
    found: dict[str, list[str]] = {}
    for text in segs[1:]:
        e = text.split(sep)
        if e[0] == "HL":
            break
        key = e[0] if e[0] != "NM1" else f"NM1{e[1] if len(e) > 1 else ''}"
        found.setdefault(key, e)
    return found


def _el(e: list[str] | None, k: int, limit: int, default: str = "") -> str:
    return (ack_element(e[k], limit) if e is not None and len(e) > k else "") or default


def _billing(segments: list[str], hl_billing: int, sep: str) -> tuple[tuple[str, ...], str | None]:
    """The 2010AA NM1*85 elements and REF*EI (tax id) of the billing provider whose HL is at `hl_billing`."""
    nm1, ein = ("NM1", "85", "2"), None
    for text in segments[hl_billing + 1:]:
        e = text.split(sep)
        if e[0] == "HL":
            break
        if e[0] == "NM1" and len(e) > 1 and e[1] == "85":
            nm1 = tuple(e)
        elif e[0] == "REF" and len(e) > 2 and e[1] == "EI":
            ein = ack_element(e[2], 50) or None
    return nm1, ein


def _patient(claim: Claim) -> list[str]:
    """2100D NM1*QC: the patient's name and the subscriber's member id (5010 patients have no own id)."""
    p = claim.patient or claim.subscriber
    return ["NM1", "QC", "1", ack_element(p.last_name or "", 60) or "UNKNOWN", ack_element(p.first_name or "", 35), "", "",
            "", "MI", ack_element(claim.subscriber.member_id or "", 80) or "UNKNOWN"]


def _service_span(claim: Claim) -> str | None:
    dates = [d for ln in claim.lines for d in (ln.service_date, ln.service_date_end) if d]
    if claim.service_date:
        dates.append(claim.service_date)
    if not dates:
        return None
    lo, hi = min(dates), max(dates)
    return f"DTP*472*D8*{_d8(lo)}" if lo == hi else f"DTP*472*RD8*{_d8(lo)}-{_d8(hi)}"


def _claim_ref(claim: Claim, sep: str, qualifier: str) -> str | None:
    """The claim's 2300 REF of this qualifier (the first before its first LX), made safe, or None."""
    ref, lx = f"REF{sep}{qualifier}{sep}", f"LX{sep}"
    for text in claim.segments[claim.start:claim.end]:
        if text.startswith(lx) or text == "LX":
            break
        if text.startswith(ref):
            return ack_element(text.split(sep)[2], 50) or None
    return None


def _claim_loop(o: ClaimOutcome, sep: str, today: str) -> list[str]:
    """2200D (and its 2220D lines) for one claim."""
    claim = o.claim
    charge = _amount(claim.total_charge)
    out = [f"TRN*2*{ack_element(claim.patient_control_number, 50) or '0'}"]
    if o.sent:
        out.append(f"STC*{_ACCEPTED_STC01}*{today}*WQ*{charge}")
    for r in o.rejections:  # STC01, 02 date, 03 U (reject), 04 charge, 10 second code, 12 the rule id
        stc01, stc10 = _stc(r)
        out.append("*".join(["STC", stc01, today, "U", charge, "", "", "", "", "", stc10, "", ack_element(r.reason, 264)]))
    d9 = _claim_ref(claim, sep, "D9")
    if d9:
        out.append(f"REF*D9*{d9}")
    span = _service_span(claim)
    if span:
        out.append(span)
    seen: set[int] = set()
    for r in o.rejections:
        ln = r.line
        if ln is None or id(ln) in seen:
            continue
        seen.add(id(ln))
        proc = ":".join(["HC", ack_element(ln.procedure, 48) or "UNKNOWN", *(ack_element(m, 2) for m in ln.modifiers[:4])])
        svc = ["SVC", proc, _amount(ln.charge)]
        if ln.units is not None:
            svc += ["", "", "", "", _amount(ln.units)]
        out.append("*".join(svc))
        codes = [c for r2 in o.rejections if r2.line is ln for c in _stc(r2) if c]
        stc = [f"STC*{codes[0]}*{today}*U"] + (["", "", "", "", "", ""] + codes[1:3] if len(codes) > 1 else [])
        out.append("*".join(stc))  # one STC per line (TR3 max use 1): further codes in STC10 and STC11
        if ln.control_number:
            out.append(f"REF*FJ*{ack_element(ln.control_number, 50)}")
        if ln.service_date:
            out.append(f"DTP*472*D8*{_d8(ln.service_date)}")
    return out


def _totals(outcomes: Sequence[ClaimOutcome], quals: tuple[str, str]) -> list[str]:
    """QTY/AMT accepted and rejected (only those that are not zero)."""
    acc = [o for o in outcomes if o.sent]
    rej = [o for o in outcomes if not o.sent]
    out = []
    for qual, group in zip(quals, (acc, rej)):
        if group:
            out.append(f"QTY*{qual}*{len(group)}")
    for qual, group in (("YU", acc), ("YY", rej)):
        if group:
            out.append(f"AMT*{qual}*{_amount(sum((o.claim.total_charge or Decimal(0) for o in group), Decimal(0)))}")
    return out


def _transaction(outcomes: list[ClaimOutcome], st02: str, trace: str, now: datetime, received: date) -> list[str]:
    """One 277 set answering one 837 set: source (us, the 837's receiver), receiver (its submitter),
    billing providers, patients and claims."""
    first = outcomes[0].claim
    sep = first.segments[0][2:3] or "*"
    head = _header(first.segments, sep)
    today = _d8(now.date())
    bht, sub, rcv = head.get("BHT"), head.get("NM141"), head.get("NM140")
    total = _amount(sum((o.claim.total_charge or Decimal(0) for o in outcomes), Decimal(0)))
    segs = [f"ST*277*{st02}*005010X214", f"BHT*0085*08*{trace}*{today}*{now:%H%M%S}*TH",
            "HL*1**20*1",
            f"NM1*AY*2*{_el(rcv, 3, 60, 'CLEARINGHOUSE')}*****46*{_el(rcv, 9, 80, 'UNKNOWN')}",
            f"TRN*1*{trace}", f"DTP*050*D8*{_d8(received)}", f"DTP*009*D8*{today}",
            "HL*2*1*21*1",
            f"NM1*41*{_el(sub, 2, 1, '2')}*{_el(sub, 3, 60, 'SUBMITTER')}*{_el(sub, 4, 35)}*{_el(sub, 5, 25)}"
            f"***46*{_el(sub, 9, 80, 'UNKNOWN')}",
            f"TRN*2*{_el(bht, 3, 50, '0')}",
            f"STC*A1:20*{today}*WQ*{total}", *_totals(outcomes, ("90", "AA"))]
    billing: dict[int, tuple] = {}  # HL offset -> its provider, read once per set
    providers: dict[tuple, list[ClaimOutcome]] = {}
    for o in outcomes:
        k = o.claim.hl_billing
        if k not in billing:
            billing[k] = _billing(first.segments, k, sep)
        providers.setdefault(billing[k], []).append(o)
    hl = 2
    for (nm1, ein), group in providers.items():
        hl += 1
        provider_hl = hl
        nm1 = list(nm1) + [""] * 10
        qual = nm1[8] if nm1[8] in ("FI", "SV", "XX") else "XX"
        charges = _amount(sum((o.claim.total_charge or Decimal(0) for o in group), Decimal(0)))
        segs += [f"HL*{hl}*2*19*1",
                 "*".join(["NM1", "85", nm1[2] if nm1[2] in ("1", "2") else "2", ack_element(nm1[3], 60) or "PROVIDER",
                           ack_element(nm1[4], 35), ack_element(nm1[5], 25), "", ack_element(nm1[7], 10), qual,
                           ack_element(nm1[9], 80) or "UNKNOWN"]),
                 "TRN*1*0", f"STC*A1:20**WQ*{charges}"]
        if ein:
            segs.append(f"REF*TJ*{ein}")
        segs += _totals(group, ("QA", "QC"))
        for o in group:
            hl += 1
            segs += [f"HL*{hl}*{provider_hl}*PT", "*".join(_patient(o.claim))]
            segs += _claim_loop(o, sep, today)
    segs.append(f"SE*{len(segs) + 1}*{st02}")
    return segs


def _envelope(isa: Sequence[str], gs: Sequence[str] | None, control: int, now: datetime) -> list[str]:
    """ISA and GS of the 277CA answering an interchange: sender and receiver swapped."""
    gs = list(gs or []) + [""] * 9
    return [reply_isa(Isa.of(isa), f"{control:09d}", now),
            f"GS*HN*{ack_element(gs[3], 15) or 'RECEIVER'}*{ack_element(gs[2], 15) or 'SENDER'}*{now:%Y%m%d}*{now:%H%M}*"
            f"{control}*X*005010X214"]


def _trailer(sets: int, control: int) -> list[str]:
    return [f"GE*{sets}*{control}", f"IEA*1*{control:09d}"]


def _text(segs: list[str]) -> str:
    return "~\n".join(segs) + "~\n" if segs else ""


def build_277ca(outcomes: Iterable[ClaimOutcome], isa: Sequence[str], gs: Sequence[str] | None, control: int,
                now: datetime | None = None, received: date | None = None) -> str | None:
    """The 277CA interchange answering the 837P interchange whose ISA and GS elements are `isa` and `gs`:
    one 277 set per 837 set (claims in their input order), under interchange and group control number
    `control` (the caller takes it from the acknowledgment sequence, validate.take_control_numbers).
    `received` is the day the 837 came in (DTP*050; default today). None when there is no claim."""
    now = now or datetime.now(timezone.utc)
    sets: dict[int, list[ClaimOutcome]] = {}
    for o in outcomes:
        sets.setdefault(id(o.claim.segments), []).append(o)
    if not sets:
        return None
    body: list[str] = []
    for n, group in enumerate(sets.values(), start=1):
        body += _transaction(group, f"{n:04d}", f"{control}{n:04d}", now, received or now.date())
    return _text([*_envelope(isa, gs, control, now), *body, *_trailer(len(sets), control)])


def write_277cas(source: str | os.PathLike | bytes | BinaryIO, findings: Iterable[Finding], ack_dir: Path,
                 name: str, controls: Iterator[int], withheld: Collection[tuple[int, str, str]] = (),
                 now: datetime | None = None, received: date | None = None) -> list[Path]:
    """One 277CA per 837P interchange of a scrubbed file (see set_outcomes) as ACK_DIR/<name>.<ISA13>.277,
    each under the next number of `controls` (e.g. iter(validate.take_control_numbers(ACK_DIR, count of
    837P interchanges))). Written set by set, so memory holds one 837 set; each file appears whole (atomic)
    and private (0600: it names patients). Names are made safe (paths.safe_name, safe_part)."""
    now = now or datetime.now(timezone.utc)
    received = received or now.date()
    sets = ((isa_index, isa, gs, lambda control, n, outcomes=outcomes:
             _text(_transaction(outcomes, f"{n:04d}", f"{control}{n:04d}", now, received)))
            for isa_index, isa, gs, outcomes in set_outcomes(source, findings, withheld))
    return _write_interchanges(sets, ack_dir, name, controls, now)


def _write_interchanges(sets: Iterable[tuple[int, Sequence[str], Sequence[str], Callable[[int, int], str]]],
                        ack_dir: Path, name: str, controls: Iterator[int], now: datetime) -> list[Path]:
    """write_277cas given each 277 set as (ISA index, ISA elements, GS elements, text of (control, set number))."""
    target = AckNames(ack_dir, name)
    written: list[Path] = []
    with contextlib.ExitStack() as stack:
        out = None
        current = None
        n = control = 0
        for isa_index, isa, gs, text in sets:
            if isa_index != current:
                if out is not None:
                    out.write(_text(_trailer(n, control)))
                    stack.close()
                current, n, control = isa_index, 0, next(controls)
                written.append(target(Isa.of(isa).control or "interchange", isa_index, "277"))
                out = stack.enter_context(atomic_output(written[-1]))
                out.write(_text(_envelope(isa, gs, control, now)))
            n += 1
            out.write(text(control, n))
        if out is not None:
            out.write(_text(_trailer(n, control)))
    return written


class AckSpool:
    """The 277CA sets of a file rendered while the scrub reads it (`add`, one 837P set at a time, spooled
    to an unnamed temporary file), numbered and written by `write` once the acknowledgment sequence can
    give their control numbers: what write_277cas would write, without reading the file again. `stale`
    says when it cannot stand for it (a claim held after another of its patient control number was
    answered: write_277cas answers both with every hold of that number), or a rendered set held the
    control-number mark; the caller then uses write_277cas."""

    _MARK = "\x1e"  # stands for the control number until it is known
    _BITS = 1 << 23  # of the filter of numbers answered so far (a false hit only costs the fallback)

    def __init__(self) -> None:
        self.holding: dict[str, list[Finding]] = {}
        self._answered = bytearray(self._BITS // 8)
        self.stale = False
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogateescape")
        self._sets: list[tuple[int, list[str], list[str], int, int]] = []  # isa index, isa, gs, offset, end
        self.now = datetime.now(timezone.utc)

    def _bits(self, pcn: str) -> tuple[int, int]:
        h = zlib.crc32(pcn.encode("utf-8", "surrogateescape"))
        return h % self._BITS, (h * 2654435761 >> 7) % self._BITS

    def add(self, isa_index: int, isa: list[str], gs: list[str], claims: list[Claim], issues: Iterable[Issue],
            findings: Iterable[Finding]) -> None:
        """One 837P set scrubbed: its claims, their parse issues and the set's findings."""
        held = {}
        for f in findings:
            if f.hold:
                held.setdefault(f.claim.patient_control_number, []).append(f)
        for pcn, fs in held.items():
            if all(self._answered[b >> 3] >> (b & 7) & 1 for b in self._bits(pcn)):
                self.stale = True  # maybe answered before without this hold
            self.holding.setdefault(pcn, []).extend(fs)
        if self.stale:
            return
        outcomes = _outcomes(claims, issues, self.holding)
        if not outcomes:
            return
        for o in outcomes:
            for b in self._bits(o.claim.patient_control_number):
                self._answered[b >> 3] |= 1 << (b & 7)
        text = _text(_transaction(outcomes, "\x1f", f"{self._MARK}\x1f", self.now, self.now.date()))
        if text.count(self._MARK) != 2 or text.count("\x1f") != 4:  # BHT03, TRN02; ST02, SE02 and both
            self.stale = True
            return
        start = self._spool.tell()
        self._spool.write(text)
        self._sets.append((isa_index, isa, gs, start, self._spool.tell()))

    def write(self, ack_dir: Path, name: str, controls: Iterator[int]) -> list[Path]:
        """The 277CAs, as write_277cas(source, findings, ack_dir, name, controls, withheld) writes them."""
        spool = self._spool

        def text(offset: int, end: int) -> Callable[[int, int], str]:
            def numbered(control: int, n: int) -> str:
                spool.seek(offset)
                return spool.read(end - offset).replace(self._MARK, str(control)).replace("\x1f", f"{n:04d}")
            return numbered

        try:
            return _write_interchanges(((i, isa, gs, text(a, b)) for i, isa, gs, a, b in self._sets), ack_dir,
                                       name, controls, self.now)
        finally:
            spool.close()


def set_outcomes(source: str | os.PathLike | bytes | BinaryIO, findings: Iterable[Finding],
                 withheld: Collection[tuple[int, str, str]] = (), filename: str | None = None
                 ) -> Iterator[tuple[int, list[str], list[str], list[ClaimOutcome]]]:
    """(ISA segment index, ISA elements, first GS elements of the interchange, outcomes) for each 837P set
    of a scrubbed file, given the scrub's findings (claims are matched by patient control number) and the
    sets its 999 rejected (`withheld`, as scrub_file takes them: the 999 answered those, so their claims
    are left out). A claim with an error in its own segments is rejected for it. One set in memory at a
    time; reading never raises for bad content past the first ISA."""
    holding: dict[str, list[Finding]] = {}
    for f in findings:
        if f.hold:
            holding.setdefault(f.claim.patient_control_number, []).append(f)
    isa: list[str] = []
    gs: list[str] = []
    isa_index = 0
    gs06 = ""
    with EnvelopeReader(source, filename) as env:
        for item in env:
            if isinstance(item, EnvelopeSegment):
                if item.tag == "ISA":
                    isa, gs, isa_index = item.elements, [], item.index
                elif item.tag == "GS":
                    gs = gs or item.elements
                    gs06 = gs_control(item.elements)
                continue
            if (kind_of(item) is not Kind.CLAIM_837P or not isa
                    or (isa_index, gs06, item.control_number.strip()) in withheld):
                continue
            issues = IssueList()
            claims = list(parse_837p(item, issues))
            outcomes = _outcomes(claims, issues, holding)
            if outcomes:
                yield isa_index, isa, gs, outcomes
            del item, claims, outcomes


def _outcomes(claims: list[Claim], issues: Iterable[Issue], holding: dict[str, list[Finding]]) -> list[ClaimOutcome]:
    """Each claim's outcome: the holds of its patient control number and the errors in its own segments."""
    errors = [i for i in issues if i.severity is Severity.ERROR and i.pos.st_position]
    return [ClaimOutcome.of(c, holding.get(c.patient_control_number, ()),
                            [i for i in errors if c.start < i.pos.st_position <= c.end] if errors else ())
            for c in claims]


def interchange_outcomes(source: str | os.PathLike | bytes | BinaryIO, findings: Iterable[Finding],
                         withheld: Collection[tuple[int, str, str]] = (), filename: str | None = None
                         ) -> Iterator[tuple[list[str], list[str], list[ClaimOutcome]]]:
    """set_outcomes gathered per interchange: (ISA elements, first GS elements, outcomes), for build_277ca."""
    for _index, group in itertools.groupby(set_outcomes(source, findings, withheld, filename), key=lambda x: x[0]):
        sets = list(group)
        yield sets[0][1], sets[0][2], [o for _i, _isa, _gs, outcomes in sets for o in outcomes]
