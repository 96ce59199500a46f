"""Tests for the inbound acknowledgment readers (parse_999, parse_277ca) and the payer fixtures that
scripts/make_acks.py writes."""

from __future__ import annotations

import shutil
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from mutations import mutated

from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse
from edi_pipeline.core.errors import EdiError, IssueList, Severity
from edi_pipeline.tx.parse_277ca import iter_277ca
from edi_pipeline.tx.parse_999 import iter_999
from edi_pipeline.tr3.reference import validate_tr3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import make_acks  # noqa: E402

PAYER = sorted(p for p in FIXTURES.glob("payer-*") if p.suffix in (".999", ".277"))


def read(source: Path | bytes, name: str = "in"):
    """Records and issues of a payer fixture (999 or 277CA by its suffix) or of bytes read as a 277CA
    (batch and provider levels left out: test_277ca_levels reads them)."""
    issues = IssueList()
    is_path = isinstance(source, Path)
    reader = iter_999 if is_path and source.suffix == ".999" else iter_277ca
    return [r for r in reader(source, None if is_path else name, issues) if not isinstance(r, LevelStatus)], issues


def sent(name: str):
    return make_acks.sent_sets(FIXTURES / "expected" / name)


# ---------------------------------------------------------------- the generator and its fixtures


def test_generator_is_deterministic_and_matches_the_fixtures(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        shutil.copy(FIXTURES / "README.md", tmp_path / run / "README.md")
        make_acks.build_all(tmp_path / run)
    for p in PAYER + [FIXTURES / "README.md"]:
        assert (tmp_path / "a" / p.name).read_bytes() == (tmp_path / "b" / p.name).read_bytes() == p.read_bytes()
    assert {p.name for p in PAYER} == {name for name, _ in make_acks.build_all(tmp_path / "a")}


@pytest.mark.parametrize("path", PAYER, ids=lambda p: p.name)
def test_payer_fixtures_pass_pyx12(path):
    """The payer files have their real shape: pyx12's 999 (X231A1) and 277CA (X214) maps accept them."""
    result = validate_tr3(path.read_text(), path.name)
    assert not [str(i) for i in result.issues if i.severity is not Severity.INFO]


def test_accepted_999_ties_to_the_file_we_sent():
    (s,) = sent("837p-clean.837.scrubbed.837")
    records, issues = read(FIXTURES / "payer-accepted.999")
    assert not issues
    set_resp, group = records
    assert isinstance(set_resp, SetResponse) and isinstance(group, GroupResponse)
    assert (set_resp.group_control_number, set_resp.control_number, set_resp.set_id) == (s.gs[6], s.st02, "837")
    assert set_resp.accepted and set_resp.code == "A" and not set_resp.errors
    assert (group.group_control_number, group.code, group.included, group.received, group.accepted_sets) == \
        (s.gs[6], "A", 1, 1, 1)
    assert set_resp.envelope.sender_id == "CLEARHOUSE01" and set_resp.envelope.interchange_control_number == \
        "000007001"
    assert set_resp.source.segment_id == "IK5" and set_resp.source.line == 6


def test_rejected_999_gives_each_set_and_its_errors():
    multi = sent("837p-multi-interchange.837.scrubbed.837")
    records, issues = read(FIXTURES / "payer-rejected.999")
    assert not issues
    a, r, group = records
    assert [(x.control_number, x.code, x.accepted) for x in (a, r)] == \
        [(multi[0].st02, "A", True), (multi[1].st02, "R", False)]
    assert r.reasons == ["5"] and group.code == "P" and group.accepted and group.accepted_sets == 1
    assert [(e.segment_id, e.position, e.loop, e.code, e.claim) for e in r.errors] == \
        [("NM1", 9, "2010", "8", "MULTI02"), ("SV1", 21, "2400", "8", "MULTI02")]
    assert [(x.position, x.data_element, x.code) for e in r.errors for x in e.elements] == \
        [("9", "67", "7"), ("2", "782", "6")]
    assert all(x.source.loop == "2110" for e in r.errors for x in e.elements)


def test_accepted_277ca_gives_a2_and_payer_claim_numbers():
    (s,) = sent("837p-clean.837.scrubbed.837")
    mcr = [c for c in s.claims if c.payer.id == "MCRB1"]
    records, issues = read(FIXTURES / "payer-accepted.277")
    assert not issues and all(isinstance(r, ClaimStatus) for r in records)
    assert [r.patient_control_number for r in records] == [c.patient_control_number for c in mcr]
    for r, c in zip(records, mcr):
        assert r.accepted and not r.rejected and r.category == "A2"
        assert r.amount == c.total_charge and isinstance(r.amount, Decimal)
        assert r.payer_claim_control_number and r.source_entity == "PR" and r.source_id == "MCRB1"
        assert r.batch_trace == s.bht03 and r.billing_provider_id == c.billing_provider.npi
        assert r.status_date == date(2026, 12, 3) and r.receipt_date == date(2026, 12, 3)
        assert r.service_date == c.lines[0].service_date


def test_rejected_277ca_gives_claim_and_line_rejections():
    (s,) = sent("837p-clean.837.scrubbed.837")
    mcr = [c for c in s.claims if c.payer.id == "MCRB1"]
    records, issues = read(FIXTURES / "payer-rejected.277")
    assert not issues
    first, second, *rest = records
    assert first.rejected and first.statuses[0].codes[0].entity == "82" and first.statuses[0].action == "U"
    assert first.payer_claim_control_number is None  # a rejected claim was never given one
    assert second.rejected and [ln.control_number for ln in second.lines] == [mcr[1].lines[0].control_number]
    line = second.lines[0]
    assert (line.procedure, line.charge, line.statuses[0].codes[0].code) == \
        (mcr[1].lines[0].procedure, mcr[1].lines[0].charge, "453")
    assert line.source.loop == "2220D" and line.source.segment_id == "SVC"
    assert all(r.accepted for r in rest)


def test_records_hold_no_names_or_member_ids():
    text = str([r.to_dict(plain=True) for p in PAYER for r in read(p)[0]])
    (s,) = sent("837p-clean.837.scrubbed.837")
    for c in s.claims:
        assert c.subscriber.member_id not in text and (c.patient or c.subscriber).last_name not in text


# ---------------------------------------------------------------- defects become issues


def _277(body: list[str]) -> bytes:
    head = make_acks._isa("MCRB1", "PAINCLINIC01", 5)
    segs = [head, "GS*HN*MCRB1*PAINCLINIC01*20261203*0930*5*X*005010X214", "ST*277*0001*005010X214", *body,
            f"SE*{len(body) + 2}*0001", "GE*1*5", "IEA*1*000000005"]
    return "".join(s + "~\n" for s in segs).encode()


def test_277ca_defects_are_issues_with_positions():
    records, issues = read(_277(["BHT*0085*08*X*20261203*0930*TH", "HL*1**20*1", "DTP*050*D8*2026133",
                                 "HL*4*3*PT", "STC*A2:20*20261203*WQ*10", "TRN*2*PCN9",
                                 "STC*Q9:20*2026XX03*WQ*1O", "STC*A2", "SVC*HC:20553*2X5", "DTP*472*D8*nodate"]))
    assert [r.patient_control_number for r in records] == ["PCN9"]
    got = {(i.code, i.pos.element) for i in issues}
    assert got == {("IK4-8", "DTP03"), ("IK3-2", "STC"), ("IK4-7", "STC01-1"), ("IK4-8", "STC02"),
                   ("IK4-6", "STC04"), ("IK4-1", "STC01"), ("IK4-6", "SVC02")}
    assert all(i.pos.line > 0 and i.pos.segment_index > 0 for i in issues)
    assert records[0].statuses[0].amount is None and records[0].lines[0].charge is None


def test_999_defects_are_issues_with_positions():
    body = ["IK5*A", "AK1*HC*77*005010X222A1", "IK3*CLM*X*2300*8", "IK4*2*782*6", "AK2*837*0001",
            "IK3*CLM*X*2300*8", "IK4*2*782*6", "IK5*Z", "AK2*837*0002", "AK9*A*two*1*1"]
    segs = [make_acks._isa("P1", "ME", 6), "GS*FA*P1*ME*20261203*0930*6*X*005010X231A1", "ST*999*0001*005010X231A1",
            *body, f"SE*{len(body) + 2}*0001", "GE*1*6", "IEA*1*000000006"]
    issues = IssueList()
    records = list(iter_999("".join(s + "~\n" for s in segs).encode(), "bad.999", issues))
    assert [type(r).__name__ for r in records] == ["SetResponse", "GroupResponse"]
    assert records[0].control_number == "0001" and records[0].group_control_number == "77"
    assert records[1].included is None and records[1].received == 1
    got = [(i.code, i.pos.element) for i in issues]
    assert got == [("IK3-2", "IK5"), ("IK3-2", "IK3"), ("IK3-2", "IK4"), ("IK4-6", "IK302"), ("IK4-7", "IK501"),
                   ("IK3-3", "IK5"), ("IK4-6", "AK902")]


def test_other_sets_are_skipped_and_unreadable_input_is_one_issue():
    records, issues = read((FIXTURES / "pair-plb.835").read_bytes())
    assert records == [] and [i.code for i in issues] == ["ENV-NOT-ACK"]
    for data in (b"", b"not x12 at all", b"ISA*00*short~"):
        records, issues = read(data)
        assert records == [] and [i.code for i in issues] == ["ENV-UNREADABLE"]


ACK_SEEDS = [p.read_bytes() for p in PAYER]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(ACK_SEEDS))
def test_damaged_acks_never_raise(data):
    """Any damage to a 999 or 277CA gives records and issues, never an exception (not even our own)."""
    for reader in (iter_999, iter_277ca):
        issues = IssueList()
        try:
            records = list(reader(data, "damaged", issues))
        except EdiError as exc:  # our own errors would be allowed, but the readers turn them into issues
            pytest.fail(f"raised {exc!r}")
        for r in records:
            r.to_dict(plain=True)
            for s in getattr(r, "statuses", []):
                assert s.amount is None or isinstance(s.amount, Decimal)
                assert s.effective_date is None or isinstance(s.effective_date, date)
        assert all(i.pos is not None for i in issues)


def test_iter_acks_reads_both_kinds_as_ndjson_objects(tmp_path):
    import orjson

    from edi_pipeline.tx.acks import iter_acks

    both = tmp_path / "both.x12"
    both.write_bytes((FIXTURES / "payer-rejected.999").read_bytes() + (FIXTURES / "payer-accepted.277").read_bytes())
    issues = IssueList()
    records = list(iter_acks(both, None, issues))
    assert not issues
    assert [r.to_dict()["type"] for r in records] == ["999_set_response"] * 2 + ["999_group_response"] + \
        ["277CA_level_status"] * 2 + ["277CA_claim_status"] * 4
    for r in records:
        line = orjson.loads(orjson.dumps(r.to_dict(plain=True)))
        assert line["source"]["file"] == str(both) and line["envelope"]["sender_id"]


def test_277ca_levels_carry_counts_and_whole_batch_rejections():
    """2200B and 2200C become LevelStatus records with their counts; a batch rejected at the receiver
    level (no claim listed) is a record too, so it is never dropped."""
    issues = IssueList()
    levels = [r for r in iter_277ca(FIXTURES / "payer-rejected.277", None, issues) if isinstance(r, LevelStatus)]
    assert not issues
    (s,) = sent("837p-clean.837.scrubbed.837")
    assert [(lv.level, lv.accepted_count, lv.rejected_count, lv.batch_trace, lv.source_id) for lv in levels] == \
        [("receiver", 2, 2, s.bht03, "MCRB1"), ("provider", 2, 2, s.bht03, "MCRB1")]
    assert levels[1].billing_provider_id == s.claims[0].billing_provider.npi
    assert levels[0].accepted_amount + levels[0].rejected_amount == sum(
        c.total_charge for c in s.claims if c.payer.id == "MCRB1")
    whole = _277(["BHT*0085*08*X*20261203*0930*TH", "HL*1**20*1", "NM1*PR*2*MEDICARE PART B*****PI*MCRB1",
                  "TRN*1*9", "DTP*050*D8*20261203", "DTP*009*D8*20261203", "HL*2*1*21*0",
                  "NM1*41*2*LANTERN PAIN BILLING*****46*PAINCLINIC01", "TRN*2*CLEAN", "STC*A3:24:41*20261203*U*1090",
                  "QTY*AA*X", "AMT*YY*1090"])
    records = list(iter_277ca(whole, "whole.277", issues))
    assert [(type(r).__name__, r.rejected, r.rejected_amount, r.batch_trace) for r in records] == \
        [("LevelStatus", True, Decimal("1090"), "CLEAN")]
    assert [(i.code, i.pos.element) for i in issues] == [("IK4-6", "QTY02")]
