"""Tests for the shipped code tables and their loader (edi_pipeline.codes.tables)."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from edi_pipeline.codes import tables as codes
from edi_pipeline.codes.tables import CodeTableError, code_shape_ok, load_carc_csv, load_profiles, load_tables, npi_valid

RULE_IDS = [
    "TPI-UNITS", "TPI-ONE-LINE", "TPI-ONE-CODE", "TPI-MODIFIERS", "TPI-FREQ", "TPI-ANESTHESIA",
    "DN-UNITS", "DN-ONE-LINE", "DN-ONE-CODE", "DN-TPI-SAME-SESSION",
    "ACU-ONE-INITIAL", "ACU-INITIAL-UNITS", "ACU-ADDON-NO-PRIMARY", "ACU-ADDON-MUE",
    "ACU-NCD-DX", "ACU-NCD-VISITS", "ACU-NCD-MAX", "GUIDE-INCLUDED", "GUIDE-TPI-MEDICARE",
    "EM-SAME-DAY", "DRUG-LIDOCAINE", "UNLISTED-DESC", "CPM-MONTHLY", "CPM-ADDON",
    "AUTH-REQUIRED", "DX-POINTER", "TOTAL-MISMATCH",
    "NCCI-PTP", "NCCI-MUE", "NCCI-AOC", "DUPLICATE-CLAIM", "TIMELY-FILING", "CORRECTED-NO-F8", "GUIDE-RECODE",
]
MEDICARE_ONLY = {"TPI-FREQ", "ACU-NCD-DX", "ACU-NCD-VISITS", "ACU-NCD-MAX", "GUIDE-TPI-MEDICARE"}
SHARED = Path(os.environ.get("EDI_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


@pytest.fixture(scope="module")
def t() -> codes.CodeTables:
    return load_tables()


def _rules_md_rows() -> dict[str, tuple[str, str]]:
    """id -> (profile, severity) from the table in RULES.md."""
    path = SHARED / "domain" / "RULES.md"
    if not path.is_file():
        pytest.skip(f"{path} not found (set EDI_SHARED)")
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[A-Z]+(-[A-Z0-9]+)+( / [A-Z]+(-[A-Z0-9]+)+)*", cells[0]):
            for rid in cells[0].split(" / "):
                rows[rid] = (cells[1], cells[4])
    return rows


# ------------------------------------------------------------------ rule catalogue

def test_rules_toml_has_exactly_the_contract_ids(t):
    assert len(RULE_IDS) == 34
    assert sorted(t.rules) == sorted(RULE_IDS)


def test_rules_toml_matches_rules_md(t):
    rows = _rules_md_rows()
    assert set(rows) == set(RULE_IDS)
    for rid, (profile, severity) in rows.items():
        info = t.rules[rid]
        want = {"all": "all", "medicare": "medicare", "per payer": "per_payer"}[profile.lower().split(" (")[0]]
        assert info.profile == want, rid
        assert severity.startswith(info.severity), rid


def test_rule_fields(t):
    assert {r for r, i in t.rules.items() if i.profile == "medicare"} == MEDICARE_ONLY
    assert t.rules["AUTH-REQUIRED"].profile == "per_payer"
    assert t.rules["TPI-UNITS"].action == "set_units"
    assert t.rules["ACU-ADDON-NO-PRIMARY"].severity == "error"
    assert t.rules["TOTAL-MISMATCH"].action == "set_total"
    for rid, info in t.rules.items():
        assert info.summary and info.trigger and info.correction and info.sources, rid
        assert all(" " in s for s in info.sources), rid  # resolved to a title, not a bare [Sn]
    assert any("ncdid=373" in s for s in t.rules["ACU-NCD-DX"].sources)


def test_limits(t):
    lim = t.limits
    assert (lim.visits_90_days, lim.kx_from_visit, lim.visits_12_months_kx, lim.max_12_months,
            lim.tpi_sessions_12_months) == (12, 13, 20, 20, 3)


# ------------------------------------------------------------------ tables

def test_every_table_has_source_and_effective_date(t):
    assert set(t.meta) == set(codes.TABLE_FILES)
    for name, (source, effective) in t.meta.items():
        assert source and not source.startswith("data/"), name
        assert isinstance(effective, date), name
    for f in resources.files("edi_pipeline.codes").joinpath("data").iterdir():
        if f.name.endswith(".csv"):
            assert "# note: NV" in f.read_text(encoding="utf-8") or f.name in {
                "claim_status.csv", "denial_backlinks.csv"} or f.name.startswith("ncci_"), f.name  # ncci_*: CMS's own rows


def test_dx_unlisted_em_pos_status(t):
    assert {"M5450", "M5451", "M5459"} <= t.clbp_dx and "M545" not in t.clbp_dx
    assert {"28899", "20999", "64999", "97139", "97799", "99499", "J3490", "J3590"} <= t.unlisted
    assert "20552" not in t.unlisted
    assert "99201" not in t.em_codes and {"99202", "99205", "99211", "99215"} <= t.em_codes
    assert t.pos["11"] == "Office" and "28" not in t.pos and len(t.pos) == 52
    assert set(t.claim_status) == {"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"}
    assert t.claim_status["4"] == "Denied"


def test_groups(t):
    g = t.groups
    assert g["tpi"] == {"20552", "20553"}
    assert g["acupuncture"] == {"97810", "97811", "97813", "97814"}
    assert g["ncd_visit_codes"] == g["acupuncture"] | g["dry_needling"]
    assert g["em_same_day_procedures"] >= {"20550", "20553", "20560", "97814"}
    assert len(g["anesthesia"]) == 1900
    assert codes.is_anesthesia("00100") and codes.is_anesthesia("01999") and codes.is_anesthesia("00520")
    assert not codes.is_anesthesia("02000") and not codes.is_anesthesia("20552")
    assert t.in_group("20604", "joint_with_guidance") and not t.in_group("76942", "tpi")
    with pytest.raises(KeyError):
        t.in_group("20552", "no_such_group")


def test_rules_reference_existing_groups(t):
    for info in t.rules.values():
        assert all(name in t.groups for name in info.groups)


# ------------------------------------------------------------------ CARC / RARC

REFERENCE_CARCS = "1 2 3 4 11 16 18 22 23 27 29 31 45 50 96 97 109 119 133 146 151 167 170 181 182 185 197 204 234 236 B7 B15"
COMMON_CARCS = ("1 2 3 4 5 6 11 15 16 18 22 23 24 26 27 29 31 39 45 49 50 51 55 56 58 59 96 97 107 109 110 119 "
                "125 129 146 150 151 167 170 171 181 182 183 185 189 197 198 200 204 226 227 234 236 242 252 253 "
                "A1 B1 B4 B7 B9 B11 B13 B15 B16 B20 B22")


def test_carc_coverage_and_vocabulary(t):
    missing = [c for c in f"{REFERENCE_CARCS} {COMMON_CARCS}".split() if c not in t.carc]
    assert not missing
    for info in t.carc.values():
        assert info.category in codes.CATEGORIES
        assert info.default_action is None or info.default_action in codes.ACTIONS
        assert info.description


def test_carc_lookup(t):
    c = t.carc["197"]
    assert c.active and c.category == "authorization" and c.default_action == "correct and resubmit"
    assert t.carc["18"].group_hint == "OA" and t.carc["18"].category == "duplicate"
    assert t.carc["1"].category == "patient responsibility" and t.carc["1"].default_action == "bill patient"
    assert t.carc["45"].default_action == "write off"


def test_deactivated_carc_still_decodes(t):
    c = t.carc["17"]
    assert not c.active and c.description
    assert not t.carc["D1"].active
    assert all(t.carc[k].active for k in ("16", "96", "B15"))


def test_rarc_coverage(t):
    want = ("M15 M80 M86 MA01 MA130 N20 N115 N122 N130 N362 N386 N640 N657 N4 N56 N95 N179 N290 N517 "
            "M25 M76 M51 MA04 N30 N211 N425 N432 N479 N54").split()
    assert [r for r in want if r not in t.rarc] == []
    assert len(t.rarc) >= 50
    assert t.rarc["N122"].category == "coding/bundling"


def test_load_carc_csv_merges_official_list(tmp_path, t):
    f = tmp_path / "carc_full.csv"
    f.write_text("Code,Description,Deactivated\n"
                 "197,Official text for 197,\n"
                 "300,A code newer than the shipped table,\n"
                 "45,Official text for 45,03/01/2019\n", encoding="utf-8")
    merged = load_carc_csv(f)
    assert merged["197"].description == "Official text for 197"
    assert merged["197"].category == "authorization"  # kept from the shipped table
    assert merged["300"].category == "other" and merged["300"].default_action is None
    assert merged["45"].deactivated == date(2019, 3, 1) and not merged["45"].active
    assert merged["17"] == t.carc["17"]  # untouched codes kept
    assert t.carc["197"].description != "Official text for 197"  # shipped cache not mutated
    assert load_tables({"carc": f}).carc["300"].description.startswith("A code newer")
    rarc = tmp_path / "rarc_full.csv"
    rarc.write_text("Code,Description,Stop\nN122,Official N122,\nM1,Retired remark,NV\n", encoding="utf-8")
    t3 = load_tables({"rarc": rarc})
    assert t3.rarc["N122"].description == "Official N122" and t3.rarc["N122"].category == "coding/bundling"
    assert not t3.rarc["M1"].active and t3.rarc["M80"] == t.rarc["M80"]


# ------------------------------------------------------------------ back-links

# issue 14: a back-link names only the rules whose code groups hold the denied line's code, beside
# the claim's other lines (the old table sent a CO-97 on any TPI/DN/acupuncture line to five rules)
@pytest.mark.parametrize("group,carc,rarcs,proc,others,want", [
    ("CO", "197", (), "97810", (), ("AUTH-REQUIRED",)),
    ("CO", "15", (), None, (), ("AUTH-REQUIRED",)),
    ("CO", "4", (), "99213", ("20553",), ("EM-SAME-DAY", "NCCI-PTP")),
    ("CO", "119", (), "97813", (), ("ACU-NCD-MAX",)),
    ("CO", "16", ("N122",), "97811", (), ("ACU-ADDON-NO-PRIMARY", "NCCI-AOC")),
    ("CO", "16", ("N290",), "97811", (), ()),
    ("CO", "50", (), "97813", (), ("ACU-NCD-DX",)),
    ("CO", "50", (), "20552", (), ()),
    ("CO", "97", (), "20552", ("20553",), ("TPI-ONE-CODE", "NCCI-PTP")),
    ("OA", "97", ("M80",), "20561", ("20552",), ("DN-TPI-SAME-SESSION", "NCCI-PTP")),
    ("CO", "97", (), "99213", (), ("NCCI-PTP",)),
    ("CO", "96", ("N362",), "97811", (), ("ACU-ADDON-MUE", "NCCI-MUE")),
    ("CO", "B15", (), "G3003", (), ("CPM-ADDON", "NCCI-AOC")),
    ("CO", "50", (), "76942", ("20553",), ("GUIDE-TPI-MEDICARE",)),
    ("PR", "1", (), "97810", (), ()),
])
def test_backlinks(t, group, carc, rarcs, proc, others, want):
    assert t.backlinks_for(group, carc, rarcs, proc, others) == want


# ------------------------------------------------------------------ payer profiles

@pytest.mark.parametrize("sbr09,name", [
    ("MB", "medicare"), ("MA", "medicare"), ("16", "medicare_advantage"), ("MC", "medicaid"),
    ("CI", "commercial"), ("BL", "commercial"), ("12", "commercial"), ("ZZ", "commercial"),
    ("WC", "workers_comp"), ("AM", "no_fault"), ("XY", "commercial"), ("", "commercial"), (None, "commercial"),
])
def test_profile_for_filing_indicator(sbr09, name):
    assert load_profiles().profile_for(sbr09).name == name


def test_profile_contents():
    p = load_profiles()
    med, com, wc, nf = (p.profiles[n] for n in ("medicare", "commercial", "workers_comp", "no_fault"))
    assert med.applies("medicare") and not com.applies("medicare") and not wc.applies("medicare")
    assert com.applies("all") and com.applies("per_payer")
    assert {c for c in ("20560", "20561", "97810", "97811", "97813", "97814", "20552") if com.requires_auth(c)} \
        == {"20560", "20561", "97810", "97811", "97813", "97814"}
    assert wc.requires_auth("20552") and nf.requires_auth("20552") and not med.requires_auth("97810")
    # issue 14: workers' comp and no-fault need authorization for procedures, not for E/M visits
    assert not wc.requires_auth("99213") and not nf.requires_auth("99214")
    mapd, mcd = p.profiles["medicare_advantage"], p.profiles["medicaid"]
    assert mapd.applies("medicare") and mapd.requires_auth("97813") and not mapd.requires_auth("20553")
    assert not mcd.applies("medicare") and mcd.requires_auth("20561")
    assert med.filing_limit == (12, "months") and all(x.filing_limit for x in p.profiles.values())


def test_payer_id_beats_sbr09(tmp_path):
    shipped = resources.files("edi_pipeline.codes").joinpath("data", "payer_profiles.toml").read_text(encoding="utf-8")
    f = tmp_path / "payers.toml"
    f.write_text(shipped.replace('# "12345" = "workers_comp"', '"12345" = "workers_comp"'), encoding="utf-8")
    p = load_profiles(f)
    assert p.profile_for("CI", "12345").name == "workers_comp"
    assert p.profile_for("MB", "12345").name == "workers_comp"
    assert p.profile_for("MB", "99999").name == "medicare"


def test_turnaround_days_is_a_profile_value_default_30_and_a_positive_whole_number(tmp_path):
    assert {x.turnaround_days for x in load_profiles().profiles.values()} == {30}  # NV default, each profile
    f = tmp_path / "payers.toml"
    f.write_text('[profiles.commercial]\nfiling_indicators = ["CI"]\nturnaround_days = 10\n'
                 '[profiles.medicare]\nfiling_indicators = ["MB"]\n', encoding="utf-8")
    p = load_profiles(f)
    assert p.profile_for("CI").turnaround_days == 10 and p.profile_for("MB").turnaround_days == 30
    for bad in ("0", "-3", "10.5", '"10"', "true"):
        f.write_text(f'[profiles.commercial]\nfiling_indicators = ["CI"]\nturnaround_days = {bad}\n',
                     encoding="utf-8")
        with pytest.raises(CodeTableError, match="turnaround_days"):
            load_profiles(f)


def test_bad_profiles_file(tmp_path):
    f = tmp_path / "payers.toml"
    f.write_text('[meta]\ndefault_profile = "x"\n[profiles.a]\nfiling_indicators = ["CI"]\n', encoding="utf-8")
    with pytest.raises(CodeTableError):
        load_profiles(f)
    f.write_text('[profiles.commercial]\nfiling_indicators = ["CI"]\n[payer_ids]\n"1" = "nope"\n',
                 encoding="utf-8")
    with pytest.raises(CodeTableError):
        load_profiles(f)


# ------------------------------------------------------------------ overrides

def test_override_table_with_user_file(tmp_path):
    f = tmp_path / "unlisted_2027.csv"
    f.write_text("# source: CPT 2027 unlisted codes\n# effective: 2027-01-01\n"
                 "code,status,source\n20999,verified,CPT\n64999,verified,CPT\n", encoding="utf-8")
    dx = tmp_path / "clbp.csv"
    dx.write_text("code\nM54.50\nM54.41\n", encoding="utf-8")
    t2 = load_tables({"unlisted": f, "clbp_dx": dx})
    assert t2.unlisted == {"20999", "64999"}
    assert t2.meta["unlisted"] == ("CPT 2027 unlisted codes", date(2027, 1, 1))
    assert t2.clbp_dx == {"M5450", "M5441"}  # dots dropped, as in X12
    assert t2.meta["clbp_dx"].source == str(dx.resolve())  # no comment header: the file is the source
    assert "28899" in load_tables().unlisted  # shipped table unchanged
    assert load_tables({"unlisted": f}) is load_tables({"unlisted": str(f)})  # cached


def test_override_errors(tmp_path):
    with pytest.raises(CodeTableError):
        load_tables({"no_such_table": tmp_path / "x.csv"})
    with pytest.raises(CodeTableError):
        load_tables({"unlisted": tmp_path / "missing.csv"})
    bad = tmp_path / "bad.csv"
    bad.write_text("dx\nM54.50\n", encoding="utf-8")
    with pytest.raises(CodeTableError):
        load_tables({"clbp_dx": bad})
    groups = tmp_path / "groups.toml"
    groups.write_text('[groups]\na = ["@b"]\nb = ["@a"]\n', encoding="utf-8")
    with pytest.raises(CodeTableError):
        load_tables({"code_groups": groups})


def test_tables_are_frozen(t):
    with pytest.raises(TypeError):
        t.pos["11"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        t.pos = {}  # type: ignore[misc]


def test_shipped_toml_parses():
    for name in ("rules.toml", "code_groups.toml", "payer_profiles.toml"):
        text = resources.files("edi_pipeline.codes").joinpath("data", name).read_text(encoding="utf-8")
        assert "effective" in tomllib.loads(text)["meta"]


# ------------------------------------------------------------------ shapes

def test_npi_luhn():
    assert npi_valid("1234567893")
    assert not npi_valid("1234567890")
    assert not npi_valid("123456789") and not npi_valid("12345678930") and not npi_valid("12345678a3")
    assert code_shape_ok("npi", "1234567893")


@pytest.mark.parametrize("kind,value,ok", [
    ("icd10cm", "M5450", True), ("icd10cm", "M545", True), ("icd10cm", "G8929", True), ("icd10cm", "S335XXA", True),
    ("icd10cm", "M54.50", False), ("icd10cm", "M5", False), ("icd10cm", "5450M", False), ("icd10cm", "M54500000", False),
    ("cpt", "20552", True), ("cpt", "0232T", True), ("cpt", "3017F", True), ("cpt", "0001U", True),
    ("cpt", "2055", False), ("cpt", "J2001", False), ("cpt", "2055X", False),
    ("hcpcs", "J2001", True), ("hcpcs", "G3002", True), ("hcpcs", "W1234", False), ("hcpcs", "J200", False),
    ("procedure", "97810", True), ("procedure", "J3301", True), ("procedure", "M545", False), ("procedure", "S335XXA", False),
])
def test_code_shapes(kind, value, ok):
    assert code_shape_ok(kind, value) is ok


def test_unknown_shape_kind():
    with pytest.raises(ValueError):
        code_shape_ok("ndc", "12345678901")
