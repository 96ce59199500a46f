"""Positions, issues and exceptions: how every stage reports what is wrong, and where."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


# Segments that carry names, member ids, birth dates, addresses or phone numbers in some loop (NM1, N2,
# N3, N4, PER and REF of patients and subscribers, DMG, PAT). No value of theirs goes into a message or
# an outbound 999, whatever element it sits in: one separator too many or too few moves a name or a birth
# date into a code element, and moves the segment out of its loop, so neither can be trusted to tell a
# patient's segment from a provider's. Messages name the element and the rule instead.
PHI_SEGMENTS = frozenset(("NM1", "N2", "N3", "N4", "PER", "REF", "DMG", "PAT"))

# Segment identifiers of the implementation guides pyx12 ships. Any other "identifier" is text cut out of
# a damaged segment (a stray terminator inside a name), so positions show it as "?".
KNOWN_SEGMENT_IDS = frozenset("""
    AAA ACT ADX AK1 AK2 AK3 AK4 AK5 AK9 AMT ATH BFR BGN BHT BPR CAS CL1 CLM CLP CN1 COB CR1 CR2 CR3 CR5
    CR6 CR7 CRC CTP CTT CTX CUR DMG DN1 DN2 DSB DTM DTP EB EC ENT EQ FRM FST GE GS HCP HCR HD HI HL HLH
    HSD ICM IDC IEA III IK3 IK4 IK5 INS ISA IT1 K3 LE LIN LQ LS LUI LX MEA MIA MOA MSG N1 N2 N3 N4 NM1
    NTE OI PAT PER PID PLA PLB PRV PS1 PWK QTY RDM RDT REF RMR SAC SBR SE SHP SLN SPI ST STC SV1 SV2 SV3
    SV5 SVC SVD TA1 TOO TRN TS2 TS3 TST UIT UM UNU""".split())


def shown_segment_id(seg_id: str) -> str:
    """A segment identifier as messages show it: a known one, else "?" (never text of the input)."""
    return seg_id if seg_id in KNOWN_SEGMENT_IDS else "?"


class Severity(enum.StrEnum):
    """The one severity of issues, findings and rules; equal to (and stored as) its lower-case name."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Position:
    """Where something sits in a file. Lines and segment indexes are 1-based."""

    file: str | None = None
    line: int = 0
    segment_index: int = 0  # in the file
    st_position: int | None = None  # in the transaction set, ST = 1 (999 IK302)
    segment_id: str = ""
    loop: str | None = None
    element: str | None = None  # reference designator, e.g. "SV101-2"

    def __str__(self) -> str:
        where = f"{self.file or '-'}:{self.line}:"
        seg = shown_segment_id(self.segment_id) if self.segment_id else "-"
        num = self.st_position if self.st_position is not None else self.segment_index
        parts = [where, f"{seg}#{num}"]
        if self.loop:
            parts.append(f"[{self.loop}]")
        if self.element:
            parts.append(self.element)
        return " ".join(parts)

    def at(self, element: str | None) -> "Position":
        """This position, at one of the segment's elements (a reference designator such as "CLM02")."""
        return Position(self.file, self.line, self.segment_index, self.st_position, self.segment_id, self.loop,
                        element)

    def source_dict(self, with_file: bool = True) -> dict:
        """Where a record starts, as records show it; nested records leave out the file their parent names."""
        d = {"line": self.line, "segment_index": self.segment_index, "st_position": self.st_position,
             "loop": self.loop}
        if with_file:
            d["file"] = self.file
        return d

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "segment_index": self.segment_index,
            "st_position": self.st_position,
            "segment_id": shown_segment_id(self.segment_id) if self.segment_id else "",
            "loop": self.loop,
            "element": self.element,
        }


@dataclass(frozen=True, slots=True)
class Issue:
    """A defect found in input. `code` is a 999 code (IK3-8, IK4-7, IK5-4), an
    envelope code (ENV-*) or a rule id. Messages never carry PHI."""

    code: str
    message: str
    pos: Position = field(default_factory=Position)
    severity: Severity = Severity.ERROR
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.pos} {self.code} {self.message}"

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "value": self.value,
            **self.pos.to_dict(),
        }


class IssueList(list):
    """A list of Issue with a few queries."""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self if i.severity is Severity.ERROR]

    def has(self, code: str) -> bool:
        return any(i.code == code for i in self)


class EdiError(Exception):
    """Base of every error this package raises; the CLI turns it into one line."""


class InterchangeError(EdiError):
    """The input is not an X12 interchange that can be read at all."""

    def __init__(self, message: str, pos: Position | None = None):
        self.pos = pos or Position()
        super().__init__(f"{self.pos} {message}" if pos else message)


class WriteError(EdiError):
    """Output could not be written."""


class StoreError(EdiError):
    """The embedded store refused an operation."""
