"""Tests for x12.isa.Isa, the one reader of an ISA's fields, and that no other module reads them by number."""

from __future__ import annotations

import re
from pathlib import Path

from samples import ISA

from edi_pipeline.x12.isa import Isa

PACKAGE = Path(__file__).resolve().parent.parent / "edi_pipeline"


def test_fields_by_name():
    isa = Isa.of(ISA)
    assert (isa.sender_qualifier, isa.sender, isa.receiver_qualifier, isa.receiver) == \
        ("ZZ", "SENDER", "ZZ", "RECEIVER")
    assert (isa.date, isa.time, isa.control, isa.usage, isa[16]) == ("240101", "1200", "000000001", "T", ":")
    assert isa.control_ok and not isa.ack_requested
    assert isa[6] == "SENDER         "  # raw values keep their fixed-width padding
    assert Isa.of(ISA.split("*")) == isa


def test_a_short_or_odd_isa_reads_empty_fields():
    isa = Isa.of("ISA|00||00||ZZ|S1 |ZZ|R1|240101|1200|^|00501| 12|1", "|")
    assert (isa.sender, isa.receiver, isa.control, isa.usage, isa[16]) == ("S1", "R1", "12", "", "")
    assert isa.ack_requested and not isa.control_ok  # " 12" is not the 9 digits ISA13 must be
    assert not Isa.of("ISA*00*" + "1" * 9).control_ok


# An ISA's elements read by number: isa[13], (isa.elements + [""] * 14)[13], e[13].strip() if len(e)...
_BY_NUMBER = re.compile(r"isa\w*\)?\s*(\+ \[\"\"\] \* \d+\))?\[(5|6|7|8|9|1[0-5])\]|\[(6|13)\]\.strip\(\) if len\(e\)")


def test_no_module_reads_isa_fields_by_number():
    """Outside x12/isa.py, ISA fields are read through Isa."""
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "isa.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            read = line.split(" = ", 1)[-1]  # what an assignment reads, not the elements it sets
            if _BY_NUMBER.search(read) and not line.lstrip().startswith("#"):
                hits.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert hits == []
