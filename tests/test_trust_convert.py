"""Issue 12, what analysts get: 835 CSV keeps every dollar, CSV cells are safe in spreadsheets,
convert streams set by set, and bytes that are not UTF-8 convert losslessly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, corpus_params

from edi_pipeline.cli.commands import cli
from edi_pipeline.formats.convert import to_csv
from edi_pipeline.core.safe_text import csv_cell
from edi_pipeline.core.values import to_decimal
from edi_pipeline.x12.reader import SegmentReader


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- 835 CSV keeps every dollar --------------------------------------------------------------

def _has_clp(path) -> bool:
    return b"CLP" in path.read_bytes()


def _files(suffixes: tuple[str, ...], corpus_keep=lambda p: True) -> list:
    """Fixtures with these suffixes, then the corpus files kept (one skipped param when the corpus is absent)."""
    fixtures = [pytest.param(p, id=f"edi/{p.name}") for p in sorted(FIXTURES.iterdir()) if p.suffix in suffixes]
    return fixtures + [c for c in corpus_params() if c.values[0] is None or corpus_keep(c.values[0])]


FILES_835 = _files((".835",), _has_clp)


def _clp_totals(path) -> tuple[int, Decimal, Decimal]:
    """CLP segments, the sum of CLP04 and of claim-level CAS amounts, read from the segments themselves."""
    n, paid, adjusted = 0, Decimal(0), Decimal(0)
    in_claim = False
    with SegmentReader(path) as reader:
        for text, _line in reader:
            e = text.split(reader.delimiters.element)
            if e[0] == "CLP":
                n += 1
                paid += to_decimal(e[4]) or 0 if len(e) > 4 else 0
                in_claim = True
            elif e[0] in ("SVC", "LX", "SE", "PLB"):
                in_claim = False
            elif e[0] == "CAS" and in_claim:
                adjusted += sum((to_decimal(a) or 0 for a in e[3:19:3]), Decimal(0))
    return n, paid, adjusted


def _money(rows: list[dict], column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows if r[column]), Decimal(0))


@pytest.mark.parametrize("path", FILES_835)
def test_835_csv_claim_paid_sums_to_clp04(path):
    out = io.StringIO()
    to_csv(path, out, path.name)
    rows = csv_rows(out.getvalue())
    claims = [r for r in rows if r["level"] == "claim" and r["type"] == "835"]
    n, paid, adjusted = _clp_totals(path)
    assert len(claims) == n
    assert _money(rows, "claim_paid") == paid
    assert _money(rows, "adjustment_amount") == adjusted
    lines = [r for r in rows if r["level"] == "line"]
    assert sum((Decimal(r["paid"]) for r in lines if r["paid"]), Decimal(0)) == _money(rows, "paid")


def test_835_csv_rows_for_claims_without_lines_and_claim_level_cas(tmp_path):
    text = (FIXTURES / "pair-plb.835").read_text()
    seg = "~\n" if "~\n" in text else "~"
    segs = text.split(seg)
    clp = next(i for i, s in enumerate(segs) if s.startswith("CLP*"))
    end = next(i for i in range(clp + 1, len(segs)) if segs[i].startswith(("CLP*", "SE*", "PLB*")))
    e = segs[clp].split("*")
    pcn, clp04, clp05, clp07 = e[1], e[4], e[5], e[7]
    # the first claim payment loses its service lines and gets a claim-level CAS
    kept = [s for s in segs[clp + 1:end] if not s.startswith(("SVC*", "CAS*", "DTM*472", "REF*6R", "AMT*B6", "LQ*"))]
    segs[clp + 1:end] = ["CAS*CO*45*12.5", *kept]
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    segs[se] = "*".join(["SE", str(se - st + 1), segs[se].split("*")[2]])
    f = tmp_path / "nolines.835"
    f.write_text(seg.join(segs))
    r = run("convert", f, "--to", "csv")
    assert r.exit_code == 0, r.output
    rows = [x for x in csv_rows(r.stdout) if x["patient_control_number"] == pcn]
    assert [x["level"] for x in rows] == ["claim", "claim_adjustment"]
    claim, adj = rows
    assert (claim["claim_paid"], claim["patient_responsibility"], claim["payer_claim_control_number"]) == \
        (clp04, clp05, clp07)
    assert claim["payment_date"] and claim["trace_number"] and claim["adjustments"] == "CO-45:12.5"
    assert adj["adjustment_amount"] == "12.5" and adj["claim_paid"] == ""
    assert adj["payment_date"] == claim["payment_date"] and adj["trace_number"] == claim["trace_number"]


# --- CSV cells are safe ----------------------------------------------------------------------

FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]


def test_csv_cell_rule():
    for c in FORMULA_STARTS:
        assert csv_cell(c + "1+1") == "'" + c + "1+1"
    for safe in ("-12.50", "-3", "-0.5", "-.5", "12.50", "ABC", "", None, Decimal("-1"), 7):
        assert csv_cell(safe) == safe
    assert csv_cell("-12.50+1") == "'-12.50+1" and csv_cell("-1e5") == "'-1e5"


# pair-denials: six claims whose patient control numbers open with each dangerous character
HOSTILE_PCNS = {"DBUNDLE01": "=", "DMEDNEC01": "+", "DTIMELY01": "-", "DDUP01": "@", "DMISSINFO01": "\t",
                "DBENLIMIT01": "\r"}


def _hostile_pair(folder, payer_prefix: str = "", pcns=HOSTILE_PCNS):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("pair-denials.837", "pair-denials.835"):
        text = (FIXTURES / name).read_text()
        for pcn, c in pcns.items():
            text = text.replace(f"*{pcn}*", f"*{c}{pcn}*").replace(f"*{pcn}-", f"*{c}{pcn}-")
        if payer_prefix:
            text = text.replace("*MEDICARE PART B", f"*{payer_prefix}MEDICARE PART B")
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths


def _assert_defused(rows: list[dict], columns=("patient_control_number",)):
    seen = set()
    for row in rows:
        for col in columns:
            v = row[col]
            assert not v.startswith(tuple(FORMULA_STARTS)) or v.lstrip("-").replace(".", "").isdigit(), (col, v)
            if v.startswith("'"):
                seen.add(v[1])
    return seen


def test_convert_csv_defuses_formulas(tmp_path):
    p837, p835 = _hostile_pair(tmp_path)
    for path in (p837, p835):
        r = run("convert", path, "--to", "csv")
        assert r.exit_code == 0, r.output
        rows = csv_rows(r.stdout)
        assert _assert_defused(rows, ("patient_control_number", "control_number")) == set(FORMULA_STARTS)
    # negative amounts stay numbers
    rows = csv_rows(run("convert", FIXTURES / "pair-reversal.835", "--to", "csv").stdout)
    assert "-80" in [r["claim_paid"] for r in rows] and "-72" in [r["paid"] for r in rows]


@pytest.fixture
def hostile_db(tmp_path):
    db = tmp_path / "store.db"
    r = run("ingest", *_hostile_pair(tmp_path / "in"), "--db", db)
    assert r.exit_code == 0, r.output
    return db


def test_reconcile_csv_defuses_formulas(hostile_db):
    r = run("reconcile", "--db", hostile_db, "--format", "csv", "--as-of", "2026-12-31")
    assert r.exit_code == 0, r.output
    assert _assert_defused(csv_rows(r.stdout)) == set(FORMULA_STARTS)


def test_denials_csv_defuses_formulas(hostile_db):
    r = run("denials", "--db", hostile_db, "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = csv_rows(r.stdout)
    assert _assert_defused(rows) == set(FORMULA_STARTS)
    assert all(not r["amount"].startswith("'") for r in rows)


@pytest.mark.parametrize("c", FORMULA_STARTS)
def test_payer_name_defused_in_reconcile_and_denials_csv(tmp_path, c):
    db = tmp_path / "store.db"
    assert run("ingest", *_hostile_pair(tmp_path / "in", payer_prefix=c), "--db", db).exit_code == 0
    rec = csv_rows(run("reconcile", "--db", db, "--format", "csv").stdout)
    assert f"'{c}MEDICARE PART B" in {r["payer"] for r in rec}
    den = csv_rows(run("denials", "--db", db, "--format", "csv").stdout)
    by = csv_rows(run("denials", "--db", db, "--format", "csv", "--by", "payer").stdout)
    assert f"'{c}MEDICARE PART B" in {r["payer"] for r in den}
    assert f"'{c}MEDICARE PART B" in {r[next(iter(r))] for r in by}


def test_batch_reconciliation_csv_defuses_formulas(tmp_path):
    # a tab or CR in CLM01 is outside the X12 character set, so the 999 rejects the set: none is stored
    # (reconcile --format csv shows them going through the same writer)
    pcns = {"DBUNDLE01": "=", "DBENLIMIT01": "+", "DTIMELY01": "-", "DDUP01": "@"}  # claims the batch sends
    _hostile_pair(tmp_path / "inbox", payer_prefix="=", pcns=pcns)
    out = tmp_path / "out"
    r = run("batch", tmp_path / "inbox", "--out", out, "--quiet", "--settle", "0")
    rows = csv_rows((out / "reports" / "reconciliation-latest.csv").read_bytes().decode())
    assert _assert_defused(rows) == set(pcns.values()), r.output
    assert "'=MEDICARE PART B" in {r["payer"] for r in rows}


# --- bytes that are not UTF-8 are data ---------------------------------------------------------

def _latin1_file(folder, name: str):
    """A fixture with a Latin-1 é (byte 0xE9) in its payer name and its first patient control number."""
    data = (FIXTURES / name).read_bytes()
    payer, clm = (b"N1*PR*", b"CLP*") if name.endswith(".835") else (b"NM1*PR*2*", b"CLM*")
    data = data.replace(payer, payer + b"CAF\xe9 ", 1)
    at = data.index(clm) + len(clm)
    end = data.index(b"*", at)
    pcn = data[at:end]
    data = data[:end] + b"\xe9" + data[end:]
    path = folder / name
    path.write_bytes(data)
    return path, pcn.decode() + "\u00e9"


def _convert_strict(path, fmt: str, *extra) -> bytes:
    """convert to stdout on a strict UTF-8 stdout (as a terminal or a pipe to a strict reader)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", PYTHONPATH=str(FIXTURES.parent.parent))
    proc = subprocess.run([sys.executable, "-m", "edi_pipeline", "convert", str(path), "--to", fmt, *extra],
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc.stdout.decode("utf-8")  # strict: valid UTF-8
    return proc.stdout


def _x12_from_json(doc: dict) -> bytes:
    """X12 bytes rebuilt from convert --to json, as its docstring says (latin1 segments as Latin-1)."""
    out = []

    def seg(s, d):
        text = d["element"].join([s["id"], *s["elements"]])
        out.append(text.encode("latin-1" if s.get("latin1") else "utf-8") +
                   (d["segment"] + d["suffix"]).encode())

    def walk(children, d):
        for c in children:
            walk(c["children"], d) if "loop" in c else seg(c, d)

    for isa in doc["interchanges"]:
        d = isa["delimiters"]
        seg(isa["ISA"], d)
        for g in isa["groups"]:
            seg(g["GS"], d)
            for tx in g["transactions"]:
                walk(tx["segments"], d)
            seg(g["GE"], d)
        seg(isa["IEA"], d)
    return b"".join(out)


LATIN1_FILES = ["pair-plb.835", "837p-clean.837"]


@pytest.mark.parametrize("name", LATIN1_FILES)
def test_latin1_bytes_to_ndjson_as_latin1_text_with_their_paths(tmp_path, name):
    import json

    path, pcn = _latin1_file(tmp_path, name)
    rows = [json.loads(x) for x in _convert_strict(path, "ndjson").decode().splitlines()]
    first = next(r for r in rows if r["type"] != "835_header")
    assert first["patient_control_number"] == pcn and first["payer"]["name"].startswith("CAF\u00e9 ")
    assert {"patient_control_number", "payer.name"} <= set(first["latin1"])
    assert first["payer"]["name"].encode("latin-1").startswith(b"CAF\xe9 ")


@pytest.mark.parametrize("name", LATIN1_FILES)
def test_latin1_bytes_to_json_rebuild_the_same_x12_bytes(tmp_path, name):
    import json

    path, _pcn = _latin1_file(tmp_path, name)
    doc = json.loads(_convert_strict(path, "json"))
    assert _x12_from_json(doc) == path.read_bytes()


@pytest.mark.parametrize("name", LATIN1_FILES)
def test_latin1_bytes_to_xml_readable_and_back_to_the_same_x12_bytes(tmp_path, name):
    path, _pcn = _latin1_file(tmp_path, name)
    xml = _convert_strict(path, "xml")
    assert "CAF\u00e9 ".encode() in xml and b"raw=" not in xml
    (tmp_path / "c.xml").write_bytes(xml)
    assert run("convert", tmp_path / "c.xml", "--to", "x12", "-o", tmp_path / "back").exit_code == 0
    assert (tmp_path / "back").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", LATIN1_FILES)
def test_latin1_bytes_to_csv_as_latin1_text(tmp_path, name):
    path, pcn = _latin1_file(tmp_path, name)
    table = csv_rows(_convert_strict(path, "csv").decode())
    assert pcn in {r["patient_control_number"] for r in table}


# --- convert streams: memory stays flat ---------------------------------------------------------

def _peak_rss_mb(*args) -> float:
    """Run the CLI in a fresh interpreter; its peak resident memory in MB (VmHWM: ru_maxrss would count
    the forking test process's own memory, which it keeps across exec)."""
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    code = ("import sys\n"
            "from edi_pipeline.cli.commands import main\n"
            "try:\n    main()\n"
            "finally:\n"
            "    hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM:')][0].split()[1]\n"
            "    sys.stderr.write(f'PEAK_RSS_KB {hwm}\\n')\n")
    env = dict(os.environ, PYTHONPATH=str(FIXTURES.parent.parent))
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stderr.rsplit("PEAK_RSS_KB ", 1)[1]) / 1024


@pytest.fixture(scope="module")
def big_837(tmp_path_factory):
    """A generated 837P of 12,000 claims in 24 sets (about 5.4 MB)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("big")
    subprocess.run([sys.executable, str(FIXTURES.parent.parent / "scripts" / "generate.py"), "--claims", "12000",
                    "--claims-per-st", "500", "--seed", "12", "--out", str(folder)], check=True,
                   capture_output=True, timeout=300)
    return next(folder.glob("*.837"))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_convert_tree_formats_stream_in_flat_memory(big_837, tmp_path, fmt):
    # the whole-document versions peaked at ~500 MB (json) and ~900 MB (xml) on this file
    out = tmp_path / f"big.{fmt}"
    peak = _peak_rss_mb("convert", big_837, "--to", fmt, "-o", out)
    assert peak < 150, f"peak RSS {peak:.0f} MB"
    assert out.stat().st_size > 5 * big_837.stat().st_size


# the streamed text is byte for byte what the whole-document serialisers write for the same tree

TREE_FIXTURES = _files((".837", ".835"))


@pytest.mark.parametrize("path", TREE_FIXTURES)
def test_streamed_json_is_what_json_dumps_writes_and_rebuilds_the_file(path):
    import json

    from edi_pipeline.formats.convert import to_json

    out = io.StringIO()
    to_json(path, out, path.name)
    text = out.getvalue()
    doc = json.loads(text)
    assert text == json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if all(isa["ISA"] and isa.get("IEA") and all(g["GS"] and g.get("GE") for g in isa["groups"])
           for isa in doc["interchanges"]) and path.read_bytes()[:3] == b"ISA" and path.parent == FIXTURES:
        assert _x12_from_json(doc) == path.read_bytes()


@pytest.mark.parametrize("path", TREE_FIXTURES)
def test_streamed_xml_is_what_lxml_pretty_prints_and_converts_back(path):
    from lxml import etree

    from edi_pipeline.formats.convert import to_xml, xml_to_x12

    out = io.StringIO()
    to_xml(path, out, path.name)
    text = out.getvalue()
    tree = etree.fromstring(text.encode(), etree.XMLParser(remove_blank_text=True))
    for el in tree.iter("ele", "sub", "rep"):  # to_xml sets their text, even when empty
        if not len(el) and el.text is None:
            el.text = ""
    assert text == etree.tostring(tree, encoding="unicode", pretty_print=True)
    back = io.StringIO()
    xml_to_x12(text.encode(), back)
    original = path.read_bytes().decode("utf-8", "surrogateescape")
    if path.parent == FIXTURES and original.startswith("ISA") and original.rstrip().endswith("~"):  # whole
        assert back.getvalue().rstrip("\n") == original.rstrip("\n")


def test_837p_claim_without_lines_is_a_claim_row_not_lost(tmp_path):
    lines = (FIXTURES / "837p-tpi-one-line.837").read_text().split("~\n")
    lx = next(i for i, s in enumerate(lines) if s.startswith("LX*"))
    se = next(i for i, s in enumerate(lines) if s.startswith("SE*"))
    st = next(i for i, s in enumerate(lines) if s.startswith("ST*"))
    kept = lines[:lx] + lines[se:]
    kept[lx] = f"SE*{lx - st + 1}*0001"
    f = tmp_path / "nolines.837"
    f.write_text("~\n".join(kept))
    rows = csv_rows(run("convert", f, "--to", "csv").stdout)
    assert [(r["level"], r["patient_control_number"], r["claim_charge"]) for r in rows] == \
        [("claim", "TPIONELINE01", "500")]


# --- hypothesis: the rules hold for any text and any envelope shape -----------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("=+-@\t\r\n.,'\"0123456789aZé\udce9 "), max_size=12))
def test_csv_cell_never_opens_with_a_formula_and_keeps_the_text(text):
    from edi_pipeline.core.safe_text import latin1_text

    cell = csv_cell(text)
    shown = latin1_text(text)
    assert "\udce9" not in cell
    if cell != shown:
        assert cell == "'" + shown and shown[:1] in FORMULA_STARTS
    elif cell[:1] in FORMULA_STARTS:
        assert cell[0] == "-" and Decimal(cell).is_signed()  # a negative number (or -0)


def _pieces() -> dict[str, str]:
    segs = (FIXTURES / "837p-tpi-one-line.837").read_text().split("~\n")
    st_at = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se_at = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    return {"ISA": segs[0] + "~\n", "GS": segs[1] + "~\n", "SET": "~\n".join(segs[st_at:se_at + 1]) + "~\n",
            "GE": "GE*1*101~\n", "IEA": "IEA*1*000001002~\n", "STRAY": "ZZZ*1~\n"}


PIECES = _pieces()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["GS", "SET", "GE", "IEA", "STRAY", "ISA", "SET", "SET"]), max_size=10))
def test_streamed_trees_are_well_formed_for_any_envelope_shape(shape):
    import json

    from lxml import etree

    from edi_pipeline.formats.convert import to_json, to_xml

    data = ("".join(PIECES[p] for p in ["ISA", *shape])).encode()
    out = io.StringIO()
    to_json(data, out, "f.837")
    doc = json.loads(out.getvalue())
    assert out.getvalue() == json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    found = sum(len(g["transactions"]) for isa in doc["interchanges"] for g in isa["groups"])
    assert found == shape.count("SET")
    out = io.StringIO()
    to_xml(data, out, "f.837")
    tree = etree.fromstring(out.getvalue().encode(), etree.XMLParser(remove_blank_text=True))
    for el in tree.iter("ele", "sub", "rep"):
        if not len(el) and el.text is None:
            el.text = ""
    assert out.getvalue() == etree.tostring(tree, encoding="unicode", pretty_print=True)
    assert len(tree.findall(".//transaction")) == shape.count("SET")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_converter_takes_damaged_and_latin1_input(data):
    import json

    from lxml import etree
    from mutations import mutated

    from edi_pipeline.formats.convert import to_json, to_ndjson, to_xml, xml_to_x12
    from edi_pipeline.core.errors import InterchangeError

    raw = bytearray(data.draw(mutated()))
    if raw:
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at:at] = data.draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\xc3", b"\x80"]))
    raw = bytes(raw)
    outs = {}
    try:
        for name, fn in (("json", to_json), ("xml", to_xml), ("csv", to_csv), ("ndjson", to_ndjson)):
            outs[name] = io.StringIO()
            fn(raw, outs[name], "fuzz.edi")
    except InterchangeError:
        return
    for name in outs:
        outs[name].getvalue().encode("utf-8")  # valid UTF-8: no lone surrogate in any of them
    json.loads(outs["json"].getvalue())
    for line in outs["ndjson"].getvalue().splitlines():
        json.loads(line)
    csv_rows(outs["csv"].getvalue())
    xml = outs["xml"].getvalue().encode()
    etree.fromstring(xml)
    xml_to_x12(xml, io.StringIO())


def test_835_csv_amounts_never_in_exponent_form(tmp_path):
    text = (FIXTURES / "pair-reversal.835").read_text()
    clp = next(s for s in text.split("~\n") if s.startswith("CLP*") and "*22*" in s)
    e = clp.split("*")
    e[4] = "-8E1"  # CLP04 of the reversal, -80 written as X12 never would
    f = tmp_path / "exp.835"
    f.write_text(text.replace(clp, "*".join(e), 1))
    rows = csv_rows(run("convert", f, "--to", "csv").stdout)
    assert "-80" in {r["claim_paid"] for r in rows}


@pytest.mark.parametrize("byte, char", [(b"\x85", "\u0085"), ("\u2028".encode(), "\u2028"), ("\u2029".encode(), "\u2029")])
def test_ndjson_keeps_one_object_per_line_when_a_value_holds_a_unicode_line_break(byte, char):
    """Regression (found by test_every_converter_takes_damaged_and_latin1_input): a payer name holding
    byte 0x85 (NEL in Latin-1), or U+2028/U+2029, was written raw, so str.splitlines() cut its NDJSON line
    in two. They are JSON escapes now, and the value reads back the same."""
    import json

    from edi_pipeline.formats.convert import to_ndjson

    raw = (FIXTURES / "pair-denials.835").read_bytes().replace(b"N1*PR*", b"N1*PR*" + byte, 1)
    out = io.StringIO()
    count = to_ndjson(raw, out, "x.835")
    lines = out.getvalue().splitlines()
    assert len(lines) == count == out.getvalue().count("\n")
    names = [json.loads(line).get("payer", {}).get("name", "") for line in lines]
    assert any(name.startswith(char) for name in names)
