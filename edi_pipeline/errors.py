"""Positions, issues and exceptions: how every stage reports what is wrong, and where."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
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
        seg = "".join(c if c.isprintable() and c != " " else "?" for c in self.segment_id[:8]) or "-"
        num = self.st_position if self.st_position is not None else self.segment_index
        parts = [where, f"{seg}#{num}"]
        if self.loop:
            parts.append(f"[{self.loop}]")
        if self.element:
            parts.append(self.element)
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "segment_index": self.segment_index,
            "st_position": self.st_position,
            "segment_id": self.segment_id,
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
