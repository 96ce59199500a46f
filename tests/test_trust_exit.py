"""Issue 12, trust under hostile input: exit codes (3 = internal error), `-` for stdin, SIGTERM/SIGINT
cleanup, and bytes that are not UTF-8 kept as data in the store and in messages."""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT
from samples import tiny_837
from test_hardening import check

import edi_pipeline.scrub.scrubber as scrub_module
from edi_pipeline.cli.commands import cli
from edi_pipeline.formats.convert import CONVERTERS
from edi_pipeline.core.errors import WriteError
from edi_pipeline.store.store import Store
from edi_pipeline.core.files import atomic_output


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def subprocess_cli(*args, env=None, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edi_pipeline", *map(str, args)], env=env,
                          capture_output=True, **kwargs)


# --- bytes that are not UTF-8 --------------------------------------------------------------------

PCN, PCN_LATIN1 = b"DBUNDLE01", b"DBUNDL\xe901"  # one Latin-1 byte (e acute) in a patient control number
PAYER, PAYER_LATIN1 = b"MEDICARE PART B", b"M\xe9DICARE PART B"


def latin1_pair(tmp_path):
    """pair-denials with a Latin-1 byte in a PCN (both files) and in the payer's name."""
    paths = []
    for suffix in ("837", "835"):
        data = (FIXTURES / f"pair-denials.{suffix}").read_bytes()
        assert PCN in data and PAYER in data
        path = tmp_path / f"latin1.{suffix}"
        path.write_bytes(data.replace(PCN, PCN_LATIN1).replace(PAYER, PAYER_LATIN1))
        paths.append(path)
    return paths


def test_ingest_stores_latin1_bytes_and_the_pcn_still_matches(tmp_path):
    claims, remits = latin1_pair(tmp_path)
    db = tmp_path / "s.db"
    r = run("ingest", claims, remits, "--db", db)
    assert r.exit_code == 0, r.output
    store = Store(db)
    try:
        assert store.db["claims"].count_where("patient_control_number = ?", ["DBUNDL\u00e901"]) == 1
        assert store.db["remits"].count_where("payer_name = ?", ["M\u00e9DICARE PART B"]) >= 1
    finally:
        store.close()
    rec = run("reconcile", "--db", db, "--format", "json")
    assert rec.exit_code == 0, rec.output
    doc = json.loads(rec.stdout)
    row = next(c for c in doc["claims"] if c["patient_control_number"] == "DBUNDL\u00e901")
    assert row["status"] == "partially paid"
    assert not any(u["patient_control_number"] == "DBUNDL\u00e901" for u in doc["unmatched_remits"])
    den = run("denials", "--db", db, "--format", "json")
    assert den.exit_code == 0, den.output
    bundled = [d for d in json.loads(den.stdout) if d["patient_control_number"] == "DBUNDL\u00e901"]
    assert bundled and bundled[0]["payer"] == "M\u00e9DICARE PART B"


def test_scrub_stores_latin1_bytes_and_keeps_them_in_the_outbound_file(tmp_path):
    claims, _ = latin1_pair(tmp_path)
    out = tmp_path / "out.837"
    r = run("scrub", claims, "-o", out, "--rejects", tmp_path / "rej.837", "--db", tmp_path / "s.db")
    assert r.exit_code == 1, r.output  # pair-denials holds claims: an input error, not an internal one
    assert "internal error" not in r.output
    assert PCN_LATIN1 in out.read_bytes() and PAYER_LATIN1 in out.read_bytes()  # the sender's own bytes


def test_batch_takes_latin1_bytes(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    latin1_pair(inbox)
    r = run("batch", inbox, "--out", tmp_path / "out", "--quiet", "--settle", "0", "--format", "json")
    assert r.exit_code == 1, r.output  # held claims
    outcomes = json.loads(r.stdout)["file_outcomes"]
    assert [o["status"] for o in outcomes] == ["done", "done"], outcomes
    assert PCN_LATIN1 in (tmp_path / "out" / "outbound" / "latin1.837").read_bytes()


def test_messages_echo_latin1_bytes_on_a_strict_utf8_terminal(tmp_path):
    remit = tmp_path / "u.835"
    remit.write_bytes((FIXTURES / "835-unbalanced.835").read_bytes().replace(b"UNBAL01", b"UNBAL\xe901"))
    strict = {"PYTHONIOENCODING": "utf-8:strict"}
    ingest = subprocess_cli("ingest", remit, "--db", tmp_path / "s.db", env=strict)
    assert ingest.returncode == 0, ingest.stderr
    assert b"claim payment UNBAL\xe901" in ingest.stdout  # a balancing finding naming the PCN, byte for byte
    validate = subprocess_cli("validate", remit, env=strict)
    assert validate.returncode == 1 and b"UNBAL\xe901" in validate.stdout, validate.stderr
    assert b"internal error" not in validate.stderr + ingest.stderr



def test_messages_echo_latin1_bytes_in_process(tmp_path):
    """The same under CliRunner, whose streams are strict UTF-8 (fuzz seed 12 found it: an NPI with such
    a byte, echoed in NPI-CHECK's message, was an internal error)."""
    path = tmp_path / "npi.837"
    data = (FIXTURES / "837p-clean.837").read_bytes().replace(b"XX*1000202642~", b"XX*10002\xe92642~", 1)
    path.write_bytes(data.replace(b"CLM*CLEANMCR01*", b"CLM*CLEAN\xe9MCR01*", 1))  # (messages never echo an NPI)
    r = run("validate", path)
    assert r.exit_code == 1 and b"claim CLEAN\xe9MCR01: the NPI fails the check digit" in r.stdout_bytes, r.output
    # the handler cli registers: the byte itself, any other character the encoding lacks escaped
    assert "a\udce9b\u00e9".encode("ascii", "edi-pipeline-echo") == b"a\xe9b\\xe9"

# --- internal errors: exit 3 ---------------------------------------------------------------------

def _broken_converter(*args, **kwargs):
    raise TypeError("injected")


def test_an_internal_error_exits_3_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(CONVERTERS, "ndjson", _broken_converter)
    r = run("convert", FIXTURES / "837p-clean.837", "--to", "ndjson", "-o", tmp_path / "o.ndjson")
    assert r.exit_code == 3, r.output
    assert r.stderr.splitlines() == [
        "Error: internal error (TypeError); please report it with the input's shape, not its data"]
    assert not list(tmp_path.iterdir())  # no output, no temporary file
    monkeypatch.setenv("EDI_PIPELINE_DEBUG", "1")
    assert isinstance(run("convert", FIXTURES / "837p-clean.837", "--to", "ndjson").exception, TypeError)
    monkeypatch.undo()  # errors in the input, or a missing file, are still 1
    assert run("convert", FIXTURES / "837p-invalid-truncated.837", "--to", "ndjson",
               "-o", tmp_path / "o").exit_code == 1
    assert run("convert", tmp_path / "missing.837", "--to", "ndjson").exit_code == 1


def test_the_fuzz_checks_flag_an_internal_error(tmp_path, monkeypatch):
    """The hypothesis check and scripts/fuzz.py both fail on an injected bug (before, it was exit 1 and passed)."""
    monkeypatch.setitem(CONVERTERS, "ndjson", _broken_converter)
    with pytest.raises(AssertionError):
        check(run("convert", FIXTURES / "837p-clean.837", "--to", "ndjson", "-o", tmp_path / "o"))
    spec = importlib.util.spec_from_file_location("fuzz_script", ROOT / "scripts" / "fuzz.py")
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    monkeypatch.setattr(fuzz, "COMMANDS", fuzz.COMMANDS[:1])
    monkeypatch.setattr(fuzz, "mutate", lambda rng, data: data)  # a sound file: only the bug can fail it
    assert fuzz.main(["--iterations", "1", "--crashes", str(tmp_path / "crashes")]) == 1
    assert list((tmp_path / "crashes").iterdir())


def test_batch_quarantines_a_file_hitting_an_internal_error_goes_on_and_exits_3(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("837p-clean.837", "pair-plb.835"):
        shutil.copyfile(FIXTURES / name, inbox / name)
    monkeypatch.setattr(scrub_module, "scrub_file", _broken_converter)
    r = run("batch", inbox, "--out", tmp_path / "out", "--quiet", "--settle", "0", "--format", "json")
    assert r.exit_code == 3, r.output
    outcomes = {o["name"]: o for o in json.loads(r.stdout)["file_outcomes"]}
    assert outcomes["837p-clean.837"]["status"] == "quarantined" and outcomes["837p-clean.837"]["internal"]
    assert outcomes["837p-clean.837"]["detail"] == "837p-clean.837: internal error (TypeError)"
    assert outcomes["pair-plb.835"]["status"] == "done" and not outcomes["pair-plb.835"]["internal"]
    shutil.copyfile(FIXTURES / "837p-clean.837", inbox / "837p-clean.837")  # (quarantine moved it out)
    text = run("batch", inbox, "--out", tmp_path / "out2", "--quiet", "--settle", "0")
    assert text.exit_code == 3 and "quarantined 837p-clean.837: internal error (TypeError)" in text.stdout
    assert "3 when a file hit an internal error" in run("batch", "--help").stdout


# --- SIGTERM and SIGINT: no temporary file outlives its writer ------------------------------------

def _interrupted_convert(tmp_path, sig):
    """Start `convert --to xml` of a generated 837P, send `sig` once its temporary output is being written."""

    gen = subprocess.run([sys.executable, ROOT / "scripts" / "generate.py", "--claims", "4000", "--out", tmp_path],
                         capture_output=True)
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edi_pipeline", "convert", tmp_path / "gen-4000.837",
                             "--to", "xml", "-o", out / "claims.xml"], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in out.glob(".claims.xml.*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, "convert ended before it was interrupted"
        time.sleep(0.005)
    proc.send_signal(sig)
    stderr = proc.communicate(timeout=60)[1]
    return proc.returncode, stderr.decode(), sorted(p.name for p in out.iterdir())


def test_sigterm_during_convert_leaves_no_temporary_or_partial_file(tmp_path):
    code, stderr, left = _interrupted_convert(tmp_path, signal.SIGTERM)
    assert (code, stderr, left) == (143, "Error: interrupted (SIGTERM)\n", [])


def test_sigint_during_convert_leaves_no_temporary_or_partial_file(tmp_path):
    code, stderr, left = _interrupted_convert(tmp_path, signal.SIGINT)
    assert (code, stderr, left) == (130, "Error: interrupted (SIGINT)\n", [])


# --- `-` reads stdin in validate, scrub and ingest ------------------------------------------------

def test_validate_reads_stdin(tmp_path):
    data = (FIXTURES / "837p-clean.837").read_bytes()
    r = run("validate", "-", "--ack-dir", tmp_path / "acks", input=data)
    assert r.exit_code == 0, r.output
    assert r.stderr.startswith("<stdin>: accepted: 1 transaction sets, 9 claims")
    assert [p.name for p in (tmp_path / "acks").glob("*.999")] == ["stdin.101.999"]
    bad = run("validate", "-", input=(FIXTURES / "837p-invalid-truncated.837").read_bytes())
    assert bad.exit_code == 1 and bad.stdout.startswith("<stdin>:"), bad.output


def test_scrub_reads_stdin(tmp_path):
    data = (FIXTURES / "pair-denials.837").read_bytes()
    out, rejects = tmp_path / "out.837", tmp_path / "held.837"
    r = run("scrub", "-", "-o", out, "--rejects", rejects, "--report", tmp_path / "rep.json",
            "--db", tmp_path / "s.db", input=data)
    assert r.exit_code == 1, r.output  # pair-denials holds claims
    assert "<stdin>: 13 claims in, 10 out, 3 held" in r.stderr
    assert json.loads((tmp_path / "rep.json").read_text())["file"] == "<stdin>"
    assert out.read_bytes().startswith(b"ISA*") and rejects.read_bytes().startswith(b"ISA*")
    to_stdout = run("scrub", "-", "--rejects", rejects, "--db", tmp_path / "s2.db", input=data)
    assert to_stdout.exit_code == 1 and to_stdout.stdout == out.read_text(errors="surrogateescape")
    usage = run("scrub", "-", input=data)
    assert usage.exit_code == 2 and "--rejects" in usage.stderr
    assert not list(tmp_path.glob("-*")) and not list(tmp_path.glob("<stdin>*"))


def test_ingest_reads_stdin_and_knows_it_again_by_digest(tmp_path):
    data = (FIXTURES / "pair-plb.835").read_bytes()
    db = tmp_path / "s.db"
    r = run("ingest", "-", "--db", db, input=data)
    assert r.exit_code == 0 and r.stdout.startswith("<stdin>: ingested 835:"), r.output
    again = run("ingest", FIXTURES / "pair-plb.835", "--db", db)
    assert again.exit_code == 0 and "already ingested" in again.stdout, again.output
    store = Store(db)
    try:
        assert [row["name"] for row in store.query("select name from files")] == ["<stdin>"]
    finally:
        store.close()


# --- regressions found by scripts/fuzz.py --iterations 3000 --seed 12 ---------------------------

def test_a_nul_byte_in_an_output_path_is_a_write_error_not_an_internal_one(tmp_path):
    """Iterations 1974 and 2480: a NUL in GS06 reached a 999's file name, and mkstemp's ValueError was
    an internal error (exit 3)."""
    with pytest.raises(WriteError, match="NUL byte"):
        with atomic_output(tmp_path / "acks" / "x.1\0.999"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["acks"] and not list((tmp_path / "acks").iterdir())

    path = tmp_path / "nul.837"
    path.write_text(tiny_837().replace("*1200*1*X*", "*1200*1\0*X*"))
    r = run("validate", path, "--ack-dir", tmp_path / "acks")
    assert r.exit_code in (0, 1) and "internal error" not in r.output, r.output


def test_a_rescrub_of_a_latin1_pcn_still_finds_the_units_it_used(tmp_path):
    """The authorization's units a claim used count as its own on a rescrub: the lookup of earlier uses
    names the PCN as the store holds it (before, the rescrub held the claim: no units left)."""
    path = tmp_path / "auth.837"
    path.write_bytes((FIXTURES / "837p-auth-required.837").read_bytes().replace(b"AUTHREQ01", b"AUTH\xe9REQ01"))
    auths = tmp_path / "auths.csv"
    auths.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                     "FM0000047,ACM01,PA-ONE-UNIT,97813,1,2026-01-01,2026-12-31\n")
    db = tmp_path / "s.db"
    assert run("auth", "import", auths, "--db", db).exit_code == 0
    for attempt in ("first", "again"):
        out = tmp_path / f"{attempt}.837"
        r = run("scrub", path, "-o", out, "--rejects", tmp_path / f"{attempt}.rejects.837", "--db", db)
        assert r.exit_code == 1 and "2 claims in, 1 out, 1 held" in r.stderr, (attempt, r.output)
        assert b"CLM*AUTH\xe9REQ01*" in out.read_bytes() and b"REF*G1*PA-ONE-UNIT" in out.read_bytes()


def test_a_resent_claim_with_a_latin1_pcn_is_not_its_own_history(tmp_path):
    """CPM-MONTHLY leaves out the stored lines of the claims being scrubbed (a resend): it compares the
    store's PCNs with the file's as the store holds them (before, the resend counted itself once more)."""
    data = (FIXTURES / "837p-cpm-monthly.837").read_bytes().replace(b"CPMMONTH01", b"CPMMONT\xe9H01")
    first, resent = tmp_path / "first.837", tmp_path / "resent.837"
    first.write_bytes(data)
    resent.write_bytes(data + b"\n")  # other bytes, the same claims
    db = tmp_path / "s.db"
    found = []
    for path in (first, resent):
        report = tmp_path / f"{path.stem}.json"
        r = run("scrub", path, "-o", tmp_path / f"{path.stem}.out.837", "--rejects", tmp_path / f"{path.stem}.r.837",
                "--report", report, "--db", db)
        assert r.exit_code in (0, 1) and "internal error" not in r.output, r.output
        found.append(sum(f["rule"] == "CPM-MONTHLY" for f in json.loads(report.read_text())["findings"]))
    assert found == [1, 1]


def test_an_authorization_csv_in_latin1_matches_the_claims_member(tmp_path):
    """A Latin-1 export (member id with 0xE9) imports (before: an internal error) and matches the 837's
    member id holding the same byte, so the claim gets its REF*G1 and is not held."""
    path = tmp_path / "auth.837"
    path.write_bytes((FIXTURES / "837p-auth-required.837").read_bytes().replace(b"FM0000047", b"FM\xe90000047"))
    auths = tmp_path / "auths.csv"
    auths.write_bytes(b"member_id,payer_id,auth_number,codes,units,start,end\n"
                      b"FM\xe90000047,ACM01,PA-ONE-UNIT,97813,1,2026-01-01,2026-12-31\n")
    db = tmp_path / "s.db"
    imported = run("auth", "import", auths, "--db", db)
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "out.837"
    r = run("scrub", path, "-o", out, "--rejects", tmp_path / "r.837", "--db", db)
    assert r.exit_code == 1 and "2 claims in, 1 out, 1 held" in r.stderr, r.output
    assert b"REF*G1*PA-ONE-UNIT" in out.read_bytes()


def test_sigterm_during_a_two_worker_batch_leaves_no_temporary_file_and_the_rerun_finishes(tmp_path):
    """The handler is the CLI process's own: the spawned workers keep the default and finish their files
    (the pool drains), the run exits 143, and the rerun does the rest, each output once."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for seed in (1, 2, 3):
        gen = subprocess.run([sys.executable, ROOT / "scripts" / "generate.py", "--claims", "1000", "--seed",
                              str(seed), "--trip-rate", "0", "--out", tmp_path / f"g{seed}"], capture_output=True)
        # (no claim total off: a BAL-CLAIM error would make the 999 reject the whole set, and nothing go out)
        assert gen.returncode == 0, gen.stderr
        (tmp_path / f"g{seed}" / "gen-1000.837").rename(inbox / f"c{seed}.837")
    args = ["batch", inbox, "--out", out, "--workers", "2", "--quiet", "--settle", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "edi_pipeline", *map(str, args)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(out.glob(".staging/*/outbound/.*.tmp")):  # a worker is writing (its staging folder)
        assert proc.poll() is None and time.monotonic() < deadline, "the batch ended before it was signalled"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and stderr.decode().endswith("Error: interrupted (SIGTERM)\n"), stderr
    assert not list(out.rglob(".*.tmp"))
    rerun = subprocess_cli(*args)
    assert rerun.returncode in (0, 1) and not list(out.rglob(".*.tmp")), rerun.stderr
    assert sorted(p.name for p in (out / "outbound").iterdir()) == ["c1.837", "c2.837", "c3.837"], rerun.stdout
    store = Store(out / "edi_pipeline.db")
    try:
        assert store.db["batch_files"].count_where("status = 'done'") == 3
    finally:
        store.close()


@pytest.mark.parametrize("fixture", ["837p-total-mismatch.837", "pair-plb.835"])
def test_an_amount_past_18_digits_is_an_input_error_not_an_internal_one(tmp_path, fixture):
    """Regression: CLM02 = 1E30 made scrub's TOTAL-MISMATCH message raise InvalidOperation (exit 3): an X12
    numeric element holds at most 18 digits, so such a value is malformed (IK4-6), wherever it stands."""
    data = (FIXTURES / fixture).read_bytes()
    seg = b"CLP*" if fixture.endswith(".835") else b"CLM*"  # CLP04 (claim paid) / CLM02 (TOTAL-MISMATCH formats it)
    at = data.index(seg)
    end = data.index(b"~", at)
    fields = data[at:end].split(b"*")
    fields[4 if seg == b"CLP*" else 2] = b"1E30"
    data = data[:at] + b"*".join(fields) + data[end:]
    path = tmp_path / f"big{fixture[-4:]}"
    path.write_bytes(data)
    for args in (["scrub", path, "-o", tmp_path / "o.837", "--rejects", tmp_path / "r.837", "--db", tmp_path / "s.db"],
                 ["validate", path], ["ingest", path, "--db", tmp_path / "i.db"],
                 ["convert", path, "--to", "csv", "-o", tmp_path / "o.csv"],
                 ["convert", path, "--to", "json", "-o", tmp_path / "o.json"]):
        r = run(*args)
        assert r.exit_code in (0, 1) and "internal error" not in r.output, (args[0], r.output)
