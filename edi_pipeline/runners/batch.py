"""The clearinghouse batch job: every file in an inbox to 999s, corrected files, store rows or quarantine."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from edi_pipeline.core.errors import EdiError, InterchangeError, Position, StoreError
from edi_pipeline.pipeline.ingest import INGESTED, STORE_ERROR, ingest_file
from edi_pipeline.core.paths import AckNames, open_regular, output_path, safe_name
from edi_pipeline.core.values import to_date
from edi_pipeline.store.store import STORE_ERRORS, Store
from edi_pipeline.tx.registry import REGISTRY, Kind, kind_label, kinds_of
from edi_pipeline.core.files import path_sha256
from edi_pipeline.core.files import LockHeld, atomic_copy, atomic_output, file_lock, folder_inputs, replace_file
from edi_pipeline.x12.isa import Isa
from edi_pipeline.x12.reader import Delimiters, SegmentReader

log = logging.getLogger("edi_pipeline.runners.batch")

SUBDIRS = ("acks", "outbound", "rejects", "reports", "quarantine")
DONE, SKIPPED, QUARANTINED = "done", "skipped", "quarantined"
# Left in the inbox for the next run, unrecorded: FAILED when it could not be quarantined or the store failed
# (disk full), CHANGING when the file changed while read. IGNORED: not a regular file (a link, folder, FIFO,
# device), never opened.
FAILED, CHANGING, IGNORED = "failed", "changing", "ignored"
# The store's status for a done file whose claim payments no reconciliation report holds yet (a run
# killed before its reconcile): the next run reconciles them.
AWAITING_RECONCILE = "awaiting reconcile"


@dataclass
class FileOutcome:
    name: str
    status: str  # DONE, SKIPPED, QUARANTINED, FAILED or IGNORED
    kind: str | None = None
    detail: str = ""
    claims_in: int = 0
    claims_out: int = 0
    claims_held: int = 0
    findings: int = 0
    payments: int = 0
    acks_accepted: int = 0
    acks_rejected: int = 0
    sets_rejected: int = 0  # transaction sets its 999s reject (the sender must correct and resend them)
    claim_acks: int = 0  # 277CAs written (one per 837P interchange scrubbed)
    ack_events: int = 0  # claim status events the payers' 999s and 277CAs in it tied to claims sent
    unmatched_acks: list[dict] = field(default_factory=list)  # its acknowledgments tied to nothing sent
    remits_key: str | None = None  # the store record its claim payments carry, when it brought some
    output: str | None = None  # the name its outputs took, when not its own (see output_name)
    internal: bool = False  # quarantined by an internal error (a bug, not the file's fault): batch exits 3

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["remits_key"]  # the store's internal record key
        d["output"] = self.output or self.name
        return d


@dataclass
class BatchSummary:
    files: list[FileOutcome] = field(default_factory=list)
    # After a run that ingested remits: claims per reconciliation status, and remits matching no claim.
    reconciled: dict[str, int] | None = None
    unmatched_remits: int = 0
    reconcile_error: str | None = None  # the reconciliation failed; the files' own results stand
    waiting: int = 0  # files left for the next run: still changing (see run_batch's settle, process_file)
    reconciliation: str | None = None  # the run's reconciliation report, in reports/

    def count(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.status == QUARANTINED for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.status == FAILED for f in self.files)

    @property
    def internal_errors(self) -> int:
        return sum(f.internal for f in self.files)

    @property
    def ok(self) -> bool:
        return not (self.quarantined or self.failed or self.count("claims_held") or self.count("sets_rejected")
                    or self.reconcile_error)

    def to_dict(self) -> dict:
        return {
            "files": len(self.files),
            "done": sum(f.status == DONE for f in self.files),
            "skipped": sum(f.status == SKIPPED for f in self.files),
            "quarantined": self.quarantined,
            "failed": self.failed,
            "ignored": sum(f.status == IGNORED for f in self.files),
            "waiting": self.waiting,
            **{k: self.count(k) for k in ("claims_in", "claims_out", "claims_held", "findings", "payments",
                                           "acks_accepted", "acks_rejected", "sets_rejected", "claim_acks")},
            "reconciled": self.reconciled,
            "unmatched_remits": self.unmatched_remits,
            "ack_events": self.count("ack_events"),
            "unmatched_acks": [a for f in sorted(self.files, key=lambda f: f.name) for a in f.unmatched_acks],
            "reconcile_error": self.reconcile_error,
            "reconciliation": self.reconciliation,
        }

    def to_json(self) -> dict:
        """The summary's counts and each file's outcome, in name order (batch --format json)."""
        return {**self.to_dict(), "ok": self.ok,
                "file_outcomes": [f.to_dict() for f in sorted(self.files, key=lambda f: f.name)]}


@dataclass
class InterchangeMark:
    """One ISA of a file, as the batch screen reads it: who sent it, its control number, where it is
    and which kinds of transaction set (tx.registry Kind: 837P, 835, 999, 277CA) follow it."""

    elements: list[str]  # ISA01..ISA16 at 1..16
    line: int
    kinds: set[Kind] = field(default_factory=set)
    groups: int = 0  # the GS segments after it, up to the next ISA

    @property
    def sender(self) -> str:
        return Isa.of(self.elements).sender

    @property
    def control(self) -> str:
        return Isa.of(self.elements).control

    @property
    def kind(self) -> str:
        return kind_label(self.kinds)


@dataclass
class FileScan:
    kind: str  # its kinds' stored label: '837P', '835', '837P+835', '999', '277CA', ...
    interchanges: list[InterchangeMark]
    unread: int = 0  # ISAs it could not read (the envelope reader reports them)
    # with screen_file(members=True): the file's patients, which split_wave keeps apart (see there), each as
    # hash() of _member(...); None: not asked
    members: set[int] | None = None
    corrects: bool = False  # with members: a claim of it is no original (CLM05-3 other than 1: a replacement..)


def _member(member_id: bytes, last: bytes, first: bytes, birth: bytes) -> int:
    """A patient as the screen sees it: what tx.model.Claim.member_key holds but the payer (subscriber's
    NM109, the patient's NM103 and NM104, stripped and upper-cased, and DMG02's date as the parser reads it,
    '' when none), so that two claims of one member_key always give one key (two keys may still be one
    member: they are only kept apart)."""
    day = to_date(birth.decode("latin-1"))
    return hash(tuple(v.decode("utf-8", "surrogateescape").strip().upper() for v in (member_id, last, first))
                + (day.isoformat() if day else "",))


SCAN_CHUNK = 1 << 20
_SCAN_KINDS = {t.st01.encode(): t.kind for t in REGISTRY}  # ST01 -> the kind the screen counts it as
_BLANKS = b" \t\r\n\x0b\x0c"  # the whitespace the segment reader skips between segments


def _read_isa(text: bytes, line: int, pos: Position | None = None) -> tuple[InterchangeMark, Delimiters]:
    """The ISA at the start of `text`, with its delimiters; InterchangeError (at `pos`) when unreadable."""
    delims, isa_len = Delimiters.from_isa(text.decode("latin-1"), pos)
    # Read as the envelope reader reads it, so the keys match the store's: up to the first terminator
    # (even one inside an element), decoded as UTF-8 with other bytes kept as surrogates.
    raw = text[:isa_len]
    raw = raw[:raw.find(delims.segment.encode("latin-1"))]
    elements = [e.decode("utf-8", "surrogateescape") for e in raw.split(delims.element.encode("latin-1"), 16)]
    elements += [""] * (17 - len(elements))
    elements[16] = elements[16][:1]  # ISA16, the component separator
    return InterchangeMark(elements, line), delims


def _scan_pattern(delims: Delimiters, members: bool = False, corrects_only: bool = False) -> re.Pattern[bytes]:
    """A segment terminator, then (after any whitespace) an ISA, an ST of a registered type (tx.registry)
    or a GS; with `members`, also an NM1*IL or NM1*QC (a subscriber's or patient's name), a DMG or a CLM
    (only the CLM with `corrects_only`: the others' groups are kept, never matching)."""
    term = re.escape(delims.segment.encode("latin-1"))
    sep = re.escape(delims.element.encode("latin-1"))
    st01 = b"|".join(re.escape(code) for code in _SCAN_KINDS)
    never = rb"(?!)" if corrects_only else b""
    nm1 = rb"|" + never + rb"(?i:(NM1)" + sep + rb"(IL|QC))" + sep + rb"|" + never + rb"(?i:(DMG))" + sep + \
        rb"|(?i:(CLM))" + sep if members else b""
    tags = (b"Cc" if corrects_only else b"NnDdCc") if members else b""
    # (the lookahead turns a segment of another tag away before the alternatives are tried: ~25% faster)
    return re.compile(term + rb"[" + _BLANKS + rb"]*(?=[IiSsGg" + tags + rb"])(?:(?i:(ISA))"
                      rb"|(?i:ST)" + sep + rb"(" + st01 + rb")|(?i:(GS))" + sep + nm1 + rb")")


def scan_file(path: Path) -> FileScan:
    """Every interchange of a file (its ISA) and the kinds of set in it, read in chunks at C speed;
    EdiError when the file does not start with an ISA or holds no set of a registered type."""
    with open_regular(path) as fh:
        return _scan(fh, path.name)


def _scan(fh: BinaryIO, name: str, seen: Callable[[bytes], object] | None = None,
          members: bool = False, corrects_only: bool = False) -> FileScan:
    """scan_file over a stream; with `seen`, which gets each chunk read, read to its end even when it raises;
    with `members`, FileScan.members and .corrects of an 837P file are filled (only .corrects with
    `corrects_only`)."""
    see = seen or (lambda chunk: None)
    try:
        head = fh.read(SCAN_CHUNK)
        see(head)
        buf = head.lstrip(b"\xef\xbb\xbf" + _BLANKS)
        line = 1 + head[:len(head) - len(buf)].count(b"\n")
        mark, delims = _read_isa(buf, line, Position(name, line, 1, None, "ISA"))
        marks = [mark]
        unread = 0
        pattern = _scan_pattern(delims, members, corrects_only)
        term = delims.segment.encode("latin-1")
        ids: set[int] = set()
        # the person named last (member id, last and first name: a DMG's birth date goes with them), and
        # whether a DMG with a date followed their NM1
        person: tuple[bytes, bytes, bytes] | None = None
        dated = False
        corrects = False
        more = True
        while True:
            if more:
                chunk = fh.read(SCAN_CHUNK)
                see(chunk)
                more = bool(chunk)
                buf += chunk
            # Matches start at a terminator. What follows the last terminator before the final 128
            # bytes waits for the next chunk, so an ISA or ST cut between chunks is read whole.
            end = buf.rfind(term, 0, len(buf) - 128) if more else len(buf)
            if end <= 0 and len(buf) > SCAN_CHUNK:  # one segment, or one blank run, longer than a chunk
                if buf[:1] == term:  # a match may start at its terminator: close up the blanks after it
                    body = buf[1:].lstrip(_BLANKS)
                    line += buf.count(b"\n", 0, len(buf) - len(body))
                    buf = term + body
                end = len(buf) - 128  # (no other match can start before that: the rest is let go)
            if end <= 0:
                continue  # no whole segment yet: read on
            pos = last = 0
            while (m := pattern.search(buf, pos, end)) is not None:
                pos = m.end()
                if members and (m.group(4) or m.group(6) or m.group(7)):  # as the parser reads NM1, DMG, CLM
                    e = buf[pos:buf.find(term, pos, end)].split(delims.element.encode("latin-1"), 8)
                    e += [b""] * (8 - len(e))
                    if m.group(7):  # CLM05-3, the claim frequency
                        freq = e[4].split(delims.component.encode("latin-1"))[2:3]
                        corrects = corrects or (bool(freq) and freq[0].strip() not in (b"", b"1"))
                        continue
                    if m.group(6):  # DMG02, the birth date of the person named last
                        if person and to_date(e[1].decode("latin-1")):
                            ids.add(_member(*person, e[1]))
                            dated = True
                        continue
                    if person and not dated:  # no birth date the parser reads
                        ids.add(_member(*person, b""))
                    # (NM102 is e[0]): a subscriber's NM109 holds the member id, a patient's goes with it
                    person, dated = (e[7] if m.group(5).upper() == b"IL" else person[0] if person else b"",
                                     e[1], e[2]), False
                    continue
                if m.group(3):
                    marks[-1].groups += 1
                    continue
                if not m.group(1):
                    marks[-1].kinds.add(_SCAN_KINDS[m.group(2)])
                    continue
                isa_at = m.start(1)
                line += buf.count(b"\n", last, isa_at)
                last = isa_at
                try:
                    mark, new = _read_isa(buf[isa_at:isa_at + 4096], line)
                except InterchangeError:  # not a readable ISA: process_file's reader reports it
                    unread += 1
                    continue
                marks.append(mark)
                if (new.element, new.segment) != (delims.element, delims.segment):
                    break  # read on from this ISA, with its delimiters
            else:
                if not more:
                    break
                line += buf.count(b"\n", last, end)
                buf = buf[end:]
                continue
            delims, pattern, term = new, _scan_pattern(new, members, corrects_only), new.segment.encode("latin-1")
            buf = buf[isa_at:]
        if person and not dated:
            ids.add(_member(*person, b""))
        kinds = set().union(*(m.kinds for m in marks))
        if not kinds:
            raise EdiError(f"{name}:1: no transaction set of a type read here "
                           f"({', '.join(t.kind for t in REGISTRY)}) in the file")
        claims = members and Kind.CLAIM_837P in kinds
        return FileScan(kind_label(kinds), marks, unread, ids if claims and not corrects_only else None,
                        claims and corrects)
    finally:
        while seen and (chunk := fh.read(SCAN_CHUNK)):
            seen(chunk)


IN_MEMORY = 32 << 20  # a file up to this size is read into memory: screen, digest and processing share one read
HELD = 48 << 20  # the most a run holds so between its screen and the files' processing (others are read again)


@dataclass
class Screened:
    """What the run's read of a file found, before any file is processed: its sha256, its scan (None, with
    the reason in `error`, when it is no file of ours), its identity (size, mtime, inode) as opened, and its
    bytes when held (a small file: its processing reads no further; a large one is streamed again)."""

    sha: str
    scan: FileScan | None
    error: str | None
    identity: tuple[int, int, int]
    data: bytes | None = None


def screen_file(path: Path, hold: bool = True, members: bool = False) -> Screened:
    """One read of `path` for its digest and its scan (with its subscribers' `members`: FileScan.members),
    held in memory when `hold` and at most IN_MEMORY bytes; OSError when it cannot be read."""
    with open_regular(path) as fh:
        st = os.fstat(fh.fileno())
        identity = (st.st_size, st.st_mtime_ns, st.st_ino)
        data = fh.read() if hold and st.st_size <= IN_MEMORY else None
        digest = hashlib.sha256(data or b"")
        scan, error = None, None
        try:
            scan = _scan(io.BytesIO(data), path.name, members=members) if data is not None \
                else _scan(fh, path.name, digest.update, members)
        except EdiError as exc:
            error = str(exc)
    return Screened(digest.hexdigest(), scan, error, identity, data)


def output_name(store: Store, name: str, sha: str) -> str:
    """The name an input's outputs take: its own made safe (paths.safe_name: a name too long, or holding
    anything but letters, digits and `-_.`, is cut and tagged with a digest of itself), unless a different
    file of that name was processed before (senders reuse names), whose outputs may still wait to be
    picked up; then tagged with this file's digest, so nothing of the earlier file is overwritten. The
    same file always gets the same name."""
    safe = safe_name(name)
    if not store.batch_name_taken(name, sha):
        return safe
    p = Path(safe)
    return f"{p.stem}.{sha[:12]}{p.suffix}"


def _quarantine(path: Path, out: Path, reason: str, name: str | None = None,
                data: bytes | None = None) -> FileOutcome:
    """A private (0600) copy of the file in OUT/quarantine/ (as `name`, default its own, made safe; tagged
    with its digest when an earlier file holds that name there), with NAME.error.txt saying why. `out` is
    usually the file's staging folder: the inbox file is let go (_let_go) only once the copy is published,
    so a run killed in between loses nothing. `data`: the file's bytes as read, which the copy holds.
    Never raises: when it cannot (disk full, ...), the file stays in the inbox for the next run and the
    outcome is FAILED with both reasons."""
    name = safe_name(name or path.name)
    qdir = out / "quarantine"
    first = reason.splitlines()[0]
    why_file = None
    try:
        published = out.parent.parent / "quarantine" if out.parent.name == STAGING else qdir
        if any(os.path.lexists(d / n) for d in {qdir, published} for n in (name, f"{name}.error.txt")):
            p = Path(name)
            sha = path_sha256(path) if data is None else hashlib.sha256(data).hexdigest()
            name = f"{p.stem}.{sha[:12]}{p.suffix}"
        why_file = output_path(qdir, f"{name}.error.txt")
        with atomic_output(why_file, mode=0o600) as fh:
            fh.write(reason.rstrip() + "\n")
        with (open_regular(path) if data is None else io.BytesIO(data)) as fh, \
                atomic_output(output_path(qdir, name), mode=0o600) as copy:
            shutil.copyfileobj(fh, copy.buffer, 1 << 20)
    except (OSError, EdiError) as exc:
        if why_file is not None:
            with contextlib.suppress(OSError):
                why_file.unlink(missing_ok=True)  # no reason without its file
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error("not quarantined", extra={"file": path.name, "reason": why})
        return FileOutcome(path.name, FAILED, detail=f"{first}; could not quarantine it ({why}): left in the "
                                                     "inbox for the next run")
    log.warning("quarantined", extra={"file": path.name, "reason": first})
    return FileOutcome(path.name, QUARANTINED, detail=first, output=name if name != path.name else None)


_NOT_MOVABLE = (errno.EPERM, errno.EACCES, errno.EROFS)  # an inbox that keeps its files


def _let_go(path: Path) -> bool:
    """Remove a quarantined file from the inbox, its copy being in place; False when the inbox keeps it
    (read-only: it stays, recorded as quarantined, so later runs skip it)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in _NOT_MOVABLE:
            raise
        return False
    return True


def _released(path: Path, outcome: FileOutcome) -> FileOutcome:
    """A published outcome; a quarantined file is let go from the inbox now that its copy is in place."""
    if outcome.status == QUARANTINED and not _let_go(path):
        outcome.detail += " (copied: the inbox does not let the file go)"
    return outcome


class FileChanged(Exception):
    """The file changed while the batch job read it (still being uploaded): nothing of it is kept."""


class StoredUnfinished(Exception):
    """A file's rows are stored but its processing failed after: quarantining it would keep them with
    nothing sent, so it stays in the inbox and the next run finishes it (its rows are replaced)."""


class TakenMeanwhile(Exception):
    """Another batch run on the store took one of the file's interchanges while this one read the file:
    nothing of it is kept, and the next run's screen decides (a resend, TA1 025)."""


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _check_unchanged(path: Path, before: tuple[int, int, int]) -> None:
    """FileChanged unless `path` has the size, mtime and inode it had when its reading began."""
    try:
        if _identity(path) == before:
            return
    except OSError:
        pass
    raise FileChanged(path.name)


STAGING = ".staging"


def staging_dir(out: Path, sha: str) -> Path:
    """Where a file's outputs wait (OUT/.staging/<sha256>/<subfolder>/...) until its store rows commit."""
    return out / STAGING / sha


def publish(stage: Path, out: Path) -> None:
    """Move every staged output into its place under OUT (rename only). Idempotent: an output already
    moved is no longer staged, so a rerun after a kill part way moves only the rest."""
    for path in sorted(p for p in stage.rglob("*") if not p.is_dir()):
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            replace_file(path, target)
        except FileNotFoundError:
            if path.exists():
                raise
            # moved meanwhile by another run finishing the same publication
    shutil.rmtree(stage, ignore_errors=True)


def finish_publishing(store: Store, out: Path) -> None:
    """Publish the outputs of files a killed or failed run committed but had not published yet, then
    drop what OUT's staging folder holds besides: outputs of files a killed run never committed (run
    while holding OUT's lock, so no other run stages there now)."""
    pending = set()
    for row in store.batch_files_to_publish():
        target = Path(row["publish_to"])
        try:
            publish(staging_dir(target, row["sha256"]), target)
        except OSError as exc:  # still staged and recorded so: the next run tries again
            log.error("publishing failed", extra={"file": row["name"], "reason": exc.strerror or str(exc)})
            pending.add(row["sha256"])
            continue
        store.batch_file_published(row["sha256"])
    with contextlib.suppress(FileNotFoundError):
        for stage in (out / STAGING).iterdir():
            if stage.name not in pending:
                shutil.rmtree(stage, ignore_errors=True)


def process_file(path: str | os.PathLike, out: str | os.PathLike, db: str, screened: Screened | None = None,
                 run: str | None = None, interchanges: list[tuple[str, str, str]] = (),
                 controls: list[int] | None = None) -> FileOutcome:
    """Handle one inbox file by type, as the run's read of it found it (`screened`; default: read it now),
    claimed in the store for batch `run`, its acknowledgments numbered from the block `controls` the run
    reserved for it (reserve_blocks; default: reserved now). Its outputs are staged and published only
    after its store rows and its done mark commit, so a rerun after a crash at any point publishes them
    exactly once. A file
    that changes once read, or one of whose `interchanges` (ISA06, ISA13, kind, as the screen found them
    new) another run stores meanwhile, is left for the next run."""
    path, out = Path(path), Path(out)
    store = Store(db)
    try:
        try:
            if screened is None:
                screened = screen_file(path)
            elif _identity(path) != screened.identity:  # changed since the run's screen read it
                raise FileChanged(path.name)
        except FileNotFoundError:  # renamed or removed since the screen read it
            raise FileChanged(path.name) from None
        sha, before = screened.sha, screened.identity
        held = store.claim_batch_file(sha, run, _run_alive(db)) if run else \
            ("done" if store.batch_file_done(sha) else None)
        if held is not None:
            row = store.batch_file(sha) if held == "done" else None
            if row and row["status"] == QUARANTINED and row["publish_to"] is None:
                _let_go(path)  # a run killed after publishing its quarantine copy left it in the inbox
            return FileOutcome(path.name, SKIPPED, detail="already processed" if held == "done"
                               else "being processed by another batch run on this store")
        stage = staging_dir(out, sha)
        shutil.rmtree(stage, ignore_errors=True)  # left by a run killed before it committed this file
        committed: list[bool] = []

        def before_commit() -> None:  # inside the store's write lock, so two runs cannot both pass
            _check_unchanged(path, before)  # the bytes read are the file's: it did not change while read
            if store.earlier_interchanges(interchanges, exclude_sha=sha):
                raise TakenMeanwhile(path.name)
            committed.append(True)

        store.before_commit = before_commit
        try:
            kind, outcome = _process(path, out, stage, store, screened, controls)
            if not committed:  # nothing stored (quarantined): its outputs must still be of the whole file
                _check_unchanged(path, before)
        except BaseException as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if committed and isinstance(exc, Exception) and not isinstance(exc, STORE_ERRORS):
                raise StoredUnfinished(_failure(exc)) from exc
            raise
        outcome.kind = outcome.kind or kind
        status = AWAITING_RECONCILE if outcome.status == DONE and outcome.remits_key else outcome.status
        try:
            store.mark_batch_file(sha, path.name, kind, status, outcome.detail, publish_to=str(out))
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # not done: the next run stages them again
            raise
        try:
            publish(stage, out)
        except OSError as exc:  # done and recorded: its outputs wait, staged, for the next run to publish
            return dataclasses.replace(outcome, status=FAILED, detail=f"{path.name}: stored, but its outputs could "
                                       f"not be published ({exc.strerror or exc}); the next run publishes them")
        store.batch_file_published(sha)
        _released(path, outcome)
        if outcome.status == DONE:
            log.info("file done", extra={"file": path.name, "kind": kind, "claims_in": outcome.claims_in,
                                         "claims_held": outcome.claims_held, "payments": outcome.payments,
                                         "output": outcome.output or path.name})
        return outcome
    except FileChanged:
        log.warning("file changed while read", extra={"file": path.name})
        return FileOutcome(path.name, CHANGING, detail="changed while read: left for the next run")
    except TakenMeanwhile:
        log.warning("interchange taken by another batch run meanwhile", extra={"file": path.name})
        return FileOutcome(path.name, CHANGING, detail="an interchange of it was taken by another batch run "
                                                       "meanwhile: left for the next run")
    finally:
        store.close()


def _process(path: Path, out: Path, stage: Path, store: Store, screened: Screened,
             controls: list[int] | None = None) -> tuple[str | None, FileOutcome]:
    """process_file's work on a file not done before: its kind and its outcome, DONE or QUARANTINED,
    its outputs written under `stage` (laid out as OUT is), its acknowledgments numbered from `controls`
    (default: reserve_control_numbers now). Its held bytes, if any, are all it reads."""
    sha, data = screened.sha, screened.data
    name = output_name(store, path.name, sha)
    if screened.scan is None:
        return None, _quarantine(path, stage, screened.error, name, data)
    kind = screened.scan.kind
    outcome = FileOutcome(path.name, DONE, kind, output=name if name != path.name else None)
    log.info("file started", extra={"file": path.name, "kind": kind})
    kinds = kinds_of(kind)
    if Kind.CLAIM_837P in kinds:
        from edi_pipeline.scrub.ack277 import write_277cas
        from edi_pipeline.scrub.scrubber import scrub_file  # here: an 835-only run does not pay for loading rules and TR3 maps
        from edi_pipeline.validate.validator import validate_file, write_acks

        from edi_pipeline.pipeline.one_pass import validate_and_scrub

        if controls is None:
            controls = reserve_control_numbers(out, {path: ack_numbers(screened.scan)})[path]
        # until the scrub is done: its commit records the sets it sends too, in file order (the first number
        # of the file's block: blocks are reserved in file order)
        store.sends_as = name, controls[0] if controls else None
        # validation and scrub from one read; where that cannot stand for the two, two reads as before
        one = validate_and_scrub(path, path.name, stage / "outbound" / name, stage / "rejects" / name, store, sha,
                                 data)
        result = one.validation if one else validate_file(path, path.name)
        numbers = _drawn(controls, path.name)
        write_acks(result, stage / "acks", name, controls=numbers)
        for ack in result.acks_to_send():
            outcome.acks_accepted += ack.accepted
            outcome.acks_rejected += not ack.accepted
            outcome.sets_rejected += len(ack.rejected_sets)

        def quarantined(reason: str) -> tuple[str, FileOutcome]:  # its acks are written: the summary counts them
            q = _quarantine(path, stage, reason, name, data)
            q.acks_accepted, q.acks_rejected, q.sets_rejected = \
                outcome.acks_accepted, outcome.acks_rejected, outcome.sets_rejected
            return kind, q

        rejected = result.rejected_interchanges()
        if rejected:  # its TA1 rejects the interchange: nothing of the file goes on or into the store
            return quarantined(f"{path.name}: interchange {rejected[0].control_number} rejected "
                               f"(TA1 {rejected[0].note}, in acks/): {rejected[0].errors[0]}")
        try:
            scrubbed = one.scrubbed if one else scrub_file(path, stage / "outbound" / name,
                                                           stage / "rejects" / name, store, sha256=sha,
                                                           withheld=result.rejected_sets(), data=data)
        except EdiError as exc:
            return quarantined(str(exc))
        finally:
            store.sends_as = None
        if not scrubbed.claims_out:  # nothing to send: no empty file for the sender to pick up
            (stage / "outbound" / name).unlink(missing_ok=True)
        scrubbed.out_path = str(out / "outbound" / name)  # the report names the outputs where they are published
        if scrubbed.rejects_path is not None:
            scrubbed.rejects_path = str(out / "rejects" / name)
        with atomic_output(stage / "reports" / f"{name}.json", mode=0o600) as fh:
            scrubbed.write_report(fh)
        # the clearinghouse's 277CA per interchange: each claim sent on (A1) or held (A6/A7/A8 with its rule)
        outcome.claim_acks += len(one.claim_acks.write(stage / "acks", name, numbers) if one and one.claim_acks
                                  else write_277cas(path if data is None else data, scrubbed.findings,
                                                    stage / "acks", name, numbers,
                                                    withheld=result.rejected_sets()))
        outcome.claims_in += scrubbed.claims_in
        outcome.claims_out += scrubbed.claims_out
        outcome.claims_held += scrubbed.claims_held
        outcome.findings += len(scrubbed.findings)
    if kinds - {Kind.CLAIM_837P}:
        # remits and payers' acknowledgments; a file holding 837P sets too: scrub stored those, so load
        # only its other sets here
        key = remits_key(sha, kind)
        stored = store.seen_file(key)
        if stored is not None:  # a run killed after storing it, before marking it done: finish it
            outcome.payments += stored["payments"] or 0
            outcome.remits_key = key if stored["payments"] else None
            outcome.detail = "stored by an interrupted run; finished now"
            return kind, outcome
        ingested = ingest_file(path if data is None else data, store, origin="batch",
                               remits_only=Kind.CLAIM_837P in kinds, sha256=sha, name=str(path))
        if ingested.status != INGESTED:  # rejected, or an interchange already in the store
            if ingested.reason and ingested.reason.startswith(STORE_ERROR):
                raise StoreError(ingested.reason)  # the store failed, not the file: the next run retries it
            return kind, _quarantine(path, stage, f"{path.name}: {ingested.status}: {ingested.reason}", name, data)
        outcome.payments += ingested.payments
        outcome.findings += len(ingested.findings)
        outcome.ack_events += ingested.ack_events
        outcome.unmatched_acks += ingested.unmatched_acks
        outcome.remits_key = ingested.key if ingested.payments else None
    return kind, outcome


class JsonLines(logging.Formatter):
    """One JSON object per log record, with only the fields this module puts there (never claim data)."""

    FIELDS = ("file", "output", "kind", "reason", "claims_in", "claims_held", "payments", "claims")

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
               "event": record.getMessage(), "pid": record.process}
        doc.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        return json.dumps(doc)


def setup_logging(log_json: bool = False, quiet: bool = False) -> None:
    """Structured (JSON lines) or plain logs on stderr; also run in each worker process."""
    import sys

    logger = logging.getLogger("edi_pipeline")
    logger.handlers.clear()
    logger.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_json else logging.Formatter("%(levelname)s %(message)s %(file)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if log_json else (logging.ERROR if quiet else logging.WARNING))


def _failure(exc: Exception) -> str:
    """Our own errors say what and where (never data values), a failed read or write its cause (disk full);
    anything else only its type."""
    if isinstance(exc, EdiError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"a read or write failed: {exc.strerror}"
    return f"internal error ({type(exc).__name__})"


def _internal(exc: Exception) -> bool:
    """A fault of ours, not of the file or the machine: batch exits 3 for it."""
    return not isinstance(exc, (EdiError, OSError))


def _job(args: tuple[str, str, str, Screened | None, str, list[tuple[str, str, str]], list[int]]) -> FileOutcome:
    path, out, db, screened, run, interchanges, controls = args
    try:
        return process_file(path, out, db, screened, run, interchanges, controls)
    except BrokenProcessPool:  # a worker walking its sets died (WorkerPool.split): not the file's fault
        raise
    except (*STORE_ERRORS, StoredUnfinished) as exc:  # the store failed (disk full), or the
        # file failed after its rows were stored: the next run processes it again
        why = f"{exc}, after its rows were stored" if isinstance(exc, StoredUnfinished) else \
            f"store write failed ({exc})"
        reason = f"{Path(path).name}: {why}; left in the inbox for the next run"
        log.error("file failed", extra={"file": Path(path).name, "reason": reason})
        outcome = FileOutcome(Path(path).name, FAILED, detail=reason)
        outcome.internal = not isinstance(exc, STORE_ERRORS) and exc.__cause__ is not None \
            and _internal(exc.__cause__)
        return outcome
    except Exception as exc:  # one bad file must not stop the batch
        internal = _internal(exc)
        reason = f"{Path(path).name}: {_failure(exc)}"
        try:
            outcome = _released(Path(path), _quarantine(Path(path), Path(out), reason))
        except OSError:
            outcome = FileOutcome(Path(path).name, QUARANTINED, detail=reason)
        outcome.internal = internal
        return outcome


def inbox_files(inbox: str | os.PathLike) -> tuple[list[Path], list[FileOutcome]]:
    """The inbox's files to read (core.files.folder_inputs), and an IGNORED outcome for each other entry."""
    files, others = folder_inputs(inbox)
    return files, [FileOutcome(name, IGNORED, detail=f"{what}, not a regular file: never opened")
                   for name, what in others]


def settled(files: list[Path], seconds: float) -> list[Path]:
    """The files unchanged for at least `seconds` (the others may still be being written, or are gone)."""
    if seconds <= 0:
        return files
    cutoff = time.time() - seconds

    def mtime(p: Path) -> float:
        try:
            return os.stat(p, follow_symlinks=False).st_mtime
        except OSError:
            return cutoff + 1

    return [p for p in files if mtime(p) <= cutoff]


def _screens(paths: list[Path], members: bool = False) -> dict[Path, Screened | None]:
    """Each file's screen_file, None when it cannot be read (process_file then says why); the files are
    held in memory while the run holds at most HELD bytes of them. With `members`, its 837P files are
    scanned again for their FileScan.members and .corrects when there are two or more (split_wave keeps
    them apart), else for .corrects alone (run_phases): a file alone has no patient to be kept apart for."""
    screens: dict[Path, Screened | None] = {}
    room = HELD
    for path in paths:
        try:
            screens[path] = s = screen_file(path, hold=room > 0)
        except OSError:
            screens[path] = None
            continue
        if s.data is not None and len(s.data) > room:
            s.data = None  # over the run's budget: processing reads it again
        room -= len(s.data or b"")
    claims = [p for p, s in screens.items() if members and s and s.scan and Kind.CLAIM_837P in kinds_of(s.scan.kind)]
    for path in claims:
        s = screens[path]
        try:
            with open_regular(path) if s.data is None else io.BytesIO(s.data) as fh:
                s.scan = _scan(fh, path.name, members=True, corrects_only=len(claims) == 1)
        except (OSError, EdiError):  # changed since its screen: process_file leaves it for the next run
            pass
    return screens


def run_phases(kinds: dict[Path, str | None], remits_wait: bool = True) -> list[list[Path]]:
    """The run's files (with their kinds' labels, None when unread) in the order they are taken, each phase
    once the one before is done: first the files with claims, then the remits-only files - in the same
    phase, so that workers ingest them beside the 837P work (their ingest reads no claim; the run's
    reconcile, last, does), unless `remits_wait`: a claim corrects another (CORRECTED-NO-F8 asks the remits
    on file for its REF*F8, which an 835 ingested beside it would answer or not by how workers fall in
    time) - then the payers' acknowledgments (they answer the sets those sent)."""
    def rank(kind: str | None) -> int:
        kinds_in = kinds_of(kind)
        return 0 if not kinds_in or Kind.CLAIM_837P in kinds_in else 1 if kinds_in == {Kind.REMIT_835} else 2

    ranks = {p: rank(kind) for p, kind in kinds.items()}
    phases = [[p for p in kinds if ranks[p] == rank] for rank in (0, 1, 2)]
    return phases if remits_wait else [phases[0] + phases[1], phases[2]]


def split_wave(order: list[Path], scans: dict[Path, FileScan | None]) -> tuple[list[Path], list[Path]]:
    """The files of `order` sharing no interchange (_run_keys) and no subscriber (FileScan.members) with a
    file before them (processed now, in parallel), and the others, processed once the earlier ones are done:
    whether an earlier file was taken or refused, and the claims it stored (the history the visit-history
    rules and DUPLICATE-CLAIM read), are then in the store, so the outcome is the one of taking the files one
    by one in order, however workers or runs fall in time."""
    seen: set[tuple[str, str, str]] = set()
    wave: list[Path] = []
    later: list[Path] = []
    for path in order:
        scan = scans[path]
        keys: set = {k for m in scan.interchanges for k in _run_keys(m)} | (scan.members or set()) if scan else set()
        (later if keys & seen else wave).append(path)
        seen |= keys
    return wave, later


def screen_repeats(order: list[Path], scans: dict[Path, FileScan | None], shas: dict[Path, str | None], out: Path,
                   store: Store, run: str, this_run: set[str], blocks: dict[Path, list[int]]) -> dict[Path, FileOutcome]:
    """The files of a wave (split_wave) that must not be processed, decided before its workers start:
    - a second copy of the same bytes under another name: skipped;
    - a different file holding an interchange (ISA06 sender + ISA13 control number, same kind of sets)
      the store holds from another file (taken in an earlier run, or earlier in this one: `this_run`
      holds the digests processed so far): quarantined whole, since its claims would go to the payer
      twice or its payments count twice (TA1 note 025, duplicate control number). A file refused whole
      (quarantined, TA1-rejected) left no interchange in the store, so it blocks no corrected resend.
    A refused file's TA1s take the numbers of its block in `blocks` (reserve_blocks), which it leaves."""
    from edi_pipeline.validate.validator import write_ta1

    early: dict[Path, FileOutcome] = {}
    repeated: dict[Path, tuple[list[InterchangeMark], dict[int, dict]]] = {}
    first_copy: dict[str, Path] = {}
    alive = _run_alive(store.path)
    for path in order:
        sha, scan = shas[path], scans[path]
        if sha is None or scan is None or store.batch_file_done(sha):
            continue  # process_file says why it cannot read it, or skips it as done
        if sha in first_copy:
            early[path] = FileOutcome(path.name, SKIPPED, scan.kind, detail=f"same bytes as {first_copy[sha].name}")
            continue
        first_copy[sha] = path
        marks = [m for m in scan.interchanges if _run_keys(m)]
        try:
            in_store = store.earlier_interchanges(_interchanges(scan), exclude_sha=sha)
        except (UnicodeError, *STORE_ERRORS):  # a value the store cannot look up: process_file reports it
            continue
        if not in_store or store.claim_batch_file(sha, run, alive) is not None:
            continue  # new, or held by another batch run (process_file says so)
        repeated[path] = marks, in_store
    for path, (marks, in_store) in repeated.items():
        sha, scan = shas[path], scans[path]
        repeats = sorted(in_store)
        k = repeats[0]
        m, row = marks[k], in_store[k]
        source = (f"{row['name']}, earlier in this run" if row["sha256"].removesuffix(":835") in this_run
                  else f"{row['name']}, {row['ingested_at']}")
        rest = (f"; the file's other interchanges ({len(marks) - len(repeats)}) are new, held with it: they need "
                "a file of their own" if len(repeats) < len(marks) else "")
        indexes = dict(zip(map(id, scan.interchanges), isa_indexes(path, scan.interchanges)))  # by mark
        index = indexes[id(m)]
        stage = staging_dir(out, sha)
        shutil.rmtree(stage, ignore_errors=True)
        outcome = _quarantine(path, stage, f"{path.name}:{m.line}: ISA#{index} ISA13 TA1-025 interchange {m.control} "
                                           f"from {m.sender} already processed ({source}); a new file needs a new "
                                           f"ISA13{rest}", output_name(store, path.name, sha))
        target = AckNames(stage / "acks", outcome.output or path.name)
        for j, control in zip(repeats, blocks.pop(path)):
            write_ta1(stage / "acks", target(marks[j].control, indexes[id(marks[j])], "ta1").name, marks[j].elements,
                      "025", control=control)
        outcome.kind = scan.kind
        store.mark_batch_file(sha, path.name, scan.kind, outcome.status, outcome.detail, publish_to=str(out))
        publish(stage, out)
        store.batch_file_published(sha)
        early[path] = _released(path, outcome)
    return early


def reserve_blocks(out: Path, order: list[Path], scans: dict[Path, FileScan | None], shas: dict[Path, str | None],
                   store: Store) -> dict[Path, list[int]]:
    """Each file's block of acknowledgment control numbers for the run, reserved at once in `order` (the
    order one worker takes the files), so that --workers N numbers every file's acks as --workers 1 does,
    whichever wave a file falls in: ack_numbers, or for a file that could be refused as a resend (an
    interchange the store holds, or an earlier file of the run brings) enough for a TA1 025 each too.
    None for a file done already or unread (process_file says why)."""
    needs: dict[Path, int] = {}
    seen: set[tuple[str, str, str]] = set()
    for path in order:
        sha, scan = shas[path], scans[path]
        if sha is None or scan is None or store.batch_file_done(sha):
            continue
        marks = [m for m in scan.interchanges if _run_keys(m)]
        keys = {k for m in marks for k in _run_keys(m)}
        try:
            resend = bool(keys & seen) or bool(store.earlier_interchanges(_interchanges(scan), exclude_sha=sha))
        except (UnicodeError, *STORE_ERRORS):  # a value the store cannot look up: process_file reports it
            resend = False
        needs[path] = max(ack_numbers(scan), len(marks)) if resend else ack_numbers(scan)
        seen |= keys
    return reserve_control_numbers(out, needs)


def ack_numbers(scan: FileScan) -> int:
    """The most control numbers process_file's acknowledgments of a scanned file can take: none but for
    837P sets; else a 999 per group and a TA1 per interchange that asks for one (ISA14 1), and a 277CA
    per 837P interchange - or, when a TA1 rejects an interchange (the file is quarantined, no 277CA), a
    TA1 per interchange and the 999s of the others. An ISA the screen could not read counts for all three."""
    if Kind.CLAIM_837P not in kinds_of(scan.kind):
        return 0
    groups = sum(m.groups for m in scan.interchanges)
    asked = sum(Isa.of(m.elements).ack_requested for m in scan.interchanges)
    claims = sum(Kind.CLAIM_837P in m.kinds for m in scan.interchanges)
    return groups + max(len(scan.interchanges), asked + claims) + 2 * scan.unread


def reserve_control_numbers(out: Path, needs: dict[Path, int]) -> dict[Path, list[int]]:
    """Each file's block of `needs[file]` acknowledgment control numbers of OUT/acks' sequence, in the
    order of `needs`, taken at once under the sequence's lock (validate.take_control_numbers): two runs
    on one OUT never share a number. A number its file does not use is skipped, never reused."""
    total = sum(needs.values())
    if not total:
        return {path: [] for path in needs}
    from edi_pipeline.validate.validator import take_control_numbers

    numbers = iter(take_control_numbers(out / "acks", total))
    return {path: list(itertools.islice(numbers, n)) for path, n in needs.items()}


class ReservationShort(Exception):
    """A file's acknowledgments took more control numbers than ack_numbers reserved for it (a fault of
    ours: no number is taken from elsewhere, which would depend on the order workers finish)."""


def _drawn(block: list[int], name: str) -> Iterator[int]:
    """The numbers of a file's reserved block, in order; ReservationShort past its end."""
    yield from block
    raise ReservationShort(f"{name}: its acknowledgments need more than the {len(block)} control numbers "
                           "reserved for it")


def isa_indexes(path: Path, marks: list[InterchangeMark]) -> list[int]:
    """Each of the screen's `marks`' segment position in the file, counted as the envelope reader counts
    (0 for one not found again): a second read, made only to report repeats, since the screen's scan counts
    lines, not segments."""
    found: list[int] = []
    wanted = iter(marks)
    mark = next(wanted, None)
    if mark is None:
        return found
    with SegmentReader(path, path.name) as reader:
        for index, (text, line) in enumerate(reader, 1):
            while mark is not None and line > mark.line:
                found.append(0)  # the reader never saw its ISA on its line
                mark = next(wanted, None)
            if mark is not None and line == mark.line and text[:3].upper() == "ISA":
                found.append(index if found else 1)  # the first: the reader's first segment, as it counts
                mark = next(wanted, None)
            if mark is None:
                break
    return found + [0] * (len(marks) - len(found))


def _run_keys(mark: InterchangeMark) -> list[tuple[str, str, str]]:
    """The keys a run's interchanges are told apart by: one per kind of set it holds. None for an ISA13
    that is not 9 digits: the reader refuses that interchange (TA1 018), so it can repeat nothing."""
    if not Isa.of(mark.elements).control_ok:
        return []
    return [(family, mark.sender, mark.control) for family in sorted(mark.kinds)]


def _interchanges(scan: FileScan | None) -> list[tuple[str, str, str]]:
    """(ISA06, ISA13, kind) of each interchange of a file that has keys (_run_keys), as the store records them."""
    return [(m.sender, m.control, m.kind) for m in scan.interchanges if _run_keys(m)] if scan else []


LOCK_NAME = ".edi-pipeline-batch.lock"


@contextlib.contextmanager
def exclusive_run(out: Path) -> Iterator[None]:
    """Hold OUT's batch lock for the run: a second batch on the same output folder (an overlapping
    cron job) stops at once instead of taking the same files. The lock goes with the process."""
    try:
        with file_lock(out / LOCK_NAME, wait=False):
            yield
    except LockHeld:
        raise EdiError(f"another edi-pipeline batch is running with --out {out} (it holds "
                       f"{out / LOCK_NAME}); this run did nothing") from None


def _run_lock(db: str, run: str) -> Path:
    """The lock file a batch run holds while it lives, next to its store (files it claims name the run)."""
    store = Path(db)
    return store.with_name(f".{store.name}.run-{run}.lock")


@contextlib.contextmanager
def store_run(db: str) -> Iterator[str]:
    """A new batch run's id, alive (see _run_alive) while inside: its claims on the store's files hold
    against every other run on the store, whatever its output folder, and lapse when the process dies."""
    run = uuid.uuid4().hex
    lock = _run_lock(db, run)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock):
        try:
            yield run
        finally:
            lock.unlink(missing_ok=True)


def _run_alive(db: str) -> Callable[[str], bool]:
    """Whether a batch run on the store at `db` still lives: its lock file exists and is held."""
    def alive(run: str) -> bool:
        lock = _run_lock(db, run)
        if not run.isalnum() or not lock.exists():
            return False
        try:
            with file_lock(lock, wait=False):  # held by nobody: that run died (kill -9, power loss)
                lock.unlink(missing_ok=True)
        except LockHeld:
            return True
        return False
    return alive


def run_batch(inbox: str | os.PathLike, out: str | os.PathLike, db: str | None = None, workers: int = 1,
              progress: Callable[[FileOutcome], None] | None = None,
              log_setup: tuple[bool, bool] | None = None, settle: float = 0) -> BatchSummary:
    """Files with claims first, then remits-only files (beside them with workers; reconciled at the end),
    then payers' acknowledgments (they answer the sets sent); `workers` processes in parallel.
    Files changed in the last `settle` seconds are left for the next run. One run at a time per
    output folder (EdiError when another holds it); runs sharing a store never take the same file."""
    out = Path(out)
    for sub in SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    db = db or str(out / "edi_pipeline.db")
    with exclusive_run(out), store_run(db) as run:
        return _run(inbox, out, db, workers, progress, log_setup, settle, run)


# The atomic writer's temporary files (writer.py): .NAME.xxxxxxxx.tmp beside their target.
_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def stale_temps(out: Path, before: float) -> list[Path]:
    """The atomic writer's temporary files in OUT's folders last changed before `before`: left by a run
    killed mid-write (the run lock guarantees no other run is writing them)."""
    stale = []
    for sub in SUBDIRS:
        with contextlib.suppress(FileNotFoundError), os.scandir(out / sub) as entries:
            for entry in entries:
                if _TEMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                        and entry.stat(follow_symlinks=False).st_mtime < before:
                    stale.append(Path(entry.path))
    return stale


def _start_run(out: Path) -> str:
    """A run's first step, holding OUT's lock: stamp the lock with the run's start, remove the temporary
    files older than it, and return the run's id (its UTC start, which sorts by time)."""
    lock = out / LOCK_NAME
    lock.touch()
    for tmp in stale_temps(out, os.stat(lock).st_mtime):
        tmp.unlink(missing_ok=True)
        log.info("stale temporary file removed", extra={"file": tmp.name})
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _run(inbox, out: Path, db: str, workers: int, progress, log_setup, settle: float, run: str) -> BatchSummary:
    started = _start_run(out)
    # (first: the workers spawn and load while the screen reads the inbox, which the first file waits for)
    pool = WorkerPool(workers, log_setup) if workers > 1 else None
    try:
        every, ignored = inbox_files(inbox)
        ready = settled(every, settle)
        screens = _screens(ready, members=workers > 1)  # one worker takes the files in order: no wave to keep apart
        scans = {p: s.scan if s else None for p, s in screens.items()}
        kinds = {p: scan.kind if scan else None for p, scan in scans.items()}
        shas = {p: s.sha if s else None for p, s in screens.items()}
        # (one worker takes the files in order anyway; with more, the screen says whether a claim corrects one)
        phases = run_phases(kinds, workers > 1 and any(s.corrects for s in scans.values() if s))
        store = Store(db)  # created and migrated once, before the workers race
        try:
            finish_publishing(store, out)  # outputs a killed run committed, not yet moved into place
            # remits of an earlier run killed (or failed) before its reconcile: this run reconciles them too
            waiting = store.batch_files_with_status(AWAITING_RECONCILE)
            blocks = reserve_blocks(out, [p for phase in run_phases(kinds, False) for p in phase], scans, shas, store)
        finally:
            store.close()
        summary = BatchSummary(ignored, waiting=len(every) - len(ready))

        sha_of = {p.name: shas[p] for p in scans}
        this_run: set[str] = set()  # the digests of the files this run took

        def record(outcome: FileOutcome) -> None:
            if outcome.status == CHANGING:
                summary.waiting += 1
            else:
                summary.files.append(outcome)
            if outcome.status == DONE and sha_of.get(outcome.name):
                this_run.add(sha_of[outcome.name])
            if progress:
                progress(outcome)

        split_jobs: list[tuple] = []
        for k, phase in enumerate(phases):
            todo = phase
            while todo and not (pool and pool.broken):
                # the payers' acknowledgments (the last phase) one by one: each records claim events, and a
                # claim's state is its last event
                wave, todo = (todo[:1], todo[1:]) if k == len(phases) - 1 else split_wave(todo, scans)
                store = Store(db)
                try:
                    early = screen_repeats(wave, scans, shas, out, store, run, this_run, blocks)
                finally:
                    store.close()
                for outcome in early.values():
                    record(outcome)
                def job(p: Path) -> tuple:  # _job's arguments; the file's held bytes go with them
                    return str(p), str(out), db, screens.pop(p), run, _interchanges(scans[p]), blocks.get(p, [])

                here = _to_split(wave, early, scans, screens, workers) if pool else []
                split_jobs = [job(p) for p in here]
                # (a generator: each file's held bytes go once it is processed)
                jobs = (job(p) for p in wave if p not in early and p not in here)
                results: Iterable[FileOutcome] = pool.outcomes(jobs) if pool else map(_job, jobs)
                while split_jobs and not pool.broken:  # here, beside the pool's files (each file's held bytes
                    record(pool.split(split_jobs.pop(0)))  # go once it is processed)
                for outcome in results:
                    record(outcome)
            if pool and pool.broken:  # the run stops: the files not taken are left for the next
                for path in [Path(a[0]) for a in split_jobs] + todo + [p for later in phases[k + 1:] for p in later]:
                    record(FileOutcome(path.name, FAILED, detail=f"{path.name}: not taken (a worker process of "
                                                                 "the run died); left in the inbox for the next run"))
                break
    finally:
        if pool:
            pool.close()
        with contextlib.suppress(OSError):  # nothing left staged: no empty folder left behind
            (out / STAGING).rmdir()
        with contextlib.suppress(EdiError, *STORE_ERRORS):  # its claims lapse with the run anyway
            store = Store(db)
            try:
                store.release_batch_claims(run)
            finally:
                store.close()
    failed = {f.name for f in summary.files if f.status == FAILED}
    if failed:  # left in the inbox: the next run tries them again
        store = Store(db)
        try:
            store.forget_batch_files([shas[p] for p in ready if p.name in failed and shas[p]], FAILED)
        finally:
            store.close()
    keys = [f.remits_key for f in summary.files if f.remits_key]
    keys += [k for k in (remits_key(row["sha256"], row["kind"]) for row in waiting) if k not in keys]
    if keys and not (pool and pool.broken):  # (else the next run reconciles them, with the files left)
        try:
            reconcile_into_report(summary, db, out, keys, started)
        except (EdiError, OSError) as exc:  # the files are done and recorded; say so and exit 1
            summary.reconcile_error = str(exc)
            log.error("reconcile failed", extra={"file": RECONCILIATION_REPORT, "reason": str(exc)})
        else:
            store = Store(db)
            try:
                store.set_batch_status([k.removesuffix(":835") for k in keys], DONE)
            finally:
                store.close()
    return summary


class WorkerPool:
    """The run's worker processes (spawned: no store connection or lock is inherited), all started at
    once. A worker that dies mid-job (the OOM killer, kill -9) breaks the pool (concurrent.futures'
    BrokenProcessPool, which ends every job in flight): each file whose job it ended is FAILED as an
    internal error (batch exits 3), nothing of it published and its store transaction rolled back with
    the process, left in the inbox; the run then takes no other file (`broken`) and reconciles nothing,
    so that the next run finishes the batch as one run would have."""

    def __init__(self, workers: int, log_setup: tuple[bool, bool] | None):
        from edi_pipeline.pipeline import split

        context = multiprocessing.get_context("spawn")
        table = split.walk_table(context)
        self.executor = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(log_setup, table))
        self.walkers = split.Walkers(self.executor, table)  # one for the run: its tickets are never reused
        self.broken = False
        for _ in range(workers):  # a no-op each, so all spawn now (the executor spawns one when none is idle)
            self.executor.submit(int)

    def outcomes(self, jobs: Iterable[tuple]) -> Iterator[FileOutcome]:
        """_job(args) of each of `jobs`, all handed to the workers now; their outcomes as they finish."""
        futures, lost = {}, []
        for args in jobs:
            try:
                futures[self.executor.submit(_job, args)] = args[0]
            except BrokenProcessPool:  # (a worker died meanwhile)
                lost.append(args[0])

        def finished() -> Iterator[FileOutcome]:
            yield from map(self._lost, lost)
            for done in as_completed(futures):
                try:
                    yield done.result()
                except BrokenProcessPool:
                    yield self._lost(futures[done])
        return finished()

    def split(self, args: tuple) -> FileOutcome:
        """_job(args) in this process, the file's transaction sets walked by the workers, or here when none has
        started one it needs (pipeline.split.Walkers)."""
        from edi_pipeline.pipeline.split import splitting

        try:
            with splitting(self.walkers):
                return _job(args)
        except BrokenProcessPool:
            return self._lost(args[0])

    def _lost(self, path: str) -> FileOutcome:
        self.broken = True
        name = Path(path).name
        reason = (f"{name}: internal error (a worker process died before the file was done: killed, or out of "
                  "memory); nothing of it kept, left in the inbox for the next run")
        log.error("file failed", extra={"file": name, "reason": reason})
        return FileOutcome(name, FAILED, detail=reason, internal=True)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _start_worker(log_setup: tuple[bool, bool] | None, table) -> None:
    """A WorkerPool process's start: the batch's logging, and the table of the walks split files hand out."""
    from edi_pipeline.pipeline import split

    if log_setup:
        setup_logging(*log_setup)
    split.share(table)


def _to_split(wave: list[Path], early: dict[Path, FileOutcome], scans: dict[Path, FileScan | None],
              screens: dict[Path, Screened | None], workers: int) -> list[Path]:
    """The files of a wave the run's own process takes, one at a time, splitting each across the workers
    (pipeline.split): its 837P files of at least split.SPLIT_BYTES when the wave holds fewer 837P files
    than workers (with more, whole files keep every worker busy)."""
    from edi_pipeline.pipeline import split  # (here: loads the TR3 walk, which an 835-only run never needs)

    claims = [p for p in wave if p not in early and scans[p] and Kind.CLAIM_837P in kinds_of(scans[p].kind)]
    if len(claims) >= workers:
        return []
    return [p for p in claims if screens[p] is not None and screens[p].identity[0] >= split.SPLIT_BYTES]


def retry_quarantined(inbox: str | os.PathLike, out: str | os.PathLike, db: str | None = None,
                      names: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """Put quarantined files (`names`, default every one) back into the inbox for the next run, and drop
    the batch records that would make it skip them (a resend is still a resend: the next run quarantines
    it again). Returns the names put back and a line per name that could not be. Holds OUT's lock."""
    out = Path(out)
    qdir = out / "quarantine"
    if names is None:
        names = sorted(p.name for p in (qdir.iterdir() if qdir.is_dir() else ())
                       if not p.name.endswith(".error.txt") and not p.name.startswith("."))
    moved, problems = [], []
    with exclusive_run(out):
        store = Store(db or str(out / "edi_pipeline.db"))
        try:
            for name in names:
                try:
                    src = output_path(qdir, name)
                    target = output_path(Path(inbox), name)
                    if name.endswith(".error.txt") or not src.is_file():
                        raise EdiError(f"{name}: not a quarantined file (see {qdir})")
                    if target.exists():
                        raise EdiError(f"{name}: the inbox already holds a file of that name; left in {qdir}")
                    store.forget_batch_files([path_sha256(src)], QUARANTINED)
                    shutil.move(src, target)
                    (qdir / f"{name}.error.txt").unlink(missing_ok=True)
                except (EdiError, OSError) as exc:
                    problems.append(str(exc) if isinstance(exc, EdiError) else f"{name}: {exc.strerror or exc}")
                else:
                    moved.append(name)
        finally:
            store.close()
    return moved, problems


def remits_key(sha: str, kind: str | None) -> str:
    """The store record a batch file's claim payments carry: a file holding 837P sets too keeps them
    apart from its claims (ingest_file's remits_only record)."""
    return f"{sha}:835" if Kind.CLAIM_837P in kinds_of(kind) else sha


RECONCILIATION_REPORT = "reconciliation-latest.csv"  # a copy of the last run's reconciliation-RUN.csv


def reconcile_into_report(summary: BatchSummary, db: str, out: Path, remits_keys: list[str], run: str) -> None:
    """Reconcile the claims the run's remits paid or denied (their whole history, not the whole store):
    per-claim rows to reports/reconciliation-RUN.csv (each run its own, kept) and a copy to
    reports/reconciliation-latest.csv, counts per status into the summary."""
    from edi_pipeline.analytics.reconcile import reconcile_pcns, statuses, write_claims_csv

    reports = out / "reports"
    name = f"reconciliation-{run}.csv"
    store = Store(db)
    try:  # a large scope is streamed from the store while the CSV is written
        rec = reconcile_pcns(store, store.remit_pcns(remits_keys))
        with atomic_output(output_path(reports, name), mode=0o600) as fh:
            claims = write_claims_csv(rec, fh)
        reconciled, unmatched = statuses(rec), len(rec.unmatched_remits)
    finally:
        store.close()
    atomic_copy(reports / name, output_path(reports, RECONCILIATION_REPORT), mode=0o600)
    summary.reconciliation = name
    summary.reconciled = reconciled
    summary.unmatched_remits = unmatched
    log.info("reconciled", extra={"file": name, "claims": claims, "payments": summary.count("payments")})


def bundled_fixtures() -> Path:
    return Path(__file__).resolve().parents[2] / "fixtures" / "edi"


def fresh_dir(path: Path) -> Path:
    """Empty `path` if this tool made it (it holds our marker), else refuse to touch it."""
    marker = path / ".edi-pipeline-demo"
    if path.exists() and any(path.iterdir()):
        if not marker.exists():
            raise EdiError(f"{path} exists and was not made by edi-pipeline demo; choose another --out")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by edi-pipeline demo\n")
    return path
