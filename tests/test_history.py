"""The History protocol: the same rules over the store's history (StoreHistory) and over the same rows in
memory (MemoryHistory, as a Spark group would give them) find the same, through the pure scrub stage."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from edi_pipeline.core.files import path_sha256
from edi_pipeline.core.values import from_cents, to_decimal
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.rules.engine import FindingLog, HistoryLine, MemoryHistory
from edi_pipeline.scrub.scrubber import AuthBook, ScrubbedSet, ScrubResult, scrub_items
from edi_pipeline.store.history import StoreHistory
from edi_pipeline.store.store import Store
from edi_pipeline.x12.envelope import EnvelopeReader

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
TODAY = date(2024, 6, 1)


def _memory_history(store: Store, exclude_file: str) -> MemoryHistory:
    """The store's rows of every other file, as plain rows: what a Spark runner would hand a group."""
    lines = [HistoryLine(r["id"], r["member_hash"], r["patient_control_number"], r["frequency_code"],
                         date.fromisoformat(r["service_date"]) if r["service_date"] else None, r["procedure"],
                         from_cents(r["charge_cents"]), to_decimal(r["units"] or ""))
             for r in store.query("select c.id, c.member_hash, c.patient_control_number, c.frequency_code, "
                                  "l.service_date, l.procedure, l.charge_cents, l.units from claims c "
                                  "join claim_lines l on l.claim_id = c.id where c.file_sha256 != ?", [exclude_file])]
    icns = [r["payer_claim_control_number"] for r in store.query(
        "select payer_claim_control_number from claim_payments where payer_claim_control_number is not null")]
    return MemoryHistory(lines, icns)


def _scrub(path: Path, history) -> list:
    """(findings, main segments) of each set scrubbed by the pure stage with `history`."""
    result = ScrubResult(str(path), "", None, None, FindingLog())
    with EnvelopeReader(path, path.name) as env:
        return [([f.to_dict() for f in s.findings], s.main) for s in
                scrub_items(env, result, history, AuthBook(), today=TODAY) if isinstance(s, ScrubbedSet)]


def _resent(src: Path, dest: Path, control: int) -> Path:
    """The file sent again earlier under new interchange control numbers (from `control`): its claims are
    history. Segments are read at the ISA's own delimiters (element text[3], terminator text[105])."""
    text = src.read_text(encoding="utf-8")
    sep, end = text[3], text[105]
    segs = text.split(end)
    for k, seg in enumerate(segs):
        tag, _, _ = seg.strip().partition(sep)
        if tag in ("ISA", "IEA"):
            e = seg.split(sep)
            if tag == "ISA":
                control += 1
                e[13] = f"{control % 10**9:09d}"
            else:
                e[2] = f"{control % 10**9:09d}"
            segs[k] = sep.join(e)
    dest.write_text(end.join(segs), encoding="utf-8", newline="")
    return dest


def test_store_and_memory_histories_give_the_same_findings(tmp_path):
    files = [f for f in sorted(FIXTURES.glob("837p-*.837")) + sorted(FIXTURES.glob("pair-*.837"))
             if "invalid" not in f.name and f.read_bytes().startswith(b"ISA")]
    store = Store(":memory:")
    try:
        for k, f in enumerate(files):
            assert ingest_file(_resent(f, tmp_path / f.name, 900_000_000 + 100 * k), store).claims
        for f in sorted(FIXTURES.glob("pair-*.835")):
            ingest_file(f, store)
        only_with_history = set()
        for f in files:
            sha = path_sha256(f)
            stored = _scrub(f, StoreHistory(store, exclude_file=sha))
            assert stored == _scrub(f, _memory_history(store, sha)), f.name
            without = {(d["rule"], d["message"]) for fs, _ in _scrub(f, MemoryHistory()) for d in fs}
            only_with_history |= {d["rule"] for fs, _ in stored for d in fs if (d["rule"], d["message"]) not in without}
        # the history is read: visits (sent_claims, visit_dates, procedure_units/lines) and remits on file
        assert {"DUPLICATE-CLAIM", "CORRECTED-NO-F8"} <= only_with_history
    finally:
        store.close()
