"""Validation of one file: syntax and envelopes, TR3 via pyx12's maps, and the checks.py checks."""

from __future__ import annotations

import itertools
import os
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from edi_pipeline.validate import checks
from edi_pipeline.tx.document import check_version
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment, Transaction
from edi_pipeline.x12.isa import Isa
from edi_pipeline.core.errors import EdiError, Issue, IssueList, Position, Severity
from edi_pipeline.tx.model import Claim, ClaimPayment
from edi_pipeline.tx.registry import lookup
from edi_pipeline.core.paths import PLAIN_LIMIT, AckNames, output_path, safe_name
from edi_pipeline.tr3.reference import GroupAck, ta1_text
from edi_pipeline.tr3.compiled import SetValidation, validate_tr3_fast
from edi_pipeline.core.files import atomic_output, file_lock
from edi_pipeline.x12.reader import reader_text


# Envelope-reader codes that are interchange (TA1) errors, with their TA105 note codes.
TA1_NOTE_OF = {"ENV-IEA01": "021", "ENV-IEA02": "001", "ENV-IEA-MISSING": "023", "ENV-IEA-INVALID": "022"}


def ta1_note(issue: Issue) -> str | None:
    """The TA105 note code of an interchange-level error, else None."""
    if issue.severity is not Severity.ERROR:
        return None
    if issue.code.startswith("TA1-"):
        return issue.code[4:]
    return TA1_NOTE_OF.get(issue.code)


@dataclass
class Interchange:
    """One ISA..IEA of the file, as its TA1 answers it."""

    isa: list[str]  # the ISA's elements
    index: int  # the ISA's segment index in the file
    errors: list[Issue] = field(default_factory=list)  # its interchange-level (TA1) errors

    @property
    def control_number(self) -> str:
        return Isa.of(self.isa).control

    @property
    def note(self) -> str:
        """TA105: the first error's note code (every error in `errors` has one), or 000 (accepted)."""
        return (ta1_note(self.errors[0]) or "024") if self.errors else "000"

    @property
    def wants_ta1(self) -> bool:
        """A TA1 answers an interchange with errors, and one that asks for it (ISA14 = 1)."""
        return bool(self.errors) or Isa.of(self.isa).ack_requested


@dataclass
class Validation:
    file: str
    issues: IssueList = field(default_factory=IssueList)
    acks: list[GroupAck] = field(default_factory=list)
    interchanges: list[Interchange] = field(default_factory=list)
    transactions: int = 0
    claims: int = 0
    payments: int = 0
    segments: int = 0  # read (the last one's index)

    def rejected_interchanges(self) -> list[Interchange]:
        return [x for x in self.interchanges if x.errors]

    def acks_to_send(self) -> list[GroupAck]:
        """The 999s, less those of groups in an interchange a TA1 rejects (its content is not taken)."""
        rejected = {x.index for x in self.rejected_interchanges()}
        return [a for a in self.acks if a.interchange_index not in rejected]

    @property
    def ok(self) -> bool:
        return not self.issues.errors

    def rejected_sets(self) -> set[tuple[int, str, str]]:
        """(ISA segment index, GS06, ST02) of every transaction set a 999 of this file rejects."""
        return {(a.interchange_index, a.group_control_number.strip(), st02)
                for a in self.acks for st02 in a.rejected_sets}

    def to_dict(self) -> dict:
        return {"file": self.file, "ok": self.ok, "transactions": self.transactions, "claims": self.claims,
                "claim_payments": self.payments,
                "groups": [{"control_number": a.group_control_number, "type": a.transaction_type,
                            "accepted": a.accepted} for a in self.acks],
                "issues": [i.to_dict() for i in self.issues]}


# pyx12 codes for defects the envelope reader has already reported
_SAME_AS = {"IK5-4": "IK5-4", "IK5-2": "ENV-SE-MISSING", "AK9-3": "ENV-GE-MISSING",
            "TA1-023": "ENV-IEA-MISSING", "ENV-TRUNCATED": "SYN-NO-TERMINATOR", "ENV-ISA-LENGTH": "ENV-ISA-LENGTH",
            "IK5-23": "IK5-23", "TA1-025": "TA1-025", "AK9-6": "AK9-6"}


class ValidationPass:
    """validate_file's work fed the envelope reader's items one at a time (`feed`), so a caller reading
    the file for another stage validates it in the same read; `finish` gives the Validation. The claims
    of the last 837P set fed, and the issues their parse found, stay in `claims`/`claim_issues` until the
    next set, for a stage that needs them too."""

    def __init__(self, name: str, by_set: bool | None = None, reader_issues: IssueList | None = None):
        self.name = name
        self.by_set = by_set
        self.reader_issues = reader_issues
        self.reader_name: str | None = None  # the file name of the reader fed, when not `name`
        self._rejected = False
        self._marks = (0, 0)  # len(reader_issues), len(SetValidation.issues) after the last set fed
        self.result = Validation(name)
        self.sets = SetValidation(name) if by_set is not False else None  # TR3 set by set, in the same read
        self.claims: list[Claim] = []
        self.claim_issues: list[Issue] = []

    def feed(self, item: EnvelopeSegment | Transaction, reader_mark: int | None = None,
             walked: tuple[list, list] | None = None) -> None:
        """The envelope reader's, the parsers' and the balancing checks of one item. A caller reading
        ahead of the feed (pipeline.split) gives `reader_mark`, len(reader_issues) when the item was
        read, and a set's TR3 walk made elsewhere (`walked`, see SetValidation.feed)."""
        result, issues = self.result, self.result.issues
        if reader_mark is None:
            reader_mark = len(self.reader_issues or ())
        if self.sets is not None:
            self.sets.feed(item, walked)
        if isinstance(item, EnvelopeSegment):
            self._marks = (reader_mark, len(self.sets.issues) if self.sets else 0)
            result.segments = item.index
            if item.tag == "ISA":
                result.interchanges.append(Interchange(item.elements, item.index))
            return
        result.segments = item.first_index + len(item.segments) - 1
        result.transactions += 1
        own = len(issues)
        check_version(item, issues)
        self.claims = []
        tt = lookup(item)
        if tt is not None and tt.checks:  # the type's own checks, as the registry names them
            first = len(issues)
            records = list(_counted(tt.parse(item, issues), result))
            self.claims = [r for r in records if isinstance(r, Claim)]
            self.claim_issues = list(issues[first:]) if self.claims else []
            for check in tt.checks:
                getattr(checks, check)(records, issues)
        reader, tr3 = self._marks
        self._marks = (reader_mark, len(self.sets.issues) if self.sets else 0)
        found = itertools.chain(issues[own:], (self.reader_issues or [])[reader:reader_mark],
                                self.sets.issues[tr3:] if self.sets else ())
        self._rejected = any(i.severity is Severity.ERROR for i in found)

    def set_rejected(self) -> bool:
        """Whether the last set fed has an error (TR3's, ours, or `reader_issues`', the envelope reader's
        list): its 999 rejects it unless its group's trailer changes the verdict (finish() says for sure)."""
        return self._rejected

    def claims_of(self, tx: Transaction, issues: IssueList) -> list[Claim]:
        """The claims of `tx`, the 837P set last fed, as its parse gave them; the parse's issues are
        added to `issues` (scrub.ScrubTee.claims)."""
        issues.extend(self.claim_issues)
        return self.claims

    def unreadable(self, exc: EdiError) -> Validation:
        """The Validation of a file the reader could not read on (`exc`, from the envelope reader)."""
        pos = getattr(exc, "pos", None) or Position(self.name)
        self.result.issues.append(Issue("ENV-UNREADABLE", str(exc).replace(f"{pos} ", ""), pos))
        return self.result

    def finish(self, env_issues: Iterable[Issue], path: str | os.PathLike | None = None,
               data: bytes | None = None) -> Validation:
        """The Validation, once every item is fed and the reader's own issues are known (`env_issues`);
        `path` or `data` is read again only when the whole text is walked at once (see validate_file)."""
        result, sets, by_set = self.result, self.sets, self.by_set
        result.issues.extend(env_issues)
        if self.reader_name not in (None, self.name):  # read under another stage's name: named as validate names it
            result.issues[:] = [replace(i, pos=replace(i.pos, file=self.name)) if i.pos.file == self.reader_name
                                else i for i in result.issues]
        self.sets = None
        if by_set is None:  # (the whole text would hold a segment the reader skipped as too long)
            by_set = result.segments > LARGE_SEGMENTS or data is None and (
                os.path.getsize(path) > LARGE_FILE or result.issues.has("SEG-TOO-LONG")
                or not any(i.code.startswith(_WHOLE_WALK_FINDINGS) for i in result.issues))
        if by_set:  # (sets is made unless by_set is False)
            tr3 = sets.result()
        else:
            del sets  # walked whole instead: let its results go first
            if data is None:
                data = Path(path).read_bytes()
            text = reader_text(data.decode("utf-8", errors="replace"),
                               upper_ids=result.issues.has("SYN-LOWERCASE"))
            tr3 = validate_tr3_fast(text, self.name)
        tr3.reject_for(result.issues)  # a set our own checks reject is rejected by its 999 too
        seen = {(i.pos.segment_index, i.code) for i in result.issues}
        ours = {i.code for i in result.issues}
        for issue in tr3.issues:
            if _SAME_AS.get(issue.code) in ours or (issue.pos.segment_index, issue.code) in seen:
                continue
            result.issues.append(issue)
        result.acks = tr3.groups
        result.issues.sort(key=lambda i: (i.pos.segment_index, i.pos.element or ""))
        _assign_interchange_errors(result)
        return result


def _counted(records, result: Validation):
    """The records, counting claims and claim payments into `result` as they pass."""
    for rec in records:
        if isinstance(rec, Claim):
            result.claims += 1
        elif isinstance(rec, ClaimPayment):
            result.payments += 1
        yield rec


# Files larger than this, or of more segments, are validated one transaction set at a time, in memory
# bounded by the largest set (the whole walk holds about 470 bytes a segment: 470 MB for a million).
LARGE_FILE = 32 << 20
LARGE_SEGMENTS = 200_000
# Reader findings (envelope and syntax) under which walking the whole text adds pyx12's own interchange-
# and group-level codes. A file without any gets the same issues and 999s set by set, in a fraction of
# the memory (pinned by tests over the fixtures and the corpus), so it is validated that way.
_WHOLE_WALK_FINDINGS = ("ENV-", "TA1-", "SYN-")


def validate_file(path: str | os.PathLike, name: str | None = None, data: bytes | None = None, *,
                  by_set: bool | None = None) -> Validation:
    """Validate a file; never raises for bad content (unreadable input becomes an Issue).

    `by_set` validates each transaction set inside its own envelope instead of the whole text at once;
    the envelope reader checks the trailers either way. Default: for input of over LARGE_SEGMENTS
    segments, and for a file (not `data`) over LARGE_FILE, with a segment too long to read, or whose
    envelope the reader found sound.
    """
    name = name or os.fspath(path)
    run = ValidationPass(name, by_set)
    with EnvelopeReader(data if data is not None else path, name) as env:
        try:
            for item in env:
                run.feed(item)
        except EdiError as exc:
            run.result.issues.extend(env.issues)
            return run.unreadable(exc)
        return run.finish(env.issues, path, data)


def _assign_interchange_errors(result: Validation) -> None:
    """Each interchange-level error goes to the interchange it lies in (the last ISA at or before it)."""
    starts = [x.index for x in result.interchanges]
    for issue in result.issues:
        if starts and ta1_note(issue) is not None:
            k = max(bisect_right(starts, issue.pos.segment_index or 0) - 1, 0)
            result.interchanges[k].errors.append(issue)


SEQUENCE_NAME = ".edi-pipeline-control-number"


def take_control_numbers(ack_dir: Path, count: int) -> list[int]:
    """`count` interchange control numbers never handed out before for acknowledgments written to
    `ack_dir`: the last one is kept in ACK_DIR/.edi-pipeline-control-number, read and advanced under a
    lock, so reruns and parallel workers never reuse one. 1 after 999999999. EdiError when the file is
    damaged."""
    if count <= 0:
        return []
    ack_dir.mkdir(parents=True, exist_ok=True)
    seq = ack_dir / SEQUENCE_NAME
    with file_lock(ack_dir / f"{SEQUENCE_NAME}.lock"):
        try:
            text = seq.read_text().strip()
        except FileNotFoundError:
            text = "0"
        if not text.isdigit():  # never restart silently: the numbers already sent would be reused
            raise EdiError(f"{seq}:1: the control-number sequence is damaged ({len(text)} characters, not a "
                           "number); put back the last number sent")
        last = int(text)
        numbers = [(last + k - 1) % 999_999_999 + 1 for k in range(1, count + 1)]
        with atomic_output(seq, mode=0o644) as fh:
            fh.write(f"{numbers[-1]}\n")
    return numbers


def write_acks(result: Validation, ack_dir: Path, name: str | None = None,
               now: datetime | None = None, controls: Iterator[int] | None = None) -> list[Path]:
    """Each functional group's 999 as ACK_DIR/<name, default the file's>.<GS06 acknowledged>.999, and a TA1
    for each interchange with envelope errors or asking for one (ISA14 = 1) as <name>.<ISA13>.ta1 (an
    interchange the TA1 rejects gets no 999s); written atomically, each under its own interchange control
    number: the next of `controls` (the batch job's reservation), default take_control_numbers(ACK_DIR).
    The name, GS06 and ISA13 are made safe (paths.safe_name, safe_part): whatever they hold, every ack lands
    in ACK_DIR."""
    target = AckNames(ack_dir, name or Path(result.file).name)
    acks = result.acks_to_send()
    written: list[Path] = []
    ta1s = [x for x in result.interchanges if x.wants_ta1]
    if controls is None:
        controls = iter(take_control_numbers(ack_dir, len(acks) + len(ta1s)))
    for ack in acks:
        written.append(target(ack.group_control_number.strip() or "group", ack.interchange_index, "999"))
        with atomic_output(written[-1]) as out:
            out.write(ack.numbered(next(controls)))
    for x in ta1s:
        path = target(x.control_number or "interchange", x.index, "ta1")
        written.append(write_ta1(ack_dir, path.name, x.isa, x.note, now, next(controls)))
    return written


def write_ta1(ack_dir: Path, file_name: str, isa: list[str], note: str, now: datetime | None = None,
              control: int | None = None) -> Path:
    """ACK_DIR/FILE_NAME: a TA1 answering the interchange whose ISA elements are `isa` (tr3.ta1_text),
    under interchange control number `control` (default: the next one of the folder's sequence). A
    FILE_NAME holding input values as they are is made safe first (paths.safe_name)."""
    target = output_path(ack_dir, safe_name(file_name, PLAIN_LIMIT))
    control = control or take_control_numbers(ack_dir, 1)[0]
    with atomic_output(target) as out:
        out.write(ta1_text(isa, note, control, now or datetime.now(timezone.utc)))
    return target


__all__ = ["validate_file", "write_acks", "write_ta1", "take_control_numbers", "Validation", "Severity"]
