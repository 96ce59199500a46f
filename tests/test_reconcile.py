"""reconcile: claim/payment matching, reversal netting, replacements and voids, lines, aging."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from edi_pipeline.analytics import reconcile as reconcile_module
from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.analytics.reconcile import Payment, _net, aging_bucket, match_lines, reconcile, statuses
from edi_pipeline.store.rows import ClaimLineRow, ServicePaymentRow as SP
from edi_pipeline.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
AS_OF = date(2026, 12, 31)


def variant(name: str, tmp_path: Path, control: int, edit) -> Path:
    """A fixture copy with its own ISA13/IEA02, segments edited by `edit(list) -> list`, SE01 recounted."""
    text = (FIXTURES / name).read_text()
    segs = [s.strip("\r\n") for s in text.split("~") if s.strip()]
    segs = edit(segs)
    num = f"{control:09d}"
    isa = segs[0]
    segs[0] = isa[:90] + num + isa[99:]
    out, start = [], None
    for s in segs:
        if s.startswith("ST*"):
            start = len(out)
        if s.startswith("SE*"):
            e = s.split("*")
            e[1] = str(len(out) - start + 1)
            s = "*".join(e)
        if s.startswith("IEA*"):
            s = "IEA*1*" + num
        out.append(s)
    path = tmp_path / f"{control}-{name}"
    path.write_text("~\n".join(out) + "~\n")
    return path


def load(store: Store, *paths) -> None:
    for p in paths:
        p = p if isinstance(p, Path) else FIXTURES / p
        r = ingest_file(p, store)
        assert r.status == INGESTED, r.reason




def by_pcn(rec):
    return {c.patient_control_number: c for c in rec.claims}


def test_denials_pair_statuses_and_amounts(store):
    load(store, "pair-denials.837", "pair-denials.835")
    claims = by_pcn(reconcile(store, AS_OF))
    assert claims["DPARTIAL01"].status == "paid"  # CO-45 and PR only: adjudicated and paid
    assert (claims["DPARTIAL01"].billed, claims["DPARTIAL01"].paid,
            claims["DPARTIAL01"].patient_responsibility) == (29500, 14900, 5350)
    assert claims["DBUNDLE01"].status == "partially paid"  # one line bundled (CO-97), one paid
    assert claims["DMODIFIER01"].status == "partially paid"
    for pcn in ("DMEDNEC01", "DTIMELY01", "DDUP01", "DAUTH01", "DELIG01", "DCOB01", "DBENLIMIT01"):
        assert claims[pcn].status == "denied", pcn
        assert claims[pcn].paid == 0
    assert claims["NOREMIT01"].status == "open"
    assert claims["DTIMELY01"].days_outstanding == (date(2026, 11, 4) - date(2026, 9, 10)).days


def test_remit_with_no_claim_is_listed(store):
    load(store, "pair-denials.837", "pair-denials.835")
    rec = reconcile(store, AS_OF)
    assert [r["patient_control_number"] for r in rec.unmatched_remits] == ["UNMATCHED01"]
    assert "UNMATCHED01" not in by_pcn(rec)
    assert rec.unmatched_remits[0]["paid"] == "88.00"


@pytest.mark.parametrize("as_of, bucket, days", [
    (date(2026, 10, 20), "0-30", 15), (date(2026, 11, 4), "0-30", 30), (date(2026, 11, 5), "31-60", 31),
    (date(2026, 12, 4), "31-60", 60), (date(2026, 12, 15), "61-90", 71), (date(2027, 1, 3), "61-90", 90),
    (date(2027, 1, 4), "90+", 91), (date(2027, 6, 1), "90+", 239),
])
def test_claims_with_no_remit_are_aged(store, as_of, bucket, days):
    load(store, "pair-denials.837", "pair-denials.835")  # NOREMIT01: service 2026-10-05, 250.00
    rec = reconcile(store, as_of)
    assert by_pcn(rec)["NOREMIT01"].days_outstanding == days
    assert rec.aging[bucket]["patient_control_numbers"] == ["NOREMIT01"]
    assert rec.aging[bucket]["billed"] == 25000
    assert sum(b["claims"] for b in rec.aging.values()) == 1


def test_reversal_and_correction_are_netted(store):
    load(store, "pair-reversal.837", "pair-reversal.835")
    c = by_pcn(reconcile(store, AS_OF))["REVERSAL01"]
    # payment 80, reversal -80, correction 116: the corrected payment counts once
    assert (c.paid, c.patient_responsibility, c.status, c.reversals, c.payments) == (11600, 2900, "paid", 1, 1)
    assert c.last_payment_date == "2026-11-12"


def test_reversal_netting_does_not_depend_on_ingest_order(store):
    load(store, "pair-reversal.835", "pair-reversal.837")
    assert by_pcn(reconcile(store, AS_OF))["REVERSAL01"].paid == 11600


def test_reversal_without_correction_leaves_nothing_paid(store, tmp_path):
    def drop_correction(segs):
        at = [i for i, s in enumerate(segs) if s.startswith("CLP*REVERSAL01*1*")][-1]
        end = next(i for i in range(at, len(segs)) if segs[i].startswith("SE*"))
        return segs[:at] + segs[end:]

    load(store, "pair-reversal.837", variant("pair-reversal.835", tmp_path, 901, drop_correction))
    c = by_pcn(reconcile(store, AS_OF))["REVERSAL01"]
    assert (c.status, c.paid, c.payments, c.reversals) == ("reversed", 0, 0, 1)


def replace_with_new_pcn(segs):
    """REVERSAL01 resubmitted as REPL01, frequency 7, REF*F8 naming the payer's claim (CLP07)."""
    i = next(k for k, s in enumerate(segs) if s.startswith("CLM*REVERSAL01*"))
    segs[i] = segs[i].replace("CLM*REVERSAL01*", "CLM*REPL01*").replace(":B:1*", ":B:7*")
    return segs[:i + 1] + ["REF*F8*BP88000301"] + segs[i + 1:]


def test_replacement_with_new_pcn_joins_original_by_f8(store, tmp_path):
    load(store, "pair-reversal.837", "pair-reversal.835", variant("pair-reversal.837", tmp_path, 902, replace_with_new_pcn))
    rec = reconcile(store, AS_OF)
    claims = by_pcn(rec)
    assert "REVERSAL01" not in claims and not rec.unmatched_remits
    assert (claims["REPL01"].paid, claims["REPL01"].frequency_code, claims["REPL01"].status) == (11600, "7", "paid")


def test_latest_submission_wins_and_void_closes_the_claim(store, tmp_path):
    def void(segs):
        i = next(k for k, s in enumerate(segs) if s.startswith("CLM*NOREMIT01*"))
        segs[i] = segs[i].replace(":B:1*", ":B:8*")
        return segs[:i + 1] + ["REF*F8*NOREMITICN"] + segs[i + 1:]

    load(store, "pair-denials.837", "pair-denials.835")
    assert by_pcn(reconcile(store, AS_OF))["NOREMIT01"].status == "open"
    load(store, variant("pair-denials.837", tmp_path, 903, void))
    rec = reconcile(store, AS_OF)
    claims = by_pcn(rec)
    assert claims["NOREMIT01"].status == "voided"
    assert claims["NOREMIT01"].frequency_code == "8"
    assert sum(b["claims"] for b in rec.aging.values()) == 0
    assert len(claims) == len({c.patient_control_number for c in rec.claims})  # one row per claim


def test_plb_does_not_change_claim_payments(store):
    load(store, "pair-plb.837", "pair-plb.835")
    claims = by_pcn(reconcile(store, AS_OF))
    assert (claims["PLBPAID01"].paid, claims["PLBPAID02"].paid) == (12400, 8400)
    assert statuses(reconcile(store, AS_OF)) == {"paid": 2}


def test_lines_match_on_ref_6r(store):
    load(store, "pair-plb.837", "pair-plb.835")
    c = by_pcn(reconcile(store, AS_OF, lines=True))["PLBPAID01"]
    assert [(m.line_number, m.procedure, m.paid, m.matched_by) for m in c.lines] == [
        (1, "99214", 6400, "6R"), (2, "20552", 6000, "6R")]


CL = [ClaimLineRow("c", 1, "20553", "", 25000, "2026-09-15", None),
      ClaimLineRow("c", 2, "J1030", "", 2500, "2026-09-15", None),
      ClaimLineRow("c", 3, "99213", "25", 12000, "2026-09-15", None)]


def test_match_lines_falls_back_to_procedure_modifiers_date_charge():
    sps = [SP("s1", "p", "J1030", "", None, 2500, 1000, "2026-09-15", None, ""),
           SP("s2", "p", "20553", "", None, 25000, 9000, "2026-09-15", None, ""),
           SP("s3", "p", "99213", "25", None, 12000, 5000, "2026-09-15", None, "")]
    got = [(m.line_number, m.paid, m.matched_by) for m in match_lines(CL, sps)]
    assert got == [(1, 9000, "exact"), (2, 1000, "exact"), (3, 5000, "exact")]


def test_match_lines_uses_svc06_original_code_when_payer_changed_it():
    sps = [SP("s1", "p", "20552", "", "20553", 25000, 7000, "2026-09-15", None, ""),
           SP("s2", "p", "99212", "25", "99213", 12000, 4000, "2026-09-15", None, "")]
    got = {m.line_number: (m.paid, m.matched_by) for m in match_lines(CL, sps)}
    assert got == {1: (7000, "exact"), 2: (None, None), 3: (4000, "exact")}


def test_match_lines_6r_beats_procedure_and_leftovers_reported():
    cl = [ClaimLineRow("c", 1, "20553", "", 25000, "2026-09-15", "A-1"),
          ClaimLineRow("c", 2, "20553", "", 25000, "2026-09-16", "A-2")]
    sps = [SP("s1", "p", "20553", "", None, 25000, 100, "2026-09-15", "A-2", ""),
           SP("s2", "p", "20553", "", None, 25000, 200, "2026-09-15", "A-1", ""),
           SP("s3", "p", "97810", "", None, 8000, 0, "2026-09-15", None, "")]
    got = [(m.line_number, m.paid, m.matched_by) for m in match_lines(cl, sps)]
    assert got == [(1, 200, "6R"), (2, 100, "6R"), (None, 0, None)]


def _p(pid, code, paid, icn="X1"):
    return Payment(pid, "PCN", code, 100, paid, 0, icn, "2026-01-01", None, None, "", None)


def test_net_cancels_reversal_with_matching_icn_and_keeps_orphan_reversals():
    active, n = _net([_p("a", "1", 80, "X1"), _p("b", "1", 50, "X2"), _p("r", "22", -80, "X1")])
    assert ([p.id for p in active], n) == (["b"], 1)
    active, n = _net([_p("r", "22", -80, "X1")])  # nothing to reverse: the reversal itself stays
    assert ([p.id for p in active], n) == (["r"], 0)
    active, n = _net([_p("a", "1", 80, None), _p("b", "1", 30, None), _p("r", "22", -80, None)])
    assert [p.id for p in active] == ["b"]  # matched on the negated amount


@pytest.mark.parametrize("days, bucket", [(-5, "0-30"), (0, "0-30"), (30, "0-30"), (31, "31-60"),
                                          (60, "31-60"), (61, "61-90"), (90, "61-90"), (91, "90+")])
def test_aging_bucket_edges(days, bucket):
    assert aging_bucket(days) == bucket


# ------------------------------------------------------------------ pair-corrections: values read from the fixture

def segments(name: str) -> list[list[str]]:
    text = (FIXTURES / name).read_text()
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def clm_submissions(pcn: str) -> list[dict]:
    """Each CLM for pcn in file order: charge, frequency (CLM05-3), REF*F8."""
    out = []
    for e in segments("pair-corrections.837"):
        if e[0] == "CLM":
            cur = {"pcn": e[1], "charge": cents(e[2]), "freq": e[5].split(":")[2], "f8": None}
            out.append(cur)
        elif e[0] == "REF" and e[1] == "F8":
            out[-1]["f8"] = e[2]
    return [c for c in out if c["pcn"] == pcn]


def clp_loops(pcn: str) -> list[dict]:
    """Each CLP for pcn in file order with its SVCs (SVC01, SVC06, SVC03 cents, REF*6R) and CAS."""
    out, cur, svc = [], None, None
    for e in segments("pair-corrections.835"):
        if e[0] == "CLP":
            cur = {"pcn": e[1], "status": e[2], "charge": cents(e[3]), "paid": cents(e[4]), "pr": cents(e[5]),
                   "icn": e[7], "freq": e[9], "svcs": [], "cas": []}
            out.append(cur)
            svc = None
        elif e[0] == "SVC" and cur is not None:
            svc = {"code": e[1].split(":")[1], "orig": e[6].split(":")[1] if len(e) > 6 and e[6] else None,
                   "paid": cents(e[3]), "6r": None}
            cur["svcs"].append(svc)
        elif e[0] == "REF" and e[1] == "6R" and svc is not None:
            svc["6r"] = e[2]
        elif e[0] == "CAS" and cur is not None:
            cur["cas"] += [(e[1], e[i], cents(e[i + 1])) for i in range(2, len(e) - 1, 3) if e[i]]
        elif e[0] in ("SE", "PLB"):
            cur = svc = None
    return [c for c in out if c["pcn"] == pcn]


@pytest.fixture(params=["837 first", "835 first"])
def corrections(request, store):
    names = ["pair-corrections.837", "pair-corrections.835"]
    load(store, *(names if request.param == "837 first" else names[::-1]))
    return store


def test_corrections_replacement_is_the_claim_of_record(corrections):
    subs = clm_submissions("CORRREPL01")
    loops = clp_loops("CORRREPL01")
    original = next(p for p in loops if p["status"] == "1" and p["freq"] == "1")
    replacement_paid = next(p for p in loops if p["freq"] == "7")
    assert [s["freq"] for s in subs] == ["1", "7"] and subs[1]["f8"] == original["icn"]
    assert subs[0]["charge"] != subs[1]["charge"]  # the replacement adds a line
    rec = reconcile(corrections, AS_OF, lines=True)
    assert [c.patient_control_number for c in rec.claims].count("CORRREPL01") == 1
    assert not rec.unmatched_remits
    c = by_pcn(rec)["CORRREPL01"]
    assert (c.billed, c.frequency_code) == (subs[1]["charge"], "7")
    # the first payment is reversed, only the replacement's payment counts
    assert (c.paid, c.patient_responsibility, c.payments, c.reversals, c.status) == (
        replacement_paid["paid"], replacement_paid["pr"], 1, 1, "paid")
    # lines are the replacement's, each matched to the replacement payment's line
    assert [(m.line_number, m.procedure, m.paid, m.matched_by) for m in c.lines] == [
        (n, s["code"], s["paid"], "6R") for n, s in enumerate(replacement_paid["svcs"], 1)]


def test_corrections_void_of_a_paid_claim_is_voided(corrections):
    subs = clm_submissions("CORRVOID01")
    (paid,) = clp_loops("CORRVOID01")  # the payer has not answered the void yet
    assert [s["freq"] for s in subs] == ["1", "8"] and subs[1]["f8"] == paid["icn"] and paid["paid"] > 0
    rec = reconcile(corrections, AS_OF)
    c = by_pcn(rec)["CORRVOID01"]
    assert (c.status, c.frequency_code) == ("voided", "8")
    assert c.paid == paid["paid"]  # still held: to be returned when the payer reverses it
    assert "CORRVOID01" not in [p for b in rec.aging.values() for p in b["patient_control_numbers"]]


def test_corrections_void_then_payer_reversal_leaves_nothing_paid(store, tmp_path):
    def neg(x: str) -> str:
        return x if x in ("", "0") else x[1:] if x.startswith("-") else "-" + x

    def reverse_void(segs):  # the last remit also recoups the voided claim: CLP02 = 22, amounts negated
        start = next(i for i, s in enumerate(segs) if s.startswith("CLP*CORRVOID01*1*"))
        end = next(i for i in range(start + 1, len(segs)) if segs[i].startswith(("CLP*", "SE*")))
        out = []
        for s in segs[start:end]:
            e = s.split("*")
            if e[0] == "CLP":
                e[2], e[3], e[4], e[5] = "22", neg(e[3]), neg(e[4]), neg(e[5])
            elif e[0] == "SVC":
                e[2], e[3] = neg(e[2]), neg(e[3])
            elif e[0] == "CAS":
                e[3::3] = [neg(x) for x in e[3::3]]
            elif e[0] == "AMT":
                e[2] = neg(e[2])
            out.append("*".join(e))
        last_st = max(i for i, s in enumerate(segs) if s.startswith("ST*"))
        bpr = segs[last_st + 1].split("*")
        bpr[2] = str(Decimal(cents(bpr[2]) + cents(out[0].split("*")[4])) / 100)
        segs[last_st + 1] = "*".join(bpr)
        se = max(i for i, s in enumerate(segs) if s.startswith("SE*"))
        return segs[:se] + out + segs[se:]

    path = variant("pair-corrections.835", tmp_path, 904, reverse_void)
    load(store, "pair-corrections.837")
    r = ingest_file(path, store)
    assert r.status == INGESTED and not [f for f in r.findings if f.code.startswith("BAL-")], r.findings
    c = by_pcn(reconcile(store, AS_OF))["CORRVOID01"]
    assert (c.status, c.paid, c.payments, c.reversals) == ("voided", 0, 0, 1)


def test_corrections_reversal_without_correction(corrections):
    loops = clp_loops("CORRREV01")
    assert [p["status"] for p in loops] == ["1", "22"] and loops[1]["paid"] == -loops[0]["paid"] != 0
    c = by_pcn(reconcile(corrections, AS_OF))["CORRREV01"]
    assert (c.status, c.paid, c.patient_responsibility, c.payments, c.reversals) == ("reversed", 0, 0, 0, 1)
    assert c.last_payment_date is None


def test_corrections_changed_code_matches_on_svc06(corrections):
    (p,) = clp_loops("CORRCODE01")
    recoded = next(s for s in p["svcs"] if s["orig"])
    assert recoded["code"] != recoded["orig"] and recoded["6r"] is None  # nothing else to match on
    c = by_pcn(reconcile(corrections, AS_OF, lines=True))["CORRCODE01"]
    assert all(m.line_number is not None and m.matched_by for m in c.lines), c.lines  # no leftovers
    m = next(m for m in c.lines if m.procedure == recoded["orig"])
    assert (m.paid, m.matched_by) == (recoded["paid"], "exact")
    assert (c.paid, c.status) == (p["paid"], "paid")


def test_corrections_pi_reduction_leaves_the_claim_partially_paid(corrections):
    (p,) = clp_loops("CORRPI01")
    pi = [a for a in p["cas"] if a[0] == "PI"]
    assert pi and p["paid"] > 0
    c = by_pcn(reconcile(corrections, AS_OF))["CORRPI01"]
    assert (c.status, c.paid, c.denied) == ("partially paid", p["paid"], sum(a[2] for a in pi))


def test_corrections_denied_claims(corrections):
    claims = by_pcn(reconcile(corrections, AS_OF))
    for pcn in ("CORROTHER01", "CORRNOCAS01"):
        (p,) = clp_loops(pcn)
        assert p["status"] == "4"
        assert (claims[pcn].status, claims[pcn].paid) == ("denied", 0), pcn
    assert not clp_loops("CORRNOCAS01")[0]["cas"]


def test_denials_pair_units_claim_is_paid_for_one_unit(store):
    load(store, "pair-denials.837", "pair-denials.835")
    c = by_pcn(reconcile(store, AS_OF))["DUNITS01"]  # CO-151 on the second unit, CO-45 + PR-2 on the first
    assert (c.status, c.paid, c.patient_responsibility, c.denied) == ("partially paid", 8800, 2200, 25000)


# ------------------------------------------------------------------ scoped reconciliation (batch reports)


@pytest.fixture(params=[0.0, 1e9], ids=["read-whole-then-filter", "read-scope-only"])
def scope_reads(request, monkeypatch):
    """Both ways reconcile(pcns=...) reads: the whole store filtered in Python, and SQL scoped reads."""
    monkeypatch.setattr(reconcile_module, "SCOPED_READ_MAX_SHARE", request.param)
    return request.param


def _assert_scoped_matches_whole(store):
    whole = reconcile(store, AS_OF, lines=True)
    claims, remits = by_pcn(whole), {r["patient_control_number"]: r for r in whole.unmatched_remits}
    pcns = {r.patient_control_number for r in store.recon_payments()} | set(claims)
    assert pcns
    for pcn in sorted(pcns):
        part = reconcile(store, AS_OF, lines=True, pcns=[pcn])
        # every group the part holds is the whole run's group, value for value
        for c in part.claims:
            assert c == claims[c.patient_control_number], pcn
        for r in part.unmatched_remits:
            assert r == remits[r["patient_control_number"]], pcn
        # and the pcn's own group is there
        got = {c.patient_control_number for c in part.claims} | {r["patient_control_number"] for r in
                                                                 part.unmatched_remits}
        assert got, pcn


def test_scoped_reconcile_equals_whole_store_on_corrections(corrections, scope_reads):
    _assert_scoped_matches_whole(corrections)


def test_scoped_reconcile_follows_a_replacement_with_a_new_pcn(store, tmp_path, scope_reads):
    load(store, "pair-reversal.837", "pair-reversal.835", variant("pair-reversal.837", tmp_path, 904, replace_with_new_pcn))
    assert store.linked_pcns(["REVERSAL01"]) == {"REVERSAL01", "REPL01"}
    assert store.linked_pcns(["REPL01"]) == {"REVERSAL01", "REPL01"}
    part = reconcile(store, AS_OF, pcns=["REVERSAL01"])  # the remit's pcn; the claim of record is REPL01
    assert [c.patient_control_number for c in part.claims] == ["REPL01"] and not part.unmatched_remits
    _assert_scoped_matches_whole(store)


def test_scoped_reconcile_on_denials_and_plb(store, scope_reads):
    load(store, "pair-denials.837", "pair-denials.835", "pair-plb.837", "pair-plb.835")
    _assert_scoped_matches_whole(store)
    part = reconcile(store, AS_OF, pcns=[])
    assert not part.claims and not part.unmatched_remits


def test_scoped_reconcile_leaves_a_callers_transaction_open(store, scope_reads):
    load(store, "pair-plb.837", "pair-plb.835")
    before = store.table_counts(["files"])["files"]

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with store.transaction():
            store.add_file("f" * 64, "scratch", "835", None, None, "test")
            part = reconcile(store, AS_OF, pcns=["PLBPAID01"])
            assert [c.patient_control_number for c in part.claims] == ["PLBPAID01"]
            raise Undo  # rolls the transaction back: the scoped reads must not have committed it
    assert store.table_counts(["files"])["files"] == before


@pytest.mark.parametrize("batch", [1, 2, 512])
def test_streamed_json_is_the_same_document(store, batch):
    """reconcile --format json writes the claims a batch at a time; the text is what one dump gives."""
    import json

    from edi_pipeline.formats.convert import compact_json

    load(store, "pair-denials.837", "pair-denials.835", "pair-plb.837", "pair-plb.835", "pair-reversal.837",
         "pair-reversal.835")
    rec = reconcile(store, AS_OF, lines=True)
    assert len(rec.claims) > 2 and rec.unmatched_remits is not None
    parts: list[str] = []
    rec.write_json(parts.append, compact_json, batch=batch)
    text = "".join(parts)
    assert text == compact_json(rec.to_dict())
    assert json.loads(text)["claims"][0]["patient_control_number"] == rec.claims[0].patient_control_number


def test_streamed_json_of_a_store_without_claims(store):
    from edi_pipeline.formats.convert import compact_json

    load(store, "pair-plb.835")
    rec = reconcile(store, AS_OF, lines=True)
    parts: list[str] = []
    rec.write_json(parts.append, compact_json)
    assert "".join(parts) == compact_json(rec.to_dict()) and not rec.claims


def test_a_scope_holding_most_of_the_store_is_read_whole(store, monkeypatch):
    load(store, "pair-denials.837", "pair-denials.835", "pair-plb.837", "pair-plb.835")
    scoped_reads = []
    real = Store.recon_scope
    monkeypatch.setattr(Store, "recon_scope", lambda self, pcns: scoped_reads.append(1) or real(self, pcns))
    every = {r[1] for r in store.recon_claims()}
    whole = reconcile(store, AS_OF)
    assert reconcile(store, AS_OF, pcns=every).claims == whole.claims
    assert not scoped_reads  # all of it: one whole read, nothing to scope
    one = sorted(every)[0]
    assert [c.patient_control_number for c in reconcile(store, AS_OF, pcns=[one]).claims] == [one]
    assert scoped_reads == [1]  # a few claims of many: SQL reads only their rows
