"""The store as a scrub's sink (scrub.scrubber.ScrubSink): the history, authorizations and NCCI imports the
rules read, and the rows a scrub records (emitted claims, authorization uses, findings, the file, and when
the store's `sends_as` names the corrected file as sent, the sets written to it), all in one staged store
transaction."""

from __future__ import annotations

import contextlib
import os
from typing import ContextManager

from edi_pipeline.scrub.scrubber import AuthBook, ScrubbedSet, ScrubResult
from edi_pipeline.store.history import StoreHistory
from edi_pipeline.store.ncci_tables import for_store
from edi_pipeline.tx.registry import Kind
from edi_pipeline.x12.isa import Isa, gs_control


class StoreScrubSink:
    """One scrub of the file with digest `sha` (named `name`) recorded in `store`; `write` False: read only."""

    def __init__(self, store, sha: str, name: str, write: bool = True):
        self.store, self.sha, self.name, self.write = store, sha, name, write
        self.history = StoreHistory(store, exclude_file=sha)
        auths = store.authorizations()
        uses = store.query("select auth_id, patient_control_number, units from auth_uses") if auths else ()
        self.auths = AuthBook(auths, ((u["auth_id"], u["patient_control_number"], u["units"]) for u in uses))
        self.ncci = for_store(store)
        self.sends_as = store.sends_as if write else None

    def transaction(self) -> ContextManager:
        return self.store.staged() if self.write else contextlib.nullcontext()

    def set_scrubbed(self, done: ScrubbedSet, findings_before: int) -> None:
        if not self.write:
            return
        self.store.save_claims(done.emitted, self.sha, "scrub", profile_of=done.profile_of)
        for auth_id, pcn, proc, line_no, units in done.auth_uses:
            self.store.use_authorization(auth_id, pcn, proc, line_no, units)
        self.store.save_findings([f.to_dict() for f in done.findings], self.sha, findings_before)
        if self.sends_as is not None and done.sent_at is not None:
            self.store.add_outbound_sets(*sent_set(done, self.sha, *self.sends_as))

    def file_scrubbed(self, result: ScrubResult, interchanges: dict[tuple[str, str], str]) -> None:
        if not self.write:
            return
        first = next(iter(interchanges))
        self.store.add_file(self.sha, self.name, Kind.CLAIM_837P.value, first[0] or None, first[1] or None, "scrub",
                            claims=result.claims_out)
        self.store.add_interchanges(self.sha, [(sender, control, kind)
                                               for (sender, control), kind in interchanges.items() if kind])


def sent_set(done: ScrubbedSet, sha: str, name: str, order: int | None = None) -> tuple[list[tuple], list[tuple]]:
    """The row of a set as written to the corrected file sent as `name` (made from the input of digest `sha`;
    `order`: the batch's order of that file), and its claims' rows, as Store.add_outbound_sets takes them:
    the control numbers as sent (ISA06/ISA08/ISA13, GS06, ST02), which the payer's 999 answers, and each
    CLM01 with its first REF*D9."""
    sep = done.tx.delimiters.element
    clm, d9 = "CLM" + sep, f"REF{sep}D9{sep}"
    pcns: dict[str, str | None] = {}
    pcn = None
    for text in done.main:
        if text.startswith(clm):
            pcn = (text.split(sep, 2) + [""])[1]
            pcns.setdefault(pcn, None)
        elif pcn is not None and text.startswith(d9):
            pcns[pcn] = pcns[pcn] or (text.split(sep) + ["", ""])[2] or None
    set_id = f"{sha}:{done.sent_at}"
    isa = Isa.of(done.tx.isa, sep)
    st02 = (done.main[0].split(sep) + ["", ""])[2].strip()
    return ([(set_id, sha, os.path.basename(name), isa.sender, isa.receiver, isa.control,
              gs_control(done.tx.gs, sep), st02, len(pcns), order)],
            [(set_id, p, trace) for p, trace in pcns.items() if p])


__all__ = ["StoreScrubSink", "sent_set"]
