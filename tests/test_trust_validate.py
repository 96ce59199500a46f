"""Issue 12, validate's part: no PHI in messages or 999s however a segment is shifted, a rejection is a
rejecting 999, an error flood is capped, and one huge transaction set is validated in bounded memory."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from click.testing import CliRunner
from conftest import corpus_files, fixture_files, tr3_by_set, phi_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated

from edi_pipeline.cli.commands import cli
from edi_pipeline.validate.validator import Severity, validate_file, write_acks

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
        for at in (1, 2):
            for how in ("insert", "drop", "dup"):
                yield f"{tag}{how}{at}", shifted(text, tag, at, how)


def leaks(blob: str, phi: set[str]) -> list[str]:
    return sorted(v for v in phi if v in blob)


def validate_blob(path, tmp_path=None) -> str:
    """Every text validate produces for `path`: its text lines, its json and its 999s (and TA1s: the
    files written, with `tmp_path`)."""
    result = validate_file(path, "in.837")
    acks = [a.ack_text for a in result.acks]
    if tmp_path is not None:
        acks = [p.read_text() for p in write_acks(result, tmp_path / "acks", name="in")]
    return "\n".join([*(str(i) for i in result.issues), json.dumps(result.to_dict()), *acks])


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
            blob = validate_blob(f)
            seen += "IK4" in blob
            assert not leaks(blob, phi), (path.name, label, leaks(blob, phi))
    assert seen > 400  # the shifts really made element errors


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


PHI = phi_values()
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
    assert not leaks(validate_blob(f), PHI)


# ---------------------------------------------------------------- item 2: a rejection is a rejecting 999

def set_spans(path) -> dict[int, tuple[int, str]]:
    """ST file segment index -> (SE index, ST02) of each transaction set of the file."""
    from edi_pipeline.x12.envelope import EnvelopeReader, Transaction

    with EnvelopeReader(path) as env:
        return {t.first_index: (t.first_index + len(t.segments) - 1, t.control_number.strip())
                for t in env if isinstance(t, Transaction)}


@pytest.mark.parametrize("by_set", [True, False])
def test_a_balancing_error_makes_the_999_reject_its_set(by_set):
    path = next(p for p in fixture_files() if p.name == "837p-total-mismatch.837")
    result = validate_file(path, by_set=by_set)
    assert result.issues.has("BAL-CLAIM") and not result.ok
    [ack] = result.acks
    segs = [s.split("*") for s in ack.ack_text.split("~\n") if s]
    assert not ack.accepted and ack.rejected_sets == ("0001",)
    assert ["IK3", "CLM", "19", "2300", "8"] in segs and ["IK4", "2", "", "I12"] in segs
    assert ["IK5", "R", "5"] in segs and ["AK9", "R", "1", "1", "0"] in segs


def test_an_unbalanced_835_and_a_bad_npi_make_the_999_reject_the_set(tmp_path):
    path = next(p for p in fixture_files() if p.name == "835-unbalanced.835")
    [ack] = validate_file(path).acks
    assert not ack.accepted and "IK3*CLP*15*2100*8~\nIK4*4**I12~" in ack.ack_text
    assert "IK3*BPR*2**8~\nIK4*2**I12~" in ack.ack_text  # no loop id for the header
    text = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text()
    f = tmp_path / "npi.837"
    f.write_text(text.replace("XX*1000202642~", "XX*1000202643~"))
    result = validate_file(f)
    assert {i.code for i in result.issues.errors} == {"NPI-CHECK"}
    assert not [i for i in result.issues if "1000202643" in i.message or i.value]
    assert not result.acks[0].accepted and "IK4*9**I12~" in result.acks[0].ack_text
    assert "1000202643" not in result.acks[0].ack_text


def test_every_error_inside_a_set_rejects_that_set_in_its_999():
    checked = 0
    for path in fixture_files() + corpus_files():
        result = validate_file(path)
        spans = set_spans(path)
        rejected = {st02 for a in result.acks for st02 in a.rejected_sets}
        for issue in result.issues.errors:
            at = max((k for k in spans if k <= issue.pos.segment_index), default=None)
            if at is None or issue.pos.segment_index > spans[at][0] or not result.acks:
                continue
            checked += 1
            assert spans[at][1] in rejected, (path.name, str(issue))
    assert checked > 30


# ---------------------------------------------------------------- item 3: an error flood is capped

def flood(tmp_path, lines: int = 300):
    """An 837P whose first claim has `lines` service lines with a charge that is not a number."""
    text = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text()
    bad = "".join(f"LX*{k}~SV1*HC:99213*X*UN*1***1~DTP*472*D8*20261005~" for k in range(4, 4 + lines))
    f = tmp_path / "flood.837"
    f.write_text(text.replace("REF*6R*CLEANMCR01-3~", "REF*6R*CLEANMCR01-3~" + bad, 1))
    return f


def test_an_error_flood_prints_100_lines_per_file_then_a_count(tmp_path):
    f = flood(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["validate", str(f), str(f)])
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2 * 101
    rest = [x for x in lines if "more issues not shown" in x]
    assert len(rest) == 2 and rest[0].startswith(f"{f}: ") and rest[0] == lines[100]
    total = len(validate_file(f, str(f)).issues)
    assert total > 300 and f"{total - 100} more issues not shown" in rest[0]
    doc = json.loads(runner.invoke(cli, ["validate", str(f), "--format", "json"]).stdout)
    assert len(doc[0]["issues"]) == total  # json keeps every issue
    for args in (["convert", str(f), "--to", "csv", "-o", str(tmp_path / "o.csv")],
                 ["scrub", str(f), "-o", str(tmp_path / "o.837"), "--db", str(tmp_path / "s.db")]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 1
        err = r.stderr.splitlines()
        assert len([x for x in err if x.startswith(f"{f}:") and " IK" in x and " held: " not in x]) == 100, args
        assert len([x for x in err if x.startswith(f"{f}: ") and "more issues not shown" in x]) == 1, args


# ---------------------------------------------------------------- item 4: one huge set in bounded memory

def one_huge_set(path, segments: int, flood: bool = False) -> int:
    """Write an 837P of one transaction set of about `segments` segments (837p-clean's first claim
    repeated, HLs and PCNs renumbered; with `flood`, every service line has three errors); return its
    segment count."""
    text = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text().replace("\n", "")
    if flood:  # an invalid date, unit code and a line item control number too long
        text = text.replace("D8*20261005", "D8*20261305").replace("*UN*", "*XX*")
        text = text.replace("REF*6R*", "REF*6R*" + "X" * 60)
    segs = text.split("~")[:-1]
    start = next(k for k, s in enumerate(segs) if s.startswith("HL*2*"))
    end = next(k for k, s in enumerate(segs) if s.startswith("HL*3*"))
    head, block = segs[:start], segs[start:end]
    st = next(k for k, s in enumerate(segs) if s.startswith("ST*"))
    out = list(head)
    n = 0
    while len(out) < segments:
        n += 1
        for s in block:
            if s.startswith("HL*"):
                s = f"HL*{n + 1}*1*22*0"
            elif s.startswith("CLM*"):
                s = s.replace("CLEANMCR01", f"BIG{n:07d}")
            out.append(s)
    out += [f"SE*{len(out) - st + 1}*0001", "GE*1*101", "IEA*1*000001000"]
    path.write_text("~\n".join(out) + "~\n")
    return len(out)


MEASURE = """
import resource, sys
from edi_pipeline.x12.envelope import EnvelopeReader
from edi_pipeline.validate.validator import validate_file
validate_file(sys.argv[2])  # imports and compiled maps
with EnvelopeReader(sys.argv[1]) as env:  # what the reader holds of the set
    sum(1 for _ in env)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = validate_file(sys.argv[1])
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(grown // 1024, result.claims, len(result.issues.errors), result.acks[0].accepted)
"""


@pytest.mark.parametrize("kind", ["valid", "every-line-in-error", "bom"])
def test_validate_holds_a_huge_set_once(tmp_path, kind):
    """A set of 200,000 segments (250,000 with a BOM, which the reader notes: the whole text used to be
    walked then)."""
    import os
    import subprocess
    import sys

    big = tmp_path / "big.837"
    flood = kind == "every-line-in-error"
    assert one_huge_set(big, 250_000 if kind == "bom" else 200_000, flood) >= 200_000
    if kind == "bom":
        big.write_bytes(b"\xef\xbb\xbf" + big.read_bytes())
    small = next(p for p in fixture_files() if p.name == "837p-clean.837")
    r = subprocess.run([sys.executable, "-c", MEASURE, str(big), str(small)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert r.returncode == 0, r.stderr
    grown_mb, claims, errors, accepted = r.stdout.split()
    assert int(claims) > 8000 and (int(errors) > 10_000 if flood else errors == "0") and accepted == str(not flood)
    # beyond the reader's own copy of the set, the TR3 walk adds little (was +78 MB here, +106 MB holding
    # 78,000 findings, +76 MB walking the whole text; at a million segments 596 MB -> 173 MB peak)
    assert int(grown_mb) < 40, grown_mb


def test_an_error_flood_holds_10000_findings_and_counts_the_rest(monkeypatch, tmp_path):
    from edi_pipeline.tr3 import reference as tr3

    f = tmp_path / "flood.837"
    one_huge_set(f, 2_000, flood=True)
    every = validate_file(f)
    assert len(every.issues) > 150 and not every.issues.has("ENV-TOO-MANY")
    for by_set in (True, False):
        monkeypatch.setattr(tr3, "MAX_FINDINGS", 50)
        capped = validate_file(f, by_set=by_set)
        monkeypatch.undo()
        [note] = [i for i in capped.issues if i.code == "ENV-TOO-MANY"]
        kept = [i for i in capped.issues if i.code.startswith("IK")]
        every_ik = [str(i) for i in every.issues if i.code.startswith("IK")]
        assert len(kept) == 50 and [str(i) for i in kept] == every_ik[:50]
        rest = len(every_ik) - 50
        assert note.message == f"{rest} more findings ({rest} errors) after the first 50 are not listed"
        assert (note.pos.segment_id, note.pos.segment_index, note.pos.st_position) == ("ST", 3, 1)
        assert not capped.acks[0].accepted and "IK5*R*5~" in capped.acks[0].ack_text


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _full(result):
    return [(str(i), i.value, i.severity) for i in result.issues], [g.ack_text for g in result.groups]


DAMAGE = {"non-ascii name": ("NM1*IL*1*DRAYCOMBE", "NM1*IL*1*DRAYCOMBÉ"),
          "leading space": ("~\nN3*877", "~\n N3*877"), "blank segment": ("~\nN3*877", "~ ~\nN3*877"),
          "line break inside": ("N3*877 QUARRY ST", "N3*877\rQUARRY ST"),
          "non-ascii GS06": ("*1200*101*X", "*1200*1É1*X")}


@pytest.mark.parametrize("path", [*fixture_files(), *corpus_files(), *DAMAGE], ids=str)
def test_a_set_walked_from_the_readers_texts_matches_the_set_lexed_again(path, tmp_path, monkeypatch):
    """Each set is walked from the reader's own segment texts: issues and 999s must be exactly those of
    the set joined into one text and lexed again (the way taken when a segment would lex otherwise)."""
    from edi_pipeline.tr3 import compiled as tr3_compiled

    if path in DAMAGE:
        old, new = DAMAGE[path]
        text = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text()
        assert old in text
        path = tmp_path / "in.837"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    walked = tr3_by_set(path, "in", now=NOW)
    monkeypatch.setattr(tr3_compiled, "_starts_with_space", lambda text: True)  # every set lexed again
    assert _full(walked) == _full(tr3_by_set(path, "in", now=NOW))


@settings(max_examples=150, deadline=None)
@given(mutated())
def test_hypothesis_damaged_sets_walk_the_same_from_the_readers_texts(data):
    from edi_pipeline.tr3 import compiled as tr3_compiled

    walked = tr3_by_set(data, "in", now=NOW)
    assert not [i for i in walked.issues if "could not be validated" in i.message]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tr3_compiled, "_starts_with_space", lambda text: True)
        assert _full(walked) == _full(tr3_by_set(data, "in", now=NOW))


@pytest.mark.parametrize("by_set", [True, False])
@pytest.mark.parametrize("edit,ak9", [(("GE*1*101", "GE*2*101"), "AK9*R*2*1*1*5~"),
                                      (("GE*1*101", "GE*1*102"), "AK9*R*1*1*1*4~"),
                                      (("GE*1*101~\n", ""), "AK9*R*1*1*1*3~")])
def test_a_ge_the_reader_rejects_makes_the_999_reject_the_group(tmp_path, by_set, edit, ak9):
    """Set by set (files over 200,000 segments), the walk makes each set's GE: the reader's GE findings
    must still reject the group, with the AK9 code the whole walk gives."""
    text = next(p for p in fixture_files() if p.name == "837p-clean.837").read_text()
    f = tmp_path / "in.837"
    f.write_text(text.replace(*edit))
    result = validate_file(f, by_set=by_set)
    [ack] = result.acks
    assert not result.ok and not ack.accepted and ak9 in ack.ack_text, ack.ack_text


def test_ingest_caps_its_findings_at_100_lines_then_a_count(tmp_path):
    """ingest prints an 835's balancing findings too: at most 100 lines per file, then how many more."""
    import re
    import subprocess
    import sys

    from conftest import ROOT

    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--claims", "150", "--seed", "3",
                    "--out", str(tmp_path)], check=True, capture_output=True)
    remit = next(tmp_path.glob("*.835"))
    # every claim payment's CLP04 one dollar off: a BAL-CLAIM-PAYMENT finding each
    text = re.sub(r"(CLP\*[^*]*\*[^*]*\*[^*]*\*)([0-9.]+)", lambda m: f"{m.group(1)}{Decimal(m.group(2)) + 1}",
                  remit.read_text())
    remit.write_text(text)
    r = CliRunner().invoke(cli, ["ingest", str(remit), "--db", str(tmp_path / "s.db")])
    shown = [x for x in r.stdout.splitlines() if x.startswith("  ") and "BAL-" in x]
    assert len(shown) == 100, r.stdout[-500:]
    assert re.search(r"^  \d+ more findings not shown", r.stdout, re.M), r.stdout[-300:]


def three_groups_sharing_a_gs06(tmp_path):
    """837p-clean.837 with its one group three times over in its interchange (one GS06)."""
    from conftest import FIXTURES

    segs = (FIXTURES / "837p-clean.837").read_text().split("~")
    gs = next(i for i, s in enumerate(segs) if s.lstrip().startswith("GS*"))
    ge = next(i for i, s in enumerate(segs) if s.lstrip().startswith("GE*"))
    segs = segs[:gs] + segs[gs:ge + 1] * 3 + segs[ge + 1:]
    src = tmp_path / "three.837"
    src.write_text("~".join(s.replace("IEA*1*", "IEA*3*") for s in segs))
    return src


@pytest.mark.parametrize("by_set", [False, True])
def test_a_gs06_repeated_in_its_interchange_rejects_the_later_groups(tmp_path, by_set):
    """Regression: validate accepted three groups of one GS06 in one interchange whenever it walked them
    set by set (a large file, or a sound envelope): each walk starts afresh, so the walk's own uniqueness
    check (AK905 6) never saw the others. The envelope reader reports it (AK9-6), whichever the walk."""
    result = validate_file(three_groups_sharing_a_gs06(tmp_path), "three.837", by_set=by_set)
    assert [(i.code, i.pos.segment_id, i.pos.element) for i in result.issues if i.severity is Severity.ERROR] == [("AK9-6", "GS", "GS06")] * 2
    assert [a.accepted for a in result.acks] == [True, False, False]
    assert all("AK9*R*1*1*1*6~" in a.ack_text for a in result.acks[1:]), result.acks[1].ack_text


def test_groups_sharing_a_gs06_in_one_interchange_each_get_their_own_999(tmp_path):
    """Regression: the third of three groups sharing one GS06 in one interchange took the second's 999
    name, so one 999 overwrote another (core.paths.AckNames)."""
    result = validate_file(three_groups_sharing_a_gs06(tmp_path))
    written = write_acks(result, tmp_path / "acks")
    assert len(result.acks_to_send()) == 3 and len(set(written)) == 3, written
    assert sorted(p.name for p in (tmp_path / "acks").glob("*.999")) == sorted(p.name for p in written)
    assert len({p.read_text().split("~")[0] for p in written}) == 3  # each under its own ISA13
