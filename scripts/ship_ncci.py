"""Write the shipped NCCI tables (edi_pipeline/codes/data/ncci_*.csv) from the CMS extracts in ../shared/ncci/.

The extracts are real CMS rows (PTP v302r0, MUE and AOC effective 2024-07-01, see their README); this
keeps the rows as a table of our own with its source, version and effective date in the header.

    python scripts/ship_ncci.py [--src ../shared/ncci]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "edi_pipeline" / "codes" / "data"
EFFECTIVE = "2024-07-01"
SOURCES = {
    "ptp": ("ptp_practitioner_2024q3_column1_listed.csv", "v302r0",
            "CMS Medicare NCCI PTP edits, practitioner, v302r0 (ccipra-v302r0-f1..f4), every row whose column 1 "
            "is in the project's code list, via andrewallenbruce/northstar; effective and pre-1996 columns not in source"),
    "mue": ("mue_practitioner_2024q3_selected.csv", "2024Q3",
            "CMS MCR_MUE_PractitionerServices_Eff_07-01-2024, rows of the project's code list"),
    "aoc": ("aoc_2024q3_selected.csv", "2024Q3",
            "CMS NCCI add-on code edits published 2024-06-03, active edits where either code is listed"),
}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[1:]


def build(src: Path) -> dict[str, str]:
    out = {}
    for kind, (name, version, source) in SOURCES.items():
        buf = io.StringIO()
        buf.write(f"# source: {source}\n# version: {version}\n# effective: {EFFECTIVE}\n")
        w = csv.writer(buf, lineterminator="\n")
        rows = _rows(src / name)
        if kind == "ptp":
            w.writerow(["column1", "column2", "effective", "deleted", "modifier", "rationale"])
            for c1, c2, _pre, eff, dele, mod, why in rows:
                w.writerow([c1, c2, eff, "" if dele.strip() == "*" else dele, mod, why])
        elif kind == "mue":
            w.writerow(["code", "mue", "mai", "rationale"])
            for code, mue, mai, why in rows:
                w.writerow([code, mue, mai.strip()[:1], why])
        else:
            w.writerow(["primary", "addon", "type", "effective", "deleted"])
            for primary, addon, typ in rows:
                w.writerow([primary, addon, typ, "", ""])
        out[f"ncci_{kind}.csv"] = buf.getvalue()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(ROOT.parent / "shared" / "ncci"))
    args = ap.parse_args(argv)
    for name, text in build(Path(args.src)).items():
        (DATA / name).write_text(text, encoding="utf-8")
        print(f"wrote edi_pipeline/codes/data/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
