"""Issue 12, the segment reader: whitespace between segments in any mix is read as pyx12 reads it, and an
overlong segment is an error with its position, skipped in bounded memory."""

import hashlib
import io
import json
import random
import subprocess
import sys

import pytest
import pyx12.x12file
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import CORPUS, FIXTURES, ROOT, corpus_files, corpus_params

from edi_pipeline import iter_records

from edi_pipeline.x12 import reader as x12
from edi_pipeline.cli.commands import cli
from edi_pipeline.core.errors import EdiError, IssueList
from edi_pipeline.x12.reader import MAX_SEGMENT, SegmentReader

FIXTURE_FILES = sorted(FIXTURES.glob("*.8*"))


def read(data, name="x.837"):
    r = SegmentReader(data, name)
    return list(r), r


def segments_of(path):
    """(text, line, terminator) of every segment the reader yields, and its issues."""
    r = SegmentReader(path, path.name)
    out = []
    for texts, lines in r.batches():
        out += [(t, ln, r.delimiters.segment) for t, ln in zip(texts, lines)]
    return out, r.issues


def digest(path) -> str:
    h = hashlib.sha256()
    r = SegmentReader(path, path.name)
    try:
        for texts, lines in r.batches():
            for t, ln in zip(texts, lines):
                h.update(f"{ln}\x00{t}\x01".encode("utf-8", "surrogateescape"))
    except EdiError as exc:
        h.update(("EXC" + str(exc)).encode("utf-8", "surrogateescape"))
    for i in r.issues:
        h.update(str(i).encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def pin_key(path) -> str:
    return f"fixtures/{path.name}" if path.parent == FIXTURES else f"corpus/{path.relative_to(CORPUS)}"


def clean_segments(name):
    raw = (FIXTURES / name).read_bytes()
    return [s for s in raw.split(b"~\n") if s]


def claims(data, name="x.837"):
    issues = IssueList()
    records = list(iter_records(data, name, issues))
    return records, issues


def pyx12_count(data: bytes) -> int:
    return sum(1 for _ in pyx12.x12file.X12Reader(io.StringIO(data.decode("latin-1"))))


# ---- 1. tolerant reading

@pytest.mark.parametrize("name", ["837p-clean.837", "pair-denials.835", "pair-plb.835"])
@pytest.mark.parametrize("layout", ["bare CR after some", "tab after ~", "space after ~", "CR, LF, CRLF mixed"])
def test_whitespace_after_terminators_in_any_mix_reads_every_claim_as_pyx12_does(name, layout):
    segs = clean_segments(name)
    ends = {"bare CR after some": [b"~\r", b"~", b"~"], "tab after ~": [b"~\t"], "space after ~": [b"~ "],
            "CR, LF, CRLF mixed": [b"~\r", b"~\n", b"~\r\n", b"~"]}[layout]
    data = b"".join(s + ends[k % len(ends)] for k, s in enumerate(segs))
    want, _ = claims(FIXTURES / name, name)
    got, issues = claims(data, name)
    assert not issues.errors, [str(i) for i in issues.errors[:3]]
    assert len(got) == len(want)
    assert [getattr(r, "patient_control_number", None) for r in got] == \
           [getattr(r, "patient_control_number", None) for r in want]
    assert len(list(SegmentReader(data))) == len(segs) == pyx12_count(data)


@pytest.mark.parametrize("indent", [b"  ", b"\t", b"    "])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_indented_files_read_every_claim(indent, newline):
    """Every segment preceded by blanks (the Inteligenz samples), the first ISA too or not."""
    segs = clean_segments("837p-clean.837")
    want, _ = claims(FIXTURES / "837p-clean.837")
    for first in (indent, b""):
        data = b"".join((indent if k else first) + s + b"~" + newline for k, s in enumerate(segs))
        got, issues = claims(data)
        assert not issues.errors, [str(i) for i in issues.errors[:3]]
        assert [c.patient_control_number for c in got] == [c.patient_control_number for c in want]
        if not first:  # pyx12 reads an indented file whose ISA starts the file
            assert pyx12_count(data) == len(segs)


def test_blanks_never_end_up_inside_values_and_lines_stay_right():
    segs = [s.decode() for s in clean_segments("837p-clean.837")]
    text = "".join(("\t" if k % 4 == 1 else "  ") + s + "~\n" for k, s in enumerate(segs))
    got, _ = read(text.encode())
    assert [t for t, _ in got] == segs
    assert [ln for _, ln in got] == list(range(1, len(segs) + 1))


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_tolerant_reading_does_not_depend_on_where_chunks_end(monkeypatch, chunk):
    segs = clean_segments("pair-denials.835")
    data = b"".join((b"\t" if k % 7 == 3 else b"  ") + s + b"~\n" for k, s in enumerate(segs)) * 3
    monkeypatch.setattr(x12, "CHUNK", chunk)
    got, r = read(data)
    assert [t.encode() for t, _ in got] == segs * 3 and not r.issues.errors
    assert [ln for _, ln in got] == list(range(1, 3 * len(segs) + 1))


def sloppy_layouts(name):
    """The fixture as real senders lay it out: every segment indented (the ISA too), a tab after each
    terminator, a bare CR after some segments only."""
    segs = clean_segments(name)
    return {"indented": b"".join(b"  " + s + b"~\r\n" for s in segs),
            "tab after ~": b"".join(s + b"~\t" for s in segs),
            "bare CR after some": b"".join(s + (b"~\r" if k % 3 == 0 else b"~") for k, s in enumerate(segs))}


@pytest.mark.parametrize("layout", ["indented", "tab after ~", "bare CR after some"])
def test_validate_accepts_a_sloppy_layout_as_it_accepts_the_clean_file(tmp_path, layout):
    """Whether validate walks the file set by set or whole (a reader finding, or bytes given), it sees the
    segments the reader reads: no error for blanks pyx12's reader skips."""
    from edi_pipeline.validate.validator import validate_file

    path = tmp_path / "sloppy.837"
    path.write_bytes(sloppy_layouts("837p-clean.837")[layout])
    for result in (validate_file(path, "sloppy.837"), validate_file(path, "sloppy.837", path.read_bytes()),
                   validate_file(path, "sloppy.837", by_set=False)):
        assert not result.issues.errors, [str(i) for i in result.issues.errors[:3]]
        assert result.claims == 9 and result.acks and all(a.accepted for a in result.acks)


def test_batch_sends_the_claims_of_a_sloppy_layout(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for k, data in enumerate(sloppy_layouts("837p-clean.837").values()):
        # three different files: other ISA13s, claim ids and dates, so none is a resend (nor a DUPLICATE-CLAIM)
        (inbox / f"sloppy{k}.837").write_bytes(data.replace(b"000001000", b"00000100%d" % k)
                                               .replace(b"CLEAN", b"CLEA%d" % k)
                                               .replace(b"D8*20261005", b"D8*2026100%d" % (k + 5)))
    r = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(tmp_path / "out"), "--db", str(tmp_path / "s.db"),
                                 "--settle", "0", "--format", "json"], catch_exceptions=False)
    summary = json.loads(r.stdout)
    assert [(f["status"], f["claims_out"]) for f in summary["file_outcomes"]] == [("done", 9)] * 3, r.output
    assert r.exit_code == 0


BLANK_RUNS = ["", "\n", "\r", "\r\n", " ", "\t", "  ", "\n\t", "\r\n    ", "\n\n", " \r\n\t "]


NO_LF_RUNS = ("", "\r", " ", "\t", "\r\t ")


def mangled(segments, rng, layout):
    """The segments written back with the whitespace `layout` after each terminator (a fixed run; random
    ones, from a tuple or BLANK_RUNS when None, then with random indents too), and the line each one then
    starts on."""
    out, lines, line = [], [], 1
    for text, _, term in segments:
        lead = rng.choice(["", " ", "\t", "   "]) if not isinstance(layout, str) else ""
        line += lead.count("\n")
        lines.append(line)
        run = layout if isinstance(layout, str) else rng.choice(layout or BLANK_RUNS)
        if term == "\n":
            run = run.replace("\n", "")  # (there a newline is the terminator)
        out.append(lead + text + term + run)
        line += (text + term + run).count("\n")
    return "".join(out), lines


@pytest.mark.parametrize("layout", [None, NO_LF_RUNS, "\n  ", "\t", "\r", "\r\n\t", " "])
@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in FIXTURE_FILES] + corpus_params())
def test_a_blank_mangled_copy_reads_exactly_as_the_original(path, layout):
    """Each fixture and corpus file, rewritten with other (or random) whitespace between its segments,
    yields the same segment texts, on the lines they now start on, with the same errors."""
    try:
        original, issues = segments_of(path)
    except EdiError:
        pytest.skip("not readable at all: nothing to compare")
    rng = random.Random(path.name)
    text, lines = mangled(original, rng, layout)
    got, r = read(text.encode("utf-8", "surrogateescape"), path.name)
    assert [t for t, _ in got] == [t for t, _, _ in original]
    assert [ln for _, ln in got] == lines
    assert [i.code for i in r.issues.errors] == [i.code for i in issues.errors]


@pytest.mark.parametrize("layout", [None, "\n  ", "\t", "\r", "\x0b", "\x0c\n"])
def test_the_batch_screen_finds_the_interchanges_the_reader_reads_in_any_layout(tmp_path, layout):
    from edi_pipeline.runners.batch import scan_file
    from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment

    original, _ = segments_of(FIXTURES / "837p-multi-interchange.837")
    text, _ = mangled(original, random.Random(1), layout)
    path = tmp_path / "multi.837"
    path.write_bytes(text.encode())
    with EnvelopeReader(path) as env:
        isas = [(e.elements[6].strip(), e.elements[13].strip(), e.line) for e in env
                if isinstance(e, EnvelopeSegment) and e.tag == "ISA"]
    assert len(isas) > 1
    assert [(m.sender, m.control, m.line) for m in scan_file(path).interchanges] == isas


FUZZ_FILES = [FIXTURES / n for n in ("837p-clean.837", "pair-plb.835", "837p-multi-interchange.837")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FUZZ_FILES), st.integers(0, 2**32), st.sampled_from([None, NO_LF_RUNS, "\n  ", "\t", "\r\n"]),
       st.sampled_from([16, 97, 1 << 12, 1 << 20]))
def test_any_blanks_between_segments_read_the_same_segments_on_the_right_lines(path, seed, layout, chunk):
    original, issues = segments_of(path)
    text, lines = mangled(original, random.Random(seed), layout)
    saved, x12.CHUNK = x12.CHUNK, chunk
    try:
        got, r = read(text.encode(), path.name)
    finally:
        x12.CHUNK = saved
    assert [t for t, _ in got] == [t for t, _, _ in original]
    assert [ln for _, ln in got] == lines
    assert [i.code for i in r.issues.errors] == [i.code for i in issues.errors]


# What the reader yields for every fixture and corpus file (segment texts, lines, issues), pinned at the
# start of this change: tolerant reading reads all of them exactly as before.
PINNED = {
    "corpus/LinuxForHealth__x12/cob-contractural-adjustment.835": "aa04ae44622fc3e7",
    "corpus/LinuxForHealth__x12/demo.835": "b6352276697ec1f4",
    "corpus/LinuxForHealth__x12/demo.837": "a4bbba0740d0cd1a",
    "corpus/LinuxForHealth__x12/demo.ambulance.example5.837": "2b48e80b328e8cd3",
    "corpus/LinuxForHealth__x12/demo.autoaccident.837": "d6f1e713e9009a32",
    "corpus/LinuxForHealth__x12/demo.cob.2ndary.example4.837": "c21c5a32ca7a6c89",
    "corpus/LinuxForHealth__x12/demo.cob.example3.A.837": "1fa45c0316b53173",
    "corpus/LinuxForHealth__x12/demo.cob.example3.B.837": "cdfebbddbe744b36",
    "corpus/LinuxForHealth__x12/demo.cob.example3.C.837": "2ea0ec340cd314f8",
    "corpus/LinuxForHealth__x12/demo.cob.example4.837": "270b59d194d501cd",
    "corpus/LinuxForHealth__x12/demo.drug.example10.1.837": "cf2a5f580e966dc0",
    "corpus/LinuxForHealth__x12/demo.drug.example10.2.837": "7a5a7e0642b8ea4f",
    "corpus/LinuxForHealth__x12/demo.drug.example10.3.837": "4c6b0213edd73080",
    "corpus/LinuxForHealth__x12/demo.example1.837": "429ae00719c80211",
    "corpus/LinuxForHealth__x12/demo.example11.837": "c00baed67c23d76c",
    "corpus/LinuxForHealth__x12/demo.example12.837": "6b21befdbbf480ff",
    "corpus/LinuxForHealth__x12/demo.example2.837": "c275121da2dc177e",
    "corpus/LinuxForHealth__x12/demo.example7.837": "32694cf7239c3e7a",
    "corpus/LinuxForHealth__x12/demo.example8.837": "76e320c3e1d0401b",
    "corpus/LinuxForHealth__x12/demo.example9.837": "491cc6c4fb2dc7a6",
    "corpus/LinuxForHealth__x12/managed-care.835": "0727691f8bbd92bd",
    "corpus/LinuxForHealth__x12/secondary-payment.835": "2de1fdc9a5658037",
    "corpus/LinuxForHealth__x12/tertiary-payment.835": "dd27ec7632ae7467",
    "corpus/UHIN__x12-parser-library/837.edi": "9edbce93238f25f6",
    "corpus/azoner__pyx12/834_ls_le_ls_5010.999.txt": "a06ba245f69de264",
    "corpus/azoner__pyx12/834_lui_id_5010.999.txt": "304306e27583fc7e",
    "corpus/azoner__pyx12/835_mult_loops.txt": "b3103b60d260cb55",
    "corpus/imsweb__x12-parser/x12_277CA_accepted.txt": "01c11ab2fcefd06d",
    "corpus/imsweb__x12-parser/x12_277CA_rejected.txt": "2f9014950ff83f83",
    "corpus/imsweb__x12-parser/x12_999_accepted.txt": "c591cad1556b0c8b",
    "corpus/imsweb__x12-parser/x12_999_rejected.txt": "f35b0d213a2321f8",
    "corpus/imsweb__x12-parser/x12_ambiguous_loop.txt": "eb3614d82a13e850",
    "corpus/imsweb__x12-parser/x12_bad_first_line.txt": "7613ae60e6031d70",
    "corpus/imsweb__x12-parser/x12_bad_segment_identifier.txt": "b13d732960eb89fc",
    "corpus/imsweb__x12-parser/x12_bad_valid_code.txt": "1057f887a8ebccc0",
    "corpus/imsweb__x12-parser/x12_complex.txt": "875a026cade92d32",
    "corpus/imsweb__x12-parser/x12_loop_errors1_exceeds_max_1_parent.txt": "83890aa5f435471c",
    "corpus/imsweb__x12-parser/x12_loop_errors2_exceeds_max_repeats_multiple_parents.txt": "0ed530072c7fc0bd",
    "corpus/imsweb__x12-parser/x12_loop_errors3_missing_loops.txt": "1cb43204cd1999ed",
    "corpus/imsweb__x12-parser/x12_many_claims.txt": "d7bcbdfbcec3ed5e",
    "corpus/imsweb__x12-parser/x12_missing_elements.txt": "7d05587d9d85bbdd",
    "corpus/imsweb__x12-parser/x12_missing_required_loop_in_one_repeat.txt": "35e80a932c1c74bb",
    "corpus/imsweb__x12-parser/x12_missing_required_loops_mult_repeats.txt": "98e01a674268b01b",
    "corpus/imsweb__x12-parser/x12_multiple_gs.txt": "b0a2d693d0beecf6",
    "corpus/imsweb__x12-parser/x12_multiple_isa.txt": "bd1e5829d25daef9",
    "corpus/imsweb__x12-parser/x12_multiple_st.txt": "047ce57d1c8b92eb",
    "corpus/imsweb__x12-parser/x12_multiple_transactions.txt": "5e7b64f86e7ec445",
    "corpus/imsweb__x12-parser/x12_no_errors.txt": "7b3e93ad22506d98",
    "corpus/imsweb__x12-parser/x12_segment_errors.txt": "b8136820df3cfe9e",
    "corpus/imsweb__x12-parser/x12_segments_out_of_order.txt": "6eda7c0c8f185a29",
    "corpus/imsweb__x12-parser/x12_valid.txt": "074a82a34f8a3d00",
    "corpus/imsweb__x12-parser/x12_valid_different_separators.txt": "7e0012434cc580b8",
    "corpus/imsweb__x12-parser/x12_writer_test.txt": "8e919d9bc87170de",
    "corpus/keironstoddart__edi-835-parser/emedny_sample.txt": "df3b2bff48225b49",
    "corpus/keironstoddart__edi-835-parser/united_healthcare_legacy_sample.txt": "a240de2932d65da3",
    "corpus/tastypackets__x12-parser/multi-line-not-delimited.edi": "7999ec36dce1dfd7",
    "corpus/tastypackets__x12-parser/profee-multiple.edi": "83d0c750ff2aed98",
    "corpus/tastypackets__x12-parser/profee.edi": "825a5ad552a5d3fe",
    "fixtures/835-corrupt.835": "6c6c2e13a36bcbab",
    "fixtures/835-unbalanced.835": "b622ea06c12b46ae",
    "fixtures/837p-acu-addon-mue.837": "503b6a0eea2cc00e",
    "fixtures/837p-acu-addon-no-primary.837": "ccafaacd986ce647",
    "fixtures/837p-acu-initial-units.837": "ffb62e685266c445",
    "fixtures/837p-acu-ncd-dx-am.837": "a0eae29063995cb9",
    "fixtures/837p-acu-ncd-dx-commercial.837": "b74c49a719f28c14",
    "fixtures/837p-acu-ncd-dx-wc.837": "1836ec0f9fe4b728",
    "fixtures/837p-acu-ncd-dx.837": "a72ac02a8238a60b",
    "fixtures/837p-acu-ncd-max.837": "39e69a0be68d0762",
    "fixtures/837p-acu-ncd-visits-kx.837": "ec35d9affa16bfae",
    "fixtures/837p-acu-ncd-visits.837": "7a669eae28863eef",
    "fixtures/837p-acu-one-initial.837": "9c4f10ab1be467bd",
    "fixtures/837p-auth-required-on-file.837": "f4b5658f65603396",
    "fixtures/837p-auth-required.837": "bea14e634df046f0",
    "fixtures/837p-clean.837": "97a9ea1636cf6a65",
    "fixtures/837p-cpm-addon.837": "61c258955b261e18",
    "fixtures/837p-cpm-monthly.837": "b0c8bde3c21ea77e",
    "fixtures/837p-crlf-bom.837": "aaa022536bcade43",
    "fixtures/837p-dn-one-code.837": "eb76fae542f89e28",
    "fixtures/837p-dn-one-line.837": "5934aedd1b2819c9",
    "fixtures/837p-dn-tpi-same-session-xs.837": "90803d80c13129f4",
    "fixtures/837p-dn-tpi-same-session.837": "208e34b9fdce5f37",
    "fixtures/837p-dn-units.837": "2c2f7169368faf16",
    "fixtures/837p-drug-lidocaine.837": "81a15683f72aaf3d",
    "fixtures/837p-dx-pointer.837": "74eb375d99025660",
    "fixtures/837p-em-same-day-mod25.837": "b2095cb3a864066e",
    "fixtures/837p-em-same-day.837": "3fd71d0b99f26673",
    "fixtures/837p-guide-included.837": "5094b24109c696e7",
    "fixtures/837p-guide-tpi-commercial.837": "89f9f9db5526dcbb",
    "fixtures/837p-guide-tpi-medicare.837": "4067a6a65f0917b1",
    "fixtures/837p-invalid-se-count.837": "1fd9848c9e003555",
    "fixtures/837p-invalid-truncated.837": "3d261e678de59b17",
    "fixtures/837p-multi-interchange.837": "7e1729ad21abc8d5",
    "fixtures/837p-total-mismatch.837": "f60e8bbd2ff92009",
    "fixtures/837p-tpi-anesthesia.837": "f42080cc246fbb1f",
    "fixtures/837p-tpi-freq-commercial.837": "9dafa450c36aa485",
    "fixtures/837p-tpi-freq.837": "52c1bcf3424c1c0a",
    "fixtures/837p-tpi-modifiers.837": "9a0fb2c91b150829",
    "fixtures/837p-tpi-one-code-different-dates.837": "c2f7ac2bc4a7f96a",
    "fixtures/837p-tpi-one-code-different-rendering.837": "aa4416d9aa2a6eb0",  # (made a commercial near-miss since)
    "fixtures/837p-tpi-one-code-split-claims.837": "83ae1fd7b2d4cb34",
    "fixtures/837p-tpi-one-code.837": "e06d1d9e5a4cad11",
    "fixtures/837p-tpi-one-line.837": "fb0eb2282d51d70a",
    "fixtures/837p-tpi-units.837": "053aecdf8a83f4f1",
    "fixtures/837p-unlisted-desc-present.837": "6230b5a2d61302c4",
    "fixtures/837p-unlisted-desc.837": "c21857d26f33c3e0",
    "fixtures/837p-x222a2.837": "c9c1bb8d3dbfc6f7",
    "fixtures/pair-corrections.835": "d542b78593d599b8",
    "fixtures/pair-corrections.837": "1e3454889d07762b",
    "fixtures/pair-denials.835": "4eb248e1e69c78cc",
    "fixtures/pair-denials.837": "f0a9260a4670bc7c",
    "fixtures/pair-plb.835": "37f8233b6acac1b7",
    "fixtures/pair-plb.837": "6c433d128cd2b9ed",
    "fixtures/pair-reversal.835": "d50996ac32d85c82",
    "fixtures/pair-reversal.837": "78369a196076dd5f",
}


def test_the_fixtures_and_the_corpus_read_exactly_as_before():
    files = FIXTURE_FILES + corpus_files()
    got = {pin_key(p): digest(p) for p in files if pin_key(p) in PINNED}  # (fixtures added since are new)
    want = {k: v for k, v in PINNED.items() if k.startswith("fixtures/") or corpus_files()}
    assert got == want


# ---- 2. overlong segments

def big_file(path, size, term=b"~", newline=b"\n", at=10):
    """837p-clean.837 with `size` more characters in the last element of segment `at` (0 = ISA)."""
    segs = clean_segments("837p-clean.837")
    if term != b"~":
        segs = [s.replace(b":~", b":" + term) for s in segs]
    with open(path, "wb") as fh:
        for k, s in enumerate(segs):
            fh.write(s)
            if k == at:
                block = b"X" * (1 << 20)
                for _ in range(size >> 20):
                    fh.write(block)
                fh.write(b"X" * (size & ((1 << 20) - 1)))
            fh.write(term + newline)
    return segs


@pytest.mark.parametrize("term,newline", [(b"~", b"\n"), (b"~", b""), (b"\n", b"")])
@pytest.mark.parametrize("chunk", [1 << 16, 1 << 20])
def test_an_overlong_segment_is_an_error_at_its_position_and_the_rest_still_reads(tmp_path, monkeypatch, term,
                                                                                  newline, chunk):
    monkeypatch.setattr(x12, "CHUNK", chunk)
    path = tmp_path / "long.837"
    segs = big_file(path, MAX_SEGMENT + 5, term, newline)
    got, r = read(path, "long.837")
    assert [t.encode() for t, _ in got] == segs[:10] + segs[11:]
    errors = [str(i) for i in r.issues.errors]
    line = 11 if newline or term == b"\n" else 1
    assert errors == [f"long.837:{line}: N3#11 SEG-TOO-LONG segment is longer than {MAX_SEGMENT} characters; "
                      "skipped unread"]
    if newline or term == b"\n":
        assert [ln for _, ln in got][9:11] == [10, 12]
    # At the limit, a segment is read; a blank run of any length between segments is no segment at all.
    segs = big_file(path, MAX_SEGMENT - len(clean_segments("837p-clean.837")[10]), term, newline)
    got, r = read(path)
    assert len(got) == len(segs) and not r.issues.errors and len(got[10][0]) == MAX_SEGMENT
    if term == b"~":
        path.write_bytes(b"~\n".join(segs[:5]) + b"~" + b"\n" * (3 * MAX_SEGMENT) + b"~\n".join(segs[5:]) + b"~\n")
        got, r = read(path)
        assert [t.encode() for t, _ in got] == segs and not r.issues.errors
        assert got[5][1] == 5 + 3 * MAX_SEGMENT


# The peak RSS of the process itself (VmHWM), in kB, last on its output: ru_maxrss would also count the
# pytest process it was forked from.
PEAK = "print(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))"
MEASURE = """
import sys
from edi_pipeline.x12.reader import SegmentReader
r = SegmentReader(sys.argv[1])
n = sum(1 for _ in r)
print(n, len(r.issues.errors))
""" + PEAK


def test_a_50_mb_segment_is_skipped_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.837"
    segs = big_file(path, 50 << 20)
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    count, errors, peak_kb = map(int, proc.stdout.split())
    assert (count, errors) == (len(segs) - 1, 1)
    assert peak_kb < 150 * 1024, f"peak RSS {peak_kb // 1024} MB"


def test_validate_does_not_walk_the_whole_text_of_a_file_with_an_overlong_segment(tmp_path):
    """An envelope finding (here a missing IEA) makes validate walk a small file's whole text, which would
    hold the segment the reader skipped: it walks it set by set instead."""
    path = tmp_path / "long.837"
    big_file(path, 20 << 20)
    data = path.read_bytes()
    path.write_bytes(data[:data.rfind(b"IEA*")])
    del data
    code = ("import sys\nfrom edi_pipeline.validate.validator import validate_file\n"
            "r = validate_file(sys.argv[1])\n"
            "print(' '.join(sorted({i.code for i in r.issues.errors})))\n" + PEAK)
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    *codes, peak_kb = proc.stdout.split()
    assert "SEG-TOO-LONG" in codes and "ENV-IEA-MISSING" in codes
    assert int(peak_kb) < 100 * 1024, f"peak RSS {int(peak_kb) // 1024} MB"


def test_the_batch_screen_scans_a_50_mb_segment_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.837"
    big_file(path, 50 << 20, at=3)
    code = ("import sys, pathlib\nfrom edi_pipeline.runners.batch import scan_file\n"
            "s = scan_file(pathlib.Path(sys.argv[1]))\n"
            "print(s.kind, len(s.interchanges))\n" + PEAK)
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    kind, n, peak_kb = proc.stdout.split()
    assert (kind, n) == ("837P", "1")
    assert int(peak_kb) < 100 * 1024, f"peak RSS {int(peak_kb) // 1024} MB"


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", ["convert", "validate", "scrub", "ingest", "batch"])
def test_every_command_turns_an_overlong_segment_into_exit_1(tmp_path, command):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "long.837"
    big_file(path, MAX_SEGMENT + 1)
    args = {"convert": ["convert", str(path), "--to", "ndjson", "-o", str(tmp_path / "out.ndjson")],
            "validate": ["validate", str(path)],
            "scrub": ["scrub", str(path), "-o", str(tmp_path / "out.837")],
            "ingest": ["ingest", str(path), "--db", str(tmp_path / "s.db")],
            "batch": ["batch", str(inbox), "--out", str(tmp_path / "out"), "--db", str(tmp_path / "s.db"),
                      "--settle", "0"]}[command]
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
    if command == "batch":
        assert "N3#11 SEG-TOO-LONG" in (tmp_path / "out" / "quarantine" / "long.837.error.txt").read_text()
    else:
        assert "long.837:11: N3#11 SEG-TOO-LONG" in r.output
    if command == "scrub":
        assert not (tmp_path / "out.837").exists()
