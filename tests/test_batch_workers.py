"""`batch --workers 2` gives what `--workers 1` gives: every output file and every store row, on a generated
multi-set 837P and its 835 (findings, held claims, a set its 999 rejects) and on the fixtures."""

import dataclasses
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT

import edi_pipeline.runners.batch as batch_module
from edi_pipeline.cli.commands import cli
from edi_pipeline.store.store import Store

# what differs between two runs by their time only: the envelope dates and times of the acknowledgments
# (ISA09-10, GS04-05, BHT04-05), the run's id in the reconciliation report's name, stamps in the store
_TIMES = re.compile(rb"^((?:ISA(?:\*[^*]*){8})|(?:GS(?:\*[^*]*){3})|(?:BHT(?:\*[^*]*){3}))\*[^*]*\*[^*~]*",
                    re.MULTILINE)
_RUN = re.compile(r"reconciliation-\d{8}T\d{6}\.\d+Z")
_STAMPS = ("_at", "run")


_NOT_OUTPUTS = (".edi-pipeline-batch.lock", ".edi-pipeline-control-number.lock", ".edi_pipeline.db", "edi_pipeline.db")


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file under OUT (the store and the locks aside, the control-number sequence kept), its run id
    and times masked, OUT itself named 'OUT'."""
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith(_NOT_OUTPUTS):
            text = _TIMES.sub(rb"\1*T*T", p.read_bytes().replace(str(out).encode(), b"OUT"))
            files[_RUN.sub("reconciliation-RUN", str(p.relative_to(out)))] = _RUN.sub(
                "reconciliation-RUN", text.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return files


def _rows(db: Path, out: Path, drop: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every table of the store, sorted, less its time stamps (and the columns `drop`); OUT named 'OUT'."""
    store = Store(str(db))
    try:
        tables = [r["name"] for r in store.query("select name from sqlite_master where type = 'table' "
                                                 "and name not like 'sqlite_%'")]
        return {t: sorted((tuple(str(v).replace(str(out), "OUT") for k, v in r.items()
                                 if not any(k.endswith(s) for s in _STAMPS) and k not in drop)
                        for r in store.query(f"select * from [{t}]")))
                for t in tables}
    finally:
        store.close()


def _run(inbox: Path, out: Path, workers: int) -> tuple[int, dict, dict]:
    """A batch of a copy of `inbox` (a run lets its quarantined files go) into `out`."""
    inbox = shutil.copytree(inbox, out.with_name(f"{out.name}-inbox"))
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0",
                                 "--workers", str(workers)])
    assert r.exit_code in (0, 1), r.output
    return r.exit_code, _outputs(out), _rows(out / "edi_pipeline.db", out)


def _generated(tmp_path: Path) -> Path:
    """A generated 837P of 8 sets in 2 interchanges (a third of its claims tripping rules, one set its 999
    rejects for a wrong SE01) and its 835."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import generate

    p837, p835, _ = generate.generate(400, 11, tmp_path / "gen", claims_per_st=50, interchanges=2, trip_rate=0.3)
    text = p837.read_bytes()
    se = [m for m in re.finditer(rb"SE\*(\d+)\*", text)]
    bad = se[len(se) // 2]
    text = text[:bad.start(1)] + str(int(bad.group(1)) + 1).encode() + text[bad.end(1):]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "gen.837").write_bytes(text)
    shutil.copyfile(p835, inbox / "gen.835")
    return inbox


def test_two_workers_give_every_output_and_row_of_one_on_a_generated_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = _generated(tmp_path)
    one = _run(inbox, tmp_path / "one", 1)
    two = _run(inbox, tmp_path / "two", 2)
    assert one[0] == 1  # claims held, a set rejected
    rows = one[2]
    assert rows["findings"] and rows["claims"] and rows["claim_payments"]
    assert any("reconciliation-RUN" in k for k in one[1]) and any(k.endswith(".999") for k in one[1])
    assert two[1].keys() == one[1].keys()
    for k in one[1]:
        assert two[1][k] == one[1][k], k
    assert two[2] == rows


@pytest.mark.parametrize("names", [["pair-denials.837", "pair-denials.835"],
                                   ["pair-plb.837", "pair-plb.835", "835-unbalanced.835"],
                                   ["pair-reversal.837", "pair-reversal.835", "payer-accepted.999"]])
def test_two_workers_give_every_output_and_row_of_one_on_the_fixtures(tmp_path, monkeypatch, names):
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in names:
        shutil.copyfile(FIXTURES / n, inbox / n)
    one = _run(inbox, tmp_path / "one", 1)
    two = _run(inbox, tmp_path / "two", 2)
    assert two[0] == one[0]
    assert two[1] == one[1]
    assert two[2] == one[2]


_DELAY = "EDI_TEST_DELAY"  # names of files whose job waits before it starts (in the worker)
_JOB = batch_module._job


def _delayed_job(args):
    """batch._job in a worker: the files named in $EDI_TEST_DELAY start 1.5 s late, so later ones finish first."""
    import os
    import time

    if Path(args[0]).name in os.environ.get(_DELAY, "").split(","):
        time.sleep(1.5)
    return _JOB(args)


def test_two_workers_give_one_workers_outputs_whichever_file_finishes_first(tmp_path, monkeypatch):
    """Regressions: with --workers 2,
    - a file kept for a later wave (it shares a patient with an earlier one) took its acks' control
      numbers after the files of the wave before, not in file order as --workers 1 numbers them;
    - the set "last sent" with a GS06/ST02, which a payer's 999 answers, was the one committed last;
    - two payer acknowledgments of one claim recorded its events in the order they finished, and a
      claim's state is its last event.
    Here the first files of each phase start late, so the later ones finish first."""
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clean = (FIXTURES / "837p-clean.837").read_text()
    shutil.copyfile(FIXTURES / "837p-clean.837", inbox / "a.837")
    (inbox / "b.837").write_text(clean.replace("*000001000*", "*000001777*", 1)
                                 .replace("IEA*1*000001000", "IEA*1*000001777"))  # a's patients, another ISA13
    shutil.copyfile(FIXTURES / "pair-plb.837", inbox / "c.837")  # GS06 101, ST02 0001 as a's and b's
    for name in ("payer-accepted.999", "payer-accepted.277", "payer-rejected.277"):
        shutil.copyfile(FIXTURES / name, inbox / name)
    one = _run(inbox, tmp_path / "one", 1)
    monkeypatch.setattr(batch_module, "_job", _delayed_job)
    monkeypatch.setenv(_DELAY, "a.837,payer-accepted.277")
    two = _run(inbox, tmp_path / "two", 2)
    assert one[2]["claim_events"] and one[2]["outbound_sets"]
    assert two[1].keys() == one[1].keys()
    for k in one[1]:
        assert two[1][k] == one[1][k], k
    assert two[2] == one[2]

    def states(out: Path) -> dict[str, str]:
        store = Store(str(out / "edi_pipeline.db"))
        try:
            return {pcn: ev.state for pcn, ev in store.latest_recorded_events().items()}
        finally:
            store.close()

    assert states(tmp_path / "two") == states(tmp_path / "one")
    assert states(tmp_path / "one")["CLEANMCR01"] == "rejected by payer"  # payer-rejected.277 comes last


def test_two_workers_give_every_output_and_row_of_one_on_all_the_fixtures(tmp_path, monkeypatch):
    """Every bundled fixture in one inbox: many files answered by 999s, TA1s and 277CAs, whose control
    numbers come from one sequence. Each file's are reserved in file order before any is processed, so
    the order in which workers finish changes no number (the cases above hold one 837P each)."""
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "README.md")
    for n in names:
        shutil.copyfile(FIXTURES / n, inbox / n)
    one = _run(inbox, tmp_path / "one", 1)
    two = _run(inbox, tmp_path / "two", 2)
    acks = [k for k in one[1] if k.startswith("acks/")]
    assert len(acks) > len(names) and any(k.endswith(".ta1") for k in acks)
    assert "acks/.edi-pipeline-control-number" in one[1] and "quarantine/835-corrupt.835" in one[1]
    assert two[0] == one[0]
    assert sorted(two[1]) == sorted(one[1])
    assert [k for k in one[1] if two[1][k] != one[1][k]] == []
    assert two[2] == one[2]


def test_remits_only_files_wait_for_the_claims_only_when_a_claim_corrects_another():
    """The run's phases: 837P files (and files it cannot read, which it quarantines) first; remits-only files
    beside them, after them in order (workers ingest them beside the 837P work), unless a claim of the run
    is a replacement or void (CORRECTED-NO-F8 asks the remits on file: an 835 taken beside it would answer
    by how the workers fall in time), then once those are done; payers' 999s and 277CAs, and files mixing
    them with remits, last."""
    from edi_pipeline.runners.batch import run_phases, screen_file

    kinds = {Path("a.835"): "835", Path("b.837"): "837P", Path("c.999"): "999", Path("d"): None,
             Path("e.x12"): "837P+835", Path("f.x12"): "835+999", Path("g.277"): "277CA"}
    assert run_phases(kinds) == [[Path("b.837"), Path("d"), Path("e.x12")], [Path("a.835")],
                                 [Path("c.999"), Path("f.x12"), Path("g.277")]]
    assert run_phases(kinds, remits_wait=False) == [[Path("b.837"), Path("d"), Path("e.x12"), Path("a.835")],
                                                    [Path("c.999"), Path("f.x12"), Path("g.277")]]
    corrects = {p.name for p in FIXTURES.glob("*.837") if (s := screen_file(p, members=True).scan) and s.corrects}
    assert {"pair-corrections.837", "837p-corrected-no-f8.837", "837p-duplicate-claim-replacement.837"} <= corrects
    assert "837p-clean.837" not in corrects and "pair-denials.837" not in corrects
    assert not screen_file(FIXTURES / "pair-corrections.837").scan.corrects  # not asked: one worker


def _resent(src: Path, target: Path, control: str) -> None:
    """`src` under a new ISA13 (and IEA02): the same claims, for the same subscribers, in another file."""
    text = src.read_bytes().decode("latin-1")
    sep = text[3]
    isa = text[:106].split(sep)
    old, isa[13] = isa[13], control
    text = sep.join(isa) + text[106:]
    target.write_bytes(text.replace(f"IEA{sep}1{sep}{old}", f"IEA{sep}1{sep}{control}").encode("latin-1"))


def test_two_workers_see_an_earlier_files_claims_of_the_same_subscriber_as_one_does(tmp_path, monkeypatch):
    """A file resending another's claims: with one worker DUPLICATE-CLAIM finds them in the store. Two
    workers took both files at once, so the second never saw the first's claims (no finding); the screen
    now keeps files sharing a subscriber in waves one after the other."""
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(FIXTURES / "837p-clean.837", inbox / "a.837")
    _resent(FIXTURES / "837p-clean.837", inbox / "b.837", "987654321")
    one = _run(inbox, tmp_path / "one", 1)
    two = _run(inbox, tmp_path / "two", 2)
    assert b"DUPLICATE-CLAIM" in one[1]["reports/b.837.json"]
    assert two[1] == one[1]
    assert two[2] == one[2]


def test_files_sharing_a_subscriber_go_in_later_waves_and_so_do_those_sharing_one_with_them(tmp_path):
    """split_wave: B shares a subscriber with A, C one with B only (had C gone beside A, B, later, would
    have seen C's claims, which one worker never shows it), D none."""
    from edi_pipeline.runners.batch import screen_file, split_wave

    names = {"a": "837p-clean.837", "b": "837p-clean.837", "c": "837p-em-same-day.837", "d": "837p-tpi-freq.837"}
    scans = {}
    for k, name in names.items():
        scans[Path(k)] = screen_file(FIXTURES / name, members=True).scan
    ids = {k: scans[Path(k)].members for k in names}
    assert ids["a"] and ids["a"] == ids["b"] and not ids["c"] & ids["a"]
    scans[Path("c")].members = ids["c"] | ids["b"]  # and a subscriber of B's
    scans[Path("b")].members = ids["b"] | {hash(b"SHARED-WITH-C")}
    scans[Path("c")].members |= {hash(b"SHARED-WITH-C")}
    assert not ids["d"] & (ids["a"] | ids["c"])
    order = [Path(k) for k in "abcd"]
    assert split_wave(order, scans) == ([Path("a"), Path("d")], [Path("b"), Path("c")])
    assert split_wave([Path("b"), Path("c")], scans) == ([Path("b")], [Path("c")])


def test_the_screen_finds_each_claims_patient_as_the_parser_reads_it():
    """FileScan.members: every claim's member_key (less its payer) the 837P parser reads is among the
    screen's keys, over the 837P fixtures; none asked, none kept; an 835's members are not kept."""
    from edi_pipeline.runners.batch import _member, screen_file
    from edi_pipeline.tx.document import iter_records
    from edi_pipeline.tx.model import Claim

    def raw(v) -> bytes:
        return (v or "").encode("utf-8", "surrogateescape")

    seen = 0
    for path in sorted(FIXTURES.glob("837p-*.837")):
        scan = screen_file(path, members=True).scan
        if scan is None:
            continue
        for c in iter_records(path):
            if isinstance(c, Claim):
                p = c.patient or c.subscriber
                birth = p.birth_date.strftime("%Y%m%d").encode() if p.birth_date else b""
                assert _member(raw(c.subscriber.member_id), raw(p.last_name), raw(p.first_name), birth) \
                    in scan.members, (path.name, c.patient_control_number)
                seen += 1
        assert screen_file(path).scan.members is None
    assert seen > 100
    assert screen_file(FIXTURES / "pair-plb.835", members=True).scan.members is None
    dependent = b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *260101*1200*^*00501*000000001*0*P*:~"
    scan = batch_scan(dependent + b"GS*HC*A*B*20260101*1200*1*X*005010X222A1~ST*837*0001*005010X222A1~"
                      b"NM1*IL*1*SUB*ONE****MI*M123~DMG*D8*19700101*F~NM1*QC*1*KID*TWO~DMG*D8*20100101*M~"
                      b"NM1*IL*1*NODOB*THREE****MI*M9~NM1*QC*1*BADDOB*FOUR~DMG*D8*20101399~")
    assert scan.members == {_member(b"M123", b"SUB", b"ONE", b"19700101"),
                            _member(b"m123 ", b"kid", b"two", b"20100101"),
                            _member(b"M9", b"NODOB", b"THREE", b""), _member(b"M9", b"BADDOB", b"FOUR", b"")}


def batch_scan(data: bytes):
    import io

    from edi_pipeline.runners.batch import _scan

    return _scan(io.BytesIO(data), "x.837", members=True)


def test_each_file_gets_a_disjoint_block_in_file_order_and_the_next_run_continues(tmp_path):
    from edi_pipeline.runners.batch import reserve_control_numbers

    out = tmp_path / "out"
    first = reserve_control_numbers(out, {Path("b.837"): 2, Path("a.835"): 0, Path("c.837"): 3})
    assert list(first) == [Path("b.837"), Path("a.835"), Path("c.837")]
    assert first == {Path("b.837"): [1, 2], Path("a.835"): [], Path("c.837"): [3, 4, 5]}
    assert reserve_control_numbers(out, {Path("d.837"): 1}) == {Path("d.837"): [6]}  # after the last reserved
    assert reserve_control_numbers(out, {Path("e.835"): 0}) == {Path("e.835"): []}
    assert (out / "acks" / ".edi-pipeline-control-number").read_text() == "6\n"  # nothing taken for none


def test_a_run_numbers_its_files_acks_in_file_order_whatever_finishes_first(tmp_path, monkeypatch):
    """The second file's acks come after every number the first could take, even when it finishes first;
    a number the first does not use is skipped (here: the TA1 its interchange might have needed)."""
    import edi_pipeline.runners.batch as batch

    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in ("pair-plb.837", "pair-denials.837"):
        shutil.copyfile(FIXTURES / n, inbox / n)
    real = batch.process_file
    order = []

    def backwards(path, *args):  # the later file is processed first, as a faster worker would
        order.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(batch, "process_file", backwards)
    monkeypatch.setattr(batch, "map", lambda f, jobs: map(f, reversed(list(jobs))), raising=False)
    _run(inbox, tmp_path / "out", 1)
    assert order == ["pair-plb.837", "pair-denials.837"]
    isa13 = {p.name: p.read_text().split("~")[0].split("*")[13]
             for p in (tmp_path / "out" / "acks").iterdir() if not p.name.startswith(".")}
    assert isa13 == {"pair-denials.837.101.999": "000000001", "pair-denials.837.000001046.277": "000000002",
                     "pair-plb.837.101.999": "000000003", "pair-plb.837.000001050.277": "000000004"}


def test_no_file_takes_more_control_numbers_than_its_reservation(tmp_path):
    """ack_numbers bounds what each file's acknowledgments take, over the fixtures and the corpus (one
    batch of all, each file named by its place so its acks are told apart): no file fails for want of
    numbers, and none is used twice. Without the corpus, the fixtures alone (then no file repeats an
    interchange)."""
    from conftest import corpus_files

    from edi_pipeline.runners.batch import ack_numbers, scan_file
    from edi_pipeline.core.errors import EdiError

    files = [p for p in FIXTURES.iterdir() if p.is_file() and p.name != "README.md"] + \
        [p for p in corpus_files() if p.suffix != ".md"]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    reserved = {}
    for k, p in enumerate(sorted(files)):
        name = f"{k:03d}-{p.name}"
        shutil.copyfile(p, inbox / name)
        try:
            reserved[f"{k:03d}-"] = ack_numbers(scan_file(inbox / name))
        except EdiError:  # no file of ours: quarantined without an acknowledgment
            reserved[f"{k:03d}-"] = 0
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0",
                                 "--format", "json"])
    assert r.exit_code in (0, 1), r.output
    acks = [p for p in (out / "acks").iterdir() if not p.name.startswith(".")]
    used = {tag: sum(a.name.startswith(tag) for a in acks) for tag in reserved}
    # a file repeating interchanges already processed gets a TA1 025 each instead (screen_repeats)
    repeats = {p.name[:4] for p in (out / "quarantine").glob("*.error.txt") if "already processed" in p.read_text()}
    assert all(used[t] for t in repeats) and (repeats or not corpus_files())  # (the corpus repeats some)
    assert {t: (used[t], n) for t, n in reserved.items() if used[t] > n and t not in repeats} == {}
    assert sum(used.values()) == len(acks) > len(files)
    controls = [a.read_text().split("~")[0].split("*")[13] for a in acks]
    assert len(set(controls)) == len(controls)  # never a number twice
    if corpus_files():
        print(f"{len(files)} files: {len(acks)} acknowledgments, {sum(reserved.values())} numbers reserved by "
              "ack_numbers")


def test_the_screen_counts_the_groups_the_reader_finds_in_each_interchange():
    """ack_numbers reserves a 999 per GS: the screen's count is the envelope reader's, interchange by
    interchange, over the fixtures and the corpus; a typical file reserves exactly what it takes."""
    from conftest import corpus_files

    from edi_pipeline.core.errors import EdiError
    from edi_pipeline.runners.batch import ack_numbers, scan_file
    from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment

    checked = 0
    for path in sorted(p for p in FIXTURES.iterdir() if p.is_file() and p.name != "README.md") + \
            [p for p in corpus_files() if p.suffix != ".md"]:
        try:
            scan = scan_file(path)
        except EdiError:
            continue
        groups: list[int] = []
        try:
            with EnvelopeReader(path, path.name) as env:
                for item in env:
                    if isinstance(item, EnvelopeSegment) and item.tag in ("ISA", "GS"):
                        if item.tag == "ISA":
                            groups.append(0)
                        elif groups:
                            groups[-1] += 1
        except EdiError:
            continue
        if len(groups) == len(scan.interchanges):  # (the reader stops at an ISA it cannot read)
            assert [m.groups for m in scan.interchanges] == groups, path.name
            checked += 1
    assert checked > 70
    assert ack_numbers(scan_file(FIXTURES / "pair-plb.837")) == 2  # its 999 and its 277CA
    assert ack_numbers(scan_file(FIXTURES / "837p-multi-interchange.837")) == 4
    assert ack_numbers(scan_file(FIXTURES / "pair-plb.835")) == 0


def test_the_screen_reads_patients_only_when_two_claim_files_could_share_one():
    """_screens(members=True): one 837P file (beside its remits) is kept apart from nothing, so only whether
    a claim of it corrects another is read (run_phases), as the full scan reads it on every fixture; with two,
    each one's scan is screen_file's with members."""
    from edi_pipeline.runners.batch import _screens, screen_file

    a, b, remits = FIXTURES / "pair-corrections.837", FIXTURES / "pair-denials.837", FIXTURES / "pair-denials.835"
    full = {p: screen_file(p, members=True).scan for p in (a, b, remits)}
    one = _screens([a, remits], members=True)
    assert one[a].scan.members is None and one[a].scan.corrects is True and full[a].members
    assert one[remits].scan == full[remits] and full[remits].members is None
    assert dataclasses.replace(one[a].scan, members=full[a].members) == full[a]
    two = _screens([a, b, remits], members=True)
    assert {p: s.scan for p, s in two.items()} == full
    for p in sorted(FIXTURES.glob("*.837")):
        alone, scan = _screens([p], members=True)[p], screen_file(p, members=True).scan
        assert (alone.scan.corrects, alone.scan.members) == (scan.corrects, None) if scan else alone.scan is None, p.name
