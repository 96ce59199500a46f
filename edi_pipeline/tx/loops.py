"""Loop structure of 837P and 835 transaction sets: which loop each segment opens, as a tree."""

from __future__ import annotations

from dataclasses import dataclass, field

from edi_pipeline.x12.envelope import Transaction

# NM1 qualifier -> loop, per enclosing section
_NM1_837 = {
    "header": {"41": "1000A", "40": "1000B"},
    "2000A": {"85": "2010AA", "87": "2010AB", "PE": "2010AC"},
    "2000B": {"IL": "2010BA", "PR": "2010BB"},
    "2000C": {"QC": "2010CA"},
    "2300": {"DN": "2310A", "P3": "2310A", "82": "2310B", "77": "2310C", "DQ": "2310D", "PW": "2310E",
             "45": "2310F"},
    "2320": {"IL": "2330A", "PR": "2330B", "DN": "2330C", "P3": "2330C", "82": "2330D", "77": "2330E",
             "DQ": "2330F", "85": "2330G"},
    "2400": {"82": "2420A", "QB": "2420B", "77": "2420C", "DQ": "2420D", "DK": "2420E", "DN": "2420F",
             "P3": "2420F", "PW": "2420G", "45": "2420H"},
}
_PARENT_837 = {
    "1000A": (), "1000B": (), "2000A": (),
    "2010AA": ("2000A",), "2010AB": ("2000A",), "2010AC": ("2000A",),
    "2000B": ("2000A",), "2010BA": ("2000B",), "2010BB": ("2000B",),
    "2000C": ("2000B",), "2010CA": ("2000C",),
    "2300": ("2000B", "2000C"),
    "2310A": ("2300",), "2310B": ("2300",), "2310C": ("2300",), "2310D": ("2300",), "2310E": ("2300",),
    "2310F": ("2300",), "2320": ("2300",),
    "2330A": ("2320",), "2330B": ("2320",), "2330C": ("2320",), "2330D": ("2320",), "2330E": ("2320",),
    "2330F": ("2320",), "2330G": ("2320",),
    "2400": ("2300",), "2410": ("2400",), "2420A": ("2400",), "2420B": ("2400",), "2420C": ("2400",),
    "2420D": ("2400",), "2420E": ("2400",), "2420F": ("2400",), "2420G": ("2400",), "2420H": ("2400",),
    "2430": ("2400",), "2440": ("2400",),
}
_PARENT_835 = {"1000A": (), "1000B": (), "2000": (), "2100": ("2000",), "2110": ("2100",)}
_HL_837 = {"20": "2000A", "22": "2000B", "23": "2000C"}


@dataclass(slots=True)
class Loop:
    id: str
    children: list = field(default_factory=list)  # Loop or int (segment offset)


def _section(loop: str) -> str:
    if loop.startswith(("2310", "2300")):
        return "2300"
    if loop.startswith(("2320", "2330")):
        return "2320"
    if loop.startswith(("2400", "2410", "2420", "2430", "2440")):
        return "2400"
    if loop.startswith("2010A") or loop == "2000A":
        return "2000A"
    if loop.startswith("2010B") or loop == "2000B":
        return "2000B"
    if loop.startswith("2010C") or loop == "2000C":
        return "2000C"
    return "header"


def loop_opened_837(seg_id: str, e: list[str], current: str) -> str | None:
    if seg_id == "HL":
        return _HL_837.get(e[3] if len(e) > 3 else "", "2000B")
    if seg_id == "CLM":
        return "2300"
    if seg_id == "LX":
        return "2400"
    if seg_id == "SBR" and _section(current) in ("2300", "2320", "2400"):
        return "2320"
    if seg_id == "LIN":
        return "2410"
    if seg_id == "SVD":
        return "2430"
    if seg_id == "LQ":
        return "2440"
    if seg_id == "NM1" and len(e) > 1:
        return _NM1_837.get(_section(current), {}).get(e[1])
    return None


def loop_opened_835(seg_id: str, e: list[str], current: str) -> str | None:
    if seg_id == "N1" and len(e) > 1 and current in ("header", "1000A", "1000B"):
        return {"PR": "1000A", "PE": "1000B"}.get(e[1])
    return {"LX": "2000", "CLP": "2100", "SVC": "2110"}.get(seg_id)


def loop_tree(tx: Transaction) -> Loop:
    """The transaction set as nested loops; segments outside any loop hang off the root."""
    sep = tx.delimiters.element
    if tx.set_id == "837":
        opened, parents = loop_opened_837, _PARENT_837
    elif tx.set_id == "835":
        opened, parents = loop_opened_835, _PARENT_835
    else:
        opened, parents = None, {}
    root = Loop(tx.set_id or "ST")
    stack = [root]
    last = len(tx.segments) - 1
    for i, text in enumerate(tx.segments):
        e = text.split(sep)
        sid = e[0].upper()
        new = None
        if opened is not None and 0 < i and not (i == last and sid == "SE"):
            if sid == "PLB":
                del stack[1:]
            else:
                new = opened(sid, e, stack[-1].id if len(stack) > 1 else "header")
        if i == last and sid == "SE":
            del stack[1:]
        if new is not None:
            wanted = parents.get(new, ())
            while len(stack) > 1 and stack[-1].id not in wanted:
                stack.pop()
            node = Loop(new)
            stack[-1].children.append(node)
            stack.append(node)
        stack[-1].children.append(i)
    return root
