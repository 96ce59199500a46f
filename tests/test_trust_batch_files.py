"""Issue 12, the batch's files and paths: names from input never become paths."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from edi_pipeline.cli import cli
from edi_pipeline.errors import WriteError
from edi_pipeline.paths import NAME_LIMIT, output_path, safe_name, safe_part

# What a hostile sender may put where the batch takes a file name from (no * or ~: they are delimiters).
HOSTILE = ["/../../../x", "../../../y", "/tmp/absolute", "a\0b", "Z" * 300, "ünïcødé€", "..", ".hidden", "a/b/c",
           " ", "\\..\\win"]
HOSTILE_NAMES = ["é-ünï.837", "a" * 240 + ".837", "a\nb.837", "-rf.837", "spaced name.837", "esc\x1b[31m.837",
                 "a.b.c.d", "..837"]


def run(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "internal error" not in r.output and "Traceback" not in r.output, r.output
    return r


def batch(inbox, out, *extra):
    return run("batch", inbox, "--out", out, "--quiet", *extra)


def with_envelope(text: str, isa13: str | None = None, gs06: str | None = None, st02: str | None = None) -> str:
    """`text` (one ISA, GS and ST, as pair-plb.837) with these control numbers, trailers matching."""
    segs = text.split("~")
    for i, seg in enumerate(segs):
        e = seg.split("*")
        tag = e[0].strip()
        for tags, at, value in ((("ISA",), 13, isa13), (("IEA",), 2, isa13), (("GS",), 6, gs06), (("GE",), 2, gs06),
                                (("ST",), 2, st02), (("SE",), 2, st02)):
            if tag in tags and value is not None:
                e[at] = value
        segs[i] = "*".join(e)
    return "~".join(segs)


def hostile_files(folder: Path) -> list[Path]:
    """For every hostile value, an 837 carrying it as ISA13, as GS06 and as ST02, and a resend of the ISA13
    one (other bytes, same interchange: its TA1 025 is named by that ISA13); then files of hostile names."""
    folder.mkdir(parents=True)
    text = (FIXTURES / "pair-plb.837").read_text()
    made = []
    for k, value in enumerate(HOSTILE):
        for n, field in enumerate(("isa13", "gs06", "st02")):
            made.append(folder / f"{field}-{k}.837")
            fields = {"isa13": f"{800000 + 3 * k + n:09d}", field: value}  # each its own interchange
            made[-1].write_text(with_envelope(text, **fields), errors="surrogateescape")
        made.append(folder / f"isa13-{k}-resent.837")
        made[-1].write_text(with_envelope(text, isa13=value).replace("~", "~\n"), errors="surrogateescape")
    for k, name in enumerate(HOSTILE_NAMES):
        made.append(folder / name)
        made[-1].write_text(with_envelope(text, isa13=f"{900000 + k:09d}"))
    return made


def written_outside(root: Path, allowed: list[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir() and not any(a in p.parents for a in allowed)]


def test_hostile_values_and_names_never_leave_the_ack_dir(tmp_path):
    """The same files through validate --ack-dir: every 999 and TA1 lands in the ack folder."""
    work = tmp_path / "a" / "b" / "c"
    src, acks = work / "src", work / "acks"
    files = hostile_files(src)
    r = run("validate", *files, "--ack-dir", acks)
    assert r.exit_code in (0, 1)
    assert written_outside(tmp_path, [src, acks]) == []
    assert not [p for p in acks.iterdir() if p.is_dir()]
    # every file was answered: a 999, or a TA1 when its ISA13 is refused
    assert len(list(acks.glob("*.999"))) + len(list(acks.glob("*.ta1"))) >= len(files)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_any_value_becomes_one_plain_bounded_name(value):
    for made, limit in ((safe_name(value), NAME_LIMIT), (safe_part(value), 40)):
        assert len(made) <= limit and made == safe_name(made, limit)  # bounded, and stable when made again
        assert output_path(Path("/out"), made).parent == Path("/out")
    assert safe_name(value) == safe_name(value)  # the same value, the same name


def test_safe_names_are_unchanged_and_unsafe_ones_kept_apart(tmp_path):
    for plain in ("pair-plb.837", "000000001", "claims_2026-12.837"):
        assert safe_name(plain) == plain == safe_part(plain)
    assert safe_part("a/b") != safe_part("a_b") and safe_name("a b.837") != safe_name("a_b.837")
    assert safe_name("a b.837").endswith(".837") and safe_part("////")
    for bad in ("../x", "/abs", ".hidden", "a\0b", "x" * 201, ""):
        with pytest.raises(WriteError):
            output_path(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(WriteError):
        output_path(tmp_path, "link")  # never written through a link planted in an output folder
