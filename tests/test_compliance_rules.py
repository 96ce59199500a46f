"""Issue 14's compliance rules and rule fixes: trigger, near-miss and correction per item, plus
report-only, per-profile disabled_rules and `rules profiles`."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli
from edi_pipeline.codes.tables import CodeTableError, load_profiles
from edi_pipeline.tx.document import iter_records
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
SHIPPED = resources.files("edi_pipeline.codes").joinpath("data", "payer_profiles.toml").read_text(encoding="utf-8")


def scrub(src: Path, tmp_path: Path, store: Store | None = None, tag: str = "out", **kw):
    own = store is None
    store = store or Store(":memory:")
    out, rej = tmp_path / f"{src.stem}.{tag}.837", tmp_path / f"{src.stem}.{tag}.rej.837"
    try:
        return scrub_file(src, out, rej, store, **kw), out, rej
    finally:
        if own:
            store.close()


def variant(tmp_path: Path, name: str, *replacements: tuple[str, str], tag: str = "v") -> Path:
    text = (FIXTURES / f"{name}.837").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    p = tmp_path / f"{name}-{tag}.837"
    p.write_text(text, encoding="utf-8", newline="")
    return p


def of(result, rule_id: str) -> list[dict]:
    return [f.to_dict() for f in result.findings if f.rule == rule_id]


def codes_out(path: Path) -> list[list[str]]:
    if not path.read_bytes():
        return []
    return [[ln.procedure for ln in r.lines] for r in iter_records(path.read_bytes(), path.name) if hasattr(r, "lines")]


# ---------------------------------------------------------------- liability modifiers


def test_liability_modifiers_let_a_non_clbp_acupuncture_claim_go_out(tmp_path):
    result, out, rej = scrub(FIXTURES / "837p-acu-ncd-dx-liability.837", tmp_path)
    got = {f["patient_control_number"]: f["severity"] for f in of(result, "ACU-NCD-DX")}
    assert got == {"ACUNCDGA01": "info", "ACUNCDGZ01": "warning", "ACUNCDGY01": "info"}
    assert result.claims_held == 0 and not rej.exists() and len(codes_out(out)) == 3


def test_without_a_liability_modifier_the_claim_is_still_held(tmp_path):
    src = variant(tmp_path, "837p-acu-ncd-dx-liability", ("HC:97810:GA", "HC:97810"))
    result, _, _ = scrub(src, tmp_path)
    held = [f for f in of(result, "ACU-NCD-DX") if f["severity"] == "error"]
    assert [f["patient_control_number"] for f in held] == ["ACUNCDGA01"] and result.claims_held == 1


def test_acu_ncd_max_visit_with_ga_goes_out(tmp_path):
    src = variant(tmp_path, "837p-acu-ncd-max", ("CLM*ACUMAX21*", "CLM*ACUMAX21*"))
    text = src.read_text()
    k = text.index("CLM*ACUMAX21*")
    src.write_text(text[:k] + text[k:].replace("HC:97813:KX", "HC:97813:KX:GA", 1))
    result, _, rej = scrub(src, tmp_path)
    [f] = of(result, "ACU-NCD-MAX")
    assert f["severity"] == "info" and "GA" in f["message"]
    assert result.claims_held == 0 and not rej.exists()


# ---------------------------------------------------------------- distinct-service modifiers


@pytest.mark.parametrize("mod", ["XU", "XE", "XP"])
def test_every_distinct_service_modifier_clears_dn_tpi_same_session(tmp_path, mod):
    src = variant(tmp_path, "837p-dn-tpi-same-session-xu", ("HC:20561:XU", f"HC:20561:{mod}"), tag=mod)
    result, _, _ = scrub(src, tmp_path)
    assert of(result, "DN-TPI-SAME-SESSION") == []
    plain = variant(tmp_path, "837p-dn-tpi-same-session-xu", ("HC:20561:XU", "HC:20561"), tag="none")
    assert of(scrub(plain, tmp_path)[0], "DN-TPI-SAME-SESSION")


# ---------------------------------------------------------------- CPM-MONTHLY units


def test_cpm_monthly_counts_units_on_one_line(tmp_path):
    result, _, _ = scrub(FIXTURES / "837p-cpm-monthly-units.837", tmp_path)
    [f] = of(result, "CPM-MONTHLY")
    assert "2 units" in f["message"] and f["severity"] == "warning"
    one = variant(tmp_path, "837p-cpm-monthly-units", ("HC:G3002*220*UN*2", "HC:G3002*220*UN*1"))
    assert of(scrub(one, tmp_path)[0], "CPM-MONTHLY") == []


def test_cpm_monthly_counts_units_already_in_the_store(tmp_path):
    store = Store(tmp_path / "s.db")
    try:
        first = variant(tmp_path, "837p-cpm-monthly-units", ("CLM*CPMUNITS01*", "CLM*CPMUNITS00*"),
                        ("HC:G3002*220*UN*2", "HC:G3002*220*UN*1"), ("DTP*472*D8*20261005", "DTP*472*D8*20261002"),
                        tag="first")
        assert of(scrub(first, tmp_path, store, tag="a")[0], "CPM-MONTHLY") == []
        second = variant(tmp_path, "837p-cpm-monthly-units", ("HC:G3002*220*UN*2", "HC:G3002*220*UN*1"),
                         tag="second")
        [f] = of(scrub(second, tmp_path, store, tag="b")[0], "CPM-MONTHLY")
        assert "2 units" in f["message"]
    finally:
        store.close()


# ---------------------------------------------------------------- TPI scope (A57751)


def test_medicare_tpi_one_code_spans_rendering_providers_of_one_billing_provider(tmp_path):
    result, out, _ = scrub(FIXTURES / "837p-tpi-one-code-a57751.837", tmp_path)
    [f] = of(result, "TPI-ONE-CODE")
    assert f["procedure"] == "20552" and f["action"] == "remove_line"
    assert codes_out(out) == [["20553"]]


def test_the_a57751_scope_is_a_profile_setting(tmp_path):
    profiles = tmp_path / "payers.toml"
    profiles.write_text(SHIPPED.replace("tpi_one_per_billing_provider = true", "tpi_one_per_billing_provider = false"))
    result, _, _ = scrub(FIXTURES / "837p-tpi-one-code-a57751.837", tmp_path, profiles=load_profiles(profiles))
    assert of(result, "TPI-ONE-CODE") == []
    assert of(scrub(FIXTURES / "837p-tpi-one-code-a57751.837", tmp_path, tag="shipped")[0], "TPI-ONE-CODE")


# ---------------------------------------------------------------- guidance


def test_guide_recode_recodes_the_joint_line_and_removes_76942(tmp_path):
    result, out, _ = scrub(FIXTURES / "837p-guide-recode.837", tmp_path)
    assert {f["procedure"] for f in of(result, "GUIDE-RECODE")} == {"20610", "76942"}
    assert codes_out(out) == [["20611"]]
    assert "CLM*GUIDERECODE01*180*" in out.read_text()


def test_guide_tpi_medicare_stays_quiet_when_the_guidance_belongs_to_a_joint_injection(tmp_path):
    result, out, _ = scrub(FIXTURES / "837p-guide-tpi-medicare-joint.837", tmp_path)
    assert of(result, "GUIDE-TPI-MEDICARE") == []
    assert codes_out(out) == [["20553", "20611"]]
    assert of(scrub(FIXTURES / "837p-guide-tpi-medicare.837", tmp_path)[0], "GUIDE-TPI-MEDICARE")


def test_guide_tpi_medicare_is_a_profile_setting(tmp_path):
    profiles = tmp_path / "payers.toml"
    profiles.write_text(SHIPPED.replace("guide_tpi_imaging = true", "guide_tpi_imaging = false"))
    result, _, _ = scrub(FIXTURES / "837p-guide-tpi-medicare.837", tmp_path, profiles=load_profiles(profiles))
    assert of(result, "GUIDE-TPI-MEDICARE") == []


# ---------------------------------------------------------------- DUPLICATE-CLAIM


def test_duplicate_in_the_file_held_partial_reported(tmp_path):
    result, out, rej = scrub(FIXTURES / "837p-duplicate-claim.837", tmp_path)
    got = {f["patient_control_number"]: f["severity"] for f in of(result, "DUPLICATE-CLAIM")}
    assert got == {"DUPCLAIM02": "error", "DUPCLAIM04": "warning"}
    held = [r.patient_control_number for r in iter_records(rej.read_bytes(), rej.name) if hasattr(r, "lines")]
    assert held == ["DUPCLAIM02"]


def test_a_claim_already_sent_is_a_duplicate_a_replacement_is_not(tmp_path):
    store = Store(tmp_path / "s.db")
    try:
        scrub(FIXTURES / "837p-clean.837", tmp_path, store, tag="a")
        again = variant(tmp_path, "837p-clean", ("*000001000*", "*000009000*"), ("IEA*1*000001000", "IEA*1*000009000"))
        result, _, _ = scrub(again, tmp_path, store, tag="b")
        exact = {f["patient_control_number"] for f in of(result, "DUPLICATE-CLAIM") if f["severity"] == "error"}
        assert exact == {"CLEANMCR01", "CLEANMCR02", "CLEANMCR03", "CLEANMCR04", "CLEANBL01", "CLEANCI01",
                         "CLEANCI02", "CLEANWC01", "CLEANAM01"}
        repl = variant(tmp_path, "837p-clean", ("*000001000*", "*000009100*"), ("IEA*1*000001000", "IEA*1*000009100"),
                       ("CLM*CLEANMCR04*110***11:B:1", "CLM*CLEANMCR04*110***11:B:7"), tag="repl")
        result, _, _ = scrub(repl, tmp_path, store, tag="c")
        assert "CLEANMCR04" not in {f["patient_control_number"] for f in of(result, "DUPLICATE-CLAIM")}
    finally:
        store.close()


# ---------------------------------------------------------------- TIMELY-FILING


def test_timely_filing_holds_past_the_limit_and_reports_near_it(tmp_path):
    result, _, _ = scrub(FIXTURES / "837p-timely-filing.837", tmp_path, today=date(2026, 11, 27))
    got = {f["patient_control_number"]: f["severity"] for f in of(result, "TIMELY-FILING")}
    assert got == {"TIMELY01": "error", "TIMELY02": "warning"} and result.claims_held == 1
    early = scrub(FIXTURES / "837p-timely-filing.837", tmp_path, tag="early", today=date(2026, 8, 1))[0]
    assert of(early, "TIMELY-FILING") == []


def test_filing_deadline_counts_calendar_months_and_days():
    p = load_profiles()
    assert p.profiles["medicare"].filing_deadline(date(2024, 2, 29)) == date(2025, 2, 28)
    assert p.profiles["medicare"].filing_deadline(date(2026, 1, 31)) == date(2027, 1, 31)
    assert p.profiles["commercial"].filing_deadline(date(2026, 1, 1)) == date(2026, 4, 1)


def test_a_profile_without_a_filing_limit_never_fires(tmp_path):
    profiles = tmp_path / "payers.toml"
    profiles.write_text(SHIPPED.replace("filing_limit_months = 12  # 42 CFR", "# filing_limit_months = 12  # 42 CFR"))
    result, _, _ = scrub(FIXTURES / "837p-timely-filing.837", tmp_path, profiles=load_profiles(profiles))
    assert of(result, "TIMELY-FILING") == []
    assert load_profiles(profiles).profiles["medicare"].filing_limit is None


# ---------------------------------------------------------------- CORRECTED-NO-F8


def test_corrected_claim_without_f8_is_held(tmp_path):
    result, _, _ = scrub(FIXTURES / "837p-corrected-no-f8.837", tmp_path)
    assert {f["patient_control_number"]: f["severity"] for f in of(result, "CORRECTED-NO-F8")} == \
        {"CORRNOF801": "error", "CORRNOF802": "error"}
    assert result.claims_held == 2


def test_an_f8_is_checked_against_the_stored_remits(tmp_path):
    store = Store(tmp_path / "s.db")
    try:
        result, _, _ = scrub(FIXTURES / "pair-corrections.837", tmp_path, store, tag="a")
        assert {f["severity"] for f in of(result, "CORRECTED-NO-F8")} == {"warning"}  # no remit on file yet
        ingest_file(FIXTURES / "pair-corrections.835", store)
        again = variant(tmp_path, "pair-corrections", ("PAIRCORR2", "PAIRCORR3"))
        result, _, _ = scrub(again, tmp_path, store, tag="b")
        assert of(result, "CORRECTED-NO-F8") == []  # both F8 are CLP07 of remits now on file
    finally:
        store.close()


# ---------------------------------------------------------------- report-only, disabled_rules, profiles


def test_report_only_finds_the_same_and_changes_nothing(tmp_path):
    src = FIXTURES / "837p-duplicate-claim.837"
    normal, _, _ = scrub(src, tmp_path, tag="n")
    store = Store(tmp_path / "s.db")
    try:
        result, out, rej = scrub(src, tmp_path, store, tag="r", report_only=True)
        assert [(f.rule, f.severity) for f in result.findings] == [(f.rule, f.severity) for f in normal.findings]
        assert result.claims_held == 0 and not rej.exists()
        assert out.read_bytes() == src.read_bytes()
        assert list(store.query("select count(*) n from claims"))[0]["n"] == 0
    finally:
        store.close()


def test_disabled_rules_per_profile(tmp_path):
    profiles = tmp_path / "payers.toml"
    marker = "guide_tpi_imaging = true\n\n# Medicare Advantage"
    profiles.write_text(SHIPPED.replace(marker, marker.replace("\n\n", '\ndisabled_rules = ["TIMELY-FILING"]\n\n')))
    loaded = load_profiles(profiles)
    assert loaded.profiles["medicare"].disabled_rules == {"TIMELY-FILING"}
    result, _, _ = scrub(FIXTURES / "837p-timely-filing.837", tmp_path, profiles=loaded)
    assert of(result, "TIMELY-FILING") == [] and result.claims_held == 0


@pytest.mark.parametrize("text,why", [
    ('disabled_rules = ["NO-SUCH-RULE"]', "NO-SUCH-RULE"),
    ('preserve_refs = ["Y4"]', "preserve_refs was dropped"),
    ("filing_limit_days = 30", "not both"),
])
def test_bad_profile_settings_are_refused(tmp_path, text, why):
    profiles = tmp_path / "payers.toml"
    profiles.write_text(SHIPPED.replace("medicare_rules = true\n", f"medicare_rules = true\n{text}\n", 1))
    with pytest.raises(CodeTableError, match=why):
        load_profiles(profiles)


def test_cli_rules_profiles_prints_the_shipped_file():
    got = CliRunner().invoke(cli, ["rules", "profiles"])
    assert got.exit_code == 0 and got.output == SHIPPED


def test_cli_scrub_report_only_exits_0_with_holds_reported(tmp_path):
    src = FIXTURES / "837p-corrected-no-f8.837"
    args = [sys.executable, "-m", "edi_pipeline", "scrub", str(src), "-o", str(tmp_path / "o.837"),
            "--rejects", str(tmp_path / "r.837"), "--db", str(tmp_path / "s.db")]
    assert subprocess.run(args, capture_output=True).returncode == 1
    done = subprocess.run(args + ["--report-only", "--format", "text"], capture_output=True, text=True)
    assert done.returncode == 0 and "CORRECTED-NO-F8 (error, none)" in done.stderr
    assert "report only: not held" in done.stderr


def test_cli_scrub_date_option(tmp_path):
    src = FIXTURES / "837p-timely-filing.837"
    args = [sys.executable, "-m", "edi_pipeline", "scrub", str(src), "-o", str(tmp_path / "o.837"),
            "--rejects", str(tmp_path / "r.837"), "--db", str(tmp_path / "s.db"), "--scrub-date", "2026-09-01"]
    assert subprocess.run(args, capture_output=True).returncode == 0


# ---------------------------------------------------------------- lines a correction adds or merges


def test_a_line_a_correction_adds_gets_its_own_ref_6r(tmp_path):
    _, out, _ = scrub(FIXTURES / "837p-acu-initial-units.837", tmp_path)
    refs = [s for s in out.read_text().replace("\n", "").split("~") if s.startswith("REF*6R*")]
    assert refs == ["REF*6R*ACUINITUNITS01-1", "REF*6R*ACUINITUNITS01-1-97814"]


def test_97810_recoded_to_97811_merges_into_the_97811_line(tmp_path):
    result, out, _ = scrub(FIXTURES / "837p-acu-one-initial-merge.837", tmp_path)
    [f] = of(result, "ACU-ONE-INITIAL")
    assert "merged into line 3" in f["message"]
    text = out.read_text()
    assert codes_out(out) == [["97813", "97811"]]
    assert "SV1*HC:97811*145*UN*2***1" in text and "CLM*ACUMERGE01*240*" in text


def test_cli_report_only_passes_an_invalid_claim_and_says_so(tmp_path):
    src = variant(tmp_path, "837p-clean", ("SV1*HC:20553*250*", "SV1*HC:20553*2X50*"))
    got = CliRunner().invoke(cli, ["scrub", str(src), "-o", str(tmp_path / "o.837"), "--rejects",
                                   str(tmp_path / "r.837"), "--db", str(tmp_path / "s.db"), "--report-only"])
    assert got.exit_code == 0 and "CLEANMCR01 invalid (report only: not held)" in got.output
    assert (tmp_path / "o.837").read_bytes() == src.read_bytes() and not (tmp_path / "r.837").exists()


def test_workers_comp_e_m_needs_no_authorization_its_procedure_does(tmp_path):
    text = (FIXTURES / "837p-clean.837").read_text()
    k = text.index("SV1*HC:99214:25*180")
    no_em_auth = tmp_path / "wc-em.837"
    no_em_auth.write_text(text[:k] + text[k:].replace("REF*G1*WCAUTH1001~\n", "", 1))
    result, _, _ = scrub(no_em_auth, tmp_path)
    assert of(result, "AUTH-REQUIRED") == [] and result.claims_held == 0
    k = text.index("SV1*HC:20553*250", k)
    no_proc_auth = tmp_path / "wc-proc.837"
    no_proc_auth.write_text(text[:k] + text[k:].replace("REF*G1*WCAUTH1001~\n", "", 1))
    [f] = of(scrub(no_proc_auth, tmp_path, tag="p")[0], "AUTH-REQUIRED")
    assert f["patient_control_number"] == "CLEANWC01" and f["procedure"] == "20553"


@pytest.mark.parametrize("sbr09,medicare_rules,profile",
                         [("16", True, "medicare_advantage"), ("MC", False, "medicaid")])
def test_medicare_advantage_and_medicaid_profiles(tmp_path, sbr09, medicare_rules, profile):
    """SBR09 16 (Medicare Advantage HMO): the Medicare rules plus acupuncture prior auth; MC (Medicaid):
    its own profile, acupuncture prior auth, no Medicare-only rule."""
    src = variant(tmp_path, "837p-acu-ncd-dx", ("SBR*P*18*******MB", f"SBR*P*18*******{sbr09}"), tag=sbr09)
    result, _, _ = scrub(src, tmp_path)
    assert bool(of(result, "ACU-NCD-DX")) is medicare_rules
    [auth] = of(result, "AUTH-REQUIRED")
    assert auth["procedure"] == "97813" and f"({profile})" in auth["message"]
