"""Issue 12, the batch's files and paths: names from input never become paths, the inbox holds regular
files only, no single file stops a batch, no temp file outlives a killed run, quarantine moves (and
--retry puts back), and each run keeps its own reconciliation report."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

import edi_pipeline.runners.batch as batch_module
import edi_pipeline.core.files as writer
from edi_pipeline.core.files import PARTIAL_SUFFIXES
from edi_pipeline.runners.batch import SUBDIRS, scan_file
from edi_pipeline.cli.commands import cli
from edi_pipeline.core.errors import WriteError
from edi_pipeline.core.paths import NAME_LIMIT, output_path, safe_name, safe_part

# What a hostile sender may put where the batch takes a file name from (no * or ~: they are delimiters).
HOSTILE = ["/../../../x", "../../../y", "/tmp/absolute", "a\0b", "Z" * 300, "ünïcødé€", "..", ".hidden", "a/b/c",
           " ", "\\..\\win"]
HOSTILE_NAMES = ["é-ünï.837", "a" * 240 + ".837", "a\nb.837", "-rf.837", "spaced name.837", "esc\x1b[31m.837",
                 "a.b.c.d", "..837"]


def run(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "internal error" not in r.output and "Traceback" not in r.output, r.output
    return r


def batch(inbox, out, *extra):
    return run("batch", inbox, "--out", out, "--quiet", "--settle", "0", *extra)


def with_envelope(text: str, isa13: str | None = None, gs06: str | None = None, st02: str | None = None) -> str:
    """`text` (one ISA, GS and ST, as pair-plb.837) with these control numbers, trailers matching."""
    segs = text.split("~")
    for i, seg in enumerate(segs):
        e = seg.split("*")
        tag = e[0].strip()
        for tags, at, value in ((("ISA",), 13, isa13), (("IEA",), 2, isa13), (("GS",), 6, gs06), (("GE",), 2, gs06),
                                (("ST",), 2, st02), (("SE",), 2, st02)):
            if tag in tags and value is not None:
                e[at] = value
        segs[i] = "*".join(e)
    return "~".join(segs)


def hostile_files(folder: Path) -> list[Path]:
    """For every hostile value, an 837 carrying it as ISA13, as GS06 and as ST02, and a resend of the ISA13
    one (other bytes, same interchange: its TA1 025 is named by that ISA13); then files of hostile names."""
    folder.mkdir(parents=True)
    text = (FIXTURES / "pair-plb.837").read_text()
    made = []
    for k, value in enumerate(HOSTILE):
        for n, field in enumerate(("isa13", "gs06", "st02")):
            made.append(folder / f"{field}-{k}.837")
            fields = {"isa13": f"{800000 + 3 * k + n:09d}", field: value}  # each its own interchange
            made[-1].write_text(with_envelope(text, **fields), errors="surrogateescape")
        made.append(folder / f"isa13-{k}-resent.837")
        made[-1].write_text(with_envelope(text, isa13=value).replace("~", "~\n"), errors="surrogateescape")
    for k, name in enumerate(HOSTILE_NAMES):
        made.append(folder / name)
        # a date of its own, so its claims are no DUPLICATE-CLAIM of the files before it and go outbound
        own_date = text.replace("D8*20261005", f"D8*202610{10 + k:02d}")
        made[-1].write_text(with_envelope(own_date, isa13=f"{900000 + k:09d}"))
    return made


def written_outside(root: Path, allowed: list[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir() and not any(a in p.parents for a in allowed)]


def test_hostile_values_and_names_never_leave_the_out_folder(tmp_path):
    """ISA13, GS06, ST02 and the input's own name holding ../, absolute paths, NUL, 300 characters and
    unicode: every file batch writes is in OUT's own folders, no folder is made from them, the run
    completes and every file has its outcome."""
    work = tmp_path / "a" / "b" / "c"  # deep enough that ../../../ stays inside tmp_path
    inbox, out = work / "inbox", work / "out"
    files = hostile_files(inbox)
    r = batch(inbox, out, "--format", "json")
    assert r.exit_code in (0, 1)
    doc = json.loads(r.output)
    assert doc["files"] == len([f for f in files if not f.name.startswith(".")]) and not doc["failed"], r.output
    assert sum(f["status"] == "done" for f in doc["file_outcomes"]) > 2 * len(HOSTILE)
    assert written_outside(tmp_path, [out, inbox]) == []
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(SUBDIRS)
    assert not [p for sub in SUBDIRS for p in (out / sub).iterdir() if p.is_dir()]
    for p in (out / sub for sub in SUBDIRS):
        for f in p.iterdir():
            if not f.name.startswith(".edi-pipeline-control-number"):  # the ack sequence, not from input
                    assert f.name == safe_name(f.name, 200) and len(f.name.encode()) < 255 - 20, f.name
    long = next(f for f in doc["file_outcomes"] if f["name"].startswith("aaaa"))
    assert long["status"] == "done" and len(long["output"]) <= NAME_LIMIT
    assert (out / "outbound" / long["output"]).exists()


ANY_CHAR = st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",))
NAMES = st.one_of(st.text(ANY_CHAR, min_size=1, max_size=60), st.text(st.sampled_from("aé-. \n"), min_size=200,
                                                                      max_size=250)) \
    .filter(lambda n: len(n.encode()) <= 250 and n not in (".", "..") and not n.lower().endswith(
        PARTIAL_SUFFIXES))


@settings(max_examples=15, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=3, unique=True))
def test_any_inbox_names_stay_in_out(tmp_path_factory, names):
    work = tmp_path_factory.mktemp("names")
    inbox, out = work / "inbox", work / "out"
    inbox.mkdir()
    text = (FIXTURES / "pair-plb.837").read_text()
    for k, name in enumerate(names):
        (inbox / name).write_text(with_envelope(text, isa13=f"{700000 + k:09d}") if k % 2 else "not one\n")
    r = batch(inbox, out, "--format", "json")
    doc = json.loads(r.output)
    assert r.exit_code in (0, 1) and doc["files"] == len([n for n in names if not n.startswith(".")]), r.output
    assert not doc.get("failed") and written_outside(work, [out, inbox]) == []
    assert not [p for sub in SUBDIRS for p in (out / sub).iterdir() if p.is_dir()]


def test_the_summary_escapes_what_a_terminal_would_act_on(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "esc\x1b]0;owned\x07.txt").write_text("not an interchange\n")
    r = batch(inbox, out)
    assert r.exit_code == 1 and "\x1b" not in r.output and "\x07" not in r.output, r.output
    assert "quarantined esc\\x1b]0;owned\\x07.txt:1: " in r.output, r.output


def test_hostile_values_and_names_never_leave_the_ack_dir(tmp_path):
    """The same files through validate --ack-dir: every 999 and TA1 lands in the ack folder."""
    work = tmp_path / "a" / "b" / "c"
    src, acks = work / "src", work / "acks"
    files = hostile_files(src)
    r = run("validate", *files, "--ack-dir", acks)
    assert r.exit_code in (0, 1)
    assert written_outside(tmp_path, [src, acks]) == []
    assert not [p for p in acks.iterdir() if p.is_dir()]
    # every file was answered: a 999, or a TA1 when its ISA13 is refused
    assert len(list(acks.glob("*.999"))) + len(list(acks.glob("*.ta1"))) >= len(files)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_any_value_becomes_one_plain_bounded_name(value):
    for made, limit in ((safe_name(value), NAME_LIMIT), (safe_part(value), 40)):
        assert len(made) <= limit and made == safe_name(made, limit)  # bounded, and stable when made again
        assert output_path(Path("/out"), made).parent == Path("/out")
    assert safe_name(value) == safe_name(value)  # the same value, the same name


def test_safe_names_are_unchanged_and_unsafe_ones_kept_apart(tmp_path):
    for plain in ("pair-plb.837", "000000001", "claims_2026-12.837"):
        assert safe_name(plain) == plain == safe_part(plain)
    assert safe_part("a/b") != safe_part("a_b") and safe_name("a b.837") != safe_name("a_b.837")
    assert safe_name("a b.837").endswith(".837") and safe_part("////")
    for bad in ("../x", "/abs", ".hidden", "a\0b", "x" * 201, ""):
        with pytest.raises(WriteError):
            output_path(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(WriteError):
        output_path(tmp_path, "link")  # never written through a link planted in an output folder


# --- 2. the inbox holds regular files only --------------------------------------------------------------

def test_links_fifos_devices_and_folders_in_the_inbox_are_never_opened(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    secret = tmp_path / "secret.837"
    secret.write_text("SECRET-VALUE not an interchange\n")
    (inbox / "shadow.837").symlink_to(secret)
    (inbox / "environ.837").symlink_to("/proc/self/environ")
    (inbox / "claims-link.837").symlink_to(FIXTURES / "pair-denials.837")
    (inbox / "dangling.837").symlink_to(tmp_path / "nowhere")
    os.mkfifo(inbox / "pipe.837")
    (inbox / "folder.837").mkdir()
    (inbox / "real.837").write_bytes((FIXTURES / "pair-plb.837").read_bytes())
    r = batch(inbox, out)
    assert r.exit_code == 0, r.output
    assert "1 done" in r.output and "6 ignored" in r.output
    for name, what in (("shadow.837", "a symbolic link"), ("environ.837", "a symbolic link"),
                       ("claims-link.837", "a symbolic link"), ("dangling.837", "a symbolic link"),
                       ("pipe.837", "a FIFO"), ("folder.837", "a folder")):
        assert r.output.count(f"  ignored {name}: {what}, not a regular file: never opened") == 1, r.output
        assert (inbox / name).is_symlink() or (inbox / name).exists()  # left where it was
    assert not list((out / "quarantine").iterdir()) and not (out / "outbound" / "claims-link.837").exists()
    for f in out.rglob("*"):
        if f.is_file() and f.suffix != ".db":
            assert b"SECRET-VALUE" not in f.read_bytes() and b"PATH=" not in f.read_bytes(), f
    # the batch's own reads never go through a link; a link named on the command line is the user's choice
    with pytest.raises(OSError):
        scan_file(inbox / "claims-link.837")
    assert run("validate", inbox / "claims-link.837").exit_code == 0


def test_a_link_put_in_a_files_place_after_the_listing_is_never_read_nor_moved(tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("SECRET-VALUE\n")
    (inbox / "swapped.837").symlink_to(secret)
    real = batch_module.inbox_files
    monkeypatch.setattr(batch_module, "inbox_files", lambda d: ([Path(d) / "swapped.837"], []) if
                        Path(d) == inbox else real(d))  # listed while it was a regular file
    r = batch(inbox, out)
    assert r.exit_code == 1 and "1 failed" in r.output, r.output
    assert (inbox / "swapped.837").is_symlink() and not list((out / "quarantine").iterdir())
    assert not [f for f in out.rglob("*") if f.is_file() and b"SECRET-VALUE" in f.read_bytes()]


# --- 3. no single file stops a batch ----------------------------------------------------------------

def test_a_name_too_long_for_the_outputs_does_not_stop_the_batch(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / ("a" * 235 + ".837")).write_bytes((FIXTURES / "pair-plb.837").read_bytes())
    (inbox / ("b" * 240 + ".txt")).write_text("not an interchange\n")
    (inbox / "zz.837").write_bytes((FIXTURES / "pair-denials.837").read_bytes())
    r = batch(inbox, out)
    assert r.exit_code == 1 and "2 done" in r.output and "1 quarantined" in r.output, r.output
    assert (out / "outbound" / "zz.837").exists()
    assert [p for p in (out / "outbound").iterdir() if p.name.startswith("aaaa")]
    assert len(list((out / "quarantine").glob("bbbb*"))) == 2  # the file and why


def failing_writes(monkeypatch, folder: str, prefix: str, code: int):
    """The atomic writer raising OSError(`code`) for targets in OUT/`folder` whose name starts with `prefix`."""
    real = writer._replace_atomically

    def replace_atomically(target, *a, **k):
        if target.parent.name == folder and target.name.startswith(prefix):
            raise OSError(code, os.strerror(code))
        return real(target, *a, **k)

    monkeypatch.setattr(writer, "_replace_atomically", replace_atomically)


def test_a_disk_full_write_quarantines_that_file_and_the_run_goes_on(tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for n in ("pair-plb.837", "pair-denials.837"):
        (inbox / n).write_bytes((FIXTURES / n).read_bytes())
    failing_writes(monkeypatch, "outbound", "pair-plb.837", errno.ENOSPC)
    r = batch(inbox, out, "--format", "json")
    doc = json.loads(r.output)
    outcomes = {f["name"]: f for f in doc["file_outcomes"]}
    assert r.exit_code == 1 and outcomes["pair-denials.837"]["status"] == "done"
    assert outcomes["pair-plb.837"]["status"] == "quarantined"
    assert (out / "quarantine" / "pair-plb.837").exists() and not (inbox / "pair-plb.837").exists()
    assert (out / "quarantine" / "pair-plb.837.error.txt").read_text() == \
        "pair-plb.837: a read or write failed: No space left on device\n"


def test_a_file_that_cannot_be_quarantined_fails_stays_and_is_taken_next_run(tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("not an interchange\n")
    (inbox / "pair-plb.837").write_bytes((FIXTURES / "pair-plb.837").read_bytes())
    failing_writes(monkeypatch, "quarantine", "notes.txt", errno.EACCES)
    r = batch(inbox, out)
    assert r.exit_code == 1 and "1 done" in r.output and "1 failed" in r.output, r.output
    assert "  failed notes.txt:1: " in r.output and "could not quarantine it" in r.output
    assert (inbox / "notes.txt").exists() and not list((out / "quarantine").iterdir())
    monkeypatch.undo()
    r = batch(inbox, out)  # not recorded as done: the next run takes it again
    assert r.exit_code == 1 and "1 quarantined" in r.output and "1 already done" in r.output, r.output
    assert (out / "quarantine" / "notes.txt").exists() and not (inbox / "notes.txt").exists()


# --- 4. no temp file outlives a killed run ----------------------------------------------------------

KILLED_MID_WRITE = """
import os, signal, sys
import edi_pipeline.runners.batch as batch_module
import edi_pipeline.core.files as writer
from edi_pipeline.core.files import PARTIAL_SUFFIXES
real = os.replace
def replace(src, dst, *a, **k):
    if os.path.basename(os.path.dirname(dst)) == "outbound" and os.path.basename(dst) == sys.argv[3]:
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 with the file written, before it is renamed
    return real(src, dst, *a, **k)
writer.os.replace = replace
from edi_pipeline.cli.commands import cli
cli(["batch", sys.argv[1], "--out", sys.argv[2], "--quiet", "--settle", "0"])
"""


def test_killed_mid_write_then_rerun_leaves_no_temp_file(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for n in ("pair-plb.837", "pair-denials.837"):
        (inbox / n).write_bytes((FIXTURES / n).read_bytes())
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, inbox, out, "pair-plb.837"], cwd=ROOT,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert list(out.rglob(".pair-plb.837.*.tmp"))  # it really died mid-write (in its staging folder)
    young = out / "reports" / ".other.837.json.abcd1234.tmp"  # changed after the run started: not its to remove
    young.write_text("")
    os.utime(young, (2 ** 33, 2 ** 33))
    kept = out / "reports" / ".notes.tmp"  # not the writer's naming
    kept.write_text("")
    r = batch(inbox, out)
    assert r.exit_code in (0, 1), r.output
    assert sorted(p.name for p in out.rglob(".*.tmp")) == [kept.name, young.name]
    assert (out / "outbound" / "pair-plb.837").exists()


# --- 5. quarantine moves; --retry puts back ---------------------------------------------------------

def test_quarantine_moves_the_file_and_retry_puts_it_back(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("not an interchange\n")
    (inbox / "other.txt").write_text("not one either\n")
    (inbox / "pair-plb.837").write_bytes((FIXTURES / "pair-plb.837").read_bytes())
    assert batch(inbox, out).exit_code == 1
    assert sorted(p.name for p in inbox.iterdir()) == ["pair-plb.837"]
    q = out / "quarantine" / "notes.txt"
    assert q.read_text() == "not an interchange\n" and stat.S_IMODE(q.stat().st_mode) == 0o600

    r = batch(inbox, out, "--retry", "notes.txt")
    assert r.exit_code == 0 and "notes.txt: back in " in r.output, r.output
    assert (inbox / "notes.txt").exists() and not q.exists() and not (out / "quarantine" / "notes.txt.error.txt").exists()
    r = batch(inbox, out)  # taken again, not skipped as done
    assert r.exit_code == 1 and "1 quarantined" in r.output and "1 already done" in r.output, r.output

    for bad in ("../inbox/pair-plb.837", "missing.txt", "notes.txt.error.txt"):
        r = batch(inbox, out, "--retry", bad)
        assert r.exit_code == 1 and "Error: " in r.output, r.output
    assert batch(inbox, out, "--retry", "x", "--retry-all").exit_code == 2

    r = batch(inbox, out, "--retry-all")
    assert r.exit_code == 0 and "notes.txt: back" in r.output and "other.txt: back" in r.output, r.output
    assert not list((out / "quarantine").iterdir())
    r = batch(inbox, out)
    assert r.exit_code == 1 and "2 quarantined" in r.output, r.output
    (inbox / "notes.txt").write_text("a new file of that name\n")  # the quarantined one stays where it is
    r = batch(inbox, out, "--retry", "notes.txt")
    assert r.exit_code == 1 and "already holds" in r.output, r.output


def test_a_read_only_inbox_keeps_its_file_and_quarantine_gets_a_private_copy(tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("not an interchange\n")

    real_unlink = os.unlink

    def refused(path, *a, **k):  # as a read-only inbox (root ignores modes)
        if Path(path).parent == inbox:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(batch_module.os, "unlink", refused)
    r = batch(inbox, out)
    monkeypatch.undo()
    assert r.exit_code == 1 and "1 quarantined" in r.output and "copied: the inbox does not let" in r.output, r.output
    q = out / "quarantine" / "notes.txt"
    assert q.read_text() == "not an interchange\n" and stat.S_IMODE(q.stat().st_mode) == 0o600
    assert (inbox / "notes.txt").exists()
    r = batch(inbox, out)  # recorded: not quarantined again every run
    assert r.exit_code == 0 and "1 already done" in r.output, r.output


def test_quarantine_never_replaces_an_earlier_quarantined_file(tmp_path):
    """A store that no longer knows the first file (another --db): its quarantined file is kept anyway."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "notes.txt").write_text("first\n")
    assert batch(inbox, out, "--db", tmp_path / "one.db").exit_code == 1
    (inbox / "notes.txt").write_text("second\n")
    r = batch(inbox, out, "--db", tmp_path / "two.db")
    assert r.exit_code == 1 and "1 quarantined" in r.output, r.output
    texts = sorted(p.read_text() for p in (out / "quarantine").iterdir() if not p.name.endswith(".error.txt"))
    assert texts == ["first\n", "second\n"] and len(list((out / "quarantine").glob("*.error.txt"))) == 2


# --- 6. a reconciliation report per run -------------------------------------------------------------

def test_each_run_keeps_its_reconciliation_report(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for n in ("pair-plb.837", "pair-plb.835"):
        (inbox / n).write_bytes((FIXTURES / n).read_bytes())
    assert batch(inbox, out).exit_code == 0
    reports = out / "reports"
    first = sorted(reports.glob("reconciliation-2*.csv"))
    assert len(first) == 1
    for n in ("pair-denials.837", "pair-denials.835"):
        (inbox / n).write_bytes((FIXTURES / n).read_bytes())
    r = batch(inbox, out)
    runs = sorted(reports.glob("reconciliation-2*.csv"))
    assert len(runs) == 2 and runs[0] == first[0] and f"reports/{runs[1].name}" in r.output, r.output
    assert runs[0].read_text() != runs[1].read_text()  # the first run's report is kept as it was
    assert (reports / "reconciliation-latest.csv").read_text() == runs[1].read_text()
    assert stat.S_IMODE((reports / "reconciliation-latest.csv").stat().st_mode) == 0o600
    assert not (reports / "reconciliation.csv").exists()
