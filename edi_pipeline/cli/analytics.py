"""`ingest`, `reconcile`, `denials` and `report`: the store filled and read."""

from __future__ import annotations

import json
import sys

import click

from edi_pipeline.formats.convert import compact_json

from edi_pipeline.cli.base import EXIT_FAIL, EXIT_OK, MAX_ISSUE_LINES, STDIN, _DB_OPTION, _as_of, _input_path, _open_store, _rows_out, _rows_stream, cli, guarded


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@_DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guarded
def ingest(files, db, fmt):
    """Load 837P claims, 835 remittances and payers' 999s and 277CAs into the store, one transaction per file.

    A 999 ties to the claims of the set batch sent (GS06/ST02), a 277CA to claims by TRN02, REF*1K or
    REF*D9: each answer becomes a claim status event (see status); those tying to nothing are listed.

    A file already loaded (same bytes, or same ISA sender + control number + kind) is skipped.
    A file with envelope or syntax errors is rejected and leaves the store untouched.
    835 balancing problems are stored as findings. A FILE of - reads stdin (named <stdin>).
    Exit 0 when every file was ingested or skipped, 1 when any was rejected.

    \b
    Examples:
      edi-pipeline ingest claims.837 remit.835 --db billing.db
      edi-pipeline ingest inbox/*.835 --format json
      gunzip -c remit.835.gz | edi-pipeline ingest - --db billing.db
    """
    from edi_pipeline.pipeline.ingest import ingest_file

    store = _open_store(db)
    results = []
    for path in files:
        with _input_path(path) as readable:
            results.append(ingest_file(readable, store, name=STDIN if path == "-" else None))
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=1, default=str))
    else:
        for r in results:
            if r.status == "rejected":
                click.echo(f"{r.path}: rejected: {r.reason}")
            elif r.status == "ingested":
                click.echo(f"{r.path}: ingested {r.kind}: {r.claims} claims, {r.payments} claim payments, "
                           f"{r.remits} remits, {len(r.findings)} findings")
                for f in r.findings[:MAX_ISSUE_LINES]:
                    click.echo(f"  {f}")
                if len(r.findings) > MAX_ISSUE_LINES:
                    click.echo(f"  {len(r.findings) - MAX_ISSUE_LINES} more findings not shown (--format json lists them)")
                if r.ack_events or r.unmatched_acks:
                    click.echo(f"  {r.ack_events} claim status events, {len(r.unmatched_acks)} acknowledgments "
                               "matching nothing sent")
                for a in r.unmatched_acks[:MAX_ISSUE_LINES]:
                    click.echo(f"  {a['file']}:{a['line']}: unmatched: {a['reason']}")
                if len(r.unmatched_acks) > MAX_ISSUE_LINES:
                    click.echo(f"  {len(r.unmatched_acks) - MAX_ISSUE_LINES} more unmatched not shown "
                               "(--format json lists them)")
            else:
                click.echo(f"{r.path}: already ingested ({r.reason})")
    sys.exit(EXIT_FAIL if any(r.status == "rejected" for r in results) else EXIT_OK)


@cli.command("reconcile")
@_DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Date for days outstanding and aging (default today).")
@guarded
def reconcile_cmd(db, fmt, as_of):
    """Match remits to claims: billed, paid, patient responsibility, status and days outstanding.

    Reversals (CLP02=22) are netted with the payment they reverse. Also lists remits that match
    no claim and ages claims with no remit (0-30, 31-60, 61-90, 90+ days since service).
    csv prints only the per-claim rows; json (compact, one document) adds line matches.

    \b
    Examples:
      edi-pipeline reconcile --db billing.db
      edi-pipeline reconcile --as-of 2026-12-31 --format json
    """
    from edi_pipeline.analytics.reconcile import claim_rows, reconcile_stream, write_claims_csv

    rec = reconcile_stream(_open_store(db, must_exist=True), _as_of(as_of), lines=(fmt == "json"))
    out = click.get_text_stream("stdout")
    if fmt == "json":  # compact, through orjson: indented output is ~10x slower on large stores
        rec.write_json(out.write, compact_json)
        out.write("\n")
        return
    if fmt == "csv":  # streamed: a whole store's rows are never held as text
        write_claims_csv(rec, out)
        return
    from edi_pipeline.core.values import cents_text

    _rows_out(claim_rows(rec), fmt)
    click.echo("\nRemits matching no claim:")
    _rows_out(rec.unmatched_remits, fmt)
    click.echo(f"\nClaims with no remit, aged as of {rec.as_of.isoformat()}:")
    _rows_out([{"days": b, "claims": v["claims"], "billed": cents_text(v["billed"])}
               for b, v in rec.aging.items()], fmt)


@cli.command()
@_DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--by", "by", type=click.Choice(["carc", "procedure", "payer", "category"]),
              help="Print counts and dollars per key instead of one row per denial.")
@click.option("--carc-csv", type=click.Path(exists=True, dir_okay=False),
              help="Full official CARC list (code,description[,deactivated]) laid over the shipped one.")
@click.option("--rarc-csv", type=click.Path(exists=True, dir_okay=False),
              help="Full official RARC list (code,description[,deactivated]) laid over the shipped one.")
@guarded
def denials(db, fmt, by, carc_csv, rarc_csv):
    """List denied claims and lines with category, recommended action and the rules that would have prevented them.

    A denial is CLP02=4, or a CO/PI/OA adjustment other than a contractual reduction (CO-45 and kin).
    PR deductible/coinsurance/copay is not a denial. Reversed payments are left out.

    \b
    Examples:
      edi-pipeline denials --db billing.db
      edi-pipeline denials --by category --format csv
      edi-pipeline denials --carc-csv carc-full.csv --rarc-csv rarc-full.csv
    """
    from edi_pipeline.analytics.denials import iter_store_denials, summarize, tables_with

    found = iter_store_denials(_open_store(db, must_exist=True), tables_with(carc_csv, rarc_csv))
    if by:
        _rows_out(summarize(found, by), fmt)
    elif fmt == "table":
        _rows_out([d.flat() for d in found], fmt)
    else:  # streamed: a whole store's denials are never held
        _rows_stream((d.to_dict() if fmt == "json" else d.flat() for d in found), fmt)


@cli.command()
@_DB_OPTION
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="HTML file to write.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Date for A/R aging (default today).")
@guarded
def report(db, output, as_of):
    """Write the analyst report, one offline HTML page: headline KPIs (clean-claim and first-pass
    acceptance rates, denial rate and dollars, net collection rate, days in A/R, dollars preventable
    by rule), monthly denial trends by payer and CARC category, denials by payer, category, CARC and
    rule, A/R aging of every unpaid balance and the claims to work. Prints the KPIs.

    \b
    Example:
      edi-pipeline report --db billing.db -o report.html
    """
    from edi_pipeline.analytics.report import write_report

    data = write_report(_open_store(db, must_exist=True), output, _as_of(as_of))
    kpis = "; ".join(f"{k.name.lower()} {k.value}" for k in data.kpis if k.value is not None)
    click.echo(f"{output}: {data.denials} denials, ${data.denied_dollars:,.2f} denied; {kpis}", err=True)
