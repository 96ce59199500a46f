"""The store's own lookups stay index searches as the store grows: SQLite work counted in VM steps."""

from __future__ import annotations

from conftest import FIXTURES

from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.store.store import Store

FILLER = "f" * 64


def vm_steps(store: Store, fn) -> int:
    """SQLite virtual-machine instructions (in tens) that fn() runs: a measure of work, not of time."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.conn.set_progress_handler(count, 10)
    try:
        fn()
    finally:
        store.conn.set_progress_handler(None, 0)
    return steps


def add_filler(store: Store, n: int) -> None:
    """n unrelated claims, claim payments (each with a payer claim control number), findings and files
    (each with an interchange)."""
    with store.transaction():
        store.add_file(FILLER, "filler", "837P+835", "FILLER", "1", "test")
        store.insert_rows("remits", ("id", "file_sha256"), [("filler:remit", FILLER)])
        store.insert_rows("claims", ("id", "file_sha256", "patient_control_number", "member_hash", "frequency_code",
                                     "payer_claim_control_number"),
                          [(f"filler:{k}", FILLER, f"FILL{k}", f"m{k}", "7" if k % 10 == 0 else "1", f"ICN{k}")
                           for k in range(n)])
        store.insert_rows("claim_payments", ("id", "remit_id", "file_sha256", "patient_control_number",
                                             "payer_claim_control_number"),
                          [(f"filler:p{k}", "filler:remit", FILLER, f"FILL{k}", f"PAY{k}") for k in range(n)])
        store.insert_rows("findings", ("id", "file_sha256", "rule"), [(f"filler:{k}", FILLER, "X") for k in range(n)])
        store.insert_rows("files", ("sha256", "name", "kind"), [(f"filler-file-{k}", "filler", "835") for k in range(n)])
        store.insert_rows("interchanges", ("file_sha256", "isa_sender", "isa_control", "kind"),
                          [(f"filler-file-{k}", "FILLER", f"{k:09d}", "835") for k in range(n)])


def sized_store(path, n: int) -> Store:
    store = Store(path)
    for name in ("pair-reversal.837", "pair-reversal.835"):
        assert ingest_file(FIXTURES / name, store).status == INGESTED
    add_filler(store, n)
    return store


def assert_flat(tmp_path, work) -> None:
    """work(store) on a store with 500 filler rows a table and on one with 20,000: 40x the rows may not
    cost 2x the SQLite work (a scan would cost ~40x)."""
    steps = []
    for n in (500, 20000):
        store = sized_store(tmp_path / f"{n}.db", n)
        try:
            steps.append(vm_steps(store, lambda: work(store)))
        finally:
            store.close()
    assert steps[1] < 2 * steps[0] + 50, steps


def test_linking_replacements_to_payments_does_not_scan(tmp_path):
    def work(store):
        assert store.linked_pcns(["REVERSAL01"]) == {"REVERSAL01"}
    assert_flat(tmp_path, work)


def test_a_files_remit_pcns_do_not_scan(tmp_path):
    def work(store):
        key = store.conn.execute("select sha256 from files where kind = '835'").fetchone()[0]
        assert store.remit_pcns([key]) == {"REVERSAL01"}
    assert_flat(tmp_path, work)


def test_replacing_a_files_findings_does_not_scan(tmp_path):
    def work(store):
        with store.staged():
            store.add_file("a" * 64, "one", "837P", "S", "2", "test")
            store.save_findings([{"rule": "TPI-UNITS"}], "a" * 64)
        assert store.conn.execute("select count(*) from findings where file_sha256 = ?", ["a" * 64]).fetchone()[0] == 1
    assert_flat(tmp_path, work)


def test_units_left_per_authorization_is_linear(tmp_path):
    steps = []
    for n in (100, 400):
        store = Store(tmp_path / f"a{n}.db")
        with store.transaction():
            store.insert_rows("authorizations", ("id", "member_id", "payer_id", "auth_number", "codes", "units"),
                              [(f"P:{k}", "M", "P", str(k), "97810", 10) for k in range(n)])
            store.insert_rows("auth_uses", ("id", "auth_id", "units"), [(f"u{k}", f"P:{k}", 3) for k in range(n)])
        steps.append(vm_steps(store, store.authorizations))
        assert {a["units_left"] for a in store.authorizations()} == {7}
        store.close()
    assert steps[1] < 8 * steps[0], steps  # 4x the rows: linear work is ~4x, a scan per row ~16x


def _opened_from_step(db, steps: int, *statements: str) -> Store:
    """A store made at `db` by the first `steps` migration steps only (as an earlier release made it), given
    `statements`, then opened by Store (which migrates it)."""
    import sqlite3

    from edi_pipeline.store import migrations

    conn = sqlite3.connect(db)
    old = migrations.import_sqlite_utils()
    m = old.migrations.Migrations(migrations.MIGRATION_SET)
    for step in migrations.STEPS[:steps]:
        m()(step)
    m.apply(old.Database(conn))
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return Store(db)


def test_a_store_from_before_m003_knows_its_files_interchanges(tmp_path):
    """A store made before the interchanges table: opening it adds the table, filled from each file's
    first ISA, so a resend of a file recorded then is still recognised."""
    store = _opened_from_step(tmp_path / "m002.db", 2, "insert into files (sha256, name, kind, isa_sender, "
                              "isa_control) values ('a', 'old.835', '835', 'PAYER', '000000007')")
    try:
        assert list(store.query("select * from interchanges")) == [
            {"file_sha256": "a", "isa_sender": "PAYER", "isa_control": "000000007", "kind": "835"}]
        found = store.earlier_interchanges([("PAYER", "000000007", "835"), ("PAYER", "000000008", "835")], "b")
        assert list(found) == [0] and found[0]["name"] == "old.835"
        assert store.earlier_interchanges([("PAYER", "000000007", "837P")], "b") == {}  # other kind of sets
        assert store.earlier_interchanges([("PAYER", "000000007", "835")], "a:835") == {}  # the file's own part
    finally:
        store.close()


def test_a_store_from_before_m007_answers_999s_with_its_sets_recorded_before_the_new(tmp_path):
    """Sets recorded before sent_order (NULL) come first, in the order recorded; a set recorded since is
    last by its sent_order, whatever the order it was committed in."""
    store = _opened_from_step(tmp_path / "m006.db", 6, "insert into outbound_sets (id, file_sha256, outbound_file, "
                              "isa_sender, gs_control, st_control) values ('s0', 'old', 'old.837', 'US', '7', '0001')")
    try:
        assert store.outbound_sets_of("7", "0001", "US")[0]["outbound_file"] == "old.837"
        for sid, name, order in (("s2", "later.837", 9), ("s1", "earlier.837", 3)):  # committed out of order
            store.add_outbound_sets([(sid, sid * 32, name, "US", "THEM", "1", "7", "0001", 1, order)], [])
        assert [r["outbound_file"] for r in store.outbound_sets_of("7", "0001", "US")] == ["later.837"]
    finally:
        store.close()


def _schema(conn) -> tuple[list[tuple], list[tuple], int]:
    return (conn.execute("select type, name, tbl_name, sql from sqlite_master order by rowid").fetchall(),
            conn.execute("select migration_set, name from _sqlite_migrations order by id").fetchall(),
            conn.execute("PRAGMA user_version").fetchone()[0])


def test_schema_sql_holds_what_the_migrations_make():
    """A new store is made from schema.sql: it must be the migrations' schema (scripts/update_schema.py
    rewrites it after a new step)."""
    import sqlite3

    from edi_pipeline.store import migrations

    conn = sqlite3.connect(":memory:")
    migrations.migrate(conn)
    assert migrations.schema_sql(conn) == migrations.SCHEMA.read_text(encoding="utf-8"), \
        "schema.sql is stale: run scripts/update_schema.py"


def test_a_new_store_is_the_migrations_store_made_without_sqlite_utils(tmp_path):
    """Making a new store from schema.sql gives the same tables, indexes and recorded steps as applying the
    migrations, without importing sqlite-utils (~40 ms a fresh store, the bench's every step)."""
    import sqlite3
    import subprocess
    import sys

    from edi_pipeline.store import migrations

    db = tmp_path / "new.db"
    code = (f"import sys; from edi_pipeline.store.store import Store; Store({str(db)!r}).close(); "
            "print('sqlite_utils' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False"]
    migrated = sqlite3.connect(tmp_path / "migrated.db")
    migrations.migrate(migrated)
    new = sqlite3.connect(db)
    assert _schema(new) == _schema(migrated)
    assert migrations.is_current(new)
    assert new.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_finding_an_earlier_interchange_does_not_scan(tmp_path):
    assert_flat(tmp_path, lambda store: store.earlier_interchanges([("FILLER", "000000002", "835"),
                                                                    ("FILLER", "999999999", "835")]))


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path):
    """A COMMIT SQLite refuses (here a deferred foreign key; a full disk alike) rolls back: the store keeps
    nothing of it, lets its write lock go and takes the next transaction."""
    import sqlite3

    import pytest

    store = Store(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.conn.execute("PRAGMA defer_foreign_keys=ON")
        store.insert_rows("claims", ("id", "file_sha256"), [("x", "no such file")])
    assert not store.conn.in_transaction
    with store.transaction():
        store.add_file("a" * 64, "one", "837P", "S", "1", "test")
    assert store.table_counts(["files", "claims"]) == {"files": 1, "claims": 0}
    store.close()
