"""Hypothesis fuzzing of the reader: mutated files give issues or InterchangeError, never a crash."""

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated

from edi_pipeline.formats.convert import to_x12, to_xml, xml_to_x12
from edi_pipeline.tx.document import iter_records
from edi_pipeline.core.errors import InterchangeError, IssueList
from edi_pipeline.validate.validator import validate_file

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
    from edi_pipeline.runners.batch import isa_indexes, scan_file
    from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment
    from edi_pipeline.core.errors import EdiError
    from edi_pipeline.x12.reader import Delimiters

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
    scanned = [(m.sender, m.control, m.line, i) for m, i in zip(marks, isa_indexes(path, marks))]
    assert [r for r in read if r in scanned] == scanned
    assert {r for r in read if r not in scanned} <= unreadable


_PCN_BYTES = [b for b in range(0x21, 0x100) if bytes([b]) not in b"*~:^"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pcn=st.lists(st.sampled_from(_PCN_BYTES), min_size=1, max_size=20).map(bytes))
def test_any_pcn_bytes_are_stored_and_still_match_between_837_and_835(tmp_path_factory, pcn):
    """Whatever bytes a PCN holds (UTF-8 or not), ingest stores them and reconcile pairs the claim with
    its payment; never an internal error."""
    import json

    from click.testing import CliRunner
    from conftest import FIXTURES

    from edi_pipeline.cli.commands import cli
    from edi_pipeline.core.safe_text import store_text

    d = tmp_path_factory.mktemp("pcn")
    paths = []
    for suffix in ("837", "835"):
        path = d / f"p.{suffix}"
        path.write_bytes((FIXTURES / f"pair-denials.{suffix}").read_bytes().replace(b"DBUNDLE01", pcn))
        paths.append(str(path))
    runner = CliRunner()
    ingested = runner.invoke(cli, ["ingest", *paths, "--db", str(d / "s.db")])
    assert ingested.exit_code == 0, ingested.output
    rec = runner.invoke(cli, ["reconcile", "--db", str(d / "s.db"), "--format", "json"])
    assert rec.exit_code == 0, rec.output
    doc = json.loads(rec.stdout)
    stored = store_text(pcn.decode("utf-8", "surrogateescape"))
    assert [c["status"] for c in doc["claims"] if c["patient_control_number"] == stored] == ["partially paid"]
    assert stored not in {u["patient_control_number"] for u in doc["unmatched_remits"]}
