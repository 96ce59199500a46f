"""Conversions: X12 to NDJSON, JSON, XML, CSV and X12, and this tool's XML back to X12."""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
from datetime import date
from decimal import Decimal
from typing import IO, BinaryIO, Iterable, Iterator

import orjson

from edi_pipeline.tx.document import iter_records, iter_transactions
from edi_pipeline.x12.envelope import Transaction
from edi_pipeline.core.errors import InterchangeError, IssueList, Position
from edi_pipeline.tx.loops import Loop, loop_tree
from edi_pipeline.tx.ack_records import ClaimStatus, GroupResponse, LevelStatus, SetResponse
from edi_pipeline.tx.model import Claim, ClaimPayment
from edi_pipeline.tx.registry import Kind
from edi_pipeline.core.safe_text import SafeCsvWriter, from_latin1, has_escaped_bytes, latin1_text
from edi_pipeline.x12.writer import X12Writer
from edi_pipeline.x12.reader import Delimiters

FORMATS = ("ndjson", "json", "xml", "csv", "x12")

etree = None  # lxml.etree, loaded by the XML entry points: it would add ~5 ms to every command's start-up


def _load_lxml() -> None:
    global etree
    if etree is None:
        from lxml import etree as loaded
        etree = loaded


def json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def compact_json(obj) -> str:
    """One-line JSON; Decimals and other non-JSON values as their text."""
    try:
        return orjson.dumps(obj, default=str).decode()
    except orjson.JSONEncodeError:  # text with bytes that were not UTF-8 (kept as surrogates)
        return json.dumps(obj, separators=(",", ":"), default=str)


def _latin1_fields(value, path: str, found: list[str]):
    """`value` with every text holding bytes that were not UTF-8 given as Latin-1; their paths go to `found`."""
    if isinstance(value, str):
        if has_escaped_bytes(value):
            found.append(path)
            return latin1_text(value)
        return value
    if isinstance(value, dict):
        return {k: _latin1_fields(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_latin1_fields(v, f"{path}.{k}", found) for k, v in enumerate(value)]
    return value


def _utf8_bytes_writer(out: IO[str]):
    """A function writing UTF-8 bytes to `out`: straight to its byte buffer when it has one and
    encodes UTF-8 (no decode and re-encode), else through its text layer."""
    buffer = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None)
    if buffer is not None and encoding and codecs.lookup(encoding).name == "utf-8":
        out.flush()  # anything already written through the text layer goes first
        return buffer.write
    write = out.write
    return lambda data: write(data.decode("utf-8", "surrogateescape"))


def _json_number(value):
    """orjson's `default` for --numbers: a Decimal as a JSON number of its exact text (12.50 stays 12.50,
    never a float's 12.5 or 12.499999...); anything else as json_default writes it."""
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    return json_default(value)


def to_ndjson(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None,
              numbers: bool = False) -> int:
    """One JSON object per 837P claim, 835 header and 835 claim payment. Returns the count.

    Decimal values (money, units, quantities) are JSON strings of their exact text; with `numbers`, JSON
    numbers of the same text, for tools that sum them (duckdb, pandas).
    A value with bytes that were not UTF-8 is written as its bytes read as Latin-1 (safe_text.latin1_text),
    and its object gets `"latin1"`: the dotted paths of those values (`payer.name`, `lines.0.procedure`),
    so `value.encode("latin-1")` gives the bytes back."""
    n = 0
    write = _utf8_bytes_writer(out)
    fast = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    default = _json_number if numbers else json_default
    pending: list[bytes] = []
    for rec in iter_records(source, filename, issues):
        d = rec.to_dict(plain=not numbers)
        try:
            pending.append(fast(d, option=newline, default=default))
        except orjson.JSONEncodeError:  # text with bytes that were not UTF-8 (kept as surrogates)
            found: list[str] = []
            d = _latin1_fields(d, "", found)
            d["latin1"] = found
            pending.append(fast(d, option=newline, default=default))
        n += 1
        if len(pending) >= 512:
            write(_one_line_each(b"".join(pending)))
            pending.clear()
    if pending:
        write(_one_line_each(b"".join(pending)))
    return n


_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def _one_line_each(chunk: bytes) -> bytes:
    """NDJSON lines with NEL, LS and PS (line ends to str.splitlines and to some JSON-lines readers) written
    as JSON escapes: in JSON they can only be inside strings, so the values read back the same."""
    for raw, escaped in _LINE_BREAKS:
        if raw in chunk:
            chunk = chunk.replace(raw, escaped)
    return chunk


CSV_COLUMNS = [
    "file", "type", "patient_control_number", "level", "payer_id", "claim_filing_indicator", "status_code",
    "line_number", "procedure", "modifiers", "original_procedure", "service_date", "charge", "paid",
    "units", "dx_pointers", "control_number", "adjustments", "remarks", "claim_charge", "claim_paid",
    "patient_responsibility", "adjustment_amount", "payment_date", "trace_number", "payer_claim_control_number",
    "segment_index", "line",
]


def to_csv(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """Rows without names or member ids; `level` says what a row is, and each money column sums
    without double counting:

    - `line`: an 837P service line or an 835 service payment; `charge` and `paid` are its SV102 or
      SVC02 and SVC03, `adjustments` its CAS.
    - `claim`: one per 835 claim payment, with or without lines, and one per 837P claim without lines;
      `claim_charge` (CLP03 / CLM02), `claim_paid` (CLP04) and `patient_responsibility` (CLP05)
      are only here, `adjustments` lists the claim-level CAS, `remarks` the MOA remarks.
    - `claim_adjustment`: one per claim-level CAS adjustment, its amount in `adjustment_amount`.
    - 999s: `set_response` (IK5: `status_code` IK501, `control_number` the ST02 answered, `remarks` IK502..),
      `segment_error` (IK3: `procedure` IK301, `status_code` IK304, `line_number` IK302, the claim its CTX
      names, `remarks` the IK4s as position:element:code) and `group_response` (AK9: `control_number` the
      GS06 answered).
    - 277CAs: `claim_status` (STC codes as category:code:entity in `status_code`, STC04 in `claim_charge`),
      `line_status` (`control_number` its REF*FJ) and `receiver_status` / `provider_status`.

    So the sum of `claim_paid` is the sum of CLP04, of `paid` the sum of SVC03. Every 835 row carries
    its claim's status, payer claim control number (CLP07), payment date (BPR16) and trace number
    (TRN02). Cells are safe for spreadsheets, bytes that were not UTF-8 read as Latin-1
    (safe_text.csv_cell). Returns the number of rows."""
    w = SafeCsvWriter(out)
    w.writerow(CSV_COLUMNS)
    n = 0
    for rec in iter_records(source, filename, issues):
        if isinstance(rec, Claim):
            src = rec.source
            if not rec.lines:
                w.writerow([src.file, "837P", rec.patient_control_number, "claim", rec.payer.id,
                            rec.claim_filing_indicator, "", "", "", "", "", _s(rec.service_date), "", "", "", "",
                            "", "", "", _s(rec.total_charge), "", "", "", "", "", rec.payer_claim_control_number,
                            src.segment_index, src.line])
                n += 1
            for ln in rec.lines:
                w.writerow([ln.source.file, "837P", rec.patient_control_number, "line", rec.payer.id,
                            rec.claim_filing_indicator, "", ln.line_number, ln.procedure, " ".join(ln.modifiers),
                            "", _s(ln.service_date or rec.service_date), _s(ln.charge), "", _s(ln.units),
                            " ".join(map(str, ln.dx_pointers)), ln.control_number or "", "", "",
                            "", "", "", "", "", "", "", ln.source.segment_index, ln.source.line])
                n += 1
        elif isinstance(rec, ClaimPayment):
            src = rec.source
            h = rec.header
            head = [src.file, "835", rec.patient_control_number]
            claim = [rec.payer.id, rec.claim_filing_indicator, rec.status_code]
            remit = [_s(h.payment_date), h.trace_number, rec.payer_claim_control_number]
            w.writerow([*head, "claim", *claim, "", "", "", "", _s(rec.service_date), "", "", "", "", "",
                        _adjustments(rec.adjustments), " ".join(rec.remarks), _s(rec.charge), _s(rec.paid),
                        _s(rec.patient_responsibility), "", *remit, src.segment_index, src.line])
            for a in rec.adjustments:
                w.writerow([*head, "claim_adjustment", *claim, "", "", "", "", _s(rec.service_date), "", "", "",
                            "", "", _adjustments((a,)), "", "", "", "", _s(a.amount), *remit,
                            src.segment_index, src.line])
            n += 1 + len(rec.adjustments)
            for k, ln in enumerate(rec.lines, 1):
                w.writerow([ln.source.file, *head[1:], "line", *claim, k, ln.procedure, " ".join(ln.modifiers),
                            ln.original_procedure or "", _s(ln.service_date or rec.service_date), _s(ln.charge),
                            _s(ln.paid), _s(ln.units), "", ln.control_number or "", _adjustments(ln.adjustments),
                            " ".join(ln.remarks), "", "", "", "", *remit, ln.source.segment_index, ln.source.line])
                n += 1
        else:
            for row in _ack_rows(rec):
                w.writerow([row.get(c, "") for c in CSV_COLUMNS])
                n += 1
    return n


def _codes(statuses) -> str:
    return "|".join(":".join(x for x in (c.category, c.code, c.entity) if x) for s in statuses for c in s.codes)


def _ack_rows(rec) -> Iterator[dict]:
    """The CSV rows of one 999 or 277CA record, as column -> value (see to_csv)."""
    src = rec.source
    at = {"file": src.file, "segment_index": src.segment_index, "line": src.line}
    if isinstance(rec, SetResponse):
        head = {**at, "type": Kind.ACK_999.value, "control_number": rec.control_number}
        yield {**head, "level": "set_response", "status_code": rec.code, "remarks": " ".join(rec.reasons)}
        for e in rec.errors:
            yield {**head, "level": "segment_error", "patient_control_number": e.claim or "",
                   "status_code": e.code or "", "line_number": _s(e.position), "procedure": e.segment_id,
                   "remarks": " ".join(f"{x.position}:{x.data_element or ''}:{x.code}" for x in e.elements),
                   "segment_index": e.source.segment_index, "line": e.source.line}
    elif isinstance(rec, GroupResponse):
        yield {**at, "type": Kind.ACK_999.value, "level": "group_response", "status_code": rec.code,
               "control_number": rec.group_control_number, "remarks": " ".join(rec.reasons)}
    elif isinstance(rec, ClaimStatus):
        head = {"file": src.file, "type": Kind.CLAIM_ACK_277CA.value,
                "patient_control_number": rec.patient_control_number, "payer_id": rec.source_id or "",
                "trace_number": rec.batch_trace or "",
                "payer_claim_control_number": rec.payer_claim_control_number or ""}
        yield {**head, **at, "level": "claim_status", "status_code": _codes(rec.statuses),
               "service_date": _s(rec.service_date), "claim_charge": _s(rec.amount)}
        for k, ln in enumerate(rec.lines, 1):
            yield {**head, "level": "line_status", "status_code": _codes(ln.statuses), "line_number": k,
                   "procedure": ln.procedure or "", "modifiers": " ".join(ln.modifiers),
                   "service_date": _s(ln.service_date), "charge": _s(ln.charge), "units": _s(ln.units),
                   "control_number": ln.control_number or "", "segment_index": ln.source.segment_index,
                   "line": ln.source.line}
    elif isinstance(rec, LevelStatus):
        yield {**at, "type": Kind.CLAIM_ACK_277CA.value, "level": f"{rec.level}_status",
               "status_code": _codes(rec.statuses), "payer_id": rec.source_id or "",
               "trace_number": rec.batch_trace or ""}


def _adjustments(adjustments) -> str:
    return "|".join(f"{a.group}-{a.reason}:{a.amount}" for a in adjustments)


def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v, "f")  # never an exponent: a spreadsheet reads -1E+2 as text, csv_cell defuses it
    return str(v)


def to_x12(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """Write the input back segment for segment (no recounts: a faithful copy)."""
    writer = X12Writer(out, recount=False)
    n = 0
    for item in iter_transactions(source, filename, issues):
        writer.write(item)
        n += isinstance(item, Transaction)
    return n


# --- tree shapes (JSON and XML) ---------------------------------------------------------

def _segment_json(text: str, d: Delimiters) -> dict:
    if has_escaped_bytes(text):  # bytes that were not UTF-8: the segment's bytes read as Latin-1, marked
        e = latin1_text(text).split(d.element)
        return {"id": e[0], "elements": e[1:], "latin1": True}
    e = text.split(d.element)
    return {"id": e[0], "elements": e[1:]}


def _json_children(node: Loop, tx: Transaction, depth: int) -> Iterator[str]:
    """The JSON text of a loop's children list nested `depth` levels deep, piece by piece: each loop
    {"loop", "children"}, each segment as _segment_json."""
    if not node.children:
        yield "[]"
        return
    d = tx.delimiters
    inner = "\n" + " " * (depth + 1)
    sep = "["
    for child in node.children:
        if isinstance(child, Loop):
            yield (sep + inner + "{" + inner + ' "loop": ' + _json_at(child.id, depth + 2) + "," + inner +
                   ' "children": ')
            yield from _json_children(child, tx, depth + 2)
            yield inner + "}"
        else:
            yield sep + inner + _segment_json_at(_segment_json(tx.segments[child], d), depth + 1)
        sep = ","
    yield "\n" + " " * depth + "]"


def to_json(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """The whole file as a tree: interchanges > groups > transaction sets > loops > segments,
    written transaction set by transaction set (memory stays flat in the file's size).

    An interchange is {"ISA", "delimiters", "groups", "stray" (segments outside any set, when there are),
    "IEA"}, a group {"GS", "transactions", "GE"}; a missing ISA or GS is null, a missing GE or IEA has
    no key. Sets before any ISA or after an IEA sit in an interchange whose ISA is null; "delimiters"
    are the ISA's (marked "latin1" too when one is such a byte).
    A segment with bytes that were not UTF-8 has `"latin1": true` and its id and elements are its bytes
    read as Latin-1: `element.join([id, *elements]).encode("latin-1")` gives the segment's bytes back."""
    w = _JsonTreeWriter(out, filename)
    n = 0
    for item in iter_transactions(source, filename, issues):
        if isinstance(item, Transaction):
            head = {"set_id": latin1_text(item.set_id), "control_number": latin1_text(item.control_number),
                    "version": latin1_text(item.version)}
            w.transaction(head, _json_children(loop_tree(item), item, 7))
            n += 1
            continue
        seg = _segment_json(item.text, item.delimiters)
        if item.tag == "ISA":
            w.interchange(seg, _delims_dict(item.delimiters))
        elif item.tag == "GS":
            w.group(seg)
        elif item.tag == "GE":
            w.end_group(seg)
        elif item.tag == "IEA":
            w.end_interchange(seg)
        else:
            w.stray(seg)
    w.close()
    return n


class _JsonTreeWriter:
    """Writes to_json's document piece by piece, exactly as json.dumps(doc, ensure_ascii=False, indent=1)
    would write it whole."""

    def __init__(self, out: IO[str], filename: str | None):
        self._out = out
        # written with the first piece: a file the reader refuses at once leaves no output
        self._head: str | None = ('{\n "file": ' + _json_at(latin1_text(filename) if filename else filename, 1) +
                                  ',\n "interchanges": ')
        self.interchanges = 0
        self.isa_open = self.group_open = False
        self.groups = self.sets = 0
        self.strays: list[dict] = []

    def write(self, text: str) -> None:
        if self._head is not None:
            text = self._head + text
            self._head = None
        self._out.write(text)

    def _open_interchange(self, isa: dict | None, delimiters: dict | None) -> None:
        head = ("[" if not self.interchanges else ",") + '\n  {\n   "ISA": ' + _json_at(isa, 3)
        if delimiters is not None:
            head += ',\n   "delimiters": ' + _json_at(delimiters, 3)
        self.write(head + ',\n   "groups": ')
        self.interchanges += 1
        self.isa_open = True
        self.groups = 0
        self.strays = []

    def _open_group(self, gs: dict | None) -> None:
        if not self.isa_open:
            self._open_interchange(None, None)
        self.write(("[" if not self.groups else ",") + '\n    {\n     "GS": ' + _json_at(gs, 5) +
                       ',\n     "transactions": ')
        self.groups += 1
        self.group_open = True
        self.sets = 0

    def interchange(self, isa: dict, delimiters: dict) -> None:
        self.end_group(None)
        self.end_interchange(None)
        self._open_interchange(isa, delimiters)

    def group(self, gs: dict) -> None:
        self.end_group(None)
        self._open_group(gs)

    def transaction(self, head: dict, segments: Iterable[str]) -> None:
        """A set: `head` its set_id, control_number and version, `segments` the JSON text of its
        segments list in pieces (nested 7 levels deep)."""
        if not self.group_open:
            self._open_group(None)
        text = _json_at(head, 6)  # {..., "version": V\n      }: the segments go before the brace
        self.write(("[" if not self.sets else ",") + "\n      " + text[:-8] + ',\n       "segments": ')
        pending: list[str] = []
        for piece in segments:
            pending.append(piece)
            if len(pending) >= 256:
                self.write("".join(pending))
                pending.clear()
        self.write("".join(pending) + "\n      }")
        self.sets += 1

    def stray(self, seg: dict) -> None:
        if not self.isa_open:
            self._open_interchange(None, None)
        self.strays.append(seg)

    def end_group(self, ge: dict | None) -> None:
        """Close the open group (a GE with none open is dropped)."""
        if not self.group_open:
            return
        tail = "[]" if not self.sets else "\n     ]"
        if ge is not None:
            tail += ',\n     "GE": ' + _json_at(ge, 5)
        self.write(tail + "\n    }")
        self.group_open = False

    def end_interchange(self, iea: dict | None) -> None:
        """Close the open interchange and its group (an IEA with none open is dropped)."""
        if not self.isa_open:
            return
        self.end_group(None)
        tail = "[]" if not self.groups else "\n   ]"
        if self.strays:
            tail += ',\n   "stray": ' + _json_at(self.strays, 3)
        if iea is not None:
            tail += ',\n   "IEA": ' + _json_at(iea, 3)
        self.write(tail + "\n  }")
        self.isa_open = False
        self.strays = []

    def close(self) -> None:
        self.end_interchange(None)
        self.write("[]\n}\n" if not self.interchanges else "\n ]\n}\n")


_JSON_INDENTED = json.JSONEncoder(ensure_ascii=False, indent=1).encode
_json_str = json.encoder.encode_basestring  # a JSON string as JSONEncoder(ensure_ascii=False) writes it


def _json_at(value, depth: int) -> str:
    """json.dumps(value, indent=1) as it reads nested `depth` levels deep (JSON text holds no raw newline)."""
    return _JSON_INDENTED(value).replace("\n", "\n" + " " * depth)


def _segment_json_at(seg: dict, depth: int) -> str:
    """_json_at of a _segment_json dict, written directly (the segments are most of the document)."""
    pad = "\n" + " " * (depth + 1)
    elements = seg["elements"]
    if elements:
        inner = pad + " "
        listed = "[" + inner + ("," + inner).join(map(_json_str, elements)) + pad + "]"
    else:
        listed = "[]"
    flag = "," + pad + '"latin1": true' if "latin1" in seg else ""
    return "{" + pad + '"id": ' + _json_str(seg["id"]) + "," + pad + '"elements": ' + listed + flag + \
        "\n" + " " * depth + "}"


def _delims_dict(d: Delimiters) -> dict:
    """The delimiters; when one is a byte that is not UTF-8, all are Latin-1 text and "latin1" is true."""
    delims = {"element": d.element, "component": d.component, "repetition": d.repetition,
              "segment": d.segment, "suffix": d.suffix}
    if any(v and has_escaped_bytes(v) for v in delims.values()):
        delims = {k: v and latin1_text(v) for k, v in delims.items()}
        delims["latin1"] = True
    return delims


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_segment(text: str, d: Delimiters, envelope: bool):
    """The <seg> element of one segment."""
    latin1 = has_escaped_bytes(text)
    shown = latin1_text(text) if latin1 else text
    if _NOT_XML.search(shown):
        # Characters XML cannot hold: the segment travels as base64 of its bytes.
        raw = base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")
        return etree.Element("seg", raw=raw)
    e = shown.split(d.element)
    seg = etree.Element("seg", id=e[0])
    if latin1:  # bytes that were not UTF-8: the segment's bytes read as Latin-1
        seg.set("latin1", "1")
    rep = d.repetition
    for k, value in enumerate(e[1:], 1):
        name = f"{e[0]}{k:02d}"
        if not envelope and rep and rep in value:
            node = etree.SubElement(seg, "ele", id=name, rep="1")
            for r in value.split(rep):
                rn = etree.SubElement(node, "rep")
                _xml_value(rn, r, d, name)
        else:
            node = etree.SubElement(seg, "ele", id=name)
            if envelope:
                node.text = value
            else:
                _xml_value(node, value, d, name)
    return seg


def _xml_value(node, value: str, d: Delimiters, name: str) -> None:
    if d.component in value:
        for j, sub in enumerate(value.split(d.component), 1):
            etree.SubElement(node, "sub", id=f"{name}-{j}").text = sub
    else:
        node.text = value


def _xml_loop(w: "_XmlTreeWriter", node: Loop, tx: Transaction) -> None:
    for child in node.children:
        if isinstance(child, Loop):
            w.open(etree.Element("loop", id=_NOT_XML.sub("?", child.id)))
            _xml_loop(w, child, tx)
            w.close()
        else:
            w.child(_xml_segment(tx.segments[child], tx.delimiters, False))


def to_xml(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """An XML tree of interchanges, groups, transaction sets, loops, segments and elements
    that `xml_to_x12` turns back into the same X12. A segment with bytes that were not UTF-8 is
    `<seg latin1="1">`, its text being its bytes read as Latin-1; one with characters XML cannot hold
    is `<seg raw="BASE64 OF ITS BYTES"/>`."""
    _load_lxml()
    root = etree.Element("x12")
    if filename:
        root.set("file", _NOT_XML.sub("?", latin1_text(os.path.basename(filename))))
    w = _XmlTreeWriter(out, root)
    interchange = group = False  # whether one is open: the writer's stack is root > interchange > group
    n = 0
    for item in iter_transactions(source, filename, issues):
        d = item.delimiters
        if isinstance(item, Transaction):
            w.open(etree.Element("transaction", id=_NOT_XML.sub("?", item.set_id)))
            _xml_loop(w, loop_tree(item), item)
            w.close()
            n += 1
            continue
        seg = _xml_segment(item.text, d, True)
        if item.tag == "ISA":
            w.close(group + interchange)
            w.open(etree.Element("interchange", **_delims_attrs(d)))
            w.child(seg)
            interchange, group = True, False
        elif item.tag == "GS":
            w.close(group)
            w.open(etree.Element("group"))
            w.child(seg)
            group = True
        elif item.tag == "GE":
            w.child(seg)
            w.close(group)
            group = False
        elif item.tag == "IEA":
            w.close(group)
            w.child(seg)
            w.close(interchange)
            interchange = group = False
        else:
            w.child(seg)
    w.close(1 + group + interchange)
    return n


class _XmlTreeWriter:
    """Writes an element tree as its elements come, exactly as etree.tostring(root, encoding="unicode",
    pretty_print=True) would write it whole: `open` an element, add `child` subtrees, `close` them."""

    def __init__(self, out: IO[str], root):
        self.out = out
        self.stack: list[list] = []  # [element, whether its start tag is written]
        self.open(root)

    def open(self, element) -> None:
        self.stack.append([element, False])

    def _start_tags(self) -> None:
        """Write the start tags not yet written (an element's waits for its first child)."""
        for depth, entry in enumerate(self.stack):
            if not entry[1]:
                empty = etree.tostring(entry[0], encoding="unicode")  # <tag attrs/>
                self.out.write(self._indent(depth) + empty[:-2] + ">")
                entry[1] = True

    @staticmethod
    def _indent(depth: int) -> str:
        return "\n" + "  " * depth if depth else ""

    def child(self, element) -> None:
        self._start_tags()
        depth = len(self.stack)
        if len(element):
            etree.indent(element, space="  ", level=depth)
        self.out.write(self._indent(depth) + etree.tostring(element, encoding="unicode"))

    def close(self, count: int = 1) -> None:
        """Close the `count` innermost open elements (the root last, with the final newline)."""
        for _ in range(count):
            element, started = self.stack.pop()
            depth = len(self.stack)
            if started:  # after its last child
                self.out.write("\n" + "  " * depth + f"</{element.tag}>")
            else:
                self._start_tags()
                self.out.write(self._indent(depth) + etree.tostring(element, encoding="unicode"))
            if not depth:
                self.out.write("\n")


def _delims_attrs(d: Delimiters) -> dict:
    """Delimiters as attributes; characters XML cannot hold are written as their code points."""
    attrs = {}
    for name, value in (("element", d.element), ("component", d.component), ("segment", d.segment),
                        ("suffix", d.suffix), ("repetition", d.repetition)):
        if value is not None:
            attrs[name] = " ".join(str(ord(c)) for c in value)
    return attrs


def _delims_from_attrs(node) -> Delimiters:
    def get(name: str, default: str | None) -> str | None:
        value = node.get(name)
        if value is None:
            return default
        return "".join(chr(int(c)) for c in value.split())

    return Delimiters(get("element", "*"), get("component", ":"), get("repetition", None), get("segment", "~"),
                      get("suffix", "\n"))


def xml_to_x12(source: str | os.PathLike | BinaryIO | bytes, out: IO[str], filename: str | None = None) -> int:
    """Rebuild X12 from XML written by `to_xml`."""
    _load_lxml()
    name = filename or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<xml>")
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        if isinstance(source, bytes):
            root = etree.fromstring(source, parser)
        else:
            root = etree.parse(source, parser).getroot()
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else 0
        raise InterchangeError(f"not well-formed XML: {exc.msg}", Position(name, line)) from None
    if root.tag != "x12":
        raise InterchangeError("XML root is not <x12> (only XML written by this tool converts back)",
                               Position(name, 1))
    n = 0
    for interchange in root.iter("interchange"):
        d = _delims_from_attrs(interchange)
        end = d.segment + d.suffix
        for seg in interchange.iter("seg"):
            raw = seg.get("raw")
            if raw is not None:
                out.write(base64.b64decode(raw).decode("utf-8", "surrogateescape") + end)
                n += 1
                continue
            parts = [seg.get("id", "")]
            for ele in seg.findall("ele"):
                if ele.get("rep"):
                    parts.append(d.repetition.join(_xml_join(r, d) for r in ele.findall("rep")))
                else:
                    parts.append(_xml_join(ele, d))
            text = d.element.join(parts)
            out.write((from_latin1(text) if seg.get("latin1") else text) + end)
            n += 1
    return n


def _xml_join(node, d: Delimiters) -> str:
    subs = node.findall("sub")
    if subs:
        return d.component.join(s.text or "" for s in subs)
    return node.text or ""


CONVERTERS = {"ndjson": to_ndjson, "json": to_json, "xml": to_xml, "csv": to_csv, "x12": to_x12}


def looks_like_xml(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


__all__ = ["CONVERTERS", "FORMATS", "xml_to_x12", "looks_like_xml", "to_ndjson", "to_json", "to_xml",
           "to_csv", "to_x12"]
