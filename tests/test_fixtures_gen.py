"""Tests for the fixture writer, the x12gen builders and the seeded 837P/835 generator."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import generate  # noqa: E402
import make_fixtures  # noqa: E402
import x12gen  # noqa: E402

RULES_MD = Path("/work/shared/domain/RULES.md")


@pytest.fixture(scope="module")
def fixtures_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fx")
    make_fixtures.build_all(d)
    return d


@pytest.fixture(scope="module")
def gen_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    p7, p5, stats = generate.generate(200, 7, d, claims_per_st=60, interchanges=2)
    return p7.read_text(), p5.read_text(), stats


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_make_fixtures_deterministic(tmp_path, fixtures_dir):
    make_fixtures.build_all(tmp_path)
    assert _files(tmp_path) == _files(fixtures_dir)


def test_readme_lists_every_fixture(fixtures_dir):
    readme = (fixtures_dir / "README.md").read_text()
    for p in fixtures_dir.iterdir():
        if p.name != "README.md":
            assert f"`{p.name}`" in readme


def test_every_rule_has_a_fixture(fixtures_dir):
    if not RULES_MD.exists():
        pytest.skip("RULES.md not available")
    ids = set()
    for row in RULES_MD.read_text().splitlines():
        m = re.match(r"\|\s*([A-Z0-9 /-]+?)\s*\|", row)
        if m and re.search(r"[A-Z]-[A-Z]", m.group(1)):
            ids.update(x.strip() for x in m.group(1).split("/"))
    assert ids, "no rule ids parsed"
    for rid in ids:
        assert (fixtures_dir / f"837p-{rid.lower()}.837").exists(), rid


def _valid_837_fixtures(d: Path):
    return [p for p in sorted(d.glob("*.837")) if "invalid" not in p.name]


def test_valid_837_fixtures_pass_pyx12(fixtures_dir):
    failures = {}
    for p in _valid_837_fixtures(fixtures_dir):
        text = p.read_text(encoding="utf-8").lstrip("\ufeff").replace("005010X222A2", "005010X222A1")
        ok, errors = x12gen.pyx12_validate(text)
        if not ok:
            failures[p.name] = errors[:3]
    assert not failures


@pytest.mark.parametrize("name", ["837p-invalid-se-count.837", "837p-invalid-truncated.837"])
def test_invalid_fixtures_fail_pyx12(fixtures_dir, name):
    ok, errors = x12gen.pyx12_validate((fixtures_dir / name).read_text())
    assert not ok and errors


def test_valid_835_fixtures_pass_pyx12_and_balance(fixtures_dir):
    for name in ["pair-denials.835", "pair-reversal.835", "pair-plb.835", "pair-corrections.835", "pair-secondary.835"]:
        text = (fixtures_dir / name).read_text()
        ok, errors = x12gen.pyx12_validate(text)
        assert ok, (name, errors[:3])
        assert x12gen.check_835_balance(text) == [], name


def test_unbalanced_and_corrupt_835(fixtures_dir):
    assert x12gen.check_835_balance((fixtures_dir / "835-unbalanced.835").read_text())
    corrupt = (fixtures_dir / "835-corrupt.835").read_text()
    assert x12gen.check_envelope_counts(corrupt)
    assert not x12gen.pyx12_validate(corrupt)[0]


def test_fixture_envelope_counts(fixtures_dir):
    for p in sorted(fixtures_dir.iterdir()):
        if p.suffix in (".837", ".835") and "invalid" not in p.name and "corrupt" not in p.name:
            assert x12gen.check_envelope_counts(p.read_text(encoding="utf-8")) == [], p.name


def test_fixture_format_details(fixtures_dir):
    raw = (fixtures_dir / "837p-crlf-bom.837").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"~\r\n" in raw
    multi = (fixtures_dir / "837p-multi-interchange.837").read_text()
    assert multi.count("ISA*") == 2 and multi.count("\nGS*") == 2 and multi.count("\nST*") == 3
    assert "005010X222A2" in (fixtures_dir / "837p-x222a2.837").read_text()
    clean = (fixtures_dir / "837p-clean.837").read_text()
    assert "*23*0~" in clean  # a 2000C patient loop
    for filing in ("MB", "CI", "BL", "WC", "AM"):
        assert re.search(rf"SBR\*P\*[^~]*\*{filing}~", clean), filing


def test_pairs_link_claims_and_remits(fixtures_dir):
    def ids(text, sid):
        return {s.split("*")[1] for s in x12gen.split_segments(text) if s.startswith(sid + "*")}

    c7 = ids((fixtures_dir / "pair-denials.837").read_text(), "CLM")
    c5 = ids((fixtures_dir / "pair-denials.835").read_text(), "CLP")
    assert c7 - c5 == {"NOREMIT01"} and c5 - c7 == {"UNMATCHED01"}
    rev = (fixtures_dir / "pair-reversal.835").read_text()
    assert [s.split("*")[2] for s in x12gen.split_segments(rev) if s.startswith("CLP*")] == ["1", "22", "1"]
    assert "PLB*" in (fixtures_dir / "pair-plb.835").read_text()
    assert ids((fixtures_dir / "pair-corrections.837").read_text(), "CLM") == ids(
        (fixtures_dir / "pair-corrections.835").read_text(), "CLP")


def test_835_fixtures_pay_nothing_negative_outside_reversals(fixtures_dir):
    """CLP04 and SVC03 are >= 0 except under a CLP02 = 22 reversal."""
    for name in ["pair-denials.835", "pair-reversal.835", "pair-plb.835", "pair-corrections.835", "pair-secondary.835"]:
        status = None
        for s in x12gen.split_segments((fixtures_dir / name).read_text()):
            e = s.split("*")
            if e[0] == "CLP":
                status = e[2]
            if status != "22" and (e[0] == "CLP" and e[4].startswith("-") or e[0] == "SVC" and e[3].startswith("-")):
                raise AssertionError(f"{name}: negative payment outside a reversal: {s}")


def test_all_npis_luhn_valid(fixtures_dir, gen_files):
    texts = [p.read_text(encoding="utf-8") for p in fixtures_dir.iterdir() if p.suffix in (".837", ".835")]
    texts += list(gen_files[:2])
    npis = {n for t in texts for n in x12gen.iter_npis(t)}
    assert npis and all(x12gen.luhn_ok_npi(n) for n in npis), [n for n in npis if not x12gen.luhn_ok_npi(n)]
    assert x12gen.luhn_ok_npi("1234567893")  # CMS example NPI
    assert not x12gen.luhn_ok_npi("1234567890")
    assert all(x12gen.luhn_ok_npi(x12gen.make_npi(i)) for i in range(500))


def test_money_format():
    assert x12gen.fmt_money(100) == "100"
    assert x12gen.fmt_money("37.50") == "37.5"
    assert x12gen.fmt_money(0.1 + 0.2) == "0.3"
    assert x12gen.fmt_cents(-1205) == "-12.05"
    assert x12gen.fmt_money(x12gen.Cents(4500)) == "45"


def test_generator_counts_and_balance(gen_files):
    t837, t835, stats = gen_files
    assert x12gen.check_envelope_counts(t837) == []
    assert x12gen.check_envelope_counts(t835) == []
    assert x12gen.check_835_balance(t835) == []
    assert t837.count("ISA*") == 2 and t837.count("\nST*") == 4  # 200 claims / 60 per ST over 2 ISAs
    assert stats.claims == 200 and stats.tripped > 0


def test_generator_pyx12_valid(gen_files):
    for text in gen_files[:2]:
        ok, errors = x12gen.pyx12_validate(text)
        assert ok, errors[:3]


def test_generator_remits_echo_claims(gen_files):
    t837, t835, _ = gen_files
    segs7, segs5 = x12gen.split_segments(t837), x12gen.split_segments(t835)
    clm = {s.split("*")[1] for s in segs7 if s.startswith("CLM*")}
    clp = {s.split("*")[1] for s in segs5 if s.startswith("CLP*")}
    assert clm == clp
    ref7 = {s.split("*")[2] for s in segs7 if s.startswith("REF*6R*")}
    ref5 = {s.split("*")[2] for s in segs5 if s.startswith("REF*6R*")}
    assert ref5 == ref7


def test_generator_deterministic(tmp_path, gen_files):
    p7, p5, _ = generate.generate(200, 7, tmp_path, claims_per_st=60, interchanges=2)
    assert p7.read_text() == gen_files[0] and p5.read_text() == gen_files[1]
    q7, _, _ = generate.generate(200, 8, tmp_path / "other", claims_per_st=60, interchanges=2)
    assert q7.read_text() != gen_files[0]
