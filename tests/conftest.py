"""Shared test paths: the bundled fixtures and the public corpus (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "edi"
CORPUS = Path(os.environ.get("EDI_CORPUS", ROOT.parent / "shared" / "corpus"))
# TIMELY-FILING counts to the scrub date: pinned so the fixtures' dates of service (autumn 2026) stay in
# their filing limits whenever the suite runs (subprocess CLI tests inherit it).
SCRUB_DATE = "2026-11-27"
os.environ["EDI_SCRUB_DATE"] = SCRUB_DATE


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def corpus_params():
    files = corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"corpus not found at {CORPUS}; set EDI_CORPUS to ../shared/corpus to run corpus tests"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


def fixture_files(pattern: str = "*") -> list[Path]:
    return sorted(p for p in FIXTURES.glob(pattern) if p.is_file() and p.suffix in (".837", ".835"))


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def store(tmp_path):
    """A fresh store in the test's folder."""
    from edi_pipeline.store import Store

    s = Store(tmp_path / "store.db")
    yield s
    s.close()


def phi_values() -> set[str]:
    """Names, member ids and birth dates of every subscriber and patient in the fixtures."""
    values = set()
    for p in FIXTURES.glob("*.8*"):
        for seg in p.read_text(errors="replace").replace("\n", "").split("~"):
            e = seg.split("*")
            if e[0] == "NM1" and len(e) > 9 and e[1] in ("IL", "QC"):
                values.update(v for v in (e[3], e[4], e[9]) if len(v) > 3)
            if e[0] == "DMG" and len(e) > 2:
                values.add(e[2])
    return values
