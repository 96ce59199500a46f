"""The scrub of one member's claims (a Spark group), with the rules the local scrubber runs.

A member's claims from every input file come in together. They are scrubbed file by file in the batch's
order (sorted names), each transaction set by `scrubber.scrub_transaction` over the member's claims of that
set, with a `MemberHistory` in place of the store: the claims earlier files sent (as the batch's store holds
them once those files are done), plus an optional history table. Sessions, duplicate checks and visit
counts are all per member, so the findings and corrected claims are those of the local batch.
"""

from __future__ import annotations

import pickle
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import groupby
from types import SimpleNamespace

from edi_pipeline.codes.tables import CodeTables, PayerProfiles
from edi_pipeline.rules.engine import Context, by_claim, line_key
from edi_pipeline.scrub.scrubber import AuthBook, ScrubResult, scrub_transaction
from edi_pipeline.spark.rows import match_lines, own_segments, wide_money
from edi_pipeline.tx.model import Claim

SENT, HELD, EMPTIED, WITHHELD = "sent", "held", "emptied", "withheld"


@dataclass(frozen=True, slots=True)
class SentLine:
    """One service line of a claim sent before (a store claim_lines row, as History reads it)."""

    claim: str  # the claim's key (file and position): lines of one claim share it
    patient_control_number: str
    frequency_code: str | None
    service_date: date | None
    procedure: str
    units: Decimal | None
    charge: Decimal | None


def sent_lines(claim: Claim, key: str) -> list[SentLine]:
    """A sent claim's lines as the store keeps them (a line's date, else the claim's)."""
    return [SentLine(key, claim.patient_control_number, claim.frequency_code, ln.service_date or claim.service_date,
                     ln.procedure, ln.units, None if ln.charge is None else ln.charge.quantize(Decimal("0.01")))
            for ln in claim.lines]


class MemberHistory:
    """rules.engine.History for one member, read from the lines of the claims sent before this file.

    Same answers as History over a store holding those claims. It stands in for the store too
    (`store` is itself): CORRECTED-NO-F8 asks payer_claim_known (no remit is on file before the
    batch's 837P phase ends), and ncci.for_store reads `path` (no imported NCCI tables)."""

    path = ":memory:"

    def __init__(self, lines: list[SentLine]):
        self.store = self
        self.lines = [ln for ln in lines if (ln.frequency_code or "1") != "8"]
        self.voided = {ln.patient_control_number for ln in lines if ln.frequency_code == "8"}
        self.file_exact: dict[int, str] = {}
        self.file_lines: dict[int, str] = {}

    def _dated(self, codes) -> list[SentLine]:
        return [ln for ln in self.lines if ln.procedure in codes and ln.service_date is not None]

    def visit_dates(self, member: str, codes: frozenset[str], since: date, until: date) -> set[date]:
        return {ln.service_date for ln in self._dated(codes) if since <= ln.service_date <= until}

    def procedure_units(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str, Decimal]]:
        return [(ln.service_date, ln.patient_control_number, Decimal(1) if ln.units is None else ln.units)
                for ln in self._dated((code,)) if since <= ln.service_date <= until]

    def procedure_lines(self, member: str, code: str, since: date, until: date) -> list[tuple[date, str]]:
        rows = sorted((d, pcn) for d, pcn, _ in self.procedure_units(member, code, date.min, date.max))
        return rows[bisect_left(rows, (since,)):bisect_right(rows, (until, "\uffff"))]

    def sent_claims(self, member: str, dates: set[date]) -> list[tuple[str, tuple]]:
        claims: dict[str, tuple[str, list]] = {}
        for ln in self.lines:
            if ln.patient_control_number not in self.voided:
                claims.setdefault(ln.claim, (ln.patient_control_number, []))[1].append(
                    (ln.service_date, ln.procedure, ln.charge))
        every = [(pcn, tuple(sorted(lines, key=line_key))) for pcn, lines in claims.values()]
        return [(pcn, lines) for pcn, lines in every if any(x[0] in dates for x in lines)]

    def payer_claim_known(self, icn: str) -> bool:
        return False


def _joined(claims: list[Claim]) -> list[str]:
    """The claims' own segments one after another; each claim's offsets moved to its place in them."""
    segs: list[str] = []
    for c in claims:
        shift = len(segs)
        segs.extend(c.segments)
        c.segments = segs
        c.start += shift
        c.end += shift
        for ln in c.lines:
            ln.start += shift
            ln.end += shift
    return segs


def scrub_member(rows: list[dict], tables: CodeTables, profiles: PayerProfiles, today: date,
                 history: list[SentLine] = ()) -> tuple[list[dict], list[dict]]:
    """Findings and claim outcomes of one member's `rows` (scrub_input rows, any order)."""
    findings: list[dict] = []
    outcomes: list[dict] = []
    sent = list(history)
    rows = sorted(rows, key=lambda r: (r["file_order"], r["segment_index"]))
    for _, in_file in groupby(rows, key=lambda r: r["file_order"]):
        hist = MemberHistory(sent)
        auths = AuthBook()
        emitted_here: list[SentLine] = []
        for _, in_set in groupby(in_file, key=lambda r: r["st_index"]):
            in_set = list(in_set)
            loaded = [pickle.loads(r["claim"]) for r in in_set]
            claims = [c for c, _ in loaded]
            delims = loaded[0][1]
            name = in_set[0]["file"]
            if in_set[0]["withheld"]:
                outcomes += [_outcome(r, c, WITHHELD, None) for r, c in zip(in_set, claims)]
                continue
            tx = SimpleNamespace(segments=_joined(claims), delimiters=delims)
            invalid = frozenset(id(c) for r, c in zip(in_set, claims) if r["invalid"])
            ctx = Context(claims, tables, profiles, hist, auths, today=today)
            result = ScrubResult(name, "", None, None, [])
            done = scrub_transaction(tx, ctx, result, typed=True, invalid=invalid)
            per_claim = by_claim(done.findings)
            out = {c.source.segment_index: c for c in done.emitted}
            end = delims.segment + delims.suffix
            for r, c in zip(in_set, claims):
                fs = per_claim.get(id(c), ())
                findings += [dict(file=name, file_order=r["file_order"], claim_segment_index=r["segment_index"],
                                  **f.to_dict()) for f in fs]
                new = out.get(r["segment_index"])
                if new is not None:
                    lines = sent_lines(new, f"{name}:{r['segment_index']}")
                    outcomes.append(_outcome(r, c, SENT, "".join(s + end for s in new.raw), new, lines))
                    emitted_here += lines
                else:
                    held = id(c) in invalid or any(f.hold for f in fs)
                    outcomes.append(_outcome(r, c, HELD if held else EMPTIED, None))
        sent += emitted_here
    return findings, outcomes


def _outcome(row: dict, claim: Claim, status: str, x12: str | None, sent: Claim | None = None,
             lines: list[SentLine] = ()) -> dict:
    """A claim's outcome; a sent one keeps what reconcile and the history table need of it: the claim as
    sent (pickled, own segments only), its lines (for the history, and as line matching reads them), and
    as the store keeps them its payer (the name, else the id), its CLM02 and its date (the claim's, else
    its first dated line's)."""
    first = None if sent is None else (sent.service_date or next((ln.service_date for ln in sent.lines
                                                                  if ln.service_date), None))
    return {"file": row["file"], "file_order": row["file_order"], "segment_index": row["segment_index"],
            "patient_control_number": claim.patient_control_number, "status": status, "x12": x12,
            "invalid": row["invalid"], "frequency_code": claim.frequency_code,
            "payer_claim_control_number": claim.payer_claim_control_number,
            "payer": None if sent is None else sent.payer.name or sent.payer.id, "service_date": first,
            "charge": None if sent is None else wide_money(sent.total_charge),
            "claim": None if sent is None else pickle.dumps(own_segments(sent), protocol=pickle.HIGHEST_PROTOCOL),
            "lines": None if sent is None else match_lines(sent), "sent_lines": list(lines)}
