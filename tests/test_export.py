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
