"""Scrubbing an 837P: run the line rules, apply their corrections, split passed and held claims.

`scrub_file` reads the input once, runs the rules per transaction set, rebuilds only the claims that
changed (CLM02 = sum of SV102, LX renumbered, HL loops dropped and renumbered when a subscriber loses
every claim, SE/GE/IEA recounted by the writer) and writes:

- the corrected 837P: claims that passed or were corrected (unchanged claims byte-identical);
  an empty file when no claim survives;
- the rejects 837P (only when at least one claim is held): the held claims exactly as they came in,
  under the same envelope and header;
- through a `ScrubSink` (the store's is store.scrub_sink.StoreScrubSink): the emitted claims (origin
  "scrub"), the file, the findings and the authorization units used, in one transaction of the sink.

`scrub_items` is the stage itself: envelope items in, `ScrubbedSet`s out, writing nothing; `scrub_file`
composes it with the reader, the two outputs and the sink. It never prints; the CLI renders the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, Callable, Collection, ContextManager, Iterable, Iterator, Protocol

from edi_pipeline.codes.tables import CodeTables, PayerProfiles, load_profiles, load_tables
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.x12.segment import Segment
from edi_pipeline.core.errors import EdiError, Issue, IssueList, Severity
from edi_pipeline.tx.model import Claim
from edi_pipeline.tx.parse_837p import parse_claim, parse_837p
from edi_pipeline.tx.registry import Kind, kind_of, of_kind
from edi_pipeline.rules.engine import (Context, Finding, FindingLog, History, InsertSegments, MemoryHistory,
                                      RemoveModifiers, RemoveSegments, SetElement, SetProcedure, SetTotal, by_claim,
                                      line_date, run)
from edi_pipeline.core.files import path_sha256
from edi_pipeline.core.safe_text import store_text
from edi_pipeline.core.values import format_amount, to_decimal
from edi_pipeline.x12.isa import Isa, gs_control
from edi_pipeline.x12.writer import X12Writer, renumber_hl_at, renumber_lx
from edi_pipeline.core.files import atomic_output


class ScrubError(EdiError):
    """The input cannot be scrubbed (unreadable, truncated, or output would overwrite it)."""


@dataclass
class ScrubResult:
    file: str
    sha256: str
    out_path: str | None
    rejects_path: str | None  # None when no claim was held (no rejects file written)
    findings: FindingLog
    claims_in: int = 0
    claims_out: int = 0
    claims_held: int = 0
    claims_corrected: int = 0
    claims_emptied: int = 0  # every line removed by a correction (the session is billed elsewhere)
    transactions_dropped: int = 0
    seconds: float = 0.0
    issues: IssueList = field(default_factory=IssueList)
    # Claims held for errors in their own segments (a charge that is not a number...): no rule can
    # correct them, and the payer would reject them. Each: pcn, position and the first error.
    claims_invalid: list[dict] = field(default_factory=list)
    # Transaction sets passed to the rejects file unchanged: their 999 rejected them, or they are not 837P.
    sets_withheld: list[dict] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.claims_held > 0

    def summary(self) -> dict:
        by_rule = Counter(f.rule for f in self.findings)
        by_action = Counter(f.action for f in self.findings)
        by_rule_action: dict[str, dict[str, int]] = defaultdict(dict)
        for (r, a), n in Counter((f.rule, f.action) for f in self.findings).items():
            by_rule_action[r][a] = n
        return {
            "claims_in": self.claims_in, "claims_out": self.claims_out, "claims_held": self.claims_held,
            "claims_corrected": self.claims_corrected, "claims_emptied": self.claims_emptied,
            "transactions_dropped": self.transactions_dropped,
            "claims_invalid": len(self.claims_invalid), "sets_withheld": len(self.sets_withheld),
            "findings": len(self.findings),
            "by_rule": dict(sorted(by_rule.items())), "by_action": dict(sorted(by_action.items())),
            "by_rule_action": dict(sorted(by_rule_action.items())),
        }

    def report(self) -> dict:
        return {
            "file": os.path.basename(self.file),
            "output": self.out_path, "rejects": self.rejects_path,
            "findings": [f.to_dict() for f in self.findings],
            "claims_invalid": self.claims_invalid, "sets_withheld": self.sets_withheld,
            "summary": self.summary(),
        }

    def write_report(self, out: IO[str]) -> None:
        """The same JSON as report(), written finding by finding so no whole-report dict is built."""
        out.write("{\n")
        for key, value in (("file", os.path.basename(self.file)), ("output", self.out_path),
                           ("rejects", self.rejects_path)):
            out.write(f" {json.dumps(key)}: {json.dumps(value)},\n")
        out.write(' "findings": [')
        for k, f in enumerate(self.findings):
            out.write(("\n  " if k == 0 else ",\n  ") + json.dumps(f.to_dict()))
        out.write("\n ],\n" if self.findings else "],\n")
        out.write(f' "claims_invalid": {json.dumps(self.claims_invalid)},\n')
        out.write(f' "sets_withheld": {json.dumps(self.sets_withheld)},\n')
        out.write(f' "summary": {json.dumps(self.summary(), indent=1)}\n}}\n')


# ---------------------------------------------------------------- authorizations


class AuthBook:
    """Authorizations on file, loaded once per scrub; units are reserved as claims use them.
    `uses`: (auth id, patient control number, units) of each use recorded before."""

    def __init__(self, authorizations: Iterable[dict] = (), uses: Iterable[tuple[str, str, int | None]] = ()):
        self.rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.prior: dict[tuple[str, str], int] = defaultdict(int)  # (auth id, pcn) -> units used before
        self.reserved: dict[str, int] = defaultdict(int)
        for a in authorizations:
            self.rows[(a["member_id"], a["payer_id"])].append(a)
        for auth_id, pcn, units in uses:
            self.prior[(auth_id, pcn)] += units or 0

    def find(self, claim: Claim, lines) -> dict | None:
        """An authorization covering member, payer, every line's code and date, with units left."""
        cands = self.rows.get((store_text(claim.subscriber.member_id or ""), store_text(claim.payer.id or "")))
        if not cands:
            return None
        need = sum(int(ln.units or 1) for ln in lines)
        pcn = store_text(claim.patient_control_number)  # as auth_uses holds it
        for a in cands:
            codes = a["codes"].split()
            ok = all((ln.procedure in codes or "*" in codes)
                     and (d := line_date(claim, ln)) is not None and a["start_date"] <= d.isoformat() <= a["end_date"]
                     for ln in lines)
            left = a["units_left"] + self.prior.get((a["id"], pcn), 0) - self.reserved[a["id"]]
            if ok and left >= need:
                self.reserved[a["id"]] += need
                return a
        return None

    def release(self, finding: Finding) -> None:
        """Give back the units an AUTH-REQUIRED finding reserved, when its REF*G1 is not sent after all."""
        if finding.data and "auth" in finding.data:
            self.reserved[finding.data["auth"]["id"]] -= sum(units for _, _, units in finding.data["lines"])


# ---------------------------------------------------------------- applying edits


def apply_edits(claim: Claim, edits) -> list[str] | None:
    """The claim's segments with `edits` applied, CLM02 = sum of SV102 and LX renumbered;
    None when no service line is left. Elements change through x12.segment.Segment (with the claim's
    delimiters), never by splicing text."""
    base = claim.start
    segs = claim.segments[claim.start:claim.end]
    n = len(segs)
    removed = [False] * n
    inserts: dict[int, list[str]] = defaultdict(list)
    d = claim.delimiters
    edited: dict[int, Segment] = {}  # offset in segs -> the segment being edited
    for ed in edits:
        if isinstance(ed, (SetElement, SetProcedure, RemoveModifiers)):
            k = ed.offset - base
            seg = edited.get(k)
            if seg is None:
                seg = edited[k] = Segment(segs[k], d)
            ed.apply(seg)
        elif isinstance(ed, RemoveSegments):
            for k in range(ed.start - base, ed.end - base):
                removed[k] = True
        elif isinstance(ed, InsertSegments):
            inserts[ed.before - base].extend(ed.texts)
        elif isinstance(ed, SetTotal):
            pass  # CLM02 is recomputed below for every changed claim
        else:  # pragma: no cover
            raise TypeError(f"unknown edit {ed!r}")
    for k, seg in edited.items():
        segs[k] = seg.text
    out: list[str] = []
    for k in range(n + 1):
        if k in inserts:
            out.extend(inserts[k])
        if k < n and not removed[k]:
            out.append(segs[k])
    total = Decimal(0)
    lines = 0
    sv1 = "SV1" + d.element
    for text in out:
        if text.startswith(sv1):
            lines += 1
            total += to_decimal(Segment(text, d)["SV102"]) or Decimal(0)
    if not lines:
        return None
    out = renumber_lx(out, d)
    clm = Segment(out[0], d)
    clm["CLM02"] = format_amount(total)
    out[0] = clm.text
    return out


_KEEP = object()


def rebuild(tx: Transaction, claims: list[Claim], replace: dict[int, object]) -> list[str] | None:
    """The transaction's segments with claims replaced (a list), dropped (None) or kept (absent or _KEEP).
    HL loops left without claims are dropped and HL renumbered; None when no claim is left at all.
    A set where nothing changes is returned as it is."""
    if not replace:
        return tx.segments
    segs = tx.segments
    sep = tx.delimiters.element
    hlp = "HL" + sep
    out: list[str] = []
    marks: list[int] = []  # offsets in `out` of each HL and each surviving claim's CLM, for pruning
    pos = 0
    dropped = False

    def copy(start: int, stop: int) -> None:  # segments between claims: where the HL segments are
        base = len(out) - start
        marks.extend(base + k for k in range(start, stop) if segs[k].startswith(hlp))
        out.extend(segs[start:stop])

    for c in claims:
        copy(pos, c.start)
        r = replace.get(c.start, _KEEP)
        if r is None:
            dropped = True
        else:
            marks.append(len(out))
            out.extend(segs[c.start:c.end] if r is _KEEP else r)  # type: ignore[arg-type]
        pos = c.end
    copy(pos, len(segs))
    if not dropped:
        return out
    pruned = _prune(out, marks, sep)
    if pruned is None:
        return None
    out, hl_at = pruned
    if hl_at is not None:
        renumber_hl_at(out, hl_at, tx.delimiters)
    return out


def _prune(segs: list[str], marks: list[int], sep: str) -> tuple[list[str], list[int] | None] | None:
    """Drop 2000C/2000B loops without claims and 2000A loops without subscribers, given the offsets of
    the HL and CLM segments (`marks`, in order; others are ignored).
    Returns the segments and the offsets of the HL segments in them, or (segs, None) when no loop is
    dropped, or None when no subscriber or patient loop is left."""
    hlp, clm = "HL" + sep, "CLM" + sep
    hls = []  # [index, id, parent, level, has_claim]
    for i in marks:
        text = segs[i]
        if text.startswith(hlp):
            e = text.split(sep, 4)
            hls.append([i, e[1] if len(e) > 1 else "", e[2] if len(e) > 2 else "", e[3] if len(e) > 3 else "", False])
        elif hls and text.startswith(clm):
            hls[-1][4] = True
    if not hls:
        return segs, None
    end = len(segs) - 1 if segs[-1].startswith("SE" + sep) else len(segs)
    kept_child: Counter = Counter()
    keep = [True] * len(hls)
    for k in range(len(hls) - 1, -1, -1):
        _, hid, parent, level, has_claim = hls[k]
        if level in ("20", "22", "23"):
            ok = has_claim or kept_child[hid] > 0
        else:
            ok = True
        keep[k] = ok
        if ok and parent:
            kept_child[parent] += 1
    if not any(keep[k] for k in range(len(hls)) if hls[k][3] in ("22", "23")):
        return None
    if all(keep):
        return segs, None
    out = segs[:hls[0][0]]
    hl_at = []
    for k, h in enumerate(hls):
        if keep[k]:
            stop = hls[k + 1][0] if k + 1 < len(hls) else end
            hl_at.append(len(out))
            out.extend(segs[h[0]:stop])
    out.extend(segs[end:])
    return out, hl_at


# ---------------------------------------------------------------- the scrub


def scrub_date() -> date:
    """The date TIMELY-FILING counts to: $EDI_SCRUB_DATE (YYYY-MM-DD) when set, else today."""
    value = os.environ.get("EDI_SCRUB_DATE", "").strip()
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ScrubError(f"EDI_SCRUB_DATE {value!r} is not a date (YYYY-MM-DD)") from None


def default_output(path: str) -> str:
    return f"{path}.scrubbed.837"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _reparse(claim: Claim, segs: list[str], sep: str, comp: str) -> Claim:
    """A corrected claim as typed record (for the store), keeping the original's identity."""
    c, _ = parse_claim(None, segs, [claim.source.line] * len(segs), 0, len(segs), sep, comp,
                        claim.source.file, claim.source.segment_index, None)
    for name in ("claim_filing_indicator", "payer", "subscriber", "patient", "billing_provider",
                 "hl_billing", "hl_subscriber", "hl_patient", "delimiters"):
        setattr(c, name, getattr(claim, name))
    c.source = claim.source
    return c


@dataclass
class ScrubbedSet:
    """One transaction set, scrubbed: what goes to each output and to the sink."""

    tx: Transaction
    main: list[str] | None  # None: every claim held or emptied, the set is dropped
    rejects: list[str] | None  # None: no claim held
    findings: list[Finding]
    emitted: list[Claim]  # the claims written to `main`, corrected ones re-read (only when `typed`)
    auth_uses: list[tuple]  # (auth id, patient control number, procedure, line number, units)
    profile_of: Callable[[Claim], str] | None = None  # the payer profile's name of an emitted claim
    sent_at: int | None = None  # the segment index of its ST in the corrected file, once written there


class ScrubSink(Protocol):
    """What a scrub reads from and writes to besides its outputs: the store's is store.scrub_sink."""

    history: History
    auths: AuthBook
    ncci: object  # codes.ncci.Ncci

    def transaction(self) -> ContextManager:
        """Around the whole scrub: the rows written inside it are kept only if it ends without error."""

    def set_scrubbed(self, done: ScrubbedSet, findings_before: int) -> None:
        """One set's emitted claims, authorization uses and findings (numbered from `findings_before`)."""

    def file_scrubbed(self, result: ScrubResult, interchanges: dict[tuple[str, str], str]) -> None:
        """The file, once every set is scrubbed: (ISA06, ISA13) -> "837P" of each interchange in file order
        ("" for one without an 837P set)."""


class ScrubTee(Protocol):
    """Another stage reading the items of the same read (the batch's validation): it sees each item
    before the scrub does, may give the 837P sets' claims it parsed, and has the last word."""

    def start(self, env: EnvelopeReader) -> Iterable:
        """Before the first item, the reader the items come from; returns the items the scrub reads: the
        reader itself, or the reader's items as another stage reads them (ahead of the scrub)."""

    def feed(self, item: EnvelopeSegment | Transaction) -> None:
        """Each item read, before the scrub sees it."""

    def claims(self, tx: Transaction, issues: IssueList) -> list[Claim]:
        """The claims of the 837P set last fed, as parse_837p gives them; its parse issues go to `issues`."""

    def scrubbed(self, done: ScrubbedSet) -> None:
        """Each set as the scrub gives it out, its findings still attached to their claims."""

    def finish(self) -> None:
        """After the last item, inside the sink's transaction: raising undoes the whole scrub."""


class ScrubStore(Protocol):
    """A store a scrub can record itself in (store.store.Store)."""

    def scrub_sink(self, sha: str, name: str, write: bool) -> ScrubSink:
        """The sink of one scrub of the file with digest `sha`; with `write` False it only reads."""


def scrub_transaction(tx: Transaction, ctx: Context, result: ScrubResult, typed: bool,
                       invalid: frozenset[int] = frozenset(), report_only: bool = False) -> ScrubbedSet:
    """Run the rules over one transaction set and apply their corrections. With `typed`, corrected claims
    are re-read as typed records (the store keeps what was sent, not what came in). Claims whose id is
    in `invalid` (errors in their own segments) are held whatever the rules say. With `report_only`,
    findings keep their severity and action but lose their edits and holds, and every claim passes."""
    sep, comp = tx.delimiters.element, tx.delimiters.component
    claims = ctx.claims
    findings = run(ctx)
    if report_only:
        for f in findings:
            if f.edits or f.hold:
                if ctx.auths is not None:
                    ctx.auths.release(f)
                f.message += " (report only: not corrected)" if f.edits else " (report only: not held)"
                f.edits, f.hold = (), False
        invalid = frozenset()
    per_claim = by_claim(findings)
    held = set(invalid).union(id(f.claim) for f in findings if f.hold)  # findings are on the set's claims
    for f in findings:
        if f.edits and (id(f.claim) in held or any(id(r) in held for r in f.requires)):
            if ctx.auths is not None:
                ctx.auths.release(f)
            f.edits = ()
            f.action = "none"
            f.message += " (not corrected: claim held)" if id(f.claim) in held else \
                " (not corrected: the claim it depends on is held)"
    main_replace: dict[int, object] = {}
    rej_replace: dict[int, object] = {}
    emitted: list[Claim] = []
    auth_uses: list[tuple] = []
    for c in claims:
        fs = per_claim.get(id(c), ())
        if id(c) in held:
            result.claims_held += 1
            main_replace[c.start] = None
            continue
        rej_replace[c.start] = None
        edits = [ed for f in fs for ed in f.edits] if fs else fs
        if not edits:
            emitted.append(c)
            continue
        new = apply_edits(c, edits)
        main_replace[c.start] = new
        if new is None:
            result.claims_emptied += 1
            if ctx.auths is not None:
                for f in fs:
                    ctx.auths.release(f)
            continue
        result.claims_corrected += 1
        emitted.append(_reparse(c, new, sep, comp) if typed else c)
        for f in fs:
            if f.data and f.edits and "auth" in f.data:
                for line_no, proc, units in f.data["lines"]:
                    auth_uses.append((f.data["auth"]["id"], c.patient_control_number, proc, line_no, units))
    return ScrubbedSet(tx, rebuild(tx, claims, main_replace),
                       rebuild(tx, claims, rej_replace) if held else None,
                       findings, emitted, auth_uses, lambda c: ctx.profile(c).name)


def invalid_claims(claims: list[Claim], new_issues: list[Issue], result: ScrubResult) -> frozenset[int]:
    """Ids of the claims with an error in their own segments (from reading the set), recorded on `result`."""
    errors = [i for i in new_issues if i.severity is Severity.ERROR and i.pos.st_position]
    if not errors:
        return frozenset()
    starts = [c.start for c in claims]  # claims are in set order
    bad: dict[int, Issue] = {}
    for i in errors:
        k = bisect_right(starts, i.pos.st_position - 1) - 1  # the last claim starting at or before it
        if k >= 0 and i.pos.st_position <= claims[k].end:
            bad.setdefault(id(claims[k]), i)
    for c in claims:
        if id(c) in bad:
            i = bad[id(c)]
            result.claims_invalid.append({"patient_control_number": c.patient_control_number,
                                          "segment_index": c.source.segment_index, "line": c.source.line,
                                          "error": f"{i.code} {i.message}", "at": str(i.pos)})
    return frozenset(bad)


def _withhold(tx: Transaction, result: ScrubResult, isa13: str, gs06: str,
              reason: str = "rejected by its 999 (IK5 R or AK9 R)") -> ScrubbedSet:
    """A transaction set not to scrub or send (its 999 rejected it, or it is not an 837P): every claim
    held, the set copied to the rejects file as it came."""
    clm = "CLM" + tx.delimiters.element
    claims = sum(1 for text in tx.segments if text.startswith(clm))
    result.claims_in += claims
    result.claims_held += claims
    result.transactions_dropped += 1
    result.sets_withheld.append({"interchange": isa13, "group": gs06, "transaction_set": tx.control_number,
                                 "claims": claims, "reason": reason})
    return ScrubbedSet(tx, None, tx.segments, [], [], [])


# Defects that would make the corrected file itself broken (an overlong segment the reader skipped would be
# missing from it).
UNWRITABLE = frozenset(("ENV-GE-MISSING", "ENV-IEA-MISSING", "ENV-OUTSIDE", "SEG-TOO-LONG"))


def scrub_file(path: str | os.PathLike, out_path: str | os.PathLike | None = None,
               rejects_path: str | os.PathLike | None = None, store: ScrubStore | None = None,
               profiles: PayerProfiles | None = None, tables: CodeTables | None = None,
               sha256: str | None = None, withheld: Collection[tuple[int, str, str]] = (),
               name: str | None = None, today: date | None = None, report_only: bool = False,
               tee: ScrubTee | None = None, data: bytes | None = None) -> ScrubResult:
    """Scrub one 837P file; see the module docstring. Raises ScrubError / EdiError when unreadable.
    `store` gives the history the rules read and records the scrub (its `scrub_sink`); None: no history,
    nothing recorded. `sha256` is the file's digest when the caller has already read it; `name` names the
    input in messages, the report and the store (default: `path`; `<stdin>` for a copy of stdin). The
    transaction sets named in `withheld` as (ISA segment index in the file, GS06, ST02), the ones a 999
    rejected, go to the rejects file unchanged: the sender will correct and resend them, so none of their
    claims may go out or into the store. `today` is the scrub date TIMELY-FILING counts to (default:
    scrub_date()). `report_only`: the same findings, but no rule corrects or holds a claim: the output
    holds the input's claims as they came, and the store is only read. `tee`: another stage fed the
    same read (see ScrubTee). `data`: the file's bytes when the caller has read them already (then
    nothing reads `path`, which names where they came from).

    The file is read, scrubbed and written one transaction set at a time: memory holds one set (and the
    findings so far), not the file. Both outputs go to temporary files renamed into place at the end
    and the sink's rows go into one transaction, so a failure part way leaves nothing behind."""
    t0 = time.perf_counter()
    path = str(path)
    name = name or path
    out_path = str(out_path) if out_path is not None else default_output(path)
    rejects_path = str(rejects_path) if rejects_path is not None else f"{path}.rejects.837"
    for target in (out_path, rejects_path):
        if target != "-" and _same_file(target, path):
            raise ScrubError(f"{name}:0: output {target} would overwrite the input")
    sha = sha256 or (path_sha256(path) if data is None else hashlib.sha256(data).hexdigest())
    sink = store.scrub_sink(sha, name, write=not report_only) if store is not None else None
    result = ScrubResult(name, sha, out_path, None, FindingLog())
    interchanges: dict[tuple[str, str], str] = {}
    with contextlib.ExitStack() as stack:
        if sink is not None:
            stack.enter_context(sink.transaction())
        main_fh = stack.enter_context(atomic_output(out_path))  # written even when no claim survives
        main = X12Writer(main_fh, lazy=True)
        rejects = X12Writer(lazy=True, open_file=lambda: stack.enter_context(atomic_output(rejects_path)))
        env = stack.enter_context(EnvelopeReader(path if data is None else data, name))
        items: Iterable = env
        if tee is not None:
            items = _teed(tee.start(env), tee)
        for item in scrub_items(items, result, sink.history if sink else MemoryHistory(),
                                sink.auths if sink else AuthBook(), sink.ncci if sink else None,
                                profiles, tables, withheld, today, report_only,
                                typed=sink is not None and not report_only,
                                interchanges=interchanges, parse=tee.claims if tee is not None else None):
            if isinstance(item, EnvelopeSegment):
                main.envelope(item)
                rejects.envelope(item)
                continue
            if item.main is not None:
                item.sent_at = main.transaction(item.tx, item.main)
            if item.rejects is not None:
                rejects.transaction(item.tx, item.rejects)
            if sink is not None and item.profile_of is not None:
                sink.set_scrubbed(item, len(result.findings))
            if tee is not None:
                tee.scrubbed(item)
            for f in item.findings:
                f.detach()  # the report keeps the findings, not the transaction set
            result.findings.extend(item.findings)
            del item  # free the set before reading the next one
        broken = [i for i in env.issues.errors if i.code in UNWRITABLE]
        if broken:
            raise ScrubError(f"{broken[0]}; nothing written")
        if Kind.CLAIM_837P.value not in interchanges.values():
            raise ScrubError(f"{name}:1: no 837P transaction set in the file; nothing written")
        if rejects.fh is not None:
            result.rejects_path = rejects_path
        if tee is not None:
            tee.finish()
        if sink is not None:
            sink.file_scrubbed(result, interchanges)
    result.seconds = time.perf_counter() - t0
    return result


def _teed(items: Iterable, tee: ScrubTee) -> Iterator:
    for item in items:
        tee.feed(item)
        yield item


def scrub_items(items: Iterable, result: ScrubResult, history: History, auths: AuthBook, ncci=None,
                profiles: PayerProfiles | None = None, tables: CodeTables | None = None,
                withheld: Collection[tuple[int, str, str]] = (), today: date | None = None,
                report_only: bool = False, typed: bool = False,
                interchanges: dict[tuple[str, str], str] | None = None,
                parse: Callable[[Transaction, IssueList], list[Claim]] | None = None
                ) -> Iterator[EnvelopeSegment | ScrubbedSet]:
    """The scrub stage: envelope items (EnvelopeReader's) in; each envelope segment passed on and each
    transaction set out as a ScrubbedSet (an 837P scrubbed, a withheld set as it came; other sets left
    out). Counts and issues go to `result`; `interchanges` gets (ISA06, ISA13) -> "837P" once a set of it
    is read ("" before). Findings are not added to `result`: the caller does, after using them. With
    `typed`, corrected claims are re-read as typed records (for a store). `parse` gives a set's claims
    when another stage has parsed them already (default: parse_837p). Writes nothing."""
    tables = tables or load_tables()
    profiles = profiles or load_profiles()
    today = today or scrub_date()
    issues = result.issues
    name = result.file
    interchanges = {} if interchanges is None else interchanges
    isa06 = isa13 = gs06 = ""  # of the open interchange and group
    isa_index = 0  # file segment index of the open interchange's ISA
    for item in items:
        if isinstance(item, EnvelopeSegment):
            e = item.elements
            if item.tag == "ISA":
                isa = Isa.of(e)
                isa06, isa13 = isa.sender, isa.control
                isa_index = item.index
                interchanges.setdefault((isa06, isa13), "")
            elif item.tag == "GS":
                gs06 = gs_control(e)
            yield item
            continue
        tx = item
        if not tx.complete:
            raise ScrubError(f"{name}:{tx.lines[-1]}: transaction set {tx.control_number} is truncated "
                             f"(no SE trailer); nothing written")
        if kind_of(tx) is not Kind.CLAIM_837P:
            if tx.set_id == of_kind(Kind.CLAIM_837P).st01:  # institutional or dental claims: not ours, never dropped
                issues.append(Issue("ENV-NOT-837P", f"transaction set {tx.control_number} is an 837 "
                                    f"{tx.version}, not an 837P; held unchanged in the rejects file",
                                    tx.position(0, None, "ST03"), Severity.WARNING))
                yield _withhold(tx, result, isa13, gs06, f"an 837 {tx.version}, not an 837P (005010X222)")
                continue
            # an 835 beside the claims: not ours to correct (batch ingests it), left out of the output
            issues.append(Issue("ENV-NOT-837P", f"transaction set {tx.control_number} ({tx.set_id}) is not "
                                "an 837P; left out of the corrected file", tx.position(0), Severity.WARNING))
            continue
        interchanges[isa06, isa13] = Kind.CLAIM_837P.value
        if (isa_index, gs06, tx.control_number.strip()) in withheld:
            yield _withhold(tx, result, isa13, gs06)
            del tx, item
            continue
        first_issue = len(issues)
        claims = parse(tx, issues) if parse is not None else list(parse_837p(tx, issues))
        ctx = Context(claims, tables, profiles, history, auths, today=today, ncci_tables=ncci)
        result.claims_in += len(ctx.claims)
        invalid = invalid_claims(ctx.claims, issues[first_issue:], result)
        done = scrub_transaction(tx, ctx, result, typed=typed, invalid=invalid, report_only=report_only)
        if done.main is None:
            result.transactions_dropped += 1
        result.claims_out += len(done.emitted)
        del tx, ctx, item, claims
        yield done
        del done  # free the set before reading the next one


__all__ = ["ScrubError", "ScrubResult", "ScrubbedSet", "ScrubSink", "ScrubStore", "ScrubTee", "scrub_file", "scrub_items", "scrub_date", "apply_edits", "rebuild", "AuthBook",
           "default_output", "scrub_transaction", "invalid_claims", "UNWRITABLE"]
