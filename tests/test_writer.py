"""Tests for x12.writer.X12Writer, the one envelope writer (convert's faithful copy and the scrub's outputs)."""

from __future__ import annotations

import io

from samples import tiny_837

from edi_pipeline.scrub import scrubber
from edi_pipeline.x12 import writer
from edi_pipeline.x12.envelope import EnvelopeReader, Transaction


def _items(text: str):
    with EnvelopeReader(text.encode(), "in") as env:
        return list(env)


def _two_groups() -> str:
    """One interchange, two groups (GE01 and IEA01 deliberately wrong), one set in each."""
    lines = tiny_837().split("~\n")
    gs, body, isa = lines[1], lines[2:-3], lines[0]
    return "~\n".join([isa, gs, *body, "GE*9*1", gs.replace("*1*X*", "*2*X*"), *body, "GE*9*2", "IEA*9*000000001", ""])


def test_the_scrub_writes_through_the_one_writer():
    assert scrubber.X12Writer is writer.X12Writer
    assert not hasattr(scrubber, "_Out")


def test_eager_without_recount_is_a_faithful_copy():
    text = _two_groups()
    out = io.StringIO()
    w = writer.X12Writer(out, recount=False)
    for item in _items(text):
        w.write(item)
    assert out.getvalue() == text


def test_eager_recount_rewrites_the_trailers():
    out = io.StringIO()
    w = writer.X12Writer(out)
    for item in _items(_two_groups()):
        w.write(item)
    segs = out.getvalue().split("~\n")
    assert [s for s in segs if s.startswith(("GE", "IEA"))] == ["GE*1*1", "GE*1*2", "IEA*2*000000001"]


def test_lazy_drops_a_group_left_without_sets_and_opens_its_file_on_first_write():
    opened = []

    def open_file():
        opened.append(io.StringIO())
        return opened[-1]

    w = writer.X12Writer(lazy=True, open_file=open_file)
    first = True
    for item in _items(_two_groups()):
        if isinstance(item, Transaction):
            if first:  # the first group's only set is left out
                first = False
                continue
            w.transaction(item, item.segments)
        else:
            w.envelope(item)
    segs = opened[0].getvalue().split("~\n")
    assert len(opened) == 1
    assert [s[:2] for s in segs if s[:2] in ("GS", "GE", "IE")] == ["GS", "GE", "IE"]
    assert "GE*1*2" in segs and "IEA*1*000000001" in segs

    idle = writer.X12Writer(lazy=True, open_file=open_file)
    for item in _items(_two_groups()):
        if not isinstance(item, Transaction):
            idle.envelope(item)
    assert len(opened) == 1 and idle.fh is None  # nothing written: no file
