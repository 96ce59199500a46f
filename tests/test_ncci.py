"""NCCI tables: the official-layout loaders, `ncci import`, the shipped CMS rows, and imported tables
replacing the shipped one from their effective date."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi_pipeline.codes import ncci
from edi_pipeline.store.ncci_tables import NcciDb
from edi_pipeline.cli.commands import cli

ROOT = Path(__file__).resolve().parent.parent
NCCI_FIXTURES = ROOT / "fixtures" / "ncci"
PTP_ZIP = NCCI_FIXTURES / "medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f1.zip"
MUE_CSV = NCCI_FIXTURES / "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv"
AOC_TXT = NCCI_FIXTURES / "AOC_V2026Q3_01-MCR.txt"
SHARED = Path(os.environ.get("EDI_SHARED", ROOT.parent / "shared")) / "ncci"
DOS = date(2026, 10, 5)

sys.path.insert(0, str(ROOT / "scripts"))
import make_fixtures  # noqa: E402
import ship_ncci  # noqa: E402


def test_ncci_fixtures_are_what_the_script_writes(tmp_path):
    make_fixtures.build_ncci(tmp_path)
    for name in sorted(p.name for p in NCCI_FIXTURES.iterdir()):
        assert (tmp_path / name).read_bytes() == (NCCI_FIXTURES / name).read_bytes(), name


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared NCCI extracts not found at {SHARED} (set EDI_SHARED)")
def test_shipped_tables_are_the_shared_cms_rows():
    for name, text in ship_ncci.build(SHARED).items():
        shipped = (ROOT / "edi_pipeline" / "codes" / "data" / name).read_text(encoding="utf-8")
        assert shipped == text, f"{name}: rerun scripts/ship_ncci.py"


# ---------------------------------------------------------------- the shipped real CMS rows

@pytest.mark.parametrize("col1,col2,indicator", [
    ("20553", "20552", 0), ("20561", "20560", 0), ("20560", "97810", 0), ("20560", "97813", 0),
    ("20561", "97810", 0), ("20561", "97813", 0), ("97813", "97810", 0),
    ("20552", "20560", 1), ("20552", "20561", 1), ("20610", "76942", 1), ("20611", "76942", 1),
    ("20610", "20552", 1), ("20610", "20553", 1), ("20552", "99213", 1), ("20553", "99213", 1),
    ("97810", "99213", 1), ("20553", "96372", 1),  # column 2 outside the code list: the column-1 rows are shipped
])
def test_shipped_ptp_rows(col1, col2, indicator):
    edit = ncci.Ncci().pair(col1, col2, DOS)
    assert edit is not None and edit.modifier == indicator and edit.version == "v302r0"


def _csv_ptp(text: str) -> dict[tuple[str, str], list]:
    """Each pair's rows as csv.reader reads a shipped-layout PTP file (the eager way)."""
    import csv

    out: dict[tuple[str, str], list] = {}
    for c1, c2, eff, dele, mod, why in list(csv.reader(ln for ln in text.splitlines() if not ln.startswith("#")))[1:]:
        out.setdefault((c1, c2), []).append(ncci.ptp_edit((c1, c2, eff or None, dele or None, mod, why, "v")))
    return out


def _lazy_ptp(lazy) -> dict[tuple[str, str], list]:
    lazy.version = "v"
    table = ncci.MemoryTable(ptp_by_column1=lazy)
    got: dict[tuple[str, str], list] = {}
    codes = {c for c1 in list(lazy._runs) for c in (c1, *lazy.get(c1))}
    for e in table.ptp(frozenset(codes)):
        got.setdefault((e.column1, e.column2), []).append(e)
    return got


def test_shipped_ptp_rows_split_on_first_use_are_the_csv_rows():
    """The shipped PTP table splits a column 1's lines when a lookup first asks for it (_LazyPtp): each
    pair's rows are those csv.reader gives, in file order, and a code with no rows gives none."""
    text = (ROOT / "edi_pipeline" / "codes" / "data" / "ncci_ptp.csv").read_text(encoding="utf-8")
    assert isinstance(ncci.shipped()[0]._ptp, ncci._LazyPtp) and ncci.shipped()[1]["ptp"]["version"] == "v302r0"
    want, got = _csv_ptp(text), _lazy_ptp(ncci._LazyPtp.of(text))
    assert got == want and sum(map(len, got.values())) > 18_000
    assert ncci.MemoryTable(ptp_by_column1=ncci._LazyPtp.of(text)).ptp(frozenset({"00000", "99999"})) == []


@pytest.mark.parametrize("text", [
    '# v\ncolumn1,column2,effective,deleted,modifier,rationale\n20550,0232T,,,1,"a, quoted"\n',  # csv quoting
    "# v\ncolumn1,column2,effective,deleted,modifier,rationale\n20550,0232T,,,1,a\r\n20551,0232T,,,1,b\r\n",
    "# v\ncolumn1,column2,effective,deleted,modifier,rationale\n20550,0232T,,,1,a\n# later\n20551,0232T,,,1,b\n",
    "# v\ncolumn1,column2,effective,deleted,modifier,rationale\n20550,0232T,,,1\n",  # five fields: csv.reader's
    "# v\n\n20550,0232T,,,1,a\n",  # a blank line where the column names go
    "# v\ncolumn1,column2,effective,deleted,modifier,rationale\n",  # no rows
])
def test_ptp_text_the_lazy_table_cannot_split_goes_through_csv(text):
    assert ncci._LazyPtp.of(text) is None


def test_lazy_ptp_groups_a_column_1_in_two_places_in_file_order():
    text = ("# v\ncolumn1,column2,effective,deleted,modifier,rationale\n20550,0232T,,,1,a\n20551,0232T,,,0,b\n"
            "20550,0232T,2020-01-01,,9,c\n20550,20551,,,1,d")
    assert _lazy_ptp(ncci._LazyPtp.of(text)) == _csv_ptp(text)


def test_shipped_ptp_deleted_edit_applies_only_until_its_deletion_date():
    n = ncci.Ncci()
    assert n.pair("97140", "99213", DOS) is None  # indicator 9, deleted 2000-10-30
    old = n.pair("97140", "99213", date(2000, 10, 30))
    assert old is not None and old.modifier == 9
    assert n.pair("20560", "97140", DOS) is None  # no PTP row in CMS's table


@pytest.mark.parametrize("code,mue,mai", [
    ("20552", 1, 2), ("20553", 1, 2), ("20560", 1, 2), ("97810", 1, 2), ("97811", 2, 3), ("97814", 2, 3),
    ("76942", 1, 3), ("G3002", 1, 2), ("G3003", 4, 3), ("20550", 5, 3), ("20610", 2, 3), ("J2001", 60, 3),
])
def test_shipped_mue_rows(code, mue, mai):
    edit = ncci.Ncci().mue(code, DOS)
    assert (edit.mue, edit.mai) == (mue, mai)


def test_shipped_aoc_rows():
    n = ncci.Ncci()
    assert n.primaries("97811", DOS) == n.primaries("97814", DOS) == {"97810", "97813"}
    assert {e.type for e in n.aoc("97811", DOS)} == {1}
    assert n.primaries("64484", DOS) == {"64483"}
    assert n.primaries("20553", DOS) is None  # not an add-on code


# ---------------------------------------------------------------- official layouts

def test_ptp_zip_with_notice_wrapped_header_and_repeated_pairs():
    files = ncci.read_files([PTP_ZIP])
    assert [(f.kind, f.version, f.part, f.effective) for f in files] == [
        ("ptp", "v322r0", "1", date(2026, 7, 1)), ("ptp", "v322r0", "2", date(2026, 7, 1))]
    rows = files[0].rows
    assert ("20553", "20552", "1996-01-01", None, 0, "More extensive procedure", "v322r0") in rows
    assert sum(1 for r in rows if r[:2] == ("20550", "99213")) == 2  # CMS's repeat: both kept


def test_repeated_pair_is_applied_by_date(tmp_path):
    db = NcciDb(tmp_path / "t.ncci.sqlite")
    for f in ncci.read_files([PTP_ZIP], effective=date(1996, 1, 1)):
        db.import_file(f)
    n = ncci.Ncci(db.tables())
    assert n.pair("20550", "99213", date(2019, 12, 31)).modifier == 0  # the deleted row, still in force
    assert n.pair("20550", "99213", date(2020, 1, 1)).modifier == 1  # its active successor
    assert n.pair("20560", "97140", date(2026, 6, 30)) is None  # effective 2026-07-01
    assert n.pair("20560", "97140", date(2026, 7, 1)).modifier == 0
    db.close()


def test_mue_latin1_csv_with_notice_and_line_broken_header():
    (f,) = ncci.read_files([MUE_CSV])
    assert MUE_CSV.read_bytes().count(b"\xa9") == 1  # the notice's copyright sign, in Latin-1
    assert (f.kind, f.version, f.effective) == ("mue", "2026Q3", date(2026, 7, 1))
    assert {r[0]: (r[1], r[2]) for r in f.rows} == {
        "20552": (1, 2), "20610": (1, 1), "97811": (2, 3), "G3002": (1, 2), "G3003": (3, 3)}


def test_aoc_columns_by_meaning_and_contractor_primaries():
    (f,) = ncci.read_files([AOC_TXT])
    assert (f.kind, f.version, f.effective) == ("aoc", "2026Q3", date(2026, 7, 1))
    by_addon = {(r[0], r[1]): r for r in f.rows}
    assert by_addon[("64483", "64484")][2:5] == (1, "2011-01-01", None)
    assert by_addon[("64493", "64495")][4] == "2026-01-01"  # the edit's deletion date
    assert by_addon[("CCCCC", "96161")][2] == 2


def test_aoc_csv_header_in_other_capitalisation(tmp_path):
    p = tmp_path / "aoc.csv"
    p.write_text("ADD-ON CODE,primary code,aoc edit type,Aoc Edit Effective Date,AOC EDIT DELETION DATE\n"
                 "64484,64483,1,20110101,*\n", encoding="utf-8")
    (f,) = ncci.read_files([p])
    assert f.rows == [("64483", "64484", 1, "2011-01-01", None, "2011Q1")]


def test_effective_date_from_the_rows_when_the_name_has_none(tmp_path):
    p = tmp_path / "edits.txt"
    p.write_text("notice\nColumn 1\tColumn 2\t*\tEffective Date\tDeletion Date\tModifier\tRationale\n"
                 "20553\t20552\t*\t19960101\t*\t0\tx\n20560\t97140\t\t20260815\t*\t0\tx\n", encoding="utf-8")
    (f,) = ncci.read_files([p])
    assert f.effective == date(2026, 7, 1) and f.version == "2026Q3"


@pytest.mark.parametrize("text,message", [
    ("hello\nworld\n", "not a CMS NCCI"),
    ("notice\nColumn 1\tColumn 2\t*\tEff\tDel\tModifier\tWhy\n20553\t20552\t*\t19960101\t*\t0\tx\n"
     "20553\t20552\t*\t19960101\t*\t7\tx\n", ":4: not a PTP row"),
    ("notice\nColumn 1\tColumn 2\t*\tEff\tDel\tModifier\tWhy\n20553\t20552\t*\t1996-13-45\t*\t0\tx\n",
     ":3: bad date"),
    ('"notice"\n"HCPCS/\nCPT Code","MUE Values","MUE Adjudication Indicator","Rationale"\n20552,one,"2 x",y\n',
     ":4: not an MUE row"),
    ("Primary Code\tAdd-on Code\tAOC Edit Type\n64483\t64484\tX\n", ":2: not an add-on code edit row"),
])
def test_malformed_files_name_the_line(tmp_path, text, message):
    p = tmp_path / "x_2026q3.txt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ncci.NcciError, match=message):
        ncci.read_files([p])


# ---------------------------------------------------------------- ncci import

def _import(tmp_path, *files, args=()):
    return CliRunner().invoke(cli, ["ncci", "import", *map(str, files), "--db", str(tmp_path / "s.db"),
                                    "--format", "json", *args])


def test_ncci_import_loads_all_three_layouts_idempotently(tmp_path):
    r = _import(tmp_path, PTP_ZIP, MUE_CSV, AOC_TXT)
    assert r.exit_code == 0, r.output
    assert '"status": "imported"' in r.output and r.output.count('"kind"') == 4
    path = tmp_path / "s.db.ncci.sqlite"
    assert path.stat().st_mode & 0o777 == 0o600
    db = NcciDb(path)
    counts = [db.conn.execute(f"select count(*) from {k}").fetchone()[0] for k in ncci.KINDS]
    db.close()
    again = _import(tmp_path, PTP_ZIP, MUE_CSV, AOC_TXT)
    assert again.exit_code == 0 and '"status": "imported"' not in again.output
    assert again.output.count('"status": "unchanged"') == 4
    db = NcciDb(path)
    assert [db.conn.execute(f"select count(*) from {k}").fetchone()[0] for k in ncci.KINDS] == counts == [9, 5, 5]
    assert {(v["kind"], v["version"], v["effective"]) for v in db.versions()} == {
        ("ptp", "v322r0", "2026-07-01"), ("mue", "2026Q3", "2026-07-01"), ("aoc", "2026Q3", "2026-07-01")}
    db.close()


def test_ncci_import_replaces_a_changed_file_of_the_same_version(tmp_path):
    assert _import(tmp_path, MUE_CSV).exit_code == 0
    changed = tmp_path / MUE_CSV.name
    changed.write_bytes(MUE_CSV.read_bytes().replace(b'"G3003","3"', b'"G3003","5"'))
    r = _import(tmp_path, changed)
    assert r.exit_code == 0 and '"status": "replaced"' in r.output
    db = NcciDb(tmp_path / "s.db.ncci.sqlite")
    assert ncci.Ncci(db.tables()).mue("G3003", DOS).mue == 5
    assert db.conn.execute("select count(*) from mue").fetchone()[0] == 5
    db.close()


def test_ncci_import_bad_file_exit_1_one_line_nothing_stored(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01garbage\n")
    r = _import(tmp_path, MUE_CSV, bad)
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "bad.txt:1: not a CMS NCCI" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "s.db.ncci.sqlite").exists()  # every file is read before any is stored


def test_ncci_import_broken_zip_and_bad_effective(tmp_path):
    z = tmp_path / "x.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.pdf", b"%PDF")
    z.write_bytes(buf.getvalue())
    r = _import(tmp_path, z)
    assert r.exit_code == 1 and "holds no .txt or .csv" in r.output
    z.write_bytes(buf.getvalue()[:30])
    r = _import(tmp_path, z)
    assert r.exit_code == 1 and "Traceback" not in r.output
    r = _import(tmp_path, MUE_CSV, args=("--effective", "2026-13-01"))
    assert r.exit_code == 2


def test_ncci_show_lists_shipped_and_imported(tmp_path):
    assert _import(tmp_path, PTP_ZIP).exit_code == 0
    r = CliRunner().invoke(cli, ["ncci", "show", "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 0
    assert "v302r0" in r.output and "shipped" in r.output and "v322r0" in r.output and "imported" in r.output


def test_imported_table_replaces_the_shipped_one_from_its_effective_date(tmp_path):
    assert _import(tmp_path, PTP_ZIP, MUE_CSV, AOC_TXT).exit_code == 0
    db = NcciDb(tmp_path / "s.db.ncci.sqlite")
    n = ncci.Ncci(db.tables())
    before, after = date(2026, 6, 30), date(2026, 7, 1)
    # shipped before 2026-07-01: 20560/97810 indicator 0, no 20560/97140 row, G3003 MUE 4
    assert n.pair("20560", "97810", before).modifier == 0 and n.pair("20560", "97140", before) is None
    assert n.mue("G3003", before).mue == 4 and n.mue("J2001", before).mue == 60
    # imported from its effective date, whole: rows it lacks are gone
    assert n.pair("20560", "97810", after) is None and n.pair("20560", "97140", after).modifier == 0
    assert n.mue("G3003", after).mue == 3 and n.mue("J2001", after) is None
    assert n.mue("20610", after).mai == 1
    assert n.primaries("64495", after) is None  # its only edit was deleted 2026-01-01
    assert n.primaries("96161", after) == frozenset()  # type 2: the contractor defines the primaries
    db.close()


# ---------------------------------------------------------------- fuzzing: bad input never crashes

_SEEDS = [p.read_bytes() for p in (NCCI_FIXTURES / "ccipra-v322r0-f1.TXT", MUE_CSV, AOC_TXT)]


@st.composite
def _damaged(draw):
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.sampled_from(b"\t,\"\r\n*x0919\xa9\x00"))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 40))]
        else:
            data[at:at] = draw(st.binary(max_size=12))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_ncci_files_give_one_located_error_or_rows(data):
    try:
        f = ncci.parse_file("fuzz_2026q3.txt", data)
    except ncci.NcciError as e:
        assert str(e).startswith("fuzz_2026q3.txt:") and "\n" not in str(e).strip()
        return
    assert f.kind in ncci.KINDS and f.rows


def test_latin1_superscript_digit_in_an_mue_value_is_a_bad_row(tmp_path):
    p = tmp_path / "mue_2026q3.csv"
    p.write_bytes(b'"notice"\n"HCPCS/\nCPT Code",MUE,MUE Adjudication Indicator,R\n20552,\xb2,"2 Date of Service",y\n')
    with pytest.raises(ncci.NcciError, match=r"mue_2026q3.csv:4: not an MUE row"):
        ncci.read_files([p])


def test_an_mue_row_of_one_cell_is_a_bad_row(tmp_path):
    """Found by the fuzz test: a row cut to its code (a stray CR) raised IndexError, not a located error."""
    p = tmp_path / "mue_2026q3.csv"
    p.write_bytes(b'"notice"\n"HCPCS/\nCPT Code",MUE,MUE Adjudication Indicator,R\n"97811"\r"2","3 Date",y\n')
    with pytest.raises(ncci.NcciError, match=r"mue_2026q3.csv:4: not an MUE row"):
        ncci.read_files([p])


def test_zip_member_names_reach_messages_without_control_characters(tmp_path):
    z = tmp_path / "q_2026q3.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("\x1b]0;owned\x07bad.txt", b"no header here\n")
    r = _import(tmp_path, z)
    assert r.exit_code == 1 and "\x1b" not in r.output and "\x07" not in r.output
    assert "?]0;owned?bad.txt:1: not a CMS NCCI" in r.output


def test_zip_with_damaged_compressed_data_is_a_located_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a_2026q3.txt", b"Column 1\tColumn 2\n" * 300)
    data = bytearray(buf.getvalue())
    data[44:52] = b"\xff" * 8  # inside the deflate stream
    z = tmp_path / "damaged.zip"
    z.write_bytes(bytes(data))
    r = _import(tmp_path, z)
    assert r.exit_code == 1 and f"{z}:0: cannot read" in r.output and "internal error" not in r.output
