"""The embedded SQLite store: its connection, transactions, the staging of one file's writes, migrations on
open, and whole-store reads (counts, export). Each table family's writes and reads live in a module of its
own, composed into Store: files.py, submissions.py, remits.py, reconcile_reads.py, events.py."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Iterator

from edi_pipeline.core.errors import StoreError
from edi_pipeline.store import migrations
from edi_pipeline.store.events import ClaimEvents
from edi_pipeline.store.files import FileRecords
from edi_pipeline.store.reconcile_reads import ReconcileReads
from edi_pipeline.store.remits import Remits
from edi_pipeline.store.rows import ExportRows
from edi_pipeline.store.sql import store_row
from edi_pipeline.store.submissions import Submissions

DEFAULT_DB = "edi_pipeline.db"
# What a failing store raises: ours, or SQLite's own (disk full, locked, corrupt).
STORE_ERRORS = (StoreError, sqlite3.Error)


def default_db_path() -> str:
    return os.environ.get("EDI_PIPELINE_DB") or DEFAULT_DB


class Store(FileRecords, Submissions, Remits, ReconcileReads, ClaimEvents):
    """The store's sqlite3 connection, with this project's schema (store.migrations) brought up to date on open.
    `db` is the same connection as a sqlite-utils Database, made (and sqlite-utils imported) on first use."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = str(path) if path is not None else default_db_path()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                fresh = not Path(self.path).exists()
            else:
                fresh = False
            self._schema = "main"  # "temp" while staged() collects a job's rows in temp.stage_* tables
            self._scoped = False  # True inside recon_scope()
            # Called by staged() inside its write transaction, before its rows are copied in; raising
            # there keeps none of them (the batch job refuses a file that changed while it was read, or
            # whose interchange another run stored meanwhile).
            self.before_commit: Callable[[], None] | None = None
            # The name a scrub's corrected file is sent on under and the batch's order of its file (set by the
            # batch): its scrub sink records the sets written there (outbound_sets, outbound_claims) with its
            # other rows; None: not sent.
            self.sends_as: tuple[str, int | None] | None = None
            self.conn = sqlite3.connect(self.path)
            if fresh:
                os.chmod(self.path, 0o600)
            # A batch worker may wait for another that holds the write lock for a whole large file.
            self.conn.execute("PRAGMA busy_timeout=600000")
            # WAL + NORMAL: a killed process never loses a committed file; only power loss can drop the last one.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal" or not migrations.is_current(self.conn):
                # Two processes opening a new store switch it to WAL and migrate it once, one after the other:
                # two switching at once can deadlock, and SQLite then fails one at once, busy_timeout or not.
                with self._migration_lock():
                    self.conn.execute("PRAGMA journal_mode=WAL")
                    if not migrations.is_current(self.conn):
                        migrations.apply(self.conn)
        except Exception as exc:  # sqlite3.DatabaseError, OSError
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    def _migration_lock(self) -> contextlib.AbstractContextManager:
        """An exclusive lock on .NAME.migrate.lock beside the store while its schema is brought up to date."""
        if self.path == ":memory:":
            return contextlib.nullcontext()
        from edi_pipeline.core.files import file_lock

        store = Path(self.path)
        return file_lock(store.with_name(f".{store.name}.migrate.lock"))

    @functools.cached_property
    def db(self):
        """This connection as a sqlite_utils.Database (no plugins: loading them scans every installed
        package's entry points, ~10 ms)."""
        return migrations.import_sqlite_utils().Database(self.conn, execute_plugins=False)

    def close(self) -> None:
        self.conn.close()

    def query(self, sql: str, params: Iterable = ()) -> Iterator[dict]:
        """Rows of a SELECT as dicts; text parameters are looked up as the store holds them (store_text)."""
        cursor = self.conn.execute(sql, store_row(params))
        keys = [d[0] for d in cursor.description]
        return (dict(zip(keys, row)) for row in cursor)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        conn = self.conn
        if conn.in_transaction:  # nested: a savepoint inside the caller's transaction
            conn.execute("SAVEPOINT store_nested")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK TO store_nested")
                conn.execute("RELEASE store_nested")
                raise
            conn.execute("RELEASE store_nested")
            return
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: parallel workers wait instead of failing
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed (a full disk): the lock is let go
                conn.execute("ROLLBACK")
            raise

    # Tables a file's processing writes, parents first (the order staged rows are copied in).
    STAGED_TABLES = ("files", "interchanges", "claims", "claim_lines", "remits", "provider_adjustments",
                     "claim_payments", "service_payments", "adjustments", "auth_uses", "findings", "claim_events",
                     "outbound_sets", "outbound_claims")

    @contextlib.contextmanager
    def staged(self) -> Iterator[None]:
        """Stage a long job's writes in private temporary tables, taking no lock on the store; on
        success copy them in with one short transaction, on failure drop them. Parallel batch
        workers therefore wait for each other only while rows are copied, not while files are read.
        The files row is replaced, and the file's earlier findings are replaced by the staged ones, as are
        the claims of each staged outbound set recorded before."""
        conn = self.conn
        if self._schema != "main" or conn.in_transaction:
            raise StoreError("staged() cannot nest or run inside a transaction")
        for t in self.STAGED_TABLES:  # named apart, so unqualified reads still see the store
            conn.execute(f"create temp table if not exists [stage_{t}] as select * from main.[{t}] where 0")
            conn.execute(f"delete from temp.[stage_{t}]")
        self._schema = "temp"
        try:
            yield
            self._schema = "main"
            conn.commit()  # the temp tables' own implicit transaction
            with self.transaction():
                if self.before_commit is not None:
                    self.before_commit()
                conn.execute("delete from main.findings where file_sha256 in (select sha256 from temp.stage_files)")
                conn.execute("delete from main.outbound_claims where set_id in (select id from temp.stage_outbound_sets)")
                for t in self.STAGED_TABLES:
                    conn.execute(f"insert or replace into main.[{t}] select * from temp.[stage_{t}]")
        finally:
            self._schema = "main"
            if conn.in_transaction:
                conn.rollback()
            for t in self.STAGED_TABLES:
                conn.execute(f"drop table if exists temp.[stage_{t}]")

    def insert_rows(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        """Insert-or-replace tuples with one prepared statement (sqlite-utils' insert_all is far slower).
        Text holding bytes that are not UTF-8 is stored as store_text makes it."""
        if rows:
            target = f"main.[{table}]" if self._schema == "main" else f"temp.[stage_{table}]"
            sql = f"insert or replace into {target} ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
            try:
                self.conn.executemany(sql, rows)
            except UnicodeEncodeError:  # rare: mapped only then; rows already written are replaced alike
                self.conn.executemany(sql, [store_row(r) for r in rows])

    def table_counts(self, tables: Iterable[str] = ("files", "claims", "claim_lines", "remits", "claim_payments",
                                                    "service_payments", "adjustments", "provider_adjustments",
                                                    "findings")) -> dict[str, int]:
        return {t: self.conn.execute(f"select count(*) from [{t}]").fetchone()[0] for t in tables}

    def claims_upper_bound(self) -> int:
        """At least the number of claim rows, read without a scan (the largest rowid; replaced rows leave gaps)."""
        return self.conn.execute("select coalesce(max(rowid), 0) from claims").fetchone()[0]

    # The tables `export` writes: their rows in store order (ids, file digests, cents, ISO dates; no member hash).
    EXPORT_QUERIES = {
        "claims": "select id, file_sha256, patient_control_number, payer_id, payer_name, claim_filing_indicator, "
                  "profile, frequency_code, payer_claim_control_number, total_charge_cents, service_date, "
                  "billing_npi, rendering_npi, origin, submitted_at, segment_index, line from claims order by rowid",
        "lines": "select id, claim_id, line_number, procedure, modifiers, charge_cents, units, service_date, "
                 "control_number, dx_pointers, segment_index, line from claim_lines order by rowid",
        "payments": "select cp.id, cp.remit_id, cp.file_sha256, cp.patient_control_number, cp.status_code, "
                    "cp.charge_cents, cp.paid_cents, cp.patient_responsibility_cents, cp.claim_filing_indicator, "
                    "cp.payer_claim_control_number, cp.frequency_code, cp.service_date, cp.remarks, r.payer_id, "
                    "r.payer_name, r.payment_date, r.trace_number, cp.segment_index, cp.line "
                    "from claim_payments cp join remits r on r.id = cp.remit_id order by cp.rowid",
        "service_payments": "select id, claim_payment_id, seq, procedure, modifiers, original_procedure, "
                            "charge_cents, paid_cents, allowed_cents, units, service_date, control_number, remarks, "
                            "segment_index, line from service_payments order by rowid",
        "adjustments": "select id, claim_payment_id, service_payment_id, group_code, reason, amount_cents, quantity "
                       "from adjustments order by rowid",
        "findings": "select id, file_sha256, patient_control_number, rule, severity, line, procedure, action, "
                    "message from findings order by rowid",
        "lifecycle_events": "select id, patient_control_number, state, event_date, source_file, segment_index, line, "
                            "detail, recorded_at from claim_events order by rowid",
    }

    def export_rows(self, table: str) -> ExportRows:
        """One of EXPORT_QUERIES' tables, its rows streamed."""
        cursor = self.conn.execute(self.EXPORT_QUERIES[table])
        return ExportRows([d[0] for d in cursor.description], cursor)

