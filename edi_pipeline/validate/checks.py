"""Checks no implementation-guide map makes: balancing, NPI check digits, code lists and code shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from edi_pipeline.codes.tables import code_shape_ok, load_tables, npi_valid
from edi_pipeline.core.errors import Issue, IssueList, Position, Severity
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader

ZERO = Decimal(0)


def check_claim(claim: Claim, issues: IssueList) -> None:
    src = claim.source
    pcn = claim.patient_control_number
    tables = load_tables()
    line_sum = sum((ln.charge for ln in claim.lines if ln.charge is not None), ZERO)
    if claim.total_charge is not None and claim.lines and line_sum != claim.total_charge:
        issues.append(Issue("BAL-CLAIM", f"claim {pcn}: CLM02 {claim.total_charge} != sum of SV102 {line_sum}",
                            src.at("CLM02"), Severity.ERROR))
    sep = claim.segments[claim.start][3:4]
    for npi, prefix, start, end, loop in (
            (claim.billing_provider.npi, f"NM1{sep}85{sep}", claim.hl_billing, claim.hl_subscriber, "2010AA"),
            (claim.rendering_provider.npi if claim.rendering_provider else None, f"NM1{sep}82{sep}",
             claim.start, claim.end, "2310B")):
        if npi and not npi_valid(npi):
            at = claim.find(prefix, start, end)
            pos = claim.position_at(at, loop, "NM109") if at is not None else src.at("NM109")
            issues.append(Issue("NPI-CHECK", f"claim {pcn}: the NPI fails the check digit", pos))  # an NM1 value
    if claim.place_of_service and claim.place_of_service not in tables.pos:
        issues.append(Issue("CODE-POS", f"claim {pcn}: place of service {claim.place_of_service} is not a CMS code",
                            src.at("CLM05-1"), Severity.ERROR, claim.place_of_service))
    for k, dx in enumerate(claim.diagnoses, 1):
        if not code_shape_ok("icd10cm", dx):
            issues.append(Issue("CODE-ICD10", f"claim {pcn}: diagnosis {k} is not shaped like an ICD-10-CM code",
                                src.at("HI01-2"), Severity.WARNING, dx))
    for ln in claim.lines:
        sv1 = claim.find(f"SV1{sep}", ln.start, ln.end)
        sv1 = ln.start if sv1 is None else sv1
        p = ln.procedure
        if p and not code_shape_ok("procedure", p):
            issues.append(Issue("CODE-PROC", f"claim {pcn} line {ln.line_number}: {p} is not shaped like CPT/HCPCS",
                                claim.position_at(sv1, "2400", "SV101-2"),
                                Severity.WARNING, p))
        if ln.place_of_service and ln.place_of_service not in tables.pos:
            issues.append(Issue("CODE-POS", f"claim {pcn} line {ln.line_number}: place of service "
                                f"{ln.place_of_service} is not a CMS code", claim.position_at(sv1, "2400", "SV105"),
                                Severity.ERROR, ln.place_of_service))


def check_remit(header: RemitHeader, payments: Iterable[ClaimPayment], issues: IssueList) -> None:
    """835 balancing: line, claim and transaction; CARC/RARC code lists."""
    tables = load_tables()
    total_paid = ZERO
    for cp in payments:
        src = cp.source
        pcn = cp.patient_control_number
        if cp.paid is not None:
            total_paid += cp.paid
        cas_total = sum((a.amount for a in cp.adjustments), ZERO)
        _check_adjustments(cp.adjustments, pcn, src, tables, issues)
        for r in cp.remarks:
            if r not in tables.rarc:
                issues.append(Issue("CODE-RARC", f"claim payment {pcn}: remark {r} is not a known RARC",
                                    src.at("MOA03"), Severity.WARNING, r))
        for ln in cp.lines:
            line_cas = sum((a.amount for a in ln.adjustments), ZERO)
            cas_total += line_cas
            _check_adjustments(ln.adjustments, pcn, ln.source, tables, issues)
            for r in ln.remarks:
                if r not in tables.rarc:
                    issues.append(Issue("CODE-RARC", f"claim payment {pcn}: remark {r} is not a known RARC",
                                        ln.source.at("LQ02"), Severity.WARNING, r))
            if ln.charge is not None and ln.paid is not None and ln.charge - line_cas != ln.paid:
                issues.append(Issue("BAL-LINE", f"claim payment {pcn} {ln.procedure}: SVC02 {ln.charge} - CAS "
                                    f"{line_cas} != SVC03 {ln.paid}", ln.source.at("SVC03")))
        if cp.charge is not None and cp.paid is not None and cp.charge - cas_total != cp.paid:
            issues.append(Issue("BAL-CLAIM-PAYMENT", f"claim payment {pcn}: CLP03 {cp.charge} - CAS {cas_total} "
                                f"!= CLP04 {cp.paid}", src.at("CLP04")))
    plb = sum((p.amount for p in header.provider_adjustments), ZERO)
    if header.payment_amount is not None and header.payment_amount != total_paid - plb:
        pos = header.bpr_position or Position()
        issues.append(Issue("BAL-PAYMENT", f"BPR02 {header.payment_amount} != sum of CLP04 {total_paid} - PLB {plb}",
                            pos))


def check_837p_set(records: Iterable[Claim], issues: IssueList) -> None:
    """The 837P type's own checks (tx.registry), claim by claim as the set is read."""
    for claim in records:
        check_claim(claim, issues)


def check_835_set(records: Iterable[RemitHeader | ClaimPayment], issues: IssueList) -> None:
    """The 835 type's own checks (tx.registry): its header first, then its claim payments."""
    records = iter(records)
    header = next(records, None)
    if header is not None:
        check_remit(header, list(records), issues)


def _check_adjustments(adjustments, pcn: str, src, tables, issues: IssueList) -> None:
    carc = tables.carc
    for a in adjustments:
        if a.group not in _GROUPS:
            issues.append(Issue("CODE-CAS-GROUP", f"claim payment {pcn}: adjustment group {a.group} is not "
                                "CO/OA/PI/PR", src.at("CAS01"), Severity.ERROR, a.group))
        if a.reason not in carc:
            issues.append(Issue("CODE-CARC", f"claim payment {pcn}: {a.reason} is not a known CARC",
                                src.at("CAS02"), Severity.ERROR, a.reason))


_GROUPS = frozenset(("CO", "OA", "PI", "PR"))
