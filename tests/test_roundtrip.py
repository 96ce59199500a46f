"""Round trips: X12 -> X12 and X12 -> XML -> X12 are segment-for-segment identical."""

import io

import pytest
from conftest import corpus_params, fixture_files

from edi_pipeline.formats.convert import to_json, to_ndjson, to_x12, to_xml, xml_to_x12
from edi_pipeline.core.errors import InterchangeError
from edi_pipeline.x12.reader import SegmentReader


def segments(data: bytes) -> list[str]:
    return [s for s, _ in SegmentReader(data)]


def check_roundtrip(path):
    data = path.read_bytes()
    try:
        original = segments(data)
    except InterchangeError:
        pytest.skip("not an interchange")
    out = io.StringIO()
    to_x12(data, out, str(path))
    assert segments(out.getvalue().encode()) == original
    xml = io.StringIO()
    to_xml(data, xml, str(path))
    back = io.StringIO()
    xml_to_x12(xml.getvalue().encode(), back)
    assert segments(back.getvalue().encode()) == original
    # whitespace may differ, but the bytes of each segment do not
    if b"\r" not in data and data[:3] == b"ISA" and data.rstrip()[-1:] == data[105:106]:
        assert back.getvalue().replace("\n", "") == data.decode().replace("\n", "")


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_roundtrip(path):
    check_roundtrip(path)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixture_roundtrip(path):
    check_roundtrip(path)


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_json_and_ndjson_never_crash(path):
    data = path.read_bytes()
    import json
    out = io.StringIO()
    to_json(data, out, str(path))
    tree = json.loads(out.getvalue())
    assert tree["interchanges"]
    nd = io.StringIO()
    to_ndjson(data, nd, str(path))
    for line in nd.getvalue().splitlines():
        assert json.loads(line)["type"]
