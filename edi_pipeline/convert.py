"""Conversions: X12 to NDJSON, JSON, XML, CSV and X12, and this tool's XML back to X12."""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
from datetime import date
from decimal import Decimal
from typing import IO, BinaryIO

import orjson

from .document import iter_records, iter_transactions
from .envelope import Transaction
from .errors import InterchangeError, IssueList, Position
from .loops import Loop, loop_tree
from .model import Claim, ClaimPayment
from .safe_text import SafeCsvWriter, from_latin1, has_escaped_bytes, latin1_text
from .writer import X12Writer
from .x12 import Delimiters

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


def to_ndjson(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """One JSON object per 837P claim, 835 header and 835 claim payment. Returns the count.

    A value with bytes that were not UTF-8 is written as its bytes read as Latin-1 (safe_text.latin1_text),
    and its object gets `"latin1"`: the dotted paths of those values (`payer.name`, `lines.0.procedure`),
    so `value.encode("latin-1")` gives the bytes back."""
    n = 0
    write = _utf8_bytes_writer(out)
    fast = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    pending: list[bytes] = []
    for rec in iter_records(source, filename, issues):
        d = rec.to_dict(plain=True)
        try:
            pending.append(fast(d, option=newline))
        except orjson.JSONEncodeError:  # text with bytes that were not UTF-8 (kept as surrogates)
            found: list[str] = []
            d = _latin1_fields(d, "", found)
            d["latin1"] = found
            pending.append(fast(d, option=newline, default=json_default))
        n += 1
        if len(pending) >= 512:
            write(b"".join(pending))
            pending.clear()
    if pending:
        write(b"".join(pending))
    return n


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
    return n


def _adjustments(adjustments) -> str:
    return "|".join(f"{a.group}-{a.reason}:{a.amount}" for a in adjustments)


def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, date):
        return v.isoformat()
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


def _loop_json(node: Loop, tx: Transaction) -> dict:
    d = tx.delimiters
    children = []
    for child in node.children:
        if isinstance(child, Loop):
            children.append(_loop_json(child, tx))
        else:
            children.append(_segment_json(tx.segments[child], d))
    return {"loop": node.id, "children": children}


def to_json(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """The whole file as a tree: interchanges > groups > transaction sets > loops > segments.

    A segment with bytes that were not UTF-8 has `"latin1": true` and its id and elements are its bytes
    read as Latin-1: `element.join([id, *elements]).encode("latin-1")` gives the segment's bytes back."""
    doc: dict = {"file": latin1_text(filename) if filename else filename, "interchanges": []}
    isa = group = None
    n = 0
    for item in iter_transactions(source, filename, issues):
        if isinstance(item, Transaction):
            tree = _loop_json(loop_tree(item), item)
            tx = {"set_id": item.set_id, "control_number": item.control_number, "version": item.version,
                  "segments": tree["children"]}
            if group is None:
                group = {"GS": None, "transactions": []}
                (isa or _new_isa(doc))["groups"].append(group)
            group["transactions"].append(tx)
            n += 1
            continue
        d = item.delimiters
        seg = _segment_json(item.text, d)
        if item.tag == "ISA":
            isa = {"ISA": seg, "delimiters": _delims_dict(d), "groups": []}
            doc["interchanges"].append(isa)
            group = None
        elif item.tag == "GS":
            group = {"GS": seg, "transactions": []}
            (isa or _new_isa(doc))["groups"].append(group)
        elif item.tag == "GE":
            if group is not None:
                group["GE"] = seg
            group = None
        elif item.tag == "IEA":
            if isa is not None:
                isa["IEA"] = seg
            isa = None
        else:
            (isa or _new_isa(doc)).setdefault("stray", []).append(seg)
    out.write(json.dumps(doc, ensure_ascii=False, indent=1))
    out.write("\n")
    return n


def _new_isa(doc: dict) -> dict:
    isa = {"ISA": None, "groups": []}
    doc["interchanges"].append(isa)
    return isa


def _delims_dict(d: Delimiters) -> dict:
    return {"element": d.element, "component": d.component, "repetition": d.repetition,
            "segment": d.segment, "suffix": d.suffix}


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_segment(parent, text: str, d: Delimiters, envelope: bool) -> None:
    latin1 = has_escaped_bytes(text)
    shown = latin1_text(text) if latin1 else text
    if _NOT_XML.search(shown):
        # Characters XML cannot hold: the segment travels as base64 of its bytes.
        raw = base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")
        etree.SubElement(parent, "seg", raw=raw)
        return
    e = shown.split(d.element)
    seg = etree.SubElement(parent, "seg", id=e[0])
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


def _xml_value(node, value: str, d: Delimiters, name: str) -> None:
    if d.component in value:
        for j, sub in enumerate(value.split(d.component), 1):
            etree.SubElement(node, "sub", id=f"{name}-{j}").text = sub
    else:
        node.text = value


def _xml_loop(parent, node: Loop, tx: Transaction) -> None:
    for child in node.children:
        if isinstance(child, Loop):
            el = etree.SubElement(parent, "loop", id=_NOT_XML.sub("?", child.id))
            _xml_loop(el, child, tx)
        else:
            _xml_segment(parent, tx.segments[child], tx.delimiters, False)


def to_xml(source, out: IO[str], filename: str | None = None, issues: IssueList | None = None) -> int:
    """An XML tree of interchanges, groups, transaction sets, loops, segments and elements
    that `xml_to_x12` turns back into the same X12. A segment with bytes that were not UTF-8 is
    `<seg latin1="1">`, its text being its bytes read as Latin-1; one with characters XML cannot hold
    is `<seg raw="BASE64 OF ITS BYTES"/>`."""
    _load_lxml()
    root = etree.Element("x12")
    if filename:
        root.set("file", _NOT_XML.sub("?", latin1_text(os.path.basename(filename))))
    interchange = group = None
    n = 0
    for item in iter_transactions(source, filename, issues):
        d = item.delimiters
        if isinstance(item, Transaction):
            parent = group if group is not None else (interchange if interchange is not None else root)
            txe = etree.SubElement(parent, "transaction", id=_NOT_XML.sub("?", item.set_id))
            _xml_loop(txe, loop_tree(item), item)
            n += 1
            continue
        if item.tag == "ISA":
            interchange = etree.SubElement(root, "interchange", **_delims_attrs(d))
            group = None
            _xml_segment(interchange, item.text, d, True)
        elif item.tag == "GS":
            group = etree.SubElement(interchange if interchange is not None else root, "group")
            _xml_segment(group, item.text, d, True)
        elif item.tag == "GE":
            _xml_segment(group if group is not None else (interchange if interchange is not None else root),
                         item.text, d, True)
            group = None
        elif item.tag == "IEA":
            _xml_segment(interchange if interchange is not None else root, item.text, d, True)
            interchange = None
            group = None
        else:
            _xml_segment(group if group is not None else (interchange if interchange is not None else root),
                         item.text, d, True)
    out.write(etree.tostring(root, encoding="unicode", pretty_print=True))
    return n


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
