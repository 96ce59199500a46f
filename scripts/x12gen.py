"""Builders that turn plain dataclasses into 005010X222A1 837P and 005010X221A1 835 X12 text (fake data only)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Iterable, Sequence

V837 = "005010X222A1"
V835 = "005010X221A1"

SURNAMES = ["QUILLFEATHER", "BRAMBLEWICK", "TANSYMORE", "OAKENHURST", "VELLACOTT", "MARROWFIELD",
            "PENNYWHISTLE", "DRAYCOMBE", "LINTHWAITE", "CORVALIS", "FENNIMORE", "HOLLOWAYNE",
            "ASHGROVE", "THISTLEDOWN", "WRENFORD", "KESTRELL", "BARLOWEN", "MOSSBECK",
            "PERIWINKLE", "GLADSTRAND", "ORMSKIRKE", "TREMAYNE", "UPPERTHWAITE", "ZELLWOOD"]
FIRSTNAMES = ["ALDA", "BRIN", "CALLA", "DORIAN", "ELSPETH", "FINNICK", "GWYNETH", "HOLLIS",
              "ISOLDE", "JASPER", "KEZIA", "LORCAN", "MIRABEL", "NOLAN", "OPHIRA", "PERRIN",
              "QUINTA", "ROWAN", "SABLE", "TIBOR", "ULRIKA", "VESPER", "WILLA", "XANDER"]
STREETS = ["LANTERN WAY", "COBBLE ROW", "MILLRACE RD", "FERNHILL AVE", "SPARROW LN", "QUARRY ST",
           "HEDGEROW CT", "TALLOW DR"]
CITIES = [("SPRINGVALE", "OH", "43001"), ("MAPLECROFT", "PA", "17001"), ("RIVERBEND", "NY", "12001"),
          ("ELMSTEAD", "NJ", "07001"), ("CEDARPORT", "MI", "48001"), ("HARTWELL", "IL", "60001")]


# ----------------------------------------------------------------------------- helpers

def luhn_ok_npi(npi: str) -> bool:
    """True when the 10-digit NPI passes the Luhn check with the 80840 prefix."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    return _luhn_sum("80840" + npi) % 10 == 0


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def make_npi(seed_int: int) -> str:
    """Deterministic fake, Luhn-valid NPI (first digit 1) from an integer seed."""
    base = "1" + f"{(seed_int * 7919 + 12345) % 100_000_000:08d}"
    for check in "0123456789":
        if luhn_ok_npi(base + check):
            return base + check
    raise AssertionError("unreachable")


class Cents(int):
    """An amount already in integer cents (fast path for generators); plain int/float/str mean dollars."""


def to_cents(amount) -> int:
    """Dollars (int/float/str/Decimal) to integer cents; a Cents value passes through."""
    if isinstance(amount, Cents):
        return int(amount)
    if isinstance(amount, int):
        return amount * 100
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1)))


def fmt_cents(cents: int) -> str:
    """Integer cents as X12 money without trailing zeros: 10000 -> '100', 3750 -> '37.5'."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return f"{sign}{whole}"
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


def fmt_money(amount) -> str:
    """Dollars (int/float/str/Decimal) or Cents as X12 money without trailing zeros."""
    return fmt_cents(to_cents(amount))


def fmt_qty(q) -> str:
    """Quantity without trailing zeros (2 -> '2', 1.5 -> '1.5')."""
    if isinstance(q, int):
        return str(q)
    return format(Decimal(str(q)).normalize(), "f")


def seg(*elements) -> str:
    """Join elements with '*' and drop trailing empty elements (no terminator)."""
    els = ["" if e is None else str(e) for e in elements]
    while len(els) > 1 and els[-1] == "":
        els.pop()
    return "*".join(els)


def fake_name(seed_int: int) -> tuple[str, str]:
    return SURNAMES[seed_int % len(SURNAMES)], FIRSTNAMES[(seed_int // len(SURNAMES)) % len(FIRSTNAMES)]


def fake_address(seed_int: int) -> "Address":
    city, st, zp = CITIES[seed_int % len(CITIES)]
    return Address(f"{100 + (seed_int * 37) % 8900} {STREETS[seed_int % len(STREETS)]}", city, st,
                   zp[:3] + f"{(seed_int % 90) + 10:02d}")


# ----------------------------------------------------------------------------- data model

@dataclass
class Address:
    line1: str
    city: str
    state: str
    zip: str


@dataclass
class Person:
    last: str
    first: str
    member_id: str = ""
    dob: str = "19600101"
    sex: str = "F"
    address: Address | None = None


@dataclass
class Provider:
    """Billing (entity '2') or rendering (entity '1') provider."""
    last: str
    npi: str
    first: str = ""
    entity: str = "1"
    taxonomy: str = "208VP0014X"
    tax_id: str = "990000001"
    address: Address | None = None


@dataclass
class Payer:
    name: str
    payer_id: str
    filing: str = "CI"  # SBR09 / CLP06


@dataclass
class Line:
    code: str
    charge: object  # dollars
    units: object = 1
    modifiers: Sequence[str] = ()
    pointers: Sequence[int] = (1,)
    dos: str = ""  # YYYYMMDD; defaults to claim dos
    desc: str = ""  # SV101-7
    ctrl: str = ""  # REF*6R; defaults to <PCN>-<n>
    auth: str = ""  # line REF*G1


@dataclass
class Claim:
    pcn: str
    subscriber: Person
    payer: Payer
    dx: Sequence[str]
    lines: Sequence[Line]
    dos: str = "20261001"
    patient: Person | None = None  # set when patient != subscriber (2000C)
    relationship: str = "01"  # PAT01 when patient differs
    rendering: Provider | None = None
    pos: str = "11"
    freq: str = "1"
    auth: str = ""  # 2300 REF*G1
    orig_ref: str = ""  # 2300 REF*F8
    total: object = None  # CLM02 override (TOTAL-MISMATCH fixtures)
    case_ref: str = ""  # 2010BA REF*Y4 property & casualty claim number (WC / no-fault)
    accident_date: str = ""  # DTP*439
    related_cause: str = ""  # CLM11, e.g. 'EM' or 'AA:::NY'
    other_payer: Payer | None = None  # the subscriber's secondary coverage: 2320 (SBR01 S) + 2330A/2330B
    other_member_id: str = ""  # 2330A NM109 (the subscriber's id with the other payer)

    @property
    def filing(self) -> str:
        return self.payer.filing


@dataclass
class Envelope:
    sender: str = "PAINCLINIC01"
    receiver: str = "CLEARHOUSE01"
    date: str = "20261201"  # CCYYMMDD
    time: str = "1200"
    control: int = 1  # ISA13
    usage: str = "T"


@dataclass
class Submission837:
    billing: Provider
    claims: Sequence[Claim]
    submitter_name: str = "LANTERN PAIN BILLING"
    submitter_id: str = "PAINCLINIC01"
    receiver_name: str = "NORTHWIND CLEARINGHOUSE"
    receiver_id: str = "CLEARHOUSE01"
    batch_id: str = "BATCH0001"
    date: str = "20261201"
    time: str = "1200"


@dataclass
class Adj:
    group: str
    reason: str
    amount: object  # dollars; positive reduces payment
    qty: object = None


@dataclass
class ServicePay:
    code: str
    charge: object
    paid: object = None  # None: computed as charge - sum(adjs)
    units: object = 1
    modifiers: Sequence[str] = ()
    dos: str = ""
    adjs: Sequence[Adj] = ()
    ctrl: str = ""  # REF*6R
    allowed: object = None  # AMT*B6
    remarks: Sequence[str] = ()  # LQ*HE
    orig_code: str = ""  # SVC06: the submitted code when the payer adjudicated another one (SVC01)
    orig_modifiers: Sequence[str] = ()  # SVC06 modifiers


@dataclass
class ClaimPay:
    pcn: str
    status: str
    charge: object
    patient: Person
    services: Sequence[ServicePay] = ()
    paid: object = None  # None: computed
    patient_resp: object = None  # None: sum of PR adjustments
    filing: str = "MB"
    payer_claim_no: str = ""
    freq: str = "1"
    pos: str = "11"
    adjs: Sequence[Adj] = ()  # claim-level CAS
    rendering: Provider | None = None
    start: str = ""  # DTM*232
    end: str = ""  # DTM*233


@dataclass
class Plb:
    provider_id: str
    fiscal_end: str
    reason: str  # e.g. 'WO:ABC' or 'L6'
    amount: object  # positive reduces payment


@dataclass
class Remit835:
    payer: Payer
    payee: Provider
    claims: Sequence[ClaimPay]
    pay_date: str = "20261105"
    trace: str = "TRACE0001"
    plb: Sequence[Plb] = ()
    total: object = None  # BPR02 override (unbalanced fixtures)
    payer_address: Address | None = None


# ----------------------------------------------------------------------------- envelopes

def isa_segment(env: Envelope) -> str:
    return ("ISA*00*" + " " * 10 + "*00*" + " " * 10 + f"*ZZ*{env.sender:<15.15}*ZZ*{env.receiver:<15.15}*"
            f"{env.date[2:]}*{env.time}*^*00501*{env.control:09d}*0*{env.usage}*:")


def gs_segment(fic: str, env: Envelope, gs_ctrl: int, version: str) -> str:
    return seg("GS", fic, env.sender, env.receiver, env.date, env.time, gs_ctrl, "X", version)


class InterchangeWriter:
    """Streams ISA/GS/ST.../GE/IEA to a text handle, keeping GE01/IEA01 counts."""

    def __init__(self, fh: IO[str], env: Envelope, term: str = "~", newline: str = "\n"):
        self.fh, self.env, self.end = fh, env, term + newline
        self.groups = 0
        self.sets = 0
        self.gs_ctrl = 0
        self.fh.write(isa_segment(env) + self.end)

    def open_group(self, fic: str, version: str, gs_ctrl: int | None = None) -> None:
        self.groups += 1
        self.sets = 0
        self.gs_ctrl = gs_ctrl if gs_ctrl is not None else self.env.control * 100 + self.groups
        self.fh.write(gs_segment(fic, self.env, self.gs_ctrl, version) + self.end)

    def write_set(self, segments: Sequence[str]) -> None:
        """Write one ST..SE transaction set (segments without terminators)."""
        self.sets += 1
        self.fh.write(self.end.join(segments) + self.end)

    def close_group(self) -> None:
        self.fh.write(seg("GE", self.sets, self.gs_ctrl) + self.end)

    def close(self) -> None:
        self.fh.write(seg("IEA", self.groups, f"{self.env.control:09d}") + self.end)


def interchange_text(env: Envelope, fic: str, version: str, sets: Sequence[Sequence[str]],
                     term: str = "~", newline: str = "\n") -> str:
    """A whole ISA..IEA with one GS holding the given transaction sets."""
    import io
    buf = io.StringIO()
    w = InterchangeWriter(buf, env, term, newline)
    w.open_group(fic, version)
    for s in sets:
        w.write_set(s)
    w.close_group()
    w.close()
    return buf.getvalue()


def _close_set(segs: list[str], st_ctrl: str) -> list[str]:
    segs.append(seg("SE", len(segs) + 1, st_ctrl))
    return segs


# ----------------------------------------------------------------------------- 837P

def _nm1_person(code: str, p: Person | Provider, id_qual: str = "", ident: str = "") -> str:
    return seg("NM1", code, "1", p.last, p.first, "", "", "", id_qual, ident)


def _addr(a: Address | None) -> list[str]:
    if a is None:
        return []
    return [seg("N3", a.line1), seg("N4", a.city, a.state, a.zip)]


def sv101(code: str, modifiers: Sequence[str] = (), desc: str = "") -> str:
    parts = ["HC", code, *list(modifiers)[:4]]
    if desc:
        parts += [""] * (6 - len(parts)) + [desc]
    return ":".join(parts)


def claim_total_cents(claim: Claim) -> int:
    return sum(to_cents(l.charge) for l in claim.lines)


def claim_segments_837(claim: Claim, hl_start: int, billing_hl: int = 1) -> tuple[list[str], int]:
    """2000B(/2000C)/2300/2310B/2400 segments for one claim; returns (segments, next free HL number)."""
    out: list[str] = []
    hl = hl_start
    sub = claim.subscriber
    is_self = claim.patient is None
    out.append(seg("HL", hl, billing_hl, "22", "0" if is_self else "1"))
    out.append(seg("SBR", "P", "18" if is_self else "", "", "", "", "", "", "", claim.payer.filing))
    out.append(_nm1_person("IL", sub, "MI", sub.member_id))
    out += _addr(sub.address)
    out.append(seg("DMG", "D8", sub.dob, sub.sex))
    if claim.case_ref:
        out.append(seg("REF", "Y4", claim.case_ref))
    out.append(seg("NM1", "PR", "2", claim.payer.name, "", "", "", "", "PI", claim.payer.payer_id))
    sub_hl = hl
    hl += 1
    if not is_self:
        pat = claim.patient
        out.append(seg("HL", hl, sub_hl, "23", "0"))
        out.append(seg("PAT", claim.relationship))
        out.append(_nm1_person("QC", pat))
        out += _addr(pat.address or sub.address)
        out.append(seg("DMG", "D8", pat.dob, pat.sex))
        hl += 1
    total = claim_total_cents(claim) if claim.total is None else to_cents(claim.total)
    out.append(seg("CLM", claim.pcn, fmt_cents(total), "", "", f"{claim.pos}:B:{claim.freq}", "Y", "A", "Y",
                   "Y", "", claim.related_cause))
    if claim.accident_date:
        out.append(seg("DTP", "439", "D8", claim.accident_date))
    if claim.auth:
        out.append(seg("REF", "G1", claim.auth))
    if claim.orig_ref:
        out.append(seg("REF", "F8", claim.orig_ref))
    hi = [("ABK" if i == 0 else "ABF") + ":" + d.replace(".", "") for i, d in enumerate(claim.dx[:12])]
    out.append(seg("HI", *hi))
    if claim.rendering is not None:
        r = claim.rendering
        out.append(_nm1_person("82", r, "XX", r.npi))
        out.append(seg("PRV", "PE", "PXC", r.taxonomy))
    if claim.other_payer is not None:
        o = claim.other_payer
        out.append(seg("SBR", "S", "18", "", "", "", "", "", "", o.filing))
        out.append(seg("OI", "", "", "Y", "", "", "Y"))
        out.append(_nm1_person("IL", sub, "MI", claim.other_member_id or sub.member_id))
        out += _addr(sub.address)
        out.append(seg("NM1", "PR", "2", o.name, "", "", "", "", "PI", o.payer_id))
    for n, line in enumerate(claim.lines, 1):
        out.append(seg("LX", n))
        out.append(seg("SV1", sv101(line.code, line.modifiers, line.desc), fmt_money(line.charge), "UN",
                       fmt_qty(line.units), "", "", ":".join(str(p) for p in line.pointers)))
        out.append(seg("DTP", "472", "D8", line.dos or claim.dos))
        if line.auth:
            out.append(seg("REF", "G1", line.auth))
        out.append(seg("REF", "6R", line.ctrl or f"{claim.pcn}-{n}"))
    return out, hl


def header_segments_837(sub: Submission837, st_ctrl: str, version: str = V837) -> list[str]:
    b = sub.billing
    segs = [
        seg("ST", "837", st_ctrl, version),
        seg("BHT", "0019", "00", sub.batch_id, sub.date, sub.time, "CH"),
        seg("NM1", "41", "2", sub.submitter_name, "", "", "", "", "46", sub.submitter_id),
        seg("PER", "IC", "BILLING DESK", "TE", "5555550100"),
        seg("NM1", "40", "2", sub.receiver_name, "", "", "", "", "46", sub.receiver_id),
        seg("HL", 1, "", "20", "1"),
        seg("PRV", "BI", "PXC", b.taxonomy),
        seg("NM1", "85", "2", b.last, "", "", "", "", "XX", b.npi),
    ]
    segs += _addr(b.address or Address("1 CLINIC PLAZA", "SPRINGVALE", "OH", "430011234"))
    segs.append(seg("REF", "EI", b.tax_id))
    return segs


def build_837_set(sub: Submission837, st_ctrl: str = "0001", version: str = V837) -> list[str]:
    """One complete ST..SE 837P transaction set (segments without terminators), SE01 counted."""
    segs = header_segments_837(sub, st_ctrl, version)
    hl = 2
    for claim in sub.claims:
        cs, hl = claim_segments_837(claim, hl)
        segs += cs
    return _close_set(segs, st_ctrl)


def build_837(sub: Submission837, env: Envelope | None = None, version: str = V837,
              term: str = "~", newline: str = "\n") -> str:
    """Whole 837P interchange (1 ISA, 1 GS, 1 ST) as text."""
    env = env or Envelope(sender=sub.submitter_id, receiver=sub.receiver_id, date=sub.date, time=sub.time)
    return interchange_text(env, "HC", version, [build_837_set(sub, "0001", version)], term, newline)


# ----------------------------------------------------------------------------- 835

CLP06_VALID = {"12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF", "TV",
               "VA", "WC", "ZZ"}


def clp06_for(sbr09: str) -> str:
    """835 CLP06 for an 837 SBR09: CI/BL and other codes the 835 lacks become 12 (PPO)."""
    return sbr09 if sbr09 in CLP06_VALID else "12"


def service_paid_cents(s: ServicePay) -> int:
    if s.paid is not None:
        return to_cents(s.paid)
    return to_cents(s.charge) - sum(to_cents(a.amount) for a in s.adjs)


def claim_paid_cents(c: ClaimPay) -> int:
    if c.paid is not None:
        return to_cents(c.paid)
    return to_cents(c.charge) - sum(to_cents(a.amount) for a in c.adjs) - sum(
        sum(to_cents(a.amount) for a in s.adjs) for s in c.services)


def claim_pr_cents(c: ClaimPay) -> int:
    if c.patient_resp is not None:
        return to_cents(c.patient_resp)
    return sum(to_cents(a.amount) for a in c.adjs if a.group == "PR") + sum(
        to_cents(a.amount) for s in c.services for a in s.adjs if a.group == "PR")


def remit_total_cents(r: Remit835) -> int:
    if r.total is not None:
        return to_cents(r.total)
    return sum(claim_paid_cents(c) for c in r.claims) - sum(to_cents(p.amount) for p in r.plb)


def cas_segments(adjs: Sequence[Adj]) -> list[str]:
    """Group adjustments by CAS01, up to 6 triplets per CAS segment."""
    out: list[str] = []
    order: list[str] = []
    by_group: dict[str, list[Adj]] = {}
    for a in adjs:
        if a.group not in by_group:
            order.append(a.group)
            by_group[a.group] = []
        by_group[a.group].append(a)
    for g in order:
        items = by_group[g]
        for i in range(0, len(items), 6):
            els: list[str] = ["CAS", g]
            for a in items[i:i + 6]:
                els += [a.reason, fmt_money(a.amount), "" if a.qty is None else fmt_qty(a.qty)]
            out.append(seg(*els))
    return out


def claim_segments_835(c: ClaimPay) -> list[str]:
    """2100 CLP loop with its 2110 SVC loops."""
    out = [seg("CLP", c.pcn, c.status, fmt_money(c.charge), fmt_cents(claim_paid_cents(c)),
               fmt_cents(claim_pr_cents(c)), c.filing, c.payer_claim_no, c.pos, c.freq)]
    out += cas_segments(c.adjs)
    out.append(_nm1_person("QC", c.patient, "MI" if c.patient.member_id else "", c.patient.member_id))
    if c.rendering is not None:
        out.append(_nm1_person("82", c.rendering, "XX", c.rendering.npi))
    if c.start:
        out.append(seg("DTM", "232", c.start))
    if c.end:
        out.append(seg("DTM", "233", c.end))
    for s in c.services:
        out.append(seg("SVC", sv101(s.code, s.modifiers), fmt_money(s.charge), fmt_cents(service_paid_cents(s)),
                       "", fmt_qty(s.units), sv101(s.orig_code, s.orig_modifiers) if s.orig_code else ""))
        if s.dos:
            out.append(seg("DTM", "472", s.dos))
        out += cas_segments(s.adjs)
        if s.ctrl:
            out.append(seg("REF", "6R", s.ctrl))
        if s.allowed is not None:
            out.append(seg("AMT", "B6", fmt_money(s.allowed)))
        for rk in s.remarks:
            out.append(seg("LQ", "HE", rk))
    return out


def plb_segments(plbs: Sequence[Plb]) -> list[str]:
    """PLB adjustments grouped per provider + fiscal date, up to 6 reason/amount pairs per segment."""
    keys: list[tuple[str, str]] = []
    pairs: dict[tuple[str, str], list[str]] = {}
    for p in plbs:
        k = (p.provider_id, p.fiscal_end)
        if k not in pairs:
            keys.append(k)
            pairs[k] = []
        pairs[k] += [p.reason, fmt_money(p.amount)]
    out = []
    for k in keys:
        items = pairs[k]
        for i in range(0, len(items), 12):
            out.append(seg("PLB", k[0], k[1], *items[i:i + 12]))
    return out


def header_segments_835(r: Remit835, st_ctrl: str) -> list[str]:
    total = remit_total_cents(r)
    if total > 0:
        bpr = seg("BPR", "I", fmt_cents(total), "C", "ACH", "CCP", "01", "011000015", "DA", "123456789",
                  "1990000001", "", "01", "021000021", "DA", "987654321", r.pay_date)
    else:
        bpr = seg("BPR", "H", fmt_cents(total), "C", "NON", "", "", "", "", "", "", "", "", "", "", "",
                  r.pay_date)
    pa = r.payer_address or Address("PO BOX 4400", "HARTWELL", "IL", "600014400")
    p = r.payee
    segs = [seg("ST", "835", st_ctrl), bpr, seg("TRN", "1", r.trace, "1990000001"), seg("DTM", "405", r.pay_date),
            seg("N1", "PR", r.payer.name), *_addr(pa), seg("REF", "2U", r.payer.payer_id),
            seg("PER", "BL", "PROVIDER SERVICES", "TE", "8005550199"),
            seg("N1", "PE", p.last, "XX", p.npi),
            *_addr(p.address or Address("1 CLINIC PLAZA", "SPRINGVALE", "OH", "430011234")),
            seg("REF", "TJ", p.tax_id)]
    return segs


def build_835_set(r: Remit835, st_ctrl: str = "0001") -> list[str]:
    """One complete ST..SE 835 set; BPR02 = sum CLP04 - sum PLB unless r.total overrides."""
    segs = header_segments_835(r, st_ctrl)
    if r.claims:
        segs.append(seg("LX", 1))
        for c in r.claims:
            segs += claim_segments_835(c)
    segs += plb_segments(r.plb)
    return _close_set(segs, st_ctrl)


def build_835(remits: Sequence[Remit835], env: Envelope | None = None, term: str = "~",
              newline: str = "\n") -> str:
    """Whole 835 interchange (1 ISA, 1 GS, one ST per remit) as text."""
    env = env or Envelope(sender="PAYERSYS01", receiver="PAINCLINIC01")
    sets = [build_835_set(r, f"{i:04d}") for i, r in enumerate(remits, 1)]
    return interchange_text(env, "HP", V835, sets, term, newline)


# ----------------------------------------------------------------------------- checks used by tests

def split_segments(text: str) -> list[str]:
    """Split X12 text on '~' (ISA-declared terminator assumed '~'), stripping whitespace/BOM."""
    text = text.lstrip("\ufeff")
    return [s.strip() for s in text.split("~") if s.strip()]


def check_envelope_counts(text: str) -> list[str]:
    """Problems with SE01/GE01/IEA01 counts and control-number matches (empty list = fine)."""
    problems: list[str] = []
    st_start = None
    st_ctrl = ""
    sets_in_group = 0
    groups = 0
    gs_ctrl = ""
    isa_ctrl = ""
    for i, s in enumerate(split_segments(text)):
        e = s.split("*") + [""] * 3
        sid = e[0]
        if sid == "ISA" and len(e) > 14:
            isa_ctrl, groups = e[13], 0
        elif sid == "GS":
            gs_ctrl, sets_in_group, groups = e[6], 0, groups + 1
        elif sid == "ST":
            st_start, st_ctrl = i, e[2]
            sets_in_group += 1
        elif sid == "SE":
            n = i - st_start + 1 if st_start is not None else -1
            if e[1] != str(n) or e[2] != st_ctrl:
                problems.append(f"SE {e[1]}/{e[2]} vs {n}/{st_ctrl}")
            st_start = None
        elif sid == "GE":
            if st_start is not None:
                problems.append(f"ST {st_ctrl} without SE")
                st_start = None
            if e[1] != str(sets_in_group) or e[2] != gs_ctrl:
                problems.append(f"GE {e[1]}/{e[2]} vs {sets_in_group}/{gs_ctrl}")
        elif sid == "IEA":
            if st_start is not None:
                problems.append(f"ST {st_ctrl} without SE")
            if e[1] != str(groups) or e[2] != isa_ctrl:
                problems.append(f"IEA {e[1]}/{e[2]} vs {groups}/{isa_ctrl}")
            isa_ctrl = ""
    if st_start is not None or isa_ctrl:
        problems.append("missing trailers at end of file")
    return problems


def check_835_balance(text: str) -> list[str]:
    """Problems with line, claim and transaction balancing in an 835 (empty list = balanced)."""
    problems: list[str] = []

    def cents(v: str) -> int:
        try:
            return to_cents(v or "0")
        except ArithmeticError:
            problems.append(f"bad amount {v!r}")
            return 0

    bpr = None
    clp_sum = plb_sum = 0
    clp = None  # [pcn, charge, paid, adj_sum]
    svc = None  # [code, charge, paid, adj_sum]

    def close_svc():
        nonlocal svc
        if svc and svc[1] - svc[3] != svc[2]:
            problems.append(f"line {clp[0] if clp else '?'} {svc[0]}: {svc[1]}-{svc[3]}!={svc[2]}")
        svc = None

    def close_clp():
        nonlocal clp
        close_svc()
        if clp and clp[1] - clp[3] != clp[2]:
            problems.append(f"claim {clp[0]}: {clp[1]}-{clp[3]}!={clp[2]}")
        clp = None

    for s in split_segments(text):
        e = s.split("*") + [""] * 5
        sid = e[0]
        if sid == "BPR":
            bpr = cents(e[2])
        elif sid == "CLP":
            close_clp()
            clp = [e[1], cents(e[3]), cents(e[4]), 0]
            clp_sum += cents(e[4])
        elif sid == "SVC":
            close_svc()
            svc = [e[1], cents(e[2]), cents(e[3]), 0]
        elif sid == "CAS":
            amt = sum(cents(e[j]) for j in range(3, len(e), 3) if e[j])
            if clp:
                clp[3] += amt
            if svc:
                svc[3] += amt
        elif sid == "PLB":
            plb_sum += sum(cents(e[j]) for j in range(4, len(e), 2) if e[j])
        elif sid == "SE":
            close_clp()
            if bpr is not None and bpr != clp_sum - plb_sum:
                problems.append(f"BPR02 {bpr} != {clp_sum}-{plb_sum}")
            bpr, clp_sum, plb_sum = None, 0, 0
    return problems


def iter_npis(text: str) -> Iterable[str]:
    """Every NPI (XX-qualified NM1, N1*PE XX, PLB01) in the text."""
    for s in split_segments(text):
        e = s.split("*")
        if e[0] == "NM1" and len(e) > 9 and e[8] == "XX":
            yield e[9]
        elif e[0] == "N1" and len(e) > 4 and e[3] == "XX":
            yield e[4]


def pyx12_validate(text: str) -> tuple[bool, list[str]]:
    """Validate X12 text with pyx12; returns (ok, error strings from its JSON error output and log)."""
    import io
    import json
    import logging
    import os
    import tempfile

    import pyx12.params
    import pyx12.x12n_document

    class _Grab(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.msgs: list[str] = []

        def emit(self, record):
            self.msgs.append(record.getMessage())

    grab = _Grab()
    logger = logging.getLogger("pyx12")
    logger.addHandler(grab)
    fd, path = tempfile.mkstemp(suffix=".x12")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        fd_json = io.StringIO()
        try:
            ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), path, None, None, None, fd_json)
        except Exception as exc:  # pyx12 raises EngineError for unknown maps
            return False, [f"{type(exc).__name__}: {exc}"]
    finally:
        logger.removeHandler(grab)
        os.unlink(path)
    errors = list(grab.msgs)
    raw = fd_json.getvalue().strip()
    if raw:
        try:
            errors += _json_errors(json.loads(raw))
        except ValueError:
            errors.append(raw[:2000])
    return bool(ok) and not errors, errors


def _json_errors(node) -> list[str]:
    """Collect every non-empty 'errors' entry from pyx12's JSON error tree."""
    import json
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "errors" and v:
                out += [json.dumps(x, sort_keys=True) for x in v]
            else:
                out += _json_errors(v)
    elif isinstance(node, list):
        for x in node:
            out += _json_errors(x)
    return out
