"""Rewrite the scrub goldens: fixtures/edi/expected/<name>.scrubbed.837 for every 837P fixture.

Each fixture is scrubbed alone with a fresh in-memory store and the shipped tables and profiles.
Run after an intended change to the rules or the writer, then review `git diff fixtures/edi/expected`.

    python scripts/update_goldens.py [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edi_pipeline.scrub.scrubber import scrub_file  # noqa: E402
from edi_pipeline.store.store import Store  # noqa: E402

FIXTURES = ROOT / "fixtures" / "edi"
os.environ["EDI_SCRUB_DATE"] = "2026-11-27"  # as tests/conftest.py: TIMELY-FILING counts to this date
EXPECTED = FIXTURES / "expected"


def golden_fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("837p-*.837") if "invalid" not in p.name)


def scrubbed_bytes(fixture: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.837"
        store = Store(":memory:")
        try:
            scrub_file(fixture, out, Path(tmp) / "rejects.837", store)
        finally:
            store.close()
        return out.read_bytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report goldens that differ; exit 1 if any")
    args = ap.parse_args()
    EXPECTED.mkdir(parents=True, exist_ok=True)
    differ = 0
    for fx in golden_fixtures():
        target = EXPECTED / f"{fx.name}.scrubbed.837"
        text = scrubbed_bytes(fx)
        old = target.read_bytes() if target.exists() else None
        if old != text:
            differ += 1
            print(f"{'differs' if args.check else 'wrote'}: {target.relative_to(ROOT)}")
            if not args.check:
                target.write_bytes(text)
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
