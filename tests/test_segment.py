"""Tests for x12.segment.Segment: designator access, edits through it, and byte-identical round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.tx.document import iter_records
from edi_pipeline.x12 import segment as segment_module
from edi_pipeline.x12.reader import Delimiters
from edi_pipeline.x12.segment import Segment, designator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
SEPARATORS = "*|^~:>!+\\"


@st.composite
def segments(draw):
    """A segment id, delimiters and element values (components and all) that hold no delimiter."""
    element, component = draw(st.lists(st.sampled_from(SEPARATORS), min_size=2, max_size=2, unique=True))
    d = Delimiters(element, component, None, "~" if "~" not in (element, component) else "\n", "")
    plain = st.text(st.characters(blacklist_characters=element + component + d.segment, blacklist_categories=("Cs",)),
                    max_size=5)
    seg_id = draw(st.sampled_from(["SV1", "CLM", "HL", "NM1", "N3", "K3", "LX"]))
    elements = draw(st.lists(st.lists(plain, min_size=1, max_size=4).map(component.join), max_size=12))
    return seg_id, d, element.join([seg_id, *elements])


@settings(max_examples=300, deadline=None)
@given(segments(), st.integers(1, 14), st.integers(1, 6), st.text("ABC19 ", max_size=4))
def test_hypothesis_designators_match_split_and_set_round_trips(case, element, component, value):
    seg_id, d, text = case
    assert Segment(text, d).text == text  # byte-identical round trip
    split = text.split(d.element)
    seg = Segment(text, d)
    ref = f"{seg_id}{element:02d}"
    whole = split[element] if element < len(split) else ""
    assert seg[ref] == seg[element] == whole
    parts = whole.split(d.component)
    assert seg[f"{ref}-{component}"] == (parts[component - 1] if component <= len(parts) else "")
    assert seg.components(ref) == parts

    seg[f"{ref}-{component}"] = value
    after = seg.text.split(d.element)
    assert len(after) == max(len(split), element + 1)
    padded = split + [""] * (element + 1 - len(split))
    assert after[:element] == padded[:element] and after[element + 1:] == split[element + 1:]
    got = after[element].split(d.component)
    assert got[component - 1] == value
    assert got[:component - 1] == (parts + [""] * component)[:component - 1]
    assert got[component:] == parts[component:]
    assert Segment(seg.text, d)[f"{ref}-{component}"] == value


def test_designators_and_their_errors():
    assert designator("SV101-2") == ("SV1", 1, 2)
    assert designator("CLM05-3") == ("CLM", 5, 3)
    assert designator("HL04") == ("HL", 4, None)
    for bad in ("SV1", "SV100", "CLM05-0", "clm05", "CLM5", "CLM05-"):
        with pytest.raises(ValueError):
            designator(bad)
    seg = Segment("SV1*HC:97810:GP*40*UN*2", Delimiters())
    with pytest.raises(KeyError):
        seg["CLM05"]  # another segment's element
    with pytest.raises(KeyError):
        seg.components("SV101-2")  # a component is not an element
    with pytest.raises(IndexError):
        seg[0]
    assert (seg.id, len(seg), seg["SV101-3"], seg["SV107"], seg["SV101-9"]) == ("SV1", 4, "GP", "", "")
    assert "97810" not in repr(seg)  # element values may be PHI: repr names the segment only


def test_assignment_pads_and_keeps_the_delimiters():
    seg = Segment("CLM|A|10|||11>B", Delimiters("|", ">"))
    seg["CLM05-3"] = "7"
    seg["CLM09"] = "Y"
    assert seg.text == "CLM|A|10|||11>B>7||||Y"
    assert Segment.of("REF", "G1", "AUTH1", delimiters=Delimiters("|", ">")).text == "REF|G1|AUTH1"


@pytest.mark.parametrize("name", ["837p-tpi-units.837", "837p-tpi-modifiers.837", "837p-acu-initial-units.837",
                                  "837p-guide-recode.837", "837p-dn-one-line.837"])
def test_scrub_edits_use_the_files_own_delimiters(name, tmp_path):
    """The same corrections, byte for byte, when the file is written with other element and component
    separators: each edit changes elements through the claim's own delimiters."""
    outs = []
    for element, component in (("*", ":"), ("|", ">")):
        text = (FIXTURES / name).read_text()
        assert element == "*" or (element not in text and component not in text)
        src = tmp_path / f"in{len(outs)}.837"
        src.write_text(text.replace("*", element).replace(":", component))
        out = tmp_path / f"out{len(outs)}.837"
        result = scrub_file(src, out, tmp_path / f"held{len(outs)}.837")
        assert result.claims_corrected > 0
        outs.append(out.read_text())
    assert "*" not in outs[1] and ":" not in outs[1]
    assert outs[1].replace("|", "*").replace(">", ":") == outs[0]


def test_no_segment_is_built_for_segments_nobody_edits(tmp_path, monkeypatch):
    """Reading records and scrubbing a clean file build no Segment: they are made on demand only."""
    built = []
    real = Segment.__init__

    def counting(self, text, delimiters):
        built.append(text[:3])
        real(self, text, delimiters)

    monkeypatch.setattr(segment_module.Segment, "__init__", counting)
    assert list(iter_records(FIXTURES / "837p-clean.837"))
    scrub_file(FIXTURES / "837p-clean.837", tmp_path / "out.837", tmp_path / "held.837")
    assert built == []
    scrub_file(FIXTURES / "837p-tpi-units.837", tmp_path / "out2.837", tmp_path / "held2.837")
    assert built and set(built) <= {"SV1", "CLM", "LX*", "HL*", "SE*"}  # the edited segments only
