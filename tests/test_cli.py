"""The convert and validate commands: outputs, exit codes, error lines, no tracebacks, no partial files."""

import json
import re

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, corpus_params

from edi_pipeline.cli.commands import cli

ERROR_LINE = re.compile(r"^\S.*:\d+: \S+#\d+( \[\w+\])?( [A-Z0-9]+[0-9-]*)? [A-Z0-9]+-[A-Z0-9-]+ .+")


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_help_has_examples():
    for cmd in ("convert", "validate"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Examples:" in r.output


@pytest.mark.parametrize("fmt", ["ndjson", "json", "xml", "csv", "x12"])
def test_convert_formats(tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    r = run("convert", str(FIXTURES / "837p-clean.837"), "--to", fmt, "-o", str(out))
    assert r.exit_code == 0, r.output
    text = out.read_text()
    if fmt == "ndjson":
        rows = [json.loads(x) for x in text.splitlines()]
        assert len(rows) == 9 and rows[0]["patient_control_number"] == "CLEANMCR01"
        assert rows[0]["total_charge"] == "410"
    elif fmt == "json":
        assert json.loads(text)["interchanges"][0]["groups"][0]["transactions"][0]["set_id"] == "837"
    elif fmt == "csv":
        assert text.splitlines()[0].startswith("file,type,patient_control_number")
        from edi_pipeline.tx.document import iter_records
        n_lines = sum(len(c.lines) for c in iter_records(FIXTURES / "837p-clean.837"))
        assert len(text.splitlines()) == 1 + n_lines
    elif fmt == "x12":
        assert text == (FIXTURES / "837p-clean.837").read_text()


def test_xml_back_to_x12_via_cli(tmp_path):
    xml = tmp_path / "c.xml"
    back = tmp_path / "c.837"
    assert run("convert", str(FIXTURES / "837p-multi-interchange.837"), "--to", "xml", "-o", str(xml)).exit_code == 0
    assert run("convert", str(xml), "--to", "x12", "-o", str(back)).exit_code == 0
    assert back.read_text() == (FIXTURES / "837p-multi-interchange.837").read_text()


def test_stdin_to_stdout():
    r = run("convert", "-", "--to", "ndjson", input=(FIXTURES / "pair-plb.835").read_bytes())
    assert r.exit_code == 0
    types = [json.loads(x)["type"] for x in r.stdout.splitlines()]
    assert types[0] == "835_header" and types.count("835_claim_payment") == 2


def test_garbage_input_one_line_error_and_no_partial_file(tmp_path):
    bad = tmp_path / "bad.837"
    bad.write_bytes(b"\x00\x01 this is not x12")
    out = tmp_path / "out.ndjson"
    r = run("convert", str(bad), "--to", "ndjson", "-o", str(out))
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: ") and "bad.837:1: ISA#1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.ndjson.*"))


def test_convert_of_a_truncated_file_writes_what_it_read_and_exits_1(tmp_path):
    text = (FIXTURES / "837p-clean.837").read_text()
    cut = text[:text.index("\nSE*")]  # no SE, GE or IEA
    out = tmp_path / "out.ndjson"
    r = run("convert", "-", "--to", "ndjson", "-o", str(out), input=cut)
    assert r.exit_code == 1
    assert out.read_text().count("837P_claim") >= 1
    assert "ENV-SE-MISSING" in r.stderr and all(ERROR_LINE.match(x) for x in r.stderr.splitlines())
    with_bom = "\ufeff" + cut  # plus a warning (SYN-BOM)
    assert "SYN-BOM" in run("convert", "-", "--to", "ndjson", "-o", str(out), input=with_bom).stderr
    quiet = run("convert", "-", "--to", "ndjson", "-o", str(out), "--quiet", input=with_bom)
    assert quiet.exit_code == 1 and "ENV-SE-MISSING" in quiet.stderr and "SYN-BOM" not in quiet.stderr
    clean = run("convert", str(FIXTURES / "837p-clean.837"), "--to", "ndjson", "-o", str(out))
    assert clean.exit_code == 0 and not clean.stderr


def test_missing_file_is_exit_1_and_usage_is_exit_2(tmp_path):
    assert run("convert", str(tmp_path / "nope.837"), "--to", "json").exit_code == 1
    assert run("convert", str(FIXTURES / "837p-clean.837"), "--to", "yaml").exit_code == 2
    assert run("validate").exit_code == 2


def test_validate_accepts_clean_and_writes_999(tmp_path):
    r = run("validate", str(FIXTURES / "837p-clean.837"), "--ack-dir", str(tmp_path))
    assert r.exit_code == 0, r.output
    acks = list(tmp_path.glob("*.999"))
    assert len(acks) == 1
    text = acks[0].read_text()
    assert "IK5*A" in text and "AK9*A*1*1*1" in text


def test_validate_rejects_with_positioned_lines(tmp_path):
    r = run("validate", str(FIXTURES / "837p-total-mismatch.837"), str(FIXTURES / "835-unbalanced.835"),
            "--ack-dir", str(tmp_path))
    assert r.exit_code == 1
    lines = [x for x in r.stdout.splitlines() if not x.endswith("(warning)")]
    assert any(" BAL-CLAIM " in x and "[2300] CLM02" in x for x in lines)
    assert any(" BAL-LINE " in x and "[2110] SVC03" in x for x in lines)
    assert any(" BAL-PAYMENT " in x for x in lines)
    for x in lines:
        assert ERROR_LINE.match(x), x


def test_validate_json_format():
    r = run("validate", str(FIXTURES / "837p-invalid-se-count.837"), "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc[0]["ok"] is False
    assert any(i["code"] == "IK5-4" and i["segment_id"] == "SE" for i in doc[0]["issues"])


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_never_crashes(path, tmp_path):
    for args in (("validate", str(path), "--ack-dir", str(tmp_path)),
                 ("convert", str(path), "--to", "ndjson", "-o", str(tmp_path / "o.ndjson")),
                 ("convert", str(path), "--to", "xml", "-o", str(tmp_path / "o.xml"))):
        r = CliRunner().invoke(cli, list(args))
        assert r.exit_code in (0, 1), (args, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert "Traceback" not in r.output
    assert not list(tmp_path.glob(".*.tmp"))


BROKEN = {
    # imsweb's deliberately broken files and the defect each must report
    "x12_bad_first_line.txt": ("ENV-ISA-LENGTH", 1),
    "x12_bad_segment_identifier.txt": ("IK3-1", None),
    "x12_bad_valid_code.txt": ("IK4-7", None),
    "x12_missing_elements.txt": ("IK4-1", None),
    "x12_segments_out_of_order.txt": ("IK3-", None),
    "x12_segment_errors.txt": ("IK3-", None),
    "x12_loop_errors1_exceeds_max_1_parent.txt": ("IK3-4", None),
    "x12_loop_errors2_exceeds_max_repeats_multiple_parents.txt": ("IK3-4", None),
    "x12_loop_errors3_missing_loops.txt": ("IK3-3", None),
    "x12_missing_required_loop_in_one_repeat.txt": ("IK3-3", None),
    "x12_missing_required_loops_mult_repeats.txt": ("IK3-3", None),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_corpus_files_report_their_defect(name):
    from conftest import CORPUS
    path = CORPUS / "imsweb__x12-parser" / name
    if not path.exists():
        pytest.skip(f"corpus not found at {CORPUS}; set EDI_CORPUS")
    r = run("validate", str(path), "--format", "json")
    assert r.exit_code == 1
    issues = json.loads(r.stdout)[0]["issues"]
    code, segment_index = BROKEN[name]
    hits = [i for i in issues if i["code"].startswith(code)]
    assert hits, [i["code"] for i in issues]
    if segment_index is not None:
        assert hits[0]["segment_index"] == segment_index


def test_output_to_a_device_is_written_through_not_replaced():
    import os
    import stat

    r = run("convert", str(FIXTURES / "837p-clean.837"), "--to", "ndjson", "-o", os.devnull)
    assert r.exit_code == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_validate_set_by_set_gives_the_same_lines(tmp_path):
    from edi_pipeline.validate.validator import validate_file

    for name in ("837p-clean.837", "pair-denials.835", "837p-invalid-se-count.837", "837p-multi-interchange.837"):
        path = FIXTURES / name
        whole = validate_file(path, by_set=False)
        by_set = validate_file(path, by_set=True)
        assert sorted(map(str, by_set.issues)) == sorted(map(str, whole.issues)), name
        assert [a.accepted for a in by_set.acks] == [a.accepted for a in whole.acks]
