"""denials: what counts as a denial, categories, actions, back-links, --by summaries, user CARC lists."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from edi_pipeline.codes.tables import load_tables
from edi_pipeline.analytics.denials import CATEGORY_ACTION, find_denials, summarize, tables_with
from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.analytics.reconcile import not_denial_reasons, reconcile
from edi_pipeline.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"


def load(store: Store, *names) -> None:
    for n in names:
        r = ingest_file(n if isinstance(n, Path) else FIXTURES / n, store)
        assert r.status == INGESTED, r.reason


def loaded(path, *names):
    """A store at `path` with the fixture files `names` ingested; closed when the test ends."""
    s = Store(path)
    load(s, *names)
    yield s
    s.close()


@pytest.fixture
def store(tmp_path):
    yield from loaded(tmp_path / "store.db", "pair-denials.837", "pair-denials.835")


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
    "DUNITS01": ("CO", "151", None, "20553", 25000, {"TPI-UNITS", "NCCI-MUE"}),
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


def test_is_denial_adjustment(tmp_path):
    """The store's one denial definition, on single adjustments."""
    s = Store(tmp_path / "s.db")
    reasons = not_denial_reasons(load_tables())
    for group, reason, cents in [("CO", "97", 100), ("OA", "18", 100), ("PI", "50", 100),
                                 ("PR", "50", 100)]:  # issue 14: a PR-group denial (patient liable) is a denial
        assert s.is_denial(group, reason, cents, reasons), (group, reason, cents)
    for group, reason, cents in [("CO", "45", 100), ("PR", "1", 100), ("PR", "3", 100),
                                 ("CO", "97", -100),  # a reversal's negative adjustment
                                 ("CO", "97", 0), ("CO", "97", None), ("CR", "97", 100)]:
        assert not s.is_denial(group, reason, cents, reasons), (group, reason, cents)
    s.close()


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


# ------------------------------------------------------------------ pair-corrections

def clp_loops(name: str) -> dict[str, list[dict]]:
    """pcn -> each CLP loop in file order: status, charge/paid cents, CAS (group, reason, cents, level)."""
    from decimal import Decimal
    out: dict[str, list[dict]] = {}
    cur = None
    in_svc = False
    for s in (FIXTURES / name).read_text().split("~"):
        e = s.strip().split("*")
        if e[0] == "CLP":
            cur = {"status": e[2], "charge": int(Decimal(e[3]) * 100), "paid": int(Decimal(e[4]) * 100), "cas": []}
            out.setdefault(e[1], []).append(cur)
            in_svc = False
        elif e[0] == "SVC":
            in_svc = True
        elif e[0] == "CAS" and cur is not None:
            cur["cas"] += [(e[1], e[i], int(Decimal(e[i + 1]) * 100), "line" if in_svc else "claim")
                           for i in range(2, len(e) - 1, 3) if e[i]]
        elif e[0] == "SE":
            cur = None
    return out


@pytest.fixture
def corrections(tmp_path):
    yield from loaded(tmp_path / "corr.db", "pair-corrections.837", "pair-corrections.835")


def test_corrections_pi_underpayment_is_a_denial(corrections):
    tables = load_tables()
    (p,) = clp_loops("pair-corrections.835")["CORRPI01"]
    pi = [a for a in p["cas"] if a[0] == "PI"]
    assert len(pi) == 1 and pi[0][3] == "line" and p["paid"] > 0
    _, reason, amount, _ = pi[0]
    category = tables.carc[reason].category
    assert category not in ("contractual", "patient responsibility", "other")
    rows = [d for d in find_denials(corrections, tables) if d.patient_control_number == "CORRPI01"]
    assert len(rows) == 1, rows  # the other line has CO-45 only
    d = rows[0]
    assert (d.level, d.group, d.carc, d.amount, d.category, d.carcs) == (
        "line", "PI", reason, amount, category, [f"PI-{reason}"])
    assert d.action == (tables.carc[reason].default_action or CATEGORY_ACTION[category])


def test_corrections_carc_of_category_other(corrections):
    tables = load_tables()
    (p,) = clp_loops("pair-corrections.835")["CORROTHER01"]
    ((group, reason, amount, level),) = p["cas"]
    assert tables.carc[reason].category == "other"
    (d,) = [d for d in find_denials(corrections, tables) if d.patient_control_number == "CORROTHER01"]
    assert (d.level, d.group, d.carc, d.amount, d.rarcs) == (level, group, reason, amount, [])
    assert d.category == "other"
    assert d.action == (tables.carc[reason].default_action or CATEGORY_ACTION["other"])


def test_corrections_denied_claim_without_any_cas(corrections):
    (p,) = clp_loops("pair-corrections.835")["CORRNOCAS01"]
    assert p["status"] == "4" and p["cas"] == []
    (d,) = [d for d in find_denials(corrections) if d.patient_control_number == "CORRNOCAS01"]
    assert (d.level, d.group, d.carc, d.carcs, d.procedure) == ("claim", None, None, [], None)
    assert d.amount == p["charge"] - p["paid"]
    assert d.category == "other" and d.action == CATEGORY_ACTION["other"]


def test_denied_claim_whose_cas_the_payer_left_off(tmp_path):
    """An unbalanced remit: CLP02 = 4 and no CAS, so the row is for CLP03 - CLP04."""
    (p,) = clp_loops("pair-denials.835")["DELIG01"]
    assert p["status"] == "4" and p["charge"] > p["paid"]
    segs, loop, dropped = [], None, 0
    for seg in (FIXTURES / "pair-denials.835").read_text().split("~\n"):
        if seg.startswith(("CLP*", "SE*")):
            loop = seg.split("*")[1]
        if loop == "DELIG01" and seg.startswith("CAS*"):
            dropped += 1
            continue
        if seg.startswith("SE*") and dropped:
            seg = f"SE*{int(seg.split('*')[1]) - dropped}*{seg.split('*')[2]}"
            dropped = 0
        segs.append(seg)
    path = tmp_path / "no-cas.835"
    path.write_text("~\n".join(segs))
    s = Store(tmp_path / "s.db")
    load(s, "pair-denials.837")
    r = ingest_file(path, s)
    assert r.status == INGESTED and "BAL-CLAIM-PAYMENT" in {f.code for f in r.findings}
    (d,) = [d for d in find_denials(s) if d.patient_control_number == "DELIG01"]
    assert (d.level, d.carc, d.amount) == ("claim", None, p["charge"] - p["paid"])
    s.close()


def test_corrections_reversed_and_replaced_payments_give_no_denials(corrections):
    """CORRREPL01's first payment and CORRREV01's only payment are reversed; CORRCODE01 was recoded,
    not denied; CORRVOID01 was paid in full."""
    pcns = {d.patient_control_number for d in find_denials(corrections)}
    assert pcns == {"CORRPI01", "CORROTHER01", "CORRNOCAS01"}


def test_corrections_reconcile_and_denials_agree(corrections):
    rec = reconcile(corrections, date(2026, 12, 31))
    denied = {c.patient_control_number for c in rec.claims if c.status in ("denied", "partially paid")}
    assert denied == {d.patient_control_number for d in find_denials(corrections, rec=rec) if d.matched}


def test_units_denial_leaves_a_paid_unit(store):
    """DUNITS01: CO-151 takes the second unit; the first is paid (not a negative payment)."""
    (p,) = clp_loops("pair-denials.835")["DUNITS01"]
    assert p["status"] == "1" and p["paid"] > 0
    (d,) = [d for d in find_denials(store) if d.patient_control_number == "DUNITS01"]
    co151 = [a for a in p["cas"] if a[:2] == ("CO", "151")]
    assert d.amount == sum(a[2] for a in co151) and "N362" in d.rarcs


def test_the_store_reads_exactly_the_denial_adjustments(store):
    load(store, "pair-plb.837", "pair-plb.835", "pair-reversal.837", "pair-reversal.835")  # beside pair-denials
    t = load_tables()
    every = store.conn.execute("select claim_payment_id, service_payment_id, group_code, reason, amount_cents "
                               "from adjustments order by rowid").fetchall()
    denials = [a for a in every if store.is_denial(a[2], a[3], a[4], not_denial_reasons(t))]
    assert denials and len(denials) < len(every)  # CO-45, PR and reversal rows are there and are not denials
    assert store.denial_adjustments(not_denial_reasons(t)) == denials
    some = {a[0] for a in denials[::2]}  # of some claim payments: the same rows, of them only
    assert store.denial_adjustments(not_denial_reasons(t), some) == [a for a in denials if a[0] in some]
    lines = {a[1] for a in denials if a[1]}
    assert {sp.id for sp in store.service_payments(lines)} == lines
