"""Write the small deterministic 837P/835 fixtures and their README into fixtures/edi/, and small CMS NCCI
files in the official layouts into fixtures/ncci/."""

from __future__ import annotations

import argparse
import dataclasses
import re
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from x12gen import (V837, Adj, Claim, ClaimPay, Envelope, InterchangeWriter, Line, Payer, Person,  # noqa: E402
                    Plb, Provider, Remit835, ServicePay, Submission837, build_835, build_837,
                    build_837_set, clp06_for, fake_address, fake_name, interchange_text, make_npi, to_cents)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "fixtures" / "edi"

BILLING = Provider("LANTERN PAIN CENTER", make_npi(1), entity="2", taxonomy="208VP0014X", tax_id="990000001",
                   address=fake_address(1))
DR_A = Provider("OAKENHURST", make_npi(11), first="BRIN", taxonomy="208VP0014X")
DR_B = Provider("VELLACOTT", make_npi(12), first="ISOLDE", taxonomy="171100000X")  # acupuncturist

MEDICARE = Payer("MEDICARE PART B", "MCRB1", "MB")
BLUEPEAK = Payer("BLUE PEAK HEALTH", "BPH01", "BL")
ACME = Payer("ACME COMMERCIAL HEALTH", "ACM01", "CI")
STATEWC = Payer("STATE FUND WORKERS COMP", "SFWC1", "WC")
ROADWAY = Payer("ROADWAY AUTO INSURANCE", "RAI01", "AM")
MEDIGAP = Payer("HARBOR MEDIGAP PLAN", "HMG01", "CI")

CLBP = "M54.50"
MYO = "M79.18"

_patients: dict[str, Person] = {}


def patient(key: str, n: int = 0, medicare: bool = True) -> Person:
    """A fake person, stable per key; numbered in first-use order unless n is given."""
    if key not in _patients:
        n = n or len(_patients) + 1
        last, first = fake_name(n * 5 + 2)
        mid = f"{n % 9 + 1}EG{n:03d}FK{(n * 7) % 100:02d}" if medicare else f"FM{n:07d}"
        _patients[key] = Person(last, first, mid, f"19{40 + n % 45:02d}{n % 12 + 1:02d}{n % 27 + 1:02d}",
                                "F" if n % 2 else "M", fake_address(n + 20))
    return _patients[key]


def claim(pcn: str, payer: Payer, lines: list[Line], dx=(MYO,), dos="20261005", who: str | None = None,
          n: int = 0, rendering: Provider = DR_A, **kw) -> Claim:
    """A claim for patient `who` (defaults to pcn); WC/AM claims get a case number and accident date."""
    sub = patient(who or pcn, n, payer.filing == "MB")
    if payer.filing == "WC":
        kw.setdefault("case_ref", "WC" + pcn[-6:])
        kw.setdefault("accident_date", "20260715")
        kw.setdefault("related_cause", "EM")
    if payer.filing == "AM":
        kw.setdefault("case_ref", "AM" + pcn[-6:])
        kw.setdefault("accident_date", "20260720")
        kw.setdefault("related_cause", "AA:::OH")
    return Claim(pcn, sub, payer, list(dx), lines, dos=dos, rendering=rendering, **kw)


def sub837(claims: list[Claim], batch: str) -> Submission837:
    return Submission837(BILLING, claims, batch_id=batch)


def L(code, charge, units=1, mods=(), ptr=(1,), **kw) -> Line:
    return Line(code, charge, units, tuple(mods), tuple(ptr), **kw)


def add_days(yyyymmdd: str, days: int) -> str:
    import datetime as dt
    d = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])) + dt.timedelta(days=days)
    return d.strftime("%Y%m%d")


# ----------------------------------------------------------------------------- 837 rule fixtures

def rule_fixtures() -> dict[str, tuple[str, list[Claim]]]:
    f: dict[str, tuple[str, list[Claim]]] = {}
    M = MEDICARE
    f["tpi-units"] = ("TPI-UNITS: 20552 billed with SV104=2 (Medicare)",
                      [claim("TPIUNITS01", M, [L("20552", 300, 2)])])
    f["tpi-one-line"] = ("TPI-ONE-LINE: two 20553 lines in one session",
                         [claim("TPIONELINE01", M, [L("20553", 250), L("20553", 250)])])
    f["tpi-one-code"] = ("TPI-ONE-CODE: 20552 and 20553 on the same claim and date",
                         [claim("TPIONECODE01", M, [L("20552", 150), L("20553", 250)])])
    f["tpi-one-code-different-dates"] = (
        "near-miss: 20552 and 20553 on different line dates, same patient/provider (TPI-ONE-CODE must not fire)",
        [claim("TPIDIFFDATE01", M, [L("20552", 150, dos="20261005"), L("20553", 250, dos="20261012")])])
    f["tpi-one-code-split-claims"] = (
        "TPI-ONE-CODE across claims: one session (patient+rendering+date) split over 2 claims, 20552 on one, 20553 on the other",
        [claim("TPISPLIT01", M, [L("20552", 150)], who="TPISPLIT"),
         claim("TPISPLIT02", M, [L("20553", 250)], who="TPISPLIT")])
    f["tpi-one-code-different-rendering"] = (
        "near-miss: commercial 20552 and 20553 same patient and date but different rendering NPIs (not one session)",
        [claim("TPIDIFFREND01", BLUEPEAK, [L("20552", 150)], who="TPIDIFFREND"),
         claim("TPIDIFFREND02", BLUEPEAK, [L("20553", 250)], who="TPIDIFFREND", rendering=DR_B)])
    f["tpi-modifiers"] = ("TPI-MODIFIERS: 20553-RT and 20552-50 (laterality on muscle-count codes)",
                          [claim("TPIMODS01", M, [L("20553", 250, mods=["RT"])]),
                           claim("TPIMODS02", M, [L("20552", 150, mods=["50"])])])
    f["tpi-freq"] = ("TPI-FREQ: one Medicare beneficiary with 4 TPI sessions within 12 months",
                     [claim(f"TPIFREQ0{i + 1}", M, [L("20553", 250)], dos=d, who="TPIFREQ")
                      for i, d in enumerate(["20260908", "20260929", "20261020", "20261110"])])
    f["tpi-freq-commercial"] = ("near-miss: 4 TPI sessions for a commercial member (TPI-FREQ is Medicare-only)",
                                [claim(f"TPIFREQC0{i + 1}", BLUEPEAK, [L("20553", 250)], dos=d, who="TPIFREQC")
                                 for i, d in enumerate(["20260908", "20260929", "20261020", "20261110"])])
    f["tpi-anesthesia"] = ("TPI-ANESTHESIA: anesthesia code 01992 in the session with 20553",
                           [claim("TPIANES01", M, [L("01992", 400), L("20553", 250)])])
    f["dn-units"] = ("DN-UNITS: 20561 with SV104=2 (Medicare, cLBP dx)",
                     [claim("DNUNITS01", M, [L("20561", 240, 2)], dx=[CLBP])])
    f["dn-one-line"] = ("DN-ONE-LINE: two 20560 lines in one session",
                        [claim("DNONELINE01", M, [L("20560", 90), L("20560", 90)], dx=[CLBP])])
    f["dn-one-code"] = ("DN-ONE-CODE: 20560 and 20561 in one session",
                        [claim("DNONECODE01", M, [L("20560", 90), L("20561", 120)], dx=[CLBP])])
    f["dn-tpi-same-session"] = ("DN-TPI-SAME-SESSION: 20561 without 59/XS with 20553 same session",
                                [claim("DNTPI01", M, [L("20561", 120, ptr=(1,)), L("20553", 250, ptr=(2,))],
                                       dx=[CLBP, MYO])])
    f["dn-tpi-same-session-xs"] = ("near-miss: 20561-XS with 20553 same session (DN-TPI-SAME-SESSION must not fire)",
                                   [claim("DNTPIXS01", M, [L("20561", 120, mods=["XS"], ptr=(1,)),
                                                           L("20553", 250, ptr=(2,))], dx=[CLBP, MYO])])
    f["acu-one-initial"] = ("ACU-ONE-INITIAL: 97810 and 97813 in one session",
                            [claim("ACUONEINIT01", M, [L("97810", 80), L("97813", 95)], dx=[CLBP], rendering=DR_B)])
    f["acu-initial-units"] = ("ACU-INITIAL-UNITS: 97813 with SV104=3",
                              [claim("ACUINITUNITS01", M, [L("97813", 285, 3)], dx=[CLBP], rendering=DR_B)])
    f["acu-addon-no-primary"] = ("ACU-ADDON-NO-PRIMARY: 97814 billed without 97810/97813",
                                 [claim("ACUADDONNP01", M, [L("97814", 70)], dx=[CLBP], rendering=DR_B)])
    f["acu-addon-mue"] = ("ACU-ADDON-MUE: 97810 + 97811 x3 (CMS MUE 2)",
                          [claim("ACUADDONMUE01", M, [L("97810", 80), L("97811", 195, 3)], dx=[CLBP],
                                 rendering=DR_B)])
    f["acu-ncd-dx"] = ("ACU-NCD-DX: Medicare 97813 + 20560 pointing only at non-cLBP dx M79.18/M54.2",
                       [claim("ACUNCDDX01", M, [L("97813", 95), L("20560", 90, ptr=(2,))], dx=[MYO, "M54.2"],
                              rendering=DR_B)])
    f["acu-ncd-dx-commercial"] = ("near-miss: non-cLBP acupuncture on a commercial claim with REF*G1 (Medicare-only rule)",
                                  [claim("ACUNCDDXC01", ACME, [L("97813", 95)], dx=[MYO], rendering=DR_B,
                                         auth="PA2026100")])
    f["acu-ncd-dx-wc"] = ("near-miss: non-cLBP acupuncture on a workers' comp (WC) claim with REF*G1 and REF*Y4",
                          [claim("ACUNCDDXWC01", STATEWC, [L("97813", 95)], dx=["M54.2"], rendering=DR_B,
                                 auth="WCAUTH7781")])
    f["acu-ncd-dx-am"] = ("near-miss: non-cLBP acupuncture on a no-fault (AM) claim with REF*G1 and REF*Y4",
                          [claim("ACUNCDDXAM01", ROADWAY, [L("97813", 95)], dx=["M54.2"], rendering=DR_B,
                                 auth="NFAUTH5520")])
    f["acu-ncd-visits"] = ("ACU-NCD-VISITS: 13 weekly Medicare acupuncture visits in 84 days, visit 13 without KX",
                           [claim(f"ACUVISITS{i + 1:02d}", M, [L("97813", 95)], dx=[CLBP],
                                  dos=add_days("20260901", 7 * i), who="ACUVISITS", rendering=DR_B)
                            for i in range(13)])
    f["acu-ncd-visits-kx"] = ("near-miss: 13 weekly Medicare acupuncture visits, visit 13 carries KX",
                              [claim(f"ACUVISKX{i + 1:02d}", M, [L("97813", 95, mods=["KX"] if i >= 12 else [])],
                                     dx=[CLBP], dos=add_days("20260901", 7 * i), who="ACUVISKX", rendering=DR_B)
                               for i in range(13)])
    f["acu-ncd-max"] = ("ACU-NCD-MAX: 21 Medicare acupuncture visits (KX on 13-21) in 12 months",
                        [claim(f"ACUMAX{i + 1:02d}", M, [L("97813", 95, mods=["KX"] if i >= 12 else [])],
                               dx=[CLBP], dos=add_days("20260901", 3 * i + (i % 2)), who="ACUMAX", rendering=DR_B)
                         for i in range(21)])
    f["guide-included"] = ("GUIDE-INCLUDED: 76942 with 20611 (guidance already included), commercial",
                           [claim("GUIDEINCL01", BLUEPEAK, [L("20611", 310), L("76942", 120)], dx=["M17.11"])])
    f["guide-tpi-medicare"] = ("GUIDE-TPI-MEDICARE: 76942 with 20553 on a Medicare claim",
                               [claim("GUIDETPIM01", M, [L("20553", 250), L("76942", 120)])])
    f["guide-tpi-commercial"] = ("near-miss: 76942 with 20553 on a commercial claim (GUIDE-TPI-MEDICARE must not fire)",
                                 [claim("GUIDETPIC01", BLUEPEAK, [L("20553", 250), L("76942", 120)])])
    f["em-same-day"] = ("EM-SAME-DAY: 99213 without modifier 25 in a session with 20553",
                        [claim("EMSAMEDAY01", M, [L("99213", 120), L("20553", 250)])])
    f["em-same-day-mod25"] = ("near-miss: 99213-25 with 20553 (EM-SAME-DAY must not fire)",
                              [claim("EMMOD2501", M, [L("99213", 120, mods=["25"]), L("20553", 250)])])
    f["drug-lidocaine"] = ("DRUG-LIDOCAINE: J2001 x10 on a claim with 20552",
                           [claim("DRUGLIDO01", M, [L("20552", 150), L("J2001", 30, 10)])])
    f["unlisted-desc"] = ("UNLISTED-DESC: 28899 without an SV101-7 description",
                          [claim("UNLISTED01", M, [L("28899", 400)], dx=["M79.671"])])
    f["unlisted-desc-present"] = ("near-miss: 28899 with SV101-7 description (UNLISTED-DESC must not fire)",
                                  [claim("UNLISTEDOK01", M, [L("28899", 400, desc="PLANTAR NEUROMA INJECTION")],
                                         dx=["M79.671"])])
    f["cpm-monthly"] = ("CPM-MONTHLY: G3002 twice in October 2026 for one patient (two claims)",
                        [claim("CPMMONTH01", M, [L("G3002", 110)], dx=["G89.4"], dos="20261005", who="CPMMONTH"),
                         claim("CPMMONTH02", M, [L("G3002", 110)], dx=["G89.4"], dos="20261026", who="CPMMONTH")])
    f["cpm-addon"] = ("CPM-ADDON: G3003 without G3002 for the patient and month",
                      [claim("CPMADDON01", M, [L("G3003", 45)], dx=["G89.4"])])
    f["auth-required"] = ("AUTH-REQUIRED: commercial 97813 and workers' comp 20553 with no REF*G1",
                          [claim("AUTHREQ01", ACME, [L("97813", 95)], dx=[CLBP], rendering=DR_B),
                           claim("AUTHREQ02", STATEWC, [L("20553", 250)])])
    f["auth-required-on-file"] = ("near-miss: commercial 97813 with 2300 REF*G1 and no-fault 20553 with line REF*G1",
                                  [claim("AUTHOK01", ACME, [L("97813", 95)], dx=[CLBP], rendering=DR_B,
                                         auth="PA2026200"),
                                   claim("AUTHOK02", ROADWAY, [L("20553", 250, auth="NF778812")])])
    f["dx-pointer"] = ("DX-POINTER: SV107 pointer 3 with only 2 HI codes",
                       [claim("DXPOINTER01", M, [L("20553", 250, ptr=(1, 3))], dx=[MYO, "M54.2"])])
    f["total-mismatch"] = ("TOTAL-MISMATCH: CLM02 999 while the lines sum to 370",
                           [claim("TOTALMISM01", M, [L("99213", 120, mods=["25"]), L("20553", 250)], total=999)])
    return f


def compliance_fixtures() -> dict[str, tuple[str, list[Claim]]]:
    """Issue 14's rule fixtures, written after every older fixture so those keep their bytes."""
    f: dict[str, tuple[str, list[Claim]]] = {}
    M = MEDICARE
    f["tpi-one-code-a57751"] = (
        "TPI-ONE-CODE for Medicare (A57751): 20552 and 20553 same patient and day by two rendering NPIs of one "
        "billing provider",
        [claim("TPIA5775101", M, [L("20552", 150)], who="TPIA57751"),
         claim("TPIA5775102", M, [L("20553", 250)], who="TPIA57751", rendering=DR_B)])
    f["dn-tpi-same-session-xu"] = ("near-miss: 20561-XU with 20553 same session (XE/XP/XU count as 59/XS)",
                                   [claim("DNTPIXU01", M, [L("20561", 120, mods=["XU"], ptr=(1,)),
                                                           L("20553", 250, ptr=(2,))], dx=[CLBP, MYO])])
    f["acu-ncd-dx-liability"] = (
        "ACU-NCD-DX with liability modifiers: Medicare non-cLBP 97810-GA, 97813-GZ and 20560-GY go out "
        "(info, warning, info)",
        [claim("ACUNCDGA01", M, [L("97810", 80, mods=["GA"])], dx=[MYO], rendering=DR_B),
         claim("ACUNCDGZ01", M, [L("97813", 95, mods=["GZ"])], dx=[MYO], rendering=DR_B),
         claim("ACUNCDGY01", M, [L("20560", 90, mods=["GY"])], dx=[MYO], rendering=DR_B)])
    f["guide-recode"] = ("GUIDE-RECODE: 20610 with 76942 in one session (commercial): 20611, 76942 removed",
                         [claim("GUIDERECODE01", BLUEPEAK, [L("20610", 180), L("76942", 120)], dx=["M17.11"])])
    f["guide-recode-other-day"] = ("near-miss: 20610 and 76942 on different days (GUIDE-RECODE must not fire)",
                                   [claim("GUIDERECOD02", BLUEPEAK, [L("20610", 180, dos="20261005"),
                                                                    L("76942", 120, dos="20261006")], dx=["M17.11"])])
    f["guide-tpi-medicare-joint"] = (
        "near-miss: Medicare 20553 + 20610 + 76942: the guidance belongs to the joint injection (GUIDE-RECODE "
        "fires, GUIDE-TPI-MEDICARE must not)",
        [claim("GUIDETPIJ01", M, [L("20553", 250), L("20610", 180, ptr=(2,)), L("76942", 120, ptr=(2,))],
               dx=[MYO, "M17.11"])])
    f["cpm-monthly-units"] = ("CPM-MONTHLY: one G3002 line with 2 units (units count, not lines)",
                              [claim("CPMUNITS01", M, [L("G3002", 220, 2)], dx=["G89.4"])])
    f["duplicate-claim"] = ("DUPLICATE-CLAIM: DUPCLAIM02 repeats DUPCLAIM01 exactly (held); DUPCLAIM03 repeats "
                            "one of its lines (reported)",
                            [claim("DUPCLAIM01", M, [L("99213", 120, mods=["25"]), L("20553", 250)], who="DUP"),
                             claim("DUPCLAIM02", M, [L("99213", 120, mods=["25"]), L("20553", 250)], who="DUP"),
                             claim("DUPCLAIM03", M, [L("J3301", 40, 4)], who="DUP", dx=[MYO]),
                             claim("DUPCLAIM04", M, [L("J3301", 40, 4), L("J1030", 25)], who="DUP", dx=[MYO])])
    f["duplicate-claim-replacement"] = (
        "near-miss: an original and its replacement (frequency 7, REF*F8) with the same lines (not a duplicate)",
        [claim("DUPREPL01", M, [L("99214", 180)], who="DUPREPL", dx=["M54.2"]),
         claim("DUPREPL02", M, [L("99214", 180)], who="DUPREPL", dx=["M54.2"], freq="7", orig_ref="26300000901")])
    f["timely-filing"] = ("TIMELY-FILING: Medicare date of service 2025-10-01, past 12 months at the scrub date "
                          "2026-11-27 (held); a 2025-12-10 one 13 days from the limit (reported)",
                          [claim("TIMELY01", M, [L("20553", 250)], dos="20251001"),
                           claim("TIMELY02", M, [L("20552", 150)], dos="20251210")])
    f["corrected-no-f8"] = ("CORRECTED-NO-F8: a replacement (CLM05-3=7) and a void (8) without REF*F8 (both held)",
                            [claim("CORRNOF801", M, [L("20553", 250)], freq="7"),
                             claim("CORRNOF802", M, [L("20552", 150)], freq="8")])
    f["acu-one-initial-merge"] = ("ACU-ONE-INITIAL: 97810 + 97813 + 97811 x1 on one claim: the 97810 merges into "
                                  "the 97811 line (2 units)",
                                  [claim("ACUMERGE01", M, [L("97813", 95), L("97810", 80), L("97811", 65)],
                                         dx=[CLBP], rendering=DR_B)])
    return f


def clean_claims() -> list[Claim]:
    """Several clean claims across all payer profiles; one with patient != subscriber (2000C)."""
    dep = Person("TANSYMORE", "WILLA", "", "20080414", "F")
    return [
        claim("CLEANMCR01", MEDICARE, [L("99213", 120, mods=["25"]), L("20553", 250, ptr=(1, 2)),
                                       L("J3301", 40, 4, ptr=(1,))], dx=[MYO, "M54.2"]),
        claim("CLEANMCR02", MEDICARE, [L("97813", 95), L("97814", 140, 2)], dx=[CLBP, "G89.4"], rendering=DR_B),
        claim("CLEANMCR03", MEDICARE, [L("20611", 310), L("J1030", 25)], dx=["M17.11"]),
        claim("CLEANMCR04", MEDICARE, [L("G3002", 110)], dx=["G89.4", "M54.2"]),
        claim("CLEANBL01", BLUEPEAK, [L("20552", 150), L("J1030", 25), L("76942", 120)], dx=["M62.838"]),
        claim("CLEANCI01", ACME, [L("97810", 80), L("97811", 65)], dx=[CLBP], rendering=DR_B, auth="PA2026300"),
        claim("CLEANCI02", ACME, [L("99214", 180)], dx=["M54.2", "G89.4"], who="CLEANDEP",
              patient=dep, relationship="19"),
        claim("CLEANWC01", STATEWC, [L("99214", 180, mods=["25"], auth="WCAUTH1001"), L("20553", 250, auth="WCAUTH1001")],
              dx=["M54.2", "M79.18"]),
        claim("CLEANAM01", ROADWAY, [L("20561", 120), L("97140", 60, 2)], dx=["M54.2"], auth="NFAUTH2001"),
    ]


# ----------------------------------------------------------------------------- 835 helpers

def pay(line: Line, claim_: Claim, n: int, allowed, pr=(), extra=(), remarks=(), units=None,
        code: str | None = None, ctrl: bool = True) -> ServicePay:
    """A paid line. `extra` adjustments (denials, PI reductions) come off the charge first; CO-45 =
    charge - extra - allowed; PR adjustments come out of the allowed amount, so paid = allowed - PR.
    `code`: the payer adjudicated another code (SVC01 = code, SVC06 = the submitted one).
    `ctrl=False`: the payer does not echo REF*6R."""
    co45 = to_cents(line.charge) - sum(to_cents(a.amount) for a in extra) - to_cents(allowed)
    assert co45 >= 0 and to_cents(allowed) >= sum(to_cents(a) for _, a in pr), (claim_.pcn, n)
    adjs = ([Adj("CO", "45", co45 / 100)] if co45 else []) + list(extra) + [Adj("PR", r, a) for r, a in pr]
    recoded = code is not None and code != line.code
    return ServicePay(code or line.code, line.charge, units=units or line.units,
                      modifiers=line.modifiers, dos=line.dos or claim_.dos, adjs=adjs,
                      ctrl=f"{claim_.pcn}-{n}" if ctrl else "", allowed=allowed, remarks=list(remarks),
                      orig_code=line.code if recoded else "", orig_modifiers=line.modifiers if recoded else ())


def deny(line: Line, claim_: Claim, n: int, group: str, reason: str, remarks=()) -> ServicePay:
    return ServicePay(line.code, line.charge, units=line.units, modifiers=line.modifiers, dos=line.dos or claim_.dos,
                      adjs=[Adj(group, reason, line.charge)], ctrl=f"{claim_.pcn}-{n}", remarks=list(remarks))


def remit_claim(c: Claim, status: str, services: list[ServicePay], icn: str, **kw) -> ClaimPay:
    charge = sum(to_cents(l.charge) for l in c.lines) / 100
    return ClaimPay(c.pcn, status, charge, c.patient or c.subscriber, services, filing=clp06_for(c.payer.filing),
                    payer_claim_no=icn, rendering=c.rendering, start=c.dos, **kw)


def negate(cp: ClaimPay, icn: str) -> ClaimPay:
    """CLP02=22 reversal of a previous payment: every amount negated."""
    svcs = [ServicePay(s.code, -to_cents(s.charge) / 100, None, s.units, s.modifiers, s.dos,
                       [Adj(a.group, a.reason, -to_cents(a.amount) / 100, a.qty) for a in s.adjs], s.ctrl,
                       None if s.allowed is None else -to_cents(s.allowed) / 100, s.remarks, s.orig_code,
                       s.orig_modifiers) for s in cp.services]
    return ClaimPay(cp.pcn, "22", -to_cents(cp.charge) / 100, cp.patient, svcs, filing=cp.filing,
                    payer_claim_no=icn, rendering=cp.rendering, start=cp.start,
                    adjs=[Adj(a.group, a.reason, -to_cents(a.amount) / 100) for a in cp.adjs])


# ----------------------------------------------------------------------------- pairs

def pair_denials() -> tuple[str, str]:
    M, C = MEDICARE, ACME
    cl = {
        "bundle": claim("DBUNDLE01", M, [L("20552", 150), L("20553", 250)]),
        "mednec": claim("DMEDNEC01", M, [L("97810", 80)], dx=[MYO], rendering=DR_B),
        "auth": claim("DAUTH01", C, [L("97813", 95)], dx=[CLBP], rendering=DR_B),
        "elig": claim("DELIG01", C, [L("99214", 180)], dx=["M54.2"]),
        "timely": claim("DTIMELY01", M, [L("20553", 250)], dos="20260910"),
        "dup": claim("DDUP01", M, [L("99213", 120)], dx=["G89.4"]),
        "missinfo": claim("DMISSINFO01", M, [L("97811", 65)], dx=[CLBP], rendering=DR_B),
        "benlimit": claim("DBENLIMIT01", M, [L("97813", 95)], dx=[CLBP], rendering=DR_B),
        "cob": claim("DCOB01", C, [L("99213", 120)], dx=["M54.2"]),
        "modifier": claim("DMODIFIER01", M, [L("99213", 120), L("20553", 250)]),
        "units": claim("DUNITS01", M, [L("20553", 500, 2)]),
        "partial": claim("DPARTIAL01", C, [L("20552", 150), L("J1030", 25), L("99213", 120, mods=["25"])],
                         dx=["M62.838"]),
        "noremit": claim("NOREMIT01", M, [L("20553", 250)], dx=["M54.2"]),
    }
    t837 = build_837(sub837(list(cl.values()), "PAIRDENY"))
    c = cl
    mcr = [
        remit_claim(c["bundle"], "1", [deny(c["bundle"].lines[0], c["bundle"], 1, "CO", "97", ["M80"]),
                                       pay(c["bundle"].lines[1], c["bundle"], 2, 110, [("2", 22)])], "26290000101"),
        remit_claim(c["mednec"], "4", [deny(c["mednec"].lines[0], c["mednec"], 1, "CO", "50", ["N386"])],
                    "26290000102"),
        remit_claim(c["timely"], "4", [deny(c["timely"].lines[0], c["timely"], 1, "CO", "29")], "26290000103"),
        remit_claim(c["dup"], "4", [deny(c["dup"].lines[0], c["dup"], 1, "OA", "18")], "26290000104"),
        remit_claim(c["missinfo"], "4", [deny(c["missinfo"].lines[0], c["missinfo"], 1, "CO", "16", ["N122"])],
                    "26290000105"),
        remit_claim(c["benlimit"], "4", [deny(c["benlimit"].lines[0], c["benlimit"], 1, "CO", "119", ["N640"])],
                    "26290000106"),
        remit_claim(c["modifier"], "1", [deny(c["modifier"].lines[0], c["modifier"], 1, "CO", "4"),
                                         pay(c["modifier"].lines[1], c["modifier"], 2, 110, [("2", 22)])],
                    "26290000107"),
        remit_claim(c["units"], "1", [pay(c["units"].lines[0], c["units"], 1, 110, [("2", 22)],
                                          [Adj("CO", "151", 250)], ["N362"], units=1)], "26290000108"),
        ClaimPay("UNMATCHED01", "1", 250, patient("UNMATCHED", 777), [
            ServicePay("20553", 250, dos="20261007", adjs=[Adj("CO", "45", 140), Adj("PR", "2", 22)],
                       ctrl="UNMATCHED01-1", allowed=110)], filing="MB", payer_claim_no="26290000109",
            rendering=DR_A, start="20261007"),
    ]
    com = [
        remit_claim(c["auth"], "4", [deny(c["auth"].lines[0], c["auth"], 1, "CO", "197")], "BP77000201"),
        remit_claim(c["elig"], "4", [deny(c["elig"].lines[0], c["elig"], 1, "CO", "27")], "BP77000202"),
        remit_claim(c["cob"], "4", [deny(c["cob"].lines[0], c["cob"], 1, "CO", "22", ["N479"])], "BP77000203"),
        remit_claim(c["partial"], "1", [pay(c["partial"].lines[0], c["partial"], 1, 105, [("2", 21)]),
                                        pay(c["partial"].lines[1], c["partial"], 2, 12.5, [("2", 2.5)]),
                                        pay(c["partial"].lines[2], c["partial"], 3, 85, [("3", 30)])], "BP77000204"),
    ]
    t835 = build_835([Remit835(MEDICARE, BILLING, mcr, pay_date="20261104", trace="EFT2611040001"),
                      Remit835(ACME, BILLING, com, pay_date="20261106", trace="EFT2611060002")])
    return t837, t835


def pair_reversal() -> tuple[str, str]:
    c = claim("REVERSAL01", BLUEPEAK, [L("20553", 250), L("J1030", 25)], dos="20260915")
    t837 = build_837(sub837([c], "PAIRREV"))
    orig = remit_claim(c, "1", [pay(c.lines[0], c, 1, 90, [("2", 18)]), pay(c.lines[1], c, 2, 10, [("2", 2)])],
                       "BP88000301")
    fixed = remit_claim(c, "1", [pay(c.lines[0], c, 1, 130, [("2", 26)]), pay(c.lines[1], c, 2, 15, [("2", 3)])],
                        "BP88000302")
    t835 = build_835([Remit835(BLUEPEAK, BILLING, [orig], pay_date="20261015", trace="EFT2610150001"),
                      Remit835(BLUEPEAK, BILLING, [negate(orig, "BP88000301"), fixed], pay_date="20261112",
                               trace="EFT2611120002")])
    return t837, t835


def pair_plb() -> tuple[str, str]:
    a = claim("PLBPAID01", MEDICARE, [L("99214", 180, mods=["25"]), L("20552", 150)], dx=["M54.2"])
    b = claim("PLBPAID02", MEDICARE, [L("97813", 95), L("97814", 70)], dx=[CLBP], rendering=DR_B)
    t837 = build_837(sub837([a, b], "PAIRPLB"))
    cps = [remit_claim(a, "1", [pay(a.lines[0], a, 1, 130, [("1", 50), ("2", 16)]),
                                pay(a.lines[1], a, 2, 75, [("2", 15)])], "26290000401"),
           remit_claim(b, "1", [pay(b.lines[0], b, 1, 60, [("2", 12)]), pay(b.lines[1], b, 2, 45, [("2", 9)])],
                       "26290000402")]
    plb = [Plb(BILLING.npi, "20261231", "WO:ABC", 25), Plb(BILLING.npi, "20261231", "L6", -3.2),
           Plb(BILLING.npi, "20261231", "FB:FWDBAL01", 10)]
    return t837, build_835([Remit835(MEDICARE, BILLING, cps, pay_date="20261118", trace="EFT2611180001", plb=plb)])


def pair_secondary() -> tuple[str, str]:
    """Medicare primary claims with a Medigap secondary (2320 SBR01 = S, 2330A/2330B) for `resubmit
    --secondary`: SECPAID01 paid with CO-45 and PR-2 coinsurance on both lines, SECDENY01 with one line
    denied CO-50; SECNOSEC01 paid but with no other payer; SECNOREMIT01 with no remit yet."""
    M = MEDICARE
    paid = claim("SECPAID01", M, [L("20553", 250), L("99213", 120, mods=["25"])], dx=[MYO, "M54.2"],
                 other_payer=MEDIGAP, other_member_id="HMG0000101")
    deny_ = claim("SECDENY01", M, [L("20552", 150), L("97813", 95)], dx=[CLBP], rendering=DR_B,
                  other_payer=MEDIGAP, other_member_id="HMG0000102")
    nosec = claim("SECNOSEC01", M, [L("20553", 250)])
    noremit = claim("SECNOREMIT01", M, [L("20553", 250)], other_payer=MEDIGAP, other_member_id="HMG0000104")
    t837 = build_837(sub837([paid, deny_, nosec, noremit], "PAIRSEC"))
    cps = [remit_claim(paid, "1", [pay(paid.lines[0], paid, 1, 110, [("2", 22)]),
                                   pay(paid.lines[1], paid, 2, 80, [("2", 16)])], "26290000501"),
           remit_claim(deny_, "1", [deny(deny_.lines[0], deny_, 1, "CO", "50", ["N386"]),
                                    pay(deny_.lines[1], deny_, 2, 60, [("2", 12)])], "26290000502"),
           remit_claim(nosec, "1", [pay(nosec.lines[0], nosec, 1, 110, [("2", 22)])], "26290000503")]
    return t837, build_835([Remit835(MEDICARE, BILLING, cps, pay_date="20261110", trace="EFT2611100001")])


def pair_corrections() -> tuple[str, str]:
    """Corrected claims and the remit cases the other pairs miss.

    The 837 holds two batches: the originals (BHT 2026-10-10) and the corrections (2026-11-20):
    CORRREPL01 replaced (CLM05-3 = 7, REF*F8 = its CLP07, adds the J1030 line that was left off) and
    CORRVOID01 voided (CLM05-3 = 8). The 835 holds three remits:
    2026-11-04 Medicare: CORRREPL01, CORRVOID01 and CORRREV01 paid; CORROTHER01 denied CO-170 (category
    `other`, no RARC); CORRNOCAS01 denied CLP02 = 4 with no CAS at all (a $0 99024 post-op visit: with
    no CAS a balanced claim has CLP03 = CLP04).
    2026-11-06 ACME: CORRPI01 paid with PI-150 30 on the E/M line (underpaid, denial).
    2026-12-02 Medicare: CORRREV01 reversed with no corrected payment; CORRREPL01's first payment
    reversed and the replacement paid (CLP09 = 7); CORRCODE01 paid with its 20553 line adjudicated as
    20552 (SVC06 = 20553, no REF*6R echoed). The void has no payer response yet.
    """
    M = MEDICARE
    repl_orig = claim("CORRREPL01", M, [L("20553", 250), L("99213", 120, mods=["25"])], dx=[MYO, "M54.2"])
    void_orig = claim("CORRVOID01", M, [L("20552", 150)])
    rev = claim("CORRREV01", M, [L("97813", 95)], dx=[CLBP], rendering=DR_B)
    recode = claim("CORRCODE01", M, [L("99213", 120, mods=["25"]), L("20553", 250)], dx=[MYO, "M54.2"])
    pi = claim("CORRPI01", ACME, [L("99214", 180, mods=["25"]), L("20552", 150)], dx=["M62.838"])
    other = claim("CORROTHER01", M, [L("20561", 120)], dx=[CLBP], rendering=DR_B)
    nocas = claim("CORRNOCAS01", M, [L("99024", 0)], dx=["M54.2"])
    repl_icn, void_icn, rev_icn = "26300000101", "26300000102", "26300000103"
    repl = claim("CORRREPL01", M, [L("20553", 250), L("99213", 120, mods=["25"]), L("J1030", 25)],
                 dx=[MYO, "M54.2"], freq="7", orig_ref=repl_icn)
    void = claim("CORRVOID01", M, [L("20552", 150)], freq="8", orig_ref=void_icn)
    originals = Submission837(BILLING, [repl_orig, void_orig, rev, recode, pi, other, nocas], batch_id="PAIRCORR1",
                              date="20261010")
    corrections = Submission837(BILLING, [repl, void], batch_id="PAIRCORR2", date="20261120")
    t837 = interchange_text(Envelope(sender=originals.submitter_id, receiver=originals.receiver_id,
                                     date="20261120", time="1200"), "HC", V837,
                            [build_837_set(originals, "0001"), build_837_set(corrections, "0002")])

    def lines(c: Claim, *paid) -> list[ServicePay]:
        """Every line paid: (allowed, PR-2 coinsurance) per line."""
        return [pay(ln, c, n, allowed, [("2", coins)])
                for n, (ln, (allowed, coins)) in enumerate(zip(c.lines, paid, strict=True), 1)]

    repl_paid = remit_claim(repl_orig, "1", lines(repl_orig, (110, 22), (75, 15)), repl_icn)
    rev_paid = remit_claim(rev, "1", lines(rev, (60, 12)), rev_icn)
    first = [
        repl_paid,
        remit_claim(void_orig, "1", lines(void_orig, (80, 16)), void_icn),
        rev_paid,
        remit_claim(other, "4", [deny(other.lines[0], other, 1, "CO", "170")], "26300000104"),
        remit_claim(nocas, "4", [ServicePay("99024", 0, dos=nocas.dos, ctrl="CORRNOCAS01-1")], "26300000105"),
    ]
    commercial = [remit_claim(pi, "1", [pay(pi.lines[0], pi, 1, 100, [("3", 20)], [Adj("PI", "150", 30)]),
                                        pay(pi.lines[1], pi, 2, 95)], "AC55000201")]
    second = [
        negate(rev_paid, rev_icn),
        negate(repl_paid, repl_icn),
        remit_claim(repl, "1", lines(repl, (110, 22), (75, 15), (10, 2)), "26300000201", freq="7"),
        remit_claim(recode, "1", [pay(recode.lines[0], recode, 1, 75, [("2", 15)]),
                                  pay(recode.lines[1], recode, 2, 80, [("2", 16)], code="20552", ctrl=False)],
                    "26300000202"),
    ]
    t835 = build_835([Remit835(M, BILLING, first, pay_date="20261104", trace="EFT2611040101"),
                      Remit835(ACME, BILLING, commercial, pay_date="20261106", trace="EFT2611060102"),
                      Remit835(M, BILLING, second, pay_date="20261202", trace="EFT2612020103")])
    return t837, t835


def pair_matching() -> tuple[str, str]:
    """The matching rules the other pairs miss (written last, so the fixtures before keep their patients and
    control numbers).

    MATCH6RCODE01: both lines' REF*6R echoed swapped (the 99213's names the 20553 line and back): a 6R
    whose line's code disagrees is no match, so both pair on (procedure, modifiers, date, charge).
    MATCHSVC06R01: 20553 adjudicated as 20552 (SVC06 = 20553) with its REF*6R echoed: a 6R match on SVC06.
    MATCHFALL01: no REF*6R; the 99214 paid without its modifier 25 (pairs on procedure + date) and the
    20552 under another date (on the procedure only).
    MREPLORIG01 paid, replaced under a new CLM01 by MREPLNEW01 (CLM05-3 = 7, REF*F8 = its CLP07), which is
    replaced in turn by MREPLLAST01 (REF*F8 = the replacement's CLP07): one claim group, named by the last.
    The original's payment is reversed, after the replacement's is paid, under another CLP07: it cancels
    the payment of the same negated CLP04, not the latest.
    MVOIDORIG01 paid with its 20552 denied CO-97 + M80, voided under a new CLM01 by MVOIDNEW01 (CLM05-3 =
    8): voided, the payment still held, the denial named by the void's claim.
    """
    M = MEDICARE
    code = claim("MATCH6RCODE01", M, [L("99213", 120, mods=["25"], ctrl="MATCH6RCODE01-A"),
                                      L("20553", 250, ctrl="MATCH6RCODE01-B")], dx=[MYO, "M54.2"])
    svc06 = claim("MATCHSVC06R01", M, [L("20553", 250)])
    fall = claim("MATCHFALL01", M, [L("99214", 180, mods=["25"]), L("20552", 150)], dx=["M54.2"])
    repl_orig = claim("MREPLORIG01", M, [L("20553", 250)], who="MREPL")
    repl = claim("MREPLNEW01", M, [L("20553", 250), L("J1030", 25)], who="MREPL", freq="7",
                 orig_ref="26310000104")
    last = claim("MREPLLAST01", M, [L("20553", 250), L("J1030", 30)], who="MREPL", freq="7",
                 orig_ref="26310000201")
    void_orig = claim("MVOIDORIG01", M, [L("99213", 120, mods=["25"]), L("20552", 150)], dx=[MYO, "M54.2"],
                      who="MVOID")
    void = claim("MVOIDNEW01", M, [L("99213", 120, mods=["25"]), L("20552", 150)], dx=[MYO, "M54.2"],
                 who="MVOID", freq="8", orig_ref="26310000105")
    originals = Submission837(BILLING, [code, svc06, fall, repl_orig, void_orig], batch_id="PAIRMATCH1",
                              date="20261010")
    corrections = Submission837(BILLING, [repl, void], batch_id="PAIRMATCH2", date="20261112")
    again = Submission837(BILLING, [last], batch_id="PAIRMATCH3", date="20261125")
    t837 = interchange_text(Envelope(sender=originals.submitter_id, receiver=originals.receiver_id,
                                     date="20261125", time="1200"), "HC", V837,
                            [build_837_set(originals, "0001"), build_837_set(corrections, "0002"),
                             build_837_set(again, "0003")])
    swapped = [dataclasses.replace(pay(code.lines[0], code, 1, 75, [("2", 15)]), ctrl="MATCH6RCODE01-B"),
               dataclasses.replace(pay(code.lines[1], code, 2, 110, [("2", 22)]), ctrl="MATCH6RCODE01-A")]
    repl_paid = remit_claim(repl_orig, "1", [pay(repl_orig.lines[0], repl_orig, 1, 110, [("2", 22)])], "26310000104")
    first = [
        remit_claim(code, "1", swapped, "26310000101"),
        remit_claim(svc06, "1", [pay(svc06.lines[0], svc06, 1, 80, [("2", 16)], code="20552")], "26310000102"),
        remit_claim(fall, "1", [pay(L("99214", 180), fall, 1, 130, [("2", 26)], ctrl=False),
                                pay(L("20552", 150, dos=add_days(fall.dos, 1)), fall, 2, 75, [("2", 15)],
                                    ctrl=False)], "26310000103"),
        repl_paid,
        remit_claim(void_orig, "1", [pay(void_orig.lines[0], void_orig, 1, 75, [("2", 15)]),
                                     deny(void_orig.lines[1], void_orig, 2, "CO", "97", ["M80"])], "26310000105"),
    ]
    second = [remit_claim(repl, "1", [pay(repl.lines[0], repl, 1, 110, [("2", 22)]),
                                      pay(repl.lines[1], repl, 2, 10, [("2", 2)])], "26310000201", freq="7"),
              negate(repl_paid, "26310000199")]  # after the replacement's payment: not the latest one
    t835 = build_835([Remit835(M, BILLING, first, pay_date="20261104", trace="EFT2611040201"),
                      Remit835(M, BILLING, second, pay_date="20261120", trace="EFT2611200202")])
    return t837, t835


def unbalanced_835() -> str:
    sub_ = patient("UNBAL", 801)
    cp = ClaimPay("UNBAL01", "1", 400, sub_, [
        ServicePay("20553", 250, paid=120, dos="20261006", adjs=[Adj("CO", "45", 140), Adj("PR", "2", 22)],
                   ctrl="UNBAL01-1", allowed=110),  # 250-162 = 88, not 120
        ServicePay("99213", 150, paid=80, dos="20261006", adjs=[Adj("CO", "45", 50)], ctrl="UNBAL01-2")],
        paid=230, filing="MB", payer_claim_no="26290000501", rendering=DR_A, start="20261006")
    return build_835([Remit835(MEDICARE, BILLING, [cp], pay_date="20261110", trace="EFT2611100009", total=199.99)])


def corrupt_835() -> str:
    _, t = pair_plb()
    lines = t.split("\n")
    mid = len(lines) // 2
    lines.insert(mid, "\x00\x07GARBAGE@@@ THIS IS NOT X12 ###~")
    lines.insert(mid + 2, "CLP*BROKEN**~")
    return "\n".join(lines[: len(lines) - 6])  # truncated: no PLB/SE/GE/IEA


# ----------------------------------------------------------------------------- envelope variants

def multi_interchange() -> str:
    out = io.StringIO()
    sets = [[claim("MULTI01", MEDICARE, [L("20553", 250)])], [claim("MULTI02", BLUEPEAK, [L("99214", 180)])],
            [claim("MULTI03", MEDICARE, [L("97813", 95)], dx=[CLBP], rendering=DR_B)]]
    w = InterchangeWriter(out, Envelope(control=101))
    w.open_group("HC", V837)
    w.write_set(build_837_set(sub837(sets[0], "MULTIB1"), "0001"))
    w.write_set(build_837_set(sub837(sets[1], "MULTIB2"), "0002"))
    w.close_group()
    w.close()
    w = InterchangeWriter(out, Envelope(control=102, time="1300"))
    w.open_group("HC", V837)
    w.write_set(build_837_set(sub837(sets[2], "MULTIB3"), "0001"))
    w.close_group()
    w.close()
    return out.getvalue()


def ncci_rule_fixtures() -> dict[str, tuple[str, list[Claim]]]:
    """The NCCI rules' fixtures, judged against the shipped CMS rows (written last, so the fixtures before
    them keep their patients and control numbers)."""
    f: dict[str, tuple[str, list[Claim]]] = {}
    M = MEDICARE
    f["ncci-ptp"] = ("NCCI-PTP: 20560 with 97810 (PTP indicator 0, held) and 20553 with 20610 (indicator 1, no modifier)",
                     [claim("NCCIPTP01", M, [L("20560", 90), L("97810", 80)], dx=[CLBP], rendering=DR_B),
                      claim("NCCIPTP02", M, [L("20610", 180), L("20553", 250, ptr=(2,))], dx=["M17.11", MYO])])
    f["ncci-ptp-modifier"] = ("near-miss: 20553-XU with 20610 (PTP indicator 1 bypassed by a distinct-service modifier)",
                              [claim("NCCIPTPMOD01", M, [L("20610", 180), L("20553", 250, mods=["XU"], ptr=(2,))],
                                     dx=["M17.11", MYO])])
    f["ncci-mue"] = ("NCCI-MUE: G3002 with 2 units on one date (MUE 1, MAI 2: held)",
                     [claim("NCCIMUE01", M, [L("G3002", 220, 2)], dx=["G89.4"])])
    f["ncci-mue-within"] = ("near-miss: 20610 x2 and G3003 x4 (at their MUEs 2 and 4)",
                            [claim("NCCIMUEOK01", M, [L("20610", 360, 2, ptr=(2,)), L("G3002", 110), L("G3003", 180, 4)],
                                   dx=["G89.4", "M17.11"])])
    f["ncci-aoc"] = ("NCCI-AOC: add-on 64484 without its primary 64483 (type 1, held); 96160 without an E/M (type 3)",
                     [claim("NCCIAOC01", M, [L("64484", 300)], dx=["M54.16"]),
                      claim("NCCIAOC02", M, [L("96160", 20)], dx=["G89.4"])])
    f["ncci-aoc-primary"] = ("near-miss: 64483 with its add-on 64484 on the same date by the same provider",
                             [claim("NCCIAOCOK01", M, [L("64483", 600), L("64484", 300)], dx=["M54.16"])])
    return f


def build_all(out_dir: Path | str = DEFAULT_OUT) -> list[tuple[str, str]]:
    """Write every fixture into out_dir; returns [(file name, purpose)] in README order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _patients.clear()
    index: list[tuple[str, str]] = []

    def put(name: str, text: str, purpose: str) -> None:
        # Each file gets its own ISA13/IEA02, as a real sender's files would.
        control = f"{1000 + len(index):09d}"
        text = re.sub(r"(?m)^(\ufeff?ISA(.)(?:[^~]*?\2){12})000000001(\2)", lambda m: m.group(1) + control + m.group(3), text)
        text = re.sub(r"(IEA(.)\d+\2)000000001", lambda m: m.group(1) + control, text)
        with open(out / name, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        index.append((name, purpose))

    put("837p-clean.837", build_837(sub837(clean_claims(), "CLEAN")),
        "clean claims for Medicare, BL, CI, WC and AM profiles incl. a 2000C patient != subscriber claim: no rule fires")
    for key, (purpose, claims) in rule_fixtures().items():
        put(f"837p-{key}.837", build_837(sub837(claims, key.upper().replace("-", "")[:30])), purpose)
    put("837p-multi-interchange.837", multi_interchange(), "envelope: 2 ISA, 2 GS, 3 ST (clean claims)")
    bom = "\ufeff" + build_837(sub837([claim("CRLFBOM01", MEDICARE, [L("20553", 250)])], "CRLFBOM"),
                               newline="\r\n")
    put("837p-crlf-bom.837", bom, "envelope: UTF-8 BOM and CRLF after each segment terminator (clean claim)")
    put("837p-x222a2.837", build_837(sub837([claim("X222A201", MEDICARE, [L("20553", 250)])], "X222A2"),
                                     version="005010X222A2"),
        "envelope: GS08/ST03 labelled 005010X222A2 (pyx12 has no A2 map; otherwise a clean A1 claim)")
    good = build_837(sub837([claim("BADSE01", MEDICARE, [L("20553", 250)])], "BADSE"))
    se = next(s for s in good.split("~\n") if s.startswith("SE*"))
    n = int(se.split("*")[1])
    put("837p-invalid-se-count.837", good.replace(se, f"SE*{n + 3}*" + se.split("*")[2]),
        "invalid: SE01 says 3 more segments than the set holds")
    trunc = build_837(sub837([claim("TRUNC01", MEDICARE, [L("20553", 250)]),
                              claim("TRUNC02", MEDICARE, [L("99213", 120, mods=["25"]), L("20552", 150)])],
                             "TRUNC"))
    cut = trunc.index("SV1*HC:20552")
    put("837p-invalid-truncated.837", trunc[:cut + 14], "invalid: file cut off mid-claim inside an SV1, no SE/GE/IEA")
    d837, d835 = pair_denials()
    put("pair-denials.837", d837, "claims for pair-denials.835, incl. NOREMIT01 that has no remit")
    put("pair-denials.835", d835,
        "denial categories: CO-97+M80, CO-50, CO-197, CO-27, CO-29, OA-18, CO-16+N122, CO-119, CO-22, CO-4, "
        "CO-151+N362 on the second unit (first unit paid), partial CO-45+PR-2/PR-3; UNMATCHED01 remit with no claim")
    r837, r835 = pair_reversal()
    put("pair-reversal.837", r837, "claim REVERSAL01 for pair-reversal.835")
    put("pair-reversal.835", r835, "payment, then CLP02=22 reversal with negated amounts and a corrected payment")
    p837, p835 = pair_plb()
    put("pair-plb.837", p837, "two Medicare claims paid in pair-plb.835")
    put("pair-plb.835", p835, "PLB WO:ABC 25, L6 interest -3.2, FB 10; BPR02 = sum CLP04 - sum PLB")
    put("835-unbalanced.835", unbalanced_835(), "line, claim and BPR02 amounts that do not balance")
    put("835-corrupt.835", corrupt_835(), "garbage bytes and a broken CLP mid-file, truncated before PLB/SE/GE/IEA")
    k837, k835 = pair_corrections()
    put("pair-corrections.837", k837,
        "originals, then a corrections batch: CORRREPL01 replaced (CLM05-3=7, REF*F8, adds a line) and "
        "CORRVOID01 voided (CLM05-3=8, REF*F8)")
    put("pair-corrections.835", k835,
        "replacement: original payment reversed and the replacement paid (CLP09=7); paid claim later voided; "
        "CLP02=22 reversal with no corrected payment; payer-changed code (SVC06, no REF*6R); PI-150 underpayment; "
        "CO-170 (category other); CLP02=4 with no CAS ($0 claim)")
    for key, (purpose, claims) in {**compliance_fixtures(), **ncci_rule_fixtures()}.items():
        put(f"837p-{key}.837", build_837(sub837(claims, key.upper().replace("-", "")[:30])), purpose)
    s837, s835 = pair_secondary()
    put("pair-secondary.837", s837, "Medicare claims with a Medigap secondary (2320 SBR01=S, 2330A/B) for "
        "`resubmit --secondary`, one without another payer, one without a remit")
    put("pair-secondary.835", s835, "the primary's payments: CO-45 + PR-2 coinsurance, a line denied CO-50")
    m837, m835 = pair_matching()
    put("pair-matching.837", m837, "claims for pair-matching.835: MREPLORIG01 replaced under a new CLM01 by "
        "MREPLNEW01 and that by MREPLLAST01 (CLM05-3=7, REF*F8 = the CLP07 paid), MVOIDORIG01 voided by "
        "MVOIDNEW01 (CLM05-3=8)")
    put("pair-matching.835", m835, "line matching: REF*6R echoed swapped (its line's code disagrees: no 6R "
        "match), REF*6R with SVC06 (payer recoded), no REF*6R with a dropped modifier and another date; "
        "the replacement paid, then the replaced original's payment reversed under another CLP07 "
        "(cancels the one of the negated CLP04, not the latest); the voided original's 20552 denied CO-97+M80")
    readme = ["# Bundled EDI fixtures", "",
              "Written by `python3 scripts/make_fixtures.py` (deterministic; all names, ids and NPIs are fake). "
              "Every 837P is TR3-valid per pyx12 unless its name says `invalid` (`837p-x222a2` validates once "
              "relabelled A1; `837p-crlf-bom` once the BOM is stripped).", ""]
    readme += [f"- `{name}` — {purpose}" for name, purpose in index]
    with open(out / "README.md", "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(readme) + "\n")
    return index


# ----------------------------------------------------------------------------- NCCI files (official layouts)

NCCI_OUT = ROOT / "fixtures" / "ncci"
_AMA = "CPT codes, descriptions and other data only are copyright 2025 American Medical Association. All Rights Reserved."
_PTP_HEADER = ["Column1/Column2 Edits",
               "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale",
               "\t\tprior to 1996\tDate\tDate\t0=not allowed\t",
               "\t\t\t\t*=no data\t1=allowed\t",
               "\t\t\t\t\t9=not applicable\t"]
# A made-up quarter (v322r0, 2026Q3): 20560/97140 added (indicator 0), 20560/97810 left out, 20550/99213
# repeated as CMS does (a deleted row and its active successor).
_PTP_F1 = [("20553", "20552", "*", "19960101", "*", "0", "More extensive procedure"),
           ("20560", "97140", "", "20260701", "*", "0", "Mutually exclusive procedures"),
           ("20561", "20560", "", "20200101", "*", "0", "HCPCS/CPT procedure code definition"),
           ("20610", "76942", "", "20150101", "*", "1", "CPT Manual or CMS manual coding instruction"),
           ("20550", "99213", "", "19960101", "20191231", "0", "CPT Manual or CMS manual coding instruction"),
           ("20550", "99213", "", "20200101", "*", "1", "CPT Manual or CMS manual coding instruction"),
           ("97140", "99213", "*", "19960101", "20001030", "9", "Standards of medical/surgical practice")]
_PTP_F2 = [("97813", "97810", "", "20200101", "*", "0", "CPT Manual or CMS manual coding instruction"),
           ("64483", "20553", "", "20110101", "*", "1", "Misuse of column two code with column one code")]
_MUE_ROWS = [("20552", "1", "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"),
             ("20610", "1", "1 Line Edit", "Clinical: Data"),
             ("97811", "2", "3 Date of Service Edit: Clinical", "Clinical: Data"),
             ("G3002", "1", "2 Date of Service Edit: Policy", "Code Descriptor / CPT Instruction"),
             ("G3003", "3", "3 Date of Service Edit: Clinical", "Clinical: Data")]
_AOC_HEADER = ("Add-On Code", "Add-on Code Effective Date", "Add-On Code Deletion Date", "Primary Code",
               "Primary Code Effective Date", "Primary Code Deletion Date", "AOC Edit Type",
               "AOC Edit Effective Date", "AOC Edit Deletion Date", "Primary Code Jurisdiction",
               "Special Instruction Notes")
_AOC_ROWS = [("64484", "20110101", "*", "64483", "20110101", "*", "1", "20110101", "*", "", ""),
             ("97811", "20050101", "*", "97810", "20050101", "*", "1", "20130101", "*", "", ""),
             ("97811", "20050101", "*", "97813", "20050101", "*", "1", "20130101", "*", "", ""),
             ("64495", "20100101", "*", "64493", "20100101", "*", "1", "20130101", "20260101", "", "deleted edit"),
             ("96161", "20170101", "*", "CCCCC", "", "", "2", "20170101", "*", "MAC", "contractor defines")]


def ncci_files() -> dict[str, bytes]:
    """Small CMS NCCI files in the official layouts (PTP zip of two TXT parts, MUE Latin-1 CSV, AOC TXT)."""
    def ptp(rows) -> bytes:
        return ("\r\n".join([_AMA, *_PTP_HEADER, *("\t".join(r) for r in rows)]) + "\r\n").encode("ascii")

    buf = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, rows in (("ccipra-v322r0-f1.TXT", _PTP_F1), ("ccipra-v322r0-f2.TXT", _PTP_F2)):
            info = zipfile.ZipInfo(name, date_time=(2026, 6, 1, 0, 0, 0))
            z.writestr(info, ptp(rows))
    q = lambda v: '"' + v.replace('"', '""') + '"'  # noqa: E731
    mue = "\r\n".join([q(_AMA.replace("copyright", "copyright \u00a9")),
                        ",".join(map(q, ("HCPCS/\nCPT Code", "Practitioner Services MUE Values",
                                         "MUE Adjudication Indicator", "MUE Rationale"))),
                        *(",".join(map(q, r)) for r in _MUE_ROWS)]) + "\r\n"
    aoc = "\r\n".join("\t".join(r) for r in (_AOC_HEADER, *_AOC_ROWS)) + "\r\n"
    return {"medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f1.zip": buf.getvalue(),
            "ccipra-v322r0-f1.TXT": ptp(_PTP_F1),
            "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv": mue.encode("latin-1"),
            "AOC_V2026Q3_01-MCR.txt": aoc.encode("ascii")}


def build_ncci(out_dir: Path | str = NCCI_OUT) -> list[str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ncci_files()
    for name, data in files.items():
        (out / name).write_bytes(data)
    return sorted(files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--ncci-out", default=str(NCCI_OUT))
    args = ap.parse_args(argv)
    idx = build_all(args.out)
    print(f"wrote {len(idx)} fixtures + README.md to {args.out}")
    print(f"wrote {len(build_ncci(args.ncci_out))} NCCI files to {args.ncci_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
