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
    from edi_pipeline.store.store import Store

    s = Store(tmp_path / "store.db")
    yield s
    s.close()


# Entity codes of patients and subscribers (835 74: corrected patient), and REF qualifiers of member ids.
PHI_ENTITIES = ("IL", "QC", "74")
MEMBER_ID_REFS = ("SY", "1W", "IL", "0F", "1L", "23", "IG", "Y4", "6P", "F8", "EA", "CE")


def phi_values() -> set[str]:
    """Names, member ids, birth dates and addresses of every subscriber and patient in the fixtures: NM1
    03-09, the N3/N4 and member-id REFs that follow it (up to the next NM1), DMG02."""
    values = set()
    for p in FIXTURES.glob("*.8*"):
        person = False
        for seg in p.read_text(errors="replace").replace("\n", "").replace("\r", "").split("~"):
            e = seg.split("*")
            if e[0] == "NM1":
                person = len(e) > 1 and e[1] in PHI_ENTITIES
                if person:
                    values.update(e[3:10])
            elif e[0] == "DMG" and len(e) > 2:
                values.add(e[2])
            elif person and e[0] in ("N3", "N4"):
                values.update(e[1:4])
            elif person and e[0] == "REF" and len(e) > 2 and e[1] in MEMBER_ID_REFS:
                values.add(e[2])
            elif e[0] in ("CLM", "CLP", "LX", "HL"):
                person = False
    return {v for v in values if len(v) > 3}


def tr3_by_set(source, filename: str | None = None, *, now=None):
    """The TR3 result of a file validated set by set (tr3.compiled.SetValidation fed by the envelope
    reader), the way validate_file does it, without validate's own checks."""
    from edi_pipeline.core.errors import InterchangeError, Issue
    from edi_pipeline.tr3.compiled import SetValidation
    from edi_pipeline.x12.envelope import EnvelopeReader

    sets = SetValidation(filename, now)
    try:
        with EnvelopeReader(source, filename) as env:
            for item in env:
                sets.feed(item)
    except InterchangeError as exc:
        sets.issues.append(Issue("ENV-UNREADABLE", str(exc).replace(f"{exc.pos} ", ""), exc.pos))
    return sets.result()
