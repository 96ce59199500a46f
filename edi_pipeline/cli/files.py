"""`convert` and `validate`: X12 to and from other formats, and TR3 validation with 999s."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import click

from edi_pipeline.formats.convert import CONVERTERS, FORMATS, looks_like_xml, xml_to_x12
from edi_pipeline.core.errors import IssueList, Severity
from edi_pipeline.core.files import atomic_output

from edi_pipeline.cli.base import EXIT_FAIL, EXIT_OK, STDIN, _input_path, cli, guarded, print_issues


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Output file; - is stdout.")
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("-q", "--quiet", is_flag=True, help="Print input errors only, not warnings.")
@click.option("--numbers", is_flag=True,
              help="ndjson: money, units and quantities as JSON numbers of their exact text (default: strings).")
@guarded
def convert(input, output, fmt, quiet, numbers):
    """Convert X12 (or XML written by this tool) to ndjson, json, xml, csv or x12.

    Whatever could be read is written; errors in the input (a missing trailer, a bad
    amount) are printed and make the exit code 1.

    \b
    ndjson: one object per 837P claim / 835 claim payment (plus one per 835 header)
    json:   the whole interchange tree; xml: loops, segments and elements
    csv:    one row per service line; x12: the same segments back

    \b
    Examples:
      edi-pipeline convert claims.837 --to ndjson > claims.ndjson
      edi-pipeline convert remit.835 --to ndjson --numbers -o remit.ndjson  # duckdb sums paid
      edi-pipeline convert claims.837 --to xml -o claims.xml
      edi-pipeline convert claims.xml --to x12 -o claims.837
      cat remit.835 | edi-pipeline convert - --to csv
    """
    if numbers and fmt != "ndjson":
        raise click.UsageError("--numbers applies to --to ndjson only")
    name = "<stdin>" if input == "-" else input
    issues = IssueList()
    with contextlib.ExitStack() as stack:
        stream = sys.stdin.buffer if input == "-" else stack.enter_context(open(input, "rb"))
        if not hasattr(stream, "peek"):
            stream = io.BufferedReader(stream)
        if looks_like_xml(stream.peek(64)[:64]):
            data = stream.read()
            if fmt == "xml":
                with atomic_output(output) as out:
                    out.write(data.decode("utf-8", errors="surrogateescape"))
                return
            buf = io.StringIO()
            xml_to_x12(data, buf, name)
            stream = io.BytesIO(buf.getvalue().encode("utf-8", errors="surrogateescape"))
        with atomic_output(output, mode=0o600) as out:
            options = {"numbers": True} if numbers else {}
            CONVERTERS[fmt](stream, out, name, issues, **options)  # streams: memory stays flat in file size
    print_issues(issues, minimum=Severity.ERROR if quiet else Severity.WARNING)
    sys.exit(EXIT_FAIL if issues.errors else EXIT_OK)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--ack-dir", type=click.Path(file_okay=False),
              help="Write one 999 per functional group here, and a TA1 per interchange with envelope errors or "
                   "asking for one (ISA14 = 1); each with an interchange control number never used in this "
                   "folder before (the last is kept in DIR/.edi-pipeline-control-number).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guarded
def validate(files, ack_dir, fmt):
    """Validate X12 files: envelopes, TR3 (pyx12 maps), balancing, NPIs and code lists.

    Prints one line per defect: FILE:LINE: SEGMENT#POSITION [LOOP] ELEMENT code message.
    A FILE of - reads stdin (named <stdin>; its acks are named stdin.*).
    Exit 0 when every file is accepted, 1 when any has an error, 2 on usage errors.

    \b
    Examples:
      edi-pipeline validate claims.837
      edi-pipeline validate inbox/*.837 --ack-dir acks/ --format json
      gunzip -c claims.837.gz | edi-pipeline validate -
    """
    from edi_pipeline.validate.validator import validate_file, write_acks

    failed = False
    results = []
    for path in files:
        name = STDIN if path == "-" else path
        try:
            with _input_path(path) as readable:
                result = validate_file(readable, name)
        except OSError as exc:
            click.echo(f"{name}:0: - ENV-UNREADABLE {exc.strerror or exc}", err=True)
            failed = True
            continue
        failed |= not result.ok
        results.append(result)
        if ack_dir:
            write_acks(result, Path(ack_dir), "stdin" if path == "-" else None)
        if fmt == "text":
            print_issues(result.issues, sys.stdout)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        for r in results:
            state = "accepted" if r.ok else "rejected"
            click.echo(f"{r.file}: {state}: {r.transactions} transaction sets, {r.claims} claims, "
                       f"{r.payments} claim payments, {len(r.issues.errors)} errors", err=True)
    sys.exit(EXIT_FAIL if failed else EXIT_OK)
