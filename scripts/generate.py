"""Seeded, streaming generator of large realistic pain-management 837P/835 file pairs (fake data)."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from x12gen import (FIRSTNAMES, SURNAMES, V835, V837, Adj, Cents, Claim, ClaimPay, Envelope,  # noqa: E402
                    InterchangeWriter, Line, Payer, Person, Plb, Provider, Remit835, ServicePay, Submission837,
                    build_835_set, build_837_set, clp06_for, fake_address, make_npi)

PAYERS = [  # (payer, weight, allowed fraction of charge)
    (Payer("MEDICARE PART B", "MCRB1", "MB"), 40, 0.52),
    (Payer("BLUE PEAK HEALTH", "BPH01", "BL"), 15, 0.66),
    (Payer("ACME COMMERCIAL HEALTH", "ACM01", "CI"), 25, 0.70),
    (Payer("STATE FUND WORKERS COMP", "SFWC1", "WC"), 10, 0.80),
    (Payer("ROADWAY AUTO INSURANCE", "RAI01", "AM"), 10, 0.90),
]
PAYER_WEIGHTS = [w for _, w, _ in PAYERS]

FEES = {  # charge in cents per unit
    "99213": 12000, "99214": 18000, "20552": 15000, "20553": 25000, "20560": 9000, "20561": 12000,
    "97810": 8000, "97811": 6500, "97813": 9500, "97814": 7000, "76942": 12000, "20610": 28000,
    "20611": 31000, "J3301": 1000, "J1030": 2500, "J2001": 300, "G3002": 11000, "G3003": 4500,
    "28899": 40000, "01992": 40000, "97140": 3000,
}
MYO_DX = ["M79.18", "M62.838", "M54.2", "G89.4", "M79.12"]
CLBP_DX = ["M54.50", "M54.51", "M54.59"]
KNEE_DX = ["M17.11", "M25.561", "M17.12"]
EM_CODES = {"99202", "99203", "99204", "99205", "99212", "99213", "99214", "99215"}

VISITS = [("tpi", 30), ("acu", 25), ("dn", 10), ("joint", 10), ("em", 15), ("cpm", 10)]
TRIPS = ["TPI-UNITS", "TPI-ONE-LINE", "TPI-ONE-CODE", "TPI-MODIFIERS", "TPI-ANESTHESIA", "DN-ONE-CODE",
         "DN-TPI-SAME-SESSION", "ACU-ONE-INITIAL", "ACU-INITIAL-UNITS", "ACU-ADDON-NO-PRIMARY", "ACU-ADDON-MUE",
         "ACU-NCD-DX", "GUIDE-INCLUDED", "GUIDE-TPI-MEDICARE", "EM-SAME-DAY", "DRUG-LIDOCAINE", "UNLISTED-DESC",
         "CPM-ADDON", "AUTH-REQUIRED", "DX-POINTER", "TOTAL-MISMATCH"]
MEDICARE_ONLY_TRIPS = {"ACU-NCD-DX", "GUIDE-TPI-MEDICARE"}
# denial a payer answers a tripped rule with: (code to deny or None = first matching line, group, CARC, RARC)
TRIP_DENIALS = {
    "TPI-ONE-CODE": ("20552", "CO", "97", "M80"), "DN-ONE-CODE": ("20560", "CO", "97", "M80"),
    "ACU-ONE-INITIAL": ("97810", "CO", "97", "M15"), "GUIDE-INCLUDED": ("76942", "CO", "97", "M15"),
    "DRUG-LIDOCAINE": ("J2001", "CO", "97", "M15"), "ACU-NCD-DX": ("97813", "CO", "50", "N386"),
    "AUTH-REQUIRED": (None, "CO", "197", ""), "EM-SAME-DAY": ("99213", "CO", "4", ""),
    "ACU-ADDON-NO-PRIMARY": ("97814", "CO", "16", "N122"), "TPI-ANESTHESIA": ("01992", "CO", "97", "M80"),
}
UNIT_TRIPS = {"TPI-UNITS", "ACU-INITIAL-UNITS", "ACU-ADDON-MUE"}
RANDOM_LINE_DENIALS = [("CO", "97", "M15"), ("CO", "151", "N362"), ("CO", "197", ""), ("CO", "50", "N115"),
                       ("CO", "16", "N122"), ("CO", "119", "N640"), ("CO", "4", ""), ("OA", "18", ""),
                       ("CO", "29", "")]
CLAIM_DENIALS = [("CO", "29"), ("CO", "27"), ("CO", "31"), ("OA", "18"), ("CO", "22")]

BASE_DATE = dt.date(2026, 9, 1)
_DATES = [(BASE_DATE + dt.timedelta(days=k)).strftime("%Y%m%d") for k in range(120)]


@dataclass
class GenClaim:
    claim: Claim
    trip: str = ""
    allowed_frac: float = 0.7


@dataclass
class Stats:
    claims: int = 0
    lines: int = 0
    tripped: int = 0
    claim_denied: int = 0
    line_denied_claims: int = 0
    reversals: int = 0
    plb: int = 0
    trips: dict = field(default_factory=dict)


class Generator:
    """Deterministic source of claims and their adjudication for one seed."""

    def __init__(self, seed: int, trip_rate: float = 0.10):
        self.seed = seed
        self.rng = random.Random(seed)
        self.trip_rate = trip_rate
        self.billing = Provider("LANTERN PAIN CENTER", make_npi(seed * 1000 + 1), entity="2",
                                address=fake_address(seed), tax_id=f"99{seed % 10_000_000:07d}")
        self.doctors = [Provider(SURNAMES[(k * 5 + seed) % len(SURNAMES)], make_npi(seed * 1000 + 10 + k),
                                 first=FIRSTNAMES[(k * 7 + seed) % len(FIRSTNAMES)]) for k in range(6)]
        self.acupuncturists = [Provider(SURNAMES[(k * 11 + seed + 3) % len(SURNAMES)],
                                        make_npi(seed * 1000 + 30 + k), first=FIRSTNAMES[(k * 3 + 1) % 24],
                                        taxonomy="171100000X") for k in range(3)]
        self._patient: tuple[int, dict] | None = None

    # -- patients: claim i belongs to patient i // 2 (two visits, different dates)
    def patient(self, pidx: int) -> dict:
        if self._patient and self._patient[0] == pidx:
            return self._patient[1]
        r = random.Random(self.seed * 10_000_019 + pidx)
        payer, _, frac = r.choices(PAYERS, PAYER_WEIGHTS)[0]
        last = SURNAMES[r.randrange(len(SURNAMES))]
        medicare = payer.filing == "MB"
        mid = (f"{r.randrange(1, 10)}{r.choice('ACDEFGHJKMNPQRTUVWXY')}{r.choice('ACDEFGHJKMNPQRTUVWXY')}"
               f"{r.randrange(10)}{r.choice('ACDEFGHJKMNPQRTUVWXY')}{r.randrange(10)}"
               f"{r.choice('ACDEFGHJKMNPQRTUVWXY')}{r.randrange(100):02d}") if medicare else f"FM{pidx:010d}"
        year = r.randrange(1940, 1961) if medicare else r.randrange(1955, 2004)
        sub = Person(last, FIRSTNAMES[r.randrange(len(FIRSTNAMES))], mid,
                     f"{year}{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}", r.choice("FM"),
                     fake_address(pidx * 31 + self.seed))
        dep = None
        if payer.filing in ("CI", "BL") and r.random() < 0.05:
            dep = Person(last, FIRSTNAMES[r.randrange(len(FIRSTNAMES))], "",
                         f"{r.randrange(2005, 2010)}{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}", r.choice("FM"))
        first_day = r.randrange(0, 50)
        info = {"payer": payer, "frac": frac, "sub": sub, "dep": dep, "doc": r.choice(self.doctors),
                "acu": r.choice(self.acupuncturists), "days": (first_day, first_day + r.randrange(14, 36)),
                "visit": r.choices([v for v, _ in VISITS], [w for _, w in VISITS])[0],
                "case": f"{payer.filing}{pidx:08d}", "accident": _DATES[0][:4] + "07" + f"{r.randrange(1, 29):02d}"}
        self._patient = (pidx, info)
        return info

    def claim(self, i: int) -> GenClaim:
        r = self.rng
        pidx, visit_no = divmod(i, 2)
        p = self.patient(pidx)
        payer: Payer = p["payer"]
        visit = p["visit"]
        if visit == "cpm" and visit_no == 1:
            visit = "em"  # one G3002 per patient-month at most
        lines: list[tuple] = []  # (code, units, mods, ptr)
        rendering = p["doc"]
        if visit == "tpi":
            dx = r.sample(MYO_DX, 2)
            if r.random() < 0.3:
                lines.append(("99213", 1, ("25",), (1,)))
            lines.append((r.choice(("20553", "20553", "20552")), 1, (), (1, 2)))
            if r.random() < 0.6:
                lines.append(r.choice((("J3301", 4, (), (1,)), ("J1030", 1, (), (1,)))))
            if payer.filing != "MB" and r.random() < 0.1:
                lines.append(("76942", 1, (), (1,)))
        elif visit == "acu":
            dx = [r.choice(CLBP_DX), "G89.4"]
            rendering = p["acu"]
            init, addon = r.choice((("97813", "97814"), ("97810", "97811")))
            lines.append((init, 1, (), (1,)))
            n = r.choice((0, 1, 1, 2))
            if n:
                lines.append((addon, n, (), (1,)))
        elif visit == "dn":
            dx = [r.choice(CLBP_DX)]
            lines.append((r.choice(("20560", "20561")), 1, (), (1,)))
        elif visit == "joint":
            dx = [r.choice(KNEE_DX)]
            lines.append((r.choice(("20610", "20611")), 1, ("RT",) if r.random() < 0.5 else ("LT",), (1,)))
            lines.append(r.choice((("J3301", 4, (), (1,)), ("J1030", 1, (), (1,)))))
        elif visit == "cpm":
            dx = ["G89.4", r.choice(MYO_DX[:3])]
            lines.append(("G3002", 1, (), (1, 2)))
            if r.random() < 0.3:
                lines.append(("G3003", 1, (), (1,)))
        else:
            dx = [r.choice(MYO_DX), "G89.4"]
            lines.append((r.choice(("99213", "99214", "99214")), 1, (), (1, 2)))
        auth = ""
        if payer.filing in ("WC", "AM") or (payer.filing in ("CI", "BL") and visit in ("acu", "dn")):
            auth = f"PA{pidx:09d}"
        total_override = None
        trip = ""
        if r.random() < self.trip_rate:
            trip = r.choice(TRIPS)
            if trip in MEDICARE_ONLY_TRIPS and payer.filing != "MB":
                trip = "TPI-ONE-CODE"
            if trip == "AUTH-REQUIRED" and payer.filing == "MB":
                trip = "EM-SAME-DAY"
            dx, lines, rendering, auth, total_override = self._trip(trip, dx, lines, rendering, auth, p)
        pcn = f"S{self.seed}C{i + 1:08d}"
        dos = _DATES[p["days"][visit_no]]
        cl = [Line(code, Cents(FEES[code] * units), units, mods, ptr) for code, units, mods, ptr in lines]
        kw = {}
        if payer.filing in ("WC", "AM"):
            kw = {"case_ref": p["case"], "accident_date": p["accident"],
                  "related_cause": "EM" if payer.filing == "WC" else "AA:::" + p["sub"].address.state}
        c = Claim(pcn, p["sub"], payer, dx, cl, dos=dos, patient=p["dep"], relationship="19", rendering=rendering,
                  auth=auth, total=total_override, **kw)
        return GenClaim(c, trip, p["frac"])

    def _trip(self, trip, dx, lines, rendering, auth, p):
        total = None
        myo = [MYO_DX[0], MYO_DX[2]]
        if trip == "TPI-UNITS":
            dx, lines = myo, [("20553", 2, (), (1,))]
        elif trip == "TPI-ONE-LINE":
            dx, lines = myo, [("20552", 1, (), (1,)), ("20552", 1, (), (2,))]
        elif trip == "TPI-ONE-CODE":
            dx, lines = myo, [("20552", 1, (), (1,)), ("20553", 1, (), (1, 2))]
        elif trip == "TPI-MODIFIERS":
            dx, lines = myo, [("20553", 1, ("RT",), (1,))]
        elif trip == "TPI-ANESTHESIA":
            dx, lines = myo, [("01992", 1, (), (1,)), ("20553", 1, (), (1,))]
        elif trip == "DN-ONE-CODE":
            dx, lines = [CLBP_DX[0]], [("20560", 1, (), (1,)), ("20561", 1, (), (1,))]
        elif trip == "DN-TPI-SAME-SESSION":
            dx, lines = [CLBP_DX[0], MYO_DX[0]], [("20561", 1, (), (1,)), ("20553", 1, (), (2,))]
        elif trip == "ACU-ONE-INITIAL":
            dx, lines, rendering = [CLBP_DX[0]], [("97810", 1, (), (1,)), ("97813", 1, (), (1,))], p["acu"]
        elif trip == "ACU-INITIAL-UNITS":
            dx, lines, rendering = [CLBP_DX[0]], [("97813", 2, (), (1,))], p["acu"]
        elif trip == "ACU-ADDON-NO-PRIMARY":
            dx, lines, rendering = [CLBP_DX[0]], [("97814", 1, (), (1,))], p["acu"]
        elif trip == "ACU-ADDON-MUE":
            dx, lines, rendering = [CLBP_DX[0]], [("97810", 1, (), (1,)), ("97811", 3, (), (1,))], p["acu"]
        elif trip == "ACU-NCD-DX":
            dx, lines, rendering = [MYO_DX[0]], [("97813", 1, (), (1,))], p["acu"]
        elif trip == "GUIDE-INCLUDED":
            dx, lines = [KNEE_DX[0]], [("20611", 1, (), (1,)), ("76942", 1, (), (1,))]
        elif trip == "GUIDE-TPI-MEDICARE":
            dx, lines = myo, [("20553", 1, (), (1,)), ("76942", 1, (), (1,))]
        elif trip == "EM-SAME-DAY":
            dx, lines = myo, [("99213", 1, (), (1,)), ("20553", 1, (), (1, 2))]
        elif trip == "DRUG-LIDOCAINE":
            dx, lines = myo, [("20552", 1, (), (1,)), ("J2001", 10, (), (1,))]
        elif trip == "UNLISTED-DESC":
            dx, lines = ["M79.671"], [("28899", 1, (), (1,))]
        elif trip == "CPM-ADDON":
            dx, lines = ["G89.4"], [("G3003", 1, (), (1,))]
        elif trip == "AUTH-REQUIRED":
            auth = ""
        elif trip == "DX-POINTER":
            lines = [(c, u, m, (len(dx) + 1,)) if k == 0 else (c, u, m, ptr)
                     for k, (c, u, m, ptr) in enumerate(lines)]
        elif trip == "TOTAL-MISMATCH":
            total = Cents(sum(FEES[c] * u for c, u, _, _ in lines) + 1000)
        return dx, lines, rendering, auth, total

    # -- adjudication
    def adjudicate(self, g: GenClaim, icn: str, stats: Stats) -> list[ClaimPay]:
        """CLP loops for one claim: normally one; a reversal gives payment, CLP02=22 reversal, correction."""
        r = self.rng
        c = g.claim
        payer = c.payer
        medicare = payer.filing == "MB"
        deny_claim = r.random() < 0.05
        deny_line: dict[int, tuple] = {}
        units_cut: dict[int, int] = {}
        if not deny_claim:
            if g.trip in TRIP_DENIALS and r.random() < 0.8:
                code, grp, carc, rarc = TRIP_DENIALS[g.trip]
                for k, ln in enumerate(c.lines):
                    if code is None or ln.code == code:
                        deny_line[k] = (grp, carc, rarc)
                        if code is not None:
                            break
            elif g.trip in UNIT_TRIPS and r.random() < 0.8:
                for k, ln in enumerate(c.lines):
                    if ln.units > (2 if ln.code in ("97811", "97814") else 1):
                        units_cut[k] = ln.units - (2 if ln.code in ("97811", "97814") else 1)
                        break
            elif not g.trip and r.random() < 0.075:
                deny_line[r.randrange(len(c.lines))] = r.choice(RANDOM_LINE_DENIALS)
        if deny_line or units_cut:
            stats.line_denied_claims += 1
        cgrp, ccarc = r.choice(CLAIM_DENIALS) if deny_claim else ("", "")
        if deny_claim:
            stats.claim_denied += 1
        deductible = r.random() < 0.1
        svcs = []
        for k, ln in enumerate(c.lines):
            charge = int(ln.charge)
            ctrl = f"{c.pcn}-{k + 1}"
            if deny_claim or k in deny_line:
                grp, carc, rarc = (cgrp, ccarc, "") if deny_claim else deny_line[k]
                svcs.append(ServicePay(ln.code, Cents(charge), None, ln.units, ln.modifiers, c.dos,
                                       [Adj(grp, carc, Cents(charge))], ctrl, None, (rarc,) if rarc else ()))
                continue
            adjs = []
            units = ln.units
            remarks = ()
            billable = charge
            if k in units_cut:
                cut = charge * units_cut[k] // ln.units
                adjs.append(Adj("CO", "151", Cents(cut)))
                billable -= cut
                units -= units_cut[k]
                remarks = ("N362",)
            allowed = int(billable * g.allowed_frac)
            if billable - allowed:
                adjs.insert(0, Adj("CO", "45", Cents(billable - allowed)))
            pr = []
            if payer.filing in ("WC", "AM"):
                pass
            elif medicare:
                ded = min(allowed, 5000) if deductible and k == 0 else 0
                if ded:
                    pr.append(Adj("PR", "1", Cents(ded)))
                coins = (allowed - ded) // 5
                if coins:
                    pr.append(Adj("PR", "2", Cents(coins)))
            else:
                if ln.code in EM_CODES:
                    pr.append(Adj("PR", "3", Cents(min(allowed, 3000))))
                else:
                    coins = allowed // 5
                    if coins:
                        pr.append(Adj("PR", "2", Cents(coins)))
            svcs.append(ServicePay(ln.code, Cents(charge), None, units, ln.modifiers, c.dos, adjs + pr, ctrl,
                                   Cents(allowed), remarks))
        charge = sum(int(l.charge) for l in c.lines)
        status = "4" if deny_claim else "1"
        pat = c.patient or c.subscriber
        cp = ClaimPay(c.pcn, status, Cents(charge), pat, svcs, filing=clp06_for(payer.filing), payer_claim_no=icn,
                      rendering=c.rendering, start=c.dos)
        out = [cp]
        if status == "1" and r.random() < 0.006:
            stats.reversals += 1
            rev_svcs = [ServicePay(s.code, Cents(-int(s.charge)), None, s.units, s.modifiers, s.dos,
                                   [Adj(a.group, a.reason, Cents(-int(a.amount))) for a in s.adjs], s.ctrl,
                                   None if s.allowed is None else Cents(-int(s.allowed)), s.remarks) for s in svcs]
            out.append(ClaimPay(c.pcn, "22", Cents(-charge), pat, rev_svcs, filing=cp.filing, payer_claim_no=icn,
                                rendering=c.rendering, start=c.dos))
            fixed = []
            for s in svcs:  # corrected: contractual write-off reduced by 10 % of the allowed amount
                adjs = list(s.adjs)
                if s.allowed is not None and adjs and adjs[0].reason == "45":
                    bump = min(int(adjs[0].amount), int(s.allowed) // 10)
                    adjs[0] = Adj("CO", "45", Cents(int(adjs[0].amount) - bump))
                    allowed = Cents(int(s.allowed) + bump)
                else:
                    allowed = s.allowed
                fixed.append(ServicePay(s.code, s.charge, None, s.units, s.modifiers, s.dos, adjs, s.ctrl, allowed,
                                        s.remarks))
            out.append(ClaimPay(c.pcn, "1", Cents(charge), pat, fixed, filing=cp.filing, payer_claim_no=icn + "R",
                                rendering=c.rendering, start=c.dos))
        return out


def _env(seed: int, k: int, sender: str, receiver: str) -> Envelope:
    return Envelope(sender=sender, receiver=receiver, date="20261201", time="1200", control=seed * 1000 + k)


def generate(claims: int, seed: int, out_dir: str | Path, claims_per_st: int = 2000, interchanges: int = 1,
             trip_rate: float = 0.10) -> tuple[Path, Path, Stats]:
    """Stream DIR/gen-<claims>.837 and DIR/gen-<claims>.835; returns their paths and counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p837, p835 = out / f"gen-{claims}.837", out / f"gen-{claims}.835"
    g = Generator(seed, trip_rate)
    stats = Stats()
    claims_per_st = max(1, claims_per_st)
    chunks = [(s, min(claims, s + claims_per_st)) for s in range(0, claims, claims_per_st)] or [(0, 0)]
    interchanges = max(1, min(interchanges, len(chunks)))
    per_isa = -(-len(chunks) // interchanges)
    st_no = 0
    with open(p837, "w", encoding="ascii", newline="", buffering=1 << 20) as f7, \
            open(p835, "w", encoding="ascii", newline="", buffering=1 << 20) as f5:
        for k in range(interchanges):
            my_chunks = chunks[k * per_isa:(k + 1) * per_isa]
            if not my_chunks:
                break
            w7 = InterchangeWriter(f7, _env(seed, k + 1, "PAINCLINIC01", "CLEARHOUSE01"))
            w7.open_group("HC", V837, k + 1)
            w5 = InterchangeWriter(f5, _env(seed, k + 1, "PAYERSYS01", "PAINCLINIC01"))
            w5.open_group("HP", V835, k + 1)
            for ci, (a, b) in enumerate(my_chunks):
                st_no += 1
                gcs = [g.claim(i) for i in range(a, b)]
                for gc in gcs:
                    stats.claims += 1
                    stats.lines += len(gc.claim.lines)
                    if gc.trip:
                        stats.tripped += 1
                        stats.trips[gc.trip] = stats.trips.get(gc.trip, 0) + 1
                sub = Submission837(g.billing, [gc.claim for gc in gcs], batch_id=f"GEN{seed}B{st_no:06d}")
                w7.write_set(build_837_set(sub, f"{ci + 1:04d}"))
                by_payer: dict[str, list] = {}
                for n, gc in enumerate(gcs):
                    by_payer.setdefault(gc.claim.payer.payer_id, []).append(
                        (gc, f"26{seed % 100:02d}{st_no:05d}{n:05d}"))
                for pj, (payer, _, _) in enumerate(PAYERS):
                    items = by_payer.get(payer.payer_id)
                    if not items:
                        continue
                    cps, tail = [], []
                    for gc, icn in items:
                        res = g.adjudicate(gc, icn, stats)
                        cps.append(res[0])
                        tail += res[1:]  # reversal + correction come after the original payments
                    cps += tail
                    plb = []
                    paid = sum(int(x.charge) - sum(int(a.amount) for a in x.adjs) -
                               sum(int(a.amount) for s in x.services for a in s.adjs) for x in cps)
                    if g.rng.random() < 0.3 and paid > 10000:
                        stats.plb += 1
                        if g.rng.random() < 0.5:
                            plb.append(Plb(g.billing.npi, "20261231", f"WO:OVP{st_no:05d}{pj}",
                                           Cents(min(paid // 20, 25000))))
                        else:
                            plb.append(Plb(g.billing.npi, "20261231", "L6", Cents(-(paid // 200 + 1))))
                    rem = Remit835(payer, g.billing, cps, pay_date=_DATES[70 + (st_no + pj) % 29],
                                   trace=f"EFT{seed}{st_no:06d}{pj}", plb=plb)
                    w5.write_set(build_835_set(rem, f"{st_no % 10000:04d}{pj}"))
            w7.close_group()
            w7.close()
            w5.close_group()
            w5.close()
    return p837, p835, stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=".")
    ap.add_argument("--claims-per-st", type=int, default=2000)
    ap.add_argument("--interchanges", type=int, default=1)
    ap.add_argument("--trip-rate", type=float, default=0.10, help="share of claims that deliberately trip a rule")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    p7, p5, st = generate(args.claims, args.seed, args.out, args.claims_per_st, args.interchanges, args.trip_rate)
    dt_s = time.perf_counter() - t0
    print(f"wrote {p7} ({p7.stat().st_size:,} B) and {p5} ({p5.stat().st_size:,} B) in {dt_s:.1f}s: "
          f"{st.claims} claims, {st.lines} lines, {st.tripped} tripping a rule, {st.claim_denied} denied, "
          f"{st.line_denied_claims} with line denials, {st.reversals} reversals, {st.plb} PLB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
