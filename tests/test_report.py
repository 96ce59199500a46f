"""report: the figures it shows, the self-contained page, and plotly rendering in headless chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from edi_pipeline.denials import find_denials
from edi_pipeline.ingest import ingest_file
from edi_pipeline.report import report_data, write_report
from edi_pipeline.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
CHROMIUM = Path("/usr/bin/chromium")
AS_OF = date(2026, 12, 31)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.db")
    for n in ("pair-denials.837", "pair-denials.835", "pair-reversal.837", "pair-reversal.835",
              "pair-plb.837", "pair-plb.835"):
        assert ingest_file(FIXTURES / n, s).status == "ingested"
    yield s
    s.close()


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
    assert rules["AUTH-REQUIRED"] == 95.0 and rules["EM-SAME-DAY"] == 120.0
    aging = {r["bucket"]: r for r in data.aging}
    assert aging["61-90"]["claims"] == 1 and aging["61-90"]["billed"] == 250.0  # NOREMIT01, 2026-10-05


def test_report_page_is_self_contained(store, tmp_path):
    out = tmp_path / "out" / "report.html"
    write_report(store, out, AS_OF)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('class="plotly-graph-div"') == 5
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined, not fetched
    assert not re.search(r"<link[^>]+href=\"https?:", page)
    assert "Preventable dollars by rule" in page and "AUTH-REQUIRED" in page
    assert not list(out.parent.glob(".report.html.*"))  # no temp file left behind


def test_report_write_failure_leaves_no_file(store, tmp_path, monkeypatch):
    import edi_pipeline.report as report

    def boom(data):
        raise RuntimeError("render failed")

    out = tmp_path / "report.html"
    monkeypatch.setattr(report, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_report(store, out, AS_OF)
    assert not out.exists()


def test_report_renders_charts_offline_in_chromium(store, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: apt-get install -y chromium to run the browser test")
    out = tmp_path / "report.html"
    write_report(store, out, AS_OF)
    profile = tmp_path / "chromium-profile"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}",
           # any network request would fail: the page must render from the file alone
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--virtual-time-budget=10000", "--dump-dom", out.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert dom.count('class="plot-container') == 5, dom[:500]
    assert dom.count('class="main-svg"') >= 5
    assert "Denials and A/R report" in dom
    shutil.rmtree(profile, ignore_errors=True)
