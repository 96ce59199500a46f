"""resubmit: corrected (CLM05-3 = 7) and void (8) claims rebuilt from their source files, with REF*F8, the
scrubber's corrections, refusals named one per line, and outputs that pass `validate` and pyx12."""

from __future__ import annotations

import shutil
import stat
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

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


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    for name in ("pair-denials.837", "pair-denials.835"):
        src = tmp_path / name
        shutil.copy(FIXTURES / name, src)
        assert ingest_file(src, store).status == INGESTED
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
