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

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from edi_pipeline.codes.tables import CodeTables, PayerProfiles, Profile, RuleInfo, load_profiles, load_tables
from edi_pipeline.analytics.reconcile import (NOT_DENIAL_CATEGORIES, Group, Payment, Reconciliation,
                                              not_denial_reasons, reconcile_stream)
from edi_pipeline.store.rows import ServicePaymentRow
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


def _contexts(store: Store, payments: list[tuple[Payment, str, bool]],
              profiles: PayerProfiles) -> dict[str, _Context]:
    """Per denied claim payment id, its claim's context (see _Context); `payments`: (payment, the pcn of its
    group's claim or its own, whether it matched a claim)."""
    claims, lines, services = store.denial_context({pcn for _, pcn, _ in payments} |
                                                   {p.patient_control_number for p, _, _ in payments})
    latest = {row.patient_control_number: row for row in claims}  # ingest order: the last submission wins
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
    for p, pcn, matched in payments:
        claim = latest.get(pcn) if matched else None
        if claim is None:
            out[p.id] = _Context(svc_codes[p.id], frozenset(), profiles.profile_for(clp06.get(p.id), p.payer_id))
            continue
        facts = (frozenset({"corrected_no_f8"}) if claim.frequency_code in ("7", "8")
                 and not claim.payer_claim_control_number else frozenset())
        chosen = profiles.profiles.get(claim.profile) if claim.profile else None
        out[p.id] = _Context(codes_of.get(claim.id) or svc_codes[p.id], facts,
                             chosen or profiles.profile_for(claim.claim_filing_indicator or clp06.get(p.id),
                                                            claim.payer_id))
    return out


DENIAL_CHUNK = 2000  # claim groups whose denials are read from the store together


def iter_denials(store: Store, groups: Iterable[Group], tables: CodeTables | None = None,
                 profiles: PayerProfiles | None = None) -> Iterator[tuple[Group, list[Denial]]]:
    """Each reconciled group (in pcn order) with its denials, sorted; the store's denial rows are read for
    DENIAL_CHUNK groups at a time."""
    tables = tables or load_tables()
    profiles = profiles or load_profiles()
    not_denial = not_denial_reasons(tables)
    groups = iter(groups)
    while chunk := tuple(itertools.islice(groups, DENIAL_CHUNK)):
        yield from _chunk_denials(store, chunk, tables, profiles, not_denial)


def _chunk_denials(store: Store, chunk: tuple[Group, ...], tables: CodeTables, profiles: PayerProfiles,
                   not_denial: list[str]) -> Iterator[tuple[Group, list[Denial]]]:
    denied = [(p, g.claim.patient_control_number if g.claim else p.patient_control_number, g.claim is not None)
              for g in chunk for p in g.active if p.denied or p.status_code == "4"]
    if not denied:
        yield from ((g, []) for g in chunk)
        return
    ids = [p.id for p, _, _ in denied]
    claim_adj: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    line_adj: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for a in store.denial_adjustments(not_denial, ids):
        adj = (a.group_code, a.reason, a.amount_cents)
        (line_adj[a.service_payment_id] if a.service_payment_id else claim_adj[a.claim_payment_id]).append(adj)
    lines_of: dict[str, list[ServicePaymentRow]] = defaultdict(list)
    for sp in store.service_payments(line_adj):  # those with a denial adjustment
        lines_of[sp.claim_payment_id].append(sp)
    contexts = _contexts(store, denied, profiles)
    by_payment = {p.id: (pcn, matched) for p, pcn, matched in denied}
    for g in chunk:
        out: list[Denial] = []
        for p in g.active:
            if p.id in by_payment:
                out.extend(_payment_denials(p, *by_payment[p.id], contexts[p.id], tables, claim_adj.get(p.id),
                                            lines_of.get(p.id, ()), line_adj))
        out.sort(key=lambda d: (d.patient_control_number, d.level, d.procedure or "", d.service_date or ""))
        yield g, out


def _payment_denials(p: Payment, pcn: str, matched: bool, ctx: _Context, tables: CodeTables,
                     adjs: list | None, services: Iterable[ServicePaymentRow], line_adj: dict) -> list[Denial]:
    """The denial rows of one active claim payment: one per denied line, one for its claim-level denials."""
    out = []
    payer = p.payer_name or p.payer_id
    claim_remarks = p.remarks.split() if p.remarks else []
    found = False
    for sp in services:
        line = line_adj.get(sp.id)
        if not line:
            continue
        found = True
        procedure = sp.billed_procedure
        own = sp.remarks.split() if sp.remarks else []
        rarcs = own + [r for r in claim_remarks if r not in own]
        g, reason, _ = max(line, key=lambda a: a[2])
        category, action, rules = _classify(tables, g, reason, rarcs, [procedure], line, ctx)
        out.append(Denial(pcn, p.payer_claim_control_number, payer, "line", procedure,
                          sp.service_date or p.service_date, g, reason, rarcs, sum(a[2] for a in line), category,
                          action, rules, [f"{a[0]}-{a[1]}" for a in line], matched))
    if adjs or (p.status_code == "4" and not found):
        if adjs:
            g, reason, _ = max(adjs, key=lambda a: a[2])
            amount = sum(a[2] for a in adjs)
        else:
            g = reason = None
            amount = (p.charge or 0) - (p.paid or 0)
        category, action, rules = _classify(tables, g, reason, claim_remarks, ctx.codes or [None], adjs or [], ctx)
        out.append(Denial(pcn, p.payer_claim_control_number, payer, "claim", None, p.service_date, g, reason,
                          claim_remarks, amount, category, action, rules, [f"{a[0]}-{a[1]}" for a in adjs or []],
                          matched))
    return out


def iter_store_denials(store: Store, tables: CodeTables | None = None, rec: Reconciliation | None = None,
                       profiles: PayerProfiles | None = None) -> Iterator[Denial]:
    """Every denied claim or line in the store (reversed payments excluded), in pcn order, streamed."""
    tables = tables or load_tables()
    groups = rec.iter_groups() if rec is not None else reconcile_stream(store, date.today(), tables).iter_groups()
    return (d for _, found in iter_denials(store, groups, tables, profiles) for d in found)


def find_denials(store: Store, tables: CodeTables | None = None, rec: Reconciliation | None = None,
                 profiles: PayerProfiles | None = None) -> list[Denial]:
    """iter_store_denials' denials, as a list."""
    return list(iter_store_denials(store, tables, rec, profiles))


def summarize(denials: Iterable[Denial], by: str) -> list[dict]:
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


__all__ = ["Denial", "find_denials", "iter_store_denials", "iter_denials", "summarize", "tables_with", "BY_KEYS", "CATEGORY_ACTION"]
