"""The visit history a scrub reads (rules.engine.History) answered from the SQLite store: the claims of
every other file, and the payer claim control numbers of the remits on file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Iterable

from edi_pipeline.core.values import from_cents
from edi_pipeline.rules.engine import CachedHistory, line_key


class StoreHistory(CachedHistory):
    """History from `store` (a store.Store), leaving out the file being scrubbed (`exclude_file`, its digest).
    A member's dates for a code set are read once, whatever the windows asked for later."""

    def __init__(self, store, exclude_file: str | None = None):
        super().__init__()
        self.store = store
        self.exclude_file = exclude_file

    def _empty(self) -> bool:
        return not list(self.store.query("select 1 from claims where file_sha256 != ? limit 1",
                                         [self.exclude_file or ""]))

    def _visit_dates(self, member: str, codes: frozenset[str]) -> Iterable[date]:
        return self.store.visit_dates(member, codes, date.min, date.max, exclude_file=self.exclude_file)

    def _procedure_lines(self, member: str, code: str) -> Iterable[tuple[date, str]]:
        return self.store.procedure_dates(member, code, date.min, date.max, exclude_file=self.exclude_file)

    def procedure_units(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str, Decimal]]:
        if self.empty():
            return []
        return self.store.procedure_units(member, code, since, until, exclude_file=self.exclude_file)

    def _sent(self, member: str) -> list[tuple[str, tuple]]:
        claims: dict[str, tuple[str, list]] = {}
        for r in self.store.query(
                "select c.id, c.patient_control_number, l.service_date, l.procedure, l.charge_cents "
                "from claims c join claim_lines l on l.claim_id = c.id "
                "where c.member_hash = ? and c.file_sha256 != ? and coalesce(c.frequency_code, '1') != '8' "
                "and c.patient_control_number not in "
                "(select patient_control_number from claims where frequency_code = '8' and member_hash = ?)",
                [member, self.exclude_file or "", member]):
            d = date.fromisoformat(r["service_date"]) if r["service_date"] else None
            line = (d, r["procedure"], from_cents(r["charge_cents"]))
            claims.setdefault(r["id"], (r["patient_control_number"], []))[1].append(line)
        return [(pcn, tuple(sorted(lines, key=line_key))) for pcn, lines in claims.values()]

    def payer_claim_known(self, icn: str) -> bool:
        return bool(list(self.store.query(
            "select 1 from claim_payments where payer_claim_control_number = ? limit 1", [icn])))


__all__ = ["StoreHistory"]
