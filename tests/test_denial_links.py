"""Denial back-links point at the denied line's rule; PR-group denials; reconcile's line matching; DTM*050.

Each test builds its 837P/835 pair with the fixture builders of scripts/ (synthetic people and payers).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_fixtures as mf  # noqa: E402
from x12gen import Adj, ClaimPay, Envelope, Remit835, ServicePay, build_835, build_837  # noqa: E402

from edi_pipeline.codes import load_tables  # noqa: E402
from edi_pipeline.denials import _classify, find_denials  # noqa: E402
from edi_pipeline.document import iter_records  # noqa: E402
from edi_pipeline.ingest import INGESTED, ingest_file  # noqa: E402
from edi_pipeline.model import ClaimPayment  # noqa: E402
from edi_pipeline.reconcile import reconcile  # noqa: E402
from edi_pipeline.store import Store  # noqa: E402

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


def test_co_96_refined_by_its_remark():
    """CO-96 is non-covered unless its RARC says more (N362: units above the MUE)."""
    t = load_tables()
    assert _classify(t, "CO", "96", ["N425"], "97810", [("CO", "96", 100)])[:2] == ("non-covered", "write off")
    assert _classify(t, "CO", "96", ["N362"], "G3002", [("CO", "96", 100)])[0] == "benefit limit"
