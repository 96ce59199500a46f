"""Issue 12, validate's part: no PHI in messages or 999s however a segment is shifted, a rejection is a
rejecting 999, an error flood is capped, and one huge transaction set is validated in bounded memory."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import fixture_files, phi_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi_pipeline.cli import cli
from edi_pipeline.validate import validate_file, write_acks

PHI_TAGS = ("NM1", "N3", "N4", "DMG", "REF")


def shifted(text: str, tag: str, at: int, how: str) -> str:
    """Every `tag` segment of `text` with an element inserted (an extra separator), removed (one
    missing) or duplicated at position `at`."""
    segs = text.split("~")
    for k, seg in enumerate(segs):
        e = seg.split("*")
        if e[0].strip() != tag or len(e) <= at:
            continue
        if how == "insert":
            e.insert(at, "")
        elif how == "drop":
            del e[at]
        else:
            e.insert(at, e[at])
        segs[k] = "*".join(e)
    return "~".join(segs)


def variants(text: str):
    for tag in PHI_TAGS:
        for at in (1, 2, 3):
            for how in ("insert", "drop", "dup"):
                yield f"{tag}{how}{at}", shifted(text, tag, at, how)


def leaks(blob: str, phi: set[str]) -> list[str]:
    return sorted(v for v in phi if v in blob)


def validate_blob(path, tmp_path) -> str:
    """Every text validate produces for `path`: its text lines, its json and the 999/TA1 files written."""
    result = validate_file(path, "in.837")
    acks = tmp_path / "acks"
    written = write_acks(result, acks, name="in")
    return "\n".join([*(str(i) for i in result.issues), json.dumps(result.to_dict()),
                      *(p.read_text() for p in written)])


def test_phi_values_cover_names_ids_birth_dates_addresses_and_member_refs():
    phi = phi_values()
    assert {"DRAYCOMBE", "ALDA", "2EG001FK07", "19410202", "877 QUARRY ST", "ELMSTEAD", "07031"} <= phi


def test_shifted_phi_segments_leave_no_phi_in_validate_output_or_999s(tmp_path):
    phi = phi_values()
    seen = 0
    for path in fixture_files():
        text = path.read_text(errors="surrogateescape")
        for label, variant in variants(text):
            if variant == text:
                continue
            f = tmp_path / "in.837"
            f.write_text(variant, errors="surrogateescape")
            blob = validate_blob(f, tmp_path)
            seen += "IK4" in blob
            assert not leaks(blob, phi), (path.name, label, leaks(blob, phi))
    assert seen > 500  # the shifts really made element errors


def test_a_stray_terminator_inside_a_name_shows_no_fragment_as_segment_id(tmp_path):
    path = next(p for p in fixture_files() if p.name == "837p-clean.837")
    f = tmp_path / "in.837"
    f.write_text(path.read_text().replace("NM1*IL*1*DRAYCOMBE*ALDA", "NM1*IL*1*DRAY~COMBE*ALDA"))
    blob = validate_blob(f, tmp_path)
    assert "IK3-1" in blob and "IK3*UNK*" in blob
    assert "COMBE" not in blob and "DRAY" not in blob and "ALDA" not in blob


def test_shifted_phi_segments_leave_no_phi_in_the_stderr_of_scrub_ingest_convert(tmp_path):
    phi = phi_values()
    runner = CliRunner()
    acks = []
    for name in ("837p-clean.837", "pair-denials.835", "837p-multi-interchange.837"):
        text = next(p for p in fixture_files() if p.name == name).read_text()
        for label, variant in variants(text):
            f = tmp_path / f"in{name[-4:]}"
            f.write_text(variant)
            runs = [["validate", str(f), "--ack-dir", str(tmp_path / "acks")],
                    ["validate", str(f), "--format", "json"],
                    ["ingest", str(f), "--db", str(tmp_path / "s.db")],
                    ["convert", str(f), "--to", "csv", "-o", str(tmp_path / "o.csv")]]
            if name.endswith(".837"):
                runs.append(["scrub", str(f), "-o", str(tmp_path / "o.837"), "--db", str(tmp_path / "s.db"),
                             "--format", "text"])
            for args in runs:
                r = runner.invoke(cli, args)
                assert r.exit_code in (0, 1), (args, r.output)
                out = r.stderr + (r.stdout if args[0] == "validate" else "")
                assert not leaks(out, phi), (name, label, args[0], leaks(out, phi))
            for ack in (tmp_path / "acks").glob("*.999"):
                acks.append(ack.read_text())
                ack.unlink()
    assert "IK4*" in "".join(acks) and not leaks("".join(acks), phi)


SEED = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text()
SEED_835 = next(p for p in fixture_files() if p.name == "pair-denials.835").read_text()


@st.composite
def damaged_phi_segments(draw):
    text = draw(st.sampled_from([SEED, SEED_835]))
    for _ in range(draw(st.integers(1, 4))):
        text = shifted(text, draw(st.sampled_from(PHI_TAGS)), draw(st.integers(1, 9)),
                       draw(st.sampled_from(["insert", "drop", "dup"])))
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damaged_phi_segments())
def test_hypothesis_shifts_and_duplicates_in_phi_segments_never_echo_phi(tmp_path, text):
    f = tmp_path / "in.837"
    f.write_text(text)
    blob = validate_blob(f, tmp_path)
    assert not leaks(blob, phi_values())
