"""Building a corrected (CLM05-3 = 7) or void (CLM05-3 = 8) 837P of stored claims, from the files they came in.

A claim's latest stored submission names its source file (by base name and sha256) and position; the
file is looked for among the given sources (files, or folders holding it; default the current folder) and
must have the sha256 ingested (else the claim is refused: the store keeps no segments). Its
transaction set is cut down to the claim (HL loops renumbered), CLM05-3 set, and 2300 REF*F8 set to the
payer's claim control number: the CLP07 of its latest 835 payment, else a payer claim number recorded
with a 277CA event (detail "1K:<number>"). The sets go out in one new interchange (ISA13 = GS06 = one
above the largest control number the store knows of the sender), under one GS (sets numbered ST02 0001,
0002, ...) unless their source GS differ in more than date, time and control number (then each further
GS06 is the next number); a claim whose source file has other delimiters than the first is refused.
A corrected claim then goes through the scrubber, whose corrections it keeps; one the scrubber would
hold is refused. A void goes as the claim was sent. The output is written atomically, mode 0600 (it holds PHI).

A secondary claim (`secondary`) goes to the next payer, from the primary's latest stored 835 answer
(CLP02 1, 4 or 19): the 2320 with SBR01 = S and its 2330A/2330B become the 2000B SBR (SBR01 = S),
2010BA and 2010BB; the primary (the old 2000B/2010BA/2010BB) becomes a 2320 (SBR01 = P) with the
835's claim-level CAS, AMT*D = CLP04 (AMT*EAF = CLP05 when not zero), OI, 2330A and 2330B (REF*F8 =
CLP07); each line gets a 2430 with SVD (the 835 line matched by REF*6R, else by procedure), its CAS and
DTP*573 = the payment date. Lines must balance (SV102 = SVC03 + the line's CAS) and so must the claim
(CLM02 = CLP04 + every CAS), else the claim is refused with the 835's position. Only a patient who is
the subscriber of both payers (no 2000C, SBR02 = 18 in both) is supported; 2330C-G loops are dropped.
Secondary claims are not scrubbed (a correction would break the balance) and keep CLM05-3.
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
from edi_pipeline.core.errors import EdiError, Issue, IssueList, Position
from edi_pipeline.core.values import cents, format_amount, format_number, from_cents
from edi_pipeline.tx.model import Claim, ServiceLine
from edi_pipeline.scrub.scrubber import rebuild, scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.core.files import path_sha256
from edi_pipeline.x12.writer import renumber_lx, set_se_count
from edi_pipeline.core.files import atomic_output, replace_file

CORRECTED, VOID = "7", "8"
_PRIMARY_STATUSES = frozenset({"1", "4", "19"})  # CLP02: processed as primary (19: and forwarded), denied
_2010BB_REFS = frozenset({"2U", "EI", "FY", "NF"})  # 2330B REFs that 2010BB also takes
BALANCE = "SECONDARY-BALANCE"  # the issue code of an 835 answer that does not balance the claim
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


def _st_control(segs: list[str], n: int, sep: str) -> list[str]:
    """The set with ST02 = SE02 = n (four digits), so the sets of one GS are numbered apart."""
    st, se = segs[0].split(sep), segs[-1].split(sep)
    st[2:3] = [f"{n:04d}"]
    se[2:3] = [f"{n:04d}"]
    return [sep.join(st), *segs[1:-1], sep.join(se)]


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


@dataclass
class PrimaryRemit:
    """The primary payer's latest stored 835 answer to a claim; amounts in cents, adjustments as
    (group, reason, cents, quantity), `lines` the service payments (dicts) each with its "cas"."""

    file: str
    segment_index: int
    line: int
    paid: int
    patient_responsibility: int
    payer_claim_number: str | None
    paid_on: str  # CCYYMMDD, BPR16
    claim_cas: list[tuple]
    lines: list[dict]


def primary_remit(store: Store, pcn: str) -> PrimaryRemit | str:
    """The primary's latest 835 answer to claim `pcn`, or why there is none to forward."""
    rows = list(store.query(
        "select cp.id, cp.status_code, cp.paid_cents, cp.patient_responsibility_cents, "
        "cp.payer_claim_control_number, cp.segment_index, cp.line, r.payment_date, f.name from claim_payments cp "
        "join remits r on r.id = cp.remit_id join files f on f.sha256 = cp.file_sha256 "
        "where cp.patient_control_number = ? order by cp.rowid desc limit 1", [pcn]))
    if not rows:
        return "no 835 of the primary payer in the store"
    cp = rows[0]
    if cp["status_code"] not in _PRIMARY_STATUSES:
        return f"its latest 835 payment (CLP02 {cp['status_code']}) is not a primary payer's adjudication"
    if not cp["payment_date"]:
        return "its 835 has no payment date (BPR16)"
    lines = list(store.query("select id, procedure, modifiers, original_procedure, paid_cents, units, "
                             "control_number, segment_index, line from service_payments where claim_payment_id = ? "
                             "order by seq", [cp["id"]]))
    by_id = {sp["id"]: sp for sp in lines}
    for sp in lines:
        sp["cas"] = []
    claim_cas: list[tuple] = []
    for a in store.query("select service_payment_id, group_code, reason, amount_cents, quantity from adjustments "
                         "where claim_payment_id = ? order by rowid", [cp["id"]]):
        sp = by_id.get(a["service_payment_id"])
        (sp["cas"] if sp else claim_cas).append((a["group_code"], a["reason"], a["amount_cents"] or 0, a["quantity"]))
    return PrimaryRemit(cp["name"], cp["segment_index"], cp["line"], cp["paid_cents"] or 0,
                        cp["patient_responsibility_cents"] or 0, cp["payer_claim_control_number"],
                        cp["payment_date"].replace("-", ""), claim_cas, lines)


def _seg(sep: str, *elements: str | None) -> str:
    """A segment of `elements` without trailing empty ones."""
    els = ["" if e is None else e for e in elements]
    while els and els[-1] == "":
        els.pop()
    return sep.join(els)


def _el(elements: list[str], k: int) -> str:
    return elements[k] if len(elements) > k else ""


def _money(amount: int) -> str:
    return format_amount(from_cents(amount))


def _cas(adjustments: list[tuple], sep: str) -> list[str]:
    """CAS segments: one per group code in first-seen order, up to six reasons each (then another)."""
    by_group: dict[str, list[tuple]] = {}
    for a in adjustments:
        by_group.setdefault(a[0], []).append(a)
    out = []
    for group, items in by_group.items():
        for k in range(0, len(items), 6):
            els = ["CAS", group]
            for _, reason, amount, quantity in items[k:k + 6]:
                els += [reason, _money(amount), quantity or ""]
            out.append(_seg(sep, *els))
    return out


def _nm1_loops(segs: list[str], sep: str) -> tuple[list[str], dict[str, list[str]]]:
    """The segments before the first NM1, and each NM1 loop (the NM1 and what follows it up to the next
    NM1) by its NM101; the first loop of an entity code wins."""
    head: list[str] = []
    loops: dict[str, list[str]] = {}
    cur = head
    for text in segs:
        if text.startswith("NM1" + sep):
            cur = []
            loops.setdefault(_el(text.split(sep), 1), cur)
        cur.append(text)
    return head, loops


def _pick(segs: list[str], sep: str, *ids: str) -> list[str]:
    return [t for t in segs if t.split(sep, 1)[0] in ids]


def _match(line: ServiceLine, unused: list[dict]) -> dict | None:
    """The 835 service payment answering an 837 line: by REF*6R, else the first of the same procedure."""
    for hit in ((lambda sp: bool(line.control_number) and sp["control_number"] == line.control_number),
                (lambda sp: line.procedure in (sp["original_procedure"], sp["procedure"]))):
        for sp in unused:
            if hit(sp):
                unused.remove(sp)
                return sp
    return None


def _balance_issue(what: str, paid: int, adjusted: int, charge: int | None,
                   pos: Position) -> Issue | None:
    if charge is not None and paid + adjusted == charge:
        return None
    return Issue(BALANCE, f"{what}: paid {_money(paid)} + adjustments {_money(adjusted)} != charge "
                          f"{'?' if charge is None else _money(charge)}", pos)


def secondary_claim(claim: Claim, remit: PrimaryRemit, sep: str,
                    comp: str) -> tuple[list[str], list[str]] | str | list[Issue]:
    """The 2000B loop (without its HL) and the 2300 loop of `claim` to its next payer, built as the
    module docstring says; or why it cannot go (text), or the balancing issues of the 835 answer."""
    segs = claim.segments
    if not (segs[claim.hl_subscriber].startswith("HL" + sep) and segs[claim.hl_subscriber + 1].startswith("SBR" + sep)):
        return "its 2000B subscriber loop has no SBR"
    stop = next(k for k in range(claim.hl_subscriber + 1, claim.start + 1)
                if segs[k].startswith(("HL" + sep, "CLM" + sep)))
    pat, loops = _nm1_loops(segs[claim.hl_subscriber + 2:stop], sep)
    sbr = segs[claim.hl_subscriber + 1].split(sep)
    first_line = claim.lines[0].start if claim.lines else claim.end
    marks = [k for k in range(claim.start, first_line) if segs[k].startswith("SBR" + sep)]
    groups = [segs[a:b] for a, b in zip(marks, [*marks[1:], first_line])]
    nxt = next((g for g in groups if _el(g[0].split(sep), 1) == "S"), None)
    if not groups:
        return "no other payer on the claim (2320/2330B)"
    if nxt is None:
        return "no secondary payer on the claim (2320 SBR01 = S)"
    nsbr = nxt[0].split(sep)
    _, other = _nm1_loops(nxt[1:], sep)
    ba, bb, oa, ob = loops.get("IL"), loops.get("PR"), other.get("IL"), other.get("PR")
    if not (ba and bb and oa and ob):
        return "its 2010BA/2010BB or the secondary's 2330A/2330B is missing"
    if claim.hl_patient is not None or _el(sbr, 2) != "18" or _el(nsbr, 2) != "18":
        return "the patient is not the subscriber of both payers (2000C, or SBR02 other than 18): not supported"
    subscriber = [_seg(sep, "SBR", "S", "18", *nsbr[3:10]), *pat,
                  oa[0], *(_pick(oa, sep, "N3", "N4") or _pick(ba, sep, "N3", "N4")), *_pick(ba, sep, "DMG"),
                  *[t for t in _pick(oa, sep, "REF") if _el(t.split(sep), 1) == "SY"],
                  ob[0], *_pick(ob, sep, "N3", "N4"),
                  *[t for t in _pick(ob, sep, "REF") if _el(t.split(sep), 1) in _2010BB_REFS]]
    clm = segs[claim.start].split(sep)
    primary = [_seg(sep, "SBR", "P", "18", *sbr[3:10]), *_cas(remit.claim_cas, sep),
               _seg(sep, "AMT", "D", _money(remit.paid))]
    if remit.patient_responsibility:
        primary.append(_seg(sep, "AMT", "EAF", _money(remit.patient_responsibility)))
    primary += [_seg(sep, "OI", "", "", _el(clm, 8) or "Y", "", "", _el(clm, 9) or "Y"),
                ba[0], *_pick(ba, sep, "N3", "N4"), bb[0]]
    if not remit.lines:
        primary.append(_seg(sep, "DTP", "573", "D8", remit.paid_on))
    if remit.payer_claim_number:
        primary.append(_seg(sep, "REF", "F8", remit.payer_claim_number))
    payer_id = _el(bb[0].split(sep), 9)
    issues: list[Issue] = []
    lines: list[str] = []
    unused = list(remit.lines)
    adjusted = sum(a[2] for a in remit.claim_cas)
    for ln in claim.lines:
        body = segs[ln.start:ln.end]
        if not remit.lines:
            lines += body
            continue
        sp = _match(ln, unused)
        if sp is None:
            return f"line {ln.line_number}: no service line of its 835 answers it"
        line_adjusted = sum(a[2] for a in sp["cas"])
        adjusted += line_adjusted
        issue = _balance_issue(f"claim line {ln.line_number}", sp["paid_cents"] or 0, line_adjusted,
                               cents(ln.charge), Position(remit.file, sp["line"], sp["segment_index"],
                                                          segment_id="SVC", loop="2110", element="SVC03"))
        if issue:
            issues.append(issue)
        sv1 = next((t.split(sep) for t in body if t.startswith("SV1" + sep)), ["SV1", "HC"])
        code = [_el(_el(sv1, 1).split(comp), 0) or "HC", *([sp["procedure"], *(sp["modifiers"] or "").split()]
                                                     if sp["procedure"] else [ln.procedure, *ln.modifiers])]
        svd = _seg(sep, "SVD", payer_id, _money(sp["paid_cents"] or 0), comp.join(code), "",
                   sp["units"] or (format_number(ln.units) if ln.units is not None else "1"))
        at = next((k for k, t in enumerate(body) if t.startswith("LQ" + sep)), len(body))
        lines += [*body[:at], svd, *_cas(sp["cas"], sep), _seg(sep, "DTP", "573", "D8", remit.paid_on), *body[at:]]
    issue = _balance_issue("claim", remit.paid, adjusted, cents(claim.total_charge),
                           Position(remit.file, remit.line, remit.segment_index, segment_id="CLP", loop="2100",
                                    element="CLP04"))
    if issue:
        issues.append(issue)
    if issues:
        return issues
    rest = [t for g in groups if g is not nxt for t in g]
    return subscriber, [*segs[claim.start:marks[0]], *primary, *rest, *lines]


def secondary_set(tx: Transaction, claims: list[tuple[Claim, list[str], list[str]]]) -> list[str]:
    """The transaction set of `tx` holding only these (claim, 2000B loop, 2300 loop), in file order: the
    header, each claim's 2000A (once per billing provider in a row), a 2000B HL per claim, SE counted."""
    segs, sep = tx.segments, tx.delimiters.element
    hlp = "HL" + sep
    out = list(segs[:next(k for k, t in enumerate(segs) if t.startswith(hlp))])
    n = parent = 0
    billing = None
    for c, subscriber, body in claims:
        if c.hl_billing != billing:
            billing, n = c.hl_billing, n + 1
            parent = n
            hl = segs[billing].split(sep)
            hl[1:3] = [str(n), ""]
            stop = next(k for k in range(billing + 1, len(segs)) if segs[k].startswith(hlp))
            out += [sep.join(hl), *segs[billing + 1:stop]]
        n += 1
        out += [_seg(sep, "HL", str(n), str(parent), "22", "0"), *subscriber, *body]
    out.append(segs[-1])
    return set_se_count(out, tx.delimiters)


def resubmit(store: Store, pcns: list[str], output: str, void: bool = False,
             sources: Iterable[str | os.PathLike] = (".",), secondary: bool = False) -> ResubmitResult:
    """Write the corrected (or, with `void`, void; with `secondary`, secondary) claims of `pcns` to
    `output`; see the module docstring. The claims' source files are looked for in `sources` (see
    _find_source). Claims that cannot go are listed in `refused`; raises ResubmitError when none can."""
    if void and secondary:
        raise ResubmitError("a claim is either voided or sent to its secondary payer, not both")
    sources = list(sources)
    result = ResubmitResult(output)
    frequency = VOID if void else CORRECTED
    subs = _latest_submissions(store, pcns)
    wanted: dict[str, dict[int, tuple[str, object]]] = {}  # file name -> segment index -> (pcn, F8 or remit)
    for pcn in dict.fromkeys(pcns):
        sub = subs.get(pcn)
        need = primary_remit(store, pcn) if secondary else payer_claim_number(store, pcn)
        if sub is None:
            result.refused.append(f"claim {pcn}: not in the store")
        elif sub["frequency_code"] == VOID:
            result.refused.append(f"claim {pcn}: its latest submission is a void")
        elif isinstance(need, str) and secondary:
            result.refused.append(f"claim {pcn}: {need}")
        elif not need:
            result.refused.append(f"claim {pcn}: no payer claim control number (no 835 CLP07 or 277CA REF*1K)")
        else:
            wanted.setdefault(sub["name"], {})[sub["segment_index"]] = (pcn, need)
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
                sep, comp = tx.delimiters.element, tx.delimiters.component
                if secondary:
                    built = []
                    for c in hits:
                        pcn, remit = at[c.source.segment_index]
                        r = secondary_claim(c, remit, sep, comp)
                        if isinstance(r, tuple):
                            built.append((c, *r))
                        else:
                            result.refused += [f"claim {pcn}: {why}" for why in ([r] if isinstance(r, str) else r)]
                    if built:
                        sets.append((tx, secondary_set(tx, built), [at[c.source.segment_index][0] for c, *_ in built]))
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
    d = first.delimiters

    def same_delimiters(tx: Transaction) -> bool:  # the whitespace after a terminator may differ
        t = tx.delimiters
        return (t.element, t.component, t.repetition, t.segment) == (d.element, d.component, d.repetition, d.segment)

    for _, _, ps in [x for x in sets if not same_delimiters(x[0])]:
        result.refused += [f"claim {p}: its source file's delimiters differ from the first claim's "
                           "(resubmit it on its own)" for p in ps]
    sets = [x for x in sets if same_delimiters(x[0])]
    control = _next_control(store, Isa.of(first.isa, d.element).sender)
    stamp = datetime.now(timezone.utc)
    end = d.segment + d.suffix
    isa, _ = _header(first, control, stamp)
    # one GS per distinct source GS but its date, time and control (GS06 = ISA13, then the next numbers)
    groups: dict[tuple, tuple[str, list[list[str]]]] = {}
    for tx, segs, _ in sets:
        e = tx.gs.split(d.element)
        key = (*e[:4], *e[7:])
        if key not in groups:
            groups[key] = (_header(tx, control + len(groups), stamp)[1], [])
        members = groups[key][1]
        members.append(_st_control(segs, len(members) + 1, d.element))
    parts = [isa]
    for gs, members in groups.values():
        parts += [gs, *(t for segs in members for t in segs),
                  d.element.join(("GE", str(len(members)), gs.split(d.element)[6]))]
    parts.append(d.element.join(("IEA", str(len(groups)), f"{control:09d}")))
    text = end.join(parts) + end
    written = [p for _, _, ps in sets for p in ps]
    if void or secondary:
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


__all__ = ["resubmit", "ResubmitResult", "ResubmitError", "edit_claim", "payer_claim_number", "PrimaryRemit",
           "primary_remit", "secondary_claim", "secondary_set", "BALANCE"]
