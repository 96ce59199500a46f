"""The interchange header's fields by name: the one reader of an ISA's elements (and of GS06).

Envelope checks, the batch screen, duplicate detection, acknowledgments and resubmissions all read
sender, receiver, control number, dates and usage through `Isa`, never by element number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True, slots=True)
class Isa:
    """The elements of one ISA (ISA01..ISA16 at 1..16; a short ISA reads "" for those it lacks).
    Raw values keep their fixed-width padding; the named identifiers are stripped of it."""

    elements: tuple[str, ...]

    @classmethod
    def of(cls, isa: str | Sequence[str], element: str = "*") -> "Isa":
        """From an ISA's text (no terminator) and its element separator, or from its elements."""
        parts = isa.split(element) if isinstance(isa, str) else isa
        return cls(tuple(parts) + ("",) * (17 - len(parts)))

    def __getitem__(self, n: int) -> str:
        """ISAnn as written (padding kept)."""
        return self.elements[n]

    @property
    def sender_qualifier(self) -> str:  # ISA05
        return self.elements[5]

    @property
    def sender(self) -> str:  # ISA06
        return self.elements[6].strip()

    @property
    def receiver_qualifier(self) -> str:  # ISA07
        return self.elements[7]

    @property
    def receiver(self) -> str:  # ISA08
        return self.elements[8].strip()

    @property
    def date(self) -> str:  # ISA09, YYMMDD
        return self.elements[9]

    @property
    def time(self) -> str:  # ISA10, HHMM
        return self.elements[10]

    @property
    def control(self) -> str:  # ISA13
        return self.elements[13].strip()

    @property
    def control_ok(self) -> bool:
        """ISA13 is the 9 digits the TR3 requires (no padding): anything else is refused (TA1 018)."""
        raw = self.elements[13]
        return len(raw) == 9 and raw.isascii() and raw.isdigit()

    @property
    def ack_requested(self) -> bool:  # ISA14 = 1: the sender asks for a TA1
        return self.elements[14].strip() == "1"

    @property
    def usage(self) -> str:  # ISA15, P (production) or T (test)
        return self.elements[15].strip()


def gs_control(gs: str | Sequence[str], element: str = "*") -> str:
    """GS06, the group control number, stripped ("" for a short GS): from a GS's text or its elements."""
    parts = gs.split(element) if isinstance(gs, str) else gs
    return parts[6].strip() if len(parts) > 6 else ""


__all__ = ["Isa", "gs_control"]
