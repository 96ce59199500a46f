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
