"""Tests for edi_pipeline.tr3.reference: TR3 validation through pyx12 and 999 generation."""

import os
from datetime import datetime
from pathlib import Path

import pytest
from samples import tiny_837

from edi_pipeline.core.errors import Severity
from edi_pipeline.tr3.reference import Tr3Result, validate_tr3

CORPUS = Path(os.environ.get("EDI_CORPUS", Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"))
NOW = datetime(2024, 1, 2, 3, 4)


def corpus_file(rel: str) -> str:
    path = CORPUS / rel
    if not path.is_file():
        pytest.skip(f"corpus not found at {CORPUS}; set EDI_CORPUS")
    return path.read_text(encoding="utf-8", errors="replace")


def corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.is_file())


def run(rel: str) -> Tr3Result:
    return validate_tr3(corpus_file(rel), Path(rel).name, now=NOW)


def errors(result: Tr3Result) -> list:
    return [i for i in result.issues if i.severity is Severity.ERROR]


def segments(ack: str) -> list[list[str]]:
    return [s.strip().split("*") for s in ack.split("~") if s.strip()]


def check_999(ack: str) -> list[list[str]]:
    """The 999 parses: fixed-width ISA, matching trailers and counts."""
    isa_text = ack.split("~")[0]
    assert len(isa_text) + 1 == 106
    segs = segments(ack)
    ids = [s[0] for s in segs]
    assert ids[:3] == ["ISA", "GS", "ST"] and ids[-3:] == ["SE", "GE", "IEA"]
    assert segs[2][1] == "999" and segs[2][3] == "005010X231A1"
    se = segs[ids.index("SE")]
    assert int(se[1]) == ids.index("SE") - ids.index("ST") + 1
    assert se[2] == segs[2][2]
    assert segs[-2][2] == segs[1][6] and segs[-1][2] == segs[0][13]
    # the 999 is itself valid against pyx12's 999 map
    own = validate_tr3(ack, "ack.999")
    assert not errors(own), [str(i) for i in errors(own)]
    return segs


def find(result: Tr3Result, code: str, line: int) -> list:
    return [i for i in result.issues if i.code == code and i.pos.line == line]


# ---------------------------------------------------------------- corpus


@pytest.mark.parametrize("rel", corpus_files() or ["<missing>"])
def test_every_corpus_file_validates_without_raising(rel):
    if rel == "<missing>":
        pytest.skip(f"corpus not found at {CORPUS}; set EDI_CORPUS")
    if rel.endswith(".md"):
        pytest.skip("not X12")
    result = run(rel)
    assert not [i for i in result.issues if i.code in ("ENV-PYX12", "ENV-UNREADABLE")]
    text = corpus_file(rel)
    if "ST*837" in text or "ST*835" in text:
        assert result.groups, "an 837/835 file must yield a 999"
        for group in result.groups[:3]:
            check_999(group.ack_text)


CLEAN = [
    "UHIN__x12-parser-library/837.edi",
    "LinuxForHealth__x12/demo.837",  # 005010X222A2, validated with the A1 map
    "LinuxForHealth__x12/demo.example1.837",
    "azoner__pyx12/835_mult_loops.txt",
    "keironstoddart__edi-835-parser/emedny_sample.txt",
    "tastypackets__x12-parser/profee.edi",
    "tastypackets__x12-parser/multi-line-not-delimited.edi",  # newline as segment terminator
]


@pytest.mark.parametrize("rel", CLEAN)
def test_clean_corpus_files_are_accepted(rel):
    result = run(rel)
    assert errors(result) == []
    assert result.groups and all(g.accepted for g in result.groups)
    for group in result.groups:
        segs = check_999(group.ack_text)
        assert ["IK5", "A"] in segs
        assert next(s for s in segs if s[0] == "AK9")[1] == "A"


def test_x222a2_files_are_relabelled_and_acknowledged():
    result = run("LinuxForHealth__x12/demo.837")
    assert [i.code for i in result.issues] == ["ENV-MAP-SUBSTITUTED"]
    ack = result.groups[0]
    assert ack.transaction_type == "837" and ack.group_control_number
    assert ["AK1", "HC", ack.group_control_number, "005010X222A2"] in segments(ack.ack_text)


def test_imsweb_valid_files_are_not_tr3_valid():
    """imsweb's "valid" samples pass imsweb's loop parser but not the TR3: they
    write HI as HI*BK*8901 (4010 style, no composite), repeat HL*2, restart LX
    numbering wrongly and carry SE01=25 for 34 segments. Those, and only those,
    are reported."""
    for rel in ("imsweb__x12-parser/x12_valid.txt",
                "imsweb__x12-parser/x12_valid_different_separators.txt"):
        result = run(rel)
        assert {i.pos.segment_id for i in errors(result)} == {"HI", "HL", "LX", "SE"}
        assert find(result, "IK5-4", 36)
        assert find(result, "IK3-8", 27)  # HL*2*3: HL01 repeated, parent 3 unknown
        assert not result.groups[0].accepted
    result = run("imsweb__x12-parser/x12_no_errors.txt")
    assert {i.pos.segment_id for i in errors(result)} == {"HI", "HL", "SE"}


BROKEN = [
    # file, code, line, segment id, element
    ("x12_bad_valid_code.txt", "IK4-7", 9, "NM1", "NM101"),  # NM1*117
    ("x12_bad_segment_identifier.txt", "IK3-1", 6, "", None),  # "*IC*DAVID..."
    ("x12_bad_segment_identifier.txt", "IK3-1", 11, "Nd4", None),
    ("x12_bad_segment_identifier.txt", "IK3-1", 20, "NM31", None),
    ("x12_missing_elements.txt", "IK4-1", 7, "NM1", "NM102"),  # NM1*40**
    ("x12_missing_elements.txt", "IK4-1", 31, "CLM", "CLM05"),  # CLM05 composite gone
    ("x12_segments_out_of_order.txt", "IK3-3", 11, "N4", None),  # REF where N4 belongs
    ("x12_segments_out_of_order.txt", "IK3-2", 12, "N4", None),
    ("x12_segments_out_of_order.txt", "IK3-2", 17, "N3", None),
    ("x12_loop_errors1_exceeds_max_1_parent.txt", "IK3-4", 15, "NM1", None),  # 2nd 2010AA
    ("x12_loop_errors2_exceeds_max_repeats_multiple_parents.txt", "IK3-4", 34, "NM1", None),
    ("x12_loop_errors3_missing_loops.txt", "IK3-3", 9, "NM1", None),  # no 2010AA
    ("x12_missing_required_loop_in_one_repeat.txt", "IK3-3", 20, "NM1", None),  # no 2010BA
    ("x12_missing_required_loops_mult_repeats.txt", "IK3-3", 35, "LX", None),  # SV1 without LX
    ("x12_segment_errors.txt", "IK3-3", 10, "N3", None),  # 2010AA without N3
    ("x12_segment_errors.txt", "IK3-5", 12, "REF", None),  # second REF*EI
    ("x12_segment_errors.txt", "IK3-3", 22, "HI", None),  # 2300 without HI
    ("x12_bad_first_line.txt", "ENV-ISA-LENGTH", 1, "ISA", None),  # ISA02 is 9 wide
]


@pytest.mark.parametrize("name,code,line,seg_id,element", BROKEN)
def test_broken_imsweb_files_report_the_defect_where_it_is(name, code, line, seg_id, element):
    result = run(f"imsweb__x12-parser/{name}")
    hits = [i for i in find(result, code, line) if i.pos.segment_id == seg_id]
    assert hits, [str(i) for i in result.issues]
    issue = hits[0]
    assert issue.severity is Severity.ERROR
    assert issue.pos.element == element
    assert issue.pos.file == name
    if code.startswith("IK"):
        assert issue.pos.st_position == line - 2  # ST is on line 3 in these files
        assert not result.groups[0].accepted


def test_rejected_999_carries_ik3_ik4_and_parses():
    result = run("imsweb__x12-parser/x12_bad_valid_code.txt")
    segs = check_999(result.groups[0].ack_text)
    assert ["IK3", "NM1", "7", "2010", "8"] in segs
    assert ["IK4", "1", "98", "7"] in segs  # no IK404: a value of an NM1 is never copied (PHI)
    assert segs[[s[0] for s in segs].index("IK5")][:2] == ["IK5", "R"]
    assert ["AK9", "R", "1", "1", "0"] in segs


def test_bad_first_line_is_validated_after_padding():
    result = run("imsweb__x12-parser/x12_bad_first_line.txt")
    isa = [i for i in result.issues if i.pos.segment_id == "ISA"]
    assert [i.code for i in isa] == ["ENV-ISA-LENGTH"]
    assert result.groups  # the rest of the file was still validated
    check_999(result.groups[0].ack_text)


def test_835s_yield_a_999():
    for rel in ("LinuxForHealth__x12/demo.835", "keironstoddart__edi-835-parser/united_healthcare_legacy_sample.txt"):
        result = run(rel)
        assert result.groups[0].transaction_type == "835"
        check_999(result.groups[0].ack_text)


def test_835_with_gs01_hc_is_relabelled():
    text = corpus_file("tastypackets__x12-parser/profee.edi").replace("GS*HP*", "GS*HC*", 1)
    result = validate_tr3(text, "hc.835", now=NOW)
    assert [i.code for i in result.issues] == ["ENV-GS01"]
    assert result.groups[0].accepted
    assert ["AK1", "HC"] == segments(result.groups[0].ack_text)[3][:2]


def test_multiple_groups_and_interchanges():
    result = run("imsweb__x12-parser/x12_multiple_gs.txt")
    assert len(result.groups) == 3
    result = run("tastypackets__x12-parser/profee-multiple.edi")
    assert len(result.groups) == 156 and all(g.accepted for g in result.groups)


def test_999_and_277ca_inputs_are_flagged_not_crashed():
    result = run("imsweb__x12-parser/x12_999_accepted.txt")
    assert any(i.code == "ENV-NOT-837P-835" and i.severity is Severity.INFO for i in result.issues)
    assert result.groups == []  # acknowledgments are not acknowledged
    result = run("imsweb__x12-parser/x12_277CA_accepted.txt")
    assert any(i.code == "ENV-NOT-837P-835" for i in result.issues)


def test_many_transaction_sets():
    result = run("imsweb__x12-parser/x12_multiple_transactions.txt")
    assert len(result.groups) == 312


# ---------------------------------------------------------------- inline




def test_inline_valid_claim_is_accepted():
    result = validate_tr3(tiny_837(), "tiny.837", now=NOW)
    assert result.issues == [], [str(i) for i in result.issues]
    assert len(result.groups) == 1 and result.groups[0].accepted
    segs = check_999(result.groups[0].ack_text)
    assert ["IK5", "A"] in segs and ["AK9", "A", "1", "1", "1"] in segs
    assert segs[0][9:11] == ["240102", "0304"]  # `now` fixes the envelope date


def test_inline_bad_code_is_rejected_with_ik4_7_at_its_position():
    result = validate_tr3(tiny_837(clm05="11:X:1"), "bad.837", now=NOW)
    hits = [i for i in result.issues if i.code == "IK4-7"]
    assert len(hits) == 1, [str(i) for i in result.issues]
    pos = hits[0].pos
    assert (pos.line, pos.segment_index, pos.st_position) == (17, 17, 15)
    assert (pos.segment_id, pos.loop, pos.element) == ("CLM", "2300", "CLM05-2")
    assert str(hits[0]).startswith("bad.837:17: CLM#15 [2300] CLM05-2 IK4-7")
    assert hits[0].value == "X"
    segs = check_999(result.groups[0].ack_text)
    assert ["IK3", "CLM", "15", "2300", "8"] in segs
    assert ["IK4", "5:2", "1332", "7", "X"] in segs
    assert ["IK5", "R", "5"] in segs
    assert not result.groups[0].accepted


def test_inline_bom_crlf_and_non_ascii_are_absorbed():
    text = tiny_837(prefix="\ufeff\r\n").replace("~\n", "~\r\n").replace("BILLING", "BÏLLING")
    result = validate_tr3(text, "odd.837", now=NOW)
    assert [i.code for i in result.issues] == ["ENV-NON-ASCII"]
    assert result.issues[0].pos.line == 10 and result.issues[0].pos.segment_id == "NM1"
    assert result.groups[0].accepted


def test_inline_newline_terminated_and_other_separators():
    text = tiny_837().replace("~\n", "\n")
    assert validate_tr3(text, now=NOW).groups[0].accepted
    text = tiny_837().replace("*", "|").replace(":", "^^").replace("^^", ">")
    result = validate_tr3(text, now=NOW)
    assert result.issues == [] and result.groups[0].accepted


def test_phi_is_not_echoed():
    text = tiny_837().replace("NM1*IL*1*DOE*JANE****MI*M123", "NM1*IL*9*DOE*JANE****MI*M123")
    result = validate_tr3(text, now=NOW)
    assert result.errors
    for issue in result.issues:
        assert "DOE" not in issue.message and "JANE" not in issue.message
        assert "M123" not in (issue.value or "")
    assert "DOE" not in result.groups[0].ack_text


@pytest.mark.parametrize("text", [
    "", "   \n", "hello world", "ISA", "ISA*00", "\x00\x01\x02garbage\xff",
    "GS*HC*A*B*20240101*1200*1*X*005010X222A1~",
    "ISA*00*          *00*          *ZZ*A              *ZZ*B              *240101*1200*^*00999*000000001*0*T*:~",
])
def test_garbage_gives_env_issue_not_exception(text):
    result = validate_tr3(text, "junk")
    assert result.groups == []
    assert any(i.code.startswith("ENV-") and i.severity is Severity.ERROR for i in result.issues)


def test_truncated_and_mangled_inputs_never_raise():
    full = tiny_837()
    for cut in range(0, len(full), 7):
        validate_tr3(full[:cut])
    validate_tr3(full.replace("GS*", "GE*"))
    validate_tr3(full.replace("ST*837*0001*005010X222A1~\n", ""))
    validate_tr3(full.replace("SV1*HC:99213", "SV1*HC:99213:1:2:3:4:5:6:7:8"))  # pyx12 IndexError
    validate_tr3(full + full)
    validate_tr3(b"ISA*bytes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ interchange control numbers of the 999s


def _take(args):
    from edi_pipeline.validate.validator import take_control_numbers

    folder, count = args
    return [n for _ in range(count) for n in take_control_numbers(Path(folder), 1)]


def test_no_two_999s_share_an_interchange_control_number(tmp_path):
    from edi_pipeline.validate.validator import validate_file, write_acks

    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
    controls = []
    for _ in range(2):  # the same files acknowledged twice, as a rerun does
        for name in ("837p-multi-interchange.837", "pair-plb.837"):
            for path in write_acks(validate_file(fixtures / name), tmp_path / "acks"):
                segs = segments(path.read_text())
                isa, gs, ge, iea = segs[0], segs[1], segs[-2], segs[-1]
                assert isa[13] == iea[2] and gs[6] == ge[2] and int(gs[6]) == int(isa[13])
                controls.append(isa[13])
    assert len(controls) == 6 and len(set(controls)) == 6


def test_parallel_writers_never_take_the_same_control_number(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        taken = pool.map(_take, [(str(tmp_path), 40)] * 2)
    every = taken[0] + taken[1]
    assert len(set(every)) == 80 and max(every) == 80


def test_control_numbers_wrap_after_nine_digits(tmp_path):
    from edi_pipeline.validate.validator import SEQUENCE_NAME, take_control_numbers

    (tmp_path / SEQUENCE_NAME).write_text("999999998\n")
    assert take_control_numbers(tmp_path, 3) == [999999999, 1, 2]
    assert take_control_numbers(tmp_path, 1) == [3]


def test_a_numbered_999_differs_only_in_its_control_numbers():
    ack = validate_tr3(tiny_837(), "t.837").groups[0]
    text = ack.numbered(4711)
    check_999(text)  # still a valid 999 with a fixed-width ISA
    before, after = segments(ack.ack_text), segments(text)
    assert [s[0] for s in before] == [s[0] for s in after]
    assert after[0][13] == "000004711" == after[-1][2] and after[1][6] == "4711" == after[-2][2]
    for b, a in zip(before, after):
        if b[0] not in ("ISA", "GS", "GE", "IEA"):
            assert a == b


# ------------------------------------------------------------------ TA1 interchange acknowledgments


def _ta1s(tmp_path, text: str, name: str = "in.837") -> dict[str, list[list[str]]]:
    from edi_pipeline.validate.validator import validate_file, write_acks

    src = tmp_path / name
    src.write_text(text)
    acks = tmp_path / "acks"
    written = write_acks(validate_file(src), acks)
    out = {}
    for path in written:
        if path.suffix == ".ta1":
            raw = path.read_text()
            assert len(raw.split("~")[0]) == 105  # fixed-width ISA
            segs = segments(raw)
            assert [s[0] for s in segs] == ["ISA", "TA1", "IEA"] and segs[2][1:] == ["0", segs[0][13]]
            out[path.name] = segs
    return out


MULTI = Path(__file__).resolve().parent.parent / "fixtures" / "edi" / "837p-multi-interchange.837"


def test_a_ta1_rejects_the_interchange_whose_envelope_is_broken(tmp_path):
    text = MULTI.read_text().replace("IEA*1*000000102", "IEA*1*000000999")  # the second interchange's trailer
    ta1s = _ta1s(tmp_path, text)
    assert list(ta1s) == ["in.837.000000102.ta1"]  # the first interchange is sound and asked for none
    acks = sorted(p.name for p in (tmp_path / "acks").glob("*.999"))
    assert acks == ["in.837.10101.999"]  # the rejected interchange's group (10201) gets no 999
    isa, ta1, _ = ta1s["in.837.000000102.ta1"]
    assert ta1[1:] == ["000000102", "261201", "1300", "R", "001"]  # TA101-103 name the received ISA
    assert (isa[6].strip(), isa[8].strip()) == ("CLEARHOUSE01", "PAINCLINIC01")  # an answer: sender and receiver swap


def test_a_ta1_accepts_an_interchange_that_asks_for_one(tmp_path):
    first = MULTI.read_text().split("IEA*1*000000101~")[0] + "IEA*1*000000101~\n"
    for folder in ("quiet", "asking"):
        (tmp_path / folder).mkdir()
    assert _ta1s(tmp_path / "quiet", first) == {}  # ISA14 = 0 and no envelope error: no TA1
    asking = first.replace("*000000101*0*T*", "*000000101*1*T*")  # ISA14 = 1
    ta1s = _ta1s(tmp_path / "asking", asking)
    assert [segs[1][4:] for segs in ta1s.values()] == [["A", "000"]]


def test_a_damaged_control_number_sequence_is_an_error_not_a_restart(tmp_path):
    from edi_pipeline.core.errors import EdiError
    from edi_pipeline.validate.validator import SEQUENCE_NAME, take_control_numbers

    (tmp_path / SEQUENCE_NAME).write_text("12a\n")
    with pytest.raises(EdiError, match="damaged"):
        take_control_numbers(tmp_path, 1)
    assert (tmp_path / SEQUENCE_NAME).read_text() == "12a\n"


def test_a_repeated_isa13_rejects_only_the_repeat_and_every_ack_keeps_its_own_file(tmp_path):
    text = MULTI.read_text()
    first, second = text.split("IEA*1*000000101~")
    first = first.replace("*000000101*0*T*", "*000000101*1*T*")  # the first asks for a TA1
    second = second.replace("000000102", "000000101")  # the second repeats its ISA13 (and IEA02)
    ta1s = _ta1s(tmp_path, first + "IEA*1*000000101~" + second)
    assert sorted(segs[1][4:][0] + segs[1][5] for segs in ta1s.values()) == ["A000", "R025"]
    assert len(ta1s) == 2  # two files, though both answer ISA13 000000101
    acks = sorted(p.name for p in (tmp_path / "acks").glob("*.999"))
    assert acks == ["in.837.10101.999"]  # the first interchange's group is acknowledged; the repeat's is not
