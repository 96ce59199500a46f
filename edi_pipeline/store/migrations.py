"""Schema of the embedded SQLite store, as ordered sqlite-utils migrations; a new store is made at once from
schema.sql, the statements those migrations leave in sqlite_master (without importing sqlite-utils)."""

from __future__ import annotations

import datetime
import functools
import sqlite3
import sys
from pathlib import Path

MIGRATION_SET = "edi_pipeline"
SCHEMA = Path(__file__).with_name("schema.sql")


@functools.cache
def import_sqlite_utils():
    """sqlite-utils, imported on first use: a store whose schema is current is read and written
    through its sqlite3 connection, and the import costs ~40 ms per command. sqlite-utils imports
    numpy and pandas when they are installed, only to map their scalar types; the store never
    passes those, and they would cost ~60 ms more, so they are hidden while it loads (later imports
    of them still work)."""
    hidden = [m for m in ("numpy", "pandas") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # makes `import m` raise ImportError
    try:
        import sqlite_utils
        import sqlite_utils.migrations
    finally:
        for m in hidden:
            del sys.modules[m]
    return sqlite_utils


def is_current(conn: sqlite3.Connection) -> bool:
    """Whether every migration is recorded as applied (a read of sqlite-utils' own table)."""
    try:
        done = {r[0] for r in conn.execute("select name from _sqlite_migrations where migration_set = ?",
                                           [MIGRATION_SET])}
    except sqlite3.OperationalError:  # no such table: a new store
        return False
    return all(step.__name__ in done for step in STEPS)


def apply(conn: sqlite3.Connection) -> None:
    """Bring the store on `conn` up to date: a new, empty one from schema.sql with every step recorded as
    applied, as the migrations would leave it; any other by applying its pending migrations."""
    if conn.execute("select count(*) from sqlite_master").fetchone()[0]:
        migrate(conn)
        return
    applied_at = str(datetime.datetime.now(datetime.timezone.utc))  # as sqlite-utils records it
    conn.executescript(f"BEGIN;\n{SCHEMA.read_text(encoding='utf-8')}")
    try:
        conn.executemany("insert into _sqlite_migrations (migration_set, name, applied_at) values (?, ?, ?)",
                         [(MIGRATION_SET, step.__name__, applied_at) for step in STEPS])
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the pending migrations themselves (through sqlite-utils)."""
    sqlite_utils = import_sqlite_utils()
    migrations = sqlite_utils.migrations.Migrations(MIGRATION_SET)
    for step in STEPS:
        migrations()(step)
    migrations.apply(sqlite_utils.Database(conn, execute_plugins=False))


def schema_sql(conn: sqlite3.Connection) -> str:
    """The statements that make the schema of the store on `conn`, in order: what schema.sql holds for a store
    the migrations made (scripts/update_schema.py writes it)."""
    return "".join(f"{sql};\n" for (sql,) in conn.execute(
        "select sql from sqlite_master where sql is not null order by rowid"))


def m001_core(db) -> None:
    db["files"].create({
        "sha256": str, "name": str, "kind": str, "isa_sender": str, "isa_control": str,
        "origin": str, "ingested_at": str, "claims": int, "payments": int,
    }, pk="sha256")
    db["files"].create_index(["isa_sender", "isa_control", "kind"])
    db["claims"].create({
        "id": str, "file_sha256": str, "patient_control_number": str, "member_hash": str,
        "payer_id": str, "payer_name": str, "claim_filing_indicator": str, "profile": str,
        "frequency_code": str, "payer_claim_control_number": str, "total_charge_cents": int,
        "service_date": str, "billing_npi": str, "rendering_npi": str, "origin": str,
        "submitted_at": str, "segment_index": int, "line": int,
    }, pk="id", foreign_keys=[("file_sha256", "files", "sha256")])
    db["claims"].create_index(["patient_control_number"])
    db["claims"].create_index(["member_hash"])
    db["claim_lines"].create({
        "id": str, "claim_id": str, "line_number": int, "procedure": str, "modifiers": str,
        "charge_cents": int, "units": str, "service_date": str, "control_number": str,
        "dx_pointers": str, "segment_index": int, "line": int,
    }, pk="id", foreign_keys=[("claim_id", "claims", "id")])
    db["claim_lines"].create_index(["claim_id"])
    db["claim_lines"].create_index(["control_number"])
    db["remits"].create({
        "id": str, "file_sha256": str, "payer_id": str, "payer_name": str, "payee_npi": str,
        "trace_number": str, "payment_date": str, "payment_cents": int, "payment_method": str,
        "credit_debit": str, "segment_index": int, "line": int,
    }, pk="id", foreign_keys=[("file_sha256", "files", "sha256")])
    db["claim_payments"].create({
        "id": str, "remit_id": str, "file_sha256": str, "patient_control_number": str, "status_code": str,
        "charge_cents": int, "paid_cents": int, "patient_responsibility_cents": int,
        "claim_filing_indicator": str, "payer_claim_control_number": str, "frequency_code": str,
        "service_date": str, "remarks": str, "seq": int, "segment_index": int, "line": int,
    }, pk="id", foreign_keys=[("remit_id", "remits", "id")])
    db["claim_payments"].create_index(["patient_control_number"])
    db["service_payments"].create({
        "id": str, "claim_payment_id": str, "seq": int, "procedure": str, "modifiers": str,
        "original_procedure": str, "charge_cents": int, "paid_cents": int, "allowed_cents": int,
        "units": str, "service_date": str, "control_number": str, "remarks": str,
        "segment_index": int, "line": int,
    }, pk="id", foreign_keys=[("claim_payment_id", "claim_payments", "id")])
    db["service_payments"].create_index(["claim_payment_id"])
    db["adjustments"].create({
        "id": str, "claim_payment_id": str, "service_payment_id": str, "group_code": str,
        "reason": str, "amount_cents": int, "quantity": str,
    }, pk="id")
    db["adjustments"].create_index(["claim_payment_id"])
    db["provider_adjustments"].create({
        "id": str, "remit_id": str, "provider_id": str, "fiscal_period_end": str, "reason": str,
        "reference": str, "amount_cents": int,
    }, pk="id", foreign_keys=[("remit_id", "remits", "id")])
    db["authorizations"].create({
        "id": str, "member_id": str, "payer_id": str, "auth_number": str, "codes": str,
        "units": int, "start_date": str, "end_date": str, "loaded_at": str,
    }, pk="id")
    db["authorizations"].create_index(["member_id", "payer_id"])
    db["auth_uses"].create({
        "id": str, "auth_id": str, "patient_control_number": str, "procedure": str,
        "line_number": int, "units": int, "used_at": str,
    }, pk="id", foreign_keys=[("auth_id", "authorizations", "id")])
    db["findings"].create({
        "id": str, "file_sha256": str, "patient_control_number": str, "rule": str, "severity": str,
        "line": int, "procedure": str, "action": str, "message": str,
    }, pk="id")
    db["findings"].create_index(["rule"])
    db["batch_files"].create({
        "sha256": str, "name": str, "kind": str, "status": str, "detail": str, "finished_at": str,
    }, pk="sha256")


def m002_lookup_indexes(db) -> None:
    """Indexes the store's own lookups need as it grows, and none they do not: grouping replacements with
    the payments they follow (REF*F8 = CLP07), replacing a file's findings and finding an earlier batch
    file of the same name would otherwise scan whole tables."""
    db.execute("create index if not exists idx_claims_replaced_icn on claims (payer_claim_control_number) "
               "where frequency_code in ('7', '8')")  # partial: only replacements and voids carry the link
    db.execute("create index if not exists idx_claim_payments_payer_claim_control_number "
               "on claim_payments (payer_claim_control_number)")
    db.execute("create index if not exists idx_findings_file_sha256 on findings (file_sha256)")
    db.execute("create index if not exists idx_batch_files_name on batch_files (name)")
    db.execute("drop index if exists idx_findings_rule")  # never searched by rule
    db.execute("drop index if exists idx_claim_lines_control_number")  # REF*6R pairs in memory, not by search


def m003_interchanges(db) -> None:
    """Every interchange a file brought (ISA06 sender, ISA13 control number, the kinds of set in it), so
    a resend is recognised by any of its interchanges, not only by its file's first. A file recorded
    before this step is known by its first ISA, as `files` kept it."""
    db["interchanges"].create({
        "file_sha256": str, "isa_sender": str, "isa_control": str, "kind": str,
    }, pk=("file_sha256", "isa_sender", "isa_control"), foreign_keys=[("file_sha256", "files", "sha256")])
    db["interchanges"].create_index(["isa_sender", "isa_control"])
    db.execute("insert or ignore into interchanges select sha256, isa_sender, isa_control, kind from files "
               "where isa_sender is not null and isa_control is not null")


def m004_batch_publish_and_claims(db) -> None:
    """The batch job commits a file before it publishes its outputs: `publish_to` is the output folder
    whose .staging/<sha256>/ still holds outputs to move into place (NULL once published). A file is
    claimed by one run at a time (batch_claims), whatever the run's output folder."""
    db["batch_files"].add_column("publish_to", str)
    db["batch_claims"].create({"sha256": str, "run": str, "claimed_at": str}, pk="sha256")
    db["batch_claims"].create_index(["run"])


def m005_claim_events(db) -> None:
    """Claim status events that no claim or payment row says by itself (a 999 or 277CA answer, recorded
    through lifecycle.record_event): the claim's CLM01, its state, the event's date, the source file and
    position it came from and a detail (a status code, a reason)."""
    db["claim_events"].create({
        "id": str, "patient_control_number": str, "state": str, "event_date": str, "source_file": str,
        "segment_index": int, "line": int, "detail": str, "recorded_at": str,
    }, pk="id")
    db["claim_events"].create_index(["patient_control_number"])


def m006_outbound_sets(db) -> None:
    """The control numbers of every transaction set batch sends on, as sent (ISA06 sender, ISA08 receiver,
    ISA13, GS06, ST02), with the outbound file and the input it came from, and the claims of each set (CLM01,
    its REF*D9): an inbound 999 answers a set by GS06/ST02, a 277CA may name a claim by its REF*D9."""
    db["outbound_sets"].create({
        "id": str, "file_sha256": str, "outbound_file": str, "isa_sender": str, "isa_receiver": str,
        "isa_control": str, "gs_control": str, "st_control": str, "claims": int, "recorded_at": str,
    }, pk="id")
    db["outbound_sets"].create_index(["gs_control", "st_control"])
    db["outbound_claims"].create({
        "set_id": str, "patient_control_number": str, "clearinghouse_trace": str,
    }, pk=("set_id", "patient_control_number"), foreign_keys=[("set_id", "outbound_sets", "id")])
    db.execute("create index idx_outbound_claims_trace on outbound_claims (clearinghouse_trace) "
               "where clearinghouse_trace is not null")  # partial: few claims carry a REF*D9


def m007_outbound_set_order(db) -> None:
    """The order the batch took the file that sent each set (its first acknowledgment control number
    reserved: reserve_control_numbers takes them in file order, rising across runs), so that the set "last
    sent" with one GS06/ST02, which an inbound 999 answers, is the same however workers fell in time. NULL for
    sets recorded before this step (they come first, in the order recorded)."""
    db["outbound_sets"].add_column("sent_order", int)


STEPS = (m001_core, m002_lookup_indexes, m003_interchanges, m004_batch_publish_and_claims,
         m005_claim_events, m006_outbound_sets, m007_outbound_set_order)  # in order; a new step goes last, and
# is never edited once released
