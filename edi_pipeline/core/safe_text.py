"""Text written for people and other programs: CSV cells a spreadsheet would run as formulas are
defused, and text holding bytes that were not UTF-8 is given as those bytes read as Latin-1."""

from __future__ import annotations

import csv
import re
from typing import IO, Any, Iterable

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NEGATIVE_NUMBER = re.compile(r"-(?:\d+\.?\d*|\.\d+)\Z")
_FORMULA_CELL = re.compile(',"?[=+\\-@\t\r]')  # in "," + a csv line: a cell opening with a formula character
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte the reader's surrogateescape decoding could not read


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a text starting with = + - @, a tab or a CR gets a
    leading ' (OWASP's CSV injection rule), except a negative number such as -12.50, which stays a number.
    Text with bytes that were not UTF-8 is given as Latin-1 (latin1_text). Other values are returned as they are."""
    if not isinstance(value, str) or not value:
        return value
    if not value.isascii():
        value = latin1_text(value)
    if value.startswith(_FORMULA_START) and not _NEGATIVE_NUMBER.match(value):
        return "'" + value
    return value


def latin1_text(text: str) -> str:
    """`text` with its undecodable bytes (kept by surrogateescape as U+DC80-U+DCFF) and everything else
    given as the value's bytes read as Latin-1 (one character U+0000-U+00FF per byte, so
    `.encode("latin-1")` gives the bytes back exactly); text without such bytes is returned unchanged."""
    if not has_escaped_bytes(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def has_escaped_bytes(text: str) -> bool:
    """Whether `text` holds bytes that were not UTF-8 (see latin1_text)."""
    return not text.isascii() and _ESCAPED_BYTE.search(text) is not None


def from_latin1(text: str) -> str:
    """The inverse of latin1_text on a value it changed: the original text, bytes escaped as the reader does."""
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


class _LastLine:
    """A file object keeping only the last text written to it."""

    text = ""

    def write(self, text: str) -> None:
        self.text = text


class SafeCsvWriter:
    """csv.writer whose every cell goes through csv_cell; a row with a CR in a cell has all its cells
    quoted (csv quotes only the line terminator, \\n, so a bare CR would split the row in a spreadsheet)."""

    def __init__(self, out: IO[str]):
        self._out = out
        self._line = _LastLine()
        self._probe = csv.writer(self._line, lineterminator="\n")  # the row as csv writes it, checked at once
        self._writer = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[Any]) -> None:
        row = list(row)
        self._probe.writerow(row)
        line = self._line.text
        if line.isascii() and "\r" not in line and not _FORMULA_CELL.search("," + line):  # nothing to change
            self._out.write(line)
            return
        cells = [csv_cell(v) for v in row]
        if any(isinstance(v, str) and "\r" in v for v in cells):
            self._quoted.writerow(cells)
        else:
            self._writer.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


__all__ = ["csv_cell", "latin1_text", "has_escaped_bytes", "from_latin1", "SafeCsvWriter"]


# The reader keeps bytes that are not UTF-8 as surrogate escapes (0xE9 -> U+DCE9), which sqlite3 refuses
# to bind; the store holds each as the Latin-1 character of its byte (U+00E9), the same in every table and
# lookup, so a patient control number with such a byte still matches between an 837 and its 835.
_ESCAPED_BYTES = {0xDC00 + b: b for b in range(0x80, 0x100)}


def store_text(text: str) -> str:
    """`text` as the store holds it: its surrogate escapes as the Latin-1 characters of their bytes."""
    return text.translate(_ESCAPED_BYTES)
