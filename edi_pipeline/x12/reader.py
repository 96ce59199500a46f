"""X12 syntax: delimiters from ISA and a streaming segment reader (format only, no meaning)."""

from __future__ import annotations

import codecs
import io
import os
from dataclasses import dataclass
from itertools import repeat
from typing import BinaryIO, Iterator

from edi_pipeline.core.errors import InterchangeError, Issue, IssueList, Position, Severity
from edi_pipeline.x12.isa import Isa

CHUNK = 1 << 20
ISA_LENGTH = 106
_WS = " \t\r\n\x0b\x0c"
# A segment longer than this (in characters) is an error and is skipped without being held: the 837P and
# 835 TR3s allow a few hundred characters per element and a few thousand per segment.
MAX_SEGMENT = 2 << 20


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str | None = "^"
    segment: str = "~"
    suffix: str = "\n"  # whitespace written after each terminator

    @classmethod
    def from_isa(cls, head: str, pos: Position | None = None) -> tuple["Delimiters", int]:
        """Read delimiters from text starting with ISA; return them and the ISA's length
        up to and including its terminator (106 for a well-formed ISA)."""
        if len(head) < 4 or head[:3].upper() != "ISA":
            raise InterchangeError("file does not start with an ISA segment", pos)
        element = head[3]
        if element.isalnum() or element in _WS:
            raise InterchangeError(f"invalid element separator {element!r} in ISA", pos)
        seps = 0
        i = 3
        n = len(head)
        while i < n and seps < 16:
            if head[i] == element:
                seps += 1
            i += 1
        if seps < 16 or i + 1 > n:
            raise InterchangeError("ISA segment is truncated (fewer than 16 elements)", pos)
        component = head[i]
        term_at = i + 1
        if term_at >= n:
            raise InterchangeError("ISA segment has no segment terminator", pos)
        segment = head[term_at]
        if segment == "\r" and head[term_at + 1 : term_at + 2] == "\n":
            segment = "\n"
            term_at += 1
        if segment.isalnum() or segment in (element, component) or segment in " \t":
            raise InterchangeError(f"invalid segment terminator {segment!r} in ISA", pos)
        suffix = ""
        j = term_at + 1
        if segment not in "\r\n":
            while j < n and head[j] in "\r\n" and len(suffix) < 2:
                suffix += head[j]
                j += 1
        repetition = Isa.of(head[:i], element)[11]
        if len(repetition) != 1 or repetition.isalnum() or repetition in (element, component, segment):
            repetition = None
        return cls(element, component, repetition, segment, suffix), term_at + 1


class SegmentReader:
    """Reads X12 segments from a path, bytes, str or binary stream in bounded memory.

    Iterating yields `(text, line)` for each segment: `text` has no terminator and no
    surrounding whitespace (any mix of CR, LF, spaces and tabs between segments is read),
    `line` is the 1-based line where the segment starts (counting LFs).
    Syntax warnings (BOM, newline terminators, short ISA) collect in `issues`, and so does
    the error for a segment over MAX_SEGMENT characters, which is skipped unread.
    """

    def __init__(self, source: str | os.PathLike | bytes | BinaryIO, filename: str | None = None):
        self.issues = IssueList()
        self.delimiters: Delimiters | None = None
        self._owned = False
        if isinstance(source, (bytes, bytearray)):
            self._stream: BinaryIO = io.BytesIO(source)
            self.filename = filename or "<bytes>"
        elif isinstance(source, (str, os.PathLike)):
            self._stream = open(source, "rb")
            self._owned = True
            self.filename = filename or os.fspath(source)
        else:
            self._stream = source
            self.filename = filename or getattr(source, "name", None) or "<stream>"
            if not isinstance(self.filename, str):
                self.filename = "<stream>"

    def close(self) -> None:
        if self._owned:
            self._stream.close()

    def __enter__(self) -> "SegmentReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _chunks(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        read = self._stream.read
        while True:
            raw = read(CHUNK)
            if not raw:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
                return
            yield decoder.decode(raw)

    def _warn(self, code: str, message: str, line: int, index: int, seg: str = "") -> None:
        self.issues.append(
            Issue(code, message, Position(self.filename, line, index, None, seg), Severity.WARNING)
        )

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for texts, lines in self.batches():
            yield from zip(texts, lines)

    def batches(self) -> Iterator[tuple[list[str], list[int]]]:
        """Yield segments in batches (one per chunk read): parallel lists of texts and lines."""
        chunks = self._chunks()
        buf = self._fill("", chunks)
        line = 1
        if buf.startswith("\ufeff"):
            buf = buf[1:]
            self._warn("SYN-BOM", "leading UTF-8 byte order mark ignored", 1, 0)
        stripped = buf.lstrip(_WS)
        if len(stripped) != len(buf):
            line += buf.count("\n", 0, len(buf) - len(stripped))
            if stripped:
                self._warn("SYN-LEADING-WS", "leading whitespace before ISA ignored", line, 0)
            buf = stripped
        if not buf:
            raise InterchangeError("file is empty", Position(self.filename, line, 0))
        index = 0
        while buf:
            term = self._start_interchange(buf, line, index + 1).segment
            restart = False
            while not restart:
                texts: list[str] = []
                lines: list[int] = []
                big = len(buf) > MAX_SEGMENT  # (then it may hold a segment over the limit)
                uniform = _split_uniform(buf, term) if term != "\n" else None
                if uniform is not None and not (big and max(map(len, uniform[0])) > MAX_SEGMENT):
                    texts, buf, step = uniform
                    k = len(texts)
                    lines = list(range(line, line + k * step, step)) if step else [line] * k
                    line += k * step
                    index += k
                    parts = []
                else:
                    parts = buf.split(term)
                    tail = parts.pop()
                    if term != "\n" and buf.find("\n", 0, len(buf) - len(tail)) < 0:
                        # All on one line (bare CRs, blanks): stripped at C speed, unless the loop is needed
                        texts = list(filter(None, map(str.strip, parts, repeat(_WS))))
                        if any(map(str.startswith, texts, repeat("ISA"))) \
                                or big and texts and max(map(len, texts)) > MAX_SEGMENT:
                            texts = []
                        else:
                            lines = [line] * len(texts)
                            index += len(texts)
                            parts = []
                    buf = tail
                for k, part in enumerate(parts):
                    nl = part.count("\n")
                    if nl and term != "\n":
                        lead = len(part) - len(part.lstrip(_WS))
                        seg_line = line + part.count("\n", 0, lead)
                        text = part.strip(_WS)
                    else:
                        seg_line = line
                        text = part.strip(_WS) if part and (part[0] in _WS or part[-1] in _WS) else part
                    line += nl + (term == "\n")
                    if not text:
                        continue
                    if big and len(text) > MAX_SEGMENT:
                        self._too_long(text, seg_line, index + 1)
                        continue
                    if text[:3] == "ISA" and index and self._delimiters_change(self._isa_head(text, parts, k, buf)):
                        buf = term.join(parts[k:]) + term + buf
                        buf = buf.lstrip(_WS)
                        line = seg_line
                        restart = True
                        break
                    index += 1
                    texts.append(text)
                    lines.append(seg_line)
                if texts:
                    yield texts, lines
                if restart:
                    break
                if len(buf) > MAX_SEGMENT and term not in buf:  # an unfinished segment over the limit
                    head = buf.lstrip(_WS)
                    line += buf.count("\n", 0, len(buf) - len(head))
                    buf = head
                    if len(head) > MAX_SEGMENT:
                        self._too_long(head, line, index + 1)
                        buf, line = self._skip_segment(chunks, term, line + head.count("\n"))
                        if buf is None:
                            return
                        continue
                more = next(chunks, None)
                head = buf.lstrip(_WS)
                if head[:3] == "ISA" and (len(head) > ISA_LENGTH + 2 or more is None) and index \
                        and self._delimiters_change(head):
                    line += buf.count("\n", 0, len(buf) - len(head))
                    buf = head + (more or "")
                    break
                if more is None:
                    if term in buf:  # whole segments left (after the fast path): read them like any others
                        continue
                    tail = buf.strip(_WS)
                    if tail:
                        line += buf.count("\n", 0, len(buf) - len(buf.lstrip(_WS)))
                        index += 1
                        self._warn("SYN-NO-TERMINATOR", "last segment has no terminator", line, index)
                        yield [tail], [line]
                    return
                buf += more
            buf = self._fill(buf, chunks)

    def _too_long(self, text: str, line: int, index: int) -> None:
        end = text.find(self.delimiters.element, 0, 4)
        seg_id = text[:end if end >= 0 else 3]
        self.issues.append(Issue(
            "SEG-TOO-LONG", f"segment is longer than {MAX_SEGMENT} characters; skipped unread",
            Position(self.filename, line, index, None, seg_id), Severity.ERROR))

    @staticmethod
    def _skip_segment(chunks: Iterator[str], term: str, line: int) -> tuple[str | None, int]:
        """Read on, holding one chunk at a time, past the next terminator: what follows it (None when the
        input ends first) and the line there."""
        for more in chunks:
            at = more.find(term)
            if at >= 0:
                return more[at + 1:], line + more.count("\n", 0, at + 1)
            line += more.count("\n")
        return None, line

    def _isa_head(self, text: str, parts: list[str], k: int, rest: str) -> str:
        """The ISA `text` at parts[k] with what follows it, as far as a whole ISA reaches: when the new
        interchange's element separator is the current terminator, its ISA was split into parts."""
        term = self.delimiters.segment
        after = parts[k + 1:k + 17]
        head = term.join([text, *after])
        return head + term + rest[:ISA_LENGTH] if len(after) < 16 else head

    @staticmethod
    def _fill(buf: str, chunks: Iterator[str]) -> str:
        while len(buf) < 4096:
            more = next(chunks, None)
            if more is None:
                break
            buf += more
        return buf

    def _start_interchange(self, buf: str, line: int, index: int) -> Delimiters:
        delims, isa_len = Delimiters.from_isa(buf, Position(self.filename, line, index, None, "ISA"))
        if delims.segment == "\n" and (self.delimiters is None or self.delimiters.segment != "\n"):
            self._warn("SYN-NEWLINE-TERMINATOR",
                       "segments are terminated by newlines, not a terminator character",
                       line, index, "ISA")
        expected = ISA_LENGTH + (buf[isa_len - 2 : isa_len] == "\r\n")
        if isa_len != expected:
            self.issues.append(Issue(
                "ENV-ISA-LENGTH",
                f"ISA is {isa_len - (expected - ISA_LENGTH)} characters long; the standard fixes it at {ISA_LENGTH}",
                Position(self.filename, line, index, None, "ISA"), Severity.ERROR))
        self.delimiters = delims
        return delims

    def _delimiters_change(self, isa: str) -> bool:
        """Whether the interchange starting at `isa` uses other delimiters than the current one."""
        try:
            new, _ = Delimiters.from_isa(isa)
        except InterchangeError:
            return False
        cur = self.delimiters
        return (new.element, new.component, new.segment) != (cur.element, cur.component, cur.segment)


def _split_uniform(buf: str, term: str) -> tuple[list[str], str, int] | None:
    """The fast path: `buf` split at its separators when they are all alike (the terminator, then the same
    whitespace as after the first one: none, a line break, an indent...) and no segment has whitespace at
    either end, a line break or terminator inside, is empty, or is an ISA. Returns the segments, the rest
    after the last separator and the line breaks per separator; None when `buf` needs the general path."""
    t = buf.find(term)
    n = len(buf)
    if t < 0 or buf[0] in _WS:
        return None
    j = t + 1
    while j < n and buf[j] in _WS and buf[j] != term:
        j += 1
    if j == n:
        return None
    sep = buf[t:j]
    parts = buf.split(sep)
    rest = parts.pop()
    k = len(parts)
    used = n - len(rest)
    if buf.count(term, 0, used) != k:
        return None
    for c in "\n\r\t\x0b\x0c":
        if c != term and (buf.count(c, 0, used) != k * sep.count(c) if c in sep else buf.find(c, 0, used) >= 0):
            return None
    if "" in parts or buf.find(sep + " ", 0, used) >= 0 or buf.find(" " + sep, 0, used) >= 0 \
            or buf.find(sep + "ISA", 0, used) >= 0:
        return None
    return parts, rest, sep.count("\n")


def reader_text(text: str, upper_ids: bool = False) -> str:
    """The text as SegmentReader reads it, for a walker of the raw text: the whitespace around each segment
    left out but for its line breaks (so lines and positions hold), and with `upper_ids` every segment
    identifier upper-cased. Text that does not start with a readable ISA is returned as it is."""
    start = len(text) - len(text.lstrip("\ufeff" + _WS))
    try:
        d, _ = Delimiters.from_isa(text[start:start + 4096])
    except InterchangeError:
        return text
    parts = text.split(d.segment)
    carry = 0  # line breaks between a segment's text and its terminator, moved after the terminator
    for k, part in enumerate(parts):
        body = part.lstrip(_WS) if k else part[start:]  # (before the ISA: left as it is)
        if not body.strip(_WS):  # no segment: left as it is
            parts[k] = "\n" * carry + part
            carry = 0
            continue
        lead = "\n" * (carry + part.count("\n", 0, len(part) - len(body))) if k else part[:start]
        if body[:3] != "ISA":  # (ISA16 may be a blank)
            text_end = len(body.rstrip(_WS))
            carry = body.count("\n", text_end)
            body = body[:text_end]
        else:
            carry = 0
        end = body.find(d.element)
        head = body[:end if end >= 0 else len(body)]
        if upper_ids and head and not head.isupper():
            body = head.upper() + body[len(head):]
        parts[k] = lead + body
    return d.segment.join(parts) + "\n" * carry
