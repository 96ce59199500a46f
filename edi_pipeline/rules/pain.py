"""The line rules of domain/RULES.md: one function per rule id.

Code sets come from code_groups.toml (`ctx.group(name)`), limits, MUE values, the cLBP list and the
add-on table from the other data files. Literal codes appear only where RULES.md names the rule's own
choice within its code family (which TPI/DN code to keep, which add-on an initial code moves to).
Messages carry codes, counts and line numbers only, never names, member ids or birth dates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from edi_pipeline.tx.model import Claim, ServiceLine
from edi_pipeline.rules.engine import (Context, Finding, InsertSegments, Item, RemoveModifiers, RemoveSegments, Session,
                    SetElement, SetProcedure, SetTotal, line_date, line_key, rule, year_before)
from edi_pipeline.core.safe_text import store_text
from edi_pipeline.x12.segment import Segment
from edi_pipeline.core.errors import Severity
from edi_pipeline.core.values import format_amount, format_number

# RULES.md: the code kept when both codes of a family are billed in one session, and the one removed.
KEEP_OVER = {"TPI-ONE-CODE": ("20553", "20552"), "DN-ONE-CODE": ("20561", "20560")}
# RULES.md ACU-INITIAL-UNITS / ACU-ONE-INITIAL: each initial acupuncture code's add-on code.
ADDON_OF = {"97810": "97811", "97813": "97814"}
LATERALITY = frozenset({"RT", "LT", "50"})  # TPI-MODIFIERS
# RULES.md "Modifiers that change a rule's outcome": distinct service, wherever a rule accepts 59/XS.
DISTINCT = frozenset({"59", "XE", "XP", "XS", "XU"})
# Medicare liability modifiers (ACU-NCD-DX, ACU-NCD-MAX): the claim goes out with this severity.
LIABILITY = {"GA": (Severity.INFO, "ABN on file, patient-liable"),
             "GZ": (Severity.WARNING, "no ABN, provider-liable"),
             "GY": (Severity.INFO, "statutorily excluded; the denial lets the patient or a secondary payer be billed")}
MOD_25 = "25"  # EM-SAME-DAY
# RULES.md GUIDE-RECODE: each joint injection code and its code with ultrasound guidance.
RECODE_WITH_GUIDANCE = {"20600": "20604", "20605": "20606", "20610": "20611"}
FREQ_REPLACE_VOID = frozenset({"7", "8"})  # CLM05-3 (CORRECTED-NO-F8, DUPLICATE-CLAIM)
NEAR_LIMIT_DAYS = 30  # TIMELY-FILING: report this close to the limit
MAX_6R = 50  # REF02 length (TR3), for the line item control number of a line a correction adds
KX = "KX"  # ACU-NCD-VISITS


# ---------------------------------------------------------------- helpers

def sv1_offset(claim: Claim, line: ServiceLine) -> int:
    off = claim.find("SV1" + claim.delimiters.element, line.start, line.end)
    return line.start + 1 if off is None else off


def per_unit(line: ServiceLine) -> Decimal | None:
    if line.charge is None or not line.units:
        return None
    return line.charge / line.units


def one_unit_edits(claim: Claim, line: ServiceLine) -> list:
    """SV104 = 1 and SV102 = per-unit charge."""
    off = sv1_offset(claim, line)
    edits = [SetElement(off, "SV104", "1")]
    pu = per_unit(line)
    if pu is not None:
        edits.append(SetElement(off, "SV102", format_amount(pu)))
    return edits


def remove_line(claim: Claim, line: ServiceLine) -> RemoveSegments:
    return RemoveSegments(line.start, line.end)


def where(item: Item) -> str:
    return f"claim {item.claim.patient_control_number} line {item.line.line_number} ({item.line.procedure})"


def _units_rule(rule_id: str, group: str, session: Session, ctx: Context) -> list[Finding]:
    out = []
    for it in session.having(ctx.group(group)):
        if it.line.units is not None and it.line.units > 1:
            out.append(ctx.finding(
                rule_id, it.claim, it.line,
                f"{it.code} billed with {format_number(it.line.units)} units; set to 1 unit at the per-unit charge",
                one_unit_edits(it.claim, it.line)))
    return out


def _one_line_rule(rule_id: str, group: str, session: Session, ctx: Context) -> list[Finding]:
    out = []
    by_code: dict[str, list[Item]] = defaultdict(list)
    for it in session.having(ctx.group(group)):
        by_code[it.code].append(it)
    for code, items in by_code.items():
        if len(items) < 2:
            continue
        first = items[0]
        if first.line.units is not None and first.line.units != 1:
            out.append(ctx.finding(rule_id, first.claim, first.line,
                                   f"{code} kept once per session with 1 unit at the per-unit charge",
                                   one_unit_edits(first.claim, first.line)))
        for it in items[1:]:
            out.append(ctx.finding(rule_id, it.claim, it.line,
                                   f"{code} billed on {len(items)} lines in one session; "
                                   f"removed the repeat ({where(it)}), kept line {first.line.line_number}",
                                   [remove_line(it.claim, it.line)], requires=(first.claim,)))
    return out


def _one_code_rule(rule_id: str, session: Session, ctx: Context) -> list[Finding]:
    keep, drop = KEEP_OVER[rule_id]
    codes = session.codes()
    if keep not in codes or drop not in codes:
        return []
    kept = next(it for it in session.items if it.code == keep)
    cite = ctx.ncci.cite(keep, drop, session.service_date)
    return [ctx.finding(rule_id, it.claim, it.line,
                        f"{drop} and {keep} billed in one session; removed {drop} ({where(it)}){cite}",
                        [remove_line(it.claim, it.line)], requires=(kept.claim,))
            for it in session.items if it.code == drop]


# ---------------------------------------------------------------- trigger-point injections

@rule("TPI-UNITS", needs=("tpi",))
def tpi_units(session: Session, ctx: Context):
    """20552/20553 with SV104 > 1: set SV104 = 1 and SV102 = the per-unit charge."""
    return _units_rule("TPI-UNITS", "tpi", session, ctx)


def _tpi_sessions(ctx: Context) -> list[Session]:
    """The file's TPI lines grouped by session, or, for a profile with `tpi_one_per_billing_provider`
    (Medicare, MAC article A57751), by patient, billing provider and date across rendering providers."""
    if "tpi_sessions" not in ctx.memo:
        codes = ctx.group("tpi")
        groups: dict[tuple, Session] = {}
        for s in ctx.sessions:
            if s.codes().isdisjoint(codes):
                continue
            for it in s.having(codes):
                if ctx.profile(it.claim).tpi_one_per_billing_provider:
                    key = (s.key[0], "billing", it.claim.billing_provider.npi, s.service_date)
                else:
                    key = s.key
                groups.setdefault(key, Session(key, [], s.service_date)).items.append(it)
        ctx.memo["tpi_sessions"] = list(groups.values())
    return ctx.memo["tpi_sessions"]


@rule("TPI-ONE-LINE", scope="transaction")
def tpi_one_line(ctx: Context):
    """The same TPI code on more than one line of a session (for Medicare: of a patient's day with one
    billing provider): keep the first (1 unit), remove the others."""
    return [f for s in _tpi_sessions(ctx) for f in _one_line_rule("TPI-ONE-LINE", "tpi", s, ctx)]


@rule("TPI-ONE-CODE", scope="transaction")
def tpi_one_code(ctx: Context):
    """20552 and 20553 in one session (for Medicare: on a patient's day with one billing provider):
    keep 20553, remove the 20552 lines."""
    return [f for s in _tpi_sessions(ctx) for f in _one_code_rule("TPI-ONE-CODE", s, ctx)]


@rule("TPI-MODIFIERS", needs=("tpi",))
def tpi_modifiers(session: Session, ctx: Context):
    """RT, LT or 50 on a 20552/20553 line (the codes count muscles): remove those modifiers."""
    out = []
    for it in session.having(ctx.group("tpi")):
        bad = LATERALITY.intersection(it.line.modifiers)
        if bad:
            off = sv1_offset(it.claim, it.line)
            out.append(ctx.finding("TPI-MODIFIERS", it.claim, it.line,
                                   f"removed laterality modifier(s) {', '.join(sorted(bad))} from {it.code}",
                                   [RemoveModifiers(off, frozenset(bad))]))
    return out


def _medicare_dates_by_member(ctx: Context, codes: frozenset[str]) -> dict[str, dict[date, list[Item]]]:
    """member hash -> service date -> the file's lines with one of `codes` on that date, of the claims
    whose payer profile runs Medicare rules."""
    out: dict[str, dict[date, list[Item]]] = defaultdict(lambda: defaultdict(list))
    for c, ln in ctx.lines_with(codes):
        if ctx.profile(c).applies("medicare"):
            d = line_date(c, ln)
            if d is not None:
                out[ctx.member(c)][d].append(Item(c, ln))
    return out


@rule("TPI-FREQ", scope="transaction")
def tpi_freq(ctx: Context):
    """More than 3 TPI sessions (dates) for one Medicare beneficiary in a rolling 12 months, counting the
    store's history plus this file: report (a repeat needs documented relief)."""
    codes = ctx.group("tpi")
    limit = ctx.tables.limits.tpi_sessions_12_months
    out = []
    for member, dates in _medicare_dates_by_member(ctx, codes).items():
        ordered = sorted(dates)
        hist = ctx.history.visit_dates(member, codes, year_before(ordered[0]), ordered[-1])
        every = sorted(hist | set(ordered))
        for d in ordered:
            n = _count_between(every, year_before(d), d)
            if n > limit:
                it = dates[d][0]
                out.append(ctx.finding("TPI-FREQ", it.claim, it.line,
                                       f"TPI session {n} in 12 months (limit {limit}); a repeat needs documented "
                                       f"relief of at least 50% for 6 weeks"))
    return out


def _count_between(ordered: list[date], lo: date, hi: date) -> int:
    """How many of the sorted dates fall in [lo, hi] (a binary search: a member's dates can be many)."""
    return bisect_right(ordered, hi) - bisect_left(ordered, lo)


@rule("TPI-ANESTHESIA", needs=("tpi", "anesthesia"))
def tpi_anesthesia(session: Session, ctx: Context):
    """An anesthesia code (00100-01999) in a session with 20552/20553: hold the claim."""
    if not session.having(ctx.group("tpi")):
        return []
    return [ctx.finding("TPI-ANESTHESIA", it.claim, it.line,
                        f"anesthesia code {it.code} in a session with a trigger-point injection")
            for it in session.having(ctx.group("anesthesia"))]


# ---------------------------------------------------------------- dry needling

@rule("DN-UNITS", needs=("dry_needling",))
def dn_units(session: Session, ctx: Context):
    """20560/20561 with SV104 > 1: set SV104 = 1 and SV102 = the per-unit charge."""
    return _units_rule("DN-UNITS", "dry_needling", session, ctx)


@rule("DN-ONE-LINE", needs=("dry_needling",))
def dn_one_line(session: Session, ctx: Context):
    """The same dry-needling code on more than one line of a session: keep the first (1 unit)."""
    return _one_line_rule("DN-ONE-LINE", "dry_needling", session, ctx)


@rule("DN-ONE-CODE", when=lambda codes, ctx: KEEP_OVER["DN-ONE-CODE"][0] in codes
      and KEEP_OVER["DN-ONE-CODE"][1] in codes)
def dn_one_code(session: Session, ctx: Context):
    """20560 and 20561 in one session: keep 20561, remove the 20560 lines."""
    return _one_code_rule("DN-ONE-CODE", session, ctx)


@rule("DN-TPI-SAME-SESSION", needs=("tpi", "dry_needling"))
def dn_tpi_same_session(session: Session, ctx: Context):
    """Dry needling and TPI in one session without 59/XE/XP/XS/XU on the dry-needling line: report."""
    tpi = session.having(ctx.group("tpi"))
    if not tpi:
        return []
    return [ctx.finding("DN-TPI-SAME-SESSION", it.claim, it.line,
                        f"{it.code} with a trigger-point injection in one session and no distinct-service "
                        f"modifier (59/XE/XP/XS/XU){ctx.ncci.cite(tpi[0].code, it.code, session.service_date)}")
            for it in session.having(ctx.group("dry_needling")) if not DISTINCT.intersection(it.line.modifiers)]


# ---------------------------------------------------------------- acupuncture

@rule("ACU-ONE-INITIAL", when=lambda codes, ctx: "97810" in codes and "97813" in codes)
def acu_one_initial(session: Session, ctx: Context):
    """97810 and 97813 in one session: keep 97813; the 97810 line becomes 97811, merged into a 97811 line
    of the same claim and date when there is one (units and charge added, the 97810 line removed)."""
    codes = session.codes()
    if "97810" not in codes or "97813" not in codes:
        return []
    kept = next(it for it in session.items if it.code == "97813")
    addon = ADDON_OF["97810"]
    cite = ctx.ncci.cite("97813", "97810", session.service_date)
    out = []
    for it in session.items:
        if it.code != "97810":
            continue
        into = next((x for x in it.claim.lines if x.procedure == addon
                     and line_date(it.claim, x) == line_date(it.claim, it.line)), None)
        if into is None:
            out.append(ctx.finding("ACU-ONE-INITIAL", it.claim, it.line,
                                   f"97810 and 97813 in one session; recoded {where(it)} to {addon}{cite}",
                                   [SetProcedure(sv1_offset(it.claim, it.line), addon)], requires=(kept.claim,)))
            continue
        off = sv1_offset(it.claim, into)
        out.append(ctx.finding(
            "ACU-ONE-INITIAL", it.claim, it.line,
            f"97810 and 97813 in one session; {where(it)} recoded to {addon} and merged into line "
            f"{into.line_number}{cite}",
            [SetElement(off, "SV104", format_number((into.units or Decimal(1)) + it.units)),
             SetElement(off, "SV102", format_amount((into.charge or Decimal(0)) + (it.line.charge or Decimal(0)))),
             remove_line(it.claim, it.line)], requires=(kept.claim,)))
    return out


def _addon_line_segments(claim: Claim, line: ServiceLine, addon: str, units: Decimal, charge: Decimal) -> tuple:
    """A new 2400 loop (LX, SV1, DTP*472, REF*6R) for `addon`, modelled on the initial line. Its line item
    control number is the initial line's with the add-on code appended (else the claim's and the line
    number's), so the payer's 835 echoes a number that names it."""
    d = claim.delimiters
    sv1 = claim.segment(sv1_offset(claim, line))
    sv101 = sv1.components("SV101")
    new101 = [sv101[0], addon] + sv101[2:6]
    while len(new101) > 2 and not new101[-1]:
        new101.pop()
    sv1.set_components("SV101", new101)
    sv1["SV102"] = format_amount(charge)
    sv1["SV104"] = format_number(units)
    texts = [Segment.of("LX", "0", delimiters=d).text, sv1.text]
    dtp = claim.find(d.element.join(("DTP", "472", "")), line.start, line.end)
    if dtp is not None:
        texts.append(claim.segments[dtp])
    base = line.control_number or f"{claim.patient_control_number}-{line.line_number}"
    texts.append(Segment.of("REF", "6R", f"{base}-{addon}"[-MAX_6R:], delimiters=d).text)
    return tuple(texts)


@rule("ACU-INITIAL-UNITS", needs=("acupuncture_initial",))
def acu_initial_units(session: Session, ctx: Context):
    """97810/97813 with SV104 > 1: 1 unit on the initial line; the extra units (and their charge) move to
    the add-on code (97811 for 97810, 97814 for 97813), onto an add-on line of the same claim or a new line."""
    codes = session.codes()
    out = []
    for it in session.having(ctx.group("acupuncture_initial")):
        ln = it.line
        if ln.units is None or ln.units <= 1 or ln.procedure not in ADDON_OF:
            continue
        if ln.procedure == "97810" and "97813" in codes:
            continue  # ACU-ONE-INITIAL recodes this line to the add-on already
        addon = ADDON_OF[ln.procedure]
        extra = ln.units - 1
        pu = per_unit(ln) or Decimal(0)
        moved = (ln.charge or Decimal(0)) - pu
        edits = one_unit_edits(it.claim, ln)
        existing = next((x for x in it.claim.lines if x.procedure == addon and line_date(it.claim, x) == session.service_date), None)
        if existing is not None:
            off = sv1_offset(it.claim, existing)
            edits += [SetElement(off, "SV104", format_number((existing.units or Decimal(0)) + extra)),
                      SetElement(off, "SV102", format_amount((existing.charge or Decimal(0)) + moved))]
            target = f"added to line {existing.line_number}"
        else:
            edits.append(InsertSegments(ln.end, _addon_line_segments(it.claim, ln, addon, extra, moved)))
            target = "as a new line"
        out.append(ctx.finding("ACU-INITIAL-UNITS", it.claim, ln,
                               f"{ln.procedure} billed with {format_number(ln.units)} units; 1 unit kept, "
                               f"{format_number(extra)} moved to {addon} {target}", edits))
    return out


@rule("ACU-ADDON-NO-PRIMARY", needs=("acupuncture_addon",))
def acu_addon_no_primary(session: Session, ctx: Context):
    """97811/97814 in a session without one of its primaries in the NCCI add-on code table (97810/97813;
    the acupuncture_initial group when the table has no defined primary): hold the claim."""
    codes = session.codes()
    primaries = ctx.group("acupuncture_initial")
    out = []
    for it in session.having(ctx.group("acupuncture_addon")):
        need = ctx.ncci.primaries(it.code, session.service_date) or primaries
        if not need & codes:
            out.append(ctx.finding("ACU-ADDON-NO-PRIMARY", it.claim, it.line,
                                   f"add-on {it.code} without its primary code in the session"))
    return out


@rule("ACU-ADDON-MUE", needs=("acupuncture_addon",))
def acu_addon_mue(session: Session, ctx: Context):
    """Units of 97811 or 97814 in one session above the NCCI MUE in force on the date: report."""
    total: dict[str, Decimal] = defaultdict(Decimal)
    first: dict[str, Item] = {}
    for it in session.having(ctx.group("acupuncture_addon")):
        total[it.code] += it.units
        first.setdefault(it.code, it)
    out = []
    for code, units in total.items():
        edit = ctx.ncci.mue(code, session.service_date)
        if edit is not None and units > edit.mue:
            it = first[code]
            out.append(ctx.finding("ACU-ADDON-MUE", it.claim, it.line,
                                   f"{code}: {format_number(units)} units in one session, MUE {edit.mue} "
                                   f"(MAI {edit.mai}; NCCI MUE {edit.version})"))
    return out


@rule("ACU-NCD-DX", scope="claim", needs=("ncd_visit_codes",))
def acu_ncd_dx(claim: Claim, ctx: Context):
    """Medicare acupuncture/dry needling whose pointed diagnoses include no chronic-low-back-pain code
    (NCD 30.3.3 list in clbp_dx.csv): hold the claim."""
    codes = ctx.group("ncd_visit_codes")
    clbp = ctx.tables.clbp_dx
    out = []
    for ln in claim.lines:
        if ln.procedure not in codes:
            continue
        ptrs = ln.dx_pointers or [1]
        dx = {claim.diagnoses[p - 1].replace(".", "").upper() for p in ptrs if 0 < p <= len(claim.diagnoses)}
        if not dx & clbp:
            msg = f"{ln.procedure} line points at no chronic-low-back-pain diagnosis (NCD 30.3.3)"
            out.append(_liable("ACU-NCD-DX", ctx, claim, ln, [ln], msg))
    return out


def liability_modifier(line: ServiceLine) -> str | None:
    """The first of GA, GZ, GY on the line, if any."""
    return next((m for m in line.modifiers if m in LIABILITY), None)


def _liable(rule_id: str, ctx: Context, claim: Claim, line: ServiceLine, lines: list[ServiceLine],
            message: str) -> Finding:
    """A non-covered Medicare finding: held unless every one of `lines` carries a liability modifier;
    then it goes out, as a warning when one is GZ (provider-liable), else as info."""
    mods = [liability_modifier(ln) for ln in lines]
    if not all(mods):
        return ctx.finding(rule_id, claim, line, message + "; no GA/GZ/GY liability modifier")
    worst = "GZ" if "GZ" in mods else mods[0]
    severity, why = LIABILITY[worst]
    return ctx.finding(rule_id, claim, line, f"{message}; sent with {worst} ({why})", severity=severity)


def _ncd_visits(ctx: Context) -> list[Finding]:
    """The findings of ACU-NCD-VISITS and ACU-NCD-MAX (one count serves both rules)."""
    if "ncd_visits" not in ctx.memo:
        ctx.memo["ncd_visits"] = _count_ncd_visits(ctx)
    return ctx.memo["ncd_visits"]


def _count_ncd_visits(ctx: Context) -> list[Finding]:
    codes = ctx.group("ncd_visit_codes")
    lim = ctx.tables.limits
    out = []
    for member, dates in _medicare_dates_by_member(ctx, codes).items():
        ordered = sorted(dates)
        hist = ctx.history.visit_dates(member, codes, year_before(ordered[0]), ordered[-1])
        every = sorted(hist | set(ordered))
        for d in ordered:
            n12 = _count_between(every, year_before(d), d)
            n90 = _count_between(every, d - timedelta(days=89), d)
            items = dates[d]
            if n12 > lim.max_12_months:
                seen: set[int] = set()
                for it in items:
                    if id(it.claim) not in seen:
                        seen.add(id(it.claim))
                        lines = [x.line for x in items if x.claim is it.claim]
                        out.append(_liable("ACU-NCD-MAX", ctx, it.claim, it.line, lines,
                                           f"acupuncture visit {n12} in 12 months (maximum {lim.max_12_months}); "
                                           f"denial CO-119 expected"))
                continue
            if any(KX in it.line.modifiers for it in items):
                continue
            if lim.kx_from_visit <= n12 <= lim.visits_12_months_kx or n90 > lim.visits_90_days:
                it = items[0]
                out.append(ctx.finding("ACU-NCD-VISITS", it.claim, it.line,
                                       f"acupuncture visit {n12} in 12 months ({n90} in 90 days) without KX; "
                                       f"KX needs documented improvement"))
    return out


@rule("ACU-NCD-VISITS", scope="transaction")
def acu_ncd_visits(ctx: Context):
    """Medicare acupuncture/dry-needling visit 13-20 in a rolling 12 months, or more than 12 in 90 days,
    without KX (store history plus this file): report."""
    return [f for f in _ncd_visits(ctx) if f.rule == "ACU-NCD-VISITS"]


@rule("ACU-NCD-MAX", scope="transaction")
def acu_ncd_max(ctx: Context):
    """More than 20 Medicare acupuncture/dry-needling visits in 12 months (store history plus this file):
    hold the claim."""
    return [f for f in _ncd_visits(ctx) if f.rule == "ACU-NCD-MAX"]


# ---------------------------------------------------------------- guidance, E/M, drugs

@rule("GUIDE-INCLUDED", needs=("joint_with_guidance", "guidance_us"))
def guide_included(session: Session, ctx: Context):
    """76942 in a session with 20604, 20606 or 20611 (guidance included): remove the 76942 lines."""
    joints = session.having(ctx.group("joint_with_guidance"))
    if not joints:
        return []
    return [ctx.finding("GUIDE-INCLUDED", it.claim, it.line,
                        f"{it.code} removed: guidance is included in {joints[0].code}",
                        [remove_line(it.claim, it.line)], requires=(joints[0].claim,))
            for it in session.having(ctx.group("guidance_us"))]


@rule("GUIDE-RECODE", needs=("joint_injection", "guidance_us"))
def guide_recode(session: Session, ctx: Context):
    """20600/20605/20610 with 76942 in one session: recode to 20604/20606/20611 (guidance with permanent
    recording included) and remove the 76942 lines. The joint line keeps its charge."""
    if session.having(ctx.group("joint_with_guidance")) or not session.having(ctx.group("guidance_us")):
        return []  # GUIDE-INCLUDED removes the 76942; without one there is nothing to recode for
    joints = [it for it in session.having(ctx.group("joint_injection")) if it.code in RECODE_WITH_GUIDANCE]
    if not joints:
        return []
    out = [ctx.finding("GUIDE-RECODE", it.claim, it.line,
                       f"{it.code} with ultrasound guidance in one session; recoded {where(it)} to "
                       f"{RECODE_WITH_GUIDANCE[it.code]}",
                       [SetProcedure(sv1_offset(it.claim, it.line), RECODE_WITH_GUIDANCE[it.code])])
           for it in joints]
    out += [ctx.finding("GUIDE-RECODE", it.claim, it.line,
                        f"{it.code} removed: {RECODE_WITH_GUIDANCE[joints[0].code]} includes the guidance",
                        [remove_line(it.claim, it.line)], requires=(joints[0].claim,))
            for it in session.having(ctx.group("guidance_us"))]
    return out


@rule("GUIDE-TPI-MEDICARE", needs=("tpi", "guidance"))
def guide_tpi_medicare(session: Session, ctx: Context):
    """For a profile with `guide_tpi_imaging` (Medicare; MAC LCDs): 76942 or 77002 in a TPI session where
    no other injection owns the guidance (and so no guidance rule removes it): report, not covered."""
    if not session.having(ctx.group("tpi")) or session.having(ctx.group("guidance_owners")):
        return []
    return [ctx.finding("GUIDE-TPI-MEDICARE", it.claim, it.line,
                        f"imaging guidance {it.code} with a trigger-point injection is not covered by MAC LCDs")
            for it in session.having(ctx.group("guidance")) if ctx.profile(it.claim).guide_tpi_imaging]


@rule("EM-SAME-DAY", needs=("em_same_day_procedures", "em_office"))
def em_same_day(session: Session, ctx: Context):
    """E/M 99202-99215 without modifier 25 in a session with an injection, dry needling or acupuncture:
    report (25 only when separately identifiable; never added automatically)."""
    procs = session.having(ctx.group("em_same_day_procedures"))
    if not procs:
        return []
    return [ctx.finding("EM-SAME-DAY", it.claim, it.line,
                        f"{it.code} in a session with {procs[0].code} and no modifier 25")
            for it in session.having(ctx.group("em_office")) if MOD_25 not in it.line.modifiers]


@rule("DRUG-LIDOCAINE", scope="claim", needs=("injection_20550_20553", "lidocaine"))
def drug_lidocaine(claim: Claim, ctx: Context):
    """J2001 on a claim with a 20550-20553 injection line: report (local anaesthetic is included)."""
    inj = ctx.group("injection_20550_20553")
    lido = ctx.group("lidocaine")
    for ln in claim.lines:
        if ln.procedure in inj:
            break
    else:
        return []
    return [ctx.finding("DRUG-LIDOCAINE", claim, ln,
                        f"{ln.procedure} billed with an injection; the local anaesthetic is included")
            for ln in claim.lines if ln.procedure in lido]


@rule("UNLISTED-DESC", scope="claim")
def unlisted_desc(claim: Claim, ctx: Context):
    """An unlisted code (unlisted.csv) without an SV101-7 description: hold the claim."""
    return [ctx.finding("UNLISTED-DESC", claim, ln, f"unlisted code {ln.procedure} has no SV101-7 description")
            for ln in claim.lines if ln.procedure in ctx.tables.unlisted and not ln.description]


# ---------------------------------------------------------------- chronic pain management

def _month(d: date) -> tuple[date, date]:
    first = d.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def _by_member_month(ctx: Context, codes: frozenset[str]) -> dict[tuple[str, date], list[Item]]:
    out: dict[tuple[str, date], list[Item]] = defaultdict(list)
    for c, ln in ctx.lines_with(codes):
        d = line_date(c, ln)
        if d is not None:
            out[(ctx.member(c), d.replace(day=1))].append(Item(c, ln))
    return out


@rule("CPM-MONTHLY", scope="transaction")
def cpm_monthly(ctx: Context):
    """More than one unit of G3002 per patient per calendar month, units counted over the store's history
    plus this file (a line with 2 units is two): report."""
    out = []
    pcns = {store_text(c.patient_control_number) for c in ctx.claims}  # as the history holds them
    for code in sorted(ctx.group("cpm_initial")):
        for (member, month), items in _by_member_month(ctx, frozenset({code})).items():
            lo, hi = _month(month)
            n = sum((u for _, p, u in ctx.history.procedure_units(member, code, lo, hi) if p not in pcns), Decimal(0))
            items.sort(key=lambda it: line_date(it.claim, it.line))
            for it in items:
                n += it.units
                if n > 1:
                    out.append(ctx.finding("CPM-MONTHLY", it.claim, it.line,
                                           f"{code}: {format_number(n)} units in calendar month {month:%Y-%m} "
                                           f"(1 per month)"))
    return out


@rule("CPM-ADDON", scope="transaction")
def cpm_addon(ctx: Context):
    """G3003 without its primary (the NCCI add-on code table's, else the cpm_initial group: G3002) for the
    same patient and calendar month (store history plus this file): hold."""
    out = []
    primaries_default = ctx.group("cpm_initial")
    having: dict[frozenset[str], dict] = {}  # primaries -> their lines by member and month
    for code in sorted(ctx.group("cpm_addon")):
        for (member, month), items in _by_member_month(ctx, frozenset({code})).items():
            primaries = ctx.ncci.primaries(code, line_date(items[0].claim, items[0].line)) or primaries_default
            if primaries not in having:
                having[primaries] = _by_member_month(ctx, primaries)
            if having[primaries].get((member, month)):
                continue
            lo, hi = _month(month)
            if ctx.history.visit_dates(member, frozenset(primaries), lo, hi):
                continue
            for it in items:
                out.append(ctx.finding("CPM-ADDON", it.claim, it.line,
                                       f"{code} without {'/'.join(sorted(primaries))} in {month:%Y-%m}"))
    return out


# ---------------------------------------------------------------- claim-level checks

BEFORE_G1 = frozenset({"DTP", "PWK", "CN1", "AMT"})
REFS_BEFORE_G1 = frozenset({"4N", "F5", "EW", "9F"})  # TR3 2300 REF order: ... 9F, G1, F8, ...


def auth_insert_at(claim: Claim) -> int:
    """Offset before which 2300 REF*G1 goes in TR3 order (after DTP/PWK/CN1/AMT and REF 4N/F5/EW/9F)."""
    sep = claim.delimiters.element
    segs = claim.segments
    k = claim.start + 1
    end = claim.lines[0].start if claim.lines else claim.end
    while k < end:
        e = segs[k].split(sep, 2)
        if e[0] in BEFORE_G1 or (e[0] == "REF" and len(e) > 1 and e[1] in REFS_BEFORE_G1):
            k += 1
            continue
        break
    return k


@rule("AUTH-REQUIRED", scope="claim")
def auth_required(claim: Claim, ctx: Context):
    """A code the payer profile marks for prior authorization on a claim without REF*G1 (2300 or 2400):
    insert REF*G1 from an authorization on file (consuming its units), else hold the claim."""
    if claim.prior_authorization:
        return []
    prof = ctx.profile(claim)
    if not prof.auth_all_codes and not prof.prior_auth_codes:
        return []  # requires_auth is false for every code
    need = [ln for ln in claim.lines if prof.requires_auth(ln.procedure) and not ln.prior_authorization]
    if not need:
        return []
    codes = ", ".join(sorted({ln.procedure for ln in need}))
    auth = ctx.auths.find(claim, need) if ctx.auths is not None else None
    if auth is None:
        return [ctx.finding("AUTH-REQUIRED", claim, need[0],
                            f"{codes} needs prior authorization ({prof.name}) and no authorization on file covers it",
                            severity=Severity.ERROR)]
    text = Segment.of("REF", "G1", auth["auth_number"], delimiters=claim.delimiters).text
    return [ctx.finding("AUTH-REQUIRED", claim, need[0],
                        f"{codes} needs prior authorization ({prof.name}); inserted REF*G1 from the authorization on file",
                        [InsertSegments(auth_insert_at(claim), (text,))], severity=Severity.WARNING,
                        data={"auth": auth, "lines": [(ln.line_number, ln.procedure, int(ln.units or 1)) for ln in need]})]


@rule("DX-POINTER", scope="claim")
def dx_pointer(claim: Claim, ctx: Context):
    """An SV107 pointer past the HI codes present: hold the claim."""
    n = len(claim.diagnoses)
    if all(n >= p >= 1 for ln in claim.lines for p in ln.dx_pointers):
        return []
    return [ctx.finding("DX-POINTER", claim, ln,
                        f"diagnosis pointer(s) {', '.join(str(p) for p in ln.dx_pointers if p > n or p < 1)} "
                        f"with {n} diagnosis code(s) on the claim")
            for ln in claim.lines if any(p > n or p < 1 for p in ln.dx_pointers)]


@rule("TOTAL-MISMATCH", scope="claim")
def total_mismatch(claim: Claim, ctx: Context):
    """CLM02 differs from the sum of SV102: set CLM02 = the sum."""
    if claim.total_charge is None or not claim.lines:
        return []
    total = Decimal(0)
    for ln in claim.lines:
        if ln.charge is None:
            return []
        total += ln.charge
    if total == claim.total_charge:
        return []
    return [ctx.finding("TOTAL-MISMATCH", claim, None,
                        f"CLM02 {format_amount(claim.total_charge)} differs from the line total {format_amount(total)}; "
                        f"set to the line total", [SetTotal(claim.start)])]


# ---------------------------------------------------------------- compliance

@rule("TIMELY-FILING", scope="claim")
def timely_filing(claim: Claim, ctx: Context):
    """A date of service past the payer profile's filing limit at the scrub date: hold; within 30 days
    of it: report."""
    prof = ctx.profile(claim)
    if prof.filing_limit is None:
        return []
    n, unit = prof.filing_limit
    first = ln = None  # the oldest line reaches its deadline first (the first such line)
    for x in claim.lines:
        d = x.service_date or claim.service_date
        if d is not None and (first is None or d < first):
            first, ln = d, x
    if first is None:
        return []
    deadlines = ctx.memo.setdefault("filing_deadlines", {})  # (profile, date of service) -> deadline
    deadline = deadlines.get((prof.name, first))
    if deadline is None:
        deadline = deadlines[(prof.name, first)] = prof.filing_deadline(first)
    left = (deadline - ctx.today).days
    if left > NEAR_LIMIT_DAYS:
        return []
    limit = f"{n} {unit} after the date of service ({prof.name})"
    if left < 0:
        return [ctx.finding("TIMELY-FILING", claim, ln,
                            f"line {ln.line_number}: the filing limit of {limit} passed {-left} day(s) ago",
                            severity=Severity.ERROR)]
    return [ctx.finding("TIMELY-FILING", claim, ln,
                        f"line {ln.line_number}: {left} day(s) left of the filing limit of {limit}",
                        severity=Severity.WARNING)]


@rule("CORRECTED-NO-F8", scope="claim")
def corrected_no_f8(claim: Claim, ctx: Context):
    """A replacement or void (CLM05-3 7/8) without 2300 REF*F8: hold; an F8 that matches no payer claim
    control number (CLP07) of the remits on file: report."""
    if (claim.frequency_code or "").strip() not in FREQ_REPLACE_VOID:
        return []
    f8 = (claim.payer_claim_control_number or "").strip()
    if not f8:
        return [ctx.finding("CORRECTED-NO-F8", claim, None,
                            f"frequency {claim.frequency_code} claim without REF*F8 (the payer claim control "
                            f"number it corrects)", severity=Severity.ERROR)]
    if ctx.history.payer_claim_known(f8) is False:
        return [ctx.finding("CORRECTED-NO-F8", claim, None,
                            f"frequency {claim.frequency_code} claim: its REF*F8 matches no payer claim control "
                            f"number (CLP07) of the remits on file", severity=Severity.WARNING)]
    return []


def _claim_items(claim: Claim) -> tuple[tuple, ...]:
    """(date, code, charge) of each line, in a canonical order: what DUPLICATE-CLAIM compares."""
    d = claim.service_date
    items = [(ln.service_date or d, ln.procedure, ln.charge) for ln in claim.lines]
    if len(items) < 2:
        return tuple(items)
    try:
        return tuple(sorted(items))
    except TypeError:  # a line without date or charge
        return tuple(sorted(items, key=line_key))


@rule("DUPLICATE-CLAIM", scope="transaction")
def duplicate_claim(ctx: Context):
    """The same patient, dates of service, procedure codes and charges as a claim earlier in the file or
    already sent (the store): hold an exact duplicate, report one that repeats only some of its lines.
    A replacement or void (frequency 7/8) is never a duplicate."""
    out = []
    history = ctx.history
    exact_seen, lines_seen, sent_claims = history.file_exact, history.file_lines, history.sent_claims
    for c in ctx.claims:
        freq = (c.frequency_code or "1").strip()
        if freq == "8" or not c.lines:
            continue
        member = ctx.member(c)
        items = _claim_items(c)
        whole = hash((member, items))
        each = [hash((member, i)) for i in items]
        pcn = c.patient_control_number
        if freq not in FREQ_REPLACE_VOID:
            sent = sent_claims(member, {i[0] for i in items if i[0]})
            exact = exact_seen.get(whole)
            if not exact:  # none, or an empty patient control number: as `get(whole) or next(...)`
                exact = next((p for p, other in sent if other == items), None) if sent else None
            if exact is not None:
                out.append(ctx.finding("DUPLICATE-CLAIM", c, None,
                                       f"exact duplicate of claim {exact} (same patient, dates, codes and charges)",
                                       severity=Severity.ERROR))
            else:
                part = [(lines_seen[h], i) for h, i in zip(each, items) if h in lines_seen]
                if sent:
                    mine = set(items)
                    part += [(p, i) for p, other in sent for i in mine.intersection(other)]
                if part:
                    codes = ", ".join(sorted({i[1] for p, i in part if p == part[0][0]}))
                    out.append(ctx.finding("DUPLICATE-CLAIM", c, None,
                                           f"repeats line(s) {codes} of claim {part[0][0]} (same patient, date "
                                           f"and charge)", severity=Severity.WARNING))
        exact_seen.setdefault(whole, pcn)
        for h in each:
            lines_seen.setdefault(h, pcn)
    return out
