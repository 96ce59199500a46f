"""835 (005010X221A1) transaction set to a RemitHeader and typed ClaimPayment records."""

from __future__ import annotations

from typing import Iterator

from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import Issue, IssueList, Position
from edi_pipeline.tx.model import Adjustment, ClaimPayment, Party, Provider, ProviderAdjustment, RemitHeader, ServicePayment
from edi_pipeline.core.values import to_date, to_decimal


def parse_835_header(tx: Transaction, issues: IssueList | None = None) -> RemitHeader:
    """BPR/TRN/N1 from the top of the set and PLB from its bottom."""
    segs = tx.segments
    sep = tx.delimiters.element
    comp = tx.delimiters.component
    header = RemitHeader(None, None, None, None, None, Party(), Provider(),
                         source=Position(tx.file, tx.lines[0], tx.first_index, 1, "ST", "HEADER"))
    production_date = None
    party = None
    n = len(segs)
    i = 1
    while i < n:
        e = segs[i].split(sep)
        sid = e[0]
        ne = len(e)
        if sid in ("LX", "CLP", "SE"):
            break
        if sid == "BPR":
            header.bpr_position = tx.position(i, "HEADER", "BPR02")
            header.payment_amount = to_decimal(e[2]) if ne > 2 else None
            if header.payment_amount is None and issues is not None:
                issues.append(Issue("IK4-6", "BPR02 payment amount is not a number", header.bpr_position))
            header.credit_debit = e[3] if ne > 3 else None
            header.payment_method = e[4] if ne > 4 else None
            header.payment_date = to_date(e[16]) if ne > 16 else None
        elif sid == "TRN":
            header.trace_number = e[2] if ne > 2 else None
            if ne > 3 and not header.payer.id:
                header.payer.id = e[3] or None
        elif sid == "DTM" and ne > 2 and e[1] == "405":
            production_date = to_date(e[2])
        elif sid == "N1" and ne > 1:
            party = e[1]
            if party == "PR":
                header.payer.name = e[2] if ne > 2 else None
                if ne > 4 and e[4]:
                    header.payer.id = e[4]
            elif party == "PE":
                header.payee.name = e[2] if ne > 2 else None
                if ne > 4 and e[3] == "XX":
                    header.payee.npi = e[4]
        elif sid == "REF" and ne > 2 and party == "PR" and e[1] == "2U":
            header.payer.id = e[2]
        i += 1
    if header.payment_date is None:
        header.payment_date = production_date
    j = n - 1
    plbs = []
    while j > 0:
        text = segs[j]
        if text.startswith("PLB" + sep):
            plbs.append(j)
        elif not (text.startswith("SE" + sep)):
            break
        j -= 1
    for j in reversed(plbs):
        e = segs[j].split(sep)
        provider = e[1] if len(e) > 1 else ""
        period = to_date(e[2]) if len(e) > 2 else None
        for k in range(3, len(e) - 1, 2):
            if not e[k]:
                continue
            reason_ref = e[k].split(comp)
            amount = to_decimal(e[k + 1])
            if amount is None:
                if issues is not None:
                    issues.append(Issue("IK4-6", "PLB amount is not a number",
                                        tx.position(j, "SUMMARY", f"PLB{k + 1:02d}")))
                continue
            header.provider_adjustments.append(ProviderAdjustment(
                provider, period, reason_ref[0], reason_ref[1] if len(reason_ref) > 1 else None, amount))
    return header


def _adjustments(e: list[str], into: list[Adjustment]) -> bool:
    group = e[1] if len(e) > 1 else ""
    ok = True
    for k in range(2, len(e), 3):
        reason = e[k]
        if not reason:
            continue
        amount = to_decimal(e[k + 1]) if k + 1 < len(e) else None
        if amount is None:
            ok = False
            continue
        qty = to_decimal(e[k + 2]) if k + 2 < len(e) and e[k + 2] else None
        into.append(Adjustment(group, reason, amount, qty))
    return ok


def parse_835(tx: Transaction, header: RemitHeader | None = None,
              issues: IssueList | None = None) -> Iterator[ClaimPayment]:
    """Yield each 2100 claim payment of an 835 transaction set in order."""
    if header is None:
        header = parse_835_header(tx, issues)
    segs = tx.segments
    lines = tx.lines
    sep = tx.delimiters.element
    comp = tx.delimiters.component
    file = tx.file
    base = tx.first_index
    claim: ClaimPayment | None = None
    svc: ServicePayment | None = None
    t_clp, t_svc, t_cas, t_dtm, t_ref, t_amt, t_moa, t_mia, t_plb = (
        x + sep for x in ("CLP", "SVC", "CAS", "DTM", "REF", "AMT", "MOA", "MIA", "PLB"))
    t_lq, t_lx, t_se = (x + sep for x in ("LQ", "LX", "SE"))
    q_6r, q_b6, q_he = (x + sep for x in ("6R", "B6", "HE"))
    for i in range(1, len(segs)):
        text = segs[i]
        h = text[:4]
        if h == t_cas:
            if claim is None:
                continue
            e = text.split(sep)
            ok = _adjustments(e, svc.adjustments if svc is not None else claim.adjustments)
            if not ok and issues is not None:
                issues.append(Issue("IK4-6", "CAS amount is not a number",
                                    tx.position(i, "2110" if svc is not None else "2100", "CAS03")))
        elif h == t_svc:
            if claim is None:
                continue
            e = text.split(sep)
            ne = len(e)
            c = e[1].split(comp)
            orig = e[6].split(comp) if ne > 6 and e[6] else None
            svc = ServicePayment(
                c[1] if len(c) > 1 else "", [m for m in c[2:6] if m] if len(c) > 2 else [],
                orig[1] if orig and len(orig) > 1 else None,
                to_decimal(e[2]) if ne > 2 else None,
                to_decimal(e[3]) if ne > 3 else None,
                to_decimal(e[5]) if ne > 5 and e[5] else None, None, None, [], [], None,
                Position(file, lines[i], base + i, i + 1, "SVC", "2110"))
            claim.lines.append(svc)
            if issues is not None and (svc.charge is None or svc.paid is None):
                issues.append(Issue("IK4-6", "SVC02/SVC03 amount is not a number", tx.position(i, "2110", "SVC02")))
        elif h == t_dtm:
            if claim is None:
                continue
            e = text.split(sep, 3)
            q = e[1]
            value = e[2] if len(e) > 2 else ""  # a DTM cut short has no date: None
            if svc is not None:
                if (q == "472" or q == "150") and svc.service_date is None:
                    svc.service_date = to_date(value)
            elif q == "232" and claim.service_date is None:  # DTM*050 is the date received, not of service
                claim.service_date = to_date(value)
        elif h == t_ref:
            if svc is not None and text[4:7] == q_6r:
                svc.control_number = text.split(sep)[2]
        elif h == t_amt:
            if svc is not None and text[4:7] == q_b6:
                svc.allowed = to_decimal(text.split(sep)[2])
        elif h[:3] == t_lq:
            if svc is not None and text[3:6] == q_he:
                svc.remarks.append(text.split(sep)[2])
        elif h == t_clp:
            if claim is not None:
                yield claim
            svc = None
            e = text.split(sep)
            ne = len(e)
            claim = ClaimPayment(
                e[1] if ne > 1 else "", e[2] if ne > 2 else "",
                to_decimal(e[3]) if ne > 3 else None,
                to_decimal(e[4]) if ne > 4 else None,
                to_decimal(e[5]) if ne > 5 else None,
                e[6] if ne > 6 and e[6] else None,
                e[7] if ne > 7 and e[7] else None,
                e[9] if ne > 9 and e[9] else None,
                header, [], [], [], None,
                Position(file, lines[i], base + i, i + 1, "CLP", "2100"))
            if issues is not None and (claim.charge is None or claim.paid is None):
                issues.append(Issue("IK4-6", "CLP03/CLP04 amount is not a number", tx.position(i, "2100", "CLP03")))
        elif claim is None:
            continue
        elif h == t_moa and svc is None:
            claim.remarks.extend(r for r in text.split(sep)[3:8] if r)
        elif h == t_mia and svc is None:
            e = text.split(sep)
            claim.remarks.extend(r for r in (e[5:6] + e[20:24]) if r)
        elif h[:3] == t_lx or h == t_plb or h[:3] == t_se:
            yield claim
            claim = None
            svc = None
    if claim is not None:
        yield claim
