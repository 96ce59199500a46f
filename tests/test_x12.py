"""Syntax layer: delimiters, tolerated oddities, line numbers and streaming."""

import io

import pytest

from edi_pipeline.x12 import reader as x12
from edi_pipeline.core.errors import InterchangeError
from edi_pipeline.x12.reader import Delimiters, SegmentReader

ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~"
BODY = ["GS*HC*S*R*20260101*1200*1*X*005010X222A1", "ST*837*0001*005010X222A1", "BHT*0019*00*1*20260101*1200*CH",
        "SE*3*0001", "GE*1*1", "IEA*1*000000001"]


def text(term="~", suffix="\n", isa=ISA):
    return isa.replace("~", term) + suffix + "".join(s + term + suffix for s in BODY)


def segs(data, **kw):
    r = SegmentReader(data.encode() if isinstance(data, str) else data, **kw)
    return [s for s, _ in r], r


def test_delimiters_from_isa():
    d, n = Delimiters.from_isa(ISA)
    assert (d.element, d.component, d.repetition, d.segment) == ("*", ":", "^", "~")
    assert n == 106


def test_other_delimiters_and_no_newlines():
    data = text(term="_", suffix="").replace("*", "~").replace(":~", "^_")
    got, r = segs(ISA.replace("*", "|").replace(":~", ">\x1c") + "".join(s.replace("*", "|") + "\x1c" for s in BODY))
    assert r.delimiters.element == "|" and r.delimiters.segment == "\x1c" and r.delimiters.component == ">"
    assert got[-1] == "IEA|1|000000001"
    assert len(got) == 7
    assert data  # built without error


def test_bom_crlf_and_line_numbers():
    data = "\ufeff" + text(suffix="\r\n")
    got, r = segs(data)
    assert got[0].startswith("ISA*00") and got[-1] == "IEA*1*000000001"
    assert r.issues.has("SYN-BOM")
    lines = [line for _, line in SegmentReader(data.encode())]
    assert lines == list(range(1, 8))


def test_newline_as_terminator():
    data = ISA[:-1] + "\n" + "\n".join(BODY) + "\n"
    got, r = segs(data)
    assert len(got) == 7 and got[1].startswith("GS*HC")
    assert r.issues.has("SYN-NEWLINE-TERMINATOR")


def test_short_isa_is_read_and_reported():
    short = ISA.replace("*          *00", "*         *00", 1)
    got, r = segs(text(isa=short))
    assert len(got) == 7
    assert r.issues.has("ENV-ISA-LENGTH")


@pytest.mark.parametrize("bad", ["", "   \n", "GS*HC~", "ISA*00*", "ISA" + "*x" * 20])
def test_unreadable_start_raises_interchange_error(bad):
    with pytest.raises(InterchangeError):
        segs(bad)


def test_streams_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(x12, "CHUNK", 7)
    data = text() * 3
    got, _ = segs(data)
    assert len(got) == 21
    assert got.count(ISA[:-1]) == 3


def test_second_interchange_with_other_delimiters():
    other = text().replace("*", "|").replace(":~", ">!").replace("~", "!")
    got, r = segs(text() + other)
    assert len(got) == 14
    assert got[7].startswith("ISA|00") and got[-1] == "IEA|1|000000001"


def test_missing_final_terminator_warns():
    data = text()[:-2]
    got, r = segs(data)
    assert got[-1] == "IEA*1*000000001"
    assert r.issues.has("SYN-NO-TERMINATOR")


def test_reads_binary_stream():
    got, _ = segs(io.BytesIO(text().encode()), filename="x.837")
    assert len(got) == 7


def test_lower_case_segment_ids_are_read_with_a_warning():
    from conftest import FIXTURES

    from edi_pipeline.tx.document import iter_records
    from edi_pipeline.core.errors import IssueList
    from edi_pipeline.validate.validator import validate_file

    text = (FIXTURES / "837p-clean.837").read_text()
    lower = "~\n".join(s[:3].lower() + s[3:] for s in text.split("~\n"))
    issues = IssueList()
    claims = list(iter_records(lower.encode(), "lower.837", issues))
    assert len(claims) == len(list(iter_records(FIXTURES / "837p-clean.837")))
    assert issues.has("SYN-LOWERCASE")
    result = validate_file("lower.837", "lower.837", lower.encode())
    assert result.ok and result.acks and result.acks[0].accepted


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_last_chunk_still_restarts_on_an_isa_with_other_delimiters(monkeypatch, chunk):
    """Interchange 1 ends `IEA…~` with no newline and interchange 2 (| and FS) follows at once: the last
    chunk is read with the same ISA check as the others, wherever the chunk boundary falls."""
    first = text().rstrip("\n")  # newline after every terminator but the last
    second = ISA.replace("*", "|").replace(":~", ">\x1c") + "".join(s.replace("*", "|") + "\x1c" for s in BODY)
    monkeypatch.setattr(x12, "CHUNK", chunk)
    got, r = segs(first + second)
    ids = [t.split("*")[0].split("|")[0] for t in got]
    assert ids == ["ISA", *[s[:s.index("*")] for s in BODY], "ISA", *[s[:s.index("*")] for s in BODY]]
    assert not r.issues.has("SYN-NO-TERMINATOR")


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_second_interchange_whose_element_separator_was_the_terminator(monkeypatch, chunk):
    """Interchange 2 separates its elements with `~`, interchange 1's terminator, and ends segments
    with `!`: split at `~`, its ISA arrives in pieces, and is still read as a new interchange."""
    second = ISA.replace("~", "!").replace("*", "~") + "\n" + "".join(s.replace("*", "~") + "!\n" for s in BODY)
    monkeypatch.setattr(x12, "CHUNK", chunk)
    got, r = segs(text(suffix="") + second)
    assert len(got) == 14 and r.delimiters.element == "~" and r.delimiters.segment == "!"
    assert got[7] == second.split("!")[0] and got[-1] == "IEA~1~000000001"
    assert not r.issues
