"""One segment with its delimiters: elements and components read and set by reference designator.

A `Segment` is built on demand from a segment's text (no terminator) by code that inspects or edits it;
the reader never builds one. `seg["SV101-2"]` is the second component of SV1's first element, `seg["CLM05"]`
a whole element, `seg[4]` element 4; a missing element or component reads as "". Assignment pads with
empty elements or components as needed, and `text` joins the segment again: parsing and joining an
unedited segment gives its text back byte for byte. Repetitions are not split (no 837P or 835 element
this package edits repeats).
"""

from __future__ import annotations

import functools
import re

from edi_pipeline.x12.reader import Delimiters

_DESIGNATOR = re.compile(r"([A-Z][A-Z0-9]{1,2})(\d{2})(?:-(\d{1,2}))?")


@functools.lru_cache(maxsize=256)
def designator(ref: str) -> tuple[str, int, int | None]:
    """"SV101-2" -> ("SV1", 1, 2); "CLM05" -> ("CLM", 5, None). ValueError for anything else."""
    m = _DESIGNATOR.fullmatch(ref)
    if m is None or int(m[2]) == 0 or (m[3] is not None and int(m[3]) == 0):
        raise ValueError(f"not a reference designator: {ref!r}")
    return m[1], int(m[2]), None if m[3] is None else int(m[3])


class Segment:
    """A segment's elements (element 0 is its identifier) and the delimiters it was written with."""

    __slots__ = ("elements", "delimiters")

    def __init__(self, text: str, delimiters: Delimiters):
        self.elements = text.split(delimiters.element)
        self.delimiters = delimiters

    @classmethod
    def of(cls, seg_id: str, *values: str, delimiters: Delimiters) -> "Segment":
        """A new segment from its identifier and element values."""
        return cls(delimiters.element.join((seg_id, *values)), delimiters)

    @property
    def id(self) -> str:
        return self.elements[0]

    @property
    def text(self) -> str:
        return self.delimiters.element.join(self.elements)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:  # the identifier only: element values may be PHI
        return f"Segment({self.id!r}, {len(self.elements) - 1} elements)"

    def __len__(self) -> int:
        """The number of elements, the identifier not counted."""
        return len(self.elements) - 1

    def _where(self, key: int | str) -> tuple[int, int | None]:
        if isinstance(key, int):
            if key < 1:
                raise IndexError(f"element {key}: elements are numbered from 1")
            return key, None
        seg_id, element, component = designator(key)
        if seg_id != self.elements[0]:
            raise KeyError(f"{key} does not name an element of {self.elements[0][:3]!r}")
        return element, component

    def components(self, key: int | str) -> list[str]:
        """An element's components (one, the element itself, when it has no component separator)."""
        element, component = self._where(key)
        if component is not None:
            raise KeyError(f"{key} names a component, not an element")
        value = self.elements[element] if element < len(self.elements) else ""
        return value.split(self.delimiters.component)

    def set_components(self, key: int | str, parts: list[str]) -> None:
        """Set an element from its components."""
        element, component = self._where(key)
        if component is not None:
            raise KeyError(f"{key} names a component, not an element")
        self[element] = self.delimiters.component.join(parts)

    def __getitem__(self, key: int | str) -> str:
        element, component = self._where(key)
        if element >= len(self.elements):
            return ""
        value = self.elements[element]
        if component is None:
            return value
        parts = value.split(self.delimiters.component)
        return parts[component - 1] if component <= len(parts) else ""

    def __setitem__(self, key: int | str, value: str) -> None:
        element, component = self._where(key)
        e = self.elements
        if element >= len(e):
            e.extend([""] * (element + 1 - len(e)))
        if component is None:
            e[element] = value
            return
        parts = e[element].split(self.delimiters.component)
        if component > len(parts):
            parts.extend([""] * (component - len(parts)))
        parts[component - 1] = value
        e[element] = self.delimiters.component.join(parts)


__all__ = ["Segment", "designator"]
