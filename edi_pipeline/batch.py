"""The clearinghouse batch job: every file in an inbox to 999s, corrected files, store rows or quarantine."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import EdiError, InterchangeError, Position
from .ingest import INGESTED, ingest_file
from .store import Store, kind_families, kind_label, path_sha256
from .writer import LockHeld, atomic_copy, atomic_output, file_lock
from .x12 import Delimiters, SegmentReader

log = logging.getLogger("edi_pipeline.batch")

SUBDIRS = ("acks", "outbound", "rejects", "reports", "quarantine")
DONE, SKIPPED, QUARANTINED = "done", "skipped", "quarantined"
# The store's status for a done file whose claim payments no reconciliation report holds yet (a run
# killed before its reconcile): the next run reconciles them.
AWAITING_RECONCILE = "awaiting reconcile"


@dataclass
class FileOutcome:
    name: str
    status: str  # DONE, SKIPPED or QUARANTINED
    kind: str | None = None
    detail: str = ""
    claims_in: int = 0
    claims_out: int = 0
    claims_held: int = 0
    findings: int = 0
    payments: int = 0
    acks_accepted: int = 0
    acks_rejected: int = 0
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
    waiting: int = 0  # files left for the next run: still changing (see run_batch's settle)

    def count(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.status == QUARANTINED for f in self.files)

    @property
    def internal_errors(self) -> int:
        return sum(f.internal for f in self.files)

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.count("claims_held") and not self.reconcile_error

    def to_dict(self) -> dict:
        return {
            "files": len(self.files),
            "done": sum(f.status == DONE for f in self.files),
            "skipped": sum(f.status == SKIPPED for f in self.files),
            "quarantined": self.quarantined,
            "waiting": self.waiting,
            **{k: self.count(k) for k in ("claims_in", "claims_out", "claims_held", "findings", "payments",
                                           "acks_accepted", "acks_rejected")},
            "reconciled": self.reconciled,
            "unmatched_remits": self.unmatched_remits,
            "reconcile_error": self.reconcile_error,
        }

    def to_json(self) -> dict:
        """The summary's counts and each file's outcome, in name order (batch --format json)."""
        return {**self.to_dict(), "ok": self.ok,
                "file_outcomes": [f.to_dict() for f in sorted(self.files, key=lambda f: f.name)]}


@dataclass
class InterchangeMark:
    """One ISA of a file, as the batch screen reads it: who sent it, its control number, where it is
    and which kinds of transaction set ('837P', '835') follow it."""

    elements: list[str]  # ISA01..ISA16 at 1..16
    line: int
    kinds: set[str] = field(default_factory=set)

    @property
    def sender(self) -> str:
        return self.elements[6].strip()

    @property
    def control(self) -> str:
        return self.elements[13].strip()

    @property
    def kind(self) -> str:
        return kind_label(self.kinds)


@dataclass
class FileScan:
    kind: str  # '837P', '835' or '837P+835'
    interchanges: list[InterchangeMark]


SCAN_CHUNK = 1 << 20
_SCAN_KINDS = {b"7": "837P", b"5": "835"}


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


def _scan_pattern(delims: Delimiters) -> re.Pattern[bytes]:
    """A segment terminator, then (after any line breaks) an ISA or an ST of an 837 or 835."""
    term = re.escape(delims.segment.encode("latin-1"))
    sep = re.escape(delims.element.encode("latin-1"))
    return re.compile(term + rb"[ \t\r\n]*(?:(?i:(ISA))|(?i:ST)" + sep + rb"83([57]))")


def scan_file(path: Path) -> FileScan:
    """Every interchange of a file (its ISA) and the kinds of set in it, read in chunks at C speed;
    EdiError when the file does not start with an ISA or holds neither an 837 nor an 835."""
    with open(path, "rb") as fh:
        head = fh.read(SCAN_CHUNK)
        buf = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        line = 1 + head[:len(head) - len(buf)].count(b"\n")
        mark, delims = _read_isa(buf, line, Position(path.name, line, 1, None, "ISA"))
        marks = [mark]
        pattern = _scan_pattern(delims)
        term = delims.segment.encode("latin-1")
        more = True
        while True:
            if more:
                chunk = fh.read(SCAN_CHUNK)
                more = bool(chunk)
                buf += chunk
            # Matches start at a terminator. What follows the last terminator before the final 128
            # bytes waits for the next chunk, so an ISA or ST cut between chunks is read whole.
            end = buf.rfind(term, 0, len(buf) - 128) if more else len(buf)
            if end <= 0:
                continue  # no whole segment yet: read on
            pos = last = 0
            while (m := pattern.search(buf, pos, end)) is not None:
                pos = m.end()
                if not m.group(1):
                    marks[-1].kinds.add(_SCAN_KINDS[m.group(2)])
                    continue
                isa_at = m.start(1)
                line += buf.count(b"\n", last, isa_at)
                last = isa_at
                try:
                    mark, new = _read_isa(buf[isa_at:isa_at + 4096], line)
                except InterchangeError:  # not a readable ISA: process_file's reader reports it
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
            delims, pattern, term = new, _scan_pattern(new), new.segment.encode("latin-1")
            buf = buf[isa_at:]
    kinds = set().union(*(m.kinds for m in marks))
    if not kinds:
        raise EdiError(f"{path.name}:1: no 837P or 835 transaction set in the file")
    return FileScan(kind_label(kinds), marks)


def output_name(store: Store, name: str, sha: str) -> str:
    """The name an input's outputs take: its own, unless a different file of that name was processed
    before (senders reuse names), whose outputs may still wait to be picked up; then its own tagged with
    this file's digest, so nothing of the earlier file is overwritten. The same file always gets the same name."""
    if not store.batch_name_taken(name, sha):
        return name
    p = Path(name)
    return f"{p.stem}.{sha[:12]}{p.suffix}"


def _quarantine(path: Path, out: Path, reason: str, name: str | None = None) -> FileOutcome:
    """Copy the file to quarantine/ (as `name`, default its own) with NAME.error.txt saying why."""
    name = name or path.name
    qdir = out / "quarantine"
    atomic_copy(path, qdir / name, mode=0o600)
    with atomic_output(qdir / f"{name}.error.txt", mode=0o600) as fh:
        fh.write(reason.rstrip() + "\n")
    log.warning("quarantined", extra={"file": path.name, "reason": reason.splitlines()[0]})
    return FileOutcome(path.name, QUARANTINED, detail=reason.splitlines()[0],
                       output=name if name != path.name else None)


def process_file(path: str | os.PathLike, out: str | os.PathLike, db: str, kind: str | None = None,
                 sha: str | None = None) -> FileOutcome:
    """Handle one inbox file by type (`kind` as scan_file gives it, and its `sha`256, when already
    known); safe to rerun after a crash (everything it writes is idempotent)."""
    path, out = Path(path), Path(out)
    sha = sha or path_sha256(path)
    store = Store(db)
    try:
        if store.batch_file_done(sha):
            return FileOutcome(path.name, SKIPPED, detail="already processed")
        kind, outcome = _process(path, out, store, sha, kind)
        outcome.kind = outcome.kind or kind
        status = AWAITING_RECONCILE if outcome.status == DONE and outcome.remits_key else outcome.status
        store.mark_batch_file(sha, path.name, kind, status, outcome.detail)
        if outcome.status == DONE:
            log.info("file done", extra={"file": path.name, "kind": kind, "claims_in": outcome.claims_in,
                                         "claims_held": outcome.claims_held, "payments": outcome.payments,
                                         "output": outcome.output or path.name})
        return outcome
    finally:
        store.close()


def _process(path: Path, out: Path, store: Store, sha: str,
             kind: str | None) -> tuple[str | None, FileOutcome]:
    """process_file's work on a file not done before: its kind and its outcome, DONE or QUARANTINED."""
    name = output_name(store, path.name, sha)
    try:
        kind = kind or scan_file(path).kind
    except EdiError as exc:
        return None, _quarantine(path, out, str(exc), name)
    outcome = FileOutcome(path.name, DONE, kind, output=name if name != path.name else None)
    log.info("file started", extra={"file": path.name, "kind": kind})
    if "837P" in kind:
        from .scrub import scrub_file  # here: an 835-only run does not pay for loading rules and TR3 maps
        from .validate import validate_file, write_acks

        result = validate_file(path, path.name)
        write_acks(result, out / "acks", name)
        for ack in result.acks_to_send():
            outcome.acks_accepted += ack.accepted
            outcome.acks_rejected += not ack.accepted

        def quarantined(reason: str) -> tuple[str, FileOutcome]:  # its acks are written: the summary counts them
            q = _quarantine(path, out, reason, name)
            q.acks_accepted, q.acks_rejected = outcome.acks_accepted, outcome.acks_rejected
            return kind, q

        rejected = result.rejected_interchanges()
        if rejected:  # its TA1 rejects the interchange: nothing of the file goes on or into the store
            return quarantined(f"{path.name}: interchange {rejected[0].control_number} rejected "
                               f"(TA1 {rejected[0].note}, in acks/): {rejected[0].errors[0]}")
        try:
            scrubbed = scrub_file(path, out / "outbound" / name, out / "rejects" / name, store,
                                  sha256=sha, withheld=result.rejected_sets())
        except EdiError as exc:
            return quarantined(str(exc))
        if not scrubbed.claims_out:  # nothing to send: no empty file for the sender to pick up
            (out / "outbound" / name).unlink(missing_ok=True)
        with atomic_output(out / "reports" / f"{name}.json", mode=0o600) as fh:
            scrubbed.write_report(fh)
        outcome.claims_in += scrubbed.claims_in
        outcome.claims_out += scrubbed.claims_out
        outcome.claims_held += scrubbed.claims_held
        outcome.findings += len(scrubbed.findings)
    if "835" in kind:
        # a file holding 837P sets too: scrub stored those, so load only its 835 sets here
        key = remits_key(sha, kind)
        stored = store.seen_file(key)
        if stored is not None:  # a run killed after storing it, before marking it done: finish it
            outcome.payments += stored["payments"] or 0
            outcome.remits_key = key if stored["payments"] else None
            outcome.detail = "stored by an interrupted run; finished now"
            return kind, outcome
        ingested = ingest_file(path, store, origin="batch", remits_only="837P" in kind, sha256=sha)
        if ingested.status != INGESTED:  # rejected, or an interchange already in the store
            return kind, _quarantine(path, out, f"{path.name}: {ingested.status}: {ingested.reason}", name)
        outcome.payments += ingested.payments
        outcome.findings += len(ingested.findings)
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


def _job(args: tuple[str, str, str, str | None, str | None]) -> FileOutcome:
    path, out, db, kind, sha = args
    try:
        return process_file(path, out, db, kind, sha)
    except Exception as exc:  # one bad file must not stop the batch
        # our own errors say what and where (never data values), system errors why; anything else only its type
        internal = not isinstance(exc, (EdiError, OSError))
        if internal:
            why = f"internal error ({type(exc).__name__})"
        else:
            why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        reason = f"{Path(path).name}: {why}"
        try:
            outcome = _quarantine(Path(path), Path(out), reason)
        except OSError:
            outcome = FileOutcome(Path(path).name, QUARANTINED, detail=reason)
        outcome.internal = internal
        return outcome


# Names upload tools give a file while it is written (renamed when complete): never read.
PARTIAL_SUFFIXES = (".part", ".filepart", ".partial", ".tmp", ".crdownload", ".uploading")


def inbox_files(inbox: str | os.PathLike) -> list[Path]:
    """The inbox's files, hidden files and partial uploads left out."""
    return sorted(p for p in Path(inbox).iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(PARTIAL_SUFFIXES))


def settled(files: list[Path], seconds: float) -> list[Path]:
    """The files unchanged for at least `seconds` (the others may still be being written)."""
    if seconds <= 0:
        return files
    cutoff = time.time() - seconds
    return [p for p in files if p.stat().st_mtime <= cutoff]


def _scan_or_none(path: Path) -> FileScan | None:
    """scan_file, or None when it cannot tell (process_file then quarantines the file with the reason)."""
    try:
        return scan_file(path)
    except (EdiError, OSError):
        return None


def _sha_or_none(path: Path) -> str | None:
    try:
        return path_sha256(path)
    except OSError:
        return None


def screen_repeats(order: list[Path], scans: dict[Path, FileScan | None], shas: dict[Path, str | None], out: Path,
                   store: Store) -> dict[Path, FileOutcome]:
    """The run's files that must not be processed, decided before any worker starts (so two workers
    can never both take one interchange):
    - a second copy of the same bytes under another name: skipped;
    - a different file holding an interchange (ISA06 sender + ISA13 control number, same kind of sets)
      processed before, in an earlier run or earlier in this one: quarantined whole, since its claims
      would go to the payer twice or its payments count twice (TA1 note 025, duplicate control number)."""
    early: dict[Path, FileOutcome] = {}
    first_copy: dict[str, Path] = {}
    first_of_interchange: dict[tuple[str, str, str], Path] = {}
    for path in order:
        sha, scan = shas[path], scans[path]
        if sha is None or scan is None or store.batch_file_done(sha):
            continue  # process_file says why it cannot read it, or skips it as done
        if sha in first_copy:
            early[path] = FileOutcome(path.name, SKIPPED, scan.kind, detail=f"same bytes as {first_copy[sha].name}")
            continue
        first_copy[sha] = path
        marks = [m for m in scan.interchanges if m.kinds]
        in_run = {k: first_of_interchange[key] for k, m in enumerate(marks) for key in _run_keys(m)
                  if key in first_of_interchange}
        in_store = store.earlier_interchanges([(m.sender, m.control, m.kind) for m in marks], exclude_sha=sha)
        for m in marks:
            for key in _run_keys(m):
                first_of_interchange.setdefault(key, path)
        repeats = sorted(in_run.keys() | in_store.keys())
        if not repeats:
            continue
        k = repeats[0]
        m = marks[k]
        source = (f"{in_run[k].name}, earlier in this run" if k in in_run
                  else f"{in_store[k]['name']}, {in_store[k]['ingested_at']}")
        rest = (f"; the file's other interchanges ({len(marks) - len(repeats)}) are new, held with it: they need "
                "a file of their own" if len(repeats) < len(marks) else "")
        index = isa_index(path, scan.interchanges, m)
        outcome = _quarantine(path, out, f"{path.name}:{m.line}: ISA#{index} ISA13 TA1-025 interchange {m.control} "
                                         f"from {m.sender} already processed ({source}); a new file needs a new "
                                         f"ISA13{rest}", output_name(store, path.name, sha))
        from .validate import write_ta1

        for j in repeats:
            write_ta1(out / "acks", f"{outcome.output or path.name}.{marks[j].control}.ta1", marks[j].elements, "025")
        outcome.kind = scan.kind
        store.mark_batch_file(sha, path.name, scan.kind, outcome.status, outcome.detail)
        early[path] = outcome
    return early


def isa_index(path: Path, marks: list[InterchangeMark], mark: InterchangeMark) -> int:
    """`mark`'s segment position in the file, counted as the envelope reader counts (a second read,
    made only to report a repeat: the screen's scan counts lines, not segments)."""
    at = next(k for k, m in enumerate(marks) if m is mark)
    if at == 0:
        return 1
    nth = sum(1 for m in marks[:at] if m.line == mark.line)  # ISAs before it on its line
    with SegmentReader(path, path.name) as reader:
        for index, (text, line) in enumerate(reader, 1):
            if line == mark.line and text[:3].upper() == "ISA":
                if not nth:
                    return index
                nth -= 1
    return 0


def _run_keys(mark: InterchangeMark) -> list[tuple[str, str, str]]:
    """The keys a run's interchanges are told apart by: one per kind of set it holds."""
    return [(family, mark.sender, mark.control) for family in sorted(kind_families(mark.kind))]


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


def run_batch(inbox: str | os.PathLike, out: str | os.PathLike, db: str | None = None, workers: int = 1,
              progress: Callable[[FileOutcome], None] | None = None,
              log_setup: tuple[bool, bool] | None = None, settle: float = 0) -> BatchSummary:
    """837P files first (so remits find their claims), then 835s; `workers` processes in parallel.
    Files changed in the last `settle` seconds are left for the next run. One run at a time per
    output folder (EdiError when another holds it)."""
    out = Path(out)
    for sub in SUBDIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    with exclusive_run(out):
        return _run(inbox, out, db or str(out / "edi_pipeline.db"), workers, progress, log_setup, settle)


def _run(inbox, out: Path, db: str, workers: int, progress, log_setup, settle: float) -> BatchSummary:
    every = inbox_files(inbox)
    ready = settled(every, settle)
    scans = {p: _scan_or_none(p) for p in ready}
    kinds = {p: scan.kind if scan else None for p, scan in scans.items()}
    shas = {p: _sha_or_none(p) for p in scans}
    remits = [p for p, kind in kinds.items() if kind == "835"]
    phases = [[p for p, kind in kinds.items() if kind != "835"], remits]
    store = Store(db)  # created and migrated once, before the workers race
    try:
        early = screen_repeats(phases[0] + phases[1], scans, shas, out, store)
        # remits of an earlier run killed (or failed) before its reconcile: this run reconciles them too
        waiting = store.batch_files_with_status(AWAITING_RECONCILE)
    finally:
        store.close()
    summary = BatchSummary(waiting=len(every) - len(ready))
    for outcome in early.values():
        summary.files.append(outcome)
        if progress:
            progress(outcome)
    pool = None
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=setup_logging if log_setup else None, initargs=log_setup or ())
    try:
        for phase in phases:
            jobs = [(str(p), str(out), db, kinds[p], shas[p]) for p in phase if p not in early]
            results: Iterable[FileOutcome] = pool.imap_unordered(_job, jobs) if pool else map(_job, jobs)
            for outcome in results:
                summary.files.append(outcome)
                if progress:
                    progress(outcome)
    finally:
        if pool:
            pool.close()
            pool.join()
    keys = [f.remits_key for f in summary.files if f.remits_key]
    keys += [k for k in (remits_key(row["sha256"], row["kind"]) for row in waiting) if k not in keys]
    if keys:
        try:
            reconcile_into_report(summary, db, out, keys)
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


def remits_key(sha: str, kind: str | None) -> str:
    """The store record a batch file's claim payments carry: a file holding 837P sets too keeps them
    apart from its claims (ingest_file's remits_only record)."""
    return f"{sha}:835" if "837P" in (kind or "") else sha


RECONCILIATION_REPORT = "reconciliation.csv"


def reconcile_into_report(summary: BatchSummary, db: str, out: Path, remits_keys: list[str]) -> None:
    """Reconcile the claims the run's remits paid or denied (their whole history, not the whole store):
    per-claim rows to reports/reconciliation.csv, counts per status into the summary."""
    from .reconcile import reconcile, statuses, write_claims_csv

    store = Store(db)
    try:
        rec = reconcile(store, pcns=store.remit_pcns(remits_keys))
    finally:
        store.close()
    with atomic_output(out / "reports" / RECONCILIATION_REPORT, mode=0o600) as fh:
        claims = write_claims_csv(rec, fh)
    summary.reconciled = statuses(rec)
    summary.unmatched_remits = len(rec.unmatched_remits)
    log.info("reconciled", extra={"file": RECONCILIATION_REPORT, "claims": claims,
                                  "payments": summary.count("payments")})


def bundled_fixtures() -> Path:
    return Path(__file__).resolve().parent.parent / "fixtures" / "edi"


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
