"""edi_pipeline.tr3: every backend of the one validator protocol (tr3.protocol.SetValidator) must be
interchangeable with the pyx12 reference walk (same issues, positions, 999s); the compiled one is much faster.
The reference's results are computed once per input within the run (the `oracle` fixture)."""

from __future__ import annotations

import os
import random
from datetime import datetime
from pathlib import Path

import pytest
from samples import tiny_837
from conftest import corpus_files, fixture_files, tr3_by_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi_pipeline.tr3 import compiled as tr3_compiled
from edi_pipeline.core.errors import Severity
from edi_pipeline.tr3.protocol import backends
from edi_pipeline.tr3.reference import Tr3Result, validate_tr3
from edi_pipeline.tr3.compiled import compiled_map, validate_tr3_fast

NOW = datetime(2024, 1, 2, 3, 4)
BACKENDS = backends()
# every backend but the reference, which is the oracle they are compared with; and all of them
CANDIDATES = [pytest.param(b, id=name) for name, b in BACKENDS.items() if name != "reference"]
EVERY = [pytest.param(b, id=name) for name, b in BACKENDS.items()]


@pytest.fixture(scope="session")
def oracle():
    """The reference walk's result for (text, name), validated once per run (at NOW)."""
    results: dict[tuple[str, str], Tr3Result] = {}

    def run(text: str, name: str = "f") -> Tr3Result:
        key = (text, name)
        if key not in results:
            results[key] = validate_tr3(text, name, now=NOW)
        return results[key]
    return run

# Known, accepted differences between tr3.validate_tr3 and validate_tr3_fast:
# (file name, code, segment index, element) of error issues only one side reports.
# Empty: on the corpus and the fixtures both give identical results. Inputs on
# which pyx12 itself crashes (ENV-PYX12) are emulated, not guaranteed.
ALLOWED: set[tuple[str, str, int, str | None]] = set()


def _x12_paths() -> list[Path]:
    return corpus_files() + fixture_files()


def _params():
    paths = _x12_paths()
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no corpus or fixtures"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in paths]


def _error_keys(result: Tr3Result, name: str) -> set[tuple]:
    return {(i.code, i.pos.segment_index, i.pos.element) for i in result.issues
            if i.severity is Severity.ERROR
            and (name, i.code, i.pos.segment_index, i.pos.element) not in ALLOWED}


def _full(result: Tr3Result) -> tuple[list, list]:
    issues = [(i.code, i.pos, i.message, i.severity, i.value) for i in result.issues]
    groups = [(g.group_control_number, g.transaction_type, g.accepted, g.ack_text)
              for g in result.groups]
    return issues, groups




# ---------------------------------------------------------------- equivalence


@pytest.mark.parametrize("backend", CANDIDATES)
@pytest.mark.parametrize("path", _params())
def test_same_errors_and_verdicts_as_tr3(path, backend, oracle):
    """The requirement: same (code, segment index, element) for every error and
    the same accepted/rejected per functional group."""
    text = path.read_text(encoding="utf-8", errors="replace")
    slow, fast = oracle(text, path.name), backend.validate(text, path.name, now=NOW)
    assert _error_keys(fast, path.name) == _error_keys(slow, path.name)
    assert [g.accepted for g in fast.groups] == [g.accepted for g in slow.groups]
    assert [g.group_control_number for g in fast.groups] == [g.group_control_number for g in slow.groups]


@pytest.mark.parametrize("backend", CANDIDATES)
@pytest.mark.parametrize("path", _params())
def test_identical_issues_and_999s(path, backend, oracle):
    """Stronger: every issue (warnings too) with its message, position and value,
    in the same order, and byte-identical 999s."""
    text = path.read_text(encoding="utf-8", errors="replace")
    slow, fast = oracle(text, path.name), backend.validate(text, path.name, now=NOW)
    assert _full(fast) == _full(slow)




INLINE = {
    "valid": tiny_837(),
    "bad-code": tiny_837(clm05="11:X:1"),
    "bad-date": tiny_837(extra=["DTP*471*D8*20240231"]),
    "rd8": tiny_837(extra=["DTP*472*RD8*20240101-20240102"]),
    "bad-time": tiny_837().replace("BHT*0019*00*REF1*20240101*1200", "BHT*0019*00*REF1*20240101*2561"),
    "too-long": tiny_837().replace("N4*TOWN*NY*12345", "N4*TOWN*NY*1234567890123456"),
    "not-numeric": tiny_837().replace("CLM*PCN1*100*", "CLM*PCN1*1O0*"),
    "too-many-elements": tiny_837().replace("N3*1 MAIN ST", "N3*1 MAIN ST*SUITE 2*X"),
    "too-many-components": tiny_837().replace("SV1*HC:99213", "SV1*HC:99213:1:2:3:4:5:6:7:8"),
    "missing-required": tiny_837().replace("NM1*PR*2*PAYER*****PI*P123", "NM1*PR*2******PI*P123"),
    "syntax-pair": tiny_837().replace("PER*IC*CONTACT*TE*5555550100", "PER*IC*CONTACT*TE"),
    "missing-segment": tiny_837().replace("N3*1 MAIN ST~\n", ""),
    "unexpected": tiny_837().replace("LX*1~\n", "LX*1~\nN3*X~\n"),
    "unknown-id": tiny_837().replace("LX*1~\n", "LX*1~\nZZZ*1~\n"),
    "hl-sequence": tiny_837().replace("HL*2*1*22*0", "HL*3*7*22*0"),
    "lx-sequence": tiny_837().replace("LX*1", "LX*2"),
    "trailing-separator": tiny_837().replace("N3*1 MAIN ST", "N3*1 MAIN ST*"),
    "control-char": tiny_837().replace("N3*1 MAIN ST", "N3*1 MAIN\tST"),
    "trailing-space": tiny_837().replace("REF*EI*123456789", "REF*EI*123456789 "),
    "se-count": tiny_837().replace("SE*20*0001", "SE*21*0001"),
    "no-trailers": tiny_837().split("SE*")[0],
    "bad-version": tiny_837().replace("005010X222A1", "005010X999"),
    "crlf-bom": "\ufeff\r\n" + tiny_837().replace("~\n", "~\r\n").replace("BILLING", "BÏLLING"),
    "newline-terminated": tiny_837().replace("~\n", "\n"),
    "other-separators": tiny_837().replace("*", "|").replace(":", ">"),
    "two-interchanges": tiny_837() + tiny_837(),
    "orphan-trailer": tiny_837().replace("GS*HC", "GE*HC", 1),
    "no-st": tiny_837().replace("ST*837*0001*005010X222A1~\n", ""),
}


@pytest.mark.parametrize("backend", CANDIDATES)
@pytest.mark.parametrize("name", sorted(INLINE))
def test_inline_cases_identical(name, backend, oracle):
    assert _full(backend.validate(INLINE[name], name, now=NOW)) == _full(oracle(INLINE[name], name))


@pytest.mark.parametrize("backend", EVERY)
def test_inline_bad_code_position_and_999(backend):
    result = backend.validate(INLINE["bad-code"], "bad.837", now=NOW)
    hits = [i for i in result.issues if i.code == "IK4-7"]
    assert len(hits) == 1
    pos = hits[0].pos
    assert (pos.line, pos.segment_index, pos.st_position) == (17, 17, 15)
    assert (pos.segment_id, pos.loop, pos.element) == ("CLM", "2300", "CLM05-2")
    assert "IK4*5:2*1332*7*X~" in result.groups[0].ack_text
    assert not result.groups[0].accepted
    assert backend.validate(INLINE["valid"], now=NOW).issues == []


# ---------------------------------------------------------------- differential fuzzing


_CHARS = list("ABCZ019 -.:*~^|XY") + ["\t", "é", "", "  "]
_VALUES = ["", "X", "99", "20240231", "1.5", "-", "AB:CD", "ZZ", "A" * 90, "2024-01-01", "D8",
           "RD8", "20240101-20240102", "1 ", "123456789012"]


def _mutate(rng: random.Random, text: str) -> str:
    segs = text.split("~")
    for _ in range(rng.randint(1, 6)):
        k = rng.randrange(len(segs))
        op = rng.randrange(9)
        if op == 0 and len(segs) > 3:
            del segs[k]
        elif op == 1:
            segs.insert(k, segs[rng.randrange(len(segs))])
        elif op == 2:
            j = rng.randrange(len(segs))
            segs[k], segs[j] = segs[j], segs[k]
        elif op in (3, 4, 5) and segs[k]:
            s = segs[k]
            i = rng.randrange(len(s))
            segs[k] = s[:i] + rng.choice(_CHARS) + s[i + rng.randint(0, 2):]
        elif op == 6:
            els = segs[k].split("*")
            if len(els) > 1:
                els[rng.randrange(1, len(els))] = rng.choice(_VALUES)
                segs[k] = "*".join(els)
        elif op == 7:
            segs[k] += rng.choice(["*", "*X", "**", ":", "*A:B:C:D:E:F:G:H"])
        elif op == 8:
            els = segs[k].split("*")
            if len(els) > 2:
                del els[rng.randrange(1, len(els))]
                segs[k] = "*".join(els)
    return "~".join(segs)


@pytest.mark.parametrize("backend", CANDIDATES)
def test_mutated_inputs_identical(backend, oracle):
    """Seeded mutations of the fixtures (segments dropped, repeated, swapped,
    values and characters changed): every backend agrees with the reference on all of them."""
    bases = [INLINE["valid"]] + [p.read_text(errors="replace") for p in fixture_files()][:20]
    rng = random.Random(5010)
    for n in range(150):
        text = _mutate(rng, rng.choice(bases))
        assert _full(backend.validate(text, "f", now=NOW)) == _full(oracle(text)), f"mutation #{n}:\n{text}"


_QUALIFIERS = ["85", "87", "IL", "PR", "QC", "DN", "82", "77", "DK", "PE", "434", "472", "431", "G1", "EI",
               "9F", "1", "2", "3", "20", "22", "23", "P", "S", "XX", ""]


def _mutate_walk(rng: random.Random, text: str) -> str:
    """What the compiled walk plans and reads in its own loop by: qualifiers (match keys), HL and LX
    numbers, a leading space, a trailing separator, an empty first element."""
    segs = text.split("~")
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(len(segs))
        els = segs[k].split("*")
        if len(els) < 2:
            continue
        op = rng.randrange(6)
        if op == 0:
            els[1] = rng.choice(_QUALIFIERS)
        elif op == 1 and els[0] == "HL" and len(els) > 3:
            els[rng.choice((1, 2, 3))] = rng.choice(["1", "2", "3", "5", "", "20", "22"])
        elif op == 1 and els[0] in ("LX", "CLM"):
            els[1] = rng.choice(["1", "2", "3", "9"])
        elif op == 2:
            els[0] = " " + els[0]
        elif op == 3:
            els.append("")
        elif op == 4:
            els[1] = ""
        elif op == 5 and len(els) > 3:
            els[3] = rng.choice(_QUALIFIERS)
        segs[k] = "*".join(els)
    return "~".join(segs)


@pytest.mark.parametrize("backend", CANDIDATES)
def test_walk_key_mutations_identical(backend, oracle):
    """Seeded mutations of what decides a walk (qualifiers, HL/LX numbers) and of what keeps a segment
    out of the compiled walk's own loop (leading space, trailing separator, empty first element): every
    backend agrees with the reference, warm caches and all."""
    bases = [INLINE["valid"]] + [p.read_text(errors="replace") for p in fixture_files()][:12]
    rng = random.Random(1313)
    for n in range(100):
        text = _mutate_walk(rng, rng.choice(bases))
        assert _full(backend.validate(text, "f", now=NOW)) == _full(oracle(text)), f"mutation #{n}:\n{text}"


@pytest.mark.parametrize("backend", CANDIDATES)
@pytest.mark.parametrize("first,second", [("D8", "RD8"), ("RD8", "D8"), ("D8", "D8")])
def test_one_value_under_two_formats_identical(first, second, backend, oracle):
    """A value's errors are remembered per element, value and date format (DTP02): the same DTP03 under D8
    and then RD8 (or the other way) is checked under each, as the reference checks it."""
    value = "20240101-20240102"
    text = tiny_837(extra=["LX*2", "SV1*HC:99213*100*UN*1***1", f"DTP*472*{first}*{value}",
                           "LX*3", "SV1*HC:99213*100*UN*1***1", f"DTP*472*{second}*{value}"])
    text = text.replace("CLM*PCN1*100*", "CLM*PCN1*300*")
    result = backend.validate(text, "f", now=NOW)
    assert _full(result) == _full(oracle(text))
    assert any(i.pos.segment_index in (24, 27) for i in result.issues if i.severity is Severity.ERROR)


def _segment_nodes(map_name: str) -> list:
    return [n for n in tr3_compiled._iter_nodes(compiled_map(map_name)) if n.is_segment()]


_SEG_NODES = [n for m in ("837.5010.X222.A1.xml", "835.5010.X221.A1.xml") for n in _segment_nodes(m)]


def _segment_values(rng: random.Random, node) -> list[str]:
    """Element values for a segment node: its own codes, blanks, composites, values too short or long,
    bad characters, trailing spaces; as many elements as it has, fewer or more."""
    pool = ["", "", "X", "1", "20240101", "1.5", "-3", "A:B", "A:B:C:D:E:F:G:H", "A" * 90, "AB ", "é", "\x07", ":"]
    for k in node.kids:
        for e in (k.kids if k.is_composite() else (k,)):
            pool.extend(sorted(e.codes or ())[:3])
    n = rng.choice([0, 1, node.nkids - 1, node.nkids, node.nkids + 1, rng.randint(0, node.nkids)])
    return [rng.choice(pool) for _ in range(max(n, 0))]


def test_written_out_segment_checks_match_the_general_loop():
    """Each segment node's written-out check (_segment_check) gives the general loop's errors, or raises
    where it raises, for any element values: 12 seeded value lists for every segment of the 837P and
    835 maps, clean and not."""
    rng = random.Random(2026)

    def run(node, check, elems, clean):
        saved = tr3_compiled._CHECKS.pop(node, None)
        tr3_compiled._CHECKS[node] = check
        errs: list = []
        try:
            tr3_compiled._validate_segment(node, node.id, list(elems), ":", "00501", errs, clean)
            return errs
        except Exception as exc:  # noqa: BLE001 (compared: the same exception on both sides)
            return type(exc).__name__
        finally:
            tr3_compiled._CHECKS[node] = saved if saved is not None else tr3_compiled._segment_check(node)

    written = 0
    for node in _SEG_NODES:
        check = tr3_compiled._segment_check(node)
        written += check is not None
        for _ in range(12):
            elems, clean = _segment_values(rng, node), rng.random() < 0.5
            assert run(node, check, elems, clean) == run(node, None, elems, clean), (node.key, elems, clean)
    assert written > 100


@pytest.mark.parametrize("backend", EVERY)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(list("ISAGEN*~:^|0123456789 \n-")), max_size=300))
def test_never_raises_on_garbage(backend, text):
    assert isinstance(backend.validate("ISA*" + text), Tr3Result)
    assert isinstance(backend.validate(text), Tr3Result)


@pytest.mark.parametrize("backend", EVERY)
@pytest.mark.parametrize("text", ["", "   \n", "hello world", "ISA", "ISA*00", "\x00\x01garbage\xff",
                                  "GS*HC*A*B*20240101*1200*1*X*005010X222A1~"])
def test_garbage_gives_env_issue(text, backend, oracle):
    result = backend.validate(text, "junk", now=NOW)
    assert result.groups == []
    assert any(i.code.startswith("ENV-") for i in result.issues)
    assert _full(result) == _full(oracle(text, "junk"))


@pytest.mark.parametrize("backend", CANDIDATES)
def test_truncations_never_raise_and_match(backend, oracle):
    full = tiny_837()
    for cut in range(0, len(full), 23):
        assert _full(backend.validate(full[:cut], now=NOW)) == _full(oracle(full[:cut], None))
    backend.validate(b"ISA*bytes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the tables come from pyx12


def test_tables_are_compiled_from_pyx12_maps():
    import pyx12.map_if
    import pyx12.params

    name = "837.5010.X222.A1.xml"
    pmap = pyx12.map_if.load_map_file(name, pyx12.params.params())
    root = compiled_map(name)
    pyx12_segs = {}

    def walk(node):
        for k in sorted(node.pos_map):
            for child in node.pos_map[k]:
                if child.is_loop():
                    walk(child)
                else:
                    pyx12_segs[child.get_path()] = child
    walk(pmap)
    ours = {path: n for path, n in root.paths.items() if n.is_segment()}
    assert set(ours) == set(pyx12_segs)
    for path, pseg in pyx12_segs.items():
        seg = ours[path]
        assert seg.nkids == len(pseg.children)
        assert seg.key == pseg.x12path.format()
        for ours_k, theirs in zip(seg.kids, pseg.children):
            assert ours_k.name == theirs.name and ours_k.usage == theirs.usage
            if theirs.is_element():
                assert (ours_k.min_len, ours_k.max_len, ours_k.data_type) == \
                    (theirs.min_len, theirs.max_len, theirs.data_type)
                if theirs.valid_codes:
                    assert ours_k.codes == theirs._valid_codes_set


def test_cache_is_optional(tmp_path, monkeypatch, oracle):
    """A read-only / unusable cache location and a corrupt cache file are ignored."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a file fails
    monkeypatch.setattr(tr3_compiled, "_COMPILED", {})
    assert validate_tr3_fast(INLINE["valid"], now=NOW).issues == []

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(tr3_compiled, "_COMPILED", {})
    compiled_map("837.5010.X222.A1.xml")
    pickles = list((cache / "edi-pipeline").glob("tr3c-837.5010.X222.A1.xml-*.pickle"))
    assert len(pickles) == 1
    pickles[0].write_bytes(b"corrupt")
    monkeypatch.setattr(tr3_compiled, "_COMPILED", {})
    assert _full(validate_tr3_fast(INLINE["bad-code"], now=NOW)) == _full(oracle(INLINE["bad-code"], None))
    if os.name == "posix" and os.geteuid() != 0:  # root ignores permissions
        (cache / "edi-pipeline").chmod(0o500)
        try:
            monkeypatch.setattr(tr3_compiled, "_COMPILED", {})
            assert validate_tr3_fast(INLINE["valid"], now=NOW).issues == []
        finally:
            (cache / "edi-pipeline").chmod(0o700)


# Speed is measured by scripts/bench.py, not by timed tests.


# Differences allowed between whole-file and set-by-set validation: trailer and cross-set checks,
# which the envelope reader makes (ENV-GE*/ENV-IEA*/ENV-SE-MISSING, IK5-23, TA1-025) in both modes.
_ENVELOPE_ONLY = ("AK9-", "TA1-", "IK5-2", "IK5-23")


@pytest.mark.parametrize("path", [*fixture_files(), *corpus_files()], ids=lambda p: p.name)
def test_set_by_set_validation_matches_whole_file(path):

    whole = validate_tr3_fast(path.read_bytes().decode("utf-8", "replace"), str(path), now=NOW)
    by_set = tr3_by_set(path, str(path), now=NOW)

    def keys(result):
        return {(i.code, i.pos.segment_index, i.pos.line, i.pos.element) for i in result.issues
                if i.severity is Severity.ERROR and not i.code.startswith(_ENVELOPE_ONLY)}

    assert keys(by_set) == keys(whole)
    assert [g.accepted for g in by_set.groups] == [g.accepted for g in whole.groups]
    if not any(i.code.startswith(_ENVELOPE_ONLY) for i in whole.issues):
        assert [g.ack_text for g in by_set.groups] == [g.ack_text for g in whole.groups]


def _stamp_free(ack_text: str) -> str:
    """A 999 without its ISA09/ISA10 and GS04/GS05 (the time it was made)."""
    segs = ack_text.split("~\n")
    for k, (a, b) in ((0, (9, 10)), (1, (4, 5))):
        e = segs[k].split("*")
        e[a] = e[b] = ""
        segs[k] = "*".join(e)
    return "~\n".join(segs)


@pytest.mark.parametrize("path", [*fixture_files(), *corpus_files()], ids=lambda p: p.name)
def test_validate_file_chooses_set_by_set_only_where_it_changes_nothing(path):
    """validate_file walks a small file set by set unless the envelope reader found something: the
    issues and 999s must then be exactly those of the whole-text walk."""
    from edi_pipeline.validate.validator import validate_file

    chosen = validate_file(path)
    whole = validate_file(path, by_set=False)
    assert [str(i) for i in chosen.issues] == [str(i) for i in whole.issues]
    assert [(a.accepted, a.rejected_sets, _stamp_free(a.ack_text)) for a in chosen.acks] == \
        [(a.accepted, a.rejected_sets, _stamp_free(a.ack_text)) for a in whole.acks]
