"""scrub_file end to end: goldens, idempotence, unchanged claims, HL rebuilding, history and the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import corpus_params

from edi_pipeline.tx.document import iter_records
from edi_pipeline.scrub.scrubber import ScrubError, _prune, scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.tr3.reference import validate_tr3
from edi_pipeline.x12.reader import Delimiters
from edi_pipeline.x12.writer import renumber_hl_at, set_se_count

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "edi"
EXPECTED = FIXTURES / "expected"
GOLDEN = sorted(p.name for p in FIXTURES.glob("837p-*.837") if "invalid" not in p.name)


def run(src: Path, tmp_path: Path, store: Store | None = None, tag: str = "out"):
    own = store is None
    store = store or Store(":memory:")
    out, rej = tmp_path / f"{src.name}.{tag}.837", tmp_path / f"{src.name}.{tag}.rej.837"
    try:
        return scrub_file(src, out, rej, store), out, rej
    finally:
        if own:
            store.close()


def claims(path: Path):
    if not path.read_bytes():
        return []
    return [r for r in iter_records(path.read_bytes(), path.name) if hasattr(r, "lines")]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_output(tmp_path, name):
    """Compare with fixtures/edi/expected/<name>.scrubbed.837 (rewrite with scripts/update_goldens.py)."""
    golden = EXPECTED / f"{name}.scrubbed.837"
    assert golden.exists(), f"missing golden {golden.name}: run python scripts/update_goldens.py"
    _, out, _ = run(FIXTURES / name, tmp_path)
    assert out.read_bytes() == golden.read_bytes()


@pytest.mark.parametrize("name", GOLDEN)
def test_idempotent(tmp_path, name):
    _, once, _ = run(FIXTURES / name, tmp_path, tag="once")
    if not once.read_bytes():
        pytest.skip("every claim held: nothing to re-scrub")
    result, twice, _ = run(once, tmp_path, tag="twice")
    assert [f.rule for f in result.findings if f.action != "none"] == []
    assert result.claims_held == 0
    assert twice.read_bytes() == once.read_bytes()


@pytest.mark.parametrize("name", GOLDEN)
def test_unchanged_claims_are_byte_identical(tmp_path, name):
    result, out, _ = run(FIXTURES / name, tmp_path)
    edited = {f.claim.patient_control_number for f in result.findings if f.edits}
    before = {c.patient_control_number: c.raw for c in claims(FIXTURES / name)}
    after = claims(out)
    assert len(after) == result.claims_out
    for c in after:
        if c.patient_control_number not in edited:
            assert c.raw == before[c.patient_control_number]
        else:
            assert c.raw != before[c.patient_control_number]


@pytest.mark.parametrize("name", ["837p-clean.837", "837p-multi-interchange.837", "837p-crlf-bom.837"])
def test_file_without_corrections_is_copied_exactly(tmp_path, name):
    result, out, rej = run(FIXTURES / name, tmp_path)
    assert result.claims_held == 0 and not rej.exists()
    data = (FIXTURES / name).read_bytes()
    assert out.read_bytes() == data.removeprefix(b"\xef\xbb\xbf")


def test_corrected_outputs_stay_tr3_valid(tmp_path):
    for name in GOLDEN:
        if "x222a2" in name or "crlf-bom" in name:
            continue
        result, out, rej = run(FIXTURES / name, tmp_path)
        for p in (out, rej):
            if p.exists() and p.read_bytes():
                errs = validate_tr3(p.read_text(), p.name).errors
                assert errs == [], (name, [str(e) for e in errs])


def _marks(segs):
    return [i for i, text in enumerate(segs) if text[:2] == "HL" or text[:3] == "CLM"]


def test_prune_drops_emptied_subscriber_and_patient_loops():
    segs = ["ST*837*1", "BHT*0019", "HL*1**20*1", "NM1*85", "HL*2*1*22*1", "SBR*P", "HL*3*2*23*0", "PAT*19",
            "HL*4*1*22*0", "SBR*P", "CLM*B*10", "SE*11*1"]
    out, hl_at = _prune(segs, _marks(segs), "*")
    renumber_hl_at(out, hl_at, Delimiters())
    assert out == ["ST*837*1", "BHT*0019", "HL*1**20*1", "NM1*85", "HL*2*1*22*0", "SBR*P", "CLM*B*10", "SE*11*1"]
    empty = ["ST*837*1", "HL*1**20*1", "HL*2*1*22*0", "SE*4*1"]
    assert _prune(empty, _marks(empty), "*") is None


def test_whole_transaction_dropped_when_every_claim_is_held(tmp_path):
    result, out, rej = run(FIXTURES / "837p-dx-pointer.837", tmp_path)
    assert result.claims_out == 0 and result.transactions_dropped == 1
    assert out.read_bytes() == b""
    assert len(claims(rej)) == 1 and validate_tr3(rej.read_text()).errors == []


def test_rejects_keep_envelope_and_only_held_claims(tmp_path):
    result, out, rej = run(FIXTURES / "837p-auth-required.837", tmp_path)
    assert result.claims_held == 2
    src = (FIXTURES / "837p-auth-required.837").read_text().split("~")
    got = rej.read_text().split("~")
    assert got[:3] == src[:3]  # ISA, GS, ST
    assert sorted(c.patient_control_number for c in claims(rej)) == ["AUTHREQ01", "AUTHREQ02"]


def test_a_claim_with_an_invalid_value_is_held_not_sent(tmp_path):
    """No rule can correct a charge that is not a number, and the payer would reject the claim:
    it goes to the rejects file untouched, the others go out, and the outbound file is TR3-valid."""
    text = (FIXTURES / "837p-clean.837").read_text()
    src = tmp_path / "bad.837"
    src.write_text(text.replace("SV1*HC:20553*250*", "SV1*HC:20553*2X50*", 1))
    store = Store(tmp_path / "s.db")
    result, out, rej = run(src, tmp_path, store)
    assert [c["patient_control_number"] for c in result.claims_invalid] == ["CLEANMCR01"]
    assert "IK4-6" in result.claims_invalid[0]["error"] and result.claims_held == 1
    assert [c.patient_control_number for c in claims(rej)] == ["CLEANMCR01"]
    sent = {c.patient_control_number for c in claims(out)}
    assert "CLEANMCR01" not in sent and len(sent) == result.claims_out == result.claims_in - 1
    assert validate_tr3(out.read_text()).errors == []
    stored = {r["patient_control_number"] for r in store.query("select patient_control_number from claims")}
    assert stored == sent
    store.close()


def test_withheld_sets_go_to_rejects_whole_and_nothing_of_them_is_stored(tmp_path):
    src = FIXTURES / "837p-multi-interchange.837"
    first = [r for r in iter_records(src) if hasattr(r, "lines")]
    store = Store(tmp_path / "s.db")
    out, rej = tmp_path / "o.837", tmp_path / "r.837"
    result = scrub_file(src, out, rej, store, withheld={(1, "10101", "0001")})
    assert len(result.sets_withheld) == 1 and result.sets_withheld[0]["claims"] >= 1
    held = {c.patient_control_number for c in claims(rej)}
    sent = {c.patient_control_number for c in claims(out)}
    assert held and sent and not held & sent and held | sent == {c.patient_control_number for c in first}
    assert result.claims_held == len(held) and result.claims_in == len(first)
    stored = {r["patient_control_number"] for r in store.query("select patient_control_number from claims")}
    assert stored <= sent
    store.close()


def test_never_overwrites_input(tmp_path):
    src = tmp_path / "in.837"
    src.write_bytes((FIXTURES / "837p-tpi-units.837").read_bytes())
    with pytest.raises(ScrubError):
        scrub_file(src, src, None, None)


def test_truncated_input_is_an_error(tmp_path):
    with pytest.raises(ScrubError, match=r"837p-invalid-truncated.837:\d+:"):
        run(FIXTURES / "837p-invalid-truncated.837", tmp_path)


def test_scrub_records_emitted_claims_and_findings(tmp_path):
    store = Store(tmp_path / "s.db")
    result, _, _ = run(FIXTURES / "837p-tpi-one-line.837", tmp_path, store)
    rows = list(store.db.query("select origin, count(*) n from claims group by origin"))
    assert rows == [{"origin": "scrub", "n": result.claims_out}]
    lines = list(store.db.query("select procedure, units from claim_lines"))
    assert lines == [{"procedure": "20553", "units": "1"}]  # the corrected claim, not the input
    assert store.db["findings"].count == len(result.findings)
    assert store.db["files"].count == 1
    run(FIXTURES / "837p-tpi-one-line.837", tmp_path, store)  # replay replaces, never duplicates
    assert store.db["claims"].count == result.claims_out
    store.close()


# ---------------------------------------------------------------- history across files

def subset(src: Path, pcns: set[str], dest: Path) -> Path:
    """A copy of a one-transaction fixture keeping only the subscriber loops of these claims."""
    text = src.read_text()
    segs = [s.strip() for s in text.split("~") if s.strip()]
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    body = segs[st:se + 1]
    hl = [i for i, s in enumerate(body) if s.startswith("HL*") and s.split("*")[3] == "22"]
    keep = body[:hl[0]]
    for k, i in enumerate(hl):
        block = body[i:hl[k + 1] if k + 1 < len(hl) else len(body) - 1]
        pcn = next(s.split("*")[1] for s in block if s.startswith("CLM*"))
        if pcn in pcns:
            keep += block
    keep = keep + [body[-1]]
    renumber_hl_at(keep, [i for i, s in enumerate(keep) if s.startswith("HL*")], Delimiters())
    keep = set_se_count(keep, Delimiters())
    dest.write_text("~\n".join(segs[:st] + keep + segs[se + 1:]) + "~\n")
    return dest


def test_history_second_file_counts_visits_from_store(tmp_path):
    src = FIXTURES / "837p-tpi-freq.837"
    first = subset(src, {"TPIFREQ01", "TPIFREQ02", "TPIFREQ03"}, tmp_path / "first.837")
    second = subset(src, {"TPIFREQ04"}, tmp_path / "second.837")
    assert validate_tr3(second.read_text()).errors == []
    # alone, the fourth session is not a repeat
    alone, _, _ = run(second, tmp_path, tag="alone")
    assert "TPI-FREQ" not in {f.rule for f in alone.findings}
    store = Store(tmp_path / "h.db")
    r1, _, _ = run(first, tmp_path, store)
    assert "TPI-FREQ" not in {f.rule for f in r1.findings}
    r2, _, _ = run(second, tmp_path, store)
    assert [f.rule for f in r2.findings] == ["TPI-FREQ"]
    # re-scrubbing either file does not double-count its own claims
    r1b, _, _ = run(first, tmp_path, store, tag="again")
    assert "TPI-FREQ" not in {f.rule for f in r1b.findings}
    r2b, _, _ = run(second, tmp_path, store, tag="again")
    assert [f.rule for f in r2b.findings] == ["TPI-FREQ"]
    store.close()


def test_cpm_monthly_counts_history(tmp_path):
    src = FIXTURES / "837p-cpm-monthly.837"
    pcns = sorted(c.patient_control_number for c in claims(src))
    a = subset(src, {pcns[0]}, tmp_path / "a.837")
    b = subset(src, {pcns[1]}, tmp_path / "b.837")
    store = Store(tmp_path / "h.db")
    ra, _, _ = run(a, tmp_path, store)
    assert "CPM-MONTHLY" not in {f.rule for f in ra.findings}
    rb, _, _ = run(b, tmp_path, store)
    assert "CPM-MONTHLY" in {f.rule for f in rb.findings}
    rb2, _, _ = run(b, tmp_path, store, tag="again")
    assert sum(f.rule == "CPM-MONTHLY" for f in rb2.findings) == 1
    store.close()


def test_report_has_no_phi(tmp_path):
    result, _, _ = run(FIXTURES / "837p-clean.837", tmp_path)
    for name in ("837p-tpi-units.837", "837p-acu-ncd-max.837", "837p-auth-required.837"):
        r, _, _ = run(FIXTURES / name, tmp_path)
        text = str(r.report())
        for c in claims(FIXTURES / name):
            p = c.patient or c.subscriber
            for secret in (c.subscriber.member_id, p.last_name, p.first_name,
                           p.birth_date.strftime("%Y%m%d") if p.birth_date else None):
                if secret:
                    assert secret not in text


# ---------------------------------------------------------------- streaming, one transaction set at a time

def segments(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().split("~") if s.strip()]


def envelope_file(dest: Path, isa: str, iea: str, groups: list[tuple[str, list[list[str]], str]]) -> Path:
    """An 837P file: ISA, each (GS, its transaction sets, GE), IEA."""
    segs = [isa]
    for gs, sets, ge in groups:
        segs += [gs] + [s for st in sets for s in st] + [ge]
    dest.write_text("~\n".join(segs + [iea]) + "~\n")
    return dest


def split_sets(segs: list[str]) -> list[list[str]]:
    """The ST..SE transaction sets of a segment list."""
    sets, cur = [], None
    for s in segs:
        if s.startswith("ST*"):
            cur = [s]
        elif cur is not None:
            cur.append(s)
            if s.startswith("SE*"):
                sets.append(cur)
                cur = None
    return sets


def test_generated_multi_set_file_scrubs_like_each_set_alone(tmp_path):
    """Rules run per transaction set: scrubbing a many-set, many-interchange file gives, set by set, what
    scrubbing each set alone in its own file gives, with GE01/IEA01 recounted over the surviving sets."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--claims", "120", "--seed", "5",
                    "--claims-per-st", "2", "--interchanges", "2", "--trip-rate", "0.7", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    src = tmp_path / "gen-120.837"
    whole, out, rej = run(src, tmp_path)
    assert whole.transactions_dropped > 0 and whole.claims_held > 0 and whole.claims_corrected > 0

    segs = segments(src)
    expected_main: list[list[str]] = []
    expected_rej: list[list[str]] = []
    findings = []
    isa = gs = None
    for k, s in enumerate(segs):
        if s.startswith("ISA*"):
            isa = s
        elif s.startswith("GS*"):
            gs = s
        elif s.startswith("ST*"):
            st = split_sets(segs[k:])[0]
            ctrl = gs.split("*")[6]
            one = envelope_file(tmp_path / f"one-{len(findings)}.837", isa, f"IEA*1*{isa.split('*')[13]}",
                                [(gs, [st], f"GE*1*{ctrl}")])
            alone, o, r = run(one, tmp_path)
            findings += [(f.rule, f.claim.patient_control_number, f.action, f.message) for f in alone.findings]
            expected_main += split_sets(segments(o)) if o.read_bytes() else []
            expected_rej += split_sets(segments(r)) if r.exists() else []
    assert split_sets(segments(out)) == expected_main
    assert split_sets(segments(rej)) == expected_rej
    assert [(f.rule, f.claim.patient_control_number, f.action, f.message) for f in whole.findings] == findings

    for path in (out, rej):  # every GE01 and IEA01 counts what was written
        got = segments(path)
        sets = groups = 0
        for s in got:
            if s.startswith("GS*"):
                sets, groups = 0, groups + 1
            elif s.startswith("SE*"):
                sets += 1
            elif s.startswith("GE*"):
                assert s.split("*")[1] == str(sets)
            elif s.startswith("IEA*"):
                assert s.split("*")[1] == str(groups)
                groups = 0
        assert validate_tr3(path.read_text(), path.name).errors == []


def test_dropped_sets_and_groups_are_recounted(tmp_path):
    """A set whose every claim is held leaves GE01 one short; a group left without sets is dropped from
    the corrected file (IEA01 recounted) and kept in the rejects file."""
    clean = split_sets(segments(FIXTURES / "837p-clean.837"))[0]
    held = split_sets(segments(FIXTURES / "837p-dx-pointer.837"))[0]

    def renumbered(st: list[str], ctrl: str) -> list[str]:
        return [st[0].replace("*0001*", f"*{ctrl}*", 1)] + st[1:-1] + [st[-1].replace("*0001", f"*{ctrl}")]

    isa = segments(FIXTURES / "837p-clean.837")[0]
    gs1 = "GS*HC*PAINCLINIC01*CLEARHOUSE01*20261201*1200*101*X*005010X222A1"
    gs2 = gs1.replace("*101*", "*102*")
    src = envelope_file(tmp_path / "multi.837", isa, "IEA*2*000001000", [
        (gs1, [renumbered(clean, "0001"), renumbered(held, "0002")], "GE*2*101"),
        (gs2, [renumbered(held, "0003")], "GE*1*102")])
    result, out, rej = run(src, tmp_path)
    assert result.transactions_dropped == 2 and result.claims_held == 2
    main = segments(out)
    assert [s for s in main if s[:2] in ("IS", "GS", "ST", "SE", "GE", "IE")] == [
        isa, gs1, "ST*837*0001*005010X222A1", clean[-1], "GE*1*101", "IEA*1*000001000"]
    rejects = segments(rej)
    assert [s for s in rejects if s[:2] in ("GS", "ST", "GE", "IE")] == [
        gs1, "ST*837*0002*005010X222A1", "GE*1*101",
        gs2, "ST*837*0003*005010X222A1", "GE*1*102", "IEA*2*000001000"]
    for path in (out, rej):
        assert validate_tr3(path.read_text(), path.name).errors == []


def test_failure_part_way_leaves_no_output_and_no_store_rows(tmp_path):
    """The outputs are written as the scrub goes, but only renamed into place (and the store rows only
    committed) once the whole file is scrubbed."""
    good = split_sets(segments(FIXTURES / "837p-tpi-units.837"))[0]
    isa = segments(FIXTURES / "837p-tpi-units.837")[0]
    gs = "GS*HC*PAINCLINIC01*CLEARHOUSE01*20261201*1200*101*X*005010X222A1"
    src = envelope_file(tmp_path / "partial.837", isa, "IEA*1*000001000",
                        [(gs, [good, good[:-1]], "GE*2*101")])  # the second set has no SE
    store = Store(tmp_path / "s.db")
    with pytest.raises(ScrubError, match="truncated"):
        run(src, tmp_path, store)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".s.db.migrate.lock") == [
        "partial.837", "s.db", "s.db-shm", "s.db-wal"]
    assert store.table_counts(("files", "claims", "claim_lines", "findings")) == {
        "files": 0, "claims": 0, "claim_lines": 0, "findings": 0}
    store.close()


@pytest.mark.parametrize("name", ["837p-clean.837", "837p-tpi-units.837", "837p-tpi-anesthesia.837"])
def test_streamed_report_is_the_report(tmp_path, name):
    import io
    import json

    result, _, _ = run(FIXTURES / name, tmp_path)
    buf = io.StringIO()
    result.write_report(buf)
    assert json.loads(buf.getvalue()) == json.loads(json.dumps(result.report()))


def test_findings_past_the_memory_limit_come_back_from_disk_in_order():
    from edi_pipeline.rules.engine import ClaimRef, Finding, FindingLog, LineRef

    log = FindingLog(keep=2)
    made = [Finding("TPI-UNITS", "warning", ClaimRef(f"PCN{k}"), LineRef(k, "20552") if k % 2 else None,
                    "set_units", f"message {k}") for k in range(7)]
    log.extend(made[:5])
    assert len(log) == 5 and [f.message for f in log] == [f"message {k}" for k in range(5)]
    log.extend(made[5:])  # appending after reading goes on at the end
    back = list(log)
    assert [f.to_dict() for f in back] == [f.to_dict() for f in made]
    assert back[3].claim.patient_control_number == "PCN3" and back[4].line is None


def test_a_scrub_whose_findings_spill_to_disk_reports_the_same(tmp_path, monkeypatch):
    import json

    from edi_pipeline.scrub import scrubber as scrub_module
    from edi_pipeline.rules.engine import FindingLog

    name = "837p-tpi-modifiers.837"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    in_memory, _, _ = run(FIXTURES / name, tmp_path / "a")
    assert len(in_memory.findings) >= 2
    monkeypatch.setattr(scrub_module, "FindingLog", lambda: FindingLog(keep=1))
    spilled, _, _ = run(FIXTURES / name, tmp_path / "b")
    assert spilled.findings._spill is not None
    assert json.dumps(spilled.report()["findings"]) == json.dumps(in_memory.report()["findings"])
    assert spilled.summary() == in_memory.summary()


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_scrubs_or_is_refused_and_stays_tr3_valid(path, tmp_path):
    from edi_pipeline.core.errors import EdiError
    from edi_pipeline.tr3.compiled import validate_tr3_fast

    out, rej = tmp_path / "out.837", tmp_path / "rej.837"
    try:
        result = scrub_file(path, out, rej, Store(":memory:"))
    except EdiError as exc:  # not an 837P, or not whole: refused with a positioned line, nothing written
        assert str(exc).startswith(f"{path}:") and not out.exists()
        return
    assert result.claims_in == result.claims_out + result.claims_held + result.claims_emptied
    if not validate_tr3_fast(path.read_bytes().decode("utf-8", "replace")).errors and out.stat().st_size:
        assert not validate_tr3_fast(out.read_text()).errors


def test_units_reserved_for_a_held_claim_go_back_to_the_authorization(tmp_path):
    """Claim 1 (set 1) matches the only unit on file but is held by another rule (DX-POINTER), so it uses
    nothing: claim 3 (set 2, same patient, a week later so it is no DUPLICATE-CLAIM) still gets the unit."""
    segs = [s.strip() for s in (FIXTURES / "837p-auth-required.837").read_text().split("~") if s.strip()]
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    second = next(i for i, s in enumerate(segs) if s.startswith("HL*3*"))
    body = segs[st:second]  # ST .. the first claim, without the second subscriber

    def tx(control: str, pcn: str, pointers: str, dos: str) -> list[str]:
        out = [s.replace("AUTHREQ01", pcn).replace("D8*20261005", f"D8*{dos}") for s in body]
        out[0] = f"ST*837*{control}*005010X222A1"
        out = [s.replace("SV1*HC:97813*95*UN*1***1", f"SV1*HC:97813*95*UN*1***{pointers}") for s in out]
        return out + [f"SE*{len(out) + 1}*{control}"]

    segments = segs[:st] + tx("0001", "AUTHREQ01", "1:9", "20261005") + tx("0002", "AUTHREQ03", "1", "20261012") + ["GE*2*101", segs[-1]]
    src = tmp_path / "two-sets.837"
    src.write_text("~\n".join(segments) + "~\n")
    auths = tmp_path / "auths.csv"
    auths.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                     "FM0000047,ACM01,PA-ONE-UNIT,97813,1,2026-01-01,2026-12-31\n")
    store = Store(tmp_path / "s.db")
    try:
        store.import_authorizations(auths)
        result, out, rej = run(src, tmp_path, store)
    finally:
        store.close()
    assert sorted(c.patient_control_number for c in claims(rej)) == ["AUTHREQ01"]
    assert [c.patient_control_number for c in claims(out)] == ["AUTHREQ03"]
    assert "REF*G1*PA-ONE-UNIT" in out.read_text()


def test_an_837_that_is_not_professional_is_held_unchanged_never_dropped(tmp_path):
    from conftest import FIXTURES

    text = (FIXTURES / "837p-multi-interchange.837").read_text()
    first, second = text.split("IEA*1*000000101~")
    institutional = second.replace("005010X222A1", "005010X223A2")  # the second interchange: an 837I label
    src = tmp_path / "mixed.837"
    src.write_text(first + "IEA*1*000000101~" + institutional)
    result = scrub_file(src, tmp_path / "out.837", tmp_path / "rejects.837")
    held = result.sets_withheld
    assert [(h["interchange"], h["claims"]) for h in held] == [("000000102", 1)]
    assert "not an 837P" in held[0]["reason"] and result.held
    st_to_se = institutional[institutional.index("ST*837"):institutional.index("GE*")]
    assert st_to_se in (tmp_path / "rejects.837").read_text()  # as it came
    out = (tmp_path / "out.837").read_text()
    assert "005010X223A2" not in out and out.count("CLM*") == first.count("CLM*") > 0
    assert any(i.code == "ENV-NOT-837P" for i in result.issues)


def test_a_withheld_set_is_told_apart_from_one_with_the_same_control_numbers(tmp_path):
    from conftest import FIXTURES

    from edi_pipeline.x12.envelope import EnvelopeReader

    text = (FIXTURES / "837p-multi-interchange.837").read_text()
    first, second = text.split("IEA*1*000000101~")
    second = second.replace("000000102", "000000101").replace("10201", "10101")  # same ISA13, GS06 and ST02
    src = tmp_path / "twins.837"
    src.write_text(first + "IEA*1*000000101~" + second)
    with EnvelopeReader(src) as env:
        isa_at = [item.index for item in env if getattr(item, "tag", None) == "ISA"]
    assert len(isa_at) == 2
    result = scrub_file(src, tmp_path / "out.837", tmp_path / "rejects.837", withheld={(isa_at[1], "10101", "0001")})
    assert [h["claims"] for h in result.sets_withheld] == [second.count("CLM*")]
    assert (tmp_path / "out.837").read_text().count("CLM*") == first.count("CLM*") > 0
