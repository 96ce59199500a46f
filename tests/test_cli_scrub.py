"""The scrub, rules and auth commands: exit codes, files written, report shape, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli
from edi_pipeline.codes.tables import load_tables

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("EDI_PIPELINE_DB", str(tmp_path / "store.db"))
    return CliRunner()


def copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copy(FIXTURES / name, dest)
    return dest


def test_scrub_clean_exit_0_default_output(runner, tmp_path):
    src = copy(tmp_path, "837p-tpi-units.837")
    report = tmp_path / "r.json"
    res = runner.invoke(cli, ["scrub", str(src), "--report", str(report)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "837p-tpi-units.837.scrubbed.837"
    assert out.exists() and out.read_bytes() != src.read_bytes()
    assert not (tmp_path / "837p-tpi-units.837.rejects.837").exists()
    data = json.loads(report.read_text())
    f = data["findings"][0]
    assert set(f) == {"rule", "severity", "patient_control_number", "line", "procedure", "action", "message"}
    assert (f["rule"], f["action"], f["line"], f["procedure"]) == ("TPI-UNITS", "set_units", 1, "20552")
    s = data["summary"]
    assert (s["claims_in"], s["claims_out"], s["claims_held"]) == (1, 1, 0)
    assert s["by_rule"] == {"TPI-UNITS": 1} and s["by_action"] == {"set_units": 1}


def test_scrub_held_exit_1_writes_rejects(runner, tmp_path):
    src = copy(tmp_path, "837p-dx-pointer.837")
    out, rej = tmp_path / "o.837", tmp_path / "rej.837"
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(out), "--rejects", str(rej)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "CLM*" in rej.read_text() and "CLM*" not in out.read_text()


def test_scrub_text_format_goes_to_stderr(runner, tmp_path):
    src = copy(tmp_path, "837p-em-same-day.837")
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "o.837"), "--format", "text"])
    assert res.exit_code == 0
    assert "EM-SAME-DAY" in res.stderr and res.stdout == ""


def test_scrub_unreadable_input_one_line_error(runner, tmp_path):
    bad = tmp_path / "bad.837"
    bad.write_text("this is not x12\n")
    res = runner.invoke(cli, ["scrub", str(bad), "-o", str(tmp_path / "o.837")])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}:1:")


def test_scrub_truncated_input_error(runner, tmp_path):
    src = copy(tmp_path, "837p-invalid-truncated.837")
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "o.837")])
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: {src}:") and "Traceback" not in res.stderr
    assert not (tmp_path / "o.837").exists()


def test_scrub_refuses_to_overwrite_input(runner, tmp_path):
    src = copy(tmp_path, "837p-tpi-units.837")
    before = src.read_bytes()
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(src)])
    assert res.exit_code == 1 and "overwrite" in res.stderr
    assert src.read_bytes() == before


def test_scrub_payer_rules_override(runner, tmp_path):
    src = copy(tmp_path, "837p-guide-tpi-medicare.837")
    shipped = Path(__import__("edi_pipeline").__file__).parent / "codes" / "data" / "payer_profiles.toml"
    toml = tmp_path / "payers.toml"
    toml.write_text(shipped.read_text().replace("[payer_ids]", '[payer_ids]\n"MCRB1" = "commercial"'))
    r1, r2 = tmp_path / "r1.json", tmp_path / "r2.json"
    runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "a.837"), "--report", str(r1)])
    runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "b.837"), "--report", str(r2),
                        "--payer-rules", str(toml)])
    assert "GUIDE-TPI-MEDICARE" in json.loads(r1.read_text())["summary"]["by_rule"]
    assert "GUIDE-TPI-MEDICARE" not in json.loads(r2.read_text())["summary"]["by_rule"]


def test_scrub_db_option_and_auth_commands(runner, tmp_path):
    db = tmp_path / "other.db"
    csv = tmp_path / "auth.csv"
    csv.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                   "FM0000047,ACM01,ACMAUTH1,97813,4,2026-01-01,2026-12-31\n"
                   "FM0000048,SFWC1,WCAUTH9,20553,1,2026-01-01,2026-12-31\n")
    res = runner.invoke(cli, ["auth", "import", str(csv), "--db", str(db)])
    assert res.exit_code == 0, res.output
    src = copy(tmp_path, "837p-auth-required.837")
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "o.837"), "--db", str(db)])
    assert res.exit_code == 0, res.stderr
    assert "REF*G1*ACMAUTH1" in (tmp_path / "o.837").read_text()
    res = runner.invoke(cli, ["auth", "list", "--db", str(db)])
    assert res.exit_code == 0
    rows = [ln.split() for ln in res.stdout.splitlines()]
    assert rows[0][:2] == ["payer_id", "auth_number"]
    left = {r[1]: r[-3] for r in rows[1:]}
    assert left == {"ACMAUTH1": "3", "WCAUTH9": "0"}
    # the default store ($EDI_PIPELINE_DB) holds no authorization: the claims are held there
    res = runner.invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "p.837")])
    assert res.exit_code == 1


def test_auth_import_bad_csv(runner, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("member_id,payer_id\nX,Y\n")
    res = runner.invoke(cli, ["auth", "import", str(csv)])
    assert res.exit_code == 1 and res.stderr.startswith("Error: ") and "missing columns" in res.stderr


def test_rules_list_has_every_rule(runner):
    res = runner.invoke(cli, ["rules", "list"])
    assert res.exit_code == 0
    ids = [ln.split()[0] for ln in res.stdout.splitlines()]
    assert sorted(ids) == sorted(load_tables().rules)
    tpi = next(ln for ln in res.stdout.splitlines() if ln.startswith("TPI-FREQ "))
    assert tpi.split()[1:3] == ["medicare", "warning"]


def test_rules_explain(runner):
    res = runner.invoke(cli, ["rules", "explain", "ACU-INITIAL-UNITS"])
    assert res.exit_code == 0
    info = load_tables().rules["ACU-INITIAL-UNITS"]
    assert f"trigger:    {info.trigger}" in res.stdout
    assert "correction:" in res.stdout and "source:" in res.stdout


def test_rules_explain_unknown(runner):
    res = runner.invoke(cli, ["rules", "explain", "NO-SUCH-RULE"])
    assert res.exit_code == 1
    assert res.stderr.strip() == "Error: unknown rule id 'NO-SUCH-RULE'; see `edi-pipeline rules list`"


def test_scrub_refuses_input_it_cannot_write_back_whole(tmp_path):
    from click.testing import CliRunner

    from edi_pipeline.cli.commands import cli

    clean = (FIXTURES / "837p-clean.837").read_text()
    cases = {
        "no-iea.837": clean[: clean.index("IEA*")],
        "isa-only.837": clean.split("~\n")[0] + "~\n",
    }
    for name, text in cases.items():
        src = tmp_path / name
        src.write_text(text)
        out = tmp_path / f"{name}.out"
        r = CliRunner().invoke(cli, ["scrub", str(src), "-o", str(out), "--db", str(tmp_path / "s.db")])
        assert r.exit_code == 1, name
        assert r.stderr.startswith(f"Error: {src}:") and "nothing written" in r.stderr
        assert not out.exists()
