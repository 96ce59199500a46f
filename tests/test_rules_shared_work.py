"""The rule engine's shared and shortened work gives the findings the plain work would.

Rules share per-set work through the Context (the lines-by-code index `lines_with`, the sessions, memo
entries such as NCCI-AOC's covered add-ons), the engine passes a rule only the sessions and claims its
`needs` and `when` allow, and some rules return early on a precondition (AUTH-REQUIRED for a profile that
requires no authorization, DX-POINTER when every pointer is in range). Over the rule fixtures with mutated
codes, units, modifiers, dates and pointers: every rule run alone on a fresh Context finds what the whole
catalogue finds in one run, and what it finds when given every session and claim; `lines_with` is a plain
filter of the set's lines, and the two early returns agree with the rules' own conditions.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from edi_pipeline.codes.ncci import shipped
from edi_pipeline.codes.tables import load_profiles, load_tables
from edi_pipeline.rules import engine
from edi_pipeline.rules.engine import Context, MemoryHistory, registry, run
from edi_pipeline.scrub.scrubber import AuthBook
from edi_pipeline.tx.document import iter_records

TABLES, PROFILES = load_tables(), load_profiles()
TODAY = date(2024, 3, 1)
SOURCES = sorted(FIXTURES.glob("837p-*.837"))
# Every code a rule or an NCCI table names, and one no table knows.
CODES = sorted(set().union(*TABLES.groups.values()) | set(shipped()[0]._aoc) | set(shipped()[0]._mue) | {"99999"})
MODIFIERS = ["25", "59", "XS", "RT", "LT", "50", "KX", "GA", "GZ", "GY", "24", "57", "F1"]
UNITS = [None, Decimal(0), Decimal(1), Decimal(2), Decimal("3"), Decimal("0.5"), Decimal("1.0"), Decimal(12)]
FILING = ["MB", "CI", "WC", "BL", "MC", None]


def _claims(paths):
    return [r for p in paths for r in iter_records(p.read_bytes(), p.name) if hasattr(r, "lines")]


@st.composite
def claim_sets(draw):
    """Claims of 1-3 rule fixtures, their lines' codes, units, modifiers, dates and pointers redrawn."""
    claims = _claims(draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3)))
    for c in claims:
        c.claim_filing_indicator = draw(st.sampled_from(FILING))
        for ln in c.lines:
            if draw(st.booleans()):
                ln.procedure = draw(st.sampled_from(CODES))
            if draw(st.booleans()):
                ln.units = draw(st.sampled_from(UNITS))
            if draw(st.booleans()):
                ln.modifiers = draw(st.lists(st.sampled_from(MODIFIERS), max_size=3, unique=True))
            if draw(st.booleans()) and (ln.service_date or c.service_date):
                ln.service_date = (ln.service_date or c.service_date) + timedelta(days=draw(st.integers(-400, 400)))
            if draw(st.booleans()):
                ln.dx_pointers = draw(st.lists(st.integers(-1, 14), max_size=4))
    return claims


def _context(claims) -> Context:
    return Context(claims, TABLES, PROFILES, MemoryHistory(), AuthBook(), today=TODAY)


def _seen(findings) -> list[tuple]:
    return sorted((f.rule, id(f.claim), f.line.line_number if f.line else None, f.severity.value, f.action,
                   f.message, repr(f.edits), f.hold) for f in findings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_sets())
def test_each_rule_alone_finds_what_the_whole_catalogue_finds(claims):
    together = _seen(run(_context(claims)))
    alone = _seen([f for rid in registry() for f in run(_context(claims), only=[rid])])
    assert together == alone


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_sets())
def test_needs_and_when_skip_only_sessions_and_claims_a_rule_finds_nothing_in(claims):
    shortcut = [r for r in registry().values() if r.needs or r.when]
    assert {"NCCI-AOC", "NCCI-PTP", "DN-ONE-CODE", "DRUG-LIDOCAINE"} <= {r.id for r in shortcut}
    planned = _seen(run(_context(claims)))
    try:
        for r in shortcut:
            engine.REGISTRY[r.id] = dataclasses.replace(r, needs=(), when=None)
        plain = _seen(run(_context(claims)))
    finally:
        engine.REGISTRY.update((r.id, r) for r in shortcut)
    assert planned == plain


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_sets(), st.data())
def test_lines_with_is_a_plain_filter_of_the_sets_lines(claims, data):
    billed = sorted({ln.procedure for c in claims for ln in c.lines})
    codes = data.draw(st.lists(st.sampled_from(billed + ["99999"]), max_size=5))
    ctx = _context(claims)
    ctx.lines_with(CODES[:3])  # the index is built once, whatever is asked first
    plain = [(c, ln) for c in claims for ln in c.lines if ln.procedure in set(codes)]
    got = ctx.lines_with(frozenset(codes))
    assert [(id(c), id(ln)) for c, ln in got] == [(id(c), id(ln)) for c, ln in plain]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_sets())
def test_the_early_returns_agree_with_the_rules_conditions(claims):
    ctx = _context(claims)
    auth = {id(f.claim) for f in run(ctx, only=["AUTH-REQUIRED"])}
    pointer = {id(f.line) for f in run(_context(claims), only=["DX-POINTER"])}
    for c in claims:
        prof = ctx.profile(c)
        needs_auth = not c.prior_authorization and any(
            prof.requires_auth(ln.procedure) and not ln.prior_authorization for ln in c.lines)
        assert (id(c) in auth) == needs_auth
        n = len(c.diagnoses)
        for ln in c.lines:
            assert (id(ln) in pointer) == any(p > n or p < 1 for p in ln.dx_pointers)
