"""`scrub`, `rules` and `auth`: the scrubber and what it reads (rules, payer profiles, authorizations)."""

from __future__ import annotations

import sys

import click

from edi_pipeline.core.files import atomic_output

from edi_pipeline.cli.base import text_table, EXIT_FAIL, EXIT_OK, STDIN, _fail, _input_path, cli, guarded, print_issues


def _text_report(result, out) -> None:
    """A readable scrub report, a line per finding, then the summary."""
    for finding in result.findings:
        f = finding.to_dict()
        where = f"line {f['line']}" if f["line"] is not None else "claim"
        proc = f" {f['procedure']}" if f["procedure"] else ""
        out.write(f"{f['patient_control_number']} {where}{proc}: {f['rule']} ({f['severity']}, "
                  f"{f['action']}) {f['message']}\n")
    s = result.summary()
    out.write(f"claims: {s['claims_in']} in, {s['claims_out']} out, {s['claims_held']} held, "
              f"{s['claims_corrected']} corrected, {s['claims_emptied']} emptied by corrections\n")
    for rule_id, actions in s["by_rule_action"].items():
        out.write(f"  {rule_id}: " + ", ".join(f"{a} {n}" for a, n in sorted(actions.items())) + "\n")


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Corrected 837P (default: INPUT.scrubbed.837, or stdout when INPUT is -; never the input itself).")
@click.option("--rejects", type=click.Path(dir_okay=False), default=None,
              help="Held claims as their own 837P (default: INPUT.rejects.837; required when INPUT is -); "
                   "written only when a claim is held.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write the findings and summary as JSON here.")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help="text: also print a readable report on stderr.")
@click.option("--payer-rules", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Payer profiles TOML (a copy of the shipped payer_profiles.toml).")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Store with claim history and authorizations (default: $EDI_PIPELINE_DB or edi_pipeline.db).")
@click.option("--report-only", is_flag=True,
              help="The same findings, but nothing corrected and nothing held: OUTPUT gets the claims as they "
                   "came, and the store is only read.")
@click.option("--scrub-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The date TIMELY-FILING counts to (default: $EDI_SCRUB_DATE, else today).")
@guarded
def scrub(input, output, rejects, report_path, fmt, payer_rules, db, report_only, scrub_date):
    """Apply the pain-management line rules to an 837P and write a corrected file.

    Claims that pass or were corrected go to OUTPUT; held claims (an error no safe correction
    fixes, or an invalid value in the claim itself, such as a charge that is not a number) go
    to REJECTS. An INPUT of - reads stdin (named <stdin>). Exit 0 when nothing was held, 1 when any
    claim was held or the input is unreadable.

    \b
    Examples:
      edi-pipeline scrub claims.837 -o claims.fixed.837 --report findings.json
      edi-pipeline scrub claims.837 --format text --payer-rules my_payers.toml
      cat claims.837 | edi-pipeline scrub - --rejects held.837 > claims.fixed.837
      edi-pipeline scrub claims.837 --report-only --report findings.json
    """
    from edi_pipeline.codes.tables import load_profiles, load_tables
    from edi_pipeline.scrub.scrubber import scrub_file
    from edi_pipeline.store.store import Store

    if input == "-" and rejects is None:
        raise click.UsageError("with INPUT -, give --rejects FILE: held claims need a file of their own")
    name = STDIN if input == "-" else input
    profiles = load_profiles(payer_rules)
    tables = load_tables()
    store = Store(db)
    try:
        with _input_path(input) as readable:
            result = scrub_file(readable, output or ("-" if input == "-" else None), rejects, store, profiles,
                                tables, name=name, report_only=report_only,
                                today=scrub_date.date() if scrub_date else None)
    finally:
        store.close()
    if report_path:
        with atomic_output(report_path) as out:
            result.write_report(out)
    print_issues(result.issues)
    for bad in result.claims_invalid:
        held = "invalid (report only: not held)" if report_only else "held"
        click.echo(f"{bad['at']}: claim {bad['patient_control_number']} {held}: {bad['error']}", err=True)
    if fmt == "text":
        _text_report(result, sys.stderr)
    else:
        s = result.summary()
        click.echo(f"{name}: {s['claims_in']} claims in, {s['claims_out']} out, {s['claims_held']} held, "
                   f"{s['findings']} findings", err=True)
    sys.exit(EXIT_FAIL if result.held else EXIT_OK)


@cli.group()
def rules():
    """The line-rule catalogue (ids as in domain/RULES.md).

    \b
    Examples:
      edi-pipeline rules list
      edi-pipeline rules explain ACU-NCD-VISITS
      edi-pipeline rules profiles > my_payers.toml
    """


@rules.command("list")
@guarded
def rules_list():
    """Print id, payer profile, severity and a one-line description of every rule.

    \b
    Examples:
      edi-pipeline rules list
      edi-pipeline rules list | grep medicare
    """
    from edi_pipeline.codes.tables import load_tables
    from edi_pipeline.rules.engine import iter_rule_info

    infos = list(iter_rule_info(load_tables()))
    width = max(len(i.id) for i in infos)
    for i in infos:
        click.echo(f"{i.id:<{width}}  {i.profile:<9}  {i.severity:<7}  {i.summary}")


@rules.command("profiles")
@guarded
def rules_profiles():
    """Print the shipped payer-profile file (a starting point for --payer-rules).

    \b
    Examples:
      edi-pipeline rules profiles > my_payers.toml
      edi-pipeline scrub claims.837 --payer-rules my_payers.toml
    """
    from importlib import resources

    from edi_pipeline.codes.tables import PROFILES_FILE

    click.echo(resources.files("edi_pipeline.codes").joinpath("data", PROFILES_FILE).read_text(encoding="utf-8"), nl=False)


@rules.command("explain")
@click.argument("rule_id")
@guarded
def rules_explain(rule_id):
    """Print a rule's trigger, correction and sources.

    \b
    Examples:
      edi-pipeline rules explain TPI-UNITS
      edi-pipeline rules explain acu-ncd-dx
    """
    from edi_pipeline.codes.tables import load_tables
    from edi_pipeline.rules.engine import registry

    tables = load_tables()
    info = tables.rules.get(rule_id.strip().upper())
    if info is None or info.id not in registry():
        _fail(f"unknown rule id {rule_id!r}; see `edi-pipeline rules list`")
    click.echo(f"{info.id}: {info.summary}")
    click.echo(f"profile:    {info.profile}")
    click.echo(f"severity:   {info.severity}")
    click.echo(f"trigger:    {info.trigger}")
    click.echo(f"correction: {info.correction} ({info.action})")
    for src in info.sources:
        click.echo(f"source:     {src}")


@cli.group()
def auth():
    """Prior authorizations on file (used by rule AUTH-REQUIRED).

    \b
    Examples:
      edi-pipeline auth import auths.csv
      edi-pipeline auth list
    """


@auth.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Store (default: $EDI_PIPELINE_DB).")
@guarded
def auth_import(csv_file, db):
    """Load authorizations from CSV: member_id,payer_id,auth_number,codes,units,start,end.

    codes is a space- or |-separated list (or * for any code); start and end are YYYY-MM-DD.
    Loading the same payer_id + auth_number again replaces it.

    \b
    Examples:
      edi-pipeline auth import auths.csv --db billing.db
    """
    from edi_pipeline.store.store import Store

    store = Store(db)
    try:
        n = store.import_authorizations(csv_file)
    finally:
        store.close()
    click.echo(f"{n} authorizations imported", err=True)


@auth.command("list")
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Store (default: $EDI_PIPELINE_DB).")
@guarded
def auth_list(db):
    """Table of authorizations on file and the units left.

    \b
    Examples:
      edi-pipeline auth list --db billing.db
    """
    from edi_pipeline.store.store import Store

    store = Store(db)
    try:
        rows = store.authorizations()
    finally:
        store.close()
    cols = ("payer_id", "auth_number", "member_id", "codes", "units", "units_left", "start_date", "end_date")
    table = [[str(r[c]) for c in cols] for r in rows]
    click.echo(text_table(list(cols), table, rule=False))
