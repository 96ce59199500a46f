"""report: the KPIs and figures it shows, claims to work, the offline SVG page, and headless chromium drawing it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.cli.commands import cli
from edi_pipeline.analytics.denials import find_denials
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.analytics.reconcile import reconcile
from edi_pipeline.analytics.report import claims_to_work, first_pass_acceptance, hbar_chart, report_data, write_report
from edi_pipeline.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "edi"
CHROMIUM = Path("/usr/bin/chromium")
AS_OF = date(2026, 12, 31)
GENERATED_CLAIMS = 3000  # the browser test's generated store; 100,000 is measured by hand (see the commit)
CHART = re.compile(r'<svg class="chart".*?</svg>', re.S)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.db")
    for n in ("pair-denials.837", "pair-denials.835", "pair-reversal.837", "pair-reversal.835",
              "pair-plb.837", "pair-plb.835"):
        assert ingest_file(FIXTURES / n, s).status == "ingested"
    yield s
    s.close()


def _kpis(data):
    return {k.name: k for k in data.kpis}


def test_report_figures(store):
    data = report_data(store, AS_OF)
    denials = find_denials(store)
    total = sum(d.amount for d in denials) / 100
    assert data.denials == len(denials)
    assert sum(r["dollars"] for r in data.by_category) == pytest.approx(total)
    assert sum(r["denied_dollars"] for r in data.by_payer) == pytest.approx(total)
    payers = {r["payer"]: r for r in data.by_payer}
    acme = payers["ACME COMMERCIAL HEALTH"]  # DAUTH01, DELIG01, DCOB01 denied; DPARTIAL01 paid
    assert (acme["claims"], acme["denied_claims"], acme["denial_rate"]) == (4, 3, 0.75)
    assert payers["BLUE PEAK HEALTH"]["denied_claims"] == 0
    assert data.top_carcs[0]["dollars"] == max(r["dollars"] for r in data.top_carcs)
    rules = {r["rule"]: r["dollars"] for r in data.by_rule}
    assert rules["AUTH-REQUIRED"] == 95 and rules["EM-SAME-DAY"] == 120
    assert all(isinstance(r["dollars"], Decimal) for r in data.by_rule + data.by_category)


def test_aging_covers_every_unpaid_balance(store):
    """Not only claims with no remit: denied and partly paid balances are aged too."""
    data = report_data(store, AS_OF)
    aging = {r["bucket"]: r for r in data.aging}
    work = claims_to_work(reconcile(store, AS_OF), top=None)
    statuses = {r["status"] for r in work}
    assert {"open", "denied", "partially paid"} <= statuses
    assert sum(r["claims"] for r in aging.values()) == len(work) == 12
    assert sum(r["balance"] for r in aging.values()) == sum(r["at_risk"] for r in work) == Decimal("1775.00")
    assert aging["90+"]["claims"] == 1  # DTIMELY01, 2026-09-10


def test_claims_to_work_sorted_by_dollars_at_risk(store):
    data = report_data(store, AS_OF)
    at_risk = [r["at_risk"] for r in data.worklist]
    assert at_risk == sorted(at_risk, reverse=True) and at_risk[0] == Decimal("250.00")
    top = {r["patient_control_number"]: r for r in data.worklist}
    assert top["NOREMIT01"]["status"] == "open" and top["NOREMIT01"]["age_days"] == 87
    assert top["DUNITS01"]["status"] == "partially paid"
    assert all(r["at_risk"] > 0 for r in data.worklist)


def test_kpis(store):
    k = _kpis(report_data(store, AS_OF))
    assert k["Denial rate"].value == "73.3%" and "$1,525.00 denied" in k["Denial rate"].detail
    assert k["Net collection rate"].value == "32.6%"
    assert k["Days in A/R"].value == "52"  # $1,775 open / ($3,070 charged in 90 days / 90)
    assert k["Preventable by rule"].value == "$1,225.00"
    # ingested (not scrubbed) claims and no 277CA: say what is missing and how to get it
    assert k["Clean-claim rate"].value is None and "batch" in k["Clean-claim rate"].detail
    assert k["First-pass acceptance"].value is None and "277CA" in k["First-pass acceptance"].detail


def test_first_pass_acceptance_from_ack_events(store):
    events = [("A", "2026-11-01", "A2"), ("B", "2026-11-01", "A7"), ("B", "2026-11-09", "A2"),
              ("C", "2026-11-03", "A1"), ("D", "2026-11-02", "A6")]
    assert first_pass_acceptance(events) == (2, 4)  # A, C accepted first; B rejected then resent
    k = _kpis(report_data(store, AS_OF, acks=events))
    assert k["First-pass acceptance"].value == "50.0%"


def test_clean_claim_rate_on_scrubbed_claims(tmp_path):
    """Sent without change: a warning alone keeps a claim clean; a correction or a hold does not."""
    db = tmp_path / "s.db"
    for n in ("837p-em-same-day", "837p-dn-units", "837p-auth-required"):  # warning; set_units; 2 held
        result = CliRunner().invoke(cli, ["scrub", str(FIXTURES / f"{n}.837"), "-o", str(tmp_path / f"{n}.837"),
                                          "--rejects", str(tmp_path / f"{n}.rejects.837"), "--db", str(db)])
        assert result.exit_code in (0, 1), result.output
    s = Store(db)
    try:
        assert s.report_scrub_counts() == (4, 3)
        assert _kpis(report_data(s, AS_OF))["Clean-claim rate"].value == "25.0%"
    finally:
        s.close()


def test_report_page_is_offline_svg_under_1mb(store, tmp_path):
    out = tmp_path / "out" / "report.html"
    write_report(store, out, AS_OF)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert len(page.encode()) < 1_000_000
    assert "<script" not in page and not re.search(r"""(src|href)=["']?https?:""", page)
    charts = CHART.findall(page)
    assert len(charts) == 10  # 2 by payer, 2 + 2 trends, category, CARCs, rules, aging
    assert all('class="mark"' in c for c in charts)
    assert ">$1,200<" in page and ">$1,600<" in page  # money axes in dollars with thousands separators
    assert "Preventable dollars by rule" in page and "AUTH-REQUIRED" in page
    assert "NOREMIT01" in page  # the claims-to-work table
    assert "277CA" in page  # what first-pass acceptance needs
    assert not list(out.parent.glob(".report.html.*"))  # no temp file left behind


def test_empty_store_says_what_is_missing(tmp_path):
    s = Store(tmp_path / "empty.db")
    out = tmp_path / "report.html"
    write_report(s, out, AS_OF)
    s.close()
    page = out.read_text()
    assert not CHART.findall(page)  # no empty grids
    assert page.count("class='missing'") >= 8
    assert "edi-pipeline batch" in page and "277CA" in page


def test_labels_readable_with_many_payers():
    payers = [f"PAYER NUMBER {k} WITH A VERY LONG LEGAL NAME" for k in range(9)]
    svg = hbar_chart("Denied dollars by payer", payers, [Decimal(1000 * k + 5) for k in range(9)])
    ys = [float(y) for y in re.findall(r'<text x="\d+" y="([\d.]+)" class="l"', svg)]
    assert len(ys) == 9 and min(b - a for a, b in zip(ys, ys[1:])) >= 20  # one row each, never overlapping
    assert all(f"<title>{p}</title>" in svg for p in payers)  # the full name on hover
    assert "$8,005" in svg and "$10,000" in svg


def test_report_write_failure_leaves_no_file(store, tmp_path, monkeypatch):
    import edi_pipeline.analytics.report as report

    def boom(data):
        raise RuntimeError("render failed")

    out = tmp_path / "report.html"
    monkeypatch.setattr(report, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report(store, out, AS_OF)
    assert not out.exists()


def test_report_cli(store, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", "--db", str(store.path), "-o", str(out), "--as-of", "2026-12-31"])
    assert result.exit_code == 0, result.output
    assert out.exists() and "denial rate 73.3%; net collection rate 32.6%; days in a/r 52" in result.output
    missing = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "nope.db"), "-o", str(out)])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def _chromium(page: Path, tmp_path: Path) -> tuple[str, Path]:
    """The DOM chromium drew from `page` with every network request failing, and its screenshot."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: apt-get install -y chromium to run the browser test")
    profile = tmp_path / "chromium-profile"
    shot = page.with_suffix(".png")
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}",
            # any network request would fail: the page must render from the file alone
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    pic = subprocess.run(base + ["--window-size=1200,4000", f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=90)
    assert pic.returncode == 0 and shot.stat().st_size > 20_000, pic.stderr[-2000:]
    shutil.rmtree(profile, ignore_errors=True)
    return dom.stdout, shot


def _assert_charts_drawn(dom: str, expected: int) -> None:
    charts = CHART.findall(dom)
    assert len(charts) == expected, dom[:500]
    for c in charts:
        assert len(re.findall(r'class="mark"', c)) >= 1, c[:300]
    assert "Practice health report" in dom


def test_report_renders_charts_offline_in_chromium(store, tmp_path):
    out = tmp_path / "report.html"
    write_report(store, out, AS_OF)
    dom, _ = _chromium(out, tmp_path)
    _assert_charts_drawn(dom, 10)


def test_report_on_generated_store_in_chromium(tmp_path):
    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--claims", str(GENERATED_CLAIMS),
                    "--out", str(gen)], check=True, capture_output=True)
    s = Store(tmp_path / "gen.db")
    for f in sorted(gen.glob("*.837")) + sorted(gen.glob("*.835")):
        assert ingest_file(f, s).status == "ingested"
    out = tmp_path / "report.html"
    data = write_report(s, out, AS_OF)
    s.close()
    assert len(data.by_payer) >= 5 and len(data.worklist) == 25
    assert out.stat().st_size < 1_000_000
    dom, _ = _chromium(out, tmp_path)
    _assert_charts_drawn(dom, 10)


def test_first_pass_acceptance_reads_the_277ca_events_the_lifecycle_records(store):
    """The KPI is filled from claim_events: payer acceptances and rejections recorded by lifecycle.record_event."""
    from edi_pipeline.analytics.lifecycle import CLAIM_ACCEPTED, CLAIM_REJECTED, record_event

    record_event(store, "A", CLAIM_ACCEPTED, date(2026, 11, 1), "payer.277", 5)
    record_event(store, "B", CLAIM_REJECTED, date(2026, 11, 1), "payer.277", 9)
    record_event(store, "B", CLAIM_ACCEPTED, date(2026, 11, 9), "payer2.277", 5)
    assert sorted(store.report_ack_events()) == [("A", "2026-11-01", "A2"), ("B", "2026-11-01", "A7"),
                                                 ("B", "2026-11-09", "A2")]
    assert _kpis(report_data(store, AS_OF))["First-pass acceptance"].value == "50.0%"
