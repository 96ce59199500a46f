"""Analysts' formats: convert --to ndjson --numbers, and export --to parquet (totals equal reconcile's)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _ndjson(path: Path, *flags: str) -> list[dict]:
    r = run("convert", path, "--to", "ndjson", *flags)
    assert r.exit_code == 0, r.output
    return [json.loads(x, parse_float=Decimal) for x in r.stdout.splitlines()]


def test_numbers_writes_money_as_json_numbers_of_the_same_exact_text(tmp_path):
    strings = _ndjson(FIXTURES / "pair-denials.835")
    numbers = _ndjson(FIXTURES / "pair-denials.835", "--numbers")
    payments = [(s, n) for s, n in zip(strings, numbers) if s["type"] == "835_claim_payment"]
    assert payments and len(strings) == len(numbers)
    for s, n in payments:
        assert isinstance(s["paid"], str)
        assert not isinstance(n["paid"], str) and Decimal(s["paid"]) == Decimal(str(n["paid"]))
        for ls, ln in zip(s["lines"], n["lines"]):
            assert Decimal(ls["charge"]) == Decimal(str(ln["charge"]))
    # exact text: 12.50 stays 12.50 (a float would write 12.5)
    raw = run("convert", FIXTURES / "pair-denials.835", "--to", "ndjson", "--numbers").stdout
    first = next(p for p, _ in payments)
    assert f'"charge":{first["charge"]},' in raw


def test_numbers_sum_in_duckdb_without_a_cast(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb not installed (pip install duckdb)")
    out = tmp_path / "remit.ndjson"
    assert run("convert", FIXTURES / "pair-denials.835", "--to", "ndjson", "--numbers", "-o", out).exit_code == 0
    expected = sum(Decimal(p["paid"]) for p in _ndjson(FIXTURES / "pair-denials.835")
                   if p["type"] == "835_claim_payment")
    total = duckdb.connect().execute(f"select sum(paid) from read_json_auto('{out}') "
                                     "where type = '835_claim_payment'").fetchone()[0]
    assert Decimal(str(round(total, 2))) == expected  # duckdb reads JSON numbers as doubles


def test_numbers_is_for_ndjson_only():
    r = run("convert", FIXTURES / "pair-denials.835", "--to", "csv", "--numbers")
    assert r.exit_code == 2 and "--to ndjson only" in r.output


@pytest.fixture
def store_db(tmp_path):
    path = tmp_path / "store.db"
    files = [FIXTURES / n for n in ("pair-denials.837", "pair-denials.835", "pair-reversal.837", "pair-reversal.835",
                                    "pair-corrections.837", "pair-corrections.835")]
    r = run("ingest", *files, "--db", path)
    assert r.exit_code == 0, r.output
    return path


def test_export_parquet_totals_equal_reconciles_in_duckdb(store_db, tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'edi-pipeline[spark]')")
    duckdb = pytest.importorskip("duckdb", reason="duckdb not installed (pip install duckdb)")
    out = tmp_path / "warehouse"
    r = run("export", "--to", "parquet", out, "--db", store_db, "--as-of", "2026-12-31")
    assert r.exit_code == 0, r.output
    recon = json.loads(run("reconcile", "--db", store_db, "--format", "json", "--as-of", "2026-12-31").stdout,
                       parse_float=Decimal)
    con = duckdb.connect()
    got = con.execute(f"select count(*), sum(billed), sum(paid), sum(patient_responsibility), sum(adjustments), "
                      f"count(*) filter (where status = 'denied') from '{out}/reconciliation.parquet'").fetchone()
    claims = recon["claims"]
    assert got == (len(claims), *(sum(Decimal(c[k] or 0) for c in claims)
                                  for k in ("billed", "paid", "patient_responsibility", "adjustments")),
                   sum(c["status"] == "denied" for c in claims))
    # the store's own tables, typed: paid money sums to the active and reversed payments together
    types = dict(con.execute(f"select column_name, column_type from (describe select * from "
                             f"'{out}/payments.parquet')").fetchall())
    assert types["paid"] == "DECIMAL(12,2)" and types["payment_date"] == "DATE" and "paid_cents" not in types
    strings = [json.loads(x, parse_float=Decimal) for f in ("pair-denials.835", "pair-reversal.835",
                                                            "pair-corrections.835")
               for x in run("convert", FIXTURES / f, "--to", "ndjson").stdout.splitlines()]
    paid = sum(Decimal(p["paid"]) for p in strings if p["type"] == "835_claim_payment")
    assert con.execute(f"select sum(paid) from '{out}/payments.parquet'").fetchone()[0] == paid
    lines = con.execute(f"select count(*) from '{out}/lines.parquet'").fetchone()[0]
    assert lines == sum(len(json.loads(x)["lines"]) for f in ("pair-denials.837", "pair-reversal.837",
                                                              "pair-corrections.837")
                        for x in run("convert", FIXTURES / f, "--to", "ndjson").stdout.splitlines())
    assert {p.name for p in out.iterdir()} == {f"{t}.parquet" for t in
                                               ("claims", "lines", "payments", "service_payments", "adjustments",
                                                "findings", "lifecycle_events", "reconciliation")}
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())  # 0600: claims hold PHI-adjacent ids


def test_export_without_pyarrow_says_how_to_install_it(store_db, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    r = run("export", "--to", "parquet", tmp_path / "w", "--db", store_db)
    assert r.exit_code == 1 and "pip install 'edi-pipeline[spark]'" in r.output
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").iterdir())


def test_export_an_amount_too_large_for_decimal_12_2_is_one_error_and_no_file(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'edi-pipeline[spark]')")
    from edi_pipeline.store.store import Store

    db = tmp_path / "s.db"
    s = Store(db)
    with s.transaction():
        s.insert_rows("files", ("sha256", "name"), [("f" * 64, "x.837")])
        s.insert_rows("claims", ("id", "file_sha256", "patient_control_number", "total_charge_cents"),
                      [("c1", "f" * 64, "BIG01", 10 ** 13)])
    s.close()
    r = run("export", "--to", "parquet", tmp_path / "w", "--db", db)
    assert r.exit_code == 1 and "decimal(12,2)" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "w" / "claims.parquet").exists()
