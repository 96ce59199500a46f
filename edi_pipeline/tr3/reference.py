"""Validate X12 text against pyx12's implementation-guide (TR3) maps and build 999 acknowledgments."""

from __future__ import annotations

import io
import itertools
import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import pyx12.map_if
import pyx12.map_index
import pyx12.params
import pyx12.x12file
from pyx12.map_walker import apply_walk_errors, walk_tree

from edi_pipeline.x12.envelope import ack_element, reply_isa
from edi_pipeline.tx.registry import Kind, of_kind, version_aliases
from edi_pipeline.x12.isa import Isa
from edi_pipeline.core.errors import KNOWN_SEGMENT_IDS, PHI_SEGMENTS, Issue, Position, Severity

__all__ = ["GroupAck", "Tr3Result", "validate_tr3", "ta1_text", "REFERENCE"]

# pyx12 logs every error it finds; a library must stay quiet.
logging.getLogger("pyx12").addHandler(logging.NullHandler())


@dataclass
class GroupAck:
    """The 999 for one functional group (GS/GE)."""

    group_control_number: str
    transaction_type: str  # "837", "835", ...
    accepted: bool  # AK901 is A or E
    ack_text: str  # full 999 interchange, ISA..IEA, numbered 1, 2, ... within its file (see numbered)
    interchange_control_number: str = ""  # ISA13 of the acknowledged group
    rejected_sets: tuple[str, ...] = ()  # ST02 of each set this 999 rejects (every set when AK901 is R)
    interchange_index: int = 0  # file segment index of the acknowledged group's ISA

    def numbered(self, control: int) -> str:
        """ack_text as the interchange to send: `control` as its ISA13/IEA02 and GS06/GE02 (a receiver
        rejects an interchange whose control number it has seen before from the same sender)."""
        segs = self.ack_text.split("~\n")
        isa, gs, ge, iea = (segs[k].split("*") for k in (0, 1, -3, -2))
        isa[13] = iea[2] = f"{control:09d}"
        gs[6] = ge[2] = str(control)
        segs[0], segs[1], segs[-3], segs[-2] = (("*".join(x) for x in (isa, gs, ge, iea)))
        return "~\n".join(segs)


@dataclass
class Tr3Result:
    issues: list[Issue]
    groups: list[GroupAck]
    # what `groups` are built from: each group's state, the set a file segment index lies in, the 999 date
    raw_groups: list["_Group"] = field(default_factory=list)
    locate: Callable[[int], "_St | None"] = lambda index: None
    now: datetime | None = None
    group_at: Callable[[int], "_Group | None"] = lambda index: None  # the group open at a segment index

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    def reject_for(self, findings: Iterable[Issue]) -> None:
        """Make the 999s reject each set the TR3 accepted but a check of another kind (balancing, NPI, code
        lists, the parsers) finds an error in: each such error becomes an IK3/IK4 of the set, or an IK5-5
        when it names no element. A set the TR3 already rejects keeps its 999 as it is. A GE the reader
        found missing or wrong (ENV-GE*) rejects its group with the AK9 code pyx12 gives it."""
        accepted: dict[int, bool] = {}
        for issue in findings:
            if issue.severity is not Severity.ERROR:
                continue
            if issue.code in _GROUP_FINDINGS:  # the reader's GE checks, where the walk made the GE
                grp = self.group_at(issue.pos.segment_index - (issue.code == "ENV-GE-MISSING"))
                bare = _GROUP_FINDINGS[issue.code]
                if grp is not None and not any(e.level == "gs" and e.code == bare for e in grp.errs):
                    grp.errs.append(_Err(issue, "gs", bare))
                    accepted[id(grp)] = True
                continue
            st = self.locate(issue.pos.segment_index)
            if st is None:
                continue
            if accepted.setdefault(id(st), not any(e.issue.severity is Severity.ERROR for e in st.errs)):
                st.errs.append(_finding_err(issue))
        if any(accepted.values()):
            self.groups = group_acks(self.raw_groups, self.now or datetime.now(timezone.utc))


# ---------------------------------------------------------------- constants

_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)  # ISA01..ISA16
# Version labels pyx12 has no map for, and the map that covers them (the registry's aliases).
_VERSION_ALIASES = version_aliases()
_837P, _835 = of_kind(Kind.CLAIM_837P), of_kind(Kind.REMIT_835)  # the sets TR3 validation targets
_ENVELOPE_IDS = {"ISA", "IEA", "GS", "GE"}
HEADER_OF = {"SE": "ST", "GE": "GS", "IEA": "ISA"}

_IK3_TEXT = {
    "1": "unrecognized segment ID",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
}
_IK4_TEXT = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "13": "too many components",
}
_IK5_TEXT = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "transaction set control number in header and trailer do not match",
    "4": "number of included segments does not match actual count",
    "5": "one or more segments in error",
    "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number",
    "23": "transaction set control number not unique within the functional group",
}
_AK9_TEXT = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer missing",
    "4": "group control number in header and trailer do not agree",
    "5": "number of included transaction sets does not match actual count",
    "6": "group control number violates syntax or is not unique",
}
_TA1_TEXT = {
    "001": "interchange control numbers in header and trailer do not match",
    "021": "invalid number of included groups value",
    "023": "improper (premature) end-of-file",
    "024": "invalid interchange content",
    "025": "duplicate interchange control number",
}
# pyx12 reader-only segment codes, reported as IK3-8 with these messages.
_READER_SEG_TEXT = {
    "HL1": ("HL01", "HL01 hierarchical ID out of sequence"),
    "HL2": ("HL02", "HL02 parent ID does not refer to an earlier HL"),
    "LX": ("LX01", "LX01 service line number out of sequence"),
    "SEG1": (None, "segment has trailing element separators"),
}
_ISA_ELE_TA1 = {1: "010", 2: "011", 3: "012", 4: "013", 5: "005", 6: "006", 7: "007",
                8: "008", 9: "014", 10: "015", 11: "016", 12: "017", 13: "018",
                14: "019", 15: "020", 16: "027"}


# ---------------------------------------------------------------- lexing


@dataclass(slots=True)
class Seg:
    text: str  # as given to pyx12 (normalised copy)
    seg_id: str
    line: int  # in the original text
    st_pos: int | None = None
    group: int | None = None  # index into Run.groups
    st: int | None = None  # index into _Group.sts


@dataclass(slots=True)
class EleRef:
    """Stands in for a map element node when pyx12 gives only a position."""

    seq: int
    name: str
    data_ele: str | None
    data_type: str | None = None
    parent: Any = None


@dataclass(slots=True)
class _Delims:
    ele: str
    comp: str
    term: str


def _detect(text: str, start: int) -> tuple[_Delims, int] | None:
    """Delimiters of the ISA at `start` and the index of its terminator."""
    if text[start:start + 3] != "ISA" or len(text) < start + 6:
        return None
    ele = text[start + 3]
    if ele.isalnum() or ele.isspace():
        return None
    pos = start + 3
    for _ in range(15):
        pos = text.find(ele, pos + 1)
        if pos < 0:
            return None
    if pos + 2 >= len(text):
        return None
    comp, term = text[pos + 1], text[pos + 2]
    if term == ele or term.isalnum() or term == " " or comp in (ele, term) or comp.isalnum():
        return None
    return _Delims(ele, comp, term), pos + 2


def ascii_text(s: str, forbidden: str) -> tuple[str, bool]:
    """Replace each non-ASCII character by one ASCII character."""
    if s.isascii():
        return s, False
    out = []
    for ch in s:
        if ch.isascii():
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        rep = base[:1] if base[:1] and base[:1] not in forbidden else "?"
        out.append(rep if rep not in forbidden else " ")
    return "".join(out), True


def _normalise_isa(text: str, d: _Delims) -> str:
    parts = text.split(d.ele)[1:]
    parts = (parts + [""] * 16)[:16]
    fixed = []
    for i, (val, width) in enumerate(zip(parts, _ISA_WIDTHS)):
        if i == 12:  # ISA13 control number is numeric
            val = val.strip().zfill(width)
        fixed.append(val[:width].ljust(width))
    if fixed[15] == " ":
        fixed[15] = d.comp
    return d.ele.join(["ISA", *fixed])


# ---------------------------------------------------------------- run state


# Findings held per run (a file, or a set validated alone); past it they are only counted. A set of a
# million segments each in error would otherwise hold a gigabyte of findings.
MAX_FINDINGS = 10_000


@dataclass(slots=True)
class _Err:
    """One issue plus what the 999 needs to report it."""

    issue: Issue
    level: str  # "seg", "ele", "st", "gs", "isa", "env"
    code: str  # bare X12 code (IK304 / IK403 / IK502 / AK905 / TA105)
    seg_id: str = ""
    st_pos: int | None = None
    loop: str | None = None
    ele_pos: int | None = None
    sub_pos: int | None = None
    data_ele: str | None = None
    value: str | None = None
    group: int | None = None
    st: int | None = None


@dataclass
class _St:
    st01: str
    st02: str
    st03: str
    errs: list[_Err] = field(default_factory=list)
    index: int = 0  # segment index of the ST


@dataclass
class _Group:
    isa: list[str]
    gs: list[str]  # original elements, GS at index 0
    sts: list[_St] = field(default_factory=list)
    errs: list[_Err] = field(default_factory=list)
    ge01: str | None = None
    validated: bool = True
    isa_index: int = 0  # file segment index of the group's ISA (tells apart interchanges sharing an ISA13)


def _loop_id(node: Any) -> str | None:
    """Closest implementation-guide loop id (2300, 1000A) above a map node."""
    while node is not None:
        try:
            if node.is_loop() and node.id[:1].isdigit():
                return node.id
        except Exception:
            return None
        node = getattr(node, "parent", None)
    return None


def _children(node: Any) -> list[Any]:
    pos_map = getattr(node, "pos_map", None)
    if pos_map is not None:  # root and loops keep children by position
        return [n for key in sorted(pos_map) for n in pos_map[key]]
    return list(getattr(node, "children", None) or [])


def _seg_ids(node: Any, out: set[str]) -> set[str]:
    for child in _children(node):
        if child.is_segment():
            out.add(child.id)
        elif child.is_loop():
            _seg_ids(child, out)
    return out


def _candidates(node: Any, seg_id: str) -> list[Any]:
    """Map segments with this id that could follow `node`: in its loop, an
    enclosing loop, or starting a child loop of either."""
    out = []
    loop = node if node.is_loop() else node.parent
    while loop is not None and not loop.is_map_root():
        if loop.is_loop():
            for child in _children(loop):
                if child.is_segment() and child.id == seg_id:
                    out.append(child)
                elif child.is_loop():
                    first = next(iter(_children(child)), None)
                    if first is not None and first.is_segment() and first.id == seg_id:
                        out.append(first)
        loop = loop.parent
    return out


def element_position(refdes: Any) -> int | None:
    """Element position from a pyx12 refdes ("CLM05", "05", 5)."""
    if isinstance(refdes, int):
        return refdes
    digits = str(refdes or "").split("-")[0][-2:]
    return int(digits) if digits.isdigit() else None


_MAPS: dict[str, Any] = {}
_SEG_IDS: dict[str, set[str]] = {}


def _load_map(name: str) -> Any:
    if name not in _MAPS:
        _MAPS[name] = pyx12.map_if.load_map_file(name, pyx12.params.params())
        _SEG_IDS[name] = _seg_ids(_MAPS[name], set())
    return _MAPS[name]


class _Feed:
    """Hands pyx12's reader our segments one at a time, remembering which."""

    def __init__(self, segs: list[Seg], run: "Run", reader: Any):
        self.segs = segs
        self.run, self.reader = run, reader
        self.index = 0  # 1-based index of the segment last handed out
        self._it = self._gen()

    def _gen(self):
        for i, seg in enumerate(self.segs):
            self.index = i + 1
            header = HEADER_OF.get(seg.seg_id)
            if header and header not in (kind for kind, _ in self.reader.loops):
                # pyx12 raises IndexError on a trailer with no open header
                self.run.add("ENV-ORPHAN-TRAILER", f"{seg.seg_id} without a matching header",
                             self.run.pos(self.index))
                continue
            yield seg.text

    def __iter__(self):
        return self._it


class Run:
    """Drives pyx12 over one text and acts as its error handler."""

    def __init__(self, filename: str | None):
        self.file = filename
        self.errs: list[_Err] = []
        self.dropped = [0, 0]  # findings past MAX_FINDINGS: [others, errors]
        self.dropped_at: Seg | None = None  # the segment of the first of them
        self._seen: set[tuple] = set()
        self.segs: list[Seg] = []
        self.groups: list[_Group] = []
        self.delims: _Delims | None = None
        # error-handler cursor
        self.cur_index = 0
        self.cur_seg_id = ""
        self.cur_loop: str | None = None
        self.cur_ele: Any = None
        self.phase = "reader"
        self.map_name: str | None = None
        self._cur_map_node: Any = None

    # ---- positions and issues

    def set_at(self, index: int) -> "_St | None":
        """The transaction set holding segment `index`, if any."""
        if 1 <= index <= len(self.segs):
            seg = self.segs[index - 1]
            if seg.group is not None and seg.st is not None:
                return self.groups[seg.group].sts[seg.st]
        return None

    def group_at(self, index: int) -> "_Group | None":
        """The functional group holding segment `index`, if any."""
        if 1 <= index <= len(self.segs) and self.segs[index - 1].group is not None:
            return self.groups[self.segs[index - 1].group]
        return None

    def known_segment_ids(self) -> set[str] | frozenset[str]:
        """The segment ids the current group's map knows (empty before a map is loaded)."""
        return _SEG_IDS.get(self.map_name or "", frozenset())

    def pos(self, index: int, seg_id: str | None = None, loop: str | None = None,
            element: str | None = None) -> Position:
        if 1 <= index <= len(self.segs):
            s = self.segs[index - 1]
            return Position(self.file, s.line, index, s.st_pos, seg_id or s.seg_id, loop, element)
        return Position(self.file, 0, index, None, seg_id or "", loop, element)

    def add(self, code: str, message: str, pos: Position, severity: Severity = Severity.ERROR,
            value: str | None = None, **kw: Any) -> _Err | None:
        level = kw.pop("level", "env")
        bare = kw.pop("bare", "")
        key = (code, pos.segment_index, pos.segment_id, pos.element)
        if key in self._seen:  # pyx12 often reports one defect twice (walker and reader)
            return None
        idx = pos.segment_index
        if len(self.errs) >= MAX_FINDINGS:  # a flood: count the rest, hold none (see flood_note)
            if not self.dropped[0] + self.dropped[1] and 1 <= idx <= len(self.segs):
                self.dropped_at = self.segs[idx - 1]
            self.dropped[severity is Severity.ERROR] += 1
            return None
        self._seen.add(key)
        err = _Err(Issue(code, message, pos, severity, value), level, bare, **kw)
        if 1 <= idx <= len(self.segs) and err.group is None:
            err.group, err.st = self.segs[idx - 1].group, self.segs[idx - 1].st
        self.errs.append(err)
        if err.group is not None and err.level != "env":
            grp = self.groups[err.group]
            if err.st is not None and err.level in ("seg", "ele", "st"):
                grp.sts[err.st].errs.append(err)
            else:
                grp.errs.append(err)
        return err

    def flood_note(self) -> None:
        """One finding at the ST of the set where findings past MAX_FINDINGS were dropped, counting
        them; an error (and the set rejected) when any of them was."""
        errors, others = self.dropped[1], self.dropped[0]
        if not errors + others:
            return
        at = self.dropped_at
        st = self.groups[at.group].sts[at.st] if at is not None and at.group is not None and at.st is not None \
            else None
        pos = self.pos(st.index) if st is not None else Position(self.file)
        issue = Issue("ENV-TOO-MANY", f"{errors + others} more findings ({errors} errors) after the first "
                      f"{MAX_FINDINGS} are not listed", pos, Severity.ERROR if errors else Severity.WARNING)
        err = _Err(issue, "st" if errors and st is not None else "env", "5")
        self.errs.append(err)
        if err.level == "st":
            st.errs.append(err)

    # ---- pyx12 error-handler interface (see pyx12.error_handler.err_handler)

    def add_seg(self, map_node: Any, seg_data: Any, seg_count: int, cur_line: int,
                ls_id: str | None) -> None:
        self.cur_index = cur_line or self.cur_index
        self.cur_seg_id = seg_data.get_seg_id() or ""
        self.cur_loop = map_node.id if map_node is not None and map_node.is_loop() else _loop_id(map_node)
        self._cur_map_node = map_node

    def add_ele(self, map_node: Any) -> None:
        self.cur_ele = map_node

    def handle_errors(self, err_list: list[tuple]) -> None:
        for kind, code, err_str, _value, _line in err_list:
            if kind == "isa":
                text = _TA1_TEXT.get(code, "interchange envelope error")
                self.add(f"TA1-{code}", text, self.pos(self.cur_index), level="isa", bare=code)
            elif kind == "gs":
                text = _AK9_TEXT.get(code, "functional group envelope error")
                self.add(f"AK9-{code}", text, self.pos(self.cur_index), level="gs", bare=code)
            elif kind == "st":
                text = _IK5_TEXT.get(code, "transaction set envelope error")
                self.add(f"IK5-{code}", text, self.pos(self.cur_index), level="st", bare=code)
            elif kind == "seg":
                self.seg_error(code, err_str)

    def isa_error(self, err_cde: str, err_str: str) -> None:
        self.handle_errors([("isa", err_cde, err_str, None, None)])

    def gs_error(self, err_cde: str, err_str: str) -> None:
        self.handle_errors([("gs", err_cde, err_str, None, None)])

    def st_error(self, err_cde: str, err_str: str) -> None:
        self.handle_errors([("st", err_cde, err_str, None, None)])

    def seg_error(self, err_cde: str, err_str: str, err_value: str | None = None,
                  src_line: int | None = None) -> None:
        seg_id, loop, index = self.cur_seg_id, self.cur_loop, self.cur_index
        element = None
        severity = Severity.ERROR
        code = err_cde
        if self.phase == "walk":
            node = getattr(self, "_cur_map_node", None)
            if code == "1":  # pyx12: "segment not found" in the map from here
                known = seg_id in self.known_segment_ids()
                code = "2" if known and len(seg_id) in (2, 3) else "1"
                msg = _IK3_TEXT[code]
            elif code == "3" and err_str.startswith("Mandatory loop") and node is not None:
                loop = _loop_id(node.parent) or loop
                msg = f"required loop missing: {node.parent.name} ({loop})"
            elif code in ("3", "5") and node is not None and node.is_segment():
                msg = f"{_IK3_TEXT[code]}: {node.name} ({node.id})"
            elif code == "4" and node is not None:
                msg = f"{_IK3_TEXT[code]}: {node.name} ({node.id})"
            else:
                msg = _IK3_TEXT.get(code, "segment error")
        elif self.phase == "reader":
            if code in _READER_SEG_TEXT:
                element, msg = _READER_SEG_TEXT[code]
                if code == "SEG1":
                    severity = Severity.WARNING
                code = "8"
            elif code == "8":
                msg = "segment is empty"
            elif code == "1":
                msg = "segment identifier is invalid or preceded by spaces"
            else:
                msg = _IK3_TEXT.get(code, "segment error")
        else:  # element-count and syntax-rule errors: pyx12's text names no values
            msg = err_str
            code = "8"
        if seg_id in _ENVELOPE_IDS:
            lvl = "isa" if seg_id in ("ISA", "IEA") else "gs"
            bare = "024" if lvl == "isa" else "1"
            self.add(f"{'TA1' if lvl == 'isa' else 'AK9'}-{bare}", msg,
                     self.pos(index, seg_id, loop, element), severity, level=lvl, bare=bare)
            return
        self.add(f"IK3-{code}", msg, self.pos(index, seg_id, loop, element), severity,
                 level="seg", bare=code, seg_id=seg_id, loop=loop,
                 st_pos=self.pos(index).st_position)

    def ele_error(self, err_cde: str, err_str: str, bad_value: str | None,
                  refdes: str | None = None) -> None:
        node, seg_id, index = self.cur_ele, self.cur_seg_id, self.cur_index
        try:
            if isinstance(node, EleRef):
                ele_pos, sub_pos = node.seq, None
            elif node.parent.is_composite():
                ele_pos, sub_pos = node.parent.seq, node.seq
            else:
                ele_pos, sub_pos = node.seq, None
            name, data_ele, dtype = node.name, node.data_ele, node.data_type
        except Exception:
            ele_pos, sub_pos, name, data_ele, dtype = None, None, "element", None, None
        element = f"{seg_id}{ele_pos:02d}" if ele_pos else None
        if element and sub_pos:
            element += f"-{sub_pos}"
        # only code values (ID type) outside PHI-bearing segments are echoed (message, IK404)
        value = bad_value if dtype == "ID" and bad_value and len(bad_value) <= 30 \
            and seg_id not in PHI_SEGMENTS else None
        msg = f"{_IK4_TEXT.get(err_cde, 'element error')}: {name}"
        if value is not None:
            msg += f" ({value!r})"
        pos = self.pos(index, seg_id, self.cur_loop, element)
        if seg_id in _ENVELOPE_IDS:
            if seg_id in ("ISA", "IEA"):
                bare = _ISA_ELE_TA1.get(ele_pos or 0, "024") if seg_id == "ISA" else \
                    {1: "021", 2: "018"}.get(ele_pos or 0, "024")
                self.add(f"TA1-{bare}", msg, pos, value=value, level="isa", bare=bare)
            else:
                bare = {6: "6", 8: "2"}.get(ele_pos or 0, "1") if seg_id == "GS" else \
                    {2: "6"}.get(ele_pos or 0, "1")
                self.add(f"AK9-{bare}", msg, pos, value=value, level="gs", bare=bare)
            return
        self.add(f"IK4-{err_cde}", msg, pos, value=value, level="ele", bare=err_cde,
                 seg_id=seg_id, loop=self.cur_loop, st_pos=pos.st_position,
                 ele_pos=ele_pos, sub_pos=sub_pos, data_ele=data_ele)

    def interchange_version(self) -> str | None:
        """ISA12 of the first interchange, or None (reported) when it is neither 00401 nor 00501."""
        isa_text = self.segs[0].text
        icvn = isa_text[84:89] if len(isa_text) >= 89 else ""
        if icvn not in ("00401", "00501"):
            self.add("ENV-UNREADABLE", "ISA12 interchange version is not 00401 or 00501",
                     self.pos(1, element="ISA12"))
            return None
        return icvn

    def skip_group(self, index: int, fic: str, vriic: str, state: dict) -> None:
        """A GS with no implementation-guide map: say so and leave its group unvalidated."""
        self.add("ENV-NO-MAP", f"no implementation-guide map for GS01={fic!r} GS08={vriic!r}; group not validated",
                 self.pos(index), Severity.WARNING, level="env")
        grp = self.segs[index - 1].group
        if grp is not None:
            self.groups[grp].validated = False
        state["skip"] = True

    # ---- stage 1: split the original text into segments, build the copy

    def lex(self, text: str) -> bool:
        start = 0
        while start < len(text) and (text[start] == "\ufeff" or text[start].isspace()):
            start += 1
        line0 = text.count("\n", 0, start) + 1
        found = _detect(text, start)
        if found is None:
            where = "no ISA segment at start of input" if text[start:start + 3] != "ISA" \
                else "ISA segment delimiters cannot be determined"
            self.add("ENV-UNREADABLE", where, Position(self.file, line0 if text.strip() else 0, 0, None, text[start:start + 3] if text[start:start + 3].isalnum() else ""))
            return False
        d, isa_end = found
        self.delims = d
        chunks: list[tuple[str, int, bool]] = [(text[start:isa_end], line0, False)]
        line = line0 + text.count("\n", start, isa_end + 1)
        rest = text[isa_end + 1:].split(d.term)
        last = len(rest) - 1
        term_nl = 1 if d.term == "\n" else 0
        for k, raw in enumerate(rest):
            nl = raw.count("\n")
            if nl == 0 and "\r" not in raw:
                body = raw  # the common cases: no line breaks, or exactly one before the segment
                seg_line = line
            elif nl == 1 and raw[0] == "\n" and "\r" not in raw:
                body = raw[1:]
                seg_line = line + 1
            else:
                stripped = raw.lstrip("\r\n")  # pyx12 strips only CR/LF before a segment
                seg_line = line + raw.count("\n", 0, len(raw) - len(stripped))
                body = stripped.rstrip("\r\n")
            line += nl + term_nl
            if not body or body.isspace():
                if raw == "" and k != last and not d.term.isspace():
                    self.add("ENV-EMPTY-SEGMENT", "empty segment (two terminators in a row)",
                             Position(self.file, seg_line, 0), Severity.WARNING)
                continue
            chunks.append((body, seg_line, k == last))
        for body, seg_line, is_last in chunks:
            index = len(self.segs) + 1
            if "\n" in body or "\r" in body:
                body = body.replace("\r", "").replace("\n", "")
                self.add("ENV-LINE-BREAK", "line break inside a segment (ignored)",
                         Position(self.file, seg_line, index), Severity.WARNING)
            seg_id = (body.lstrip(" ") if body[0] == " " else body).split(d.ele, 1)[0]  # pyx12 ignores leading spaces
            body, changed = ascii_text(body, d.ele + d.comp + d.term)
            self.segs.append(Seg(body, seg_id, seg_line))
            if changed:
                self.add("ENV-NON-ASCII", "non-ASCII characters replaced for validation",
                         self.pos(index), Severity.WARNING)
            if is_last:
                self.add("ENV-TRUNCATED", "last segment has no segment terminator",
                         self.pos(index), Severity.WARNING)
        return True

    def prepare(self) -> None:
        """Normalise ISAs, relabel versions pyx12 lacks, number positions."""
        d = self.delims
        assert d is not None
        isa: list[str] = []
        isa_index = 0
        st_pos: int | None = None
        for i, seg in enumerate(self.segs):
            sid = seg.seg_id
            if sid == "ISA":
                isa_index = i + 1
                fixed = _normalise_isa(seg.text, d)
                if fixed != seg.text:
                    self.add("ENV-ISA-LENGTH",
                             "ISA is not 106 characters of fixed-width fields (validated padded)",
                             self.pos(i + 1), level="isa")
                seg.text = fixed
                isa = fixed.split(d.ele)
            elif sid == "GS":
                gs = seg.text.split(d.ele)
                self.groups.append(_Group(isa, gs[:], isa_index=isa_index))
                vriic = gs[8].strip() if len(gs) > 8 else ""
                if vriic in _VERSION_ALIASES:
                    gs[8] = _VERSION_ALIASES[vriic]
                    self.add("ENV-MAP-SUBSTITUTED", f"GS08 {vriic} validated with the {gs[8]} map",
                             self.pos(i + 1, element="GS08"), Severity.INFO)
                st01 = next((s.text.split(d.ele)[1:2] for s in itertools.islice(self.segs, i + 1, None)
                             if s.seg_id in ("ST", "GS")), [])
                st01 = st01[0] if st01 else ""
                if st01 == _835.st01 and len(gs) > 1 and gs[1] != _835.gs01:
                    self.add("ENV-GS01", "GS01 is not HP for an 835 group; validated as HP",
                             self.pos(i + 1, element="GS01"), Severity.WARNING,
                             value=ack_element(gs[1], 2))
                    gs[1] = _835.gs01
                if st01 not in (_837P.st01, _835.st01):
                    self.add("ENV-NOT-837P-835",
                             f"TR3 validation targets 837P/835; this group carries {ack_element(st01, 3) or 'no transaction set'}",
                             self.pos(i + 1), Severity.INFO)
                seg.text = d.ele.join(gs)
            elif sid == "ST":
                st = seg.text.split(d.ele)
                pad = st + [""] * (4 - len(st))
                if self.groups:
                    self.groups[-1].sts.append(_St(pad[1], pad[2], pad[3], index=i + 1))
                if len(st) > 3 and st[3] in _VERSION_ALIASES:
                    st[3] = _VERSION_ALIASES[st[3]]
                    seg.text = d.ele.join(st)
                st_pos = 0
            if sid not in ("ISA", "IEA") and self.groups:
                seg.group = len(self.groups) - 1
                if st_pos is not None and self.groups[-1].sts:
                    seg.st = len(self.groups[-1].sts) - 1
            if sid in ("GE", "IEA"):
                seg.st = None
                if sid == "GE" and self.groups:
                    self.groups[-1].ge01 = (seg.text.split(d.ele) + [""])[1]
                st_pos = None
            if st_pos is not None:
                st_pos += 1
                seg.st_pos = st_pos
            if sid == "SE":
                st_pos = None

    # ---- stage 2: walk pyx12's maps

    def walk(self) -> None:
        isa_text = self.segs[0].text
        icvn = self.interchange_version()
        if icvn is None:
            return
        src = pyx12.x12file.X12Reader(io.StringIO(isa_text + self.delims.term))
        feed = _Feed(self.segs, self, src)
        src.raw = feed  # pyx12 now reads our normalised segments, one per index
        control_name = "x12.control.00501.xml" if icvn == "00501" else "x12.control.00401.xml"
        control = _load_map(control_name)
        index_if = pyx12.map_index.map_index()
        walker = walk_tree()
        state = {"node": control.getnodebypath("/ISA_LOOP/ISA"), "map": None,
                 "map_name": control_name, "icvn": icvn, "skip": False}
        while True:
            try:
                for seg in src:
                    self._one(src, seg, feed.index, walker, control, index_if, state)
                break
            except Exception as exc:  # pyx12 crashed on this segment: report, resync, go on
                self.add("ENV-PYX12", f"validator failed on this segment ({type(exc).__name__})",
                         self.pos(feed.index))
                src.cur_line = feed.index
                src.err_list = []
                if feed.index >= len(self.segs):
                    break
        try:
            src.cleanup()
            self.cur_index = len(self.segs)
            self.phase = "reader"
            self.handle_errors(src.pop_errors())
        except Exception:
            pass

    def _one(self, src: Any, seg: Any, index: int, walker: Any, control: Any,
             index_if: Any, state: dict) -> None:
        src.cur_line = index  # keep pyx12's counter on our segment numbering
        seg_id = seg.get_seg_id() or ""
        self.cur_index, self.cur_seg_id, self.cur_loop, self._cur_map_node = index, seg_id, None, None
        orig = state["node"]
        found = True
        if seg_id == "ISA":
            node = control.getnodebypath("/ISA_LOOP/ISA")
            walker.forceWalkCounterToLoopStart("/ISA_LOOP", "/ISA_LOOP/ISA")
            state["icvn"] = seg.get_value("ISA12")
            state["skip"] = False
        elif seg_id == "GS":
            node = control.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
            walker.forceWalkCounterToLoopStart("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
        elif state["skip"] and seg_id not in ("GE", "IEA"):
            self.phase = "reader"
            self.handle_errors(src.pop_errors())
            return
        elif state["skip"]:
            node = control.getnodebypath(f"/ISA_LOOP{'/GS_LOOP' if seg_id == 'GE' else ''}/{seg_id}")
            state["skip"] = False
        else:
            self.phase = "walk"
            node, _pop, _push, walk_errors = walker.walk_errors(
                orig, seg, src.get_seg_count(), index, src.get_ls_id())
            apply_walk_errors(self, walk_errors)
            if node is None:
                node, found = orig, False
        self.cur_index, self.cur_seg_id, self._cur_map_node = index, seg_id, node
        self.cur_loop = _loop_id(node) if found else self.cur_loop
        if seg_id == "GS":
            fic, vriic = seg.get_value("GS01"), seg.get_value("GS08")
            name = index_if.get_filename(state["icvn"], vriic, fic)
            if name is None:
                self.skip_group(index, fic, vriic, state)
            else:
                state["map"] = _load_map(name)
                self.map_name = name
                src.check_837_lx = state["map"].id == _837P.st01  # any 837 map
                node = state["map"].getnodebypath("/ISA_LOOP/GS_LOOP/GS")
        state["node"] = node
        self.phase = "reader"
        self.handle_errors(src.pop_errors())
        if found:
            self.check_segment(node, seg)
        elif seg_id in self.known_segment_ids():
            self.explain_unexpected(orig, seg)

    def check_segment(self, node: Any, seg: Any) -> None:
        """pyx12's element checks, keeping the element of composite/syntax errors."""
        self.phase = "segment"
        try:
            _ok, errors = node.is_valid_errors(seg)
        except IndexError:  # pyx12 indexes past the end on a composite with too many components
            seg = seg.copy()
            for i in range(min(len(seg), node.get_child_count())):
                child, ref = node.get_child_node_by_idx(i), f"{i + 1:02d}"
                if child.is_composite() and seg.ele_len(ref) > child.get_child_count():
                    n = child.get_child_count()
                    comp = seg.get(ref)
                    seg.set(ref, self.delims.comp.join(comp[j].get_value() for j in range(n)))
                    self.cur_ele = EleRef(i + 1, child.name, None)
                    self.ele_error("13", "", None)
            _ok, errors = node.is_valid_errors(seg)
        for e in errors:
            if e.map_node is not None:
                self.cur_ele = e.map_node
                self.ele_error(e.err_cde, e.err_str, e.err_val, e.refdes)
                continue
            ele_pos = element_position(e.refdes)
            if ele_pos is None:
                self.seg_error("8", e.err_str)
                continue
            child = node.get_child_node_by_idx(ele_pos - 1) if ele_pos <= node.get_child_count() else None
            self.cur_ele = EleRef(ele_pos, getattr(child, "name", "element"),
                                   getattr(child, "data_ele", None))
            self.ele_error(e.err_cde, e.err_str, None, e.refdes)

    def explain_unexpected(self, orig: Any, seg: Any) -> None:
        """A known segment pyx12 could not place: if a bad qualifier code is why
        (pyx12 picks loops by code), report that code as IK4-7."""
        best = None
        for cand in _candidates(orig, seg.get_seg_id()):
            _ok, errors = cand.is_valid_errors(seg)
            codes = [e for e in errors if e.err_cde == "7" and e.map_node is not None]
            if codes and (best is None or len(errors) < best[0]):
                best = (len(errors), cand, codes)
        if best is None:
            return
        _n, cand, codes = best
        self.errs = [e for e in self.errs if not (
            e.level == "seg" and e.issue.pos.segment_index == self.cur_index and e.code in ("1", "2"))]
        for grp in self.groups:
            for st in grp.sts:
                st.errs = [e for e in st.errs if not (
                    e.level == "seg" and e.issue.pos.segment_index == self.cur_index and e.code in ("1", "2"))]
        self.phase = "segment"
        self.cur_loop = _loop_id(cand)
        for e in codes:
            self.cur_ele = e.map_node
            self.ele_error(e.err_cde, e.err_str, e.err_val, e.refdes)

    # ---- stage 3: 999s

    def acks(self, now: datetime) -> list[GroupAck]:
        return group_acks(self.groups, now)


def group_acks(groups: list[_Group], now: datetime) -> list[GroupAck]:
    """A 999 for each functional group that is not itself acknowledgments (GS01 FA)."""
    out = []
    for n, grp in enumerate(groups, start=1):
        gs = grp.gs + [""] * (9 - len(grp.gs))
        if gs[1] == "FA":
            continue
        tx = grp.sts[0].st01 if grp.sts else {t.gs01: t.st01 for t in (_837P, _835)}.get(gs[1], gs[1])
        text, accepted, rejected = _build_999(grp, n, now)
        isa13 = Isa.of(grp.isa).control
        out.append(GroupAck(gs[6], tx, accepted, text, isa13, rejected, grp.isa_index))
    return out


# ---------------------------------------------------------------- 999 builder




def _st_ack(st: _St) -> tuple[list[str], str]:
    """IK3/IK4 lines and IK501 code for one transaction set."""
    segs: dict[tuple, dict] = {}
    for e in st.errs:
        if e.level == "st":
            continue
        key = (e.st_pos or 0, e.seg_id, e.loop or "")
        entry = segs.setdefault(key, {"codes": [], "ele": []})
        if e.level == "seg":
            if e.code not in entry["codes"]:
                entry["codes"].append(e.code)
        else:
            if "8" not in entry["codes"]:
                entry["codes"].append("8")
            entry["ele"].append(e)
    lines = []
    for (pos, seg_id, loop), entry in sorted(segs.items(), key=lambda kv: kv[0][0]):
        for code in entry["codes"]:
            sid = seg_id if seg_id in KNOWN_SEGMENT_IDS else "UNK"  # not text cut out of a damaged segment
            lines.append(f"IK3*{sid}*{pos}*{ack_element(loop, 4)}*{code}")
            if code != "8":
                continue
            for e in entry["ele"]:
                comp = f"{e.ele_pos or 0}" + (f":{e.sub_pos}" if e.sub_pos else "")
                ref = e.data_ele if (e.data_ele or "").isdigit() else ""  # not composite ids (C023)
                ik4 = f"IK4*{comp}*{ref}*{e.code}"
                if e.issue.value:
                    ik4 += f"*{ack_element(e.issue.value, 99)}"
                lines.append(ik4)
    errors = any(e.issue.severity is Severity.ERROR for e in st.errs)
    ack = "R" if errors else ("E" if st.errs else "A")
    return lines, ack


# The reader's group findings as AK905 codes (a GE missing; group control number; count of sets; a GS06
# not unique within its interchange, coded 6 as the walk of a whole file codes it).
_GROUP_FINDINGS = {"ENV-GE-MISSING": "3", "ENV-GE02": "4", "ENV-GE01": "5", "AK9-6": "6"}


def _finding_err(issue: Issue) -> "_Err":
    """A finding of another check as the 999 reports it: an IK3-n/IK4-n/IK5-n code as it says, a code-list
    finding (CODE-*) on an element as IK4-7, any other on an element as IK4-I12 (implementation pattern
    match failure: the value breaks a rule of the guide, such as CLM02 = the sum of SV102), else IK5-5.
    A value of a PHI-bearing segment is never copied into IK404."""
    pos = issue.pos
    kind, _, bare = issue.code.partition("-")
    ref = (pos.element or "")[len(pos.segment_id):]
    head, _, sub = ref.partition("-")
    ele_pos = int(head) if head.isdigit() else None
    sub_pos = int(sub) if sub.isdigit() else None
    if pos.segment_id in PHI_SEGMENTS and issue.value is not None:
        issue = Issue(issue.code, issue.message, pos, issue.severity)
    loop = pos.loop if (pos.loop or "")[:1].isdigit() else None  # not the parsers' HEADER
    where = {"seg_id": pos.segment_id, "st_pos": pos.st_position, "loop": loop}
    if kind == "IK5" and bare:
        return _Err(issue, "st", bare)
    if kind == "IK3" and bare:
        return _Err(issue, "seg", bare, **where)
    if ele_pos is None:
        return _Err(issue, "st", "5")
    code = bare if kind == "IK4" and bare else "7" if kind == "CODE" else "I12"
    return _Err(issue, "ele", code, ele_pos=ele_pos, sub_pos=sub_pos, **where)




def ta1_text(isa: list[str], note: str, control: int, now: datetime) -> str:
    """A TA1 interchange acknowledging the interchange whose ISA elements are `isa`: accepted when
    `note` is 000 (no error), else rejected with that TA105 note code."""
    fields = Isa.of(isa)
    ctrl = f"{control:09d}"
    ta1 = (f"TA1*{ack_element(fields.control, 9).rjust(9, '0')}*{ack_element(fields.date, 6).ljust(6, '0')}*"
           f"{ack_element(fields.time, 4).ljust(4, '0')}*{'A' if note == '000' else 'R'}*{note}")
    return "".join(s + "~\n" for s in (reply_isa(fields, ctrl, now), ta1, f"IEA*0*{ctrl}"))


def _build_999(grp: _Group, n: int, now: datetime) -> tuple[str, bool, tuple[str, ...]]:
    """The 999 text, whether the group is accepted, and the ST02s of the sets it rejects."""
    gs = grp.gs + [""] * (9 - len(grp.gs))
    ctrl = f"{n:09d}"
    body: list[str] = []
    body.append("ST*999*0001*005010X231A1")
    body.append(f"AK1*{ack_element(gs[1], 2)}*{ack_element(gs[6], 9)}*{ack_element(gs[8], 12)}")
    accepted = 0
    rejected: list[str] = []
    for st in grp.sts:
        ak2 = f"AK2*{ack_element(st.st01, 3)}*{ack_element(st.st02, 9)}"
        impl = ack_element(st.st03 or gs[8], 35)
        body.append(ak2 + (f"*{impl}" if impl else ""))
        lines, ack = _st_ack(st)
        if not grp.validated:
            lines, ack = [], "R"
        body.extend(lines)
        ik5 = sorted({e.code for e in st.errs if e.level == "st"} |
                     ({"5"} if lines and ack == "R" else set()) |
                     ({"1"} if not grp.validated else set()), key=lambda c: int(c))
        if ack == "R" and not ik5:
            ik5 = ["5"]
        body.append("*".join(["IK5", ack, *ik5[:5]]))
        accepted += ack in ("A", "E")
        if ack == "R":
            rejected.append(st.st02.strip())
    gs_codes = sorted({e.code for e in grp.errs if e.level == "gs"}, key=lambda c: int(c))
    if not grp.validated:
        gs_codes = sorted(set(gs_codes) | {"1"}, key=int)
    received = len(grp.sts)
    if gs_codes or (received and accepted == 0) or not received:
        ak9 = "R"
    elif accepted < received:
        ak9 = "P"
    elif any(st.errs for st in grp.sts):
        ak9 = "E"
    else:
        ak9 = "A"
    included = grp.ge01 if grp.ge01 is not None and grp.ge01.strip().isdigit() else str(received)
    body.append("*".join(["AK9", ak9, str(int(included)), str(received), str(accepted),
                          *gs_codes[:5]]))
    body.append(f"SE*{len(body) + 1}*0001")
    header = [
        reply_isa(Isa.of(grp.isa), ctrl, now),
        f"GS*FA*{ack_element(gs[3], 15) or 'RECEIVER'}*{ack_element(gs[2], 15) or 'SENDER'}*"
        f"{now:%Y%m%d}*{now:%H%M}*{n}*X*005010X231A1",
    ]
    trailer = [f"GE*1*{n}", f"IEA*1*{ctrl}"]
    text = "".join(s + "~\n" for s in header + body + trailer)
    if ak9 == "R":
        rejected = [st.st02.strip() for st in grp.sts]
    return text, ak9 in ("A", "E"), tuple(rejected)


# ---------------------------------------------------------------- entry point


def validate_tr3(text: str, filename: str | None = None, *,
                 now: datetime | None = None) -> Tr3Result:
    """Validate X12 `text` against pyx12's TR3 maps; one 999 per functional group.

    Never raises: input pyx12 cannot read yields an ENV-* issue instead.
    `now` fixes the 999 envelope date/time (default: current UTC time).
    """
    return run_validation(Run(filename), text, filename, now)


class _Reference:
    """The reference backend of tr3.protocol.SetValidator: pyx12's own reader and map walker."""

    name = "reference"

    def validate(self, text: str, filename: str | None = None, *, now: datetime | None = None) -> Tr3Result:
        return validate_tr3(text, filename, now=now)


REFERENCE = _Reference()


def run_validation(run: "Run", text: str, filename: str | None, now: datetime | None) -> Tr3Result:
    """Lex, prepare and walk with `run` (pyx12-driven or compiled), then build the 999s. Never raises."""
    try:
        now = now or datetime.now(timezone.utc)
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace")
        if run.lex(text):
            run.prepare()
            run.walk()
        run.flood_note()
        groups = run.acks(now)
    except Exception as exc:  # last line of defence: never raise
        run.add("ENV-UNREADABLE", f"input could not be validated ({type(exc).__name__})",
                Position(filename, 0, 0))
        groups = []
    issues = [e.issue for e in run.errs]
    issues.sort(key=lambda i: (i.pos.segment_index, i.pos.line))
    return Tr3Result(issues, groups, run.groups if groups else [], run.set_at, now, run.group_at)
