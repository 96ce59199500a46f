"""Building a corrected (CLM05-3 = 7) or void (CLM05-3 = 8) 837P of stored claims, from the files they came in.

A claim's latest stored submission names its source file (by base name and sha256) and position; the
file is looked for among the given sources (files, or folders holding it; default the current folder) and
must have the sha256 ingested (else the claim is refused: the store keeps no segments). Its
transaction set is cut down to the claim (HL loops renumbered), CLM05-3 set, and 2300 REF*F8 set to the
payer's claim control number: the CLP07 of its latest 835 payment, else a payer claim number recorded
with a 277CA event (detail "1K:<number>"). The sets go out in one new interchange (ISA13 = GS06 = one
above the largest control number the store knows of the sender). A corrected claim then goes through
the scrubber, whose corrections it keeps; one the scrubber would hold is refused. A void goes as the
claim was sent. The output is written atomically, mode 0600 (it holds PHI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from edi_pipeline.tx.document import iter_records, transaction_records
from edi_pipeline.x12.envelope import EnvelopeReader, Transaction
from edi_pipeline.x12.isa import Isa
from edi_pipeline.x12.segment import Segment
from edi_pipeline.core.errors import EdiError, IssueList
from edi_pipeline.tx.model import Claim
from edi_pipeline.scrub.scrubber import rebuild, scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.core.files import path_sha256
from edi_pipeline.x12.writer import renumber_lx, set_se_count
from edi_pipeline.core.files import atomic_output, replace_file

CORRECTED, VOID = "7", "8"
# 2300 segments that precede REF*F8 (TR3 order: CLM, DTP, PWK, CN1, AMT, then REF*4N/F5/EW/9F/G1)
_BEFORE_F8 = frozenset({"CLM", "DTP", "PWK", "CN1", "AMT"})
_REF_BEFORE_F8 = frozenset({"4N", "F5", "EW", "9F", "G1"})


class ResubmitError(EdiError):
    """A claim that cannot be resubmitted, or an output that cannot be written."""


@dataclass
class ResubmitResult:
    output: str
    claims: list[str] = field(default_factory=list)  # patient control numbers written
    refused: list[str] = field(default_factory=list)  # "PCN: why" lines


def payer_claim_number(store: Store, pcn: str) -> str | None:
    """The payer's claim control number of a claim: its latest 835 CLP07, else a 277CA's REF*1K."""
    for row in store.query("select payer_claim_control_number from claim_payments where patient_control_number = ? "
                           "and coalesce(payer_claim_control_number, '') != '' order by rowid desc limit 1", [pcn]):
        return row["payer_claim_control_number"]
    for row in store.query("select detail from claim_events where patient_control_number = ? and detail like '1K:%' "
                           "order by rowid desc limit 1", [pcn]):
        return row["detail"][3:] or None
    return None


def edit_claim(claim: Claim, frequency: str, f8: str) -> list[str]:
    """The claim's segments with CLM05-3 = `frequency` and 2300 REF*F8 = `f8` (replaced, or inserted in
    TR3 order)."""
    segs = list(claim.segments[claim.start:claim.end])
    clm = claim.segment(claim.start)
    clm["CLM05-3"] = frequency
    segs[0] = clm.text
    sep = claim.delimiters.element
    ref = Segment.of("REF", "F8", f8, delimiters=claim.delimiters).text
    at = 1
    for k in range(1, len(segs)):
        e = segs[k].split(sep)
        if e[0] == "REF" and len(e) > 1 and e[1] == "F8":
            segs[k] = ref
            return segs
        if e[0] in _BEFORE_F8 or (e[0] == "REF" and len(e) > 1 and e[1] in _REF_BEFORE_F8):
            at = k + 1
        elif e[0] != "REF":
            break
    segs.insert(at, ref)
    return segs


def _latest_submissions(store: Store, pcns: list[str]) -> dict[str, dict]:
    out = {}
    for pcn in pcns:
        for row in store.query(
                "select c.file_sha256, c.segment_index, c.frequency_code, f.name, f.sha256 from claims c "
                "join files f on f.sha256 = c.file_sha256 where c.patient_control_number = ? "
                "order by c.rowid desc limit 1", [pcn]):
            out[pcn] = row
    return out


def _next_control(store: Store, sender: str) -> int:
    top = 0
    for row in store.query("select isa_control from interchanges where isa_sender = ?", [sender]):
        if (row["isa_control"] or "").strip().isdigit():
            top = max(top, int(row["isa_control"]))
    return top % 999_999_999 + 1


def _header(tx: Transaction, control: int, stamp: datetime) -> tuple[str, str]:
    """ISA and GS of `tx`'s envelope with new control numbers and date/time."""
    isa, gs = Segment(tx.isa, tx.delimiters), Segment(tx.gs, tx.delimiters)
    # by number, not designator: the reader also takes a lower-case "isa"/"gs" (with a warning)
    isa[9], isa[10], isa[13] = stamp.strftime("%y%m%d"), stamp.strftime("%H%M"), f"{control:09d}"
    gs[4], gs[5], gs[6] = stamp.strftime("%Y%m%d"), stamp.strftime("%H%M"), str(control)
    return isa.text, gs.text


def _find_source(name: str, sha: str, sources: Iterable[str | os.PathLike]) -> Path | None:
    """The first of `sources` (files, or folders holding a file of the stored name) with the sha256 ingested."""
    for s in map(Path, sources):
        p = s / name if s.is_dir() else s
        try:
            if p.is_file() and path_sha256(p) == sha:
                return p
        except OSError:
            continue
    return None


def resubmit(store: Store, pcns: list[str], output: str, void: bool = False,
             sources: Iterable[str | os.PathLike] = (".",)) -> ResubmitResult:
    """Write the corrected (or, with `void`, void) claims of `pcns` to `output`; see the module docstring.
    The claims' source files are looked for in `sources` (see _find_source). Claims that cannot go are
    listed in `refused`; raises ResubmitError when none can."""
    sources = list(sources)
    result = ResubmitResult(output)
    frequency = VOID if void else CORRECTED
    subs = _latest_submissions(store, pcns)
    wanted: dict[str, dict[int, tuple[str, str]]] = {}  # file name -> segment index -> (pcn, F8)
    for pcn in dict.fromkeys(pcns):
        sub = subs.get(pcn)
        f8 = payer_claim_number(store, pcn)
        if sub is None:
            result.refused.append(f"claim {pcn}: not in the store")
        elif sub["frequency_code"] == VOID:
            result.refused.append(f"claim {pcn}: its latest submission is a void")
        elif not f8:
            result.refused.append(f"claim {pcn}: no payer claim control number (no 835 CLP07 or 277CA REF*1K)")
        else:
            wanted.setdefault(sub["name"], {})[sub["segment_index"]] = (pcn, f8)
    sets: list[tuple[Transaction, list[str], list[str]]] = []  # (set, segments, pcns)
    for name, at in wanted.items():
        sha = next(s["sha256"] for s in subs.values() if s["name"] == name)
        path = _find_source(name, sha, sources)
        if path is None:
            result.refused.extend(f"claim {pcn}: its source file {name} (as ingested) is not in "
                                  f"{', '.join(map(str, sources))}" for pcn, _ in at.values())
            continue
        with EnvelopeReader(path, name) as env:
            for tx in env:
                if not isinstance(tx, Transaction):
                    continue
                claims = [r for r in transaction_records(tx, IssueList()) if isinstance(r, Claim)]
                hits = [c for c in claims if c.source.segment_index in at]
                if not hits:
                    continue
                replace = {c.start: (edit_claim(c, frequency, at[c.source.segment_index][1])
                                     if c in hits else None) for c in claims}
                segs = rebuild(tx, claims, replace)
                if segs:
                    sets.append((tx, set_se_count(renumber_lx(segs, tx.delimiters), tx.delimiters),
                                 [at[c.source.segment_index][0] for c in hits]))
    if not sets:
        raise ResubmitError("; ".join(result.refused) or "no claim to resubmit")
    first = sets[0][0]
    control = _next_control(store, Isa.of(first.isa, first.delimiters.element).sender)
    stamp = datetime.now(timezone.utc)
    d = first.delimiters
    end = d.segment + d.suffix
    isa, _ = _header(first, control, stamp)
    parts = [isa]
    for tx, segs, _ in sets:
        gs = _header(tx, control, stamp)[1]
        parts += [gs, *segs, d.element.join(("GE", "1", str(control)))]
    parts.append(d.element.join(("IEA", str(len(sets)), f"{control:09d}")))
    text = end.join(parts) + end
    written = [p for _, _, ps in sets for p in ps]
    if void:
        with atomic_output(output) as fh:
            fh.write(text)
        result.claims = written
        return result
    fd, raw = tempfile.mkstemp(prefix=".resubmit.", suffix=".837", dir=Path(output).parent if output != "-" else None)
    scrubbed_path, rejects = raw + ".scrubbed", raw + ".held"
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        scrubbed = scrub_file(raw, scrubbed_path, rejects, name="resubmission")
        held = {r.patient_control_number for r in iter_records(rejects) if isinstance(r, Claim)} \
            if scrubbed.held else set()
        result.claims = [p for p in written if p not in held]
        result.refused += [f"claim {p}: the scrubber holds it (run `edi-pipeline scrub` on its file to see why)"
                           for p in written if p in held]
        if not result.claims:
            raise ResubmitError("; ".join(result.refused))
        if output == "-":
            with open(scrubbed_path) as fh:
                shutil.copyfileobj(fh, sys.stdout)
        else:
            os.chmod(scrubbed_path, 0o600)
            replace_file(scrubbed_path, output)
    finally:
        for p in (raw, scrubbed_path, rejects):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    return result


__all__ = ["resubmit", "ResubmitResult", "ResubmitError", "edit_claim", "payer_claim_number"]
