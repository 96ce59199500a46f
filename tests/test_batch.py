"""The batch job and demo: outputs by type, quarantine, idempotent reruns, crash recovery, workers, no PHI."""

import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, FIXTURES, ROOT, corpus_files, fixture_files, phi_values

import edi_pipeline.runners.batch as batch_module
from edi_pipeline.runners.batch import isa_indexes, scan_file
from edi_pipeline.tx.registry import REGISTRY
from edi_pipeline.cli.commands import cli
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.core.errors import EdiError
from edi_pipeline.store.store import Store

PAIRS = ["pair-denials.837", "pair-denials.835", "pair-plb.837", "pair-plb.835", "pair-reversal.837",
         "pair-reversal.835"]
TABLES = ("files", "claims", "claim_lines", "remits", "claim_payments", "service_payments", "adjustments",
          "provider_adjustments", "batch_files")


def make_inbox(tmp_path, names=PAIRS, extra=True):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in names:
        shutil.copyfile(FIXTURES / n, inbox / n)
    if extra:
        shutil.copyfile(FIXTURES / "837p-tpi-anesthesia.837", inbox / "held.837")
        shutil.copyfile(FIXTURES / "835-corrupt.835", inbox / "corrupt.835")
        (inbox / "notes.txt").write_text("not an interchange\n")
    return inbox


def counts(db):
    store = Store(db)
    try:
        return {t: store.db[t].count for t in TABLES}
    finally:
        store.close()


def batch(inbox, out, *extra):
    return CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0", *extra])


def test_batch_outputs_by_type(tmp_path):
    inbox = make_inbox(tmp_path)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1, r.output  # a quarantined file and a held claim
    assert "3 quarantined" not in r.output and "2 quarantined" in r.output
    assert sorted(p.name for p in (out / "quarantine").iterdir()) == [
        "corrupt.835", "corrupt.835.error.txt", "notes.txt", "notes.txt.error.txt"]
    why = (out / "quarantine" / "notes.txt.error.txt").read_text()
    assert why.startswith("notes.txt:1: ISA#1 ")
    why = (out / "quarantine" / "corrupt.835.error.txt").read_text()
    assert "corrupt.835:" in why and "#" in why
    # the summary names each quarantined file once, then its reason
    assert "  quarantined notes.txt:1: ISA#1 " in r.output and "  quarantined corrupt.835: rejected: " in r.output
    for n in ("pair-denials.837", "pair-plb.837", "held.837"):
        assert (out / "reports" / f"{n}.json").exists()
        assert list((out / "acks").glob(f"{n}.*.999"))
    assert (out / "outbound" / "pair-denials.837").exists() and (out / "outbound" / "pair-plb.837").exists()
    assert (out / "rejects" / "held.837").exists()
    assert not (out / "outbound" / "held.837").exists()  # every claim held: no empty file to send
    report = json.loads((out / "reports" / "held.837.json").read_text())
    assert any(f["rule"] == "TPI-ANESTHESIA" for f in report["findings"])
    # files holding PHI are private
    for p in [out / "outbound" / "pair-plb.837", out / "rejects" / "held.837", out / "quarantine" / "corrupt.835"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    c = counts(out / "edi_pipeline.db")
    assert c["claim_payments"] > 0 and c["claims"] > 0


def test_rerun_skips_everything_and_changes_nothing(tmp_path):
    inbox = make_inbox(tmp_path)
    out = tmp_path / "out"
    batch(inbox, out)
    before = counts(out / "edi_pipeline.db")
    r = batch(inbox, out)
    assert f"{len(list(inbox.iterdir()))} already done" in r.output
    assert counts(out / "edi_pipeline.db") == before


CRASH = """
import os, sys
import edi_pipeline.store.store as store
real = store.Store.save_remits_bulk
calls = []
def save_remits_bulk(self, *a, **k):
    calls.append(1)
    saved = real(self, *a, **k)
    if len(calls) == 2:
        os._exit(137)  # killed in the middle of a file's transaction
    return saved
store.Store.save_remits_bulk = save_remits_bulk
from edi_pipeline.cli.commands import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--quiet", "--settle", "0"])
"""


def test_killed_mid_file_then_rerun_loses_and_duplicates_nothing(tmp_path):
    inbox = make_inbox(tmp_path, extra=False)
    reference = tmp_path / "reference"
    assert batch(inbox, reference).exit_code in (0, 1)
    expected = counts(reference / "edi_pipeline.db")

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", CRASH, str(inbox), str(out)], cwd=ROOT, capture_output=True)
    assert proc.returncode == 137
    partial = counts(out / "edi_pipeline.db")
    assert partial["claim_payments"] < expected["claim_payments"]  # it really died part-way
    assert not list(out.rglob(".*.tmp"))
    r = batch(inbox, out)
    assert r.exit_code in (0, 1), r.output
    assert counts(out / "edi_pipeline.db") == expected


KILLED_BEFORE_MARK = """
import os, sys
import edi_pipeline.store.store as store
real = store.Store.mark_batch_file
def mark_batch_file(self, sha, name, *a, **k):
    if name == sys.argv[3]:
        os._exit(137)  # killed after the file's store transaction, before the file is marked done
    real(self, sha, name, *a, **k)
store.Store.mark_batch_file = mark_batch_file
from edi_pipeline.cli.commands import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--quiet", "--settle", "0"])
"""


@pytest.mark.parametrize("victim", ["pair-plb.835", "pair-plb.837"])
def test_killed_after_storing_a_file_then_rerun_finishes_it(tmp_path, victim):
    """Killed between a file's store transaction and its done mark: the rerun finishes the file (an
    835's payments reconciled, nothing quarantined) instead of taking it for a resend."""
    inbox = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False)
    reference = tmp_path / "reference"
    assert batch(inbox, reference).exit_code == 0
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", KILLED_BEFORE_MARK, str(inbox), str(out), victim], cwd=ROOT,
                          capture_output=True)
    assert proc.returncode == 137
    r = batch(inbox, out)
    assert r.exit_code == 0 and "0 quarantined" in r.output, r.output
    assert not list((out / "quarantine").iterdir())
    assert counts(out / "edi_pipeline.db") == counts(reference / "edi_pipeline.db")
    assert (out / "reports" / "reconciliation-latest.csv").read_text() == \
        (reference / "reports" / "reconciliation-latest.csv").read_text()


def test_two_workers_same_result(tmp_path):
    inbox = make_inbox(tmp_path, extra=False)
    one, two = tmp_path / "one", tmp_path / "two"
    assert batch(inbox, one).exit_code in (0, 1)
    r = batch(inbox, two, "--workers", "2")
    assert r.exit_code in (0, 1), r.output
    assert counts(one / "edi_pipeline.db") == counts(two / "edi_pipeline.db")
    for sub in ("outbound", "rejects", "acks"):
        a = {p.name: p.read_bytes() for p in (one / sub).iterdir()}
        b = {p.name: p.read_bytes() for p in (two / sub).iterdir()}
        if sub == "acks":  # 999s carry the time they were made
            assert a.keys() == b.keys()
        else:
            assert a == b


def test_logs_are_json_lines_without_phi(tmp_path):
    inbox = make_inbox(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "edi_pipeline", "batch", str(inbox), "--out", str(tmp_path / "o"),
                           "--log-json", "--settle", "0"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    events = [json.loads(x) for x in lines]
    assert {"file started", "file done", "quarantined", "reconciled"} <= {e["event"] for e in events}
    assert all("file" in e for e in events)
    (done,) = [e for e in events if e["event"] == "reconciled"]
    assert done["claims"] > 0 and done["payments"] > 0
    # (less the log's own stamps: a pid once equalled a digit run of the fixtures' PHI)
    text = "\n".join(json.dumps({k: v for k, v in e.items() if k not in ("ts", "pid")}, ensure_ascii=False)
                     for e in events) + proc.stdout
    leaked = [v for v in phi_values() if v in text]
    assert not leaked


def test_demo_runs_on_bundled_fixtures(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "== batch summary" in r.output and "== denials" in r.output and "report.html" in r.output
    assert "AUTH-REQUIRED" in r.output  # a denial linked back to the rule that would have prevented it
    assert (out / "report.html").stat().st_size > 10000
    again = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert again.exit_code == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    refused = CliRunner().invoke(cli, ["demo", "--out", str(other)])
    assert refused.exit_code == 1 and (other / "keep.txt").exists()


def test_demo_reconciles_the_whole_store_once(tmp_path, monkeypatch):
    """The denial table and the HTML report share one reconciliation (the batch's own is scoped)."""
    import edi_pipeline.analytics.reconcile

    real = edi_pipeline.analytics.reconcile._stream_groups  # every whole-store read goes through it
    whole_store = []

    def counting(*args, **kwargs):
        whole_store.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(edi_pipeline.analytics.reconcile, "_stream_groups", counting)
    r = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    assert len(whole_store) == 1


def test_a_set_its_999_rejects_is_not_sent_on(tmp_path):
    """The 999 tells the sender to fix and resend the set: forwarding its claims too would send them twice."""
    inbox = make_inbox(tmp_path, ["837p-invalid-se-count.837", "837p-clean.837"], extra=False)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1, r.output
    ack = next((out / "acks").glob("837p-invalid-se-count.837.*.999")).read_text()
    assert "IK5*R" in ack
    assert not (out / "outbound" / "837p-invalid-se-count.837").exists()
    assert "CLM*" in (out / "rejects" / "837p-invalid-se-count.837").read_text()
    report = json.loads((out / "reports" / "837p-invalid-se-count.837.json").read_text())
    assert report["sets_withheld"][0]["transaction_set"] == "0001"
    assert (out / "outbound" / "837p-clean.837").exists()
    store = Store(out / "edi_pipeline.db")
    try:
        files = {r["name"]: r["claims"] for r in store.query("select name, claims from files")}
    finally:
        store.close()
    assert files["837p-invalid-se-count.837"] == 0 and files["837p-clean.837"] > 0


@pytest.mark.parametrize("args", [["batch", "/nonexistent-inbox", "--out", "x"], ["batch"]])
def test_batch_usage_errors(args):
    assert CliRunner().invoke(cli, args).exit_code == 2


def test_a_file_holding_837p_and_835_loses_neither(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    mixed = inbox / "mixed.x12"
    mixed.write_bytes((FIXTURES / "pair-plb.837").read_bytes() + (FIXTURES / "pair-plb.835").read_bytes())
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 0, r.output
    assert (out / "outbound" / "mixed.x12").exists()
    c = counts(out / "edi_pipeline.db")
    assert c["claims"] > 0 and c["claim_payments"] > 0 and c["provider_adjustments"] > 0
    # its remits (stored under the file's 835 record) are reconciled against its own claims
    rows = (out / "reports" / "reconciliation-latest.csv").read_text().splitlines()[1:]
    assert rows and all(",paid," in r or ",partially paid," in r or ",denied," in r for r in rows)
    assert batch(inbox, out).exit_code == 0 and counts(out / "edi_pipeline.db") == c


def test_remits_are_reconciled_after_ingest(tmp_path):
    inbox = make_inbox(tmp_path, extra=False)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1, r.output  # pair-denials.837 holds claims
    report = out / "reports" / "reconciliation-latest.csv"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    # rows are the reconcile command's rows for the claims the remits touched, and only those
    direct = CliRunner().invoke(cli, ["reconcile", "--db", str(out / "edi_pipeline.db"), "--format", "csv"])
    assert direct.exit_code == 0
    rows = report.read_text().splitlines()
    whole = direct.output.split("\n\n")[0].splitlines()
    assert rows[0] == whole[0] and set(rows[1:]) <= set(whole[1:])
    assert not any(r.startswith("NOREMIT01,") for r in rows)  # a claim no remit answered
    store = Store(out / "edi_pipeline.db")
    try:
        paid_pcns = {r.patient_control_number for r in store.recon_payments()}
    finally:
        store.close()
    assert {r.split(",")[0] for r in rows[1:]} == {r.split(",")[0] for r in whole[1:]} & paid_pcns
    statuses = [line.rsplit(",", 2)[1] for line in rows[1:]]
    for status in set(statuses):
        assert f"{statuses.count(status)} {status}" in r.output
    assert {"denied", "paid", "partially paid"} <= set(statuses)
    assert "remits match no claim" in r.output


def test_no_reconciliation_without_remits(tmp_path):
    inbox = make_inbox(tmp_path, names=["pair-denials.837"], extra=False)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert "claims: 13 in" in r.output, r.output
    assert not (out / "reports" / "reconciliation-latest.csv").exists() and "reconciled:" not in r.output


def test_a_failed_reconciliation_keeps_the_summary_and_exits_1(tmp_path, monkeypatch):
    import edi_pipeline.analytics.reconcile as reconcile_module
    from edi_pipeline.core.errors import StoreError

    def broken(*args, **kwargs):
        raise StoreError("cannot read store: database is locked")

    monkeypatch.setattr(reconcile_module, "reconcile_pcns", broken)  # what the batch calls
    inbox = make_inbox(tmp_path, names=["pair-plb.837", "pair-plb.835"], extra=False)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1
    assert "claim payments ingested: " in r.output and "reconciliation failed: cannot read store" in r.output
    assert not (out / "reports" / "reconciliation-latest.csv").exists()
    assert counts(out / "edi_pipeline.db")["claim_payments"] > 0  # the files' own work stands
    monkeypatch.undo()
    r = batch(inbox, out)  # the next run reconciles what the failed one could not
    assert r.exit_code == 0 and "2 already done" in r.output and "reconciled: 2 paid" in r.output, r.output
    assert len((out / "reports" / "reconciliation-latest.csv").read_text().splitlines()) == 3
    r = batch(inbox, out)  # and only once
    assert r.exit_code == 0 and "reconciled:" not in r.output, r.output


KILLED_IN_RECONCILE = """
import os, sys
import edi_pipeline.analytics.reconcile as reconcile
def reconcile_killed(*a, **k):
    os._exit(137)  # killed after every file is done, before the reconciliation report is written
reconcile.reconcile_pcns = reconcile_killed
from edi_pipeline.cli.commands import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--quiet", "--settle", "0"])
"""


def test_killed_before_the_reconciliation_report_then_rerun_writes_it(tmp_path):
    inbox = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False)
    reference = tmp_path / "reference"
    assert batch(inbox, reference).exit_code == 0
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_RECONCILE, str(inbox), str(out)], cwd=ROOT,
                          capture_output=True)
    assert proc.returncode == 137 and not (out / "reports" / "reconciliation-latest.csv").exists()
    r = batch(inbox, out)
    assert r.exit_code == 0 and "2 already done" in r.output, r.output
    assert (out / "reports" / "reconciliation-latest.csv").read_text() == \
        (reference / "reports" / "reconciliation-latest.csv").read_text()


def resend(src, dst):
    """The same interchange (same ISA sender and control number) in different bytes: a line break
    after every segment, as a sender's second transmission of a file may have."""
    dst.write_text(src.read_text().replace("~", "~\n"))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_resent_interchange_is_quarantined_not_counted_twice(tmp_path, workers):
    names = ["pair-plb.837", "pair-plb.835"]
    reference = tmp_path / "reference"
    assert batch(make_inbox(tmp_path, names, extra=False), reference).exit_code == 0
    inbox = tmp_path / "inbox"
    resend(inbox / "pair-plb.837", inbox / "resent-plb.837")
    resend(inbox / "pair-plb.835", inbox / "resent-plb.835")
    out = tmp_path / "out"
    r = batch(inbox, out, "--workers", workers)
    assert r.exit_code == 1, r.output
    assert "2 quarantined" in r.output
    for name, first in (("resent-plb.837", "pair-plb.837"), ("resent-plb.835", "pair-plb.835")):
        why = (out / "quarantine" / f"{name}.error.txt").read_text()
        assert why.startswith(f"{name}:1: ISA#1 ISA13 TA1-025 ") and f"({first}, earlier in this run)" in why
    assert sorted(p.name for p in (out / "outbound").iterdir()) == ["pair-plb.837"]
    assert counts(out / "edi_pipeline.db") == {**counts(reference / "edi_pipeline.db"),
                                               "batch_files": 4}


def test_a_resend_in_a_later_run_is_quarantined(tmp_path):
    inbox = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False)
    out = tmp_path / "out"
    assert batch(inbox, out).exit_code == 0
    before = counts(out / "edi_pipeline.db")
    resend(inbox / "pair-plb.835", inbox / "resent-plb.835")
    r = batch(inbox, out)
    assert r.exit_code == 1 and "1 quarantined" in r.output, r.output
    why = (out / "quarantine" / "resent-plb.835.error.txt").read_text()
    assert "TA1-025" in why and "(pair-plb.835, 20" in why  # the earlier file and when it came
    assert counts(out / "edi_pipeline.db") == {**before, "batch_files": before["batch_files"] + 1}
    assert not (inbox / "resent-plb.835").exists()  # moved out of the inbox
    r = batch(inbox, out)
    assert r.exit_code == 0 and "2 already done" in r.output, r.output


def test_two_copies_of_one_file_in_one_run_are_sent_once(tmp_path):
    inbox = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False)
    shutil.copyfile(inbox / "pair-plb.837", inbox / "copy-plb.837")
    out = tmp_path / "out"
    r = batch(inbox, out, "--workers", "2")
    assert r.exit_code == 0, r.output
    assert "1 already done" in r.output
    assert sorted(p.name for p in (out / "outbound").iterdir()) == ["copy-plb.837"]  # the first by name


def test_ingest_sees_a_scrubbed_interchange_resent(tmp_path):
    db = str(tmp_path / "s.db")
    first, again = tmp_path / "first.837", tmp_path / "again.837"
    shutil.copyfile(FIXTURES / "pair-plb.837", first)
    resend(first, again)
    runner = CliRunner()
    r = runner.invoke(cli, ["scrub", str(first), "-o", str(tmp_path / "out.837"), "--db", db])
    assert r.exit_code == 0, r.output
    before = counts(db)
    assert before["claims"] > 0 and before["files"] == 1
    r = runner.invoke(cli, ["ingest", str(again), "--db", db])
    assert r.exit_code == 0 and "already ingested (same as " in r.output, r.output
    assert counts(db) == before


def test_a_quarantined_837_still_counts_the_999s_it_was_sent(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = (FIXTURES / "837p-clean.837").read_text()
    (inbox / "institutional.837").write_text(text.replace("005010X222A1", "005010X223A2"))  # an 837I label
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1 and "1 quarantined" in r.output, r.output
    acks = list((out / "acks").glob("institutional.837.*.999"))
    assert acks
    accepted, rejected = (int(w) for w in re.search(r"999s: (\d+) accepted, (\d+) rejected", r.output).groups())
    assert accepted + rejected == len(acks)


def test_a_reused_file_name_never_overwrites_the_earlier_files_outputs(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / "pair-plb.837", inbox / "claims.837")
    (inbox / "notes.txt").write_text("first note\n")
    assert batch(inbox, out).exit_code == 1  # notes.txt is quarantined
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".db"
             and "-wal" not in p.name and "-shm" not in p.name and not p.name.startswith(".")}
    assert Path("outbound/claims.837") in first and Path("quarantine/notes.txt") in first

    # the next day the sender sends other claims under the same name, before the first were picked up
    shutil.copyfile(FIXTURES / "pair-denials.837", inbox / "claims.837")
    (inbox / "notes.txt").write_text("second note\n")
    r = batch(inbox, out)
    assert r.exit_code == 1, r.output
    for path, data in first.items():
        assert (out / path).read_bytes() == data, path  # nothing of the first run is overwritten
    tag = hashlib.sha256((inbox / "claims.837").read_bytes()).hexdigest()[:12]
    assert f"its outputs are named claims.{tag}.837" in r.output
    assert (out / "outbound" / f"claims.{tag}.837").exists() and (out / "reports" / f"claims.{tag}.837.json").exists()
    assert list((out / "acks").glob(f"claims.{tag}.837.*.999"))
    notes = hashlib.sha256(b"second note\n").hexdigest()[:12]
    assert (out / "quarantine" / f"notes.{notes}.txt").read_text() == "second note\n"

    r = batch(inbox, out)  # and a rerun finds claims.837 done (notes.txt was moved to quarantine/)
    assert r.exit_code == 0 and "1 already done" in r.output, r.output


@pytest.mark.skipif(sys.platform == "win32", reason="the batch lock is POSIX flock")
def test_a_second_batch_on_the_same_output_folder_does_nothing(tmp_path):
    import fcntl

    from edi_pipeline.runners.batch import LOCK_NAME

    inbox, out = make_inbox(tmp_path, ["pair-plb.837"], extra=False), tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_NAME, "a") as held:  # a batch still running on OUT (an overlapping cron job)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = batch(inbox, out)
        assert r.exit_code == 1 and "another edi-pipeline batch is running" in r.output, r.output
        assert not list((out / "outbound").iterdir()) and not (out / "edi_pipeline.db").exists()
    r = batch(inbox, out)  # the first run ended: the lock went with it
    assert r.exit_code == 0 and (out / "outbound" / "pair-plb.837").exists(), r.output


def test_partial_uploads_and_files_still_changing_wait_for_the_next_run(tmp_path):
    import os
    import time

    inbox, out = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False), tmp_path / "out"
    (inbox / "upload.837.filepart").write_bytes((FIXTURES / "pair-denials.837").read_bytes()[:500])
    old = time.time() - 3600
    for name in ("pair-plb.837", "pair-plb.835"):
        os.utime(inbox / name, (old, old))  # arrived an hour ago; pair-plb.835 is now being rewritten:
    os.utime(inbox / "pair-plb.835", None)
    r = batch(inbox, out, "--settle", "60")
    assert r.exit_code == 0, r.output
    assert "files: 1 (1 done" in r.output and "1 still changing, left for the next run" in r.output
    assert not list((out / "quarantine").iterdir())  # the partial upload was never read
    assert counts(out / "edi_pipeline.db")["claim_payments"] == 0
    os.utime(inbox / "pair-plb.835", (old, old))
    r = batch(inbox, out, "--settle", "60")
    assert r.exit_code == 0 and "files: 2 (1 done, 1 already done" in r.output, r.output
    assert counts(out / "edi_pipeline.db")["claim_payments"] > 0


def test_999s_of_every_run_have_their_own_interchange_control_numbers(tmp_path):
    inbox, out = make_inbox(tmp_path, ["pair-plb.837", "pair-denials.837"], extra=False), tmp_path / "out"
    assert batch(inbox, out, "--workers", "2").exit_code == 1  # pair-denials holds claims
    shutil.copyfile(FIXTURES / "837p-multi-interchange.837", inbox / "multi.837")
    batch(inbox, out)
    controls = [p.read_text().split("~")[0].split("*")[13] for p in (out / "acks").glob("*.999")]
    assert len(controls) == 4 and len(set(controls)) == 4, controls


def test_an_837_whose_interchange_a_ta1_rejects_is_quarantined_whole(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    text = (FIXTURES / "pair-plb.837").read_text()
    (inbox / "badiea.837").write_text(text.replace("IEA*1*000001050", "IEA*1*000009999"))
    r = batch(inbox, out)
    assert r.exit_code == 1 and "interchange 000001050 rejected (TA1 001" in r.output, r.output
    assert not list((out / "outbound").iterdir()) and counts(out / "edi_pipeline.db")["claims"] == 0
    ta1 = (out / "acks" / "badiea.837.000001050.ta1").read_text()
    assert "TA1*000001050*" in ta1 and "*R*001~" in ta1


def test_a_resent_interchange_gets_a_ta1_025(tmp_path):
    inbox = make_inbox(tmp_path, ["pair-plb.837"], extra=False)
    resend(inbox / "pair-plb.837", inbox / "resent-plb.837")
    out = tmp_path / "out"
    assert batch(inbox, out).exit_code == 1
    ta1 = (out / "acks" / "resent-plb.837.000001050.ta1").read_text()
    assert "TA1*000001050*" in ta1 and "*R*025~" in ta1


def test_a_file_repeating_one_processed_interchange_gets_a_ta1_025_for_each_copy(tmp_path):
    """Regression: a file holding the same processed interchange twice (one ISA13) got its two TA1s under
    one name, so the second overwrote the first. The second is named by its ISA's segment position too."""
    inbox = make_inbox(tmp_path, ["pair-plb.835"], extra=False)
    out = tmp_path / "out"
    assert batch(inbox, out).exit_code == 0
    text = (FIXTURES / "pair-plb.835").read_text()
    (inbox / "twice.835").write_text(text + text.replace("~", "~\n"))
    assert batch(inbox, out).exit_code == 1
    second = text.count("~") + 1
    names = sorted(p.name for p in (out / "acks").glob("twice.835.*.ta1"))
    assert names == sorted(["twice.835.000001051.ta1", f"twice.835.000001051.{second}.ta1"]), names
    for name in names:
        ta1 = (out / "acks" / name).read_text()
        assert "TA1*000001051*" in ta1 and "*R*025~" in ta1
    assert len({(out / "acks" / n).read_text().split("~")[0] for n in names}) == 2  # two control numbers


def test_batch_json_summary_lists_every_file(tmp_path):
    inbox, out = make_inbox(tmp_path), tmp_path / "out"
    names = sorted(p.name for p in inbox.iterdir())
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.output)
    outcomes = {f["name"]: f for f in doc["file_outcomes"]}
    assert sorted(outcomes) == names
    assert doc["ok"] is False and doc["quarantined"] == 2 == sum(f["status"] == "quarantined" for f in outcomes.values())
    assert outcomes["held.837"]["claims_held"] > 0 and outcomes["held.837"]["kind"] == "837P"
    assert outcomes["corrupt.835"]["kind"] == "835" and "corrupt.835:" in outcomes["corrupt.835"]["detail"]
    assert doc["payments"] == sum(f["payments"] for f in outcomes.values()) > 0


def test_the_summary_fits_one_screen_however_many_files_are_quarantined(tmp_path):
    from edi_pipeline.cli.batch import SUMMARY_NOTES

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for k in range(SUMMARY_NOTES + 8):
        (inbox / f"note{k:02d}.txt").write_text(f"not an interchange ({k})\n")
    r = batch(inbox, out)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert len(lines) <= SUMMARY_NOTES + 6, r.output
    assert sum(line.startswith("  quarantined ") for line in lines) == SUMMARY_NOTES - 1
    assert "  ... and 9 more (quarantine/*.error.txt, or --format json)" in lines
    assert len(list((out / "quarantine").glob("*.error.txt"))) == SUMMARY_NOTES + 8  # each file still says why


def test_a_damaged_ack_sequence_quarantines_with_the_reason(tmp_path):
    from edi_pipeline.validate.validator import SEQUENCE_NAME

    inbox, out = make_inbox(tmp_path, ["pair-plb.837"], extra=False), tmp_path / "out"
    (out / "acks").mkdir(parents=True)
    (out / "acks" / SEQUENCE_NAME).write_text("garbage\n")
    r = batch(inbox, out)
    assert r.exit_code == 1 and "control-number sequence is damaged" in r.output, r.output
    assert not list((out / "outbound").iterdir())


SCREENED = {t.st01: t.kind for t in REGISTRY}  # the sets the screen counts, by ST01 (837I as 837P)


def reader_interchanges(path: Path) -> list[tuple]:
    """Each interchange as the envelope reader finds it: sender, control number, line, position, kinds."""
    found: list[tuple] = []
    with EnvelopeReader(path, path.name) as env:
        for item in env:
            if isinstance(item, EnvelopeSegment) and item.tag == "ISA":
                found.append((item.elements[6].strip(), item.elements[13].strip(), item.line, item.index, set()))
            elif isinstance(item, Transaction) and item.set_id in SCREENED and found:
                found[-1][4].add(SCREENED[item.set_id])
    return found


def scanned_interchanges(path: Path) -> list[tuple]:
    """Each interchange as the batch screen finds it; the position counted (as the screen does) only
    for a repeat it reports."""
    marks = scan_file(path).interchanges
    return [(m.sender, m.control, m.line, i, m.kinds) for m, i in zip(marks, isa_indexes(path, marks))]


def other_delimiters(path: Path) -> str:
    """The file with `~` as element separator and `!` + newline as terminator (its old terminator)."""
    text = path.read_text()
    return text.replace("~", "\0").replace("*", "~").replace("\0", "!\n")


@pytest.mark.parametrize("chunk", [200, 4096, 1 << 20])
def test_scan_finds_every_interchange_the_reader_finds(tmp_path, monkeypatch, chunk):
    """The batch screen's byte scan (chunked, in C) against the envelope reader: same ISAs, lines,
    positions and kinds of set, across chunk boundaries and delimiter changes."""
    monkeypatch.setattr(batch_module, "SCAN_CHUNK", chunk)
    mixed = tmp_path / "mixed.x12"
    mixed.write_text((FIXTURES / "pair-plb.835").read_text() + other_delimiters(FIXTURES / "pair-denials.837")
                     + "\n" + (FIXTURES / "pair-denials.835").read_text())
    paths = fixture_files() + [mixed]
    for path in paths:
        assert scanned_interchanges(path) == reader_interchanges(path), path.name
    assert [(m.control, m.kinds) for m in scan_file(mixed).interchanges] == [
        ("000001051", {"835"}), ("000001046", {"837P"}), ("000001047", {"835"})]
    assert scan_file(mixed).kind == "837P+835"


def test_scan_finds_the_corpus_interchanges_the_reader_finds():
    files = [p for p in corpus_files() if p.suffix != ".md"]
    if not files:
        pytest.skip(f"corpus not found at {CORPUS}; set EDI_CORPUS to ../shared/corpus to run corpus tests")
    scanned = 0
    for path in files:
        try:
            got = scanned_interchanges(path)
        except EdiError:  # no ISA, or no 837/835: the batch quarantines it with the reader's reason
            continue
        assert got == reader_interchanges(path), path.name
        scanned += 1
    assert scanned > 40


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_interchange_resent_behind_a_new_one_is_quarantined(tmp_path, workers):
    """A file whose second interchange was processed before, in an earlier run or earlier in this one:
    the whole file is held (its new interchange with it), with a TA1 025 for the repeated interchange."""
    inbox = make_inbox(tmp_path, ["pair-plb.837", "pair-plb.835"], extra=False)
    out = tmp_path / "out"
    assert batch(inbox, out).exit_code == 0
    before = counts(out / "edi_pipeline.db")
    combined = (FIXTURES / "pair-denials.835").read_text() + (FIXTURES / "pair-plb.835").read_text()
    (inbox / "combined.835").write_text(combined)  # 000001051 came in pair-plb.835 in the first run
    (inbox / "later.837").write_text((FIXTURES / "pair-denials.837").read_text()
                                     + (FIXTURES / "pair-denials.837").read_text().replace("000001046", "000001099"))
    (inbox / "redo.837").write_text((FIXTURES / "pair-reversal.837").read_text()
                                    + (inbox / "later.837").read_text())  # 000001046: in later.837, read first
    r = batch(inbox, out, "--workers", workers)
    assert r.exit_code == 1 and "2 quarantined" in r.output, r.output
    first = (FIXTURES / "pair-denials.835").read_text()
    why = (out / "quarantine" / "combined.835.error.txt").read_text()
    assert why.startswith(f"combined.835:{first.count(chr(10)) + 1}: ISA#{first.count('~') + 1} ISA13 TA1-025 interchange 000001051 from "
                          "PAYERSYS01 already processed (pair-plb.835, 20"), why
    assert "the file's other interchanges (1) are new" in why
    ta1 = (out / "acks" / "combined.835.000001051.ta1").read_text()
    assert "TA1*000001051*" in ta1 and "*R*025~" in ta1
    why = (out / "quarantine" / "redo.837.error.txt").read_text()
    assert "interchange 000001046 from " in why and "(later.837, earlier in this run)" in why, why
    assert sorted(p.name for p in (out / "outbound").iterdir()) == ["later.837", "pair-plb.837"]
    after = counts(out / "edi_pipeline.db")
    assert after["claim_payments"] == before["claim_payments"]  # nothing of combined.835 counted
    assert after["files"] == before["files"] + 1  # later.837 only


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_an_overlong_isa_is_screened_without_a_crash(tmp_path, monkeypatch, chunk):
    """An ISA of 5,000 characters, longer than the screen's first read (1000) or not: the file is
    quarantined with the reader's reason, never a crash."""
    monkeypatch.setattr(batch_module, "SCAN_CHUNK", chunk)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = (FIXTURES / "pair-plb.835").read_text()
    isa, rest = text.split("~", 1)
    e = isa.split("*")
    e[2] = " " * 5000
    (inbox / "long.835").write_text("*".join(e) + "~" + rest)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1 and "1 quarantined" in r.output, r.output
    why = (out / "quarantine" / "long.835.error.txt").read_text()
    assert why.startswith("long.835:") and "long.835:1: ISA#1 " in why, why
