"""Every read of the store returns its rows by name (store/rows.py's NamedTuples, or dicts of columns), never
a bare tuple a caller would index by number: each public read of Store is called on a store holding a row in
every table it reads, and what it returns is walked for tuples."""

from __future__ import annotations

import inspect
from datetime import date

from conftest import FIXTURES

from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.store.store import Store

NOT_DENIAL = ["45"]

# name -> how to call it on the fixture store
READS = {
    "authorizations": lambda s: s.authorizations(),
    "batch_file": lambda s: s.batch_file("b" * 64),
    "batch_file_done": lambda s: s.batch_file_done("b" * 64),
    "batch_files_to_publish": lambda s: s.batch_files_to_publish(),
    "batch_files_with_status": lambda s: s.batch_files_with_status("done"),
    "batch_name_taken": lambda s: s.batch_name_taken("b.837", "c" * 64),
    "claim_of_ack": lambda s: s.claim_of_ack("REVERSAL01", None, None),
    "claim_payer_keys": lambda s: s.claim_payer_keys(),
    "claim_profiles": lambda s: s.claim_profiles(),
    "claim_timeline_rows": lambda s: s.claim_timeline_rows("REVERSAL01"),
    "claims_upper_bound": lambda s: s.claims_upper_bound(),
    "denial_adjustments": lambda s: s.denial_adjustments(NOT_DENIAL),
    "denial_context": lambda s: s.denial_context(["REVERSAL01"]),
    "denial_rules": lambda s: s.denial_rules(),
    "earlier_interchanges": lambda s: s.earlier_interchanges([("S", "1", "837P")]),
    "export_rows": lambda s: s.export_rows("claims"),
    "is_denial": lambda s: s.is_denial("CO", "50", 100, NOT_DENIAL),
    "iter_claim_lines_by_pcn": lambda s: s.iter_claim_lines_by_pcn(),
    "iter_claims_by_pcn": lambda s: s.iter_claims_by_pcn(),
    "iter_payments_by_pcn": lambda s: s.iter_payments_by_pcn(NOT_DENIAL),
    "iter_service_payments_by_pcn": lambda s: s.iter_service_payments_by_pcn(),
    "last_stored_at": lambda s: s.last_stored_at(),
    "latest_recorded_events": lambda s: s.latest_recorded_events(),
    "line_controls": lambda s: s.line_controls("REVERSAL01"),
    "linked_pcns": lambda s: s.linked_pcns(["REVERSAL01"]),
    "outbound_sets_of": lambda s: s.outbound_sets_of("7", "0001", "US"),
    "paid_service_lines": lambda s: s.paid_service_lines(),
    "procedure_dates": lambda s: s.procedure_dates(*_member_code(s), date.min, date.max),
    "procedure_units": lambda s: s.procedure_units(*_member_code(s), date.min, date.max),
    "query": lambda s: s.query("select * from claims"),
    "recon_adjustment_totals": lambda s: s.recon_adjustment_totals(NOT_DENIAL),
    "recon_claim_lines": lambda s: s.recon_claim_lines(),
    "recon_claims": lambda s: s.recon_claims(),
    "recon_links": lambda s: s.recon_links(),
    "recon_payments": lambda s: s.recon_payments(),
    "recon_service_payments": lambda s: s.recon_service_payments(),
    "remit_pcns": lambda s: s.remit_pcns([s.query("select sha256 from files where kind = '835'").__next__()["sha256"]]),
    "report_ack_events": lambda s: s.report_ack_events(),
    "report_scrub_counts": lambda s: s.report_scrub_counts(),
    "seen_file": lambda s: s.seen_file("b" * 64),
    "service_payments": lambda s: s.service_payments([r.id for r in s.recon_service_payments()]),
    "table_counts": lambda s: s.table_counts(),
    "visit_dates": lambda s: s.visit_dates(_member_code(s)[0], [_member_code(s)[1]], date.min, date.max),
}
# Public methods that write, scope other reads or hand out a helper: not reads.
NOT_READS = {"add_claim_events", "add_file", "add_interchanges", "add_outbound_sets", "batch_file_published",
             "claim_batch_file", "close", "forget_batch_files", "import_authorizations", "insert_rows",
             "mark_batch_file", "recon_scope", "release_batch_claims", "save_claims", "save_findings",
             "save_remits_bulk", "scrub_sink", "set_batch_status", "staged", "transaction", "use_authorization"}
POSITIONAL = {"export_rows": "rows"}  # export writes any table column by column (rows.ExportRows)


def _member_code(store: Store) -> tuple[str, str]:
    row = next(store.query("select c.member_hash, l.procedure from claims c join claim_lines l on l.claim_id = c.id"))
    return row["member_hash"], row["procedure"]


def _fixture_store(tmp_path) -> Store:
    store = Store(tmp_path / "rows.db")
    for name in ("pair-reversal.837", "pair-reversal.835"):
        assert ingest_file(FIXTURES / name, store).status == INGESTED
    with store.transaction():
        store.add_file("b" * 64, "b.837", "837P", "S", "1", "scrub")
        store.add_interchanges("b" * 64, [("S", "1", "837P")])
        icn = next(store.query("select payer_claim_control_number from claim_payments "
                               "where payer_claim_control_number != ''"))["payer_claim_control_number"]
        store.insert_rows("claims", ("id", "file_sha256", "patient_control_number", "frequency_code",
                                     "payer_claim_control_number"), [("b:1", "b" * 64, "REPLACES01", "7", icn)])
        store.save_findings([{"patient_control_number": "REVERSAL01", "rule": "X", "severity": "error",
                              "action": "hold"}], "b" * 64)
        store.add_claim_events([("e1", "REVERSAL01", "accepted by payer", "2026-11-01", "a.277", 3, 3, "A2",
                                 "2099-01-01T00:00:00+00:00")])
        store.insert_rows("authorizations", ("id", "member_id", "payer_id", "auth_number", "codes", "units"),
                          [("P:1", "M", "P", "1", "20552", 10)])
        store.use_authorization("P:1", "REVERSAL01", "20552", 1, 2)
        store.conn.execute("update claims set profile = 'medicare'")
        store.conn.execute("update claim_lines set control_number = 'L' || rowid")
    store.add_outbound_sets([("o1", "b" * 64, "b.837", "US", "THEM", "1", "7", "0001", 1, 1)],
                            [("o1", "REVERSAL01", None)])
    store.mark_batch_file("b" * 64, "b.837", "837P", "done", "", publish_to=str(tmp_path))
    return store


def _bare_tuples(value, where: str) -> list[str]:
    """Where `value` (materialised) holds a tuple that is not a NamedTuple."""
    if type(value) is tuple:
        return [where]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _bare_tuples(v, f"{where}[{k!r}]")]
    if isinstance(value, (list, set, frozenset)):
        return [w for k, v in enumerate(value) for w in _bare_tuples(v, f"{where}[{k}]")]
    if isinstance(value, tuple):  # a NamedTuple: its fields
        return [w for name, v in zip(value._fields, value) for w in _bare_tuples(v, f"{where}.{name}")]
    return []


def _materialised(value):
    if inspect.isgenerator(value) or hasattr(value, "__next__"):
        return list(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_materialised(v) for v in value))
    return value


def test_every_public_method_of_the_store_is_listed_here_as_a_read_or_not():
    public = {n for n, v in inspect.getmembers(Store) if not n.startswith("_") and callable(v)}
    assert public == READS.keys() | NOT_READS, (public - READS.keys() - NOT_READS, (READS.keys() | NOT_READS) - public)


def test_no_store_read_returns_a_bare_tuple(tmp_path):
    store = _fixture_store(tmp_path)
    try:
        found = {}
        for name, call in sorted(READS.items()):
            result = _materialised(call(store))
            if name in POSITIONAL and hasattr(result, "_replace"):
                result = result._replace(**{POSITIONAL[name]: []})
            found[name] = result
        bare = [w for name, result in found.items() for w in _bare_tuples(result, name)]
        assert not bare, f"store reads returning bare tuples: {bare}"
        # the walk saw rows: every collection-returning read found some on the fixture store
        empty = [name for name, r in found.items()
                 if isinstance(r, (list, dict, set)) and not r or isinstance(r, tuple) and not any(r)]
        assert not empty, empty
    finally:
        store.close()
