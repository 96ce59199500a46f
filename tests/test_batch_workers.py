"""`batch --workers 2` gives what `--workers 1` gives: every output file and every store row, on a generated
multi-set 837P and its 835 (findings, held claims, a set its 999 rejects) and on the fixtures."""

import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT

from edi_pipeline.cli.commands import cli
from edi_pipeline.store.store import Store

# what differs between two runs by their time only: the envelope dates and times of the acknowledgments
# (ISA09-10, GS04-05, BHT04-05), the run's id in the reconciliation report's name, stamps in the store
_TIMES = re.compile(rb"^((?:ISA(?:\*[^*]*){8})|(?:GS(?:\*[^*]*){3})|(?:BHT(?:\*[^*]*){3}))\*[^*]*\*[^*~]*",
                    re.MULTILINE)
_RUN = re.compile(r"reconciliation-\d{8}T\d{6}\.\d+Z")
_STAMPS = ("_at", "run")


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file under OUT (the store aside), its run id and times masked, OUT itself named 'OUT'."""
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith((".", "edi_pipeline.db")):
            text = _TIMES.sub(rb"\1*T*T", p.read_bytes().replace(str(out).encode(), b"OUT"))
            files[_RUN.sub("reconciliation-RUN", str(p.relative_to(out)))] = _RUN.sub(
                "reconciliation-RUN", text.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return files


def _rows(db: Path, out: Path) -> dict[str, list[tuple]]:
    """Every table of the store, sorted, less its time stamps; OUT named 'OUT'."""
    store = Store(str(db))
    try:
        tables = [r["name"] for r in store.query("select name from sqlite_master where type = 'table' "
                                                 "and name not like 'sqlite_%'")]
        return {t: sorted((tuple(str(v).replace(str(out), "OUT") for k, v in r.items()
                                 if not any(k.endswith(s) for s in _STAMPS)) for r in store.query(f"select * from [{t}]")))
                for t in tables}
    finally:
        store.close()


def _run(inbox: Path, out: Path, workers: int) -> tuple[int, dict, dict]:
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


def test_remits_only_files_are_taken_beside_the_claims_and_acknowledgments_after():
    """The run's phases: 837P files (and files it cannot read, which it quarantines) first, remits-only
    files in the same phase after them (workers ingest them beside the 837P work), payers' 999s and
    277CAs, and files mixing them with remits, in a second phase once the claims' sets are sent."""
    from edi_pipeline.runners.batch import run_phases

    kinds = {Path("a.835"): "835", Path("b.837"): "837P", Path("c.999"): "999", Path("d"): None,
             Path("e.x12"): "837P+835", Path("f.x12"): "835+999", Path("g.277"): "277CA"}
    assert run_phases(kinds) == [[Path("b.837"), Path("d"), Path("e.x12"), Path("a.835")],
                                 [Path("c.999"), Path("f.x12"), Path("g.277")]]
