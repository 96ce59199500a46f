"""Denial back-links point at the denied line's rule; PR-group denials; reconcile's line matching; DTM*050.

Each test builds its 837P/835 pair with the fixture builders of scripts/ (synthetic people and payers).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_fixtures as mf  # noqa: E402
from x12gen import Adj, ClaimPay, Envelope, Remit835, ServicePay, build_835, build_837  # noqa: E402

from edi_pipeline.codes.tables import CodeTableError, load_tables  # noqa: E402
from edi_pipeline.analytics.denials import find_denials  # noqa: E402
from edi_pipeline.tx.document import iter_records  # noqa: E402
from edi_pipeline.pipeline.ingest import INGESTED, ingest_file  # noqa: E402
from edi_pipeline.tx.model import ClaimPayment  # noqa: E402
from edi_pipeline.analytics.reconcile import match_lines, reconcile  # noqa: E402
from edi_pipeline.store.rows import ClaimLineRow, ServicePaymentRow  # noqa: E402
from edi_pipeline.store.store import Store  # noqa: E402

_control = iter(range(100, 10_000))


def put(tmp_path: Path, store: Store, text: str, suffix: str) -> None:
    path = tmp_path / f"f{next(_control)}.{suffix}"
    path.write_text(text)
    r = ingest_file(path, store)
    assert r.status == INGESTED, r.reason


def send(tmp_path: Path, store: Store, claims) -> None:
    put(tmp_path, store, build_837(mf.sub837(list(claims), "LINKS"), Envelope(control=next(_control))), "837")


def remit(tmp_path: Path, store: Store, payer, claim_pays, text_edit=None) -> None:
    text = build_835([Remit835(payer, mf.BILLING, list(claim_pays), trace=f"EFT{next(_control)}")],
                     Envelope(sender="PAYERSYS01", receiver="PAINCLINIC01", control=next(_control)))
    put(tmp_path, store, text_edit(text) if text_edit else text, "835")


def add_after_clp(text: str, segment: str) -> str:
    """`segment` right after each CLP, SE01 counted again."""
    out, count = [], 0
    for s in text.split("~"):
        body = s.strip()
        if body.startswith("SE*"):
            e = body.split("*")
            s = s.replace(body, f"SE*{int(e[1]) + count}*{e[2]}")
            count = 0
        out.append(s)
        if body.startswith("CLP*"):
            out.append("\n" + segment)
            count += 1
    return "~".join(out)


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "links.db")
    yield s
    s.close()


# ------------------------------------------------------------------ 835 reader: DTM*050

def test_dtm_050_is_never_the_service_date(tmp_path, db):
    """DTM*050 (claim received) came first and was taken as the claim's date of service."""
    c = mf.claim("RECV01", mf.MEDICARE, [mf.L("20553", 250)], dos="20261005")
    cp = mf.remit_claim(c, "1", [mf.pay(c.lines[0], c, 1, 110, [("2", 22)])], "26300000001")
    cp.start = ""  # no DTM*232: only the received date is at claim level
    for s in cp.services:
        s.dos = ""
    text = build_835([Remit835(mf.MEDICARE, mf.BILLING, [cp])])
    text = add_after_clp(text, "DTM*050*20261101")
    (pay,) = [r for r in iter_records(text.encode(), "recv.835") if isinstance(r, ClaimPayment)]
    assert pay.service_date is None
    assert pay.lines[0].service_date is None
    cp.start = "20261005"
    text = add_after_clp(build_835([Remit835(mf.MEDICARE, mf.BILLING, [cp])]), "DTM*050*20261101")
    (pay,) = [r for r in iter_records(text.encode(), "recv.835") if isinstance(r, ClaimPayment)]
    assert pay.service_date == date(2026, 10, 5)  # DTM*232 after the DTM*050


# ------------------------------------------------------------------ reconcile: REF*6R must agree on the code

def test_renumbered_resend_6r_does_not_move_a_payment_to_another_line(tmp_path, db):
    """The resend renumbered its 6R values; the payer echoed the original's: the 20553's payment
    went to the J2001 line."""
    lines = [mf.L("20553", 250, ctrl="RESEND01-1"), mf.L("J2001", 20, ctrl="RESEND01-2")]
    first = mf.claim("RESEND01", mf.ACME, lines, dx=["M79.18"])
    send(tmp_path, db, [first])
    resend = mf.claim("RESEND01", mf.ACME, [mf.L("J2001", 20, ctrl="RESEND01-1"),
                                            mf.L("20553", 250, ctrl="RESEND01-2")], dx=["M79.18"])
    send(tmp_path, db, [resend])
    cp = mf.remit_claim(first, "1", [mf.pay(first.lines[0], first, 1, 150, [("2", 30)]),
                                     mf.pay(first.lines[1], first, 2, 10, [("2", 2)])], "CI0000001")
    remit(tmp_path, db, mf.ACME, [cp])
    (rc,) = reconcile(db, date(2026, 12, 31), lines=True).claims
    got = {m.procedure: (m.line_number, m.paid, m.matched_by) for m in rc.lines}
    assert got == {"J2001": (1, 800, "exact"), "20553": (2, 12000, "exact")}

    # near miss: the payer recoded the line; SVC06 carries the submitted code, so the 6R match stands
    c = mf.claim("RECODE01", mf.ACME, [mf.L("20553", 250), mf.L("99213", 120, mods=["25"])], dx=["M79.18"])
    send(tmp_path, db, [c])
    cp = mf.remit_claim(c, "1", [mf.pay(c.lines[0], c, 1, 100, code="20552", pr=[("2", 20)]),
                                 mf.pay(c.lines[1], c, 2, 60, [("2", 12)], units=1)], "CI0000002")
    remit(tmp_path, db, mf.ACME, [cp])
    rc = next(r for r in reconcile(db, date(2026, 12, 31), lines=True).claims if r.patient_control_number == "RECODE01")
    assert [(m.line_number, m.paid, m.matched_by) for m in rc.lines] == [(1, 8000, "6R"), (2, 4800, "6R")]


# ------------------------------------------------------------------ PR-group denials

def test_pr_group_denials_have_their_category_action_and_remarks(tmp_path, db):
    """PR-27 and PR-50 came out as category "other", with their RARCs lost; PR-96/PR-204 were not denials."""
    elig = mf.claim("PRELIG01", mf.ACME, [mf.L("99214", 180)], dx=["M54.2"])
    abn = mf.claim("PRABN01", mf.MEDICARE, [mf.L("97810", 80, mods=["GA"])], dx=["M79.18"], rendering=mf.DR_B)
    excl = mf.claim("PREXCL01", mf.ACME, [mf.L("97810", 80), mf.L("97140", 60)], dx=["M54.50"])
    paid = mf.claim("PRPAID01", mf.ACME, [mf.L("99213", 120)], dx=["M54.2"])
    send(tmp_path, db, [elig, abn, excl, paid])
    remit(tmp_path, db, mf.ACME, [
        mf.remit_claim(elig, "4", [mf.deny(elig.lines[0], elig, 1, "PR", "27", ["N30"])], "CI0000101"),
        mf.remit_claim(excl, "1", [mf.deny(excl.lines[0], excl, 1, "PR", "96", ["N425"]),
                                   mf.deny(excl.lines[1], excl, 2, "PR", "204")], "CI0000102"),
        mf.remit_claim(paid, "1", [mf.pay(paid.lines[0], paid, 1, 90, [("1", 50), ("2", 8), ("3", 20)])],
                       "CI0000103"),
    ])
    remit(tmp_path, db, mf.MEDICARE, [
        mf.remit_claim(abn, "4", [mf.deny(abn.lines[0], abn, 1, "PR", "50", ["N386"])], "26300000104")])
    got = {(d.patient_control_number, d.procedure): d for d in find_denials(db)}
    assert set(got) == {("PRELIG01", "99214"), ("PRABN01", "97810"), ("PREXCL01", "97810"),
                        ("PREXCL01", "97140")}  # CO-45 and PR-1/2/3 stay non-denials
    want = {
        ("PRELIG01", "99214"): ("PR-27", "eligibility", ["N30"]),
        ("PRABN01", "97810"): ("PR-50", "medical necessity", ["N386"]),
        ("PREXCL01", "97810"): ("PR-96", "non-covered", ["N425"]),
        ("PREXCL01", "97140"): ("PR-204", "non-covered", []),
    }
    for key, (carc, category, rarcs) in want.items():
        d = got[key]
        assert (d.level, f"{d.group}-{d.carc}", d.category, d.action, d.rarcs) == (
            "line", carc, category, "bill patient", rarcs), key
    assert got[("PRABN01", "97810")].preventable_by == []  # GA: the ABN made the patient liable, as meant
    statuses = {c.patient_control_number: c.status for c in reconcile(db, date(2026, 12, 31)).claims}
    assert statuses == {"PRELIG01": "denied", "PRABN01": "denied", "PREXCL01": "denied", "PRPAID01": "paid"}


def test_co_96_refined_by_its_remark(tmp_path, db):
    """CO-96 is non-covered unless its RARC says more (N362: units above the MUE)."""
    c = mf.claim("NONCOV01", mf.ACME, [mf.L("97810", 80), mf.L("G3002", 150, 2)], dx=["M54.50"])
    send(tmp_path, db, [c])
    remit(tmp_path, db, mf.ACME, [mf.remit_claim(c, "4", [mf.deny(c.lines[0], c, 1, "CO", "96", ["N425"]),
                                                         mf.deny(c.lines[1], c, 2, "CO", "96", ["N362"])],
                                                 "CI0000201")])
    got = {d.procedure: (d.category, d.action, d.preventable_by) for d in find_denials(db)}
    assert got == {"97810": ("non-covered", "write off", []),
                   "G3002": ("benefit limit", "correct and resubmit", ["CPM-MONTHLY", "NCCI-MUE"])}


# ------------------------------------------------------------------ back-links: the expert's cases

def links(store: Store) -> dict[tuple[str, str | None], list[str]]:
    return {(d.patient_control_number, d.procedure): d.preventable_by for d in find_denials(store)}


def test_bundling_denials_on_column_2_lines_reach_their_rule(tmp_path, db):
    """A CO-97 on the 99214 or on the J2001 linked to nothing; a CO-236 on 20561 beside a 20553 linked to
    five unrelated rules; a 76942 reaches GUIDE-INCLUDED or GUIDE-RECODE by the joint code beside it."""
    M = mf.MEDICARE
    em = mf.claim("BUNDEM01", M, [mf.L("99214", 180), mf.L("20553", 250)])
    drug = mf.claim("BUNDRUG01", M, [mf.L("20553", 250), mf.L("J2001", 20)])
    dn = mf.claim("BUNDDN01", M, [mf.L("20553", 250), mf.L("20561", 120)])
    incl = mf.claim("BUNGUIDE01", M, [mf.L("20611", 200), mf.L("76942", 120)], dx=["M17.11"])
    recode = mf.claim("BUNRECODE01", M, [mf.L("20610", 150), mf.L("76942", 120)], dx=["M17.11"])
    anes = mf.claim("BUNANES01", M, [mf.L("20552", 150), mf.L("01992", 300)])
    tpi = mf.claim("BUNTPI01", M, [mf.L("20553", 250), mf.L("20552", 150)])
    send(tmp_path, db, [em, drug, dn, incl, recode, anes, tpi])
    pays = []
    for n, (c, group, reason, remarks) in enumerate([
            (em, "CO", "97", ()), (drug, "CO", "97", ("M80",)), (dn, "CO", "236", ()),
            (incl, "CO", "97", ("M15",)), (recode, "CO", "B15", ("M80",)), (anes, "CO", "97", ()),
            (tpi, "OA", "B15", ("M80",))]):
        col1, col2 = (1, 0) if c is em else (0, 1)
        pays.append(mf.remit_claim(c, "1", sorted([
            mf.pay(c.lines[col1], c, col1 + 1, 100, [("2", 20)]),
            mf.deny(c.lines[col2], c, col2 + 1, group, reason, remarks)], key=lambda s: s.ctrl),
            f"2630000{n:04d}"))
    remit(tmp_path, db, M, pays)
    assert links(db) == {
        ("BUNDEM01", "99214"): ["EM-SAME-DAY", "NCCI-PTP"],
        ("BUNDRUG01", "J2001"): ["DRUG-LIDOCAINE", "NCCI-PTP"],
        ("BUNDDN01", "20561"): ["DN-TPI-SAME-SESSION", "NCCI-PTP"],
        ("BUNGUIDE01", "76942"): ["GUIDE-INCLUDED", "NCCI-PTP"],
        ("BUNRECODE01", "76942"): ["GUIDE-RECODE", "NCCI-PTP"],
        ("BUNANES01", "01992"): ["TPI-ANESTHESIA", "NCCI-PTP"],
        ("BUNTPI01", "20552"): ["TPI-ONE-CODE", "NCCI-PTP"],  # OA-B15 reaches it through M80
    }


def test_unit_and_cap_denials_name_only_the_rules_of_the_line_code(tmp_path, db):
    """A CO-151 on G3002 linked to the TPI and acupuncture unit rules; a CO-119 on 97110 to ACU-NCD-MAX."""
    M = mf.MEDICARE
    cpm = mf.claim("UNITCPM01", M, [mf.L("G3002", 300, 2)], dx=["G89.4"])
    ther = mf.claim("CAPTHER01", M, [mf.L("97110", 60)], dx=["M54.50"])
    acu = mf.claim("CAPACU01", M, [mf.L("97810", 80)], dx=["M54.50"], rendering=mf.DR_B)
    addon = mf.claim("AOCCPM01", M, [mf.L("G3003", 60)], dx=["G89.4"])
    send(tmp_path, db, [cpm, ther, acu, addon])
    remit(tmp_path, db, M, [
        mf.remit_claim(cpm, "1", [mf.pay(cpm.lines[0], cpm, 1, 100, [("2", 20)], [Adj("CO", "151", 150)],
                                         ["N362"], units=1)], "26300000301"),
        mf.remit_claim(ther, "4", [mf.deny(ther.lines[0], ther, 1, "CO", "119", ["N640"])], "26300000302"),
        mf.remit_claim(acu, "4", [mf.deny(acu.lines[0], acu, 1, "CO", "119", ["N640"])], "26300000303"),
        mf.remit_claim(addon, "4", [mf.deny(addon.lines[0], addon, 1, "CO", "16", ["N122"])], "26300000304"),
    ])
    assert links(db) == {
        ("UNITCPM01", "G3002"): ["CPM-MONTHLY", "NCCI-MUE"],
        ("CAPTHER01", "97110"): [],
        ("CAPACU01", "97810"): ["ACU-NCD-MAX"],
        ("AOCCPM01", "G3003"): ["CPM-ADDON", "NCCI-AOC"],
    }


def test_claim_level_denials_are_matched_against_the_claims_lines(tmp_path, db):
    """A claim-level CO-50 on an acupuncture-only Medicare claim linked to nothing. The lines come from
    the 837, or from the 835's SVCs when no claim was stored; a Medicare-only rule never names a
    commercial claim."""
    mcr = mf.claim("CLMACU01", mf.MEDICARE, [mf.L("97810", 80), mf.L("97811", 65)], dx=["M79.18"],
                   rendering=mf.DR_B)
    com = mf.claim("CLMACU02", mf.ACME, [mf.L("97810", 80), mf.L("97811", 65)], dx=["M79.18"],
                   rendering=mf.DR_B)
    send(tmp_path, db, [mcr, com])
    unsent = mf.claim("CLMACU03", mf.MEDICARE, [mf.L("97813", 95)], dx=["M79.18"], rendering=mf.DR_B)
    remit(tmp_path, db, mf.MEDICARE, [
        mf.remit_claim(mcr, "4", [], "26300000401", adjs=[Adj("CO", "50", 145)]),
        mf.remit_claim(unsent, "4", [ServicePay("97813", 95, 0, dos=unsent.dos, ctrl="CLMACU03-1")], "26300000402",
                       adjs=[Adj("CO", "50", 95)])])
    remit(tmp_path, db, mf.ACME, [mf.remit_claim(com, "4", [], "CI0000401", adjs=[Adj("CO", "50", 145)])])
    got = {d.patient_control_number: (d.level, d.preventable_by, d.matched) for d in find_denials(db)}
    assert got == {"CLMACU01": ("claim", ["ACU-NCD-DX"], True),
                   "CLMACU02": ("claim", [], True),
                   "CLMACU03": ("claim", ["ACU-NCD-DX"], False)}


def test_compliance_denials_link_to_their_rules(tmp_path, db):
    """CO-18/OA-18 -> DUPLICATE-CLAIM, CO-29 -> TIMELY-FILING, CO-16 on a replacement sent without
    REF*F8 -> CORRECTED-NO-F8 (not when the F8 was sent)."""
    C = mf.ACME
    dup = mf.claim("COMPDUP01", C, [mf.L("99213", 120)], dx=["M54.2"])
    late = mf.claim("COMPLATE01", C, [mf.L("99213", 120)], dx=["M54.2"], dos="20250105")
    nof8 = mf.claim("COMPNOF801", C, [mf.L("99213", 120)], dx=["M54.2"], freq="7")
    f8 = mf.claim("COMPF801", C, [mf.L("99213", 120)], dx=["M54.2"], freq="7", orig_ref="CI0000599")
    send(tmp_path, db, [dup, late, nof8, f8])
    remit(tmp_path, db, C, [
        mf.remit_claim(dup, "4", [mf.deny(dup.lines[0], dup, 1, "OA", "18")], "CI0000501"),
        mf.remit_claim(late, "4", [], "CI0000502", adjs=[Adj("CO", "29", 120)]),
        mf.remit_claim(nof8, "4", [], "CI0000503", adjs=[Adj("CO", "16", 120)], freq="7"),
        mf.remit_claim(f8, "4", [], "CI0000504", adjs=[Adj("CO", "16", 120)], freq="7"),
    ])
    got = {d.patient_control_number: d.preventable_by for d in find_denials(db)}
    assert got == {"COMPDUP01": ["DUPLICATE-CLAIM"], "COMPLATE01": ["TIMELY-FILING"],
                   "COMPNOF801": ["CORRECTED-NO-F8"], "COMPF801": []}


# ------------------------------------------------------------------ the back-link table

PREVENTABLE = {"CPM-ADDON", "TPI-ANESTHESIA", "DN-TPI-SAME-SESSION", "DUPLICATE-CLAIM", "TIMELY-FILING",
               "CORRECTED-NO-F8", "NCCI-PTP", "NCCI-MUE", "NCCI-AOC", "GUIDE-RECODE", "CPM-MONTHLY"}


def test_every_rule_with_a_preventable_carc_has_a_row():
    named = {rid for link in load_tables().backlinks for rid in link.preventable_by}
    assert PREVENTABLE <= named


@pytest.mark.parametrize("row,message", [
    ("CO,97,,tpi,tpi,after_lunch,TPI-ONE-CODE", "unknown condition"),
    ("CO,97,,tpi,no_such_group,,TPI-ONE-CODE", "unknown code group no_such_group"),
    ("CO|XX,97,,,,,NCCI-PTP", "unknown group code(s) XX"),
    ("CO,97,,,,,NCCI-PTPP", "unknown or missing rule id(s) NCCI-PTPP"),
])
def test_a_bad_backlink_table_is_refused(tmp_path, row, message):
    f = tmp_path / "links.csv"
    f.write_text(f"group,carc,rarc,procedure_set,with_set,when,preventable_by\n{row}\n")
    with pytest.raises(CodeTableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_tables({"denial_backlinks": f})


def test_a_user_table_without_the_new_columns_still_loads(tmp_path):
    """A copy made before with_set/when existed; its rows are still held to the named rule's code groups."""
    f = tmp_path / "links.csv"
    f.write_text("group,carc,rarc,procedure_set,preventable_by\nCO,119,,,ACU-NCD-MAX|AUTH-REQUIRED\n")
    t = load_tables({"denial_backlinks": f})
    assert t.backlinks_for("CO", "119", (), "97813") == ("ACU-NCD-MAX", "AUTH-REQUIRED")
    assert t.backlinks_for("CO", "119", (), "97110") == ("AUTH-REQUIRED",)  # AUTH-REQUIRED has no code group


# ------------------------------------------------------------------ properties (hypothesis)

_T = load_tables()
_CODES = sorted({c for g in _T.groups.values() for c in g if len(c) == 5} | {"97110", "99999", "J3301"})
_CARCS = sorted({c for link in _T.backlinks for c in link.carc} | {"45", "1", "22"})
_RARCS = sorted({r for link in _T.backlinks for r in link.rarc} | {"N386", "MA130"})


@settings(max_examples=300, deadline=None)
@given(group=st.sampled_from(["CO", "OA", "PI", "PR"]), carc=st.sampled_from(_CARCS),
       rarcs=st.lists(st.sampled_from(_RARCS), max_size=3), code=st.none() | st.sampled_from(_CODES),
       others=st.lists(st.sampled_from(_CODES), max_size=4), no_f8=st.booleans())
def test_a_backlink_names_only_rules_whose_groups_hold_the_denied_code(group, carc, rarcs, code, others, no_f8):
    facts = {"corrected_no_f8"} if no_f8 else set()
    for rid in _T.backlinks_for(group, carc, rarcs, code, others, facts):
        info = _T.rules.get(rid)
        assert info is None or not info.groups or any(code in _T.groups[g] for g in info.groups), (rid, code)


_LINE = st.tuples(st.sampled_from(["20553", "J2001", "99214", "20552"]), st.sampled_from(["A-1", "A-2", "A-3", None]),
                  st.sampled_from([25000, 2000, 18000]))


@settings(max_examples=300, deadline=None)
@given(claim_lines=st.lists(_LINE, max_size=4), paid_lines=st.lists(_LINE, max_size=4),
       recoded=st.sampled_from([None, "20552", "99213"]))
def test_a_6r_match_always_agrees_on_the_procedure(claim_lines, paid_lines, recoded):
    cls = [ClaimLineRow("c", n, code, "", charge, "2026-10-05", ctrl)
           for n, (code, ctrl, charge) in enumerate(claim_lines, 1)]
    sps = [ServicePaymentRow(f"s{n}", "p", recoded or code, "", code if recoded else None, charge, n * 100,
                             "2026-10-05", ctrl, "") for n, (code, ctrl, charge) in enumerate(paid_lines, 1)]
    by_id = {sp.paid_cents: sp for sp in sps}
    matches = match_lines(cls, sps)
    assert len([m for m in matches if m.line_number is not None]) == len(cls)
    for m in matches:
        if m.matched_by == "6R":
            cl = cls[m.line_number - 1]
            sp = by_id[m.paid]
            assert cl.control_number == sp.control_number and cl.procedure in (sp.procedure, sp.original_procedure)


def test_auth_denial_links_only_where_the_profile_asks_for_authorization(tmp_path, db):
    """AUTH-REQUIRED is a per-payer rule: Medicare asks no authorization for 97810, the commercial profile does."""
    mcr = mf.claim("AUTHMCR01", mf.MEDICARE, [mf.L("97810", 80)], dx=["M54.50"], rendering=mf.DR_B)
    com = mf.claim("AUTHCOM01", mf.ACME, [mf.L("97810", 80), mf.L("99213", 120, mods=["25"])], dx=["M54.50"],
                   rendering=mf.DR_B)
    send(tmp_path, db, [mcr, com])
    remit(tmp_path, db, mf.MEDICARE, [
        mf.remit_claim(mcr, "4", [mf.deny(mcr.lines[0], mcr, 1, "CO", "197")], "26300000601")])
    remit(tmp_path, db, mf.ACME, [mf.remit_claim(com, "4", [mf.deny(com.lines[0], com, 1, "CO", "197"),
                                                           mf.deny(com.lines[1], com, 2, "CO", "197")], "CI0000601")])
    assert links(db) == {("AUTHMCR01", "97810"): [], ("AUTHCOM01", "97810"): ["AUTH-REQUIRED"],
                         ("AUTHCOM01", "99213"): []}
