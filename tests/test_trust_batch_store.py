"""Issue 12, the batch's store and publication: resends whatever the ISA13 holds, commit before publish,
the store as the lock between batches, files still being uploaded, and exit codes."""

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from edi_pipeline.cli.commands import cli
from edi_pipeline.store.store import Store


def isa13_of(text: str) -> str:
    return text.split("~", 1)[0].split("*")[13]


def with_control(text: str, control: str, isa10: str | None = None) -> str:
    """The fixture's interchange with ISA13 and IEA02 set to `control` (and ISA10, the time, to `isa10`)."""
    old = isa13_of(text)
    isa, rest = text.split("~", 1)
    e = isa.split("*")
    e[13] = control
    if isa10 is not None:
        e[10] = isa10
    return "*".join(e) + "~" + rest.replace(f"IEA*1*{old}", f"IEA*1*{control}")


def batch(inbox, out, *extra):
    return CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0", *extra])


def payments(db) -> int:
    store = Store(db)
    try:
        return store.conn.execute("select count(*) from claim_payments").fetchone()[0]
    finally:
        store.close()


def inbox_with(tmp_path, files: dict[str, str], name="inbox") -> Path:
    inbox = tmp_path / name
    inbox.mkdir()
    for n, text in files.items():
        (inbox / n).write_text(text)
    return inbox


def plb_and_reference(tmp_path) -> tuple[Path, Path]:
    """An inbox holding pair-plb.837, and the output folder of a clean batch run over it."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / "pair-plb.837", inbox / "pair-plb.837")
    reference = tmp_path / "reference"
    assert batch(inbox, reference).exit_code == 0
    return inbox, reference


# --- 1. resends whatever the ISA13 holds ------------------------------------------------------

BLANK = " " * 9


@pytest.mark.parametrize("control", [BLANK, "12345", "00000105A", "0000010500"])
def test_an_isa13_not_9_digits_is_an_envelope_error(tmp_path, control):
    path = tmp_path / "x.835"
    path.write_text(with_control((FIXTURES / "pair-plb.835").read_text(), control))
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 1
    assert "ISA#1 ISA13 TA1-018 ISA13 must be a 9-digit interchange control number" in r.output, r.output
    r = CliRunner().invoke(cli, ["ingest", str(path), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 1 and "rejected" in r.output, r.output
    assert payments(tmp_path / "s.db") == 0


def test_a_blank_isa13_835_resent_is_never_ingested_twice(tmp_path):
    """The issue's case: a resent 835 with only ISA10 changed doubled a payment."""
    text = with_control((FIXTURES / "pair-plb.835").read_text(), BLANK)
    inbox = inbox_with(tmp_path, {"first.835": text, "again.835": with_control(text, BLANK, "1300")})
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1 and "2 quarantined" in r.output, r.output
    assert payments(out / "edi_pipeline.db") == 0
    for name in ("first.835", "again.835"):
        assert "TA1-018" in (out / "quarantine" / f"{name}.error.txt").read_text()


def test_a_blank_isa13_837_is_quarantined_with_a_ta1_018_and_never_sent(tmp_path):
    text = with_control((FIXTURES / "pair-plb.837").read_text(), BLANK)
    inbox = inbox_with(tmp_path, {"first.837": text, "again.837": with_control(text, BLANK, "1300")})
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 1 and "2 quarantined" in r.output, r.output
    assert not list((out / "outbound").iterdir())
    ta1s = sorted((out / "acks").glob("*.ta1"))
    assert [p.name.split(".")[0] for p in ta1s] == ["again", "first"]
    assert all("*R*018~" in p.read_text() for p in ta1s)


# --- 5. a rejected set makes batch exit 1 -------------------------------------------------------

def test_a_set_its_999_rejects_makes_the_batch_exit_1(tmp_path):
    """A set whose 999 rejects it but that holds no claim read (so none is held) still fails the run."""
    text = (FIXTURES / "837p-clean.837").read_text().replace("\nCLM*", "\nCLX*").replace("~CLM*", "~CLX*")
    inbox = inbox_with(tmp_path, {"noclaims.837": text})
    out = tmp_path / "out"
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code == 1, r.output
    assert '"sets_rejected": 1' in r.output and '"claims_held": 0' in r.output
    assert "IK5*R" in next((out / "acks").glob("noclaims.837.*.999")).read_text()


def broken_iea(text: str) -> str:
    """The interchange with an IEA02 that does not match its ISA13: a TA1 001 refuses it whole."""
    control = isa13_of(text)
    return text.replace(f"IEA*1*{control}", "IEA*1*999999999")


@pytest.mark.parametrize("fixture", ["pair-plb.837", "pair-plb.835"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_refused_file_does_not_block_its_corrected_resend_in_the_same_run(tmp_path, fixture, workers):
    good = (FIXTURES / fixture).read_text()
    suffix = fixture[-4:]
    inbox = inbox_with(tmp_path, {f"a-broken{suffix}": broken_iea(good), f"b-fixed{suffix}": good})
    out = tmp_path / "out"
    r = batch(inbox, out, "--workers", workers, "--format", "json")
    assert r.exit_code == 1 and '"quarantined": 1' in r.output, r.output
    assert [p.name for p in (out / "quarantine").glob("*.error.txt")] == [f"a-broken{suffix}.error.txt"]
    if suffix == ".837":
        assert [p.name for p in (out / "outbound").iterdir()] == ["b-fixed.837"]
    else:
        assert payments(out / "edi_pipeline.db") == 2
    # and a later resend of the same interchange, now taken, is refused as a repeat
    (inbox / f"c-again{suffix}").write_text(good.replace("~", "~\n"))
    r = batch(inbox, out)
    assert not (inbox / f"a-broken{suffix}").exists()  # quarantine moved it out of the inbox
    assert r.exit_code == 1 and "1 quarantined" in r.output and "1 already done" in r.output, r.output
    assert "TA1-025" in (out / "quarantine" / f"c-again{suffix}.error.txt").read_text()


def test_a_refused_file_does_not_block_its_corrected_resend_in_a_later_run(tmp_path):
    good = (FIXTURES / "pair-plb.837").read_text()
    inbox = inbox_with(tmp_path, {"broken.837": broken_iea(good)})
    out = tmp_path / "out"
    assert batch(inbox, out).exit_code == 1
    (inbox / "fixed.837").write_text(good)
    r = batch(inbox, out)
    assert r.exit_code == 0 and "1 done" in r.output, r.output
    assert [p.name for p in (out / "outbound").iterdir()] == ["fixed.837"]


def test_a_sender_id_the_store_cannot_look_up_does_not_stop_the_batch(tmp_path):
    """A Latin-1 byte in ISA06 stopped the whole run in the resend screen; every other file waited."""
    import json

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = (FIXTURES / "pair-plb.837").read_bytes()
    (inbox / "latin.837").write_bytes(data.replace(b"*PAINCLINIC01   *", b"*PAINCLINIC0\xe9   *", 1))
    shutil.copyfile(FIXTURES / "pair-plb.837", inbox / "pair-plb.837")
    r = batch(inbox, tmp_path / "out", "--format", "json")
    assert r.exit_code in (0, 1), r.output
    outcomes = {f["name"]: f["status"] for f in json.loads(r.output)["file_outcomes"]}
    assert outcomes.keys() == {"latin.837", "pair-plb.837"} and outcomes["pair-plb.837"] == "done", r.output


# --- 2. a batch step commits before it publishes --------------------------------------------------

OUTPUTS = ("outbound", "rejects", "reports", "acks", "quarantine")


def published(out: Path) -> dict[str, dict[str, str]]:
    """Each output folder's files; acks by their ISA13 (their time differs from run to run)."""
    found = {}
    for sub in OUTPUTS:
        files = {}
        for p in sorted((out / sub).iterdir()) if (out / sub).is_dir() else ():
            if p.name.startswith("."):
                continue
            text = p.read_text().replace(str(out), "OUT")
            name = re.sub(r"^reconciliation-\d.*\.csv$", "reconciliation-RUN.csv", p.name)  # one per run
            files[name] = isa13_of(text) if sub == "acks" else text
        found[sub] = files
    return found


def table_counts(db) -> dict[str, int]:
    store = Store(db)
    try:
        return store.table_counts(("files", "claims", "claim_lines", "claim_payments", "batch_files"))
    finally:
        store.close()


KILLED_PUBLISHING = """
import hashlib, os, sys
from pathlib import Path
import edi_pipeline.runners.batch as batch
victim = hashlib.sha256(Path(sys.argv[1], sys.argv[3]).read_bytes()).hexdigest()
real_publish, real_replace = batch.publish, os.replace
def replace_then_die(a, b):
    real_replace(a, b)
    os._exit(137)  # killed after the first output moved into place
def publish(stage, out):
    if stage.name == victim:
        if sys.argv[4] == "before":
            os._exit(137)  # killed after the file's store commit and done mark, before any output moved
        os.replace = replace_then_die
    real_publish(stage, out)
batch.publish = publish
from edi_pipeline.cli.commands import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--quiet", "--settle", "0"])
"""


@pytest.mark.parametrize("victim, when", [("pair-denials.837", "before"), ("pair-denials.837", "midway"),
                                          ("pair-denials.835", "before")])  # an 835 has no output to move
def test_killed_between_commit_and_publishing_then_rerun_publishes_each_output_once(tmp_path, victim, when):
    import subprocess
    import sys

    from conftest import ROOT

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in ("pair-denials.837", "pair-denials.835", "pair-plb.837"):
        shutil.copyfile(FIXTURES / n, inbox / n)
    reference = tmp_path / "reference"
    assert batch(inbox, reference).exit_code == 1  # pair-denials.837 holds claims
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", KILLED_PUBLISHING, str(inbox), str(out), victim, when], cwd=ROOT,
                          capture_output=True)
    assert proc.returncode == 137, proc.stderr
    store = Store(out / "edi_pipeline.db")
    try:  # it really died after the file's done mark, its outputs not all published
        assert [r["name"] for r in store.batch_files_to_publish()] == [victim]
    finally:
        store.close()
    if victim.endswith(".837"):
        assert any((out / ".staging").iterdir()) and not (out / "outbound" / victim).exists()
    r = batch(inbox, out)
    assert r.exit_code in (0, 1) and "0 quarantined" in r.output, r.output  # (the held claims were the first run's)
    # every output once; the victim's acks under the numbers the reference gave them. The killed run had
    # reserved pair-plb.837's block too (before any file was processed): the rerun's skips it, a gap, no reuse.
    from edi_pipeline.runners.batch import ack_numbers, scan_file

    gap = ack_numbers(scan_file(inbox / "pair-plb.837")) if victim.endswith(".837") else 0
    expected = published(reference)
    expected["acks"] = {k: f"{int(v) + gap:09d}" if k.startswith("pair-plb") else v for k, v in expected["acks"].items()}
    assert published(out) == expected
    assert int((out / "acks" / ".edi-pipeline-control-number").read_text()) == \
        int((reference / "acks" / ".edi-pipeline-control-number").read_text()) + gap  # no second 999 was made
    assert table_counts(out / "edi_pipeline.db") == table_counts(reference / "edi_pipeline.db")
    assert (out / "reports" / "reconciliation-latest.csv").read_text() == \
        (reference / "reports" / "reconciliation-latest.csv").read_text()
    assert not list(out.glob(".staging/*"))


@pytest.mark.parametrize("where", ["store rows", "done mark"])
def test_a_failed_store_commit_publishes_nothing_and_the_rerun_processes_the_file_once(tmp_path, monkeypatch,
                                                                                         where):
    import contextlib
    import sqlite3

    inbox, reference = plb_and_reference(tmp_path)

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    if where == "store rows":
        real = Store.staged

        @contextlib.contextmanager
        def staged(self):
            with real(self):
                yield
                disk_full()  # the copy into the store fails: nothing of it commits
        monkeypatch.setattr(Store, "staged", staged)
    else:
        monkeypatch.setattr(Store, "mark_batch_file", disk_full)
    out = tmp_path / "out"
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code == 1 and '"failed": 1' in r.output and "database or disk is full" in r.output, r.output
    assert not any(published(out).values())  # no 999, nothing sent, nothing quarantined
    assert not list(out.glob(".staging/*"))  # and nothing of it kept staged
    assert (inbox / "pair-plb.837").exists()
    monkeypatch.undo()
    rerun_finishes_as_the_reference(inbox, out, reference)


def rerun_finishes_as_the_reference(inbox, out, reference) -> None:
    """The next run takes the file and gives the reference run's outputs (its acks under the next numbers:
    the failed run's were never sent) and store rows."""
    r = batch(inbox, out)
    assert r.exit_code == 0 and "1 done" in r.output, r.output
    assert {k: v.keys() if k == "acks" else v for k, v in published(out).items()} == \
        {k: v.keys() if k == "acks" else v for k, v in published(reference).items()}
    assert table_counts(out / "edi_pipeline.db") == table_counts(reference / "edi_pipeline.db")


def test_a_file_failing_after_its_rows_are_stored_is_left_for_the_next_run_not_quarantined(tmp_path,
                                                                                          monkeypatch):
    """Quarantined, its claims would stay in the store (and block its resend) with nothing sent."""
    import errno

    from edi_pipeline.scrub.scrubber import ScrubResult

    inbox, reference = plb_and_reference(tmp_path)

    def disk_full(self, fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ScrubResult, "write_report", disk_full)
    out = tmp_path / "out"
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code == 1 and '"failed": 1' in r.output and "after its rows were stored" in r.output, r.output
    assert not any(published(out).values())
    monkeypatch.undo()
    r = batch(inbox, out)
    assert r.exit_code == 0 and "1 done" in r.output, r.output
    assert {k: v.keys() if k == "acks" else v for k, v in published(out).items()} == \
        {k: v.keys() if k == "acks" else v for k, v in published(reference).items()}
    assert table_counts(out / "edi_pipeline.db") == table_counts(reference / "edi_pipeline.db")


def sent_rows(db) -> dict[str, list[tuple]]:
    """The outbound sets and their claims as recorded (less the time they were)."""
    store = Store(db)
    try:
        return {"sets": sorted(store.conn.execute("select id, file_sha256, outbound_file, isa_sender, isa_receiver, "
                                                  "isa_control, gs_control, st_control, claims from outbound_sets")),
                "claims": sorted(store.conn.execute("select * from outbound_claims"))}
    finally:
        store.close()


def test_a_fault_recording_the_sets_sent_keeps_neither_them_nor_the_claims_and_the_rerun_finishes(tmp_path,
                                                                                                 monkeypatch):
    """The sets an 837P sends (what the payer's 999 answers) are recorded in the transaction that stores
    its claims: a fault between the two leaves neither, and the next run does the whole file again."""
    inbox, reference = plb_and_reference(tmp_path)
    assert sent_rows(reference / "edi_pipeline.db")["sets"]

    def fails(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "add_outbound_sets", fails)
    out = tmp_path / "out"
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code == 1 and '"failed": 1' in r.output, r.output
    assert "store write failed (disk I/O error)" in r.output, r.output
    assert "after its rows were stored" not in r.output, r.output  # it said so, though rolled back
    assert table_counts(out / "edi_pipeline.db")["claims"] == 0  # the scrub's commit was undone with it
    assert sent_rows(out / "edi_pipeline.db") == {"sets": [], "claims": []}
    assert not any(published(out).values()) and (inbox / "pair-plb.837").exists()
    monkeypatch.undo()
    rerun_finishes_as_the_reference(inbox, out, reference)
    assert sent_rows(out / "edi_pipeline.db") == sent_rows(reference / "edi_pipeline.db")


def test_outputs_that_cannot_be_published_wait_staged_for_the_next_run(tmp_path, monkeypatch):
    import edi_pipeline.runners.batch as batch_module

    inbox, reference = plb_and_reference(tmp_path)

    def publish_fails(stage, out):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(batch_module, "publish", publish_fails)
    out = tmp_path / "out"
    r = batch(inbox, out, "--format", "json")
    monkeypatch.undo()
    assert r.exit_code == 1 and '"failed": 1' in r.output and "the next run publishes them" in r.output, r.output
    assert not any(published(out).values())
    r = batch(inbox, out)  # publishes them first, then finds the file done
    assert r.exit_code == 0 and "1 already done" in r.output, r.output
    assert published(out) == published(reference)


def test_outputs_a_killed_run_staged_but_never_committed_are_dropped(tmp_path):
    """Killed before its commit, a file's staged outputs (PHI) go, even if the file never comes back."""
    import subprocess
    import sys

    from conftest import ROOT

    inbox = inbox_with(tmp_path, {"pair-plb.837": (FIXTURES / "pair-plb.837").read_text()})
    out = tmp_path / "out"
    killed = KILLED_PUBLISHING.replace("import edi_pipeline.runners.batch as batch", "import edi_pipeline.runners.batch as batch\n"
                                       "import edi_pipeline.scrub.scrubber as scrub\n"
                                       "scrub.ScrubResult.write_report = lambda self, fh: os._exit(137)")
    proc = subprocess.run([sys.executable, "-c", killed, str(inbox), str(out), "pair-plb.837", "before"], cwd=ROOT,
                          capture_output=True)
    assert proc.returncode == 137, proc.stderr
    assert list((out / ".staging").rglob("pair-plb.837"))  # its outbound and rejects, staged
    (inbox / "pair-plb.837").unlink()  # the sender took it back
    r = batch(inbox, out)
    assert r.exit_code == 0, r.output
    assert not list(out.glob(".staging/*")) and not any(published(out).values())


# --- 3. the store, not the out folder, is the lock -----------------------------------------------

def test_a_file_claimed_by_a_live_batch_on_the_same_store_is_left_to_it(tmp_path):
    from edi_pipeline.runners.batch import _run_alive, store_run
    from edi_pipeline.core.files import path_sha256

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / "pair-plb.837", inbox / "pair-plb.837")
    db = str(tmp_path / "shared.db")
    sha = path_sha256(inbox / "pair-plb.837")
    with store_run(db) as other:  # another batch, with another --out, has claimed the file
        store = Store(db)
        try:
            assert store.claim_batch_file(sha, other, _run_alive(db)) is None
        finally:
            store.close()
        r = batch(inbox, tmp_path / "mine", "--db", db, "--format", "json")
        assert r.exit_code == 0 and "being processed by another batch run" in r.output, r.output
        assert not list((tmp_path / "mine" / "outbound").iterdir())
        assert table_counts(db)["claims"] == 0
    # that run died without finishing the file (its lock is gone): its claim lapses
    r = batch(inbox, tmp_path / "mine", "--db", db)
    assert r.exit_code == 0 and "1 done" in r.output, r.output
    assert [p.name for p in (tmp_path / "mine" / "outbound").iterdir()] == ["pair-plb.837"]


def test_two_concurrent_batches_on_one_store_never_process_the_same_file(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = ["pair-denials.837", "pair-plb.837", "pair-reversal.837", "pair-corrections.837",
             "837p-clean.837", "837p-multi-interchange.837"]
    for n in names:
        shutil.copyfile(FIXTURES / n, inbox / n)
    reference = tmp_path / "reference"
    batch(inbox, reference)
    db = str(tmp_path / "shared.db")
    procs = [subprocess.Popen([sys.executable, "-m", "edi_pipeline", "batch", str(inbox), "--out",
                               str(tmp_path / f"out{k}"), "--db", db, "--quiet", "--settle", "0"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for k in (1, 2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    # both ran (a new store created by both at once is migrated once), and between them did each file once
    done = [re.search(r"^files: 6 \((\d+) done, (\d+) already done, 0 quarantined\)", o, re.M) for o in outputs]
    assert all(done) and sum(int(m.group(1)) for m in done) == 6, outputs
    sent = [p.name for k in (1, 2) for p in (tmp_path / f"out{k}" / "outbound").iterdir()]
    assert sorted(sent) == sorted(p.name for p in (reference / "outbound").iterdir())  # each once, in one of them
    acks = [p.name for k in (1, 2) for p in (tmp_path / f"out{k}" / "acks").glob("*.999")]
    assert sorted(acks) == sorted(p.name for p in (reference / "acks").glob("*.999"))
    assert table_counts(db) == table_counts(reference / "edi_pipeline.db")


def test_an_interchange_another_batch_takes_while_this_one_reads_is_not_taken_twice(tmp_path, monkeypatch):
    """Two batches on one store, each with its own copy of one 837 interchange in different bytes: both
    screens pass, but only the first to commit takes it (the check runs inside the store's write lock);
    the other is left for its next run, which quarantines it as a resend. (An 835 is refused by
    ingest's own check as well.)"""
    import edi_pipeline.runners.batch as batch_module

    suffix = ".837"
    text = (FIXTURES / "pair-plb.837").read_text()
    theirs = inbox_with(tmp_path, {f"first{suffix}": text}, "theirs")
    mine = inbox_with(tmp_path, {f"resent{suffix}": text.replace("~", "~\n")}, "mine")
    db = str(tmp_path / "shared.db")
    real = batch_module._process

    def other_batch_commits_first(*args):
        monkeypatch.setattr(batch_module, "_process", real)
        assert batch(theirs, tmp_path / "out-theirs", "--db", db).exit_code == 0
        return real(*args)

    monkeypatch.setattr(batch_module, "_process", other_batch_commits_first)
    r = batch(mine, tmp_path / "out-mine", "--db", db)
    assert r.exit_code == 0 and "1 still changing, left for the next run" in r.output, r.output
    assert not any(published(tmp_path / "out-mine").values())
    assert table_counts(db)["files"] == 1
    r = batch(mine, tmp_path / "out-mine", "--db", db)
    assert r.exit_code == 1 and "1 quarantined" in r.output, r.output
    assert "TA1-025" in (tmp_path / "out-mine" / "quarantine" / f"resent{suffix}.error.txt").read_text()


def test_two_openers_of_a_new_store_migrate_it_once(tmp_path, monkeypatch):
    """Two batches started together on a new --db both migrated it: one stopped at once ("UNIQUE
    constraint failed: _sqlite_migrations", or "database is locked")."""
    import threading

    from edi_pipeline.store import migrations

    real = migrations.apply
    calls = []
    first_in, second_in = threading.Event(), threading.Event()

    def apply(db):
        calls.append(1)
        if len(calls) == 1:
            first_in.set()
            second_in.wait(1)  # the chance for a second opener to migrate at the same time
        else:
            second_in.set()
        real(db)

    monkeypatch.setattr(migrations, "apply", apply)
    db = tmp_path / "new.db"
    errors = []

    def open_store():
        try:
            Store(db).close()
        except Exception as exc:
            errors.append(exc)

    first = threading.Thread(target=open_store)
    first.start()
    assert first_in.wait(10)
    open_store()
    first.join()
    assert not errors and len(calls) == 1
    assert table_counts(db)["batch_files"] == 0


# --- 4. files being uploaded are left alone --------------------------------------------------------

def test_batch_leaves_a_file_written_in_the_last_5_seconds_by_default(tmp_path):
    inbox = inbox_with(tmp_path, {"new.837": (FIXTURES / "pair-plb.837").read_text()})
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0 and "1 still changing, left for the next run" in r.output, r.output
    assert not (tmp_path / "out" / "edi_pipeline.db").exists() or table_counts(tmp_path / "out" /
                                                                               "edi_pipeline.db")["files"] == 0


@pytest.mark.parametrize("fixture", ["pair-plb.837", "pair-plb.835", "837p-invalid-truncated.837"])
def test_a_file_that_changes_while_read_is_not_recorded_and_the_next_run_takes_it_whole(tmp_path, monkeypatch,
                                                                                        fixture):
    import edi_pipeline.runners.batch as batch_module

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / f"upload{fixture[-4:]}"
    shutil.copyfile(FIXTURES / fixture, target)
    real = batch_module._check_unchanged

    def grows_then_checks(path, before):
        with open(path, "a") as fh:  # the upload goes on while the batch reads the file
            fh.write("\n")
        real(path, before)

    monkeypatch.setattr(batch_module, "_check_unchanged", grows_then_checks)
    out = tmp_path / "out"
    r = batch(inbox, out)
    assert r.exit_code == 0 and "1 still changing, left for the next run" in r.output, r.output
    assert table_counts(out / "edi_pipeline.db") == dict.fromkeys(("files", "claims", "claim_lines",
                                                                   "claim_payments", "batch_files"), 0)
    assert not any(published(out).values())
    monkeypatch.undo()
    r = batch(inbox, out)
    assert "files: 1 (" in r.output and "still changing" not in r.output, r.output
    again = batch(inbox, out)
    if "invalid" in fixture:  # quarantined whole: moved out of the inbox
        assert not target.exists() and "files: 0 (" in again.output, again.output
    else:
        assert "1 already done" in again.output, again.output


def _open_store(path: str) -> str:
    from edi_pipeline.core.errors import StoreError

    try:
        Store(path).close()
        return "ok"
    except StoreError as exc:
        return str(exc)


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path):
    # Regression: two batch runs creating one store could both switch it to WAL at once; SQLite failed one of
    # them with "database is locked" at once, busy_timeout or not (1 run in ~30 under load).
    import multiprocessing

    paths = [str(tmp_path / f"s{k}.db") for k in range(12)]
    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = [r for p in paths for r in pool.map(_open_store, [p] * 6)]
    assert results == ["ok"] * len(results), [r for r in results if r != "ok"]
