"""Issue 12, the batch's store and publication: resends whatever the ISA13 holds, commit before publish,
the store as the lock between batches, files still being uploaded, and exit codes."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from edi_pipeline.cli import cli
from edi_pipeline.store import Store


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
