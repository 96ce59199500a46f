"""denials: what counts as a denial, categories, actions, back-links, --by summaries, user CARC lists."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from edi_pipeline.codes import load_tables
from edi_pipeline.denials import find_denials, summarize, tables_with
from edi_pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.reconcile import is_denial_adjustment, reconcile
from edi_pipeline.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


def load(store: Store, *names) -> None:
    for n in names:
        r = ingest_file(n if isinstance(n, Path) else FIXTURES / n, store)
        assert r.status == INGESTED, r.reason


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.db")
    load(s, "pair-denials.837", "pair-denials.835")
    yield s
    s.close()


# pcn: (group, carc, category, procedure, amount cents, rules expected among preventable_by)
EXPECTED = {
    "DBUNDLE01": ("CO", "97", "coding/bundling", "20552", 15000, {"TPI-ONE-CODE"}),
    "DMEDNEC01": ("CO", "50", "medical necessity", "97810", 8000, {"ACU-NCD-DX"}),
    "DAUTH01": ("CO", "197", "authorization", "97813", 9500, {"AUTH-REQUIRED"}),
    "DELIG01": ("CO", "27", "eligibility", "99214", 18000, set()),
    "DTIMELY01": ("CO", "29", "timely filing", "20553", 25000, set()),
    "DDUP01": ("OA", "18", "duplicate", "99213", 12000, set()),
    "DMISSINFO01": ("CO", "16", "missing information", "97811", 6500, {"ACU-ADDON-NO-PRIMARY"}),
    "DBENLIMIT01": ("CO", "119", "benefit limit", "97813", 9500, {"ACU-NCD-MAX"}),
    "DCOB01": ("CO", "22", "coordination of benefits", "99213", 12000, set()),
    "DMODIFIER01": ("CO", "4", "coding/bundling", "99213", 12000, {"EM-SAME-DAY"}),
    "DUNITS01": ("CO", "151", None, "20553", 25000, {"TPI-UNITS", "ACU-ADDON-MUE"}),
}


@pytest.mark.parametrize("pcn", sorted(EXPECTED))
def test_each_denial_category(store, pcn):
    group, carc, category, procedure, amount, rules = EXPECTED[pcn]
    rows = [d for d in find_denials(store) if d.patient_control_number == pcn]
    assert len(rows) == 1, rows
    d = rows[0]
    assert (d.group, d.carc, d.procedure, d.amount, d.level) == (group, carc, procedure, amount, "line")
    if category:
        assert d.category == category
    assert d.action in {"correct and resubmit", "appeal", "write off", "bill patient"}
    assert rules <= set(d.preventable_by)
    assert d.service_date and d.payer and d.payer_claim_control_number


def test_every_category_is_covered(store):
    cats = {d.category for d in find_denials(store)}
    assert {"coding/bundling", "medical necessity", "authorization", "eligibility", "timely filing",
            "duplicate", "missing information", "benefit limit", "coordination of benefits"} <= cats


def test_contractual_and_patient_responsibility_are_not_denials(store):
    pcns = {d.patient_control_number for d in find_denials(store)}
    assert "DPARTIAL01" not in pcns  # CO-45 + PR-2/PR-3 only
    assert "NOREMIT01" not in pcns
    # the paid line of a partially denied claim is not a denial either
    assert [d.procedure for d in find_denials(store) if d.patient_control_number == "DBUNDLE01"] == ["20552"]


def test_remarks_are_carried(store):
    d = next(d for d in find_denials(store) if d.patient_control_number == "DBUNDLE01")
    assert "M80" in d.rarcs


def test_is_denial_adjustment():
    t = load_tables()
    assert is_denial_adjustment("CO", "97", 100, t)
    assert is_denial_adjustment("OA", "18", 100, t)
    assert is_denial_adjustment("PI", "50", 100, t)
    assert not is_denial_adjustment("CO", "45", 100, t)
    assert not is_denial_adjustment("PR", "1", 100, t)
    assert not is_denial_adjustment("PR", "50", 100, t)
    assert not is_denial_adjustment("CO", "97", -100, t)  # a reversal's negative adjustment
    assert not is_denial_adjustment("CO", "97", 0, t)


def test_reversed_payments_give_no_denials(tmp_path):
    s = Store(tmp_path / "r.db")
    load(s, "pair-reversal.837", "pair-reversal.835")
    assert find_denials(s) == []
    s.close()


@pytest.mark.parametrize("by", ["carc", "procedure", "payer", "category"])
def test_summary_adds_up(store, by):
    found = find_denials(store)
    rows = summarize(found, by)
    assert sum(r["count"] for r in rows) == len(found)
    from decimal import Decimal
    assert sum(Decimal(r["amount"]) for r in rows) == sum(Decimal(d.amount) for d in found) / 100
    amounts = [Decimal(r["amount"]) for r in rows]
    assert amounts == sorted(amounts, reverse=True)
    assert len({r[by] for r in rows}) == len(rows)


def test_summary_by_carc_keys(store):
    rows = {r["carc"]: r for r in summarize(find_denials(store), "carc")}
    assert rows["OA-18"]["count"] == 1 and rows["OA-18"]["amount"] == "120.00"
    assert "CO-45" not in rows and "PR-2" not in rows


def test_summary_rejects_unknown_key(store):
    with pytest.raises(ValueError):
        summarize(find_denials(store), "colour")


def test_user_carc_list_overrides_category(store, tmp_path):
    csv = tmp_path / "carc.csv"
    csv.write_text("code,description,category\n97,Bundled per the user's list,medical necessity\n")
    tables = tables_with(csv)
    assert tables.carc["97"].description == "Bundled per the user's list"
    d = next(d for d in find_denials(store, tables) if d.patient_control_number == "DBUNDLE01")
    assert d.category == "medical necessity"
    assert d.action == "correct and resubmit"  # kept from the shipped table


def test_user_carc_list_can_make_a_code_contractual(store, tmp_path):
    csv = tmp_path / "carc.csv"
    csv.write_text("code,description,category,default_action\n97,Bundled,contractual,write off\n"
                   "18,Duplicate,contractual,write off\n")
    found = {d.patient_control_number: d for d in find_denials(store, tables_with(csv))}
    assert "DBUNDLE01" not in found and "DAUTH01" in found  # CLP02=1: CO-97 is now a contractual reduction
    # CLP02=4 stays a denial: one claim-level row for CLP03 - CLP04 with no CARC
    assert (found["DDUP01"].level, found["DDUP01"].carc, found["DDUP01"].amount) == ("claim", None, 12000)


def test_user_rarc_list_loads(store, tmp_path):
    csv = tmp_path / "rarc.csv"
    csv.write_text("code,description\nN9999,A remark only the user's list knows\n")
    assert tables_with(None, csv).rarc["N9999"].description.startswith("A remark")


def test_reconcile_and_denials_agree_on_denied_claims(store):
    rec = reconcile(store, date(2026, 12, 31))
    denied = {c.patient_control_number for c in rec.claims if c.status in ("denied", "partially paid")}
    assert denied == {d.patient_control_number for d in find_denials(store, rec=rec) if d.matched}
