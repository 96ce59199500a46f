"""Hypothesis fuzzing of the reader: mutated files give issues or InterchangeError, never a crash."""

import io

from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi_pipeline.convert import to_x12, to_xml, xml_to_x12
from edi_pipeline.document import iter_records
from edi_pipeline.errors import InterchangeError, IssueList
from edi_pipeline.validate import validate_file

SEEDS = [(FIXTURES / n).read_bytes() for n in
         ("837p-clean.837", "pair-denials.835", "837p-crlf-bom.837", "pair-plb.835", "837p-multi-interchange.837")]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "swap", "drop", "dup", "stray", "flip"]))
        segs = bytes(data).split(b"~")
        if op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "swap":
            a, b = draw(st.sampled_from([(b"*", b"~"), (b"~", b"*"), (b":", b"*"), (b"*", b"|"), (b"~", b"\n")]))
            data = bytearray(bytes(data).replace(a, b, draw(st.integers(1, 5))))
        elif op in ("drop", "dup") and len(segs) > 2:
            k = draw(st.integers(0, len(segs) - 1))
            segs = segs[:k] + segs[k + 1:] if op == "drop" else segs[:k] + [segs[k]] + segs[k:]
            data = bytearray(b"~".join(segs))
        elif op == "stray":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_reader_never_crashes(data):
    issues = IssueList()
    try:
        for rec in iter_records(data, "fuzz.edi", issues):
            rec.to_dict()
        out = io.StringIO()
        to_x12(data, out, "fuzz.edi")
        xml = io.StringIO()
        to_xml(data, xml, "fuzz.edi")
        back = io.StringIO()
        xml_to_x12(xml.getvalue().encode(), back)
    except InterchangeError as exc:
        assert exc.pos.file == "fuzz.edi"
    for issue in issues:
        assert issue.pos.file == "fuzz.edi" and str(issue)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_validate_never_raises(data):
    result = validate_file("fuzz.edi", "fuzz.edi", data)
    for issue in result.issues:
        assert str(issue).startswith("fuzz.edi:")
