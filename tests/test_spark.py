"""The Spark runner (spark-batch) against the local batch: the same findings, corrected claims (byte-identical
files), reconciliation and denials, on the fixtures and on a generated multi-file set. One Spark session
for the module (local[2]); skipped with a message where pyspark or Java is missing."""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: the Spark runner needs Java 17 (.ci/run installs openjdk-17-jre-headless)",
                allow_module_level=True)

import pyarrow.parquet as pq  # noqa: E402

from edi_pipeline.analytics.denials import BY_KEYS, find_denials, summarize  # noqa: E402
from edi_pipeline.analytics.reconcile import claim_rows, reconcile  # noqa: E402
from edi_pipeline.codes.tables import load_tables  # noqa: E402
from edi_pipeline.runners.batch import run_batch  # noqa: E402
from edi_pipeline.store.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def spark():
    from edi_pipeline.spark.job import session

    s = session("local[2]")
    yield s
    s.stop()


def _resent(src: Path, target: Path, control: str) -> None:
    """`src` under a new ISA13 (and IEA02): the same claims sent again in a later file, which the store's
    history (and the Spark runner's) must see."""
    text = src.read_bytes().decode("latin-1")
    sep = text[3]
    isa = text[:106].split(sep)
    old = isa[13]
    isa[13] = control
    text = sep.join(isa) + text[106:]
    target.write_bytes(text.replace(f"IEA{sep}1{sep}{old}", f"IEA{sep}1{sep}{control}").encode("latin-1"))


def _generated(tmp: Path) -> Path:
    """Three generated 837P/835 pairs (different seeds) in one inbox, and a fixture sent twice (the second
    file's claims are duplicates of the first's: history across files)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from generate import generate

    inbox = tmp / "generated"
    inbox.mkdir()
    for seed in (1, 2, 3):
        p7, p5, _ = generate(150, seed, tmp / f"seed{seed}", claims_per_st=25, trip_rate=0.15)
        p7.rename(inbox / f"gen-{seed}.837")
        p5.rename(inbox / f"gen-{seed}.835")
    shutil.copy(ROOT / "fixtures" / "edi" / "837p-clean.837", inbox / "837p-clean-a.837")
    _resent(ROOT / "fixtures" / "edi" / "837p-clean.837", inbox / "837p-clean-b.837", "987654321")
    return inbox


def _local(inbox: Path, out: Path, monkeypatch) -> dict:
    copy = out.parent / f"{out.name}-inbox"
    shutil.copytree(inbox, copy)
    monkeypatch.setenv("EDI_SCRUB_DATE", TODAY.isoformat())
    run_batch(copy, out)
    findings = set()
    for report in (out / "reports").glob("*.json"):
        if report.name.startswith("reconciliation"):
            continue
        for f in json.loads(report.read_text())["findings"]:
            findings.add((report.name.removesuffix(".json"), f["rule"], f["severity"], f["patient_control_number"],
                          f["line"], f["procedure"], f["action"], f["message"]))
    store = Store(out / "edi_pipeline.db")
    try:
        tables = load_tables()
        rec = reconcile(store, TODAY, tables, lines=True)
        recon = {_row(dict(r, lines=[m.to_dict() for m in c.lines or ()])) for r, c in zip(claim_rows(rec), rec.claims)}
        found = find_denials(store, tables, rec)
    finally:
        store.close()
    return {"findings": findings, "reconciliation": recon, "denials": {_row(d.flat()) for d in found},
            "unmatched": {_row(u) for u in rec.unmatched_remits},
            "claims": {c.patient_control_number: c for c in rec.claims}, "denial_rows": found,
            "unmatched_remits": rec.unmatched_remits, "out": out,
            "denial_summary": {(by, r[by], r["count"], r["amount"]) for by in BY_KEYS for r in summarize(found, by)}}


@pytest.fixture(scope="module")
def local_fixtures(tmp_path_factory):
    """The local batch over the bundled fixtures, once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        return _local(ROOT / "fixtures" / "edi", tmp_path_factory.mktemp("fixtures") / "local", mp)


def _spark(spark, inbox: Path, out: Path) -> dict:
    from edi_pipeline.spark.job import run_spark_batch

    run_spark_batch(spark, [inbox], out, today=TODAY, as_of=TODAY)
    t = {name: pq.read_table(out / "tables" / name).to_pylist() if (out / "tables" / name).exists() else []
         for name in ("findings", "reconciliation", "denials", "unmatched_remits", "denial_summary")}
    return {"findings": {(f["file"], f["rule"], f["severity"], f["patient_control_number"], f["line"], f["procedure"],
                          f["action"], f["message"]) for f in t["findings"]},
            "reconciliation": {_row(r) for r in t["reconciliation"]},
            "denials": {_row(d) for d in t["denials"]},
            "unmatched": {_row(u) for u in t["unmatched_remits"]},
            "denial_summary": {(r["by"], r["key"], r["count"], str(r["amount"])) for r in t["denial_summary"]}}


def _row(d: dict) -> str:
    d = {k: v for k, v in d.items() if k != "state"}  # lifecycle states need the store's 999/277CA events
    return json.dumps(d, sort_keys=True, default=str)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*")} if folder.exists() else {}


def _lines(c) -> list[tuple]:
    return [(m.procedure, m.matched_by, m.billed, m.paid) for m in c.lines]


def test_fixtures_hit_every_matching_rule(local_fixtures):
    """The equality test's fixtures exercise each of reconcile's matching rules: each asserted here on the
    local batch's reconciliation (amounts in cents), so that Spark's equal results cover them all."""
    claims, local = local_fixtures["claims"], local_fixtures
    # REF*6R that matches; REF*6R whose line's code disagrees (echoed swapped): no 6R pair, each line on
    # (procedure, modifiers, date, charge) with its own payment
    assert _lines(claims["PLBPAID01"]) == [("99214", "6R", 18000, 6400), ("20552", "6R", 15000, 6000)]
    assert _lines(claims["MATCH6RCODE01"]) == [("99213", "exact", 12000, 6000), ("20553", "exact", 25000, 8800)]
    # SVC06, the submitted code when the payer recoded: with REF*6R, and without (the exact fallback)
    assert _lines(claims["MATCHSVC06R01"]) == [("20553", "6R", 25000, 6400)]
    assert _lines(claims["CORRCODE01"])[1] == ("20553", "exact", 25000, 6400)
    # no REF*6R: the looser fallbacks (modifier dropped: procedure + date; another date: procedure)
    assert _lines(claims["MATCHFALL01"]) == [("99214", "procedure+date", 18000, 10400),
                                             ("20552", "procedure", 15000, 6000)]
    # a reversal (CLP02 = 22, same CLP07) and its re-payment; one under another CLP07 cancels the payment of
    # the negated CLP04 (8800), not the latest (9600)
    rev = claims["REVERSAL01"]
    assert (rev.status, rev.payments, rev.reversals, rev.paid) == ("paid", 1, 1, 11600)
    assert claims["CORRREV01"].status == "reversed"
    # replacements (CLM05-3 = 7, REF*F8): under the same CLM01, and under new ones (a chain of two): one group
    # named by the last, holding the original's reversed payment and the replacement's
    assert (claims["CORRREPL01"].frequency_code, claims["CORRREPL01"].reversals) == ("7", 1)
    last = claims["MREPLLAST01"]
    assert (last.status, last.frequency_code, last.payments, last.reversals, last.paid) == ("paid", "7", 1, 1, 9600)
    # voids (CLM05-3 = 8): voided with the payment not yet reversed; under a new CLM01, its denial named by it
    assert claims["CORRVOID01"].status == "voided"
    void = claims["MVOIDNEW01"]
    assert (void.status, void.payments, void.paid) == ("voided", 1, 6000)
    merged = {"MREPLORIG01", "MREPLNEW01", "MVOIDORIG01"}
    assert not merged & (claims.keys() | {u["patient_control_number"] for u in local["unmatched_remits"]})
    denials = {(d.patient_control_number, d.procedure): d for d in local["denial_rows"]}
    assert (denials["MVOIDNEW01", "20552"].group, denials["MVOIDNEW01", "20552"].carc) == ("CO", "97")
    # a partial denial with CARC and RARC: one unit paid, the second denied CO-151 with N362
    partial = denials["DUNITS01", "20553"]
    assert claims["DUNITS01"].status == "partially paid" and claims["DUNITS01"].paid > 0
    assert (partial.group, partial.carc, partial.rarcs, partial.amount) == ("CO", "151", ["N362"], 25000)
    # an unmatched remit
    assert "UNMATCHED01" in {u["patient_control_number"] for u in local["unmatched_remits"]}
    assert not denials["DAUTH01", "97813"].matched  # held by the scrub: its remit matches no sent claim


@pytest.mark.parametrize("which", ["fixtures", "generated"])
def test_spark_batch_equals_local_batch(spark, tmp_path, monkeypatch, request, which):
    inbox = ROOT / "fixtures" / "edi" if which == "fixtures" else _generated(tmp_path)
    local = (request.getfixturevalue("local_fixtures") if which == "fixtures"
             else _local(inbox, tmp_path / "local", monkeypatch))
    got = _spark(spark, inbox, tmp_path / "spark")
    assert got["findings"] and got["findings"] == local["findings"]
    if which == "generated":  # the resent file's claims were seen in the earlier one
        assert {f[1] for f in got["findings"] if f[0] == "837p-clean-b.837"} == {"DUPLICATE-CLAIM"}
    assert got["reconciliation"] and got["reconciliation"] == local["reconciliation"]
    assert got["denials"] and got["denials"] == local["denials"]
    assert got["unmatched"] == local["unmatched"]
    assert got["denial_summary"] and got["denial_summary"] == local["denial_summary"]  # summarize(), --by each key
    for sub in ("outbound", "rejects"):  # corrected claims and held claims: byte-identical files
        mine, theirs = _files(tmp_path / "spark" / sub), _files(local["out"] / sub)
        assert mine.keys() == theirs.keys(), sub
        assert [n for n in mine if mine[n] != theirs[n]] == [], sub


def test_spark_batch_cli_tables_typed_and_errors_as_rows(spark, tmp_path, monkeypatch):
    """spark-batch: a corrupt 835 becomes an `errors` row (the job goes on), held claims exit 1; the tables
    carry decimal money and date dates; --history takes a run's history table."""
    import pyarrow as pa
    from click.testing import CliRunner

    from edi_pipeline.cli.commands import cli

    monkeypatch.setenv("EDI_SCRUB_DATE", TODAY.isoformat())
    fx = ROOT / "fixtures" / "edi"
    inputs = [str(fx / n) for n in ("pair-denials.837", "pair-denials.835", "835-corrupt.835")]
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["spark-batch", *inputs, "--out", str(out), "--format", "json"])
    assert r.exit_code == 1, r.output
    summary = json.loads(r.stdout)
    assert summary["files"] == 3 and summary["errors"] == 1 and summary["claims"]["held"] > 0
    errors = pq.read_table(out / "tables" / "errors").to_pylist()
    assert [e["file"] for e in errors] == ["835-corrupt.835"] and errors[0]["message"]
    claims = pq.read_table(out / "tables" / "claims").schema
    assert claims.field("total_charge").type == pa.decimal128(12, 2) and claims.field("service_date").type == pa.date32()
    assert pq.read_table(out / "tables" / "payments").schema.field("paid").type == pa.decimal128(12, 2)
    assert {oct(p.stat().st_mode & 0o777) for p in (out / "tables").rglob("*.parquet")} == {"0o600"}
    assert (out / "outbound" / "pair-denials.837").exists() and list((out / "acks").glob("pair-denials.837*.999"))
    again = CliRunner().invoke(cli, ["spark-batch", inputs[0], "--out", str(tmp_path / "again"),
                                     "--history", str(out / "tables" / "history"), "--format", "json"])
    found = {f["rule"] for f in pq.read_table(tmp_path / "again" / "tables" / "findings").to_pylist()}
    assert again.exit_code == 1 and "DUPLICATE-CLAIM" in found  # the same claims, sent before: duplicates now
    assert spark.sparkContext._jsc is not None  # the module's session is still up


def test_spark_batch_x12_outputs_made_in_the_executors(spark, tmp_path, monkeypatch):
    """The corrected and held 837Ps are made in the executors from the files' bytes: the driver never reads
    an input to write them (here it cannot: its EnvelopeReader fails), and they equal scrub_file's."""
    from edi_pipeline.scrub.scrubber import scrub_file
    from edi_pipeline.spark import outputs
    from edi_pipeline.spark.job import run_spark_batch

    def refuse(*a, **k):
        raise AssertionError("the driver read an input for its X12 outputs")

    monkeypatch.setattr(outputs, "EnvelopeReader", refuse)
    src = ROOT / "fixtures" / "edi" / "pair-denials.837"
    run_spark_batch(spark, [src], tmp_path / "out", today=TODAY, as_of=TODAY)
    monkeypatch.undo()
    monkeypatch.setenv("EDI_SCRUB_DATE", TODAY.isoformat())
    scrub_file(src, tmp_path / "local.837", tmp_path / "local-rejects.837", today=TODAY)
    assert (tmp_path / "out" / "outbound" / src.name).read_bytes() == (tmp_path / "local.837").read_bytes()
    assert (tmp_path / "out" / "rejects" / src.name).read_bytes() == (tmp_path / "local-rejects.837").read_bytes()
    assert list((tmp_path / "out" / "acks").glob(f"{src.name}.*.999"))


def test_partitions_grow_with_the_files_so_each_holds_about_one(spark, tmp_path):
    """Regression: partitions were fixed by the core count (8 at local[2]), so the 1,000,000-claim, 50-file
    run held 125,000 claims a partition and ran out of JVM heap. Now there is at least one per file."""
    from edi_pipeline.spark.job import partitions, read_files

    files = []
    for k in range(12):
        p = tmp_path / f"f{k:02d}.837"
        shutil.copyfile(ROOT / "fixtures" / "edi" / "837p-clean.837", p)
        files.append(p)
    assert partitions(spark, len(files)) >= len(files)
    assert read_files(spark, files).rdd.getNumPartitions() == len(files)


def test_outputs_are_fetched_a_file_at_a_time_in_file_order(spark):
    """Regression: the executor-made 837Ps were fetched through a sort over 4 range partitions, each holding
    25 files' text at 1,000,000 claims (TaskResultLost). by_file gives a partition a file, in file order."""
    from edi_pipeline.spark.job import by_file

    df = spark.createDataFrame([(k % 12, f"x{k}") for k in range(60)][::-1], "file_order int, x12 string")
    got = by_file(df, 12)
    assert got.rdd.getNumPartitions() == 12
    parts = got.rdd.glom().collect()
    assert [sorted({r["file_order"] for r in p}) for p in parts] == [[k] for k in range(12)]
    assert [r["file_order"] for r in got.toLocalIterator()] == sorted(k % 12 for k in range(60))


def test_claim_level_is_joins_with_reconciles_rules(spark):
    """spark.job.claim_level (DataFrame joins): a status per claim group by reconcile's precedence, totals
    over the active payments only, CAS split as the store splits it, and an unmatched group named by its
    last payment in payment order (a dated one after an undated one)."""
    from decimal import Decimal as D

    from pyspark.sql.pandas.types import from_arrow_schema

    from edi_pipeline.spark.job import MATCHED, claim_level, reconciliation, unmatched_remits

    adj = "array<struct<group:string,reason:string,amount:decimal(20,2)>>"
    sent = spark.createDataFrame(
        [(g, g, "PAYER", date(2026, 10, 1), D("100.00"), f, 0, k) for k, (g, f) in
         enumerate([("VOID", "8"), ("REV", "1"), ("DENY", "1"), ("PART", "1"), ("OPEN", "1")])],
        "group string, patient_control_number string, payer string, service_date date, charge decimal(20,2), "
        "frequency_code string, file_order int, segment_index long")
    paid_on = date(2026, 11, 4)
    rows = [("VOID", 1, 10, "1", D("100"), D("80"), D("0"), [("CO", "45", D("20"))], paid_on),
            ("REV", 1, 11, "1", D("100"), D("80"), D("0"), [("CO", "45", D("20"))], paid_on),
            ("REV", 1, 12, "22", D("-100"), D("-80"), D("0"), [("CO", "45", D("-20"))], paid_on),
            ("DENY", 1, 13, "4", D("100"), D("0"), D("0"), [("CO", "50", D("100"))], paid_on),
            ("PART", 1, 14, "1", D("100"), D("60"), D("10"), [("CO", "45", D("20")), ("PR", "2", D("10"))], paid_on),
            ("LOOSE", 1, 15, "1", D("50"), D("40"), D("0"), [], paid_on),
            ("LOOSE", 1, 16, "1", D("70"), D("60"), D("0"), [], None)]
    remits = spark.createDataFrame(
        [(g, fo, si, g, f"ICN{si}", pd, st, "PAYER", ch, pa, pr, a) for g, fo, si, st, ch, pa, pr, a, pd in rows],
        f"group string, file_order int, segment_index long, patient_control_number string, "
        f"payer_claim_control_number string, payment_date date, status_code string, payer string, "
        f"charge decimal(20,2), paid decimal(20,2), patient_responsibility decimal(20,2), adjustments {adj}")
    active = {"VOID": [10], "REV": [], "DENY": [13], "PART": [14], "OPEN": [], "LOOSE": [15, 16]}
    groups = spark.createDataFrame([(g, [(1, si) for si in s], None if g == "LOOSE" else []) for g, s in active.items()],
                                   from_arrow_schema(MATCHED))
    level = claim_level(sent, remits, groups, ["45", "2"])
    got = {r["patient_control_number"]: r for r in reconciliation(level, TODAY).collect()}
    assert {k: r["status"] for k, r in got.items()} == {"VOID": "voided", "REV": "reversed", "DENY": "denied",
                                                         "PART": "partially paid", "OPEN": "open"}
    part = got["PART"]
    assert (part["paid"], part["patient_responsibility"], part["adjustments"]) == ("60.00", "10.00", "20.00")
    assert (got["REV"]["paid"], got["OPEN"]["state"], got["OPEN"]["days_outstanding"]) == ("0.00", "submitted", 61)
    assert part["days_outstanding"] == 34 and got["REV"]["days_outstanding"] == 61  # none active: to as_of
    [loose] = unmatched_remits(level).collect()
    assert (loose["payer_claim_control_number"], loose["payments"], loose["paid"], loose["last_payment_date"]) == \
        ("ICN15", 2, "100.00", "2026-11-04")


def _random_groups(seed: int, n: int) -> list[dict]:
    """Small claim groups made to collide: repeated codes, modifiers, dates and charges; REF*6R right,
    wrong (another line's, a code that disagrees) and repeated; SVC06; payments undated and dated out of
    file order; reversals (CLP02 = 22) under the same CLP07, another one, none, of the negated CLP04 or not."""
    import random
    from decimal import Decimal as D

    rnd = random.Random(seed)
    codes, dates = ["99213", "99214", "20552", None], [date(2026, 10, 1), date(2026, 10, 2), None]
    pick = rnd.choice
    groups = []
    for g in range(n):
        lines = [dict(line_number=pick([k + 1, k + 1, k + 1, 1, None]), procedure=pick(codes),
                      modifiers=pick(["", "25", "25 59"]), charge=pick([D("100.00"), D("150.00"), None]),
                      service_date=pick(dates), control_number=pick([None, "", "1", "2", "3"]))
                 for k in range(rnd.randint(0, 5))]
        pays = []
        for k in range(rnd.randint(0, 4)):
            services = [dict(procedure=pick(codes), original_procedure=pick([None, None, "", *codes]),
                             modifiers=pick(["", "25", "25 59"]), charge=pick([D("100.00"), D("150.00"), None]),
                             paid=pick([D("60.00"), D("-60.00"), D("0.00"), None]), service_date=pick(dates),
                             control_number=pick([None, "", "1", "2", "3"])) for _ in range(rnd.randint(0, 4))]
            pays.append(dict(file_order=pick([1, 2]), segment_index=10 * k + rnd.randint(0, 5),
                             payment_date=pick([date(2026, 11, 1), date(2026, 11, 2), None]),
                             status_code=pick(["1", "1", "4", "22"]), icn=pick(["A", "B", None]),
                             paid=pick([60, -60, 80]), services=services))
        groups.append(dict(group=f"G{g:04d}", lines=lines, payments=pays))
    return groups


def _cents(x):
    return None if x is None else int(x * 100)


def _local_line_matches(g: dict) -> list[dict]:
    """reconcile's own rules over one random group: payments in the store's order, reversals netted, the
    active payments' service payments matched to the lines."""
    from edi_pipeline.analytics.reconcile import Payment, _net, match_lines
    from edi_pipeline.store.rows import ClaimLineRow, ServicePaymentRow

    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    ordered = sorted(g["payments"], key=lambda p: (iso(p["payment_date"]) or "", p["file_order"], p["segment_index"]))
    pays = [Payment(f"{p['file_order']}:{p['segment_index']}", g["group"], p["status_code"], None, p["paid"], None,
                    p["icn"], iso(p["payment_date"]), None, None, "", None) for p in ordered]
    active, _ = _net(pays)
    of = {f"{p['file_order']}:{p['segment_index']}": p for p in ordered}
    lines = [ClaimLineRow("c", ln["line_number"], ln["procedure"], ln["modifiers"], _cents(ln["charge"]),
                          iso(ln["service_date"]), ln["control_number"]) for ln in g["lines"]]
    services = [ServicePaymentRow(f"{p.id}:{j}", p.id, s["procedure"], s["modifiers"], s["original_procedure"],
                                  _cents(s["charge"]), _cents(s["paid"]), iso(s["service_date"]), s["control_number"],
                                  None) for p in active for j, s in enumerate(of[p.id]["services"])]
    return [m.to_dict() for m in match_lines(lines, services)], [(of[p.id]["file_order"], of[p.id]["segment_index"])
                                                                  for p in active]


def test_join_line_matching_equals_match_lines_on_random_groups(spark):
    """spark.job.match_lines (windows over all groups in one frame) gives analytics.reconcile.match_lines'
    pairs, in its order, on 600 random groups of colliding lines, over the service payments of the
    payments reversals leave active (netted per group, as the job does), in payment order."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    from edi_pipeline.spark import rows as R
    from edi_pipeline.spark.job import ACTIVE, line_inputs, match_lines

    groups = _random_groups(16, 600)
    expected, actives = {}, []
    for g in groups:
        expected[g["group"]], active = _local_line_matches(g)
        actives.append((g["group"], [dict(file_order=f, segment_index=s) for f, s in active]))
    record = spark.createDataFrame([(g["group"], g["lines"]) for g in groups], from_arrow_schema(
        pa.schema([("group", pa.string()), ("lines", pa.list_(R.MATCH_LINE))])))
    remits = spark.createDataFrame(
        [(g["group"], p["file_order"], p["segment_index"], p["payment_date"], p["services"])
         for g in groups for p in g["payments"]],
        from_arrow_schema(pa.schema([("group", pa.string()), ("file_order", pa.int32()), ("segment_index", pa.int64()),
                                     ("payment_date", pa.date32()), ("services", pa.list_(R.MATCH_SERVICE))])))
    active = spark.createDataFrame(actives, from_arrow_schema(ACTIVE))
    got = {r["group"]: [m.asDict() for m in r["lines"]] for r in match_lines(*line_inputs(record, remits, active))
           .collect()}
    assert sum(len(v) for v in expected.values()) > 1000
    hows = {m["matched_by"] for v in expected.values() for m in v}
    assert hows == {"6R", "exact", "procedure+date", "procedure", None}
    assert got == {k: v for k, v in expected.items() if v}  # a group with nothing to match has no row


def _random_payments(seed: int, n: int) -> list[tuple]:
    """Small claim groups' payments made to collide: (group, file_order, segment_index, payment_date,
    status_code, CLP07, paid): reversals (CLP02 = 22) of the same CLP07, another one, none, of the negated
    paid or not, several a group, undated payments and payments dated out of file order, reversals with
    nothing before them to take."""
    import random
    from decimal import Decimal as D

    rnd = random.Random(seed)
    pick = rnd.choice
    rows = []
    for g in range(n):
        for k in range(rnd.randint(0, 6)):
            rows.append((f"G{g:04d}", pick([1, 2]), 10 * k + rnd.randint(0, 5),
                         pick([date(2026, 11, 1), date(2026, 11, 2), None]), pick(["1", "4", "22", "22"]),
                         pick(["A", "B", "", None]), pick([D("10.00"), D("-10.00"), D("12.00"), D("-12.00"), None])))
    # the counter-example of spark/analytics.py: one pass per fallback would cancel O1 with R2
    rows += [("X", 1, 1, None, "1", "A", D("10.00")), ("X", 1, 2, None, "22", "B", D("-10.00")),
             ("X", 1, 3, None, "22", "A", D("-12.00"))]
    return rows


def _local_net(rows: list[tuple]) -> dict[str, list[tuple[int, int]]]:
    """analytics.reconcile._net of each group of `rows`, in payment order (the store's: date, undated
    first, then file and position)."""
    from edi_pipeline.analytics.reconcile import Payment, _net

    by_group: dict[str, list] = defaultdict(list)
    for g, fo, si, pd, st, icn, paid in rows:
        by_group[g].append(Payment(f"{fo}:{si}", g, st, None, None if paid is None else int(paid * 100), None, icn,
                                   pd and pd.isoformat(), None, None, "", None))
    out = {}
    for g, pays in by_group.items():
        pays.sort(key=lambda p: (p.payment_date or "", tuple(map(int, p.id.split(":")))))
        out[g] = [tuple(map(int, p.id.split(":"))) for p in _net(pays)[0]]
    return out


def test_join_netting_equals_net_on_random_groups(spark):
    """spark.job.net_reversals (rounds of joins over all groups at once) leaves active the payments
    analytics.reconcile._net leaves, on 800 random groups of colliding payments and the counter-example
    to one pass of joins per fallback."""
    from edi_pipeline.spark.job import net_reversals

    rows = _random_payments(18, 800)
    expected = _local_net(rows)
    assert expected["X"] == [(1, 3)]
    pays = spark.createDataFrame(rows, "group string, file_order int, segment_index long, payment_date date, "
                                       "status_code string, payer_claim_control_number string, paid decimal(20,2)")
    got = {r["group"]: [(p["file_order"], p["segment_index"]) for p in r["active"]]
           for r in net_reversals(pays).collect()}
    assert sum(len(v) for v in expected.values()) > 1000
    assert max(sum(st == "22" for g2, _, _, _, st, _, _ in rows if g2 == g) for g in expected) >= 4
    assert got == {g: v for g, v in expected.items() if v}  # a group left with nothing active has no row


def test_denied_groups_are_those_with_an_active_denied_payment(spark):
    """spark.job.denied_groups (the groups sent to the per-group denial rows): an active payment with a
    denial CAS (positive, CO/PI/OA/PR, not contractual or patient responsibility) or CLP02 = 4; a reversed
    one, a contractual or patient-responsibility CAS, a negative amount do not count."""
    from decimal import Decimal as D

    from pyspark.sql.pandas.types import from_arrow_schema

    from edi_pipeline.spark.job import ACTIVE, denied_groups

    rows = [("DENY", 1, "1", [("CO", "50", D("100"))]), ("CONTRACT", 2, "1", [("CO", "45", D("20"))]),
            ("REV", 3, "1", [("CO", "50", D("100"))]), ("REV", 4, "22", [("CO", "50", D("-100"))]),
            ("S4", 5, "4", []), ("PR", 6, "1", [("PR", "2", D("10"))]), ("NEG", 7, "1", [("OA", "50", D("-5"))]),
            ("PI", 8, "1", [("CO", "45", D("5")), ("PI", "96", D("5"))])]
    remits = spark.createDataFrame(
        [(g, 1, si, st, a) for g, si, st, a in rows],
        "group string, file_order int, segment_index long, status_code string, "
        "adjustments array<struct<group:string,reason:string,amount:decimal(20,2)>>")
    active = spark.createDataFrame([(g, [(1, si) for h, si, st, _ in rows if h == g and g != "REV"])
                                    for g in {r[0] for r in rows}], from_arrow_schema(ACTIVE))
    got = {r["group"] for r in denied_groups(remits, active, ["45", "2"]).collect()}
    assert got == {"DENY", "S4", "PI"}
