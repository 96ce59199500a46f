"""Hypothesis fuzzing of the reader: mutated files give issues or InterchangeError, never a crash."""

import io

from hypothesis import HealthCheck, given, settings
from mutations import mutated

from edi_pipeline.convert import to_x12, to_xml, xml_to_x12
from edi_pipeline.document import iter_records
from edi_pipeline.errors import InterchangeError, IssueList
from edi_pipeline.validate import validate_file

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


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_batch_screen_finds_the_interchanges_the_reader_reads(tmp_path, data):
    """The batch screen's byte scan keys resends by the ISAs the envelope reader reads: same senders,
    control numbers, lines and positions, on damaged files too. It may pass over an ISA the reader
    cannot read either (cut off, too few elements), which the reader reports when the file is processed."""
    from edi_pipeline.batch import isa_index, scan_file
    from edi_pipeline.envelope import EnvelopeReader, EnvelopeSegment
    from edi_pipeline.errors import EdiError
    from edi_pipeline.x12 import Delimiters

    path = tmp_path / "fuzz.edi"
    path.write_bytes(data)
    try:
        marks = scan_file(path).interchanges
    except EdiError:
        return  # the batch quarantines the file with the reader's reason
    read, unreadable = [], set()
    try:
        with EnvelopeReader(path, "fuzz.edi") as env:
            for item in env:
                if isinstance(item, EnvelopeSegment) and item.tag == "ISA":
                    e = item.elements + [""] * 17
                    read.append((e[6].strip(), e[13].strip(), item.line, item.index))
                    try:
                        Delimiters.from_isa(item.text + item.delimiters.segment)
                    except InterchangeError:
                        unreadable.add(read[-1])
    except InterchangeError:
        return
    scanned = [(m.sender, m.control, m.line, isa_index(path, marks, m)) for m in marks]
    assert [r for r in read if r in scanned] == scanned
    assert {r for r in read if r not in scanned} <= unreadable
