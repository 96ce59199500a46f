"""837P (005010X222A1) transaction set to typed Claim records, one claim at a time."""

from __future__ import annotations

import functools
from typing import Iterator

from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import Issue, IssueList, Position
from edi_pipeline.tx.model import Claim, Party, Person, Provider, ServiceLine
from edi_pipeline.core.values import date_range, to_date, to_decimal

_DX_QUALIFIERS = frozenset(("ABK", "ABF", "BK", "BF"))


# Placeholders parse_claim's callers replace with the claim's real payer, subscriber and billing provider.
_NO_PARTY, _NO_PERSON, _NO_PROVIDER = Party(), Person(), Provider()


def _name(e: list[str]) -> str | None:
    last = e[3] if len(e) > 3 else ""
    first = e[4] if len(e) > 4 else ""
    name = f"{last}, {first}" if first else last
    return name or None


def parse_837p(tx: Transaction, issues: IssueList | None = None) -> Iterator[Claim]:
    """Yield each 2300 claim of an 837P transaction set in order."""
    segs = tx.segments
    lines = tx.lines
    sep = tx.delimiters.element
    comp = tx.delimiters.component
    file = tx.file
    base = tx.first_index
    n = len(segs)
    if n and segs[-1][:3] == "SE" + sep:
        n -= 1
    billing = Provider()
    payer = Party()
    subscriber = Person()
    patient: Person | None = None
    person = subscriber
    filing: str | None = None
    hl_billing = hl_subscriber = 0
    hl_patient: int | None = None
    in_billing_hl = False
    t_clm, t_hl, t_nm1, t_dmg, t_sbr, t_prv = (x + sep for x in ("CLM", "HL", "NM1", "DMG", "SBR", "PRV"))
    i = 1
    while i < n:
        text = segs[i]
        h = text[:4]
        if h == t_clm:
            claim, i = parse_claim(tx, segs, lines, i, n, sep, comp, file, base, issues)
            claim.claim_filing_indicator = filing
            claim.payer = payer
            claim.subscriber = subscriber
            claim.patient = patient
            claim.billing_provider = billing
            claim.hl_billing = hl_billing
            claim.hl_subscriber = hl_subscriber
            claim.hl_patient = hl_patient
            claim.tx_lines = lines
            claim.tx_first_index = base
            claim.delimiters = tx.delimiters
            yield claim
            continue
        if h == t_nm1:
            e = text.split(sep)
            q = e[1]
            if q == "85":
                billing.name = _name(e)
                billing.npi = e[9] if len(e) > 9 and e[8] == "XX" else billing.npi
            elif q == "IL":
                subscriber.last_name = e[3] if len(e) > 3 else None
                subscriber.first_name = (e[4] or None) if len(e) > 4 else None
                subscriber.member_id = e[9] if len(e) > 9 else None
                person = subscriber
            elif q == "PR":
                payer.name = e[3] if len(e) > 3 else None
                payer.id = e[9] if len(e) > 9 else None
            elif q == "QC" and patient is not None:
                patient.last_name = e[3] if len(e) > 3 else None
                patient.first_name = (e[4] or None) if len(e) > 4 else None
                patient.member_id = subscriber.member_id
                person = patient
        elif h[:3] == t_hl:
            e = text.split(sep)
            level = e[3] if len(e) > 3 else ""
            in_billing_hl = level == "20"
            if level == "20":
                billing = Provider()
                hl_billing = i
            elif level == "22":
                subscriber = Person()
                person = subscriber
                payer = Party()
                patient = None
                hl_patient = None
                filing = None
                hl_subscriber = i
            elif level == "23":
                patient = Person()
                person = patient
                hl_patient = i
        elif h == t_dmg:
            e = text.split(sep)
            if len(e) > 2:
                person.birth_date = to_date(e[2])
                person.gender = e[3] if len(e) > 3 else None
        elif h == t_sbr:
            e = text.split(sep)
            filing = e[9] if len(e) > 9 else None
        elif h == t_prv and in_billing_hl:
            e = text.split(sep)
            if len(e) > 3:
                billing.taxonomy = e[3]
        i += 1


@functools.cache
def _tags(sep: str) -> tuple[str, ...]:
    """Segment-id and qualifier prefixes for `sep`, as parse_claim compares them."""
    return tuple(x + sep for x in ("SV1", "DTP", "REF", "NM1", "CLM", "SBR", "LIN", "SVD", "LX", "HL", "HI", "LQ",
                                   "472", "434", "6R", "G1", "F8"))


def parse_claim(tx, segs, lines, i, n, sep, comp, file, base, issues):
    """Parse the claim whose CLM is at `segs[i]`, up to `n`; return it and the offset after it."""
    start = i
    e = segs[i].split(sep)
    ne = len(e)
    clm01 = e[1] if ne > 1 else ""
    clm05 = e[5].split(comp) if ne > 5 else []
    total = to_decimal(e[2]) if ne > 2 else None
    if total is None and issues is not None:
        issues.append(Issue("IK4-6", "CLM02 total charge is not a number",
                            tx.position(i, "2300", "CLM02")))
    diagnoses: list[str] = []
    claim_lines: list[ServiceLine] = []
    rendering: Provider | None = None
    prior_auth = payer_ctrl = None
    claim_date = None
    section = "2300"
    line: ServiceLine | None = None
    (t_sv1, t_dtp, t_ref, t_nm1, t_clm, t_sbr, t_lin, t_svd, t_lx, t_hl, t_hi, t_lq,
     q_472, q_434, q_6r, q_g1, q_f8) = _tags(sep)
    i += 1
    while i < n:  # branches ordered by how often a claim has the segment
        text = segs[i]
        h = text[:4]
        if h == t_ref:
            q = text[4:7]
            if q == q_6r or q == q_g1 or q == q_f8:
                value = text.split(sep)[2]
                if section == "2400" and line is not None:
                    if q == q_6r:
                        line.control_number = value
                    elif q == q_g1:
                        line.prior_authorization = value
                elif section == "2300":
                    if q == q_g1:
                        prior_auth = value
                    elif q == q_f8:
                        payer_ctrl = value
        elif h == t_dtp:
            q = text[4:8]
            if q == q_472 or (q == q_434 and section == "2300" and claim_date is None):
                value = text[text.rfind(sep) + 1:]  # DTP03, the last element
                if section == "2400" and line is not None:
                    if q == q_472:
                        line.service_date, line.service_date_end = date_range(value)
                elif section == "2300":
                    claim_date = to_date(value)
        elif h == t_sv1:
            if line is None or section != "2400":
                i += 1
                continue
            e = text.split(sep)
            ne = len(e)
            sv101 = e[1].split(comp)
            line.procedure = sv101[1] if len(sv101) > 1 else ""
            if len(sv101) > 2:
                line.modifiers = [m for m in sv101[2:6] if m]
                line.description = sv101[6] if len(sv101) > 6 and sv101[6] else None
            line.charge = to_decimal(e[2]) if ne > 2 else None
            if ne > 3:
                line.unit_basis = e[3] or None
                line.units = to_decimal(e[4]) if ne > 4 else None
                line.place_of_service = e[5] if ne > 5 and e[5] else None
                if ne > 7 and e[7]:
                    line.dx_pointers = [int(p) for p in e[7].split(comp) if p.isdigit()]
            if line.charge is None and issues is not None:
                issues.append(Issue("IK4-6", "SV102 line charge is not a number",
                                    tx.position(i, "2400", "SV102")))
        else:
            h3 = h[:3]
            if h3 == t_lx:
                if line is not None:
                    line.end = i
                section = "2400"
                number = text[3:]
                line = ServiceLine(int(number) if number.isdigit() else len(claim_lines) + 1, "", [], None, None,
                                   None, None, None, None, [], None, None, None, None,
                                   Position(file, lines[i], base + i, i + 1, "LX", "2400"), i, i + 1)
                claim_lines.append(line)
            elif h == t_nm1:
                e = text.split(sep)
                if e[1] == "82":
                    npi = e[9] if len(e) > 9 and e[8] == "XX" else None
                    if section == "2300":
                        rendering = Provider(npi, _name(e))
                    elif section == "2400" and line is not None:
                        line.rendering_npi = npi
                elif section == "2400":
                    section = "2420"
            elif h3 == t_hi:
                if section == "2300":
                    for el in text.split(sep)[1:]:
                        parts = el.split(comp)
                        if len(parts) > 1 and parts[0] in _DX_QUALIFIERS:
                            diagnoses.append(parts[1])
            elif h3 == t_hl or h == t_clm:
                break
            elif h == t_sbr:
                section = "2320"
            elif h == t_lin:
                section = "2410"
            elif h == t_svd:
                section = "2430"
            elif h3 == t_lq:
                section = "2440"
        i += 1
    if line is not None:
        line.end = i
    claim = Claim(
        clm01,
        total,
        None,
        _NO_PARTY,
        _NO_PERSON,
        None,
        _NO_PROVIDER,
        rendering,
        clm05[0] if clm05 and clm05[0] else None,
        clm05[2] if len(clm05) > 2 and clm05[2] else None,
        prior_auth,
        payer_ctrl,
        claim_date,
        diagnoses,
        claim_lines,
        Position(file, lines[start], base + start, start + 1, "CLM", "2300"),
        segs,
        start,
        i,
    )
    return claim, i


__all__ = ["parse_837p", "parse_claim"]
