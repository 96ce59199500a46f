"""Tests for edi_pipeline.scrub.ack277: the 277CA (005010X214) answering a scrubbed 837P interchange."""

from __future__ import annotations

import itertools
import os
import re
import stat
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from conftest import FIXTURES, fixture_files
from hypothesis import HealthCheck, given, settings
from mutations import mutated

from edi_pipeline.scrub.ack277 import RULE_STATUS, build_277ca, interchange_outcomes, set_outcomes, write_277cas
from edi_pipeline.tx.ack_records import ClaimStatus, LevelStatus
from edi_pipeline.codes.tables import load_tables
from edi_pipeline.core.errors import EdiError, IssueList, Severity
from edi_pipeline.tx.parse_277ca import iter_277ca
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.tr3.reference import validate_tr3

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
SCRUBBED = [p for p in fixture_files("837p-*.837") if "invalid" not in p.name] + \
    [p for p in fixture_files("pair-*.837")]


def claim_statuses(records) -> list:
    """The ClaimStatus records of a 277CA read back (the batch and provider LevelStatus left out)."""
    return [r for r in records if isinstance(r, ClaimStatus)]


def scrub(path, tmp_path):
    return scrub_file(path, tmp_path / "out.837", tmp_path / "rejects.837")


def acks(path, tmp_path, control: int = 41) -> list[tuple[list, str]]:
    """(outcomes, 277CA text) per interchange of a scrubbed fixture."""
    result = scrub(path, tmp_path)
    out = []
    for k, (isa, gs, outcomes) in enumerate(interchange_outcomes(path, result.findings)):
        out.append((outcomes, build_277ca(outcomes, isa, gs, control + k, NOW, date(2026, 12, 1))))
    return out


@pytest.mark.parametrize("path", SCRUBBED, ids=lambda p: p.name)
def test_every_fixture_277ca_passes_pyx12_x214(path, tmp_path):
    """Every 277CA made for a fixture 837P interchange passes pyx12's 005010X214 map."""
    built = acks(path, tmp_path)
    assert built
    for _outcomes, text in built:
        result = validate_tr3(text, "out.277")
        assert not [str(i) for i in result.issues if i.severity is Severity.ERROR]
        assert not [i for i in result.issues if i.code == "ENV-NO-MAP"]  # the X214 map did the walk


@pytest.mark.parametrize("path", SCRUBBED, ids=lambda p: p.name)
def test_round_trip_gives_the_outcomes_written(path, tmp_path):
    """Our 277CA read back: one status per claim, TRN02 = CLM01; a sent claim is A1 (WQ), a held one is
    rejected with one STC per holding finding, its rule id in STC12, and its rejected lines by REF*FJ."""
    for k, (outcomes, text) in enumerate(acks(path, tmp_path)):
        issues = IssueList()
        statuses = claim_statuses(iter_277ca(text.encode(), "out.277", issues))
        assert not issues
        assert [s.patient_control_number for s in statuses] == [o.claim.patient_control_number for o in outcomes]
        for o, s in zip(outcomes, statuses):
            assert s.source_entity == "AY" and s.envelope.interchange_control_number == f"{41 + k:09d}"
            assert s.amount == o.claim.total_charge
            if o.sent:
                assert [(c.category, c.code) for st in s.statuses for c in st.codes] == [("A1", "20")]
                assert [st.action for st in s.statuses] == ["WQ"] and not s.rejected and not s.lines
                continue
            assert s.rejected and {st.action for st in s.statuses} == {"U"}
            assert [st.message for st in s.statuses] == [r.reason for r in o.rejections]
            assert [st.codes[0].category for st in s.statuses] == [r.category for r in o.rejections]
            lines = {id(r.line): r.line for r in o.rejections if r.line is not None}
            assert [ln.control_number for ln in s.lines] == [ln.control_number for ln in lines.values()]


def test_held_claims_are_rejected_with_their_rule(tmp_path):
    """The fixtures' holding rules reach the 277CA with the status codes chosen for them."""
    seen = {}
    for name in ("837p-tpi-anesthesia.837", "837p-dx-pointer.837", "837p-unlisted-desc.837",
                 "837p-acu-addon-no-primary.837", "837p-auth-required.837", "837p-acu-ncd-dx.837"):
        for outcomes, text in acks(FIXTURES / name, tmp_path):
            for s in claim_statuses(iter_277ca(text.encode(), name)):
                for st in s.statuses:
                    seen[st.message] = st.codes[0]
    assert {k: (v.category, v.code) for k, v in seen.items()} == {
        "TPI-ANESTHESIA": ("A8", "454"), "DX-POINTER": ("A7", "477"), "UNLISTED-DESC": ("A6", "306"),
        "ACU-ADDON-NO-PRIMARY": ("A8", "454"), "AUTH-REQUIRED": ("A6", "252"), "ACU-NCD-DX": ("A8", "488"),
        "NCCI-PTP": ("A8", "453")}  # (837p-acu-ncd-dx: 20560/97813, PTP indicator 0)
    assert seen["AUTH-REQUIRED"].entity == "1P"  # code 252 requires an entity code


def test_totals_per_billing_provider(tmp_path):
    """2200B and 2200C carry QTY/AMT accepted (90/QA, YU) and rejected (AA/QC, YY), only when not zero."""
    (outcomes, text), = acks(FIXTURES / "837p-acu-ncd-max.837", tmp_path)
    segs = [s.strip() for s in text.split("~") if s.strip()]
    sent = [o for o in outcomes if o.sent]
    held = [o for o in outcomes if not o.sent]
    assert sent and held
    amount = lambda group: str(sum((o.claim.total_charge for o in group), Decimal(0)))  # noqa: E731
    for qty, rej in (("90", "AA"), ("QA", "QC")):
        assert f"QTY*{qty}*{len(sent)}" in segs and f"QTY*{rej}*{len(held)}" in segs
    assert segs.count(f"AMT*YU*{amount(sent)}") == 2 and segs.count(f"AMT*YY*{amount(held)}") == 2
    levels = [r for r in iter_277ca(text.encode(), "x.277") if isinstance(r, LevelStatus)]
    assert [(lv.level, lv.accepted_count, lv.rejected_count) for lv in levels] == \
        [("receiver", len(sent), len(held)), ("provider", len(sent), len(held))]
    assert {lv.rejected_amount for lv in levels} == {Decimal(amount(held))} and not any(lv.rejected for lv in levels)
    (clean, text), = acks(FIXTURES / "837p-clean.837", tmp_path)
    assert "QTY*AA" not in text and "AMT*YY" not in text and "QTY*QC" not in text


def test_a_claim_with_a_bad_charge_is_rejected_for_its_element(tmp_path):
    """A claim held for an error in its own segments (CLM02 not a number) gets A7:178 and the issue in STC12."""
    src = (FIXTURES / "837p-clean.837").read_text().replace("CLM*CLEANMCR01*410*", "CLM*CLEANMCR01*4X0*", 1)
    path = tmp_path / "bad.837"
    path.write_text(src)
    (outcomes, text), = acks(path, tmp_path)
    bad = [s for s in claim_statuses(iter_277ca(text.encode(), "bad.277")) if s.patient_control_number == "CLEANMCR01"]
    assert [(st.codes[0].category, st.codes[0].code, st.message) for st in bad[0].statuses] == \
        [("A7", "178", "IK4-6 CLM02")]
    assert sum(o.sent for o in outcomes) == len(outcomes) - 1


def test_control_numbers_come_from_the_caller(tmp_path):
    (outcomes, text), = acks(FIXTURES / "837p-clean.837", tmp_path, control=123456)
    segs = [s.strip().split("*") for s in text.split("~") if s.strip()]
    assert segs[0][13] == "000123456" and segs[1][6] == "123456"
    assert segs[-2] == ["GE", "1", "123456"] and segs[-1] == ["IEA", "1", "000123456"]
    # answering the 837: sender and receiver swapped, 2100A is the 837's receiver, 2200B TRN02 its BHT03
    assert segs[0][6].strip() == "CLEARHOUSE01" and segs[0][8].strip() == "PAINCLINIC01"
    assert ["TRN", "2", "CLEAN"] in segs and ["NM1", "AY", "2", "NORTHWIND CLEARINGHOUSE", "", "", "", "",
                                              "46", "CLEARHOUSE01"] in segs


def test_one_277ca_per_interchange_one_set_per_837_set(tmp_path):
    built = acks(FIXTURES / "837p-multi-interchange.837", tmp_path)
    assert [text.count("ST*277*") for _outcomes, text in built] == [2, 1]
    assert [[o.claim.patient_control_number for o in outcomes] for outcomes, _text in built] == \
        [["MULTI01", "MULTI02"], ["MULTI03"]]


def test_sets_a_999_rejected_get_no_277ca(tmp_path):
    path = FIXTURES / "837p-multi-interchange.837"
    result = scrub(path, tmp_path)
    pcns = lambda withheld: [[o.claim.patient_control_number for o in outcomes]  # noqa: E731
                             for _isa, _gs, outcomes in interchange_outcomes(path, result.findings, withheld)]
    assert pcns({(1, "10101", "0001")}) == [["MULTI02"], ["MULTI03"]]  # (ISA index, GS06, ST02)
    assert pcns({(1, "10101", "0001"), (1, "10101", "0002")}) == [["MULTI03"]]


def test_no_claims_no_277ca():
    assert build_277ca([], ["ISA"], None, 1, NOW) is None


def test_written_per_interchange_atomically_private_and_inside_the_folder(tmp_path):
    """write_277cas streams one file per interchange, each what build_277ca makes of it, under the
    caller's control numbers; 0600 (it names patients), no temp file left, an unsafe name kept inside."""
    path = FIXTURES / "837p-multi-interchange.837"
    result = scrub(path, tmp_path)
    written = write_277cas(path, result.findings, tmp_path / "acks", "../in box/multi.837", iter([71, 72]), now=NOW,
                           received=date(2026, 12, 1))
    assert [p.parent for p in written] == [tmp_path / "acks"] * 2
    assert [p.name.split(".")[-2:] for p in written] == [["000000101", "277"], ["000000102", "277"]]
    assert sorted(p.name for p in (tmp_path / "acks").iterdir()) == sorted(p.name for p in written)
    expected = [text for _outcomes, text in acks(path, tmp_path, control=71)]
    assert [p.read_text() for p in written] == expected
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in written)


def test_every_holding_rule_has_a_status():
    """A rule that can hold a claim (severity error) has a chosen status code; no entry names an unknown rule."""
    rules = load_tables().rules
    holding = {r for r, info in rules.items() if info.severity == "error"}
    assert holding - set(RULE_STATUS) == set()
    assert set(RULE_STATUS) - set(rules) == set()
    for category, code, _entity in RULE_STATUS.values():
        assert category in ("A6", "A7", "A8") and code.isdigit()


def test_a_rule_without_a_chosen_status_gets_21_with_a_second_code(tmp_path):
    """An unmapped holding rule is rejected A7:21 (missing or invalid information), which the code list
    allows only with a second status code: STC10 A7:454 for a line, A7:275 for the claim."""
    from edi_pipeline.scrub.ack277 import ClaimOutcome, Rejection

    (outcomes, _text), = acks(FIXTURES / "837p-clean.837", tmp_path)
    first, second, *rest = outcomes
    held = [ClaimOutcome(first.claim, (Rejection("NEW-RULE", "A7", "21", None, first.claim.lines[0]),)),
            ClaimOutcome(second.claim, (Rejection("OTHER-RULE", "A7", "21"),)), *rest]
    isa = (FIXTURES / "837p-clean.837").read_text().split("~")[0].split("*")
    text = build_277ca(held, isa, None, 9, NOW)
    assert not [str(i) for i in validate_tr3(text, "x.277").issues if i.severity is Severity.ERROR]
    a, b, *_ = claim_statuses(iter_277ca(text.encode(), "x.277"))
    assert [(c.category, c.code) for c in a.statuses[0].codes] == [("A7", "21"), ("A7", "454")]
    assert [(c.category, c.code) for c in a.lines[0].statuses[0].codes] == [("A7", "21"), ("A7", "454")]
    assert [(c.category, c.code) for c in b.statuses[0].codes] == [("A7", "21"), ("A7", "275")]
    assert (a.statuses[0].message, b.statuses[0].message) == ("NEW-RULE", "OTHER-RULE")


def test_generated_claims_with_many_findings_pass_x214(tmp_path):
    """A generated file where half the claims trip rules (several findings on one line among them): every
    277CA passes X214, a rejected line has one STC (TR3 max use 1), its further codes in STC10/STC11."""
    import sys

    sys.path.insert(0, str(FIXTURES.parent.parent / "scripts"))
    import generate

    p837, _p835, _stats = generate.generate(300, 3, tmp_path, claims_per_st=100, trip_rate=0.5)
    result = scrub(p837, tmp_path)
    written = write_277cas(p837, result.findings, tmp_path / "acks", p837.name, iter([5]), now=NOW)
    text = written[0].read_text()
    assert not [str(i) for i in validate_tr3(text, "gen.277").issues if i.severity is Severity.ERROR]
    statuses = claim_statuses(iter_277ca(written[0]))
    lines = [ln for s in statuses for ln in s.lines]
    assert lines and all(len(ln.statuses) == 1 for ln in lines)
    assert any(len(ln.statuses[0].codes) > 1 for ln in lines)
    held = {f.claim.patient_control_number for f in result.findings if f.hold}
    assert {s.patient_control_number for s in statuses if s.rejected} == held


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_damaged_837s_get_a_readable_277ca_or_our_error(data, tmp_path_factory):
    """Whatever a damaged 837P holds, the 277CA is written (or our own error says why) and reads back
    with one status per claim."""
    d = tmp_path_factory.mktemp("dmg")
    src = d / "in.837"
    src.write_bytes(data)
    try:
        result = scrub(src, d)
        written = write_277cas(src, result.findings, d / "acks", "in.837", itertools.count(1), now=NOW)
    except EdiError:
        return
    claims = sum(len(outcomes) for _i, _isa, _gs, outcomes in set_outcomes(src, result.findings))
    issues = IssueList()
    assert sum(len(claim_statuses(iter_277ca(p, None, issues))) for p in written) == claims
    assert not issues.errors


def test_amounts_too_large_for_cents_do_not_crash():
    """A charge or unit count of 1E+30 (past the 18 digits of an X12 number: read as malformed, None) does
    not crash the builder, and is not echoed."""
    from edi_pipeline.scrub.ack277 import ClaimOutcome, Rejection
    from edi_pipeline.tx.document import iter_records

    src = (FIXTURES / "837p-clean.837").read_text().replace("CLM*CLEANMCR01*410*", "CLM*CLEANMCR01*1E30*", 1)
    src = src.replace("SV1*HC:99213:25*120*UN*1*", "SV1*HC:99213:25*120*UN*1E30*", 1)
    claims = list(iter_records(src.encode(), "big.837"))
    outcomes = [ClaimOutcome(claims[0], (Rejection("DX-POINTER", "A7", "477", None, claims[0].lines[0]),)),
                *(ClaimOutcome(c) for c in claims[1:])]
    text = build_277ca(outcomes, src.split("~")[0].split("*"), None, 3, NOW)
    assert "STC*A7:477*20261202*U*" in text and "0" * 30 not in text and "E30" not in text


def test_batch_writes_a_277ca_per_scrubbed_interchange_and_each_passes_x214(tmp_path):
    """The batch answers every 837P interchange it scrubs with a 277CA in acks/ (beside its 999s), under
    control numbers of the ack folder's own sequence, each passing pyx12's X214 map; a TA1-rejected or
    quarantined file gets none."""
    import json
    import shutil

    from click.testing import CliRunner

    from edi_pipeline.cli.commands import cli

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = ["837p-clean.837", "837p-multi-interchange.837", "837p-tpi-anesthesia.837", "837p-invalid-se-count.837"]
    for n in names:
        shutil.copyfile(FIXTURES / n, inbox / n)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--settle", "0", "--quiet",
                                 "--format", "json"])
    summary = json.loads(r.stdout)
    done = [o["name"] for o in summary["file_outcomes"] if o["status"] == "done" and not o["sets_rejected"]]
    answered_by_999 = [o["name"] for o in summary["file_outcomes"] if o["sets_rejected"]]
    assert done and answered_by_999 == ["837p-invalid-se-count.837"], r.output  # its one set: the 999 rejects it
    written = sorted((out / "acks").glob("*.277"))
    interchanges = sum(len(re.findall(r"(?:^|~\s*)ISA\*", (FIXTURES / n).read_text())) for n in done)
    assert summary["claim_acks"] == len(written) == interchanges
    assert {p.name.split(".")[0] for p in written} == {n.split(".")[0] for n in done}
    controls = set()
    for p in written:
        text = p.read_text()
        result = validate_tr3(text, p.name)
        assert not [str(i) for i in result.issues if i.severity is Severity.ERROR], p.name
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        controls.add(text[90:99])
    assert len(controls) == len(written)  # each its own ISA13, from the folder's sequence
