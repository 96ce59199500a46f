"""The embedded SQLite store: files, claims, remits, authorizations and findings, one transaction per file."""

from __future__ import annotations

import contextlib
import csv
import functools
import itertools
import json
import os
import sqlite3
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Iterator

from edi_pipeline.core.errors import StoreError
from edi_pipeline.store import migrations
from edi_pipeline.store.rows import (ClaimLineRow, ClaimRow, DenialAdjustmentRow, DenialClaimRow, PaidLineRow,
                                     ServicePaymentRow)
from edi_pipeline.tx.model import Claim, ClaimPayment, RemitHeader
from edi_pipeline.core.safe_text import store_text
from edi_pipeline.core.values import cents, to_decimal
from edi_pipeline.tx.model import member_hash
from edi_pipeline.tx.registry import kinds_of

DEFAULT_DB = "edi_pipeline.db"
# What a failing store raises: ours, or SQLite's own (disk full, locked, corrupt).
STORE_ERRORS = (StoreError, sqlite3.Error)


def _store_row(row: Iterable) -> tuple:
    return tuple(store_text(v) if isinstance(v, str) else v for v in row)


_JSON_LIST = "(select value from json_each(?))"  # `in` a list given as one JSON parameter (_json_list)


def _json_list(values: Iterable[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def default_db_path() -> str:
    return os.environ.get("EDI_PIPELINE_DB") or DEFAULT_DB


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """The store's sqlite3 connection, with this project's schema applied by sqlite-utils migrations.
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
                        migrations.apply(self.db)
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
        cursor = self.conn.execute(sql, _store_row(params))
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
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # Tables a file's processing writes, parents first (the order staged rows are copied in).
    STAGED_TABLES = ("files", "interchanges", "claims", "claim_lines", "remits", "provider_adjustments",
                     "claim_payments", "service_payments", "adjustments", "auth_uses", "findings", "claim_events")

    @contextlib.contextmanager
    def staged(self) -> Iterator[None]:
        """Stage a long job's writes in private temporary tables, taking no lock on the store; on
        success copy them in with one short transaction, on failure drop them. Parallel batch
        workers therefore wait for each other only while rows are copied, not while files are read.
        The files row is replaced, and the file's earlier findings are replaced by the staged ones."""
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
                for t in self.STAGED_TABLES:
                    conn.execute(f"insert or replace into main.[{t}] select * from temp.[stage_{t}]")
        finally:
            self._schema = "main"
            if conn.in_transaction:
                conn.rollback()
            for t in self.STAGED_TABLES:
                conn.execute(f"drop table if exists temp.[stage_{t}]")

    # --- files ---------------------------------------------------------------------

    def seen_file(self, sha: str) -> dict | None:
        """The earlier copy of a file with these exact bytes."""
        rows = list(self.query("select * from files where sha256 = ?", [sha]))
        return rows[0] if rows else None

    def earlier_interchanges(self, interchanges: Iterable[tuple], exclude_sha: str | None = None) -> dict[int, dict]:
        """Those of `interchanges` (ISA06 sender, ISA13 control number, kind of sets, ...) that an earlier file
        brought with sets of the same kind: their positions in the list, each with the first such file's
        row. A file's own parts, `sha` and `sha:835`, are not earlier files."""
        base = (exclude_sha or "").removesuffix(":835")
        found: dict[int, dict] = {}
        for k, (sender, control, kind, *_) in enumerate(interchanges):
            if not (sender and control):
                continue
            wanted = kinds_of(kind)
            for row in self.query("select f.*, i.kind as interchange_kind from interchanges i "
                                  "join files f on f.sha256 = i.file_sha256 where i.isa_sender = ? "
                                  "and i.isa_control = ? and i.file_sha256 not in (?, ?) order by f.rowid",
                                  [sender, control, base, f"{base}:835"]):
                if wanted & kinds_of(row.pop("interchange_kind")):
                    found[k] = row
                    break
        return found

    def add_interchanges(self, sha: str, interchanges: Iterable[tuple]) -> None:
        """Record the interchanges (ISA06 sender, ISA13 control number, kind of sets, ...) a file brought."""
        self.insert_rows("interchanges", ("file_sha256", "isa_sender", "isa_control", "kind"),
                         [(sha, sender, control, kind) for sender, control, kind, *_ in interchanges
                          if sender and control])

    _FILE_COLS = ("sha256", "name", "kind", "isa_sender", "isa_control", "origin", "ingested_at", "claims",
                  "payments")

    def add_file(self, sha: str, name: str, kind: str, isa_sender: str | None, isa_control: str | None,
                 origin: str, claims: int = 0, payments: int = 0) -> None:
        """Record (or update) a file; call again at the end of a job with its final counts."""
        self.insert_rows("files", self._FILE_COLS, [(sha, os.path.basename(name), kind, isa_sender, isa_control,
                                                     origin, now(), claims, payments)])

    def batch_file_done(self, sha: str) -> bool:
        """Whether the batch job has finished a file with these bytes."""
        return self.conn.execute("select 1 from batch_files where sha256 = ?", [sha]).fetchone() is not None

    def batch_file(self, sha: str) -> dict | None:
        """The batch job's record of a file with these bytes (status, publish_to, ...), if any."""
        return next(self.query("select * from batch_files where sha256 = ?", [sha]), None)

    def claim_batch_file(self, sha: str, run: str, alive: Callable[[str], bool]) -> str | None:
        """Claim a file for batch run `run`, in one IMMEDIATE transaction, so that two runs on this store
        never both process it: None when claimed (or already this run's), "done" when finished before,
        else the run id of the live run holding it. A claim of a run that `alive` says is gone is taken over."""
        with self.transaction():
            if self.batch_file_done(sha):
                return "done"
            row = self.conn.execute("select run from batch_claims where sha256 = ?", [sha]).fetchone()
            if row is not None and row[0] != run and alive(row[0]):
                return row[0]
            self.conn.execute("insert or replace into batch_claims values (?, ?, ?)", [sha, run, now()])
        return None

    def release_batch_claims(self, run: str) -> None:
        """Drop every claim of batch run `run` (its files not marked: a later run takes them)."""
        with self.transaction():
            self.conn.execute("delete from batch_claims where run = ?", [run])

    def batch_files_to_publish(self) -> list[dict]:
        """The batch job's files committed whose outputs still wait in their staging folder."""
        return list(self.query("select * from batch_files where publish_to is not null order by rowid"))

    def batch_file_published(self, sha: str) -> None:
        """Record that a batch file's staged outputs are all in place."""
        with self.transaction():
            self.conn.execute("update batch_files set publish_to = null where sha256 = ?", [sha])

    def batch_name_taken(self, name: str, sha: str) -> bool:
        """Whether the batch job has recorded a different file under this name."""
        return self.conn.execute("select 1 from batch_files where name = ? and sha256 != ? limit 1",
                                 _store_row([name, sha])).fetchone() is not None

    def batch_files_with_status(self, status: str) -> list[dict]:
        """The batch job's files recorded with `status`, in the order they were recorded."""
        return list(self.query("select * from batch_files where status = ? order by rowid", [status]))

    def set_batch_status(self, shas: Iterable[str], status: str) -> None:
        """Change the recorded status of the batch job's files, in one transaction."""
        with self.transaction():
            self.conn.executemany("update batch_files set status = ? where sha256 = ?", [(status, s) for s in shas])

    def forget_batch_files(self, shas: Iterable[str], status: str) -> None:
        """Drop the batch job's records of these files while they have `status`, so the next run takes
        them again (batch --retry; a file that could not be quarantined)."""
        with self.transaction():
            self.conn.executemany("delete from batch_files where sha256 = ? and status = ?",
                                  [(s, status) for s in shas])

    def mark_batch_file(self, sha: str, name: str, kind: str | None, status: str, detail: str,
                        publish_to: str | None = None) -> None:
        """Record the batch job's outcome for a file and drop its claim, in a transaction of its own;
        `publish_to`: the output folder whose staging folder holds the file's outputs, not yet published."""
        with self.transaction():
            self.insert_rows("batch_files", ("sha256", "name", "kind", "status", "detail", "finished_at",
                                             "publish_to"),
                             [(sha, name, kind, status, detail, now(), publish_to)])
            self.conn.execute("delete from batch_claims where sha256 = ?", [sha])

    # --- claims --------------------------------------------------------------------

    _CLAIM_COLS = ("id", "file_sha256", "patient_control_number", "member_hash", "payer_id", "payer_name",
                   "claim_filing_indicator", "profile", "frequency_code", "payer_claim_control_number",
                   "total_charge_cents", "service_date", "billing_npi", "rendering_npi", "origin", "submitted_at",
                   "segment_index", "line")
    _LINE_COLS = ("id", "claim_id", "line_number", "procedure", "modifiers", "charge_cents", "units",
                  "service_date", "control_number", "dx_pointers", "segment_index", "line")

    def insert_rows(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        """Insert-or-replace tuples with one prepared statement (sqlite-utils' insert_all is far slower).
        Text holding bytes that are not UTF-8 is stored as store_text makes it."""
        if rows:
            target = f"main.[{table}]" if self._schema == "main" else f"temp.[stage_{table}]"
            sql = f"insert or replace into {target} ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
            try:
                self.conn.executemany(sql, rows)
            except UnicodeEncodeError:  # rare: mapped only then; rows already written are replaced alike
                self.conn.executemany(sql, [_store_row(r) for r in rows])

    def save_claims(self, claims: Iterable[Claim], sha: str, origin: str,
                    profile_of=None) -> int:
        """Insert claims and their lines (ids are file + position, so a replay replaces, never duplicates)."""
        claim_rows = []
        line_rows = []
        stamp = now()
        key = sha[:16]
        for c in claims:
            cid = f"{key}:{c.source.segment_index}"
            first_date = c.service_date or next((ln.service_date for ln in c.lines if ln.service_date), None)
            rendering = c.rendering_provider.npi if c.rendering_provider else c.billing_provider.npi
            claim_rows.append((
                cid, sha, c.patient_control_number, member_hash(c), c.payer.id, c.payer.name,
                c.claim_filing_indicator, profile_of(c) if profile_of else None, c.frequency_code,
                c.payer_claim_control_number, cents(c.total_charge), _iso(first_date), c.billing_provider.npi,
                rendering, origin, stamp, c.source.segment_index, c.source.line))
            for ln in c.lines:
                src = ln.source
                line_rows.append((
                    f"{cid}:{src.segment_index}", cid, ln.line_number, ln.procedure, " ".join(ln.modifiers),
                    cents(ln.charge), None if ln.units is None else str(ln.units),
                    _iso(ln.service_date or c.service_date), ln.control_number,
                    " ".join(map(str, ln.dx_pointers)), src.segment_index, src.line))
        self.insert_rows("claims", self._CLAIM_COLS, claim_rows)
        self.insert_rows("claim_lines", self._LINE_COLS, line_rows)
        return len(claim_rows)

    def visit_dates(self, member: str, procedures: Iterable[str], since: date, until: date,
                    exclude_file: str | None = None) -> set[date]:
        """Distinct service dates on file for a patient with any of `procedures` in [since, until]."""
        procs = sorted(set(procedures))
        if not procs:
            return set()
        marks = ",".join("?" * len(procs))
        sql = (f"select distinct l.service_date from claim_lines l join claims c on c.id = l.claim_id "
               f"where c.member_hash = ? and l.procedure in ({marks}) and l.service_date between ? and ? "
               f"and coalesce(c.frequency_code, '1') != '8'")
        params: list = [member, *procs, since.isoformat(), until.isoformat()]
        if exclude_file:
            sql += " and c.file_sha256 != ?"
            params.append(exclude_file)
        return {date.fromisoformat(r["service_date"]) for r in self.query(sql, params) if r["service_date"]}

    def procedure_dates(self, member: str, procedure: str, since: date, until: date,
                        exclude_file: str | None = None) -> list[tuple[date, str]]:
        """(service date, patient control number) of each line with `procedure` for a patient."""
        return [(d, pcn) for d, pcn, _ in self.procedure_units(member, procedure, since, until, exclude_file)]

    # --- remits --------------------------------------------------------------------

    # --- authorizations ------------------------------------------------------------

    AUTH_COLUMNS = ("member_id", "payer_id", "auth_number", "codes", "units", "start", "end")

    def import_authorizations(self, path: str | os.PathLike) -> int:
        """Load authorizations from CSV (member_id, payer_id, auth_number, codes, units, start, end).
        Bytes that are not UTF-8 (a Latin-1 export) are kept as store_text holds them, as a claim's are."""
        rows = []
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in self.AUTH_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise StoreError(f"{path}:1: missing columns: {', '.join(missing)}")
            for n, r in enumerate(reader, 2):
                try:
                    start, end = date.fromisoformat(r["start"].strip()), date.fromisoformat(r["end"].strip())
                    units = int(r["units"])
                except ValueError:
                    raise StoreError(f"{path}:{n}: units must be a whole number and dates YYYY-MM-DD") from None
                codes = " ".join(c for c in r["codes"].replace("|", " ").replace(";", " ").split() if c)
                rows.append({k: store_text(v) if isinstance(v, str) else v for k, v in {
                    "id": f"{r['payer_id'].strip()}:{r['auth_number'].strip()}",
                    "member_id": r["member_id"].strip(), "payer_id": r["payer_id"].strip(),
                    "auth_number": r["auth_number"].strip(), "codes": codes, "units": units,
                    "start_date": start.isoformat(), "end_date": end.isoformat(), "loaded_at": now(),
                }.items()})
        with self.transaction():
            self.db["authorizations"].insert_all(rows, replace=True)
        return len(rows)

    def authorizations(self) -> list[dict]:
        return list(self.query(
            "select a.*, a.units - coalesce(u.used, 0) as units_left from authorizations a left join "
            "(select auth_id, sum(units) as used from auth_uses group by auth_id) u on u.auth_id = a.id "
            "order by a.payer_id, a.auth_number"))

    def use_authorization(self, auth_id: str, pcn: str, procedure: str, line_number: int, units: int) -> None:
        """Record units used; the same claim line using the same auth again is not counted twice."""
        self.insert_rows("auth_uses", ("id", "auth_id", "patient_control_number", "procedure", "line_number",
                                       "units", "used_at"),
                         [(f"{auth_id}:{pcn}:{line_number}:{procedure}", auth_id, pcn, procedure, line_number,
                           units, now())])

    # --- findings ------------------------------------------------------------------

    FINDING_COLS = ("id", "file_sha256", "patient_control_number", "rule", "severity", "line", "procedure",
                    "action", "message")

    def save_findings(self, findings: Iterable[dict], sha: str, start: int = 0) -> None:
        """Add a file's findings (dicts with the FINDING_COLS after id and file_sha256), numbered from `start`."""
        cols = self.FINDING_COLS[2:]
        self.insert_rows("findings", self.FINDING_COLS,
                         [(f"{sha}:{k}", sha, *(f.get(c) for c in cols)) for k, f in enumerate(findings, start)])

    def scrub_sink(self, sha: str, name: str, write: bool = True):
        """The sink of one scrub of file `sha` (scrub.scrubber.ScrubStore): store.scrub_sink.StoreScrubSink."""
        from edi_pipeline.store.scrub_sink import StoreScrubSink  # scrub (below the store) loads only when scrubbing

        return StoreScrubSink(self, sha, name, write)

    # --- bulk remit insert and reconciliation queries (ingest.py, reconcile.py, denials.py) ---

    _CP_COLS = ("id", "remit_id", "file_sha256", "patient_control_number", "status_code", "charge_cents",
                "paid_cents", "patient_responsibility_cents", "claim_filing_indicator",
                "payer_claim_control_number", "frequency_code", "service_date", "remarks", "seq",
                "segment_index", "line")
    _SP_COLS = ("id", "claim_payment_id", "seq", "procedure", "modifiers", "original_procedure", "charge_cents",
                "paid_cents", "allowed_cents", "units", "service_date", "control_number", "remarks",
                "segment_index", "line")
    _ADJ_COLS = ("id", "claim_payment_id", "service_payment_id", "group_code", "reason", "amount_cents",
                 "quantity")

    def save_remits_bulk(self, remits: Iterable[tuple[RemitHeader, list[ClaimPayment]]], sha: str) -> int:
        """Insert 835 transaction sets (header, PLB, claim payments, service payments, CAS) with executemany; returns payments."""
        remit_rows, plb_rows, cps, sps, adjs = [], [], [], [], []
        key = sha[:16]
        for header, payments in remits:
            src = header.source
            rid = f"{key}:{src.segment_index if src else 0}"
            remit_rows.append((rid, sha, header.payer.id, header.payer.name, header.payee.npi, header.trace_number,
                               _iso(header.payment_date), cents(header.payment_amount), header.payment_method,
                               header.credit_debit, src.segment_index if src else None, src.line if src else None))
            for k, p in enumerate(header.provider_adjustments):
                plb_rows.append((f"{rid}:{k}", rid, p.provider_id, _iso(p.fiscal_period_end), p.reason,
                                 p.reference, cents(p.amount)))
            for seq, cp in enumerate(payments):
                csrc = cp.source
                cpid = f"{key}:{csrc.segment_index}"
                cps.append((cpid, rid, sha, cp.patient_control_number, cp.status_code, cents(cp.charge),
                            cents(cp.paid), cents(cp.patient_responsibility), cp.claim_filing_indicator,
                            cp.payer_claim_control_number, cp.frequency_code, _iso(cp.service_date),
                            " ".join(cp.remarks), seq, csrc.segment_index, csrc.line))
                for k, a in enumerate(cp.adjustments):
                    adjs.append((f"{cpid}:c{k}", cpid, None, a.group, a.reason, cents(a.amount),
                                 None if a.quantity is None else str(a.quantity)))
                for j, sp in enumerate(cp.lines):
                    ssrc = sp.source
                    spid = f"{cpid}:{ssrc.segment_index}"
                    sps.append((spid, cpid, j, sp.procedure, " ".join(sp.modifiers), sp.original_procedure,
                                cents(sp.charge), cents(sp.paid), cents(sp.allowed),
                                None if sp.units is None else str(sp.units),
                                _iso(sp.service_date or cp.service_date), sp.control_number, " ".join(sp.remarks),
                                ssrc.segment_index, ssrc.line))
                    for k, a in enumerate(sp.adjustments):
                        adjs.append((f"{spid}:l{k}", cpid, spid, a.group, a.reason, cents(a.amount),
                                     None if a.quantity is None else str(a.quantity)))
        for table, cols, rows in (
                ("remits", ("id", "file_sha256", "payer_id", "payer_name", "payee_npi", "trace_number",
                            "payment_date", "payment_cents", "payment_method", "credit_debit", "segment_index",
                            "line"), remit_rows),
                ("provider_adjustments", ("id", "remit_id", "provider_id", "fiscal_period_end", "reason",
                                          "reference", "amount_cents"), plb_rows),
                ("claim_payments", self._CP_COLS, cps), ("service_payments", self._SP_COLS, sps),
                ("adjustments", self._ADJ_COLS, adjs)):
            self.insert_rows(table, cols, rows)
        return len(cps)

    def table_counts(self, tables: Iterable[str] = ("files", "claims", "claim_lines", "remits", "claim_payments",
                                                    "service_payments", "adjustments", "provider_adjustments",
                                                    "findings")) -> dict[str, int]:
        return {t: self.conn.execute(f"select count(*) from [{t}]").fetchone()[0] for t in tables}

    def claims_upper_bound(self) -> int:
        """At least the number of claim rows, read without a scan (the largest rowid; replaced rows leave gaps)."""
        return self.conn.execute("select coalesce(max(rowid), 0) from claims").fetchone()[0]

    # --- reconciliation reads, of the whole store or (inside recon_scope) of some claims' groups ---

    _SCOPE = "(select pcn from temp.recon_scope)"
    _SCOPED_CLAIMS = f"(select id from claims where patient_control_number in {_SCOPE})"
    _SCOPED_PAYMENTS = f"(select id from claim_payments where patient_control_number in {_SCOPE})"

    def _where(self, column: str, scoped_to: str | None = None) -> str:
        """`where column in (...)` while recon_scope() is on, else nothing. `scoped_to` is a subquery
        mapping the scope's patient control numbers to the ids `column` holds."""
        if not self._scoped:
            return ""
        return f" where {column} in {scoped_to or self._SCOPE}"

    @contextlib.contextmanager
    def _pcn_table(self, name: str) -> Iterator[Callable[[Iterable[str]], None]]:
        """A private temp table of patient control numbers; yields fill(pcns), which replaces its rows.
        Ends only the implicit transaction its rows opened, never a caller's."""
        conn = self.conn
        was_open = conn.in_transaction
        conn.execute(f"create temp table if not exists {name} (pcn text primary key)")

        def fill(pcns: Iterable[str]) -> None:
            conn.execute(f"delete from temp.{name}")
            conn.executemany(f"insert or ignore into temp.{name} values (?)", ((p,) for p in pcns))
        try:
            yield fill
        finally:
            conn.execute(f"delete from temp.{name}")
            if not was_open:
                conn.commit()

    @contextlib.contextmanager
    def recon_scope(self, pcns: Iterable[str]) -> Iterator[None]:
        """Inside, the recon_* reads see only the claims and payments of these patient control numbers."""
        with self._pcn_table("recon_scope") as fill:
            fill(pcns)
            self._scoped = True
            try:
                yield
            finally:
                self._scoped = False

    def remit_pcns(self, file_keys: Iterable[str]) -> set[str]:
        """Patient control numbers of the claim payments that came in these files."""
        pcns: set[str] = set()
        for key in file_keys:  # a file's claim payment ids start with its digest's first 16 digits
            pcns.update(r[0] for r in self.conn.execute(
                "select distinct patient_control_number from claim_payments where id >= ? and id < ? "
                "and file_sha256 = ?", [f"{key[:16]}:", f"{key[:16]};", key]))
        return pcns

    def linked_pcns(self, pcns: Iterable[str]) -> set[str]:
        """`pcns` plus every patient control number reconcile would group with them: replacements and
        voids (frequency 7/8) whose REF*F8 is a payment's CLP07, followed both ways until nothing is added.
        Each round is one set-wise query, whatever the number of pcns."""
        scope: set[str] = set()
        new = set(pcns)
        with self._pcn_table("recon_new") as fill:
            while new:
                scope |= new
                fill(new)
                found = {r[0] for r in self.conn.execute(
                    "select patient_control_number from claims where frequency_code in ('7', '8') and "
                    "payer_claim_control_number in (select payer_claim_control_number from claim_payments "
                    "where patient_control_number in (select pcn from temp.recon_new)) "
                    "union select patient_control_number from claim_payments where payer_claim_control_number in "
                    "(select payer_claim_control_number from claims where frequency_code in ('7', '8') and "
                    "patient_control_number in (select pcn from temp.recon_new))")}
                new = found - scope
        return scope

    _CLAIM_ROWS = ("select id, patient_control_number, frequency_code, payer_claim_control_number, "
                   "total_charge_cents, service_date, payer_id, payer_name, rowid from claims")

    def recon_claims(self) -> list[ClaimRow]:
        """Every claim submission in ingest order."""
        return list(itertools.starmap(ClaimRow, self.conn.execute(
            f"{self._CLAIM_ROWS}{self._where('patient_control_number')} order by rowid")))

    def recon_links(self) -> list[tuple[str, str]]:
        """The replacements and voids (frequency 7/8) whose REF*F8 is a payment's CLP07, in ingest order:
        (their patient control number, that of the first payment, in payment order, with the CLP07)."""
        return self.conn.execute(
            "select pcn, paid_pcn from (select c.rowid as seq, c.patient_control_number as pcn, "
            "(select cp.patient_control_number from claim_payments cp join remits r on r.id = cp.remit_id "
            "where cp.payer_claim_control_number = c.payer_claim_control_number "
            "order by coalesce(r.payment_date, ''), cp.rowid limit 1) as paid_pcn "
            "from claims c where c.frequency_code in ('7', '8') and c.payer_claim_control_number != '') "
            "where paid_pcn is not null order by seq").fetchall()

    def iter_claims_by_pcn(self) -> Iterator[ClaimRow]:
        """Every claim submission, by patient control number, then in ingest order (streamed)."""
        return itertools.starmap(ClaimRow, self.conn.execute(f"{self._CLAIM_ROWS} order by patient_control_number, rowid"))

    _LINE_ROWS = "select claim_id, line_number, procedure, modifiers, charge_cents, service_date, control_number"

    def recon_claim_lines(self) -> list[ClaimLineRow]:
        return list(itertools.starmap(ClaimLineRow, self.conn.execute(
            f"{self._LINE_ROWS} from claim_lines{self._where('claim_id', self._SCOPED_CLAIMS)} order by rowid")))

    def iter_claim_lines_by_pcn(self) -> Iterator[ClaimLineRow]:
        """Every claim line with its claim's patient control number, by that number, then by claim and in
        ingest order (streamed)."""
        return itertools.starmap(ClaimLineRow, self.conn.execute(
            "select l.claim_id, l.line_number, l.procedure, l.modifiers, l.charge_cents, l.service_date, "
            "l.control_number, c.patient_control_number from claims c join claim_lines l on l.claim_id = c.id "
            "order by c.patient_control_number, c.rowid, l.rowid"))  # index order: no sort

    _PAYMENT_ROWS = ("select cp.id, cp.patient_control_number, cp.status_code, cp.charge_cents, cp.paid_cents, "
                     "cp.patient_responsibility_cents, cp.payer_claim_control_number, r.payment_date, r.payer_id, "
                     "r.payer_name, cp.remarks, cp.service_date")

    def recon_payments(self) -> list[tuple]:
        """Every claim payment in payment order: (id, pcn, CLP02, charge, paid, patient resp cents, CLP07,
        payment date, payer id, payer name, remarks, service date), reconcile.Payment's fields."""
        return self.conn.execute(
            f"{self._PAYMENT_ROWS} from claim_payments cp join remits r on r.id = cp.remit_id"
            f"{self._where('cp.patient_control_number')} order by coalesce(r.payment_date, ''), cp.rowid").fetchall()

    def iter_payments_by_pcn(self, not_denial_reasons: Iterable[str]) -> Iterator[tuple]:
        """recon_payments' rows, each with its non-PR CAS total and denial CAS total in cents (see _denial;
        0 without CAS), by patient control number, then in payment order (streamed)."""
        denial, params = self._denial(not_denial_reasons, "a.")
        return self.conn.execute(
            f"{self._PAYMENT_ROWS}, coalesce(sum(case when a.group_code != 'PR' then a.amount_cents end), 0), "
            f"coalesce(sum(case when {denial} then a.amount_cents end), 0) "
            "from claim_payments cp join remits r on r.id = cp.remit_id left join adjustments a "
            "on a.claim_payment_id = cp.id group by cp.rowid "
            "order by cp.patient_control_number, coalesce(r.payment_date, ''), cp.rowid", params)

    _SERVICE_PAYMENT_ROWS = ("select id, claim_payment_id, procedure, modifiers, original_procedure, charge_cents, "
                             "paid_cents, service_date, control_number, remarks from service_payments")

    def recon_service_payments(self) -> list[ServicePaymentRow]:
        return list(itertools.starmap(ServicePaymentRow, self.conn.execute(
            f"{self._SERVICE_PAYMENT_ROWS}{self._where('claim_payment_id', self._SCOPED_PAYMENTS)} "
            "order by rowid")))

    def iter_service_payments_by_pcn(self) -> Iterator[ServicePaymentRow]:
        """Every service payment with its claim payment's patient control number, by that number, then by
        claim payment and in ingest order (streamed)."""
        return itertools.starmap(ServicePaymentRow, self.conn.execute(
            "select sp.id, sp.claim_payment_id, sp.procedure, sp.modifiers, sp.original_procedure, "
            "sp.charge_cents, sp.paid_cents, sp.service_date, sp.control_number, sp.remarks, "
            "cp.patient_control_number from claim_payments cp join service_payments sp on sp.claim_payment_id = cp.id "
            "order by cp.patient_control_number, cp.rowid, sp.rowid"))  # index order: no sort

    @staticmethod
    def _denial(reasons: Iterable[str], table: str = "") -> tuple[str, list[str]]:
        """SQL true for an adjustment row (of `table`, a prefix such as "a.") that is a denial: a positive
        CO/PI/OA/PR amount whose reason is not in `reasons` (contractual and patient responsibility), and
        its parameters."""
        reasons = sorted(set(reasons))
        marks = ",".join("?" * len(reasons)) or "''"
        return (f"{table}group_code in ('CO', 'PI', 'OA', 'PR') and {table}amount_cents > 0 "
                f"and {table}reason not in ({marks})", reasons)

    def is_denial(self, group: str, reason: str, amount_cents: int | None, not_denial_reasons: Iterable[str]) -> bool:
        """Whether one adjustment (CAS group, reason, amount) is a denial by the store's own test (_denial)."""
        denial, params = self._denial(not_denial_reasons)
        return bool(self.conn.execute(
            f"select {denial} from (select ? as group_code, ? as reason, ? as amount_cents)",
            [*params, group, reason, amount_cents]).fetchone()[0])

    def recon_adjustment_totals(self, not_denial_reasons: Iterable[str]) -> list[tuple]:
        """Per claim payment: (id, non-PR CAS total, denial CAS total) in cents."""
        denial, params = self._denial(not_denial_reasons)
        return self.conn.execute(
            "select claim_payment_id, sum(case when group_code != 'PR' then amount_cents else 0 end), "
            f"sum(case when {denial} then amount_cents else 0 end) "
            f"from adjustments{self._where('claim_payment_id', self._SCOPED_PAYMENTS)} group by claim_payment_id",
            params).fetchall()

    def denial_adjustments(self, not_denial_reasons: Iterable[str],
                           payment_ids: Iterable[str] | None = None) -> list[DenialAdjustmentRow]:
        """Every denial adjustment (see _denial), of the claim payments `payment_ids` or of all, in ingest order."""
        denial, params = self._denial(not_denial_reasons)
        scoped = ""
        if payment_ids is not None:
            scoped = f" and claim_payment_id in {_JSON_LIST}"
            params.append(_json_list(payment_ids))
        return list(itertools.starmap(DenialAdjustmentRow, self.conn.execute(
            "select claim_payment_id, service_payment_id, group_code, reason, amount_cents "
            f"from adjustments where {denial}{scoped} order by rowid", params)))

    def service_payments(self, ids: Iterable[str]) -> list[ServicePaymentRow]:
        """recon_service_payments' rows of these service payment ids, in ingest order."""
        return list(itertools.starmap(ServicePaymentRow, self.conn.execute(
            f"{self._SERVICE_PAYMENT_ROWS} where id in {_JSON_LIST} order by rowid", [_json_list(ids)])))

    def denial_context(self, pcns: Iterable[str]) -> tuple[list[DenialClaimRow], list[tuple], list[tuple]]:
        """What the denial back-links read about the claims of these patient control numbers: their
        submissions in ingest order (id, pcn, frequency, F8, SBR09, profile, payer id), the lines of
        those (claim id, procedure) and the service payments of their claim payments (claim payment
        id, CLP06, SVC06 code, SVC01 code; one row with None codes for a payment without SVC)."""
        pcns = [_json_list(pcns)]  # not a temp table: creating one would abort the caller's open reads
        claims = list(itertools.starmap(DenialClaimRow, self.conn.execute(
            "select id, patient_control_number, frequency_code, payer_claim_control_number, "
            f"claim_filing_indicator, profile, payer_id from claims where patient_control_number in {_JSON_LIST} "
            "order by rowid", pcns)))
        lines = self.conn.execute(
            "select claim_id, procedure from claim_lines where claim_id in (select id from claims where "
            f"patient_control_number in {_JSON_LIST}) order by rowid", pcns).fetchall()
        services = self.conn.execute(
            "select cp.id, cp.claim_filing_indicator, sp.original_procedure, sp.procedure "
            "from claim_payments cp left join service_payments sp on sp.claim_payment_id = cp.id "
            f"where cp.patient_control_number in {_JSON_LIST} order by cp.rowid, sp.rowid", pcns).fetchall()
        return claims, lines, services


    def procedure_units(self, member: str, procedure: str, since: date, until: date,
                        exclude_file: str | None = None) -> list[tuple[date, str, Decimal]]:
        """(service date, patient control number, units) of each stored line with `procedure` for a patient
        in [since, until] (voided claims left out; units missing or unreadable = 1)."""
        sql = ("select l.service_date, c.patient_control_number, l.units from claim_lines l "
               "join claims c on c.id = l.claim_id where c.member_hash = ? and l.procedure = ? "
               "and l.service_date between ? and ? and coalesce(c.frequency_code, '1') != '8'")
        params: list = [member, procedure, since.isoformat(), until.isoformat()]
        if exclude_file:
            sql += " and c.file_sha256 != ?"
            params.append(exclude_file)
        return [(date.fromisoformat(d), pcn, Decimal(1) if (u := to_decimal(units or "")) is None else u)
                for d, pcn, units in self.conn.execute(sql, params)]

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

    def export_rows(self, table: str) -> tuple[list[str], Iterator[tuple]]:
        """(column names, rows streamed) of one of EXPORT_QUERIES' tables."""
        cursor = self.conn.execute(self.EXPORT_QUERIES[table])
        return [d[0] for d in cursor.description], cursor

    def report_scrub_counts(self) -> tuple[int, int]:
        """(claims the scrubber emitted or held, those of them it changed (a correction) or held (an error))."""
        sent = self.conn.execute("select count(distinct patient_control_number) from claims "
                                 "where origin in ('scrub', 'batch')").fetchone()[0]
        changed, held = self.conn.execute(
            "select count(*), count(*) filter (where patient_control_number not in "
            "(select patient_control_number from claims)) from (select distinct patient_control_number "
            "from findings where action != 'none' or severity = 'error')").fetchone()
        return sent + held, changed

    def report_ack_events(self) -> list[tuple]:
        """(pcn, date, STC01-1 category) of the payers' 277CA answers recorded in claim_events (lifecycle.py's
        states 'accepted by payer' / 'rejected by payer', read as A2 / A7)."""
        return self.conn.execute(
            "select patient_control_number, event_date, case state when 'accepted by payer' then 'A2' else 'A7' end "
            "from claim_events where state in ('accepted by payer', 'rejected by payer')").fetchall()
    # --- claim lifecycle (lifecycle.py) ---------------------------------------------

    _EVENT_COLS = ("id", "patient_control_number", "state", "event_date", "source_file", "segment_index", "line",
                   "detail", "recorded_at")

    def add_claim_events(self, rows: list[tuple]) -> None:
        """Insert claim_events rows (_EVENT_COLS order); an event's id is its source and position, so a
        replay replaces it."""
        self.insert_rows("claim_events", self._EVENT_COLS, rows)

    def claim_timeline_rows(self, pcn: str) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
        """What one claim's timeline is made of: its submissions (with file name), its claim payments
        (with payment date, file name and ingest time), its error findings and its recorded events, each in
        store order."""
        claims = list(self.query(
            "select c.frequency_code, c.payer_claim_control_number, c.origin, c.submitted_at, c.segment_index, "
            "c.line, c.total_charge_cents, f.name as file from claims c left join files f on f.sha256 = c.file_sha256 "
            "where c.patient_control_number = ? order by c.rowid", [pcn]))
        payments = list(self.query(
            "select cp.status_code, cp.charge_cents, cp.paid_cents, cp.payer_claim_control_number, cp.segment_index, "
            "cp.line, r.payment_date, f.name as file, f.ingested_at from claim_payments cp join remits r on r.id = cp.remit_id "
            "left join files f on f.sha256 = r.file_sha256 where cp.patient_control_number = ? order by cp.rowid",
            [pcn]))
        findings = list(self.query(
            "select fi.rule, fi.line, fi.action, f.name as file, f.ingested_at from findings fi "
            "left join files f on f.sha256 = fi.file_sha256 "
            "where fi.patient_control_number = ? and fi.severity = 'error' order by fi.rowid", [pcn]))
        events = list(self.query(
            "select * from claim_events where patient_control_number = ? order by rowid", [pcn]))
        return claims, payments, findings, events

    def latest_recorded_events(self) -> dict[str, tuple[str, str]]:
        """Per claim, its last recorded event: pcn -> (state, recorded_at)."""
        return {pcn: (state, at) for pcn, state, at in self.conn.execute(
            "select patient_control_number, state, recorded_at from claim_events order by recorded_at, rowid")}

    def last_stored_at(self) -> dict[str, str]:
        """Per claim with a recorded event (claim_events), when the store last took a submission of it or a
        payment for it (ISO timestamp)."""
        return {pcn: at for pcn, at in self.conn.execute(
            "select pcn, max(at) from (select patient_control_number as pcn, submitted_at as at from claims "
            "where patient_control_number in (select patient_control_number from claim_events) "
            "union all select cp.patient_control_number, f.ingested_at from claim_payments cp "
            "join files f on f.sha256 = cp.file_sha256 "
            "where cp.patient_control_number in (select patient_control_number from claim_events)) group by pcn")}

    # --- what batch sent on, and what answers it (pipeline/acks_in.py) ------------------

    def add_outbound_sets(self, sets: list[tuple], claims: list[tuple]) -> None:
        """Record outbound sets (id, file_sha256, outbound_file, ISA06, ISA08, ISA13, GS06, ST02, claims) and
        their claims (set id, CLM01, REF*D9), in one transaction; recording the same set again replaces it."""
        with self.transaction():
            ids = [(s[0],) for s in sets]
            self.conn.executemany("delete from outbound_claims where set_id = ?", ids)
            self.insert_rows("outbound_sets", ("id", "file_sha256", "outbound_file", "isa_sender", "isa_receiver",
                                               "isa_control", "gs_control", "st_control", "claims", "recorded_at"),
                             [(*s, now()) for s in sets])
            self.insert_rows("outbound_claims", ("set_id", "patient_control_number", "clearinghouse_trace"), claims)

    def outbound_sets_of(self, gs06: str, st02: str | None, our_id: str) -> list[dict]:
        """The sets last sent with this GS06 (and ST02, unless None) in one outbound file, preferring those
        sent by `our_id` (the 999's ISA08): id, outbound_file, st_control, and pcns (their CLM01s)."""
        where, params = "gs_control = ?", [gs06]
        if st02 is not None:
            where, params = where + " and st_control = ?", params + [st02]
        rows = list(self.query(f"select * from outbound_sets where {where} and isa_sender = ? order by rowid",
                               params + [our_id])) or \
            list(self.query(f"select * from outbound_sets where {where} order by rowid", params))
        if not rows:
            return []
        last = rows[-1]["file_sha256"]
        rows = [r for r in rows if r["file_sha256"] == last]
        for r in rows:
            r["pcns"] = [pcn for (pcn,) in self.conn.execute(
                "select patient_control_number from outbound_claims where set_id = ? order by rowid", [r["id"]])]
        return rows

    def claim_of_ack(self, pcn: str, payer_icn: str | None, trace: str | None) -> str | None:
        """The CLM01 a 277CA claim status names: its TRN02 when the store holds that claim, else the claim its
        REF*1K (the payer's claim control number, from an 835 or a replacement's REF*F8) or its REF*D9 (as
        batch sent it) leads to."""
        if pcn and self.conn.execute("select 1 from claims where patient_control_number = ? limit 1",
                                     _store_row([pcn])).fetchone():
            return pcn
        for sql, value in (("select patient_control_number from claim_payments where payer_claim_control_number = ?",
                            payer_icn),
                           ("select patient_control_number from claims where payer_claim_control_number = ? "
                            "and frequency_code in ('7', '8')", payer_icn),
                           ("select patient_control_number from outbound_claims where clearinghouse_trace = ?",
                            trace)):
            if value:
                row = self.conn.execute(sql + " limit 1", _store_row([value])).fetchone()
                if row:
                    return row[0]
        return None

    def line_controls(self, pcn: str) -> dict[str, int]:
        """REF*6R line control number -> line number, over the stored submissions of a claim."""
        return {ctl: n for ctl, n in self.conn.execute(
            "select l.control_number, l.line_number from claim_lines l join claims c on c.id = l.claim_id "
            "where c.patient_control_number = ? and l.control_number is not null", _store_row([pcn]))}

    def denial_rules(self) -> dict[str, str]:
        """Per claim, the first error rule the scrubber found on it (the rule that would have prevented a denial)."""
        return {pcn: rule for pcn, rule in self.conn.execute(
            "select patient_control_number, min(rule) from findings where patient_control_number is not null "
            "and severity = 'error' group by patient_control_number")}

    def claim_profiles(self) -> dict[str, str]:
        """Per claim, the payer profile its latest submission was scrubbed under (None when unknown)."""
        return {pcn: profile for pcn, profile in self.conn.execute(
            "select patient_control_number, profile from claims where profile is not null order by rowid")}

    def claim_payer_keys(self) -> dict[str, tuple[str | None, str | None]]:
        """Per claim, the SBR09 and 2010BB payer id of its latest submission (what picks its payer profile)."""
        return {pcn: (sbr09, payer_id) for pcn, sbr09, payer_id in self.conn.execute(
            "select patient_control_number, claim_filing_indicator, payer_id from claims order by rowid")}

    def paid_service_lines(self) -> Iterator[PaidLineRow]:
        """Every service line paid something, of a claim payment that is not a reversal, by payer id, SVC01
        procedure and payment date (streamed)."""
        return itertools.starmap(PaidLineRow, self.conn.execute(
            "select cp.patient_control_number, r.payer_id, sp.procedure, sp.charge_cents, sp.paid_cents, "
            "r.payment_date from service_payments sp join claim_payments cp on cp.id = sp.claim_payment_id "
            "join remits r on r.id = cp.remit_id where sp.paid_cents > 0 and sp.charge_cents > 0 "
            "and cp.status_code != '22' and r.payment_date is not null order by r.payer_id, sp.procedure, "
            "r.payment_date"))
