"""Per rule: a trigger fixture, a near-miss (no trigger), the correction, and TR3 re-validation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from edi_pipeline.codes.tables import load_profiles, load_tables
from edi_pipeline.tx.document import iter_records
from edi_pipeline.rules.engine import registry
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store
from edi_pipeline.tr3.reference import validate_tr3

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
MEDICARE_ONLY = ["TPI-FREQ", "ACU-NCD-DX", "ACU-NCD-VISITS", "ACU-NCD-MAX", "GUIDE-TPI-MEDICARE"]

# rule id, trigger fixture, near-miss fixture, action on the trigger, claims held in the trigger
CASES = [
    ("TPI-UNITS", "837p-tpi-units", "837p-tpi-one-line", "set_units", 0),
    ("TPI-ONE-LINE", "837p-tpi-one-line", "837p-tpi-units", "merge_lines", 0),
    ("TPI-ONE-CODE", "837p-tpi-one-code", "837p-tpi-one-code-different-dates", "remove_line", 0),
    ("TPI-MODIFIERS", "837p-tpi-modifiers", "837p-tpi-one-code", "remove_modifier", 0),
    ("TPI-FREQ", "837p-tpi-freq", "837p-tpi-freq-commercial", "none", 0),
    ("TPI-ANESTHESIA", "837p-tpi-anesthesia", "837p-clean", "none", 1),
    ("DN-UNITS", "837p-dn-units", "837p-dn-one-code", "set_units", 0),
    ("DN-ONE-LINE", "837p-dn-one-line", "837p-dn-units", "merge_lines", 0),
    ("DN-ONE-CODE", "837p-dn-one-code", "837p-dn-one-line", "remove_line", 0),
    ("DN-TPI-SAME-SESSION", "837p-dn-tpi-same-session", "837p-dn-tpi-same-session-xs", "none", 0),
    ("ACU-ONE-INITIAL", "837p-acu-one-initial", "837p-acu-initial-units", "recode_line", 0),
    ("ACU-INITIAL-UNITS", "837p-acu-initial-units", "837p-acu-one-initial", "split_units", 0),
    ("ACU-ADDON-NO-PRIMARY", "837p-acu-addon-no-primary", "837p-clean", "none", 1),
    ("ACU-ADDON-MUE", "837p-acu-addon-mue", "837p-clean", "none", 0),
    ("ACU-NCD-DX", "837p-acu-ncd-dx", "837p-acu-ncd-dx-commercial", "none", 1),
    ("ACU-NCD-VISITS", "837p-acu-ncd-visits", "837p-acu-ncd-visits-kx", "none", 0),
    ("ACU-NCD-MAX", "837p-acu-ncd-max", "837p-acu-ncd-visits", "none", 1),
    ("GUIDE-INCLUDED", "837p-guide-included", "837p-clean", "remove_line", 0),
    ("GUIDE-TPI-MEDICARE", "837p-guide-tpi-medicare", "837p-guide-tpi-commercial", "none", 0),
    ("EM-SAME-DAY", "837p-em-same-day", "837p-em-same-day-mod25", "none", 0),
    ("DRUG-LIDOCAINE", "837p-drug-lidocaine", "837p-clean", "none", 0),
    ("UNLISTED-DESC", "837p-unlisted-desc", "837p-unlisted-desc-present", "none", 1),
    ("CPM-MONTHLY", "837p-cpm-monthly", "837p-clean", "none", 0),
    ("CPM-ADDON", "837p-cpm-addon", "837p-clean", "none", 1),
    ("AUTH-REQUIRED", "837p-auth-required", "837p-auth-required-on-file", "none", 2),
    ("DX-POINTER", "837p-dx-pointer", "837p-clean", "none", 1),
    ("TOTAL-MISMATCH", "837p-total-mismatch", "837p-clean", "set_total", 0),
    ("DUPLICATE-CLAIM", "837p-duplicate-claim", "837p-duplicate-claim-replacement", "none", 1),
    ("TIMELY-FILING", "837p-timely-filing", "837p-clean", "none", 1),
    ("CORRECTED-NO-F8", "837p-corrected-no-f8", "837p-clean", "none", 2),
    ("GUIDE-RECODE", "837p-guide-recode", "837p-guide-recode-other-day", "recode_line", 0),
    ("NCCI-PTP", "837p-ncci-ptp", "837p-ncci-ptp-modifier", "none", 1),
    ("NCCI-MUE", "837p-ncci-mue", "837p-ncci-mue-within", "none", 1),
    ("NCCI-AOC", "837p-ncci-aoc", "837p-ncci-aoc-primary", "none", 1),
]

_cache: dict[str, tuple] = {}


def scrub(name: str, tmp_path: Path, store=None, text: str | None = None):
    src = FIXTURES / f"{name}.837"
    if text is not None:
        src = tmp_path / f"{name}.837"
        src.write_text(text, encoding="utf-8", newline="")
    own = store is None
    store = store or Store(":memory:")
    out, rej = tmp_path / f"{name}.out.837", tmp_path / f"{name}.rej.837"
    try:
        result = scrub_file(src, out, rej, store)
    finally:
        if own:
            store.close()
    return result, out, rej


def tr3_errors(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    if not text:
        return []
    return [str(i) for i in validate_tr3(text, path.name).errors]


def claims_of(path: Path):
    return [r for r in iter_records(path.read_bytes(), path.name) if hasattr(r, "lines")]


def test_every_catalogue_rule_is_registered_and_covered():
    tables = load_tables()
    assert set(registry()) == set(tables.rules)
    assert {c[0] for c in CASES} == set(tables.rules)
    for r in registry().values():
        assert r.doc, f"{r.id} has no docstring"


@pytest.mark.parametrize("rule_id,trigger,near,action,held", CASES, ids=[c[0] for c in CASES])
def test_rule_trigger_and_correction(tmp_path, rule_id, trigger, near, action, held):
    result, out, rej = scrub(trigger, tmp_path)
    mine = [f for f in result.findings if f.rule == rule_id]
    assert mine, f"{rule_id} did not fire on {trigger}"
    assert {f.action for f in mine} == {action}
    assert result.claims_held == held
    assert result.claims_in == result.claims_out + result.claims_held + result.claims_emptied
    assert tr3_errors(out) == []
    if held:
        assert result.rejects_path == str(rej)
        assert tr3_errors(rej) == []
        assert len(claims_of(rej)) == held
    else:
        assert result.rejects_path is None and not rej.exists()
    for f in mine:
        d = f.to_dict()
        assert d["patient_control_number"] and d["severity"] in ("error", "warning", "info")


@pytest.mark.parametrize("rule_id,trigger,near,action,held", CASES, ids=[c[0] for c in CASES])
def test_rule_near_miss_does_not_fire(tmp_path, rule_id, trigger, near, action, held):
    result, out, _ = scrub(near, tmp_path)
    assert rule_id not in {f.rule for f in result.findings}


def _line(claim, n):
    return claim.lines[n]


def test_tpi_units_sets_one_unit_at_per_unit_charge(tmp_path):
    before = claims_of(FIXTURES / "837p-tpi-units.837")[0]
    _, out, _ = scrub("837p-tpi-units", tmp_path)
    after = claims_of(out)[0]
    ln0 = next(ln for ln in before.lines if ln.procedure == "20552")
    ln1 = next(ln for ln in after.lines if ln.procedure == "20552")
    assert ln1.units == 1 and ln1.charge == ln0.charge / ln0.units
    assert after.total_charge == sum(ln.charge for ln in after.lines)
    assert ln1.control_number == ln0.control_number


@pytest.mark.parametrize("name,code", [("837p-tpi-one-line", "20553"), ("837p-dn-one-line", "20560")])
def test_one_line_rules_keep_one_line(tmp_path, name, code):
    before = claims_of(FIXTURES / f"{name}.837")[0]
    _, out, _ = scrub(name, tmp_path)
    after = claims_of(out)[0]
    assert sum(ln.procedure == code for ln in before.lines) > 1
    kept = [ln for ln in after.lines if ln.procedure == code]
    assert len(kept) == 1 and kept[0].units == 1
    assert [ln.line_number for ln in after.lines] == list(range(1, len(after.lines) + 1))
    assert after.total_charge == sum(ln.charge for ln in after.lines)
    # REF*6R of the surviving lines is kept as it was
    assert {ln.control_number for ln in after.lines} <= {ln.control_number for ln in before.lines}


@pytest.mark.parametrize("name,keep,drop", [("837p-tpi-one-code", "20553", "20552"),
                                            ("837p-dn-one-code", "20561", "20560")])
def test_one_code_rules_keep_the_larger_code(tmp_path, name, keep, drop):
    _, out, _ = scrub(name, tmp_path)
    codes = [ln.procedure for c in claims_of(out) for ln in c.lines]
    assert keep in codes and drop not in codes


def test_tpi_one_code_across_split_claims_drops_the_emptied_claim_and_its_hl(tmp_path):
    result, out, _ = scrub("837p-tpi-one-code-split-claims", tmp_path)
    assert result.claims_emptied == 1 and result.claims_out == 1
    text = out.read_text()
    assert "20552" not in text and "20553" in text
    hls = [s for s in text.split("~") if s.strip().startswith("HL*")]
    assert [h.strip() for h in hls] == ["HL*1**20*1", "HL*2*1*22*0"]
    assert tr3_errors(out) == []


# 837p-tpi-one-code-different-rendering is a commercial claim since issue 14: for Medicare, A57751 makes
# one TPI code per patient and day across rendering providers (tests/test_compliance_rules.py)
@pytest.mark.parametrize("name", ["837p-tpi-one-code-different-dates", "837p-tpi-one-code-different-rendering"])
def test_tpi_one_code_needs_one_session(tmp_path, name):
    result, out, _ = scrub(name, tmp_path)
    assert out.read_bytes() == (FIXTURES / f"{name}.837").read_bytes()


def test_tpi_modifiers_removed(tmp_path):
    _, out, _ = scrub("837p-tpi-modifiers", tmp_path)
    for c in claims_of(out):
        for ln in c.lines:
            if ln.procedure in ("20552", "20553"):
                assert not {"RT", "LT", "50"} & set(ln.modifiers)


def test_acu_one_initial_recodes_97810(tmp_path):
    _, out, _ = scrub("837p-acu-one-initial", tmp_path)
    codes = [ln.procedure for ln in claims_of(out)[0].lines]
    assert "97810" not in codes and "97813" in codes and "97811" in codes


def test_acu_initial_units_moves_extra_units_to_addon(tmp_path):
    before = claims_of(FIXTURES / "837p-acu-initial-units.837")[0]
    _, out, _ = scrub("837p-acu-initial-units", tmp_path)
    after = claims_of(out)[0]
    init = [ln for ln in after.lines if ln.procedure == "97813"]
    addon = [ln for ln in after.lines if ln.procedure == "97814"]
    b_units = sum(ln.units for ln in before.lines if ln.procedure in ("97813", "97814"))
    assert init[0].units == 1
    assert init[0].units + sum(ln.units for ln in addon) == b_units
    assert after.total_charge == before.total_charge == sum(ln.charge for ln in after.lines)
    assert all(ln.service_date == init[0].service_date for ln in addon)


def test_guide_included_removes_76942(tmp_path):
    _, out, _ = scrub("837p-guide-included", tmp_path)
    assert "76942" not in [ln.procedure for c in claims_of(out) for ln in c.lines]


def test_total_mismatch_sets_clm02(tmp_path):
    _, out, _ = scrub("837p-total-mismatch", tmp_path)
    c = claims_of(out)[0]
    assert c.total_charge == sum(ln.charge for ln in c.lines) != Decimal("999")


def test_auth_required_inserts_ref_g1_from_store_and_consumes_units(tmp_path):
    csv = tmp_path / "auth.csv"
    csv.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                   "FM0000047,ACM01,ACMAUTH1,97813|97814,4,2026-01-01,2026-12-31\n"
                   "FM0000048,SFWC1,WCAUTH9,20553,1,2026-01-01,2026-12-31\n")
    store = Store(tmp_path / "s.db")
    store.import_authorizations(csv)
    result, out, rej = scrub("837p-auth-required", tmp_path, store)
    assert result.claims_held == 0 and not rej.exists()
    assert {f.action for f in result.findings if f.rule == "AUTH-REQUIRED"} == {"insert_auth"}
    claims = claims_of(out)
    assert {c.prior_authorization for c in claims} == {"ACMAUTH1", "WCAUTH9"}
    assert tr3_errors(out) == []
    left = {a["auth_number"]: a["units_left"] for a in store.authorizations()}
    assert left == {"ACMAUTH1": 3, "WCAUTH9": 0}
    # re-scrubbing the same file does not consume the units twice
    result2, _, _ = scrub("837p-auth-required", tmp_path, store)
    assert result2.claims_held == 0
    assert {a["auth_number"]: a["units_left"] for a in store.authorizations()} == left
    store.close()


def test_auth_required_without_units_left_holds(tmp_path):
    csv = tmp_path / "auth.csv"
    csv.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                   "FM0000047,ACM01,ACMAUTH1,97813,0,2026-01-01,2026-12-31\n")
    store = Store(tmp_path / "s.db")
    store.import_authorizations(csv)
    result, _, _ = scrub("837p-auth-required", tmp_path, store)
    assert result.claims_held == 2
    store.close()


def test_auth_ref_g1_goes_before_ref_f8(tmp_path):
    text = (FIXTURES / "837p-auth-required.837").read_text()
    text = text.replace("CLM*AUTHREQ01*95***11:B:1*Y*A*Y*Y~\n",
                        "CLM*AUTHREQ01*95***11:B:7*Y*A*Y*Y~\nREF*F8*PAYERCTRL1~\n")
    text = text.replace("SE*44*", "SE*45*")
    csv = tmp_path / "auth.csv"
    csv.write_text("member_id,payer_id,auth_number,codes,units,start,end\n"
                   "FM0000047,ACM01,ACMAUTH1,97813,4,2026-01-01,2026-12-31\n")
    store = Store(tmp_path / "s.db")
    store.import_authorizations(csv)
    _, out, _ = scrub("auth-f8", tmp_path, store, text=text)
    segs = [s.strip() for s in out.read_text().split("~")]
    assert segs.index("REF*G1*ACMAUTH1") + 1 == segs.index("REF*F8*PAYERCTRL1")
    assert tr3_errors(out) == []
    store.close()


# ---------------------------------------------------------------- payer profiles

def _relabel(name: str, indicator: str) -> str:
    text = (FIXTURES / f"{name}.837").read_text()
    assert "*******MB~" in text
    return text.replace("*******MB~", f"*******{indicator}~")


@pytest.mark.parametrize("indicator", ["CI", "WC", "AM"])
@pytest.mark.parametrize("rule_id", MEDICARE_ONLY)
def test_medicare_only_rules_silent_on_other_profiles(tmp_path, rule_id, indicator):
    trigger = next(c[1] for c in CASES if c[0] == rule_id)
    result, _, _ = scrub(trigger, tmp_path, text=_relabel(trigger, indicator))
    assert rule_id not in {f.rule for f in result.findings}


@pytest.mark.parametrize("rule_id", MEDICARE_ONLY)
def test_medicare_only_rules_fire_on_medicare(tmp_path, rule_id):
    trigger = next(c[1] for c in CASES if c[0] == rule_id)
    result, _, _ = scrub(trigger, tmp_path)
    assert rule_id in {f.rule for f in result.findings}


def test_payer_id_overrides_filing_indicator(tmp_path):
    toml = (Path(load_profiles.__code__.co_filename).parent / "data" / "payer_profiles.toml").read_text()
    toml = toml.replace("[payer_ids]", '[payer_ids]\n"MCRB1" = "commercial"')
    p = tmp_path / "payers.toml"
    p.write_text(toml)
    profiles = load_profiles(p)
    store = Store(":memory:")
    result = scrub_file(FIXTURES / "837p-guide-tpi-medicare.837", tmp_path / "o.837", tmp_path / "r.837",
                        store, profiles)
    assert "GUIDE-TPI-MEDICARE" not in {f.rule for f in result.findings}
    store.close()


def test_window_counts_match_a_plain_count_for_any_dates():
    """TPI-FREQ and ACU-NCD-* count a member's dates in a rolling window by binary search."""
    from datetime import date, timedelta

    from hypothesis import given
    from hypothesis import strategies as st

    from edi_pipeline.rules.pain import _count_between

    days = st.integers(0, 4000).map(lambda k: date(2015, 1, 1) + timedelta(days=k))

    @given(st.sets(days, max_size=300), days, st.integers(0, 400))
    def check(dates, hi, width):
        ordered = sorted(dates)
        lo = hi - timedelta(days=width)
        assert _count_between(ordered, lo, hi) == sum(1 for x in ordered if lo <= x <= hi)

    check()


def test_history_reads_a_members_dates_once_for_every_window():
    """Visit and CPM rules ask for many windows per member; the store is asked once per member and codes,
    and each window's answer is the same as a windowed query would give."""
    from datetime import date, timedelta

    from edi_pipeline.store.history import StoreHistory

    days = [date(2024, 1, 1) + timedelta(days=9 * k) for k in range(120)]

    class CountingStore:
        calls = 0

        def query(self, sql, params):
            return iter([(1,)])  # the store is not empty

        def visit_dates(self, member, codes, since, until, exclude_file=None):
            CountingStore.calls += 1
            return {d for d in days if since <= d <= until}

        def procedure_dates(self, member, code, since, until, exclude_file=None):
            CountingStore.calls += 1
            return [(d, f"PCN{k}") for k, d in enumerate(days) if since <= d <= until]

    history = StoreHistory(CountingStore(), exclude_file="x")
    for start in days[::7]:
        lo, hi = start, start + timedelta(days=90)
        assert history.visit_dates("m", frozenset({"20553"}), lo, hi) == {d for d in days if lo <= d <= hi}
        assert sorted(history.procedure_lines("m", "G3002", lo, hi)) == [
            (d, f"PCN{k}") for k, d in enumerate(days) if lo <= d <= hi]
    assert CountingStore.calls == 2


def test_findings_and_rules_carry_the_one_severity_enum(tmp_path):
    """Rule metadata and findings use core.errors.Severity (no second, string-typed severity)."""
    from edi_pipeline.core.errors import Severity

    assert {type(i.severity) for i in load_tables().rules.values()} == {Severity}
    result = scrub_file(FIXTURES / "837p-tpi-anesthesia.837", tmp_path / "out.837", tmp_path / "held.837")
    assert result.findings and {type(f.severity) for f in result.findings} == {Severity}
    assert any(f.severity is Severity.ERROR and f.hold for f in result.findings)
