"""CLI: ingest, reconcile, denials and report - output, formats and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "store.db"
    r = run("ingest", FIXTURES / "pair-denials.837", FIXTURES / "pair-denials.835", "--db", path)
    assert r.exit_code == 0, r.output
    return path


def test_ingest_reports_counts_and_exit_0(tmp_path):
    r = run("ingest", FIXTURES / "pair-plb.837", FIXTURES / "pair-plb.835", "--db", tmp_path / "s.db")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].endswith("pair-plb.837: ingested 837P: 2 claims, 0 claim payments, 0 remits, 0 findings")
    assert lines[1].endswith("pair-plb.835: ingested 835: 0 claims, 2 claim payments, 1 remits, 0 findings")


def test_reingest_says_already_ingested_and_exit_0(db):
    r = run("ingest", FIXTURES / "pair-denials.835", "--db", db)
    assert r.exit_code == 0
    assert "pair-denials.835: already ingested" in r.output


def test_rejected_file_exit_1_and_others_still_loaded(tmp_path):
    path = tmp_path / "s.db"
    r = run("ingest", FIXTURES / "835-corrupt.835", FIXTURES / "pair-plb.835", "--db", path)
    assert r.exit_code == 1
    assert "835-corrupt.835: rejected:" in r.output
    assert "pair-plb.835: ingested 835" in r.output
    r = run("ingest", FIXTURES / "pair-plb.835", "--db", path, "--format", "json")
    assert r.exit_code == 0
    assert json.loads(r.output)[0]["status"] == "already ingested"


def test_ingest_json_lists_findings(tmp_path):
    r = run("ingest", FIXTURES / "835-unbalanced.835", "--db", tmp_path / "s.db", "--format", "json")
    assert r.exit_code == 0
    (res,) = json.loads(r.output)
    assert res["status"] == "ingested" and res["payments"] == 1
    assert {"BAL-LINE", "BAL-CLAIM-PAYMENT", "BAL-PAYMENT"} <= {f["code"] for f in res["findings"]}


def test_ingest_needs_a_file():
    assert run("ingest").exit_code == 2


def test_reconcile_table(db):
    r = run("reconcile", "--db", db, "--as-of", "2026-12-31")
    assert r.exit_code == 0
    out = r.output
    assert out.splitlines()[0].split() == ["patient_control_number", "payer", "service_date", "billed", "paid",
                                           "patient_responsibility", "adjustments", "status", "state",
                                           "days_outstanding"]
    assert "Remits matching no claim:" in out and "UNMATCHED01" in out
    aging = out.split("aged as of 2026-12-31:")[1]
    assert "61-90  1       250.00" in aging


def test_reconcile_csv_and_json(db):
    r = run("reconcile", "--db", db, "--format", "csv", "--as-of", "2026-12-31")
    assert r.exit_code == 0
    rows = {row["patient_control_number"]: row for row in csv.DictReader(io.StringIO(r.output))}
    assert rows["DPARTIAL01"]["paid"] == "149.00" and rows["DPARTIAL01"]["status"] == "paid"
    assert rows["NOREMIT01"]["status"] == "open"
    r = run("reconcile", "--db", db, "--format", "json", "--as-of", "2026-12-31")
    doc = json.loads(r.output)
    assert doc["as_of"] == "2026-12-31"
    assert doc["aging"]["61-90"]["patient_control_numbers"] == ["NOREMIT01"]
    claim = next(c for c in doc["claims"] if c["patient_control_number"] == "DBUNDLE01")
    assert [line["matched_by"] for line in claim["lines"]] == ["6R", "6R"]


def test_reconcile_bad_date_is_usage_error(db):
    r = run("reconcile", "--db", db, "--as-of", "31/12/2026")
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_denials_rows_csv(db):
    r = run("denials", "--db", db, "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert {"patient_control_number", "payer_claim_control_number", "procedure", "service_date", "group", "carc",
            "rarcs", "amount", "category", "action", "preventable_by"} <= set(rows[0])
    auth = next(row for row in rows if row["patient_control_number"] == "DAUTH01")
    assert (auth["carc"], auth["category"], auth["preventable_by"]) == ("197", "authorization", "AUTH-REQUIRED")


def test_denials_by_category_json(db):
    r = run("denials", "--db", db, "--by", "category", "--format", "json")
    assert r.exit_code == 0
    rows = json.loads(r.output)
    assert {"category", "count", "amount"} == set(rows[0])
    assert {r["category"]: r["count"] for r in rows}["coding/bundling"] == 2


def test_denials_by_payer_table(db):
    r = run("denials", "--db", db, "--by", "payer")
    assert r.exit_code == 0
    assert r.output.splitlines()[0].split() == ["payer", "count", "amount"]
    assert "ACME COMMERCIAL HEALTH" in r.output


def test_denials_with_user_carc_csv(db, tmp_path):
    f = tmp_path / "carc.csv"
    f.write_text("code,description,category\n197,Auth per user list,other\n")
    r = run("denials", "--db", db, "--carc-csv", f, "--format", "json")
    assert r.exit_code == 0
    auth = next(d for d in json.loads(r.output) if d["patient_control_number"] == "DAUTH01")
    assert auth["category"] == "other"


def test_denials_bad_carc_csv_is_one_line_error(db, tmp_path):
    f = tmp_path / "carc.csv"
    f.write_text("code,description,category\n197,x,not-a-category\n")
    r = run("denials", "--db", db, "--carc-csv", f)
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and "Traceback" not in r.output


def test_denials_bad_by_is_usage_error(db):
    assert run("denials", "--db", db, "--by", "colour").exit_code == 2


def test_report_writes_html(db, tmp_path):
    out = tmp_path / "report.html"
    r = run("report", "--db", db, "-o", out, "--as-of", "2026-12-31")
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert page.count('<svg class="chart"') == 10 and "<script" not in page
    assert "denials" in r.output


def test_report_needs_output(db):
    assert run("report", "--db", db).exit_code == 2


def test_read_commands_refuse_a_store_that_does_not_exist(tmp_path):
    from click.testing import CliRunner

    from edi_pipeline.cli.commands import cli

    missing = tmp_path / "nope.db"
    for args in (["reconcile"], ["denials"], ["report", "-o", str(tmp_path / "r.html")]):
        r = CliRunner().invoke(cli, [*args, "--db", str(missing)])
        assert r.exit_code == 1 and "does not exist" in r.stderr
    assert not missing.exists()
