"""Denials: one row per denied claim or line of every active (not reversed) 835 claim payment.

A denial is CLP02 = 4, or an adjustment with a positive amount whose CARC category is not
`contractual` (CO-45 and kin) or `patient responsibility` (PR-1/2/3). A PR-group denial (PR-27
coverage ended, PR-50 with an ABN, PR-96/PR-204 non-covered) leaves the patient liable: its action is
`bill patient`.

Each denied line gives one row: its adjustments that are denials are summed into `amount`; the
largest of them names `group`/`carc` (the others are in `carcs`). Claim-level (2100) denial
adjustments give one claim row. A CLP02 = 4 claim payment with no denial adjustment at all gives a
claim row for CLP03 - CLP04 with carc None.

category: the CARC's category; when that is `other` or the generic `non-covered`, the first RARC
(line, then claim MOA) with a more specific one. action: `bill patient` for a PR group, else the
CARC's default action, else the category's (never `bill patient` for a CO group). preventable_by:
rule ids from the 'Denial back-links' table (codes.backlinks_for) for the row's adjustments and
remarks, matched on the denied line's code beside the claim's other lines (the stored 837's lines,
else the 835's SVCs); a claim row is matched on each of the claim's lines. Only rules the claim's
payer profile runs on the line are named (the 837's profile or SBR09, else the 835's CLP06): no
Medicare-only rule on a commercial claim, no AUTH-REQUIRED on a code the profile does not authorize.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from edi_pipeline.codes.tables import CodeTables, PayerProfiles, Profile, RuleInfo, load_profiles, load_tables
from edi_pipeline.analytics.reconcile import NOT_DENIAL_CATEGORIES, Reconciliation, not_denial_reasons, reconcile
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import cents_text

CATEGORY_ACTION = {
    "coding/bundling": "correct and resubmit",
    "medical necessity": "appeal",
    "authorization": "correct and resubmit",
    "eligibility": "correct and resubmit",
    "timely filing": "write off",
    "duplicate": "write off",
    "missing information": "correct and resubmit",
    "benefit limit": "bill patient",
    "coordination of benefits": "correct and resubmit",
    "non-covered": "write off",
    "other": "appeal",
}
BY_KEYS = ("carc", "procedure", "payer", "category")


@dataclass(slots=True)
class Denial:
    patient_control_number: str
    payer_claim_control_number: str | None
    payer: str | None
    level: str  # "claim" or "line"
    procedure: str | None
    service_date: str | None
    group: str | None
    carc: str | None
    rarcs: list[str]
    amount: int  # cents
    category: str
    action: str
    preventable_by: list[str]
    carcs: list[str] = field(default_factory=list)  # every denial group-CARC on the row
    matched: bool = True  # the payment matched a claim in the store

    def to_dict(self) -> dict:
        return {
            "patient_control_number": self.patient_control_number,
            "payer_claim_control_number": self.payer_claim_control_number, "payer": self.payer,
            "level": self.level, "procedure": self.procedure, "service_date": self.service_date,
            "group": self.group, "carc": self.carc, "rarcs": self.rarcs, "amount": cents_text(self.amount),
            "category": self.category, "action": self.action, "preventable_by": self.preventable_by,
        }

    def flat(self) -> dict:
        d = self.to_dict()
        d["rarcs"] = " ".join(self.rarcs)
        d["preventable_by"] = " ".join(self.preventable_by)
        return d


def tables_with(carc_csv: str | Path | None = None, rarc_csv: str | Path | None = None) -> CodeTables:
    """The shipped code tables with a user's full CARC/RARC lists laid over them."""
    overrides = {}
    if carc_csv:
        overrides["carc"] = carc_csv
    if rarc_csv:
        overrides["rarc"] = rarc_csv
    return load_tables(overrides or None)


@dataclass(slots=True)
class _Context:
    """The claim a denied payment belongs to, as the back-links read it."""

    codes: list[str]  # the claim's line codes: the 837's, else the 835's SVCs
    facts: frozenset[str]  # codes.BACKLINK_CONDITIONS that hold
    profile: Profile

    def others(self, code: str | None) -> list[str]:
        """The codes of the claim's other lines than one billing `code`."""
        rest = list(self.codes)
        if code in rest:
            rest.remove(code)
        return rest


def _classify(tables: CodeTables, group: str | None, carc: str | None, rarcs: list[str],
              procedures: list[str | None], adjustments: list[tuple[str, str, int]],
              ctx: _Context) -> tuple[str, str, list[str]]:
    info = tables.carc.get(carc) if carc else None
    category = info.category if info else "other"
    if category in ("other", "non-covered"):  # CARC 96 or A1: the remark says what it is
        for r in rarcs:
            ri = tables.rarc.get(r)
            if ri and ri.category and ri.category not in NOT_DENIAL_CATEGORIES and ri.category != "other":
                category = ri.category
                break
    if group == "PR":
        action = "bill patient"
    else:
        action = (info.default_action if info else None) or CATEGORY_ACTION.get(category, "appeal")
        if group == "CO" and action == "bill patient":  # contractual obligation: the patient is not billed
            action = "correct and resubmit"
    rules: dict[str, None] = {}
    for g, reason, _amt in adjustments or [(group or "", carc or "", 0)]:
        for code in procedures:
            for rid in tables.backlinks_for(g, reason, rarcs, code, ctx.others(code), ctx.facts):
                if _runs(ctx.profile, tables.rules.get(rid), code):
                    rules[rid] = None
    return category, action, list(rules)


def _runs(profile: Profile, rule: RuleInfo | None, code: str | None) -> bool:
    """Whether the claim's payer profile runs this rule on a line of `code` (None: some line): a
    Medicare-only rule never names a commercial claim, nor AUTH-REQUIRED a code the payer does not
    authorize. A rule not yet in the catalogue runs everywhere."""
    if rule is None:
        return True
    if rule.profile == "per_payer" and code is not None:
        return profile.requires_auth(code)
    return profile.applies(rule.profile)


def _contexts(store: Store, payments: list, rec: Reconciliation, profiles: PayerProfiles) -> dict[str, _Context]:
    """Per denied claim payment id, its claim's context (see _Context)."""
    pcn_of = {p.id: rec.claim_of_payment.get(p.id, p.patient_control_number) for p in payments}
    claims, lines, services = store.denial_context({*pcn_of.values(), *(p.patient_control_number for p in payments)})
    latest = {row[1]: row for row in claims}  # ingest order: the last submission wins, as in reconcile
    codes_of: dict[str, list[str]] = defaultdict(list)
    for claim_id, code in lines:
        codes_of[claim_id].append(code)
    svc_codes: dict[str, list[str]] = defaultdict(list)
    clp06: dict[str, str | None] = {}
    for cp_id, filing, original, code in services:
        clp06[cp_id] = filing
        if original or code:
            svc_codes[cp_id].append(original or code)
    out = {}
    for p in payments:
        claim = latest.get(pcn_of[p.id]) if p.id in rec.claim_of_payment else None
        if claim is None:
            out[p.id] = _Context(svc_codes[p.id], frozenset(), profiles.profile_for(clp06.get(p.id), p.payer_id))
            continue
        claim_id, _pcn, freq, f8, sbr09, profile, payer_id = claim
        facts = frozenset({"corrected_no_f8"}) if freq in ("7", "8") and not f8 else frozenset()
        chosen = profiles.profiles.get(profile) if profile else None
        out[p.id] = _Context(codes_of.get(claim_id) or svc_codes[p.id], facts,
                             chosen or profiles.profile_for(sbr09 or clp06.get(p.id), payer_id))
    return out


def find_denials(store: Store, tables: CodeTables | None = None, rec: Reconciliation | None = None,
                 profiles: PayerProfiles | None = None) -> list[Denial]:
    """Every denied claim or line in the store (reversed payments excluded)."""
    tables = tables or load_tables()
    rec = rec or reconcile(store, date.today(), tables)
    active = {p.id: p for p in rec.active if p.denied or p.status_code == "4"}
    claim_adj: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    line_adj: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    not_denial = not_denial_reasons(tables)  # read from the store: only denial rows, not every CAS
    for cp_id, sp_id, group, reason, amount in store.denial_adjustments(not_denial):
        if cp_id in active:
            (line_adj[sp_id] if sp_id else claim_adj[cp_id]).append((group, reason, amount))
    lines_of: dict[str, list[tuple]] = defaultdict(list)
    for sp in store.denied_service_payments(not_denial):
        if sp[1] in active:
            lines_of[sp[1]].append(sp)

    contexts = _contexts(store, list(active.values()), rec, profiles or load_profiles())
    out: list[Denial] = []
    for cp_id, p in active.items():
        ctx = contexts[cp_id]
        pcn = rec.claim_of_payment.get(cp_id, p.patient_control_number)
        matched = cp_id in rec.claim_of_payment
        payer = p.payer_name or p.payer_id
        claim_remarks = p.remarks.split() if p.remarks else []
        found = False
        for sp in lines_of.get(cp_id, ()):
            adjs = line_adj.get(sp[0])
            if not adjs:
                continue
            found = True
            procedure = sp[4] or sp[2]
            rarcs = (sp[9].split() if sp[9] else []) + [r for r in claim_remarks if r not in (sp[9] or "").split()]
            g, reason, _ = max(adjs, key=lambda a: a[2])
            category, action, rules = _classify(tables, g, reason, rarcs, [procedure], adjs, ctx)
            out.append(Denial(pcn, p.payer_claim_control_number, payer, "line", procedure, sp[7] or p.service_date,
                              g, reason, rarcs, sum(a[2] for a in adjs), category, action, rules,
                              [f"{a[0]}-{a[1]}" for a in adjs], matched))
        adjs = claim_adj.get(cp_id)
        if adjs or (p.status_code == "4" and not found):
            procedure = None
            if adjs:
                g, reason, _ = max(adjs, key=lambda a: a[2])
                amount = sum(a[2] for a in adjs)
            else:
                g = reason = None
                amount = (p.charge or 0) - (p.paid or 0)
            category, action, rules = _classify(tables, g, reason, claim_remarks, ctx.codes or [None], adjs or [],
                                                ctx)
            out.append(Denial(pcn, p.payer_claim_control_number, payer, "claim", procedure,
                              p.service_date, g, reason, claim_remarks, amount, category, action, rules,
                              [f"{a[0]}-{a[1]}" for a in adjs or []], matched))
    out.sort(key=lambda d: (d.patient_control_number, d.level, d.procedure or "", d.service_date or ""))
    return out


def summarize(denials: list[Denial], by: str) -> list[dict]:
    """Count and dollars per key (carc as GROUP-CARC), largest dollars first."""
    if by not in BY_KEYS:
        raise ValueError(f"--by must be one of {', '.join(BY_KEYS)}")
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in denials:
        if by == "carc":
            key = f"{d.group}-{d.carc}" if d.carc else "(none)"
        else:
            key = getattr(d, by) or "(none)"
        acc[key][0] += 1
        acc[key][1] += d.amount
    rows = [{by: k, "count": n, "amount": cents_text(c), "_cents": c} for k, (n, c) in acc.items()]
    rows.sort(key=lambda r: (-r["_cents"], r[by]))
    for r in rows:
        del r["_cents"]
    return rows


__all__ = ["Denial", "find_denials", "summarize", "tables_with", "BY_KEYS", "CATEGORY_ACTION"]
