"""The transaction registry: each transaction type we read declares itself once, and every consumer (the
typed reader, validate, scrub, ingest, the batch screen, the store's kind labels) asks here.

A type names its ST01, the GS01 of its group, the version label it is read as (and the labels read as it,
X222A2 -> X222A1), its parser, its own checks (function names in validate.checks, which sits above this
layer), its TR3 map and its `Kind`: the text the store keeps in files.kind and interchanges.kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from edi_pipeline.core.errors import IssueList
from edi_pipeline.tx.parse_277ca import parse_277ca
from edi_pipeline.tx.parse_835 import parse_835, parse_835_header
from edi_pipeline.tx.parse_837p import parse_837p
from edi_pipeline.tx.parse_999 import parse_999
from edi_pipeline.x12.envelope import Transaction

__all__ = ["Kind", "TxType", "REGISTRY", "lookup", "kind_of", "of_kind", "kinds_of", "kind_label", "st01_codes",
           "version_aliases"]


class Kind(enum.StrEnum):
    """What a transaction set (or the TA1 interchange acknowledgment) is; its value is the text the store
    keeps, and it compares and hashes as that text."""

    CLAIM_837P = "837P"
    REMIT_835 = "835"
    ACK_999 = "999"
    CLAIM_ACK_277CA = "277CA"
    TA1 = "TA1"  # an interchange segment, not a set: no parser, never in a transaction


def _records_835(tx: Transaction, issues: IssueList) -> Iterator:
    header = parse_835_header(tx, issues)
    yield header
    yield from parse_835(tx, header, issues)


@dataclass(frozen=True, slots=True)
class TxType:
    kind: Kind
    st01: str
    gs01: str
    version: str  # the label the type is read as (ST03, else GS08)
    family: str | None  # a label prefix ST01 alone does not settle (837: X222 professional, X223 institutional)
    aliases: tuple[str, ...]  # other labels read as `version`
    parse: Callable[[Transaction, IssueList], Iterator]
    checks: tuple[str, ...]  # names of its own checks in validate.checks, each taking (records, issues)
    tr3_map: str  # the pyx12 map that validates it

    def accepts(self, tx: Transaction) -> bool:
        return tx.set_id == self.st01 and (self.family is None or tx.version.startswith(self.family))

    def relabelled(self, tx: Transaction) -> bool:
        """Whether a set of this type carries a label of its family other than `version` (read as it, with a
        warning: 837P labelled X222A2)."""
        return self.family is not None and tx.version != self.version


REGISTRY: tuple[TxType, ...] = (
    TxType(Kind.CLAIM_837P, "837", "HC", "005010X222A1", "005010X222", ("005010X222A2", "005010X222"),
           parse_837p, ("check_837p_set",), "837.5010.X222.A1.xml"),
    TxType(Kind.REMIT_835, "835", "HP", "005010X221A1", None, ("005010X221",),
           _records_835, ("check_835_set",), "835.5010.X221.A1.xml"),
    TxType(Kind.ACK_999, "999", "FA", "005010X231A1", None, (), parse_999, (), "999.5010X231.A1.xml"),
    TxType(Kind.CLAIM_ACK_277CA, "277", "HN", "005010X214", "005010X214", (), parse_277ca, (),
           "277.5010.X214.xml"),
)
_BY_ST01: dict[str, tuple[TxType, ...]] = {}
for _t in REGISTRY:
    _BY_ST01[_t.st01] = _BY_ST01.get(_t.st01, ()) + (_t,)
_BY_KIND = {t.kind: t for t in REGISTRY}


def lookup(tx: Transaction) -> TxType | None:
    """The registered type of a transaction set, None for one we do not read (an 837I, a 270)."""
    for t in _BY_ST01.get(tx.set_id, ()):
        if t.accepts(tx):
            return t
    return None


def kind_of(tx: Transaction) -> Kind | None:
    """The Kind of a transaction set, None for one we do not read."""
    tt = lookup(tx)
    return tt.kind if tt is not None else None


def of_kind(kind: Kind) -> TxType:
    return _BY_KIND[kind]


def st01_codes() -> tuple[str, ...]:
    """Every registered ST01, for the batch's byte screen."""
    return tuple(_BY_ST01)


def version_aliases() -> dict[str, str]:
    """Version labels no TR3 map carries -> the label of the map that covers them."""
    return {a: t.version for t in REGISTRY for a in t.aliases}


def kinds_of(label: str | None) -> set[Kind]:
    """The kinds a files.kind / interchanges.kind value holds: '837P', '835', '837P+835', '999', '277CA',
    or '837', scrub's label in stores written before it said '837P'."""
    out = set()
    for part in (label or "").split("+"):
        part = "837P" if part == "837" else part
        try:
            out.add(Kind(part))
        except ValueError:
            pass
    return out


def kind_label(kinds: Iterable[Kind]) -> str:
    """The stored text for a set of kinds, in registry order ('837P', '835', '837P+835', ...)."""
    kinds = set(kinds)
    return "+".join(k.value for k in Kind if k in kinds)
