"""The batch reads an 837P once for validation and scrub (pipeline.one_pass), and gives the same outputs
and store rows as the two reads it falls back to."""

import builtins
import io
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, corpus_files

import edi_pipeline.pipeline.one_pass as one_pass
from edi_pipeline.cli.commands import cli
from edi_pipeline.store.store import Store

TABLES = ("files", "interchanges", "claims", "claim_lines", "findings", "auth_uses", "batch_files")
VOLATILE = ("_at", "run", "publish_to", "path", "name")  # times, the run, and where each run's folder is


def _batch(inbox: Path, out: Path) -> tuple[int, dict, dict]:
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0",
                                 "--db", str(out.parent / f"{out.name}.db")])
    files = {str(p.relative_to(out)): p.read_bytes().replace(str(out).encode(), b"OUT") for p in sorted(out.rglob("*"))
             if p.is_file() and p.parent.name in ("outbound", "rejects") or p.suffix == ".json"}
    acks = sorted(str(p.relative_to(out)) for p in (out / "acks").iterdir())
    files |= {p.name: [ln for ln in p.read_text().splitlines() if not ln.startswith(("ISA", "GS", "BHT"))]
              for p in sorted((out / "acks").glob("*.277"))}  # the 277CAs, less their times
    store = Store(str(out.parent / f"{out.name}.db"))
    try:
        rows = {t: sorted(tuple(v for k, v in r.items() if not any(x in k for x in VOLATILE))
                          for r in store.query(f"select * from {t}")) for t in TABLES}
    finally:
        store.close()
    return r.exit_code, {"files": files, "acks": acks}, rows


CASES = ["837p-clean.837", "837p-tpi-anesthesia.837", "837p-multi-interchange.837", "pair-denials.837",
         "837p-auth-required.837", "837p-duplicate-claim.837"]
# a set its 999 rejects (read once, withheld as read), a truncated set (the read falls back to two)
REJECTED = ["837p-invalid-se-count.837", "837p-total-mismatch.837", "837p-invalid-truncated.837"]


@pytest.mark.parametrize("name", CASES + REJECTED)
def test_one_read_gives_what_two_reads_give(tmp_path, monkeypatch, name):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / name, inbox / name)
    shutil.copytree(inbox, tmp_path / "inbox2")
    once = _batch(inbox, tmp_path / "one")
    monkeypatch.setattr(one_pass, "validate_and_scrub", lambda *a, **k: None)  # the two-read path
    twice = _batch(tmp_path / "inbox2", tmp_path / "two")
    assert twice[0] == once[0] and twice[1] == once[1]
    assert twice[2] == once[2]


def test_a_hold_after_its_number_was_answered_reads_again_for_the_277ca(tmp_path, monkeypatch):
    """A claim answered as accepted, then another of its patient control number held later in the file:
    write_277cas answers both with the hold, so the spooled 277CA gives way to a second read; the
    outputs are those of the two-read path."""
    clean = (FIXTURES / "837p-clean.837").read_text(encoding="utf-8").replace("CLEANMCR01", "TPIANES01")
    held = (FIXTURES / "837p-tpi-anesthesia.837").read_text(encoding="utf-8")
    for inbox in (tmp_path / "inbox", tmp_path / "inbox2"):
        inbox.mkdir()
        (inbox / "mixed.837").write_text(clean + held, encoding="utf-8", newline="")
    spools = []
    real = one_pass.validate_and_scrub
    monkeypatch.setattr(one_pass, "validate_and_scrub", lambda *a, **k: spools.append(r := real(*a, **k)) or r)
    once = _batch(tmp_path / "inbox", tmp_path / "one")
    assert spools[0] is not None and spools[0].claim_acks is None  # read once, but the 277CA read again
    monkeypatch.setattr(one_pass, "validate_and_scrub", lambda *a, **k: None)
    assert _batch(tmp_path / "inbox2", tmp_path / "two") == once
    assert any(k.endswith(".277") for k in once[1]["files"])


def _count_opens(monkeypatch, path: Path) -> list[str]:
    """Every open of `path` from here on (os.open, open, io.open: all the ways code reads a file)."""
    opens = []

    def counting(real):
        def opener(file, *a, **k):
            if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == str(path):
                opens.append(os.fspath(file))
            return real(file, *a, **k)
        return opener

    monkeypatch.setattr(os, "open", counting(os.open))
    monkeypatch.setattr(io, "open", counting(io.open))
    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    return opens


@pytest.mark.parametrize("fixture", ["837p-clean.837", "pair-denials.835", "payer-accepted.999"])
def test_batch_opens_a_clean_file_once(tmp_path, monkeypatch, fixture):
    """One read gives the digest, the screen and the processing (validate, scrub and 277CA for an 837P;
    ingest for an 835 or a payer's 999): the file is opened once, not four times."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name = "in" + Path(fixture).suffix
    shutil.copyfile(FIXTURES / fixture, inbox / name)
    opens = _count_opens(monkeypatch, inbox / name)
    code, _, rows = _batch(inbox, tmp_path / "out")
    monkeypatch.undo()
    assert code == 0 and rows["files"]
    assert opens == [str(inbox / name)]


def test_a_set_its_999_rejects_is_withheld_from_the_one_read(tmp_path, monkeypatch):
    """A file whose 999 rejects a set is still read once: the set is withheld as it is read."""
    name = next(n for n in REJECTED if _rejects_a_set(n))
    calls = []
    real = one_pass.validate_and_scrub
    monkeypatch.setattr(one_pass, "validate_and_scrub", lambda *a, **k: calls.append(r := real(*a, **k)) or r)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / name, inbox / name)
    _batch(inbox, tmp_path / "out")
    assert calls and calls[0] is not None and calls[0].validation.rejected_sets()


def _rejects_a_set(name: str) -> bool:
    from edi_pipeline.validate.validator import validate_file

    v = validate_file(FIXTURES / name)
    return bool(v.rejected_sets()) and not v.rejected_interchanges()


def _two_reads(path: Path, tmp: Path):
    from edi_pipeline.core.files import path_sha256
    from edi_pipeline.scrub.scrubber import scrub_file
    from edi_pipeline.validate.validator import validate_file

    v = validate_file(path, path.name)
    try:
        s = scrub_file(path, tmp / "o2", tmp / "r2", Store(":memory:"), sha256=path_sha256(path),
                       withheld=v.rejected_sets(), name=path.name)
    except Exception as exc:  # noqa: BLE001 - compared as its text
        return v, str(exc)
    return v, s


def test_corpus_one_read_agrees_with_two_reads(tmp_path):
    """Every corpus 837 read once validates and scrubs as validate_file and scrub_file do (or falls back)."""
    from edi_pipeline.core.files import path_sha256

    files = [p for p in corpus_files() if p.suffix.lower() in (".837", ".x12", ".edi", ".txt")]
    if not files:
        pytest.skip("corpus absent (set EDI_CORPUS)")
    stood = 0
    for path in files:
        one = one_pass.validate_and_scrub(path, path.name, tmp_path / "o1", tmp_path / "r1", Store(":memory:"),
                                          path_sha256(path))
        if one is None:
            continue
        stood += 1
        v, s = _two_reads(path, tmp_path)
        assert [i.to_dict() for i in one.validation.issues] == [i.to_dict() for i in v.issues], path.name
        assert [a.ack_text.split("~\n", 3)[3] for a in one.validation.acks] == \
            [a.ack_text.split("~\n", 3)[3] for a in v.acks], path.name  # after ISA, GS, ST (times)
        assert one.scrubbed.report() | {"output": None, "rejects": None} == s.report() | {"output": None,
                                                                                         "rejects": None}
        assert (tmp_path / "o1").read_bytes() == (tmp_path / "o2").read_bytes(), path.name
        assert (tmp_path / "r1").exists() == (tmp_path / "r2").exists(), path.name
        if (tmp_path / "r1").exists():
            assert (tmp_path / "r1").read_bytes() == (tmp_path / "r2").read_bytes(), path.name
            (tmp_path / "r1").unlink(), (tmp_path / "r2").unlink()
    assert stood


@pytest.mark.parametrize("fixture", ["837p-clean.837", "837p-multi-interchange.837", "pair-denials.835"])
def test_a_file_too_large_to_hold_is_streamed_with_the_same_results(tmp_path, monkeypatch, fixture):
    """Over IN_MEMORY a file is not held: the screen hashes it as it scans, processing streams it again
    (two opens), and the outputs and store rows are those of the held read."""
    import edi_pipeline.runners.batch as batch

    for inbox in (tmp_path / "inbox", tmp_path / "inbox2"):
        inbox.mkdir()
        shutil.copyfile(FIXTURES / fixture, inbox / fixture)
    held = _batch(tmp_path / "inbox", tmp_path / "one")
    monkeypatch.setattr(batch, "IN_MEMORY", 0)
    opens = _count_opens(monkeypatch, tmp_path / "inbox2" / fixture)
    streamed = _batch(tmp_path / "inbox2", tmp_path / "two")
    monkeypatch.undo()
    assert len(opens) == 2
    assert streamed == held


@pytest.mark.parametrize("text", [b"", b"not x12 at all\n" * 100_000, None])
def test_the_screen_digest_is_the_files_whether_held_or_streamed(tmp_path, monkeypatch, text):
    """The screen's sha256 covers every byte, also of a file its scan refuses part way (read to its end)."""
    import edi_pipeline.runners.batch as batch
    from edi_pipeline.core.files import path_sha256

    path = tmp_path / "f.x12"
    path.write_bytes(text if text is not None else (FIXTURES / "837p-multi-interchange.837").read_bytes() * 40)
    held = batch.screen_file(path)
    monkeypatch.setattr(batch, "SCAN_CHUNK", 4096)
    streamed = batch.screen_file(path, hold=False)
    assert streamed.data is None and held.data == path.read_bytes()
    assert held.sha == streamed.sha == path_sha256(path)
    assert (held.scan is None) == (streamed.scan is None) == (text is not None)
    assert held.error == streamed.error
    if held.scan:
        assert held.scan.kind == streamed.scan.kind
        assert [(m.line, m.control) for m in held.scan.interchanges] == \
            [(m.line, m.control) for m in streamed.scan.interchanges]
