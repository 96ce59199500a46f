"""`status`, `worklist` and `resubmit`: following claims after they are sent."""

from __future__ import annotations

import sys

import click

from edi_pipeline.cli.base import EXIT_FAIL, EXIT_OK, _DB_OPTION, _fail, _open_store, _rows_out, cli, guarded


@cli.command()
@click.argument("pcn")
@_DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@guarded
def status(pcn, db, fmt):
    """Print one claim's timeline: every event of CLM01 = PCN with its date, state, source file and position.

    Exit 1 when the store knows no event of PCN.

    \b
    Example:
      edi-pipeline status CLM0001 --db billing.db
    """
    from edi_pipeline.analytics.lifecycle import timeline

    store = _open_store(db, must_exist=True)
    try:
        events = [e.to_dict() for e in timeline(store, pcn)]
    finally:
        store.close()
    if not events:
        _fail(f"claim {pcn}: no event in the store")
    _rows_out(events, fmt)


@cli.command()
@_DB_OPTION
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date for ages and turnaround (default today).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--payer-rules", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Payer profiles TOML whose turnaround_days replace the shipped ones (see `rules profiles`).")
@guarded
def worklist(db, as_of, fmt, payer_rules):
    """The claims leaking money, largest amount at stake first, each with its reason, age (days since the
    date of service), amount at stake and next action: rejected by the payer and not resent, denied,
    open past the payer's turnaround (its profile's turnaround_days), paid below the payer's usual rate for
    the code.

    \b
    Examples:
      edi-pipeline worklist --db billing.db
      edi-pipeline worklist --as-of 2026-12-31 --format csv > worklist.csv
      edi-pipeline worklist --payer-rules my_payers.toml
    """
    from edi_pipeline.analytics.lifecycle import worklist as build
    from edi_pipeline.codes.tables import load_profiles

    profiles = load_profiles(payer_rules)
    store = _open_store(db, must_exist=True)
    try:
        items = build(store, as_of=as_of.date() if as_of else None, profiles=profiles)
    finally:
        store.close()
    _rows_out([w.to_dict() for w in items], fmt)


@cli.command()
@click.argument("pcns", nargs=-1, required=True, metavar="PCN...")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), required=True,
              help="The 837P to write (- for stdout).")
@click.option("--void", is_flag=True, help="Void the claims (CLM05-3 = 8) instead of correcting them (7).")
@click.option("--secondary", is_flag=True,
              help="Send the claims to their next payer (the 2320/2330B marked S), with the primary's 835 answer.")
@click.option("--source", "sources", multiple=True, type=click.Path(exists=True),
              help="A file the claims were ingested from, or a folder holding it (repeatable; default: .).")
@_DB_OPTION
@guarded
def resubmit(pcns, output, void, secondary, sources, db):
    """Write a corrected (CLM05-3 = 7) or void (8) 837P of stored claims, with REF*F8 = the payer's claim
    control number (835 CLP07, or a 277CA's REF*1K) and, for a correction, the scrubber's corrections.
    With --secondary, the claims go to their next payer (the 2320/2330B marked S) with the primary's
    stored 835 answer (2320 AMT*D and CAS, 2430 SVD/CAS/DTP*573 per line), which must balance.

    Each claim is rebuilt from the file it was ingested from (found by name and sha256 in --source), which
    must be unchanged. Exit 1 when any claim cannot go (each named on stderr); the others are written.

    \b
    Examples:
      edi-pipeline resubmit CLM0001 CLM0002 -o corrected.837 --source inbox/
      edi-pipeline resubmit CLM0003 -o void.837 --void --source claims-2026-10.837
      edi-pipeline resubmit CLM0004 -o secondary.837 --secondary --source inbox/
    """
    from edi_pipeline.pipeline.resubmit import resubmit as build

    store = _open_store(db, must_exist=True)
    try:
        result = build(store, list(pcns), output, void=void, sources=sources or (".",), secondary=secondary)
    finally:
        store.close()
    for why in result.refused:
        click.echo(f"Error: {why}", err=True)
    done = "voided" if void else "sent to the secondary payer" if secondary else "corrected"
    click.echo(f"{output}: {len(result.claims)} claim(s) {done}", err=True)
    sys.exit(EXIT_FAIL if result.refused else EXIT_OK)
