"""The store as a scrub's sink (scrub.scrubber.ScrubSink): the history, authorizations and NCCI imports the
rules read, and the rows a scrub records (emitted claims, authorization uses, findings, the file), all in
one staged store transaction."""

from __future__ import annotations

import contextlib
from typing import ContextManager

from edi_pipeline.scrub.scrubber import AuthBook, ScrubbedSet, ScrubResult
from edi_pipeline.store.history import StoreHistory
from edi_pipeline.store.ncci_tables import for_store
from edi_pipeline.tx.registry import Kind


class StoreScrubSink:
    """One scrub of the file with digest `sha` (named `name`) recorded in `store`; `write` False: read only."""

    def __init__(self, store, sha: str, name: str, write: bool = True):
        self.store, self.sha, self.name, self.write = store, sha, name, write
        self.history = StoreHistory(store, exclude_file=sha)
        auths = store.authorizations()
        uses = store.query("select auth_id, patient_control_number, units from auth_uses") if auths else ()
        self.auths = AuthBook(auths, ((u["auth_id"], u["patient_control_number"], u["units"]) for u in uses))
        self.ncci = for_store(store)

    def transaction(self) -> ContextManager:
        return self.store.staged() if self.write else contextlib.nullcontext()

    def set_scrubbed(self, done: ScrubbedSet, findings_before: int) -> None:
        if not self.write:
            return
        self.store.save_claims(done.emitted, self.sha, "scrub", profile_of=done.profile_of)
        for auth_id, pcn, proc, line_no, units in done.auth_uses:
            self.store.use_authorization(auth_id, pcn, proc, line_no, units)
        self.store.save_findings([f.to_dict() for f in done.findings], self.sha, findings_before)

    def file_scrubbed(self, result: ScrubResult, interchanges: dict[tuple[str, str], str]) -> None:
        if not self.write:
            return
        first = next(iter(interchanges))
        self.store.add_file(self.sha, self.name, Kind.CLAIM_837P.value, first[0] or None, first[1] or None, "scrub",
                            claims=result.claims_out)
        self.store.add_interchanges(self.sha, [(sender, control, kind)
                                               for (sender, control), kind in interchanges.items() if kind])


__all__ = ["StoreScrubSink"]
