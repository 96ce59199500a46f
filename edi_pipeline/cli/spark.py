"""`edi-pipeline spark-batch`: the Spark runner's command (registered on the group by cli/commands.py)."""

from __future__ import annotations

import json
import shutil
import sys

import click

from edi_pipeline.cli.base import EXIT_FAIL, EXIT_OK, _fail, cli, guarded


@cli.command("spark-batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for tables/, acks/, outbound/ and rejects/.")
@click.option("--master", default="local[2]", show_default=True, help="Spark master URL.")
@click.option("--driver-memory", default="2g", show_default=True,
              help="Heap of the driver JVM (in local mode also the executor's), as spark.driver.memory.")
@click.option("--history", type=click.Path(exists=True), default=None,
              help="Parquet history of claims sent before (a former run's OUT/tables/history).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guarded
def spark_batch(inputs, out_dir, master, driver_memory, history, fmt):
    """Run the batch's stages on Spark over INPUT files and folders (needs the [spark] extra and Java 17).

    \b
    OUT/tables/NAME: Parquet tables claims, lines, payments, service_payments, adjustments,
      acknowledgments (999 set responses, 277CA claim statuses), findings,
      reconciliation, unmatched_remits, denials, errors (a file not taken, and why) and history (the
      lines sent, for the next run's --history); decimal money, date dates, each row with its file
      and position; published together once all are written.
    OUT/acks, OUT/outbound, OUT/rejects: per 837P input, its 999s, corrected claims and held claims,
      as `batch` writes them.
    Findings, corrected claims, reconciliation and denials are those `batch` gives for the same inbox
    (files in name order; a member's history is the claims earlier files sent, plus --history).
    No store is written. Exit 0 when every file was taken and every claim sent; 1 when a file was not
    taken, or a claim held or withheld.

    \b
    Examples:
      edi-pipeline spark-batch inbox/ --out out/
      edi-pipeline spark-batch inbox/ --out out2/ --history out/tables/history --master local[4]
    """
    try:
        from edi_pipeline.spark.job import run_spark_batch, spark_session
    except ImportError:
        _fail("spark-batch needs the [spark] extra: pip install -e '.[spark]'")
    if shutil.which("java") is None:
        _fail("spark-batch needs Java 17 on PATH (Debian: apt-get install openjdk-17-jre-headless)")
    with spark_session(master, driver_memory) as spark:
        summary = run_spark_batch(spark, list(inputs), out_dir, history=history)
    if fmt == "json":
        click.echo(json.dumps(summary.to_dict(), indent=1))
    else:
        click.echo(f"{summary.files} file(s), {summary.errors} not taken (see {out_dir}/tables/errors); claims: "
                   + ", ".join(f"{n} {k}" for k, n in sorted(summary.outcomes.items())))
        click.echo("tables: " + ", ".join(f"{k} {n}" for k, n in summary.counts.items()))
    held = summary.outcomes.get("held", 0) + summary.outcomes.get("withheld", 0)
    sys.exit(EXIT_FAIL if summary.errors or held else EXIT_OK)
