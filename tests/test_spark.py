"""The Spark runner (spark-batch) against the local batch: the same findings, corrected claims (byte-identical
files), reconciliation and denials, on the fixtures and on a generated multi-file set. One Spark session
for the module (local[2]); skipped with a message where pyspark or Java is missing."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: the Spark runner needs Java 17 (.ci/run installs openjdk-17-jre-headless)",
                allow_module_level=True)

import pyarrow.parquet as pq  # noqa: E402

from edi_pipeline.analytics.denials import find_denials  # noqa: E402
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
        denials = {_row(d.flat()) for d in find_denials(store, tables, rec)}
    finally:
        store.close()
    return {"findings": findings, "reconciliation": recon, "denials": denials,
            "unmatched": {_row(u) for u in rec.unmatched_remits}}


def _spark(spark, inbox: Path, out: Path) -> dict:
    from edi_pipeline.spark.job import run_spark_batch

    run_spark_batch(spark, [inbox], out, today=TODAY, as_of=TODAY)
    t = {name: pq.read_table(out / "tables" / name).to_pylist() if (out / "tables" / name).exists() else []
         for name in ("findings", "reconciliation", "denials", "unmatched_remits")}
    return {"findings": {(f["file"], f["rule"], f["severity"], f["patient_control_number"], f["line"], f["procedure"],
                          f["action"], f["message"]) for f in t["findings"]},
            "reconciliation": {_row(r) for r in t["reconciliation"]},
            "denials": {_row(d) for d in t["denials"]},
            "unmatched": {_row(u) for u in t["unmatched_remits"]}}


def _row(d: dict) -> str:
    d = {k: v for k, v in d.items() if k != "state"}  # lifecycle states need the store's 999/277CA events
    return json.dumps(d, sort_keys=True, default=str)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*")} if folder.exists() else {}


@pytest.mark.parametrize("which", ["fixtures", "generated"])
def test_spark_batch_equals_local_batch(spark, tmp_path, monkeypatch, which):
    inbox = ROOT / "fixtures" / "edi" if which == "fixtures" else _generated(tmp_path)
    local = _local(inbox, tmp_path / "local", monkeypatch)
    got = _spark(spark, inbox, tmp_path / "spark")
    assert got["findings"] and got["findings"] == local["findings"]
    if which == "generated":  # the resent file's claims were seen in the earlier one
        assert {f[1] for f in got["findings"] if f[0] == "837p-clean-b.837"} == {"DUPLICATE-CLAIM"}
    assert got["reconciliation"] and got["reconciliation"] == local["reconciliation"]
    assert got["denials"] and got["denials"] == local["denials"]
    assert got["unmatched"] == local["unmatched"]
    for sub in ("outbound", "rejects"):  # corrected claims and held claims: byte-identical files
        mine, theirs = _files(tmp_path / "spark" / sub), _files(tmp_path / "local" / sub)
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
