"""The one TR3 validator protocol, and its backends: the pyx12 reference walk and the compiled walk."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edi_pipeline.tr3.reference import Tr3Result


class SetValidator(Protocol):
    """Validates X12 text against the TR3 maps: every issue found, and one 999 per functional group.

    Backends are interchangeable: the same input gives the same issues (codes, positions, messages,
    values, in order) and byte-identical 999s. Never raises: unreadable input gives an ENV-* issue.
    """

    name: str

    def validate(self, text: str, filename: str | None = None, *,
                 now: datetime | None = None) -> Tr3Result: ...


def backends() -> dict[str, SetValidator]:
    """Every backend by name; "reference" (pyx12 itself, slow) is the oracle the others are held to."""
    from edi_pipeline.tr3.compiled import COMPILED
    from edi_pipeline.tr3.reference import REFERENCE

    return {b.name: b for b in (REFERENCE, COMPILED)}
