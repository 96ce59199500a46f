"""Write payer acknowledgments in their real shape for the 837P files we send: 999s and 277CAs.

A payer answers a file first with a 999 (AK1 = our GS06, AK2 = our ST02; IK3/IK4 locate errors, CTX names
the claim) and then claim by claim with a 277CA (2100A NM1*PR = the payer, TRN02 = our CLM01, REF*1K its
claim number, A2 accepted into adjudication or A6/A7/A8 rejected; a rejected line in 2220D by REF*FJ).
Each payer answers only its own claims, in its own interchange.

`python3 scripts/make_acks.py` writes fixtures/edi/payer-*.999 and payer-*.277 from the scrubbed fixtures in
fixtures/edi/expected/ (what we send on) and adds their purposes to fixtures/edi/README.md (run it again
after make_fixtures.py, which rewrites the README). Deterministic: same input, same bytes.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment  # noqa: E402
from edi_pipeline.core.errors import IssueList  # noqa: E402
from edi_pipeline.tx.model import Claim  # noqa: E402
from edi_pipeline.tx.parse_837p import parse_837p  # noqa: E402
from edi_pipeline.core.values import format_amount  # noqa: E402

FIXTURES = ROOT / "fixtures" / "edi"
SENT = FIXTURES / "expected"
WHEN = datetime(2026, 12, 3, 9, 30)
README_HEAD = "## Payer acknowledgments"

__all__ = ["ClaimAnswer", "payer_999", "payer_277ca", "sent_sets", "build_all", "main"]


@dataclass(frozen=True)
class ClaimAnswer:
    """How the payer answers one claim: STC01 (category:code[:entity]), and a line (by REF*6R) it rejects."""

    stc: str = "A2:20"
    line_rejected: str | None = None  # REF*6R of a rejected line
    line_stc: str = "A7:453"


@dataclass
class SentSet:
    """One 837 set as sent: its envelope values and claims."""

    isa: list[str]
    gs: list[str]
    st02: str
    bht03: str
    claims: list[Claim]


def sent_sets(path: Path) -> list[SentSet]:
    """The 837P sets of a file we sent, with their ISA and GS elements."""
    out: list[SentSet] = []
    isa: list[str] = []
    gs: list[str] = []
    with EnvelopeReader(path) as env:
        for item in env:
            if isinstance(item, EnvelopeSegment):
                if item.tag == "ISA":
                    isa = item.elements
                elif item.tag == "GS":
                    gs = item.elements
                continue
            bht = item.segments[1].split("*")
            out.append(SentSet(isa, gs, item.control_number, bht[3] if len(bht) > 3 else "",
                               list(parse_837p(item, IssueList()))))
    return out


def _isa(sender: str, receiver: str, control: int, ack_requested: str = "0") -> str:
    return (f"ISA*00*{' ' * 10}*00*{' ' * 10}*ZZ*{sender:<15}*ZZ*{receiver:<15}*{WHEN:%y%m%d}*{WHEN:%H%M}*^*00501*"
            f"{control:09d}*{ack_requested}*T*:")


def _text(segs: list[str]) -> str:
    return "".join(s + "~\n" for s in segs)


def payer_999(sets: list[SentSet], payer_id: str, control: int,
              rejected: dict[str, list[tuple[str, int, str, str, str]]] | None = None) -> str:
    """The payer's 999 for one functional group we sent (all `sets` share its GS). `rejected` maps an ST02
    to its errors (segment id, position in the set, loop, claim CLM01 or "", "IK4 position*element*code");
    a set with errors is rejected (IK5*R*5), the group partly accepted (AK9*P) or rejected."""
    rejected = rejected or {}
    gs = sets[0].gs
    body = ["ST*999*0001*005010X231A1", f"AK1*HC*{gs[6]}*005010X222A1"]
    accepted = 0
    for s in sets:
        body.append(f"AK2*837*{s.st02}*005010X222A1")
        errors = rejected.get(s.st02, [])
        for seg_id, pos, loop, clm01, ik4 in errors:
            body.append(f"IK3*{seg_id}*{pos}*{loop}*8")
            if clm01:
                body.append(f"CTX*CLM01:{clm01}")
            body.append(f"IK4*{ik4}")
        body.append("IK5*R*5" if errors else "IK5*A")
        accepted += not errors
    code = "A" if accepted == len(sets) else ("P" if accepted else "R")
    body.append(f"AK9*{code}*{len(sets)}*{len(sets)}*{accepted}")
    body.append(f"SE*{len(body) + 1}*0001")
    return _text([_isa(payer_id, sets[0].isa[6].strip(), control),
                  f"GS*FA*{payer_id}*{gs[2].strip()}*{WHEN:%Y%m%d}*{WHEN:%H%M}*{control}*X*005010X231A1",
                  *body, f"GE*1*{control}", f"IEA*1*{control:09d}"])


def _d8(d: date | None) -> str:
    return f"{(d or WHEN.date()):%Y%m%d}"


def _claim_span(c: Claim) -> str:
    dates = sorted(d for ln in c.lines for d in (ln.service_date,) if d) or [c.service_date or WHEN.date()]
    return f"DTP*472*D8*{_d8(dates[0])}" if dates[0] == dates[-1] else \
        f"DTP*472*RD8*{_d8(dates[0])}-{_d8(dates[-1])}"


def payer_277ca(sets: list[SentSet], payer_id: str, control: int, answers: dict[str, ClaimAnswer]) -> str:
    """The payer's 277CA for its claims of `sets` (claims of other payers left out), one 277 set per 837
    set. `answers` maps CLM01 to its answer (default: accepted, A2:20); an accepted claim gets REF*1K."""
    body_sets: list[list[str]] = []
    payer_name = ""
    for k, s in enumerate(sets, start=1):
        claims = [c for c in s.claims if c.payer.id == payer_id]
        if not claims:
            continue
        payer_name = claims[0].payer.name or payer_id
        st02 = f"{len(body_sets) + 1:04d}"

        def charge(group: list[Claim]) -> str:
            return format_amount(sum((c.total_charge or Decimal(0) for c in group), Decimal(0)))

        acc = [c for c in claims if answers.get(c.patient_control_number, ClaimAnswer()).stc[:2] in ("A1", "A2")]
        rej = [c for c in claims if c not in acc]
        totals = lambda a, r: ([f"QTY*{a}*{len(acc)}"] if acc else []) + (  # noqa: E731
            [f"QTY*{r}*{len(rej)}"] if rej else []) + ([f"AMT*YU*{charge(acc)}"] if acc else []) + (
            [f"AMT*YY*{charge(rej)}"] if rej else [])
        bp = claims[0].billing_provider
        segs = [f"ST*277*{st02}*005010X214", f"BHT*0085*08*{payer_id}{control}{k}*{WHEN:%Y%m%d}*{WHEN:%H%M}*TH",
                "HL*1**20*1", f"NM1*PR*2*{payer_name}*****PI*{payer_id}", f"TRN*1*{payer_id}{control:06d}{k}",
                f"DTP*050*D8*{WHEN:%Y%m%d}", f"DTP*009*D8*{WHEN:%Y%m%d}", "HL*2*1*21*1",
                f"NM1*41*2*LANTERN PAIN BILLING*****46*{s.isa[6].strip()}", f"TRN*2*{s.bht03}",
                f"STC*A1:19:PR*{WHEN:%Y%m%d}*WQ*{charge(claims)}", *totals("90", "AA"),
                "HL*3*2*19*1", f"NM1*85*2*{bp.name or 'PROVIDER'}*****XX*{bp.npi}", "TRN*1*0",
                f"STC*A1:19:PR**WQ*{charge(claims)}", *totals("QA", "QC")]
        hl = 3
        for n, c in enumerate(claims, start=1):
            hl += 1
            a = answers.get(c.patient_control_number, ClaimAnswer())
            p = c.patient or c.subscriber
            ok = c in acc
            segs += [f"HL*{hl}*3*PT", f"NM1*QC*1*{p.last_name}*{p.first_name}****MI*{c.subscriber.member_id}",
                     f"TRN*2*{c.patient_control_number}",
                     f"STC*{a.stc}*{WHEN:%Y%m%d}*{'WQ' if ok else 'U'}*{format_amount(c.total_charge)}"]
            if ok:
                segs.append(f"REF*1K*{payer_id[:3]}{control:04d}{k:02d}{n:03d}")
            segs.append(_claim_span(c))
            for ln in c.lines:
                if a.line_rejected and ln.control_number == a.line_rejected:
                    segs += ["*".join(["SVC", ":".join(["HC", ln.procedure, *ln.modifiers]),
                                       format_amount(ln.charge), "", "", "", "", format_amount(ln.units)]),
                             f"STC*{a.line_stc}*{WHEN:%Y%m%d}*U", f"REF*FJ*{ln.control_number}",
                             f"DTP*472*D8*{_d8(ln.service_date)}"]
        segs.append(f"SE*{len(segs) + 1}*{st02}")
        body_sets.append(segs)
    receiver = sets[0].isa[6].strip()
    return _text([_isa(payer_id, receiver, control),
                  f"GS*HN*{payer_id}*{receiver}*{WHEN:%Y%m%d}*{WHEN:%H%M}*{control}*X*005010X214",
                  *[s for segs in body_sets for s in segs], f"GE*{len(body_sets)}*{control}",
                  f"IEA*1*{control:09d}"])


def build_all(out: Path = FIXTURES, sent: Path = SENT) -> list[tuple[str, str]]:
    """Write the payer-* fixtures into `out`; returns [(file name, purpose)]."""
    out = Path(out)
    clean = sent_sets(sent / "837p-clean.837.scrubbed.837")
    multi = sent_sets(sent / "837p-multi-interchange.837.scrubbed.837")
    files: list[tuple[str, str, str]] = []
    files.append(("payer-accepted.999", payer_999(clean, "CLEARHOUSE01", 7001),
                  "999 accepting 837p-clean as sent (AK1 = its GS06, AK2 = its ST02, IK5*A, AK9*A)"))
    first = [s for s in multi if s.isa == multi[0].isa]
    files.append(("payer-rejected.999", payer_999(first, "CLEARHOUSE01", 7002, {
        first[1].st02: [("NM1", 9, "2010", "MULTI02", "9*67*7"), ("SV1", 21, "2400", "MULTI02", "2*782*6")]}),
        "999 for the first interchange of 837p-multi-interchange: set 0001 accepted, 0002 rejected (IK3/IK4 with "
        "CTX*CLM01), AK9*P"))
    mcr = [c.patient_control_number for s in clean for c in s.claims if c.payer.id == "MCRB1"]
    files.append(("payer-accepted.277", payer_277ca(clean, "MCRB1", 7101, {}),
                  "Medicare's 277CA for its claims of 837p-clean: every claim A2:20 with REF*1K"))
    answers = {mcr[0]: ClaimAnswer("A7:562:82")}
    if len(mcr) > 1:
        first_line = next(ln.control_number for s in clean for c in s.claims
                          if c.patient_control_number == mcr[1] for ln in c.lines)
        answers[mcr[1]] = ClaimAnswer("A7:453", first_line, "A7:453")
    files.append(("payer-rejected.277", payer_277ca(clean, "MCRB1", 7102, answers),
                  "Medicare's 277CA for 837p-clean: first claim A7:562:82 (rendering NPI), second A7:453 for its "
                  "first line (2220D A7:453 with REF*FJ), the rest A2:20"))
    for name, text, _purpose in files:
        (out / name).write_text(text, encoding="ascii", newline="")
    readme = out / "README.md"
    head = readme.read_text(encoding="utf-8").split(f"\n{README_HEAD}\n", 1)[0].rstrip("\n")
    lines = [head, "", README_HEAD, "",
             "Written by `python3 scripts/make_acks.py` from `expected/` (what we send on); run it after "
             "make_fixtures.py.", ""]
    lines += [f"- `{name}` — {purpose}" for name, _text, purpose in files]
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")
    return [(name, purpose) for name, _text, purpose in files]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--out", default=str(FIXTURES))
    ap.add_argument("--sent", default=str(SENT), help="folder of the scrubbed 837Ps (as sent)")
    args = ap.parse_args(argv)
    idx = build_all(Path(args.out), Path(args.sent))
    print(f"wrote {len(idx)} payer acknowledgments to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
