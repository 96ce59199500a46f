"""`batch --workers 2` when a worker process dies mid-job (the OOM killer, kill -9): the run ends (it used to
wait for the lost job for ever) with exit 3 and one internal error line naming the file, nothing of the file
published or stored (its transaction dies with the process, or is rolled back in the run's own), and the
next run finishes the batch with the outputs and rows of a run never interrupted."""

import os
import re
import shutil
import signal
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_batch_workers import _generated, _outputs, _rows

from edi_pipeline.cli.commands import cli
from edi_pipeline.pipeline import split
from edi_pipeline.runners import batch
from edi_pipeline.tr3.compiled import walk_set

_JOB = batch._job
_KILL_AT = "EDI_TEST_KILL_AT"  # what the worker dies on: a file's name (_killing_job) or a set's ST02 (_killing_walk)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _killing_job(args):
    """batch._job in a worker: the file named $EDI_TEST_KILL_AT kills its worker inside its store
    transaction, its claims inserted, as its sets sent are recorded."""
    if Path(args[0]).name == os.environ.get(_KILL_AT):
        from edi_pipeline.store.events import ClaimEvents

        ClaimEvents.add_outbound_sets = lambda *a: _die()
    return _JOB(args)


def _killing_walk(filename, isa, gs, tx, now):
    """walk_set in a worker: the set whose ST02 is $EDI_TEST_KILL_AT kills its worker."""
    if tx.control_number == os.environ.get(_KILL_AT):
        _die()
    return walk_set(filename, isa, gs, tx, now)


TIMEOUT = 120  # seconds: a run that has not ended by then waits for ever


def _batch(inbox: Path, out: Path, timeout: float = TIMEOUT):
    """The CLI's batch --workers 2 (its Result), failing the test if it has not ended within `timeout`."""
    done = []
    thread = threading.Thread(target=lambda: done.append(CliRunner().invoke(
        cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0", "--workers", "2"])), daemon=True)
    thread.start()
    thread.join(timeout)
    if not done:
        pytest.fail(f"batch --workers 2 still running after {timeout} s: the lost job is waited for")
    return done[0]


def _unsent(out: Path) -> dict[str, bytes]:
    """_outputs(out), the acknowledgments' numbers masked: a rerun numbers them from the next control
    number (the failed run's were never sent), which their ISA13, GS06, BHT03 and TRN02 carry."""
    return {k: re.sub(rb"\d+", b"N", v) if k.startswith("acks/") else v for k, v in _outputs(out).items()}


def _interrupted_then_rerun(tmp_path, monkeypatch, inbox: Path, victim: str) -> None:
    """The generated pair of `inbox` through a run whose worker dies on `victim` ($EDI_TEST_KILL_AT) and
    the rerun: exit 3 naming gen.837, none of its outputs or rows, then the reference run's outputs and rows."""
    keep = shutil.copytree(inbox, tmp_path / "reference-inbox")
    reference = tmp_path / "reference"
    r = _batch(keep, reference)
    assert r.exit_code == 1, r.output  # claims held, a set rejected
    out = tmp_path / "out"
    monkeypatch.setenv(_KILL_AT, victim)
    r = _batch(inbox, out)
    assert r.exit_code == 3, r.output
    lost = [line for line in r.output.splitlines() if "internal error" in line]
    # (the 835 beside it is done, or lost too when its job was still running: the pool ends them all)
    assert [line for line in lost if "gen.835" not in line] == [
        "  failed gen.837: internal error (a worker process died before the file was done: killed, or out of "
        "memory); nothing of it kept, left in the inbox for the next run"], r.output
    assert (inbox / "gen.837").exists() and "Traceback" not in r.output
    # nothing published for it (what its worker staged, the next run drops)
    assert not [k for k in _outputs(out) if "gen.837" in k and not k.startswith(".staging/")]
    rows = _rows(out / "edi_pipeline.db", out)
    assert not rows["claims"] and not rows["outbound_sets"] and not rows["findings"]
    monkeypatch.delenv(_KILL_AT)
    monkeypatch.undo()
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    r = _batch(inbox, out)
    assert r.exit_code == 1 and "internal error" not in r.output, r.output
    got, want = _unsent(out), _unsent(reference)
    assert got.keys() == want.keys()
    sequence = "acks/.edi-pipeline-control-number"  # past the block the failed run reserved, unused
    assert _outputs(out)[sequence] == b"%d\n" % (2 * int(_outputs(reference)[sequence]))
    for k in want:
        assert got[k] == want[k], k
    # (the sets' sent_order is the file's first ack number, which the rerun takes later too)
    assert _rows(out / "edi_pipeline.db", out, ("sent_order",)) == \
        _rows(reference / "edi_pipeline.db", reference, ("sent_order",))


def test_a_worker_killed_in_a_files_store_transaction_ends_the_run_and_the_rerun_finishes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    monkeypatch.setattr(batch, "_job", _killing_job)
    _interrupted_then_rerun(tmp_path, monkeypatch, _generated(tmp_path), "gen.837")


def test_a_worker_killed_walking_a_split_files_set_ends_the_run_and_the_rerun_finishes_it(tmp_path, monkeypatch):
    """The parent scrubbing a split file waits on a walk its worker died making: it rolls its transaction
    back and says so."""
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    monkeypatch.setattr(split, "walk_set", _killing_walk)
    monkeypatch.setattr(split.Walkers, "take", lambda *a: False)  # every walk waited for, none made here
    handed = []
    real = split.hand_out
    monkeypatch.setattr(split, "hand_out", lambda pool, args: handed.append(args[3].control_number) or real(pool, args))
    inbox = _generated(tmp_path)
    sets = [m.decode() for m in re.findall(rb"ST\*837\*(\d+)", (inbox / "gen.837").read_bytes())]
    _interrupted_then_rerun(tmp_path, monkeypatch, inbox, sets[2])
    assert handed[:len(sets)] == sets and sets[2] in handed[len(sets):]  # split in the reference run and the killed
