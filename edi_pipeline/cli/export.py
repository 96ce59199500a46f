"""The export command: the store as typed Parquet tables (analytics/export.py)."""

from __future__ import annotations

import click

from edi_pipeline.cli.base import _DB_OPTION, _as_of, _open_store, cli, guarded


@cli.command()
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--to", "fmt", type=click.Choice(["parquet"]), required=True, help="Output format.")
@_DB_OPTION
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Date for the reconciliation's days outstanding "
              "(default today).")
@guarded
def export(out_dir, fmt, db, as_of):
    """Write the store as typed Parquet, one file per table in DIR: claims, lines, payments,
    service_payments, adjustments, findings, lifecycle_events and reconciliation. Money is
    decimal(12,2) (columns named without _cents), dates are date; rows are streamed in batches.
    Needs pyarrow (pip install 'edi-pipeline[spark]').

    \b
    Examples:
      edi-pipeline export --to parquet warehouse/ --db billing.db
      duckdb -c "select status, sum(paid) from 'warehouse/reconciliation.parquet' group by status"
    """
    from edi_pipeline.analytics.export import export_parquet

    store = _open_store(db, must_exist=True)
    try:
        counts = export_parquet(store, out_dir, _as_of(as_of))
    finally:
        store.close()
    click.echo(f"{out_dir}: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()), err=True)
