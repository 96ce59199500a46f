"""The NCCI rules of domain/RULES.md (NCCI-PTP, NCCI-MUE, NCCI-AOC), read from the NCCI tables in force
(`ctx.ncci`: the shipped CMS rows, or the imported quarter for the date of service).

A pair, unit count or add-on that a pain rule of pain_rules.py already judges is left to that rule, so each
problem is reported once; those rules cite the PTP row themselves. Messages carry codes, counts and line
numbers only.
"""

from __future__ import annotations

from decimal import Decimal

from edi_pipeline.codes.ncci import CONTRACTOR
from edi_pipeline.rules.engine import Context, Item, Session, rule
from edi_pipeline.core.errors import Severity
from edi_pipeline.core.values import format_number

# RULES.md: rules that already judge a PTP pair, as (code group, code group) in either order; a rule not in
# the catalogue (not built yet) covers nothing.
PTP_COVERED = {
    "TPI-ONE-CODE": ("tpi", "tpi"),
    "DN-ONE-CODE": ("dry_needling", "dry_needling"),
    "ACU-ONE-INITIAL": ("acupuncture_initial", "acupuncture_initial"),
    "DN-TPI-SAME-SESSION": ("tpi", "dry_needling"),
    "TPI-ANESTHESIA": ("tpi", "anesthesia"),
    "EM-SAME-DAY": ("em_same_day_procedures", "em_office"),
    "GUIDE-INCLUDED": ("joint_with_guidance", "guidance_us"),
    "GUIDE-RECODE": ("joint_injection", "guidance_us"),
    "DRUG-LIDOCAINE": ("injection_20550_20553", "lidocaine"),
}
# Codes whose units a unit rule corrects or counts (per line or per session) before the MUE would see them.
MUE_COVERED = {"TPI-UNITS": "tpi", "DN-UNITS": "dry_needling", "ACU-INITIAL-UNITS": "acupuncture_initial",
               "ACU-ADDON-MUE": "acupuncture_addon"}
# Add-ons whose primaries a pain rule checks (CPM-ADDON over the calendar month).
AOC_COVERED = {"ACU-ADDON-NO-PRIMARY": "acupuncture_addon", "CPM-ADDON": "cpm_addon"}
MAI_TEXT = {1: "line edit", 2: "date of service edit: policy", 3: "date of service edit: clinical"}


def _covered_groups(ctx: Context, table: dict) -> list[frozenset[str]]:
    return [ctx.group(g) for rid, g in table.items() if rid in ctx.tables.rules]


def ptp_covered_by(ctx: Context, column1: str, column2: str) -> str | None:
    """The pain rule that already judges this PTP pair, if any."""
    for rid, (a, b) in PTP_COVERED.items():
        if rid not in ctx.tables.rules:
            continue
        ga, gb = ctx.group(a), ctx.group(b)
        if (column1 in ga and column2 in gb) or (column1 in gb and column2 in ga):
            return rid
    return None


def ptp_modifier(ctx: Context, item: Item) -> str | None:
    """The first PTP-associated modifier on the line (24/25/57 count on an E/M line only)."""
    em = item.code in ctx.group("em_office")
    for m in item.line.modifiers:
        if m in ctx.group("ptp_modifiers") or (em and m in ctx.group("ptp_modifiers_em")):
            return m
    return None


@rule("NCCI-PTP", when=lambda codes, ctx: len(codes) > 1)
def ncci_ptp(session: Session, ctx: Context):
    """A column-2 code billed with its column-1 code in one session, the edit active on that date: indicator
    0 holds, indicator 1 reports unless a PTP-associated modifier is on either line, 9 is no edit."""
    codes = session.codes()
    if len(codes) < 2:
        return []
    out = []
    for edit in ctx.ncci.ptp(codes, session.service_date):
        if edit.modifier == 9 or ptp_covered_by(ctx, edit.column1, edit.column2):
            continue
        firsts = [it for it in session.items if it.code == edit.column1]
        for it in session.items:
            if it.code != edit.column2:
                continue
            why = f"{edit.column2} billed with {edit.column1} in one session ({edit.cite()}: {edit.rationale})"
            if edit.modifier == 0:
                out.append(ctx.finding("NCCI-PTP", it.claim, it.line, f"{why}; no modifier allows the pair",
                                       severity=Severity.ERROR))
            elif not any(ptp_modifier(ctx, x) for x in (it, *firsts)):
                out.append(ctx.finding("NCCI-PTP", it.claim, it.line,
                                       f"{why}; a PTP-associated modifier (59, XE, XP, XS, XU, anatomic) is needed "
                                       f"on either line if the services are distinct", severity=Severity.WARNING))
    return out


@rule("NCCI-MUE", scope="transaction")
def ncci_mue(ctx: Context):
    """Units above the MUE: MAI 1 per line; MAI 2 and 3 summed per patient, code and date over the file's
    lines and the store's (other files). MAI 2 holds, MAI 1 and 3 report."""
    skip = frozenset().union(*_covered_groups(ctx, MUE_COVERED))
    mue = ctx.ncci.mue
    out = []
    per_date: dict[tuple[str, str, object], tuple[object, list[Item]]] = {}  # (member, code, date) -> edit, lines
    for c in ctx.claims:
        for ln in c.lines:
            code = ln.procedure
            if code in skip:
                continue
            d = ln.service_date or c.service_date
            edit = mue(code, d)
            if edit is None:
                continue
            if edit.mai == 1:
                units = ln.units if ln.units is not None else Decimal(1)
                if units > edit.mue:
                    out.append(ctx.finding("NCCI-MUE", c, ln, _mue_message(edit, units, "on one line"),
                                           severity=Severity.WARNING))
            elif d is not None:
                key = (ctx.member(c), code, d)
                got = per_date.get(key)
                if got is None:
                    got = per_date[key] = (edit, [])
                got[1].append(Item(c, ln))
    pcns = {c.patient_control_number for c in ctx.claims}
    for (member, code, d), (edit, items) in per_date.items():
        sent = ctx.history.procedure_units(member, code, d, d)
        stored = sum((u for _, p, u in sent if p not in pcns), Decimal(0)) if sent else Decimal(0)
        total = stored + sum((it.units for it in items), Decimal(0))
        if total <= edit.mue:
            continue
        running = stored
        for it in items:  # the line that takes the count over the MUE carries the finding
            running += it.units
            if running > edit.mue:
                where = "on one date of service" + (f" ({format_number(stored)} already sent)" if stored else "")
                out.append(ctx.finding("NCCI-MUE", it.claim, it.line, _mue_message(edit, total, where),
                                       severity=Severity.ERROR if edit.mai == 2 else Severity.WARNING))
                break
    return out


def _mue_message(edit, units: Decimal, where: str) -> str:
    return (f"{edit.code}: {format_number(units)} units {where}, MUE {edit.mue} "
            f"(MAI {edit.mai}, {MAI_TEXT.get(edit.mai, '?')}; NCCI MUE {edit.version})")


def _aoc_skip(ctx: Context) -> frozenset[str]:
    """The add-ons a pain rule checks (NCCI-AOC leaves them alone), computed once per set."""
    skip = ctx.memo.get("aoc_skip")
    if skip is None:
        skip = ctx.memo["aoc_skip"] = frozenset().union(*_covered_groups(ctx, AOC_COVERED))
    return skip


def _some_addon(codes: frozenset[str], ctx: Context) -> bool:
    skip = _aoc_skip(ctx)
    return any(code not in skip and ctx.ncci.is_addon(code) for code in codes)


@rule("NCCI-AOC", when=_some_addon)
def ncci_aoc(session: Session, ctx: Context):
    """An add-on code without one of its primaries on the same date by the same provider: hold (type 1);
    type 2/3 edits whose primaries the contractor defines are reported."""
    skip = _aoc_skip(ctx)
    codes = session.codes()
    aoc = ctx.ncci.aoc
    out = []
    for it in session.items:
        code = it.line.procedure
        if code in skip:
            continue
        edits = aoc(code, session.service_date)
        if not edits:
            continue
        defined = {e.primary for e in edits if e.primary != CONTRACTOR}
        if defined & codes:
            continue
        version = edits[0].version
        if any(e.type == 1 for e in edits):
            out.append(ctx.finding("NCCI-AOC", it.claim, it.line,
                                   f"add-on {it.code} without one of its primaries ({_listed(defined)}) on the same date by "
                                   f"the same provider (NCCI AOC {version}, type 1)", severity=Severity.ERROR))
        else:
            types = "/".join(sorted({str(e.type) for e in edits}))
            some = f"none of its listed primaries ({_listed(defined)}) is billed and " if defined else ""
            out.append(ctx.finding("NCCI-AOC", it.claim, it.line,
                                   f"add-on {it.code}: {some}its other primaries are contractor-defined (NCCI AOC "
                                   f"{version}, type {types}); check the MAC's list", severity=Severity.WARNING))
    return out


def _listed(codes: set[str]) -> str:
    shown = sorted(codes)
    return "/".join(shown[:6]) + ("/..." if len(shown) > 6 else "")
