"""`ncci import` and `ncci show`: the CMS NCCI tables."""

from __future__ import annotations


import click

from edi_pipeline.cli.base import _DB_OPTION, _rows_out, cli, guarded


@cli.group()
def ncci():
    """CMS NCCI edit tables (PTP pairs, MUEs, add-on codes) that scrub applies.

    The project ships CMS's rows for its codes (effective 2024-07-01); `ncci import` loads a newer
    quarter, which replaces the shipped table for dates of service from its effective date.
    """


@ncci.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@_DB_OPTION
@click.option("--effective", metavar="YYYY-MM-DD",
              help="Effective date of the files when their names do not say (e.g. 2026q3, Eff_07-01-2026).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@guarded
def ncci_import(files, db, effective, fmt):
    """Load CMS NCCI files in their official layouts: PTP practitioner TXT (ccipra-vNNNr0-f1..f4, or the
    zips holding them), the MUE practitioner CSV (or its zip), the add-on code edit file.

    Each file's table is detected from its content; its version and effective quarter are recorded
    beside the store (DB.ncci.sqlite). Importing a file again changes nothing; a changed file of the
    same version and part replaces the earlier rows. Nothing is stored when any file is malformed.

    \b
    Examples:
      edi-pipeline ncci import medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f*.zip --db billing.db
      edi-pipeline ncci import MCR_MUE_PractitionerServices_Eff_07-01-2026.csv AOC_V2026Q3_01-MCR.txt
    """
    from datetime import date

    from edi_pipeline.store.ncci_tables import import_files
    from edi_pipeline.store.store import default_db_path

    try:
        eff = date.fromisoformat(effective) if effective else None
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--effective") from None
    rows = import_files(files, db or default_db_path(), eff)
    _rows_out(rows, fmt)


@ncci.command("show")
@_DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@guarded
def ncci_show(db, fmt):
    """The shipped NCCI tables and the versions imported beside the store, with their effective dates.

    \b
    Example:
      edi-pipeline ncci show --db billing.db
    """
    from edi_pipeline.codes.ncci import KINDS, shipped
    from edi_pipeline.store.ncci_tables import NcciDb, db_path
    from edi_pipeline.store.store import default_db_path

    meta = shipped()[1]
    rows = [{"kind": k, "version": meta[k].get("version"), "effective": meta[k].get("effective"),
             "origin": "shipped", "files": 1, "rows": None} for k in KINDS]
    path = db_path(db or default_db_path())
    if path is not None and path.exists():
        nd = NcciDb(path)
        try:
            rows += [{**v, "origin": "imported"} for v in nd.versions()]
        finally:
            nd.close()
    _rows_out(rows, fmt)
