"""Inbound 999s and 277CAs through the registry: `convert FILE.999`, and ingest/batch tying payers' answers to
what batch sent (outbound control numbers) as claim status events, unmatched ones listed, idempotent."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, corpus_files
from hypothesis import HealthCheck, given, settings
from mutations import mutated

from edi_pipeline.cli.commands import cli
from edi_pipeline.core.errors import EdiError
from edi_pipeline.runners.batch import run_batch
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.tx.registry import REGISTRY, Kind, kind_label, kinds_of, lookup
from edi_pipeline.x12.envelope import EnvelopeReader
from edi_pipeline.x12.isa import Isa, gs_control
from edi_pipeline.x12.reader import SegmentReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import make_acks  # noqa: E402

SENT = ("837p-clean.837", "837p-multi-interchange.837")
ACKS = ("payer-accepted.999", "payer-rejected.999", "payer-accepted.277", "payer-rejected.277")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def segments_of(path: Path, ids: tuple[str, ...]) -> int:
    with EnvelopeReader(path, path.name) as env:
        return sum(1 for tx in env.transactions() for s in tx.segments if s.split(tx.delimiters.element, 1)[0] in ids)


# ---------------------------------------------------------------- the registry


def test_every_type_declares_itself_once():
    assert [t.kind for t in REGISTRY] == [Kind.CLAIM_837P, Kind.REMIT_835, Kind.ACK_999, Kind.CLAIM_ACK_277CA]
    assert [(t.st01, t.gs01) for t in REGISTRY] == [("837", "HC"), ("835", "HP"), ("999", "FA"), ("277", "HN")]
    assert {a: t.version for t in REGISTRY for a in t.aliases}["005010X222A2"] == "005010X222A1"
    assert kinds_of("837P+835") == {Kind.CLAIM_837P, Kind.REMIT_835} and kinds_of("837") == {Kind.CLAIM_837P}
    assert kind_label({Kind.REMIT_835, Kind.CLAIM_837P}) == "837P+835" and Kind.TA1 == "TA1"


def test_each_types_tr3_map_is_the_one_pyx12_picks_for_its_gs01_and_label():
    import xml.etree.ElementTree as ET

    import pyx12

    index = ET.parse(Path(pyx12.__file__).parent / "map" / "maps.xml").getroot()
    picks = {(m.get("fic"), m.get("vriic")): m.text for m in index.iter("map")}
    assert {t.kind: picks[t.gs01, t.version] for t in REGISTRY} == {t.kind: t.tr3_map for t in REGISTRY}


def test_lookup_tells_the_types_apart_by_st01_and_label():
    with EnvelopeReader(FIXTURES / "payer-accepted.277") as env:
        (tx,) = list(env.transactions())
    assert lookup(tx).kind is Kind.CLAIM_ACK_277CA
    x212 = (FIXTURES / "payer-accepted.277").read_bytes().replace(b"*005010X214~", b"*005010X212~")
    with EnvelopeReader(x212, "x212.277") as env:
        (tx,) = list(env.transactions())
    assert lookup(tx) is None  # a 277 claim status response is not a 277CA


# ---------------------------------------------------------------- convert FILE.999


@pytest.mark.parametrize("name", ["payer-accepted.999", "payer-rejected.999"])
def test_convert_999_to_ndjson_gives_one_record_per_ik5_and_ak9(name):
    r = run("convert", FIXTURES / name, "--to", "ndjson")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.output.splitlines()]
    assert len(records) == segments_of(FIXTURES / name, ("IK5", "AK9"))
    assert [d["type"] for d in records][-1] == "999_group_response"
    assert {d["type"] for d in records[:-1]} == {"999_set_response"}
    if name == "payer-rejected.999":
        rejected = records[1]
        assert (rejected["control_number"], rejected["code"]) == ("0002", "R")
        assert [(e["segment_id"], e["position"], [x["code"] for x in e["elements"]]) for e in rejected["errors"]] \
            == [("NM1", 9, ["7"]), ("SV1", 21, ["6"])]


def test_convert_277ca_to_ndjson_gives_its_claim_statuses():
    r = run("convert", FIXTURES / "payer-rejected.277", "--to", "ndjson")
    assert r.exit_code == 0, r.output
    claims = [d for d in map(json.loads, r.output.splitlines()) if d["type"] == "277CA_claim_status"]
    assert len(claims) == segments_of(FIXTURES / "payer-rejected.277", ("TRN",)) - 3  # less the 2200A, B and C TRNs
    assert claims[0]["rejected"] and claims[0]["category"] == "A7"


def test_convert_corpus_999s():
    files = [p for p in corpus_files() if ".999" in p.name or "_999_" in p.name]
    if not files:
        pytest.skip("no 999s in the corpus (set EDI_CORPUS to the public corpus)")
    for path in files:
        r = run("convert", path, "--to", "ndjson")
        assert r.exit_code in (0, 1), (path.name, r.output[-500:])
        records = [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]
        assert len(records) == segments_of(path, ("IK5", "AK9")), path.name
        assert all(d["type"].startswith("999_") for d in records), path.name


# ---------------------------------------------------------------- 999 and 277CA in


@pytest.fixture
def sent(tmp_path, monkeypatch):
    """A batch over two 837Ps (what the payer fixtures answer): its store and inbox."""
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-12-01")
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    for n in SENT:
        shutil.copy(FIXTURES / n, inbox / n)
    summary = run_batch(inbox, out, settle=0)
    assert summary.count("claims_out") == 12
    return inbox, out, out / "edi_pipeline.db"


def test_batch_records_the_control_numbers_it_sends(sent):
    _, out, db = sent
    rows = sqlite3.connect(db).execute("select outbound_file, isa_control, gs_control, st_control, claims "
                                       "from outbound_sets order by outbound_file, rowid").fetchall()
    want = []
    for n in SENT:
        for s in make_acks.sent_sets(out / "outbound" / n):
            want.append((n, s.isa[13].strip(), s.gs[6].strip(), s.st02, len(s.claims)))
    assert rows == want
    pcns = {p for (p,) in sqlite3.connect(db).execute("select patient_control_number from outbound_claims")}
    assert {c.patient_control_number for n in SENT for s in make_acks.sent_sets(out / "outbound" / n)
            for c in s.claims} == pcns


def reread_sets(path: Path, sha: str, name: str) -> tuple[list[tuple], list[tuple]]:
    """The sets and claims rows of an outbound 837P file read back from it (what batch recorded before the
    scrub's sink recorded them as it wrote them): the reference the recorded rows must equal."""
    sets: list[tuple] = []
    claims: list[tuple] = []
    isa = None
    gs06 = ""
    st: list[str] = []
    pcns: dict[str, str | None] = {}
    pcn = None
    index = 0
    with SegmentReader(path, name) as reader:
        for texts, _lines in reader.batches():
            sep = reader.delimiters.element
            clm, d9 = "CLM" + sep, f"REF{sep}D9{sep}"
            for text in texts:
                index += 1
                if text.startswith(clm):
                    pcn = (text.split(sep, 2) + [""])[1]
                    pcns.setdefault(pcn, None)
                elif text.startswith(d9) and pcn is not None:
                    pcns[pcn] = pcns[pcn] or (text.split(sep) + ["", ""])[2] or None
                elif text.startswith(("ST", "SE", "GS", "ISA")):
                    e = text.split(sep)
                    if e[0] == "ST":
                        st, pcns, pcn = e + ["", "", ""], {}, None
                        st[0] = str(index)
                    elif e[0] == "SE" and st and st[1] == "837":
                        set_id = f"{sha}:{st[0]}"
                        sets.append((set_id, sha, os.path.basename(name), isa.sender, isa.receiver,
                                     isa.control, gs06, st[2].strip(), len(pcns)))
                        claims += [(set_id, p, trace) for p, trace in pcns.items() if p]
                        st = []
                    elif e[0] == "GS":
                        gs06 = gs_control(e)
                    elif e[0] == "ISA":
                        isa = Isa.of(e)
    return sets, claims


def recorded_sets(store: Store, sha: str) -> tuple[list[tuple], list[tuple]]:
    return (store.conn.execute("select id, file_sha256, outbound_file, isa_sender, isa_receiver, isa_control, "
                               "gs_control, st_control, claims from outbound_sets where file_sha256 = ? "
                               "order by rowid", [sha]).fetchall(),
            store.conn.execute("select c.* from outbound_claims c join outbound_sets s on s.id = c.set_id "
                               "where s.file_sha256 = ? order by c.rowid", [sha]).fetchall())


def test_the_sets_recorded_as_written_are_those_the_outbound_file_holds(tmp_path):
    """A scrub whose store sends its output on (Store.sends_as) records each set as its writer writes it:
    the same rows as reading the written file back, on every 837P fixture and corpus file that scrubs."""
    traced = tmp_path / "traced.837"  # the fixtures' claims carry no REF*D9: one with two per claim
    clean = (FIXTURES / "837p-clean.837").read_text()
    traced.write_text(re.sub(r"^(CLM\*([^*~]+)[^~]*~)", r"\1\nREF*D9*T-\2~\nREF*D9*second~", clean, flags=re.M))
    checked = with_d9 = 0
    store = Store(tmp_path / "edi_pipeline.db")
    for k, path in enumerate([traced, *sorted(FIXTURES.glob("*.837")), *corpus_files()]):
        out, sha = tmp_path / f"{k}.out.837", f"{k:064d}"
        store.sends_as = f"sent-{k}.837", None
        try:
            result = scrub_file(path, out, tmp_path / f"{k}.rej.837", store, sha256=sha)
        except EdiError:
            continue
        want = reread_sets(out, sha, f"sent-{k}.837") if out.stat().st_size else ([], [])
        assert recorded_sets(store, sha) == want, path.name
        assert bool(want[0]) == bool(result.claims_out), path.name
        checked += bool(want[0])
        with_d9 += any(trace for _, _, trace in want[1])
    store.close()
    assert checked > 60 and with_d9, (checked, with_d9)


def states(db: Path, pcn: str) -> list[tuple[str, str]]:
    r = run("status", pcn, "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    return [(e["state"], e["source_file"]) for e in json.loads(r.output)]


def test_ingested_payer_acks_move_the_claims_through_the_lifecycle(sent):
    _, _, db = sent
    r = run("ingest", *(FIXTURES / n for n in ACKS), "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    results = {Path(d["file"]).name: d for d in json.loads(r.output)}
    assert {n: (d["status"], d["kind"], d["unmatched_acks"]) for n, d in results.items()} == {
        "payer-accepted.999": ("ingested", "999", []), "payer-rejected.999": ("ingested", "999", []),
        "payer-accepted.277": ("ingested", "277CA", []), "payer-rejected.277": ("ingested", "277CA", [])}
    assert results["payer-accepted.999"]["ack_events"] == 9  # every claim of 837p-clean's one set
    assert states(db, "CLEANMCR02") == [
        ("sent", "837p-clean.837"), ("file accepted", "payer-accepted.999"),
        ("accepted by payer", "payer-accepted.277"), ("rejected by payer", "payer-rejected.277")]
    assert states(db, "MULTI01")[-1] == ("file accepted", "payer-rejected.999")
    assert states(db, "MULTI02")[-1] == ("file rejected", "payer-rejected.999")
    r = run("status", "MULTI02", "--db", db)
    assert "IK5 R" in r.output and "NM1 at 9" in r.output  # the 999's errors that name the claim
    r = run("status", "CLEANMCR02", "--db", db)
    assert "line 1 A7:453" in r.output  # the 2220D rejection, tied by REF*FJ to the claim's line 1


def test_a_claim_whose_set_a_payer_999_rejected_is_on_the_worklist(sent):
    # Regression: the worklist listed claims a 277CA rejected, never those whose set the payer's 999 rejected.
    _, _, db = sent
    assert run("ingest", FIXTURES / "payer-rejected.999", "--db", db).exit_code == 0
    r = run("worklist", "--db", db, "--format", "json", "--as-of", "2026-12-01")
    assert r.exit_code == 0, r.output
    reasons = {w["patient_control_number"]: w["reason"] for w in json.loads(r.output)}
    assert reasons.get("MULTI02") == "set rejected by the payer's 999, not resent"
    assert "MULTI01" not in reasons or "999" not in reasons["MULTI01"]  # its set was accepted


def test_reingesting_an_ack_changes_nothing(sent):
    _, _, db = sent
    assert run("ingest", FIXTURES / "payer-rejected.277", "--db", db).exit_code == 0
    con = sqlite3.connect(db)
    before = con.execute("select * from claim_events order by id").fetchall()
    r = run("ingest", FIXTURES / "payer-rejected.277", "--db", db)
    assert r.exit_code == 0 and "already ingested" in r.output
    assert con.execute("select * from claim_events order by id").fetchall() == before and len(before) == 4


def test_acks_matching_nothing_sent_are_listed(tmp_path):
    db = tmp_path / "empty.db"
    r = run("ingest", FIXTURES / "payer-accepted.999", FIXTURES / "payer-accepted.277", "--db", db,
            "--format", "json")
    assert r.exit_code == 0, r.output
    nine, two = json.loads(r.output)
    assert nine["status"] == two["status"] == "ingested" and nine["ack_events"] == two["ack_events"] == 0
    assert [(a["line"], a["reason"]) for a in nine["unmatched_acks"]] == [
        (6, "999 answers group 101 set 0001, which no outbound file recorded holds")]
    assert [a["reason"].split(" matches")[0] for a in two["unmatched_acks"]] == [
        f"277CA claim CLEANMCR0{k}" for k in range(1, 5)]
    r = run("ingest", FIXTURES / "payer-rejected.999", "--db", db)
    assert r.exit_code == 0 and "2 acknowledgments matching nothing sent" in r.output
    assert "payer-rejected.999:6: unmatched: 999 answers group 10101 set 0001" in r.output


def test_batch_takes_payer_acks_after_the_claims_and_lists_the_unmatched(sent, tmp_path):
    inbox, out, db = sent
    for n in ACKS:
        shutil.copy(FIXTURES / n, inbox / n)
    stray = inbox / "stray.999"  # answers a group nobody sent
    stray.write_bytes((FIXTURES / "payer-accepted.999").read_bytes().replace(b"AK1*HC*101*", b"AK1*HC*999*")
                      .replace(b"000007001", b"000007009"))
    summary = run_batch(inbox, out, settle=0)
    done = {f.name: (f.status, f.kind, f.ack_events) for f in summary.files}
    assert done["payer-accepted.999"] == ("done", "999", 9) and done["payer-rejected.277"] == ("done", "277CA", 4)
    assert summary.to_dict()["ack_events"] == 9 + 2 + 4 + 4
    assert [a["reason"] for a in summary.to_dict()["unmatched_acks"]] == [
        "999 answers group 999 set 0001, which no outbound file recorded holds"]
    assert states(db, "MULTI02")[-1] == ("file rejected", "payer-rejected.999")
    again = run_batch(inbox, out, settle=0)
    assert {f.status for f in again.files} == {"skipped"}


def test_a_277ca_claim_named_by_its_payer_claim_number_ties_by_ref_1k(tmp_path):
    """TRN02 unknown (a payer that re-keys the claim): REF*1K = the CLP07 of the claim's 835 payment ties it."""
    db = tmp_path / "pair.db"
    assert run("ingest", FIXTURES / "pair-denials.837", FIXTURES / "pair-denials.835", "--db", db).exit_code == 0
    ack = tmp_path / "rekeyed.277"
    ack.write_bytes((FIXTURES / "payer-accepted.277").read_bytes().replace(b"TRN*2*CLEANMCR01~", b"TRN*2*REKEYED~")
                    .replace(b"REF*1K*MCR710101001~", b"REF*1K*26290000102~"))
    r = run("ingest", ack, "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.output)
    assert result["ack_events"] == 1 and len(result["unmatched_acks"]) == 3  # the other three: not in this store
    assert states(db, "DMEDNEC01")[-1] == ("accepted by payer", "rekeyed.277")


_STORE: list[Path] = []


def _batch_store() -> Path:
    """One store with 837p-clean and 837p-multi-interchange sent by batch, made once for the fuzz test."""
    if not _STORE:
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="acks-fuzz-"))
        atexit.register(shutil.rmtree, root, True)
        (root / "in").mkdir()
        for n in SENT:
            shutil.copy(FIXTURES / n, root / "in" / n)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDI_SCRUB_DATE", "2026-12-01")
            run_batch(root / "in", root / "out", settle=0)
        _STORE.append(root / "out" / "edi_pipeline.db")
    return _STORE[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated([(FIXTURES / n).read_bytes() for n in ACKS]))
def test_damaged_acks_ingest_whole_or_not_at_all(data):
    """A damaged 999 or 277CA is ingested or rejected, never an exception; rejected, it records no event."""
    from edi_pipeline.pipeline.ingest import INGESTED, REJECTED, ingest_file
    from edi_pipeline.store.store import Store

    store = Store(_batch_store())
    try:
        before = store.conn.execute("select count(*) from claim_events").fetchone()[0]
        with tempfile_with(data) as path:
            result = ingest_file(path, store)
        after = store.conn.execute("select count(*) from claim_events").fetchone()[0]
        assert result.status in (INGESTED, REJECTED, "already ingested")
        assert isinstance(result.to_dict()["unmatched_acks"], list)  # listed (empty) even when rejected
        if result.status != INGESTED:
            assert after == before
        else:
            assert after - before <= result.ack_events
    finally:
        store.close()


@contextlib.contextmanager
def tempfile_with(data: bytes):
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".ack")
    try:
        os.write(fd, data)
        os.close(fd)
        yield Path(name)
    finally:
        os.unlink(name)


def test_convert_acks_to_csv_gives_a_row_per_answer_and_error():
    import csv
    import io

    r = run("convert", FIXTURES / "payer-rejected.999", "--to", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [(x["level"], x["status_code"], x["control_number"], x["patient_control_number"]) for x in rows] == [
        ("set_response", "A", "0001", ""), ("set_response", "R", "0002", ""),
        ("segment_error", "8", "0002", "MULTI02"), ("segment_error", "8", "0002", "MULTI02"),
        ("group_response", "P", "10101", "")]
    assert rows[2]["remarks"] == "9:67:7" and rows[2]["procedure"] == "NM1"
    r = run("convert", FIXTURES / "payer-rejected.277", "--to", "csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    claims = [x for x in rows if x["level"] == "claim_status"]
    assert [x["status_code"] for x in claims[:2]] == ["A7:562:82", "A7:453"]
    (line,) = [x for x in rows if x["level"] == "line_status"]
    assert line["patient_control_number"] == "CLEANMCR02" and line["status_code"] == "A7:453" and line["control_number"]
