"""NCCI-PTP, NCCI-MUE and NCCI-AOC scrubbed against the shipped real CMS rows (and an imported quarter),
and the pain rules that read the NCCI tables or cite their PTP row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_fixtures import (ACME, BLUEPEAK, CLBP, DR_A, DR_B, MEDICARE, MYO, STATEWC, L, build_837,  # noqa: E402
                           claim, sub837)

NCCI_FIXTURES = ROOT / "fixtures" / "ncci"


def scrub(tmp_path, claims, store=None, name="in"):
    src = tmp_path / f"{name}.837"
    src.write_text(build_837(sub837(claims, name.upper()[:20])), encoding="utf-8")
    own = store is None
    store = store or Store(":memory:")
    try:
        return scrub_file(src, tmp_path / f"{name}.out.837", tmp_path / f"{name}.rej.837", store)
    finally:
        if own:
            store.close()


def found(result, rule):
    return [f for f in result.findings if f.rule == rule]


# ---------------------------------------------------------------- NCCI-PTP against the shipped rows

def test_indicator_0_holds_whatever_the_modifier(tmp_path):
    for mods in ((), ("59",), ("XU",), ("LT",)):
        r = scrub(tmp_path, [claim("PTP0", MEDICARE, [L("20560", 90), L("97810", 80, mods=mods)], dx=[CLBP],
                                   rendering=DR_B)])
        (f,) = found(r, "NCCI-PTP")
        assert f.severity == "error" and r.claims_held == 1
        assert f.procedure == "97810" and "20560/97810 modifier indicator 0" in f.message


def test_indicator_0_pair_97813_97810_is_acu_one_initial_citing_the_row(tmp_path):
    r = scrub(tmp_path, [claim("PTPACU", MEDICARE, [L("97810", 80), L("97813", 95)], dx=[CLBP], rendering=DR_B)])
    assert not found(r, "NCCI-PTP") and r.claims_held == 0
    (f,) = found(r, "ACU-ONE-INITIAL")
    assert "NCCI PTP v302r0 97813/97810 modifier indicator 0" in f.message


@pytest.mark.parametrize("keep,drop,rule", [("20553", "20552", "TPI-ONE-CODE"), ("20561", "20560", "DN-ONE-CODE")])
def test_one_code_rules_report_the_pair_once_citing_the_row(tmp_path, keep, drop, rule):
    r = scrub(tmp_path, [claim("PTPONE", MEDICARE, [L(drop, 90), L(keep, 120)], dx=[CLBP])])
    assert not found(r, "NCCI-PTP") and r.claims_held == 0
    (f,) = found(r, rule)
    assert f"{keep}/{drop} modifier indicator 0" in f.message and f.action == "remove_line"


def test_dn_tpi_same_session_cites_the_row(tmp_path):
    r = scrub(tmp_path, [claim("PTPDNTPI", MEDICARE, [L("20561", 120), L("20553", 250, ptr=(2,))], dx=[CLBP, MYO])])
    (f,) = found(r, "DN-TPI-SAME-SESSION")
    assert "20553/20561 modifier indicator 1" in f.message
    assert not found(r, "NCCI-PTP")


def test_indicator_1_without_modifier_is_a_warning_on_the_column_2_line(tmp_path):
    # (20610/76942 is indicator 1 too, but GUIDE-RECODE covers that pair and reports it under its own id)
    r = scrub(tmp_path, [claim("PTP1", MEDICARE, [L("20610", 180), L("20553", 250, ptr=(2,))], dx=["M17.11", MYO])])
    (f,) = found(r, "NCCI-PTP")
    assert f.severity == "warning" and f.procedure == "20553" and r.claims_held == 0
    assert "20610/20553 modifier indicator 1" in f.message


@pytest.mark.parametrize("mods1,mods2", [
    ((), ("59",)), ((), ("XE",)), ((), ("XP",)), ((), ("XS",)), ((), ("XU",)),
    (("RT",), ()), (("LT",), ()), ((), ("F1",)), ((), ("E4",)), ((), ("T9",)), ((), ("RC",)),
])
def test_indicator_1_is_bypassed_by_a_ptp_modifier_on_either_line(tmp_path, mods1, mods2):
    r = scrub(tmp_path, [claim("PTP1MOD", MEDICARE, [L("20610", 180, mods=mods1), L("20553", 250, mods=mods2,
                                                                                  ptr=(2,))], dx=["M17.11", MYO])])
    assert not found(r, "NCCI-PTP")


def test_modifier_25_counts_only_on_an_em_line(tmp_path):
    # 20610/99213 indicator 1: 25 on the E/M lets it through; 25 on the procedure does not
    ok = scrub(tmp_path, [claim("PTP25", MEDICARE, [L("20610", 180), L("99213", 120, mods=["25"])], dx=["M17.11"])])
    assert not found(ok, "NCCI-PTP")
    bad = scrub(tmp_path, [claim("PTP25B", MEDICARE, [L("20610", 180, mods=["25"]), L("99213", 120)],
                                 dx=["M17.11"])])
    (f,) = found(bad, "NCCI-PTP")
    assert f.procedure == "99213" and "20610/99213 modifier indicator 1" in f.message


def test_a_column_2_code_outside_the_code_list_is_checked(tmp_path):
    r = scrub(tmp_path, [claim("PTPINJ", MEDICARE, [L("20553", 250), L("96372", 40)])])
    (f,) = found(r, "NCCI-PTP")
    assert f.procedure == "96372" and "20553/96372 modifier indicator 1" in f.message


def test_tpi_anesthesia_pair_is_reported_once(tmp_path):
    r = scrub(tmp_path, [claim("PTPANES", MEDICARE, [L("01992", 400), L("20553", 250)])])
    assert found(r, "TPI-ANESTHESIA") and not found(r, "NCCI-PTP")


def test_indicator_9_and_deleted_edits_do_nothing(tmp_path):
    r = scrub(tmp_path, [claim("PTP9", MEDICARE, [L("97140", 60), L("99213", 120)], dx=[MYO])])
    assert not found(r, "NCCI-PTP")


def test_ptp_needs_one_session(tmp_path):
    # same patient and date, different rendering providers: not one session
    r = scrub(tmp_path, [claim("PTPS1", MEDICARE, [L("20560", 90)], dx=[CLBP], who="PTPS", rendering=DR_A),
                         claim("PTPS2", MEDICARE, [L("97810", 80)], dx=[CLBP], who="PTPS", rendering=DR_B)])
    assert not found(r, "NCCI-PTP")
    # one session split over two claims: the column-2 claim is held
    r = scrub(tmp_path, [claim("PTPT1", MEDICARE, [L("20560", 90)], dx=[CLBP], who="PTPT", rendering=DR_B),
                         claim("PTPT2", MEDICARE, [L("97810", 80)], dx=[CLBP], who="PTPT", rendering=DR_B)])
    (f,) = found(r, "NCCI-PTP")
    assert f.claim.patient_control_number == "PTPT2" and r.claims_held == 1


def test_ptp_applies_to_every_payer(tmp_path):
    r = scrub(tmp_path, [claim("PTPWC", STATEWC, [L("20610", 180), L("20553", 250, ptr=(2,))], dx=["M17.11", MYO],
                               auth="A1"),
                         claim("PTPCI", ACME, [L("20610", 180), L("20553", 250, ptr=(2,))], dx=["M17.11", MYO])])
    assert {f.claim.patient_control_number for f in found(r, "NCCI-PTP")} == {"PTPWC", "PTPCI"}


# ---------------------------------------------------------------- NCCI-MUE

def test_mue_mai_2_holds_above_the_value_per_date(tmp_path):
    r = scrub(tmp_path, [claim("MUE2", MEDICARE, [L("G3002", 220, 2)], dx=["G89.4"])])
    (f,) = found(r, "NCCI-MUE")
    assert f.severity == "error" and r.claims_held == 1
    assert "G3002: 2 units" in f.message and "MUE 1 (MAI 2" in f.message


def test_mue_mai_2_sums_lines_and_claims_of_the_patient(tmp_path):
    r = scrub(tmp_path, [claim("MUES1", MEDICARE, [L("G3002", 110)], dx=["G89.4"], who="MUES"),
                         claim("MUES2", MEDICARE, [L("G3002", 110)], dx=["G89.4"], who="MUES", rendering=DR_B)])
    (f,) = found(r, "NCCI-MUE")
    assert f.claim.patient_control_number == "MUES2" and r.claims_held == 1  # the claim that goes over


def test_mue_mai_3_reports_and_counts_the_store(tmp_path):
    store = Store(tmp_path / "s.db")
    try:
        first = scrub(tmp_path, [claim("MUEH1", MEDICARE, [L("G3002", 110), L("G3003", 135, 3)], dx=["G89.4"],
                                       who="MUEH")], store, "first")
        assert not found(first, "NCCI-MUE")
        again = scrub(tmp_path, [claim("MUEH2", MEDICARE, [L("G3003", 90, 2)], dx=["G89.4"], who="MUEH")],
                      store, "second")
    finally:
        store.close()
    (f,) = found(again, "NCCI-MUE")
    assert f.severity == "warning" and again.claims_held == 0
    assert "G3003: 5 units on one date of service (3 already sent), MUE 4 (MAI 3" in f.message


def test_mue_at_the_value_and_unit_rules_codes_are_quiet(tmp_path):
    r = scrub(tmp_path, [claim("MUEOK", MEDICARE, [L("20610", 360, 2), L("G3003", 180, 4), L("G3002", 110)],
                               dx=["G89.4"])])
    assert not found(r, "NCCI-MUE")
    # 20553 x2 is TPI-UNITS' correction (to 1 unit), not an MUE hold
    r = scrub(tmp_path, [claim("MUETPI", MEDICARE, [L("20553", 500, 2)])])
    assert not found(r, "NCCI-MUE") and found(r, "TPI-UNITS") and r.claims_held == 0


def test_mue_mai_1_is_per_line(tmp_path):
    _import(tmp_path, NCCI_FIXTURES / "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv")
    store = Store(tmp_path / "s.db")
    try:
        # imported: 20610 MUE 1 MAI 1 (a line edit): two lines of 1 pass, one line of 2 is reported
        split = scrub(tmp_path, [claim("MUEL1", MEDICARE, [L("20610", 180, mods=["RT"]),
                                                           L("20610", 180, mods=["LT"])], dx=["M17.11"])], store, "a")
        assert not found(split, "NCCI-MUE")
        one = scrub(tmp_path, [claim("MUEL2", MEDICARE, [L("20610", 360, 2)], dx=["M17.11"])], store, "b")
    finally:
        store.close()
    (f,) = found(one, "NCCI-MUE")
    assert f.severity == "warning" and "2 units on one line, MUE 1 (MAI 1, line edit; NCCI MUE 2026Q3)" in f.message


def test_acu_addon_mue_reads_the_mue_table(tmp_path):
    claims = [claim("ACUMUE", MEDICARE, [L("97810", 80), L("97811", 130, 2)], dx=[CLBP], rendering=DR_B)]
    assert not found(scrub(tmp_path, claims), "ACU-ADDON-MUE")  # shipped: 97811 MUE 2
    mue = tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
    mue.write_text('"notice"\n"HCPCS/\nCPT Code","MUE","MUE Adjudication Indicator","Why"\n'
                   '97811,1,"3 Date of Service Edit: Clinical",x\n', encoding="latin-1")
    _import(tmp_path, mue)
    store = Store(tmp_path / "s.db")
    try:
        r = scrub(tmp_path, claims, store)
    finally:
        store.close()
    (f,) = found(r, "ACU-ADDON-MUE")
    assert "97811: 2 units in one session, MUE 1 (MAI 3; NCCI MUE 2026Q1)" in f.message
    assert not found(r, "NCCI-MUE")  # reported once


# ---------------------------------------------------------------- NCCI-AOC

def test_aoc_type_1_without_primary_holds(tmp_path):
    r = scrub(tmp_path, [claim("AOC1", MEDICARE, [L("64484", 300)], dx=["M54.16"])])
    (f,) = found(r, "NCCI-AOC")
    assert f.severity == "error" and r.claims_held == 1 and "(64483)" in f.message and "type 1" in f.message


def test_aoc_primary_must_be_same_date_and_provider(tmp_path):
    ok = scrub(tmp_path, [claim("AOCOK", MEDICARE, [L("64483", 600), L("64484", 300)], dx=["M54.16"])])
    assert not found(ok, "NCCI-AOC")
    other = scrub(tmp_path, [claim("AOCP1", MEDICARE, [L("64483", 600)], dx=["M54.16"], who="AOCP"),
                             claim("AOCP2", MEDICARE, [L("64484", 300)], dx=["M54.16"], who="AOCP", rendering=DR_B)])
    assert [f.claim.patient_control_number for f in found(other, "NCCI-AOC")] == ["AOCP2"]


def test_aoc_type_3_and_2_warn_naming_the_contractor_case(tmp_path):
    r = scrub(tmp_path, [claim("AOC3", MEDICARE, [L("96160", 20)], dx=["G89.4"])])
    (f,) = found(r, "NCCI-AOC")
    assert f.severity == "warning" and r.claims_held == 0
    assert "contractor-defined" in f.message and "type 3" in f.message
    assert not found(scrub(tmp_path, [claim("AOC3OK", MEDICARE, [L("99213", 120), L("96160", 20)],
                                            dx=["G89.4"])]), "NCCI-AOC")
    _import(tmp_path, NCCI_FIXTURES / "AOC_V2026Q3_01-MCR.txt")
    store = Store(tmp_path / "s.db")
    try:
        r = scrub(tmp_path, [claim("AOC2", MEDICARE, [L("99213", 120), L("96161", 20)], dx=["G89.4"])], store)
    finally:
        store.close()
    (f,) = found(r, "NCCI-AOC")
    assert f.severity == "warning" and "type 2" in f.message


def test_acu_addon_no_primary_reads_the_aoc_table(tmp_path):
    claims = [claim("ACUNP", MEDICARE, [L("97810", 80), L("97814", 70)], dx=[CLBP], rendering=DR_B)]
    assert not found(scrub(tmp_path, claims), "ACU-ADDON-NO-PRIMARY")  # shipped: 97810 or 97813
    r = scrub_with_aoc_row(tmp_path, claims, "97813", "97814")
    assert [f.procedure for f in found(r, "ACU-ADDON-NO-PRIMARY")] == ["97814"] and r.claims_held == 1
    assert not found(r, "NCCI-AOC")  # reported once


def test_cpm_addon_reads_the_aoc_table(tmp_path):
    claims = [claim("CPMAOC", MEDICARE, [L("G3002", 110), L("G3003", 45)], dx=["G89.4"])]
    assert not found(scrub(tmp_path, claims), "CPM-ADDON")  # no AOC row: the cpm_initial group (G3002)
    r = scrub_with_aoc_row(tmp_path, claims, "99490", "G3003")
    (f,) = found(r, "CPM-ADDON")
    assert "G3003 without 99490" in f.message and not found(r, "NCCI-AOC")


# ---------------------------------------------------------------- an imported quarter in a scrub

def scrub_with_aoc_row(tmp_path, claims, primary: str, addon: str):
    """Scrub `claims` against a store whose imported AOC table holds one type-1 row."""
    aoc = tmp_path / "AOC_V2026Q1_01-MCR.txt"
    aoc.write_text(f"Primary Code\tAdd-on Code\tAOC Edit Type\n{primary}\t{addon}\t1\n", encoding="ascii")
    _import(tmp_path, aoc)
    store = Store(tmp_path / "s.db")
    try:
        return scrub(tmp_path, claims, store)
    finally:
        store.close()


def _import(tmp_path, *files):
    r = CliRunner().invoke(cli, ["ncci", "import", *map(str, files), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 0, r.output


def test_scrub_uses_the_imported_ptp_table_from_its_effective_date(tmp_path):
    _import(tmp_path, NCCI_FIXTURES / "medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f1.zip")
    store = Store(tmp_path / "s.db")
    try:
        def pcns(dos, name):
            r = scrub(tmp_path, [claim(f"IMP{name}1", BLUEPEAK, [L("20560", 90), L("97140", 60)], dx=[CLBP],
                                       dos=dos, auth="PA1"),
                                 claim(f"IMP{name}2", BLUEPEAK, [L("20560", 90), L("97810", 80)], dx=[CLBP],
                                       dos=dos, auth="PA2", rendering=DR_B)], store, name)
            return {f.claim.patient_control_number: f.message for f in found(r, "NCCI-PTP")}

        before = pcns("20260630", "before")  # the shipped v302r0: 20560/97810 indicator 0, no 20560/97140
        after = pcns("20260701", "after")  # the imported v322r0: 20560/97140 indicator 0, no 20560/97810
    finally:
        store.close()
    assert list(before) == ["IMPbefore2"] and "v302r0 20560/97810" in before["IMPbefore2"]
    assert list(after) == ["IMPafter1"] and "v322r0 20560/97140" in after["IMPafter1"]


def test_cli_scrub_holds_by_the_imported_table_exit_1(tmp_path):
    src = tmp_path / "c.837"
    src.write_text(build_837(sub837([claim("CLIPTP1", BLUEPEAK, [L("20560", 90), L("97140", 60)], dx=[CLBP],
                                           auth="PA1")], "CLIPTP")), encoding="utf-8")

    def run():
        return CliRunner().invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "o.837"), "--rejects",
                                        str(tmp_path / "r.837"), "--db", str(tmp_path / "s.db")])

    first = run()
    assert first.exit_code == 0 and "0 held" in first.output  # shipped table: no 20560/97140 row
    _import(tmp_path, NCCI_FIXTURES / "medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f1.zip")
    (tmp_path / "s.db").unlink()  # a fresh store, so the claim is not already on file
    second = run()
    assert second.exit_code == 1 and "1 held" in second.output and "Traceback" not in second.output
    assert (tmp_path / "r.837").read_text().count("SV1*HC:97140") == 1


def test_ncci_rules_come_after_the_pain_rules_in_the_catalogue():
    r = CliRunner().invoke(cli, ["rules", "list"])
    ids = [line.split()[0] for line in r.output.splitlines() if line[:1].isalpha() and "-" in line.split()[0]]
    assert ids[-3:] == ["NCCI-PTP", "NCCI-MUE", "NCCI-AOC"] and ids[0] == "TPI-UNITS"
