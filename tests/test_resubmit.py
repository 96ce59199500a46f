"""resubmit: corrected (CLM05-3 = 7) and void (8) claims rebuilt from their source files, with REF*F8, the
scrubber's corrections, refusals named one per line, and outputs that pass `validate` and pyx12."""

from __future__ import annotations

import re
import shutil
import stat
import sys
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated

from edi_pipeline.analytics import lifecycle
from edi_pipeline.cli.commands import cli
from edi_pipeline.tx.document import iter_records
from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.tx.model import Claim
from edi_pipeline.pipeline.resubmit import ResubmitError, edit_claim, payer_claim_number, resubmit
from edi_pipeline.store.store import Store
from edi_pipeline.x12.reader import Delimiters

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "edi"
sys.path.insert(0, str(ROOT / "scripts"))
import x12gen  # noqa: E402


def ingested_store(tmp_path, db_name: str, pair: str):
    """A store at tmp_path/db_name holding fixture pair PAIR.837 and PAIR.835 (copied beside it)."""
    path = tmp_path / db_name
    store = Store(path)
    for name in (f"{pair}.837", f"{pair}.835"):
        src = tmp_path / name
        shutil.copy(FIXTURES / name, src)
        assert ingest_file(src, store).status == INGESTED
    return store, path


@pytest.fixture
def db(tmp_path):
    store, path = ingested_store(tmp_path, "s.db", "pair-denials")
    yield store, path
    store.close()


def claims_of(path: Path) -> dict[str, Claim]:
    return {r.patient_control_number: r for r in iter_records(path) if isinstance(r, Claim)}


def segments_of(claim: Claim) -> list[str]:
    return claim.segments[claim.start:claim.end]


def valid(path: Path) -> None:
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0, r.output
    ok, errors = x12gen.pyx12_validate(path.read_text())
    assert ok, errors[:3]


def test_corrected_claim_has_frequency_7_the_payers_f8_and_the_scrubbers_correction(db, tmp_path):
    store, path = db
    out = tmp_path / "out.837"
    r = CliRunner().invoke(cli, ["resubmit", "DUNITS01", "DDUP01", "-o", str(out), "--db", str(path),
                                 "--source", str(tmp_path)])
    assert r.exit_code == 0, r.output
    claims = claims_of(out)
    assert set(claims) == {"DUNITS01", "DDUP01"}
    c = claims["DUNITS01"]
    assert c.frequency_code == "7"
    assert c.payer_claim_control_number == payer_claim_number(store, "DUNITS01") == "26290000108"  # the 835's CLP07
    assert c.lines[0].units == 1 and c.total_charge == 250  # DN-UNITS corrected 2 units / 500.00
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    valid(out)


def test_void_has_frequency_8_and_only_the_claim(db, tmp_path):
    store, _ = db
    out = tmp_path / "void.837"
    assert resubmit(store, ["DAUTH01"], str(out), void=True, sources=[tmp_path]).claims == ["DAUTH01"]
    claims = claims_of(out)
    assert list(claims) == ["DAUTH01"] and claims["DAUTH01"].frequency_code == "8"
    assert claims["DAUTH01"].payer_claim_control_number
    valid(out)


def test_the_interchange_control_number_is_new(db, tmp_path):
    store, _ = db
    out = tmp_path / "void.837"
    resubmit(store, ["DAUTH01"], str(out), void=True, sources=[tmp_path])
    r = ingest_file(out, store)  # not a resend of the original interchange
    assert r.status == INGESTED, r.reason


def test_refusals_are_named_and_the_rest_is_written(db, tmp_path):
    _, path = db
    out = tmp_path / "out.837"
    r = CliRunner().invoke(cli, ["resubmit", "DUNITS01", "NOREMIT01", "NOSUCH", "DMISSINFO01", "-o", str(out),
                                 "--db", str(path), "--source", str(tmp_path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "claim NOREMIT01: no payer claim control number" in r.output
    assert "claim NOSUCH: not in the store" in r.output
    assert "claim DMISSINFO01: the scrubber holds it" in r.output
    assert list(claims_of(out)) == ["DUNITS01"]


def test_nothing_to_write_leaves_no_file(db, tmp_path):
    store, path = db
    out = tmp_path / "out.837"
    with pytest.raises(ResubmitError):
        resubmit(store, ["DMISSINFO01"], str(out), sources=[tmp_path])
    r = CliRunner().invoke(cli, ["resubmit", "NOREMIT01", "-o", str(out), "--db", str(path),
                                 "--source", str(tmp_path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".resubmit.")]


def test_a_source_file_changed_since_ingest_is_refused(db, tmp_path):
    store, _ = db
    src = tmp_path / "pair-denials.837"
    src.write_text(src.read_text().replace("BHT*0019", "BHT*0019 "))
    with pytest.raises(ResubmitError, match="is not in"):
        resubmit(store, ["DUNITS01"], str(tmp_path / "o.837"), sources=[tmp_path, src])


def test_a_277ca_payer_claim_number_serves_when_there_is_no_835(db, tmp_path):
    store, _ = db
    assert payer_claim_number(store, "NOREMIT01") is None
    lifecycle.record_event(store, "NOREMIT01", lifecycle.CLAIM_ACCEPTED, date(2026, 10, 8), "a.277", 7, None,
                           "1K:PAYER777")
    out = tmp_path / "v.837"
    resubmit(store, ["NOREMIT01"], str(out), void=True, sources=[tmp_path])
    assert claims_of(out)["NOREMIT01"].payer_claim_control_number == "PAYER777"


def test_edit_claim_replaces_an_f8_or_inserts_it_after_the_refs_that_precede_it():
    class C:
        start, end, delimiters, segment = 0, 4, Delimiters(), Claim.segment

        def __init__(self, segments):
            self.segments = segments

    c = C(["CLM*A*10***11:B:1*Y*A*Y*Y", "DTP*431*D8*20261001", "REF*G1*AUTH1", "HI*ABK:G894"])
    assert edit_claim(c, "7", "ICN1") == [
        "CLM*A*10***11:B:7*Y*A*Y*Y", "DTP*431*D8*20261001", "REF*G1*AUTH1", "REF*F8*ICN1", "HI*ABK:G894"]
    c = C(["CLM*A*10***11:B:7*Y*A*Y*Y", "REF*F8*OLD", "REF*X4*1", "HI*ABK:G894"])
    assert edit_claim(c, "8", "NEW")[:2] == ["CLM*A*10***11:B:8*Y*A*Y*Y", "REF*F8*NEW"]
    c = C(["CLM|A|10|||11>B|Y", "HI|ABK>G894"])  # other delimiters, a CLM05 without CLM05-3
    c.delimiters = Delimiters("|", ">")
    assert edit_claim(c, "7", "ICN1") == ["CLM|A|10|||11>B>7|Y", "REF|F8|ICN1", "HI|ABK>G894"]


# ------------------------------------------------------------------ --secondary

@pytest.fixture
def sec(tmp_path):
    store, path = ingested_store(tmp_path, "sec.db", "pair-secondary")
    yield store, path
    store.close()


def loops_of(claim: Claim) -> list[list[str]]:
    """The claim's 2300 segments split at each SBR (2320) and LX (2400)."""
    out: list[list[str]] = [[]]
    for s in segments_of(claim):
        if s.startswith(("SBR*", "LX*")):
            out.append([])
        out[-1].append(s)
    return out


def test_secondary_claim_goes_to_the_other_payer_with_the_primarys_835(sec, tmp_path):
    _, path = sec
    out = tmp_path / "secondary.837"
    r = CliRunner().invoke(cli, ["resubmit", "SECPAID01", "SECDENY01", "--secondary", "-o", str(out),
                                 "--db", str(path), "--source", str(tmp_path)])
    assert r.exit_code == 0, r.output
    claims = claims_of(out)
    assert set(claims) == {"SECPAID01", "SECDENY01"}
    c = claims["SECPAID01"]
    assert (c.payer.id, c.claim_filing_indicator, c.subscriber.member_id) == ("HMG01", "CI", "HMG0000101")
    assert c.frequency_code == "1" and c.total_charge == 370
    text = out.read_text()
    assert text.count("SBR*S*18*******CI~") == 2  # 2000B: the secondary is now the destination payer
    primary, *lines = loops_of(c)[1:]
    assert primary == ["SBR*P*18*******MB", "AMT*D*152", "AMT*EAF*38", "OI***Y***Y",
                       next(s for s in primary if s.startswith("NM1*IL")), "N3*4910 MILLRACE RD",
                       "N4*CEDARPORT*MI*48050", "NM1*PR*2*MEDICARE PART B*****PI*MCRB1", "REF*F8*26290000501"]
    assert primary[4].endswith("*MI*3EG110FK70")  # 2330A: the Medicare member id
    for line in lines:  # 2430: SVD02 + line CAS = SV102, dated the 835's payment
        charge = Decimal(line[1].split("*")[2])
        svd = next(s for s in line if s.startswith("SVD*"))
        cas = [s.split("*") for s in line if s.startswith("CAS*")]
        assert svd.split("*")[1] == "MCRB1" and line[-1] == "DTP*573*D8*20261110"
        assert Decimal(svd.split("*")[2]) + sum(Decimal(e[k]) for e in cas for k in range(3, len(e), 3)) == charge
    denied = loops_of(claims["SECDENY01"])[2]
    assert "SVD*MCRB1*0*HC:20552**1" in denied and "CAS*CO*50*150" in denied
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    valid(out)


def test_secondary_refuses_a_claim_without_an_835_or_another_payer(sec, tmp_path):
    store, path = sec
    out = tmp_path / "secondary.837"
    r = CliRunner().invoke(cli, ["resubmit", "SECNOSEC01", "SECNOREMIT01", "--secondary", "-o", str(out),
                                 "--db", str(path), "--source", str(tmp_path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "claim SECNOSEC01: no other payer on the claim (2320/2330B)" in r.output
    assert "claim SECNOREMIT01: no 835 of the primary payer in the store" in r.output
    assert not out.exists()
    r = CliRunner().invoke(cli, ["resubmit", "SECPAID01", "--secondary", "--void", "-o", str(out),
                                 "--db", str(path), "--source", str(tmp_path)])
    assert r.exit_code == 1 and "not both" in r.output and not out.exists()


def test_secondary_refuses_an_835_answer_that_does_not_balance_and_names_its_position(sec, tmp_path):
    store, path = sec
    store.conn.execute("update adjustments set amount_cents = amount_cents - 100 where group_code = 'PR' and "
                       "service_payment_id in (select sp.id from service_payments sp join claim_payments cp on "
                       "cp.id = sp.claim_payment_id where cp.patient_control_number = 'SECPAID01' and sp.seq = 0)")
    store.conn.commit()
    out = tmp_path / "secondary.837"
    r = CliRunner().invoke(cli, ["resubmit", "SECPAID01", "SECDENY01", "--secondary", "-o", str(out),
                                 "--db", str(path), "--source", str(tmp_path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    m = re.search(r"claim SECPAID01: pair-secondary\.835:(\d+): SVC#\d+ \[2110\] SVC03 SECONDARY-BALANCE "
                  r"claim line 1: paid 88 \+ adjustments 161 != charge 250", r.output)
    assert m, r.output
    assert (tmp_path / "pair-secondary.835").read_text().splitlines()[int(m.group(1)) - 1].startswith(
        "SVC*HC:20553*250*88")
    assert "claim SECPAID01: pair-secondary.835:" in r.output and "CLP#" in r.output  # the claim is off too
    assert list(claims_of(out)) == ["SECDENY01"]
    valid(out)


def test_secondary_with_only_a_claim_level_835_answer_dates_the_2330b(sec, tmp_path):
    """An 835 answer without SVC lines: its claim-level CAS in the 2320, DTP*573 in the 2330B, no 2430."""
    store, _ = sec
    store.conn.execute("delete from adjustments where service_payment_id in (select sp.id from service_payments sp "
                       "join claim_payments cp on cp.id = sp.claim_payment_id where cp.patient_control_number = "
                       "'SECPAID01')")
    store.conn.execute("delete from service_payments where claim_payment_id in (select id from claim_payments "
                       "where patient_control_number = 'SECPAID01')")
    cp = next(store.query("select id from claim_payments where patient_control_number = 'SECPAID01'"))["id"]
    store.conn.executemany("insert into adjustments (id, claim_payment_id, group_code, reason, amount_cents) "
                           "values (?, ?, ?, ?, ?)", [(f"{cp}:c0", cp, "CO", "45", 18000),
                                                      (f"{cp}:c1", cp, "PR", "2", 3800)])
    store.conn.commit()
    out = tmp_path / "secondary.837"
    resubmit(store, ["SECPAID01"], str(out), sources=[tmp_path], secondary=True)
    primary, *lines = loops_of(claims_of(out)["SECPAID01"])[1:]
    assert primary[:3] == ["SBR*P*18*******MB", "CAS*CO*45*180", "CAS*PR*2*38"]
    assert "DTP*573*D8*20261110" in primary and not [s for ln in lines for s in ln if s.startswith("SVD")]
    valid(out)


def test_secondary_refuses_a_reversed_answer_and_a_patient_who_is_not_the_subscriber_of_both(tmp_path):
    src = tmp_path / "pair-secondary.837"
    src.write_text((FIXTURES / "pair-secondary.837").read_text().replace("SBR*S*18", "SBR*S*01", 1))  # SECPAID01
    store = Store(tmp_path / "s.db")
    for p in (src, FIXTURES / "pair-secondary.835"):
        assert ingest_file(p, store).status == INGESTED
    store.conn.execute("update claim_payments set status_code = '22' where patient_control_number = 'SECDENY01'")
    store.conn.commit()
    with pytest.raises(ResubmitError) as e:
        resubmit(store, ["SECPAID01", "SECDENY01"], str(tmp_path / "o.837"), sources=[tmp_path], secondary=True)
    assert "claim SECPAID01: the patient is not the subscriber of both payers" in str(e.value)
    assert "claim SECDENY01: its latest 835 payment (CLP02 22) is not a primary payer's adjudication" in str(e.value)
    assert not (tmp_path / "o.837").exists()
    store.close()


@st.composite
def secondary_837_edits(draw) -> bytes:
    """pair-secondary.837 with 2000B/2300/2320/2330/2400 segments dropped, duplicated or with an element
    emptied, SE01 recounted: damage the ingest still takes, so the secondary builder meets it."""
    segs = (FIXTURES / "pair-secondary.837").read_text().split("~\n")
    body = range(next(k for k, t in enumerate(segs) if t.startswith("HL*2*")), len(segs) - 4)
    for _ in range(draw(st.integers(1, 3))):
        k = min(draw(st.sampled_from(body)), len(segs) - 5)  # the set shrinks as segments are dropped
        op = draw(st.sampled_from(["drop", "dup", "blank"]))
        e = segs[k].split("*")
        if op == "drop":
            del segs[k]
        elif op == "dup":
            segs.insert(k, segs[k])
        elif len(e) > 1:
            e[draw(st.integers(1, len(e) - 1))] = ""
            segs[k] = "*".join(e)
    se = next(k for k, t in enumerate(segs) if t.startswith("SE*"))
    st_ = next(k for k, t in enumerate(segs) if t.startswith("ST*"))
    segs[se] = f"SE*{se - st_ + 1}*0001"
    return "~\n".join(segs).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated([(FIXTURES / "pair-secondary.837").read_bytes()]), secondary_837_edits()))
def test_secondary_of_a_damaged_837_never_crashes(tmp_path, data):
    """Whatever the stored claim's file holds, --secondary writes an 837P or refuses (ResubmitError, no
    file); from a file that `validate` accepts, the output is accepted too."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    (work / "pair-secondary.837").write_bytes(data)
    store = Store(":memory:")
    try:
        ingest_file(work / "pair-secondary.837", store)
        ingest_file(FIXTURES / "pair-secondary.835", store)
        out = work / "o.837"
        try:
            resubmit(store, ["SECPAID01", "SECDENY01"], str(out), sources=[work], secondary=True)
        except ResubmitError:
            assert not out.exists()
        else:
            if CliRunner().invoke(cli, ["validate", str(work / "pair-secondary.837")]).exit_code == 0:
                r = CliRunner().invoke(cli, ["validate", str(out)])
                assert r.exit_code == 0, r.output
    finally:
        store.close()


def test_claims_from_two_source_files_go_in_one_functional_group(db, tmp_path):
    """Two source files, one GS: GS06 once per interchange (pyx12 rejects a repeated GS06), ST02 0001 and 0002."""
    store, path = db
    shutil.copy(FIXTURES / "pair-corrections.837", tmp_path)
    shutil.copy(FIXTURES / "pair-corrections.835", tmp_path)
    for name in ("pair-corrections.837", "pair-corrections.835"):
        assert ingest_file(tmp_path / name, store).status == INGESTED
    out = tmp_path / "void.837"
    assert resubmit(store, ["DAUTH01", "CORRPI01"], str(out), void=True, sources=[tmp_path]).claims == [
        "DAUTH01", "CORRPI01"]
    segs = x12gen.split_segments(out.read_text())
    assert [s[:3] for s in segs if s[:2] in ("GS", "GE", "ST", "SE")] == ["GS*", "ST*", "SE*", "ST*", "SE*", "GE*"]
    assert [s.split("*")[2] for s in segs if s.startswith(("ST*", "SE*"))] == ["0001", "0001", "0002", "0002"]
    assert next(s for s in segs if s.startswith("GE*")).split("*")[1] == "2"
    valid(out)


def test_a_claim_whose_source_has_other_delimiters_is_refused_other_whitespace_is_not(db, tmp_path):
    store, _ = db
    shutil.copy(FIXTURES / "837p-crlf-bom.837", tmp_path)
    (tmp_path / "pipes.837").write_text((FIXTURES / "837p-clean.837").read_text().replace("*", "|"))
    for name, pcn in (("837p-crlf-bom.837", "CRLFBOM01"), ("pipes.837", "CLEANMCR01")):
        assert ingest_file(tmp_path / name, store).status == INGESTED
        lifecycle.record_event(store, pcn, lifecycle.CLAIM_ACCEPTED, date(2026, 10, 8), "a.277", 7, None, "1K:P1")
    out = tmp_path / "void.837"
    r = resubmit(store, ["DAUTH01", "CRLFBOM01", "CLEANMCR01"], str(out), void=True, sources=[tmp_path])
    assert r.claims == ["DAUTH01", "CRLFBOM01"]
    assert r.refused == ["claim CLEANMCR01: its source file's delimiters differ from the first claim's "
                         "(resubmit it on its own)"]
    assert "|" not in out.read_text() and "\r" not in out.read_text()
    valid(out)
