"""spark/rows.py and spark/member.py without Spark (needs only pyarrow): a fixture's claims, scrubbed member by
member with the in-memory history, give scrub_file's findings and its corrected claims, byte for byte."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install -e '.[spark]')")

from edi_pipeline.codes.tables import load_profiles, load_tables  # noqa: E402
from edi_pipeline.scrub.scrubber import scrub_file  # noqa: E402
from edi_pipeline.spark.member import SENT, MemberHistory, SentLine, scrub_member  # noqa: E402
from edi_pipeline.spark.rows import decimal_cell, file_rows  # noqa: E402
from edi_pipeline.store.store import Store  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edi"
TODAY = date(2026, 12, 1)


@pytest.mark.parametrize("name", ["837p-tpi-units.837", "837p-duplicate-claim.837", "837p-acu-ncd-visits.837",
                                  "837p-corrected-no-f8.837", "837p-crlf-bom.837", "837p-acu-addon-mue.837"])
def test_member_scrub_equals_scrub_file(name, tmp_path):
    path = FIXTURES / name
    rows = file_rows(path.read_bytes(), name, 0)
    assert not rows.rows["errors"]
    members = defaultdict(list)
    for r in rows.rows["scrub_input"]:
        members[r["member_hash"]].append(r)
    findings, outcomes = [], []
    for group in members.values():
        f, o = scrub_member(group, load_tables(), load_profiles(), TODAY)
        findings += f
        outcomes += o
    store = Store(tmp_path / "s.db")
    try:
        local = scrub_file(path, tmp_path / "out.837", tmp_path / "rej.837", store, today=TODAY)
    finally:
        store.close()
    key = ("rule", "severity", "patient_control_number", "line", "procedure", "action", "message")
    assert sorted(tuple(f[k] for k in key) for f in findings) == sorted(tuple(f.to_dict()[k] for k in key)
                                                                       for f in local.findings)
    out = (tmp_path / "out.837").read_bytes().decode("latin-1")
    sent = [o["x12"] for o in outcomes if o["status"] == SENT]
    assert len(sent) == local.claims_out and all(x in out for x in sent)


def test_member_history_answers_as_the_store():
    """Voids and the claims they cancel leave the history; dates are the line's, else the claim's."""
    d1, d2 = date(2026, 3, 1), date(2026, 3, 9)
    lines = [SentLine("a:1", "P1", "1", d1, "20552", Decimal(2), Decimal("100.00")),
             SentLine("a:2", "P2", "1", d2, "20552", None, Decimal("100.00")),
             SentLine("a:3", "P2", "8", d2, "20552", None, Decimal("100.00")),
             SentLine("a:4", "P3", "1", d2, "97810", None, Decimal("80.00"))]
    h = MemberHistory(lines)
    assert h.visit_dates("m", frozenset({"20552"}), d1, d2) == {d1, d2}
    assert h.procedure_units("m", "20552", d1, d1) == [(d1, "P1", Decimal(2))]
    assert [pcn for pcn, _ in h.sent_claims("m", {d2})] == ["P3"]  # P2 is voided
    assert h.store is h and not h.payer_claim_known("X")


def test_decimal_cell_fits_the_column_or_is_none():
    assert decimal_cell(Decimal("12.5")) == Decimal("12.50")
    assert decimal_cell(Decimal("1e12")) is None and decimal_cell(None) is None


def test_acknowledgments_are_rows_and_unreadable_files_an_error_row():
    """A 999's set responses and a 277CA's claim statuses are rows (kind "ack"); bytes that are no X12 are
    one errors row, never an exception."""
    rej = file_rows((FIXTURES / "payer-rejected.999").read_bytes(), "payer-rejected.999", 2)
    assert [(a["type"], a["control_number"], a["code"]) for a in rej.rows["acknowledgments"]] == \
        [("999_set_response", "0001", "A"), ("999_set_response", "0002", "R")]
    st = file_rows((FIXTURES / "payer-rejected.277").read_bytes(), "payer-rejected.277", 3).rows["acknowledgments"]
    assert {a["type"] for a in st} == {"277CA_claim_status"}
    assert [(a["patient_control_number"], a["code"], a["accepted"]) for a in st] == \
        [("CLEANMCR01", "A7", False), ("CLEANMCR02", "A7", False), ("CLEANMCR03", "A2", True), ("CLEANMCR04", "A2", True)]
    bad = file_rows(b"\x00\x01 not x12", "junk.bin", 4)
    assert [(e["file"], e["file_order"]) for e in bad.rows["errors"]] == [("junk.bin", 4)]
    assert bad.rows["files"][0]["error"] and not bad.rows["claims"]
    bad.batches()  # the rows fit their schemas


def test_spark_imports_no_private_name_of_another_package():
    """spark/ uses the scrubber's and reconcile's public entry points (scrub_transaction, invalid_claims,
    UNWRITABLE, find_root), never another package's underscore names, so their owners may change them."""
    import ast

    found = []
    for path in sorted((FIXTURES.parents[1] / "edi_pipeline" / "spark").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("edi_pipeline.spark"):
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("scrubber", "reconcile", "denials"):
                found.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not found
