"""ingest_file: counts, source positions, one transaction per file, duplicates, rejected files."""

from __future__ import annotations

from pathlib import Path

import pytest

from edi_pipeline.tx.document import iter_records
from edi_pipeline.core.errors import IssueList
from edi_pipeline.pipeline.ingest import DUPLICATE, INGESTED, REJECTED, ingest_file
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import from_cents

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


def counts(store: Store) -> dict[str, int]:
    return store.table_counts()


def parsed(path: Path):
    recs = list(iter_records(path, path.name, IssueList()))
    claims = [r for r in recs if isinstance(r, Claim)]
    pays = [r for r in recs if isinstance(r, ClaimPayment)]
    headers = [r for r in recs if isinstance(r, RemitHeader)]
    return claims, pays, headers




def test_ingest_837_and_835_row_counts_match_the_files(store):
    c837, c835 = FIXTURES / "pair-denials.837", FIXTURES / "pair-denials.835"
    claims, _, _ = parsed(c837)
    _, pays, headers = parsed(c835)
    r1 = ingest_file(c837, store)
    r2 = ingest_file(c835, store)
    assert (r1.status, r1.kind, r1.claims) == (INGESTED, "837P", len(claims))
    assert (r2.status, r2.kind, r2.payments, r2.remits) == (INGESTED, "835", len(pays), len(headers))
    n = counts(store)
    assert n["files"] == 2
    assert n["claims"] == len(claims)
    assert n["claim_lines"] == sum(len(c.lines) for c in claims)
    assert n["claim_payments"] == len(pays)
    assert n["service_payments"] == sum(len(p.lines) for p in pays)
    assert n["adjustments"] == sum(len(p.adjustments) + sum(len(s.adjustments) for s in p.lines) for p in pays)
    assert n["remits"] == len(headers)


def test_rows_keep_source_file_and_position(store):
    path = FIXTURES / "pair-reversal.835"
    ingest_file(path, store)
    lines = path.read_text().replace("~\n", "~").split("~")
    files = {r["sha256"]: r["name"] for r in store.db["files"].rows}
    for row in store.db["claim_payments"].rows:
        assert files[row["file_sha256"]] == path.name
        assert lines[row["segment_index"] - 1].startswith("CLP*" + row["patient_control_number"])
    for row in store.db["service_payments"].rows:
        assert lines[row["segment_index"] - 1].startswith("SVC*")


def test_plb_stored(store):
    path = FIXTURES / "pair-plb.835"
    _, _, headers = parsed(path)
    assert ingest_file(path, store).status == INGESTED
    rows = list(store.db["provider_adjustments"].rows)
    assert len(rows) == len(headers[0].provider_adjustments) > 0
    assert sum(from_cents(r["amount_cents"]) for r in rows) == sum(p.amount for p in headers[0].provider_adjustments)


def test_reingest_same_bytes_changes_nothing(store):
    path = FIXTURES / "pair-denials.835"
    assert ingest_file(path, store).status == INGESTED
    before = counts(store)
    again = ingest_file(path, store)
    assert again.status == DUPLICATE and "pair-denials.835" in again.reason
    assert counts(store) == before


def test_reingest_same_isa_control_changes_nothing(store, tmp_path):
    path = FIXTURES / "pair-denials.835"
    assert ingest_file(path, store).status == INGESTED
    before = counts(store)
    resent = tmp_path / "resent.835"
    resent.write_bytes(path.read_bytes() + b"\n")  # other bytes, same ISA06 + ISA13 + kind
    assert ingest_file(resent, store).status == DUPLICATE
    assert counts(store) == before


def test_an_interchange_resent_behind_a_new_one_is_not_counted_twice(store, tmp_path):
    """A file whose second interchange came in before: its payments would count twice, and its new
    interchange cannot go in without it. Nothing of it goes in; the error names the ISA's position."""
    first = FIXTURES / "pair-plb.835"
    assert ingest_file(first, store).status == INGESTED
    before = counts(store)
    combined = tmp_path / "combined.835"
    new = (FIXTURES / "pair-denials.835").read_bytes()
    combined.write_bytes(new + first.read_bytes())
    r = ingest_file(combined, store)
    assert r.status == REJECTED, r.reason
    isa_line = new.count(b"\n") + 1
    segments = new.count(b"~")
    assert r.reason.startswith(f"{combined}:{isa_line}: ISA#{segments + 1} ISA13 TA1-025 interchange 000001051 "
                               "from PAYERSYS01 came before, in pair-plb.835"), r.reason
    assert counts(store) == before


def test_a_file_of_interchanges_all_seen_before_is_a_duplicate(store, tmp_path):
    a, b = FIXTURES / "pair-plb.835", FIXTURES / "pair-denials.835"
    for path in (a, b):
        assert ingest_file(path, store).status == INGESTED
    before = counts(store)
    both = tmp_path / "both.835"
    both.write_bytes(b.read_bytes() + a.read_bytes())
    assert ingest_file(both, store).status == DUPLICATE
    assert counts(store) == before
    assert {(r["isa_control"], r["kind"]) for r in store.query("select * from interchanges")} == {
        ("000001051", "835"), ("000001047", "835")}


def test_same_control_number_other_kind_is_not_a_duplicate(store):
    assert ingest_file(FIXTURES / "pair-denials.835", store).status == INGESTED
    assert ingest_file(FIXTURES / "pair-denials.837", store).status == INGESTED


def test_crash_in_the_middle_of_an_835_leaves_store_unchanged(store, monkeypatch):
    assert ingest_file(FIXTURES / "pair-denials.837", store).status == INGESTED
    before = counts(store)
    real = Store.save_remits_bulk

    def half_then_fail(self, remits, sha):
        remits = list(remits)
        header, pays = remits[0]
        real(self, [(header, pays[: len(pays) // 2])], sha)
        # rows really were written (to the file's staging tables) before the crash
        assert self.db.execute("select count(*) from temp.stage_claim_payments").fetchone()[0] > 0
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "save_remits_bulk", half_then_fail)
    with pytest.raises(RuntimeError):
        ingest_file(FIXTURES / "pair-denials.835", store)
    assert counts(store) == before
    monkeypatch.undo()
    assert ingest_file(FIXTURES / "pair-denials.835", store).status == INGESTED  # not taken as a duplicate
    assert counts(store)["claim_payments"] > 0


def test_crash_in_the_middle_of_an_837_leaves_store_unchanged(store, monkeypatch):
    before = counts(store)
    real = Store.save_claims

    def some_then_fail(self, claims, sha, origin, profile_of=None):
        real(self, list(claims)[:3], sha, origin)
        raise RuntimeError("killed")

    monkeypatch.setattr(Store, "save_claims", some_then_fail)
    with pytest.raises(RuntimeError):
        ingest_file(FIXTURES / "pair-denials.837", store)
    assert counts(store) == before


@pytest.mark.parametrize("name", ["835-corrupt.835", "837p-invalid-truncated.837", "837p-invalid-se-count.837"])
def test_corrupt_file_is_rejected_and_store_untouched(store, name):
    assert ingest_file(FIXTURES / "pair-plb.835", store).status == INGESTED
    before = counts(store)
    r = ingest_file(FIXTURES / name, store)
    assert r.status == REJECTED and not r.ok
    assert r.issues.errors and r.reason
    assert counts(store) == before


def test_not_x12_is_rejected(store, tmp_path):
    bad = tmp_path / "notes.835"
    bad.write_text("hello, this is not an interchange\n")
    r = ingest_file(bad, store)
    assert r.status == REJECTED and "ISA" in r.reason
    assert counts(store)["files"] == 0


def test_missing_file_is_rejected(store, tmp_path):
    r = ingest_file(tmp_path / "nope.835", store)
    assert r.status == REJECTED and "cannot read" in r.reason


def test_unbalanced_835_ingested_with_findings(store):
    r = ingest_file(FIXTURES / "835-unbalanced.835", store)
    assert r.status == INGESTED
    codes = {f.code for f in r.findings}
    assert {"BAL-LINE", "BAL-CLAIM-PAYMENT", "BAL-PAYMENT"} <= codes
    stored = {row["rule"] for row in store.db["findings"].rows}
    assert {"BAL-LINE", "BAL-CLAIM-PAYMENT", "BAL-PAYMENT"} <= stored


def test_balanced_835_has_no_balancing_findings(store):
    r = ingest_file(FIXTURES / "pair-plb.835", store)
    assert not [f for f in r.findings if f.code.startswith("BAL-")]


def test_database_error_mid_file_rejects_it_and_rolls_back(store, monkeypatch):
    import sqlite3

    assert ingest_file(FIXTURES / "pair-plb.837", store).status == INGESTED
    before = counts(store)
    real = Store.save_findings

    def fail(self, findings, sha):
        real(self, findings, sha)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "save_findings", fail)
    r = ingest_file(FIXTURES / "pair-plb.835", store)
    assert r.status == REJECTED and "disk is full" in r.reason and r.payments == 0
    assert counts(store) == before


def test_corrections_pair_rows(store):
    """Two 837 batches in one file keep their order; CLM05-3/REF*F8 and SVC06 reach the store."""
    c837, c835 = FIXTURES / "pair-corrections.837", FIXTURES / "pair-corrections.835"
    claims, _, _ = parsed(c837)
    _, pays, headers = parsed(c835)
    r1, r2 = ingest_file(c837, store), ingest_file(c835, store)
    assert (r1.status, r1.claims) == (INGESTED, len(claims))
    assert (r2.status, r2.payments, r2.remits) == (INGESTED, len(pays), len(headers))
    assert not [f for f in r2.findings if f.code.startswith("BAL-")]  # balanced, reversals included
    n = counts(store)
    assert (n["claims"], n["claim_lines"]) == (len(claims), sum(len(c.lines) for c in claims))
    assert n["service_payments"] == sum(len(p.lines) for p in pays)
    rows = [(r[1], r[2], r[3]) for r in store.recon_claims()]  # ingest order
    assert rows == [(c.patient_control_number, c.frequency_code, c.payer_claim_control_number) for c in claims]
    corrected = {(pcn, freq, f8) for pcn, freq, f8 in rows if freq in ("7", "8")}
    icns = {p.payer_claim_control_number for p in pays if p.status_code == "1"}
    assert len(corrected) == 2 and {f8 for _, _, f8 in corrected} <= icns
    recoded = [ln for p in pays for ln in p.lines if ln.original_procedure]
    assert recoded
    stored = {(r["procedure"], r["original_procedure"], r["control_number"])
              for r in store.db["service_payments"].rows if r["original_procedure"]}
    assert stored == {(ln.procedure, ln.original_procedure, ln.control_number) for ln in recoded}
    assert all(proc != orig and ctrl is None for proc, orig, ctrl in stored)
    reversals = [p for p in pays if p.status_code == "22"]
    assert reversals and all(p.paid < 0 for p in reversals)


def test_a_current_store_is_used_without_importing_sqlite_utils(tmp_path):
    """sqlite-utils creates and migrates the schema; a store already current is read and written
    through sqlite3 alone (the import costs every store command ~40 ms)."""
    import subprocess
    import sys

    db = tmp_path / "s.db"
    Store(db).close()  # creates and migrates
    code = ("import sys; from edi_pipeline.store.store import Store; from edi_pipeline.pipeline.ingest import ingest_file; "
            "from edi_pipeline.analytics.reconcile import reconcile; "
            f"s = Store({str(db)!r}); r = ingest_file({str(FIXTURES / 'pair-denials.835')!r}, s); "
            "reconcile(s, lines=True); print(r.status, r.payments, 'sqlite_utils' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == INGESTED and int(out[1]) > 0
    assert out[2] == "False"
    assert Store(db).table_counts()["claim_payments"] == int(out[1])


def test_a_store_without_the_schema_is_migrated_once(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    sqlite3.connect(db).close()  # an empty SQLite file: no tables, no migrations table
    store = Store(db)
    assert {"claims", "claim_payments", "batch_files"} <= set(store.db.table_names())
    store.close()
    applied = sqlite3.connect(db).execute("select name from _sqlite_migrations").fetchall()
    Store(db).close()
    assert sqlite3.connect(db).execute("select name from _sqlite_migrations").fetchall() == applied == [
        ("m001_core",), ("m002_lookup_indexes",), ("m003_interchanges",), ("m004_batch_publish_and_claims",),
        ("m005_claim_events",), ("m006_outbound_sets",), ("m007_outbound_set_order",)]


def test_nested_store_transaction_rolls_back_only_its_own_writes(tmp_path):
    store = Store(tmp_path / "n.db")
    with store.transaction():
        store.add_file("a" * 64, "outer.835", "835", None, None, "test")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.add_file("b" * 64, "inner.835", "835", None, None, "test")
                raise RuntimeError
    assert [r["name"] for r in store.query("select name from files")] == ["outer.835"]
