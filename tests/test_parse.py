"""Typed 837P and 835 records: the NDJSON contract keys, Decimal money, date dates, positions."""

from datetime import date
from decimal import Decimal

from conftest import FIXTURES

from edi_pipeline.tx.document import iter_records
from edi_pipeline.core.errors import IssueList
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader

CLAIM_KEYS = {"patient_control_number", "total_charge", "claim_filing_indicator", "payer", "subscriber", "patient",
              "billing_provider", "rendering_provider", "place_of_service", "frequency_code", "prior_authorization",
              "payer_claim_control_number", "diagnoses", "lines"}
LINE_KEYS = {"line_number", "procedure", "modifiers", "description", "charge", "units", "unit_basis", "service_date",
             "dx_pointers", "control_number", "prior_authorization"}
PAYMENT_KEYS = {"patient_control_number", "status_code", "charge", "paid", "patient_responsibility",
                "claim_filing_indicator", "payer_claim_control_number", "payer", "payee", "trace_number",
                "payment_date", "adjustments", "remarks", "lines"}
SVC_KEYS = {"procedure", "modifiers", "original_procedure", "charge", "paid", "units", "service_date",
            "control_number", "adjustments", "remarks"}


def claims(name):
    return [r for r in iter_records(FIXTURES / name) if isinstance(r, Claim)]


def test_clean_837_claims_are_typed():
    cs = claims("837p-clean.837")
    assert len(cs) >= 5
    c = cs[0]
    assert c.patient_control_number == "CLEANMCR01"
    assert c.total_charge == Decimal("410") and isinstance(c.total_charge, Decimal)
    assert c.claim_filing_indicator == "MB" and c.payer.id == "MCRB1"
    assert c.place_of_service == "11" and c.frequency_code == "1"
    assert c.diagnoses == ["M7918", "M542"]
    assert c.billing_provider.npi == "1000202642" and c.billing_provider.taxonomy == "208VP0014X"
    assert c.rendering_provider.npi == "1000994545"
    assert c.subscriber.birth_date == date(1941, 2, 2)
    assert [ln.procedure for ln in c.lines] == ["99213", "20553", "J3301"]
    ln = c.lines[0]
    assert ln.modifiers == ["25"] and ln.charge == Decimal("120") and ln.units == Decimal("1")
    assert ln.service_date == date(2026, 10, 5) and ln.control_number == "CLEANMCR01-1" and ln.dx_pointers == [1]
    assert sum(x.charge for x in c.lines) == c.total_charge
    d = c.to_dict()
    assert CLAIM_KEYS <= set(d) and LINE_KEYS <= set(d["lines"][0])
    assert d["source"]["segment_index"] == 21 and d["source"]["loop"] == "2300"


def test_patient_loop_2000c():
    cs = claims("837p-clean.837")
    with_patient = [c for c in cs if c.patient is not None]
    assert with_patient, "fixture has a 2000C claim"
    c = with_patient[0]
    assert c.patient.last_name and c.patient.birth_date
    assert c.hl_patient is not None and c.segments[c.hl_patient].split("*")[3] == "23"


def test_claims_share_raw_segments():
    c = claims("837p-clean.837")[0]
    assert c.raw[0].startswith("CLM*CLEANMCR01*") and c.raw[-1].startswith("REF*6R*")


def test_835_payments():
    recs = list(iter_records(FIXTURES / "pair-plb.835"))
    header = recs[0]
    assert isinstance(header, RemitHeader)
    payments = [r for r in recs if isinstance(r, ClaimPayment)]
    assert payments and header.provider_adjustments
    assert header.payment_amount == sum(p.paid for p in payments) - sum(a.amount for a in header.provider_adjustments)
    d = payments[0].to_dict()
    assert PAYMENT_KEYS <= set(d) and SVC_KEYS <= set(d["lines"][0])
    for p in payments:
        for ln in p.lines:
            assert ln.charge - sum(a.amount for a in ln.adjustments) == ln.paid


def test_denials_835_remarks_and_original_codes():
    recs = [r for r in iter_records(FIXTURES / "pair-denials.835") if isinstance(r, ClaimPayment)]
    reasons = {(a.group, a.reason) for r in recs for ln in r.lines for a in ln.adjustments}
    reasons |= {(a.group, a.reason) for r in recs for a in r.adjustments}
    assert ("CO", "97") in reasons and ("OA", "18") in reasons
    remarks = {m for r in recs for ln in r.lines for m in ln.remarks}
    assert "N122" in remarks


def test_bad_amount_is_an_issue_not_a_crash():
    text = (FIXTURES / "837p-clean.837").read_text().replace("CLM*CLEANMCR01*410*", "CLM*CLEANMCR01*4X0*", 1)
    issues = IssueList()
    cs = [r for r in iter_records(text.encode(), "bad.837", issues) if isinstance(r, Claim)]
    assert cs[0].total_charge is None
    bad = [i for i in issues if i.code == "IK4-6"]
    assert bad and bad[0].pos.element == "CLM02" and bad[0].pos.loop == "2300" and bad[0].pos.line == 21


def test_x222a2_label_is_read_with_a_warning():
    issues = IssueList()
    cs = [r for r in iter_records(FIXTURES / "837p-x222a2.837", issues=issues) if isinstance(r, Claim)]
    assert cs and issues.has("SYN-VERSION")


def test_ndjson_of_bytes_that_are_not_utf8_is_still_valid_json():
    import io
    import json

    from edi_pipeline.formats.convert import to_ndjson

    data = (FIXTURES / "837p-clean.837").read_bytes().replace(b"DRAYCOMBE", b"DRAY\xffCOMBE")
    out = io.StringIO()
    assert to_ndjson(data, out, "x.837") == 9
    text = out.getvalue()
    text.encode("utf-8")  # no lone surrogates in the output text itself
    first = json.loads(text.splitlines()[0])
    assert first["subscriber"]["last_name"].encode("latin-1") == b"DRAY\xffCOMBE"  # marked as Latin-1
    assert "subscriber.last_name" in first["latin1"]


def test_835_dtm_cut_short_is_read_without_a_date():
    text = (FIXTURES / "pair-plb.835").read_text()
    cut = text[:text.index("DTM*472*") + len("DTM*472")]  # the file ends inside a service-line DTM
    issues = IssueList()
    records = list(iter_records(cut.encode(), "cut.835", issues))
    payments = [r for r in records if isinstance(r, ClaimPayment)]
    assert payments and payments[-1].lines[-1].service_date is None
    assert issues.errors  # the missing trailers are reported


def test_837_institutional_is_refused_without_a_false_version_warning():
    text = (FIXTURES / "837p-clean.837").read_text().replace("005010X222A1", "005010X223A2")
    issues = IssueList()
    assert not list(iter_records(text.encode(), "837i.837", issues))
    assert issues.has("ENV-UNSUPPORTED") and not issues.has("SYN-VERSION")


def test_records_are_placed_by_the_one_position_type():
    """Claims, lines and payments start at an errors.Position (no second position type), and an
    issue about one of their elements is that position at the element."""
    from edi_pipeline.core.errors import Position

    c = claims("837p-clean.837")[0]
    p = next(r for r in iter_records(FIXTURES / "pair-plb.835") if isinstance(r, ClaimPayment))
    for src in (c.source, c.lines[0].source, p.source):
        assert type(src) is Position
    at = c.source.at("CLM02")
    assert (at.segment_id, at.loop, at.element, at.line) == ("CLM", "2300", "CLM02", c.source.line)
    assert str(at).endswith(f"CLM#{c.source.st_position} [2300] CLM02")
    assert c.source.source_dict(False) == {"line": c.source.line, "segment_index": c.source.segment_index,
                                           "st_position": c.source.st_position, "loop": "2300"}
