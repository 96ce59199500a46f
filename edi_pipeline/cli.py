"""The `edi-pipeline` command line: parse arguments, call the library, render, set the exit code."""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from pathlib import Path

import click

from .convert import CONVERTERS, FORMATS, looks_like_xml, xml_to_x12
from .errors import EdiError, IssueList, Severity
from .writer import atomic_output

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAIL)


def guarded(fn):
    """Turn every failure into one line on stderr and exit 1: never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except EdiError as exc:
            _fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            _fail(f"{where}{exc.strerror or exc}")
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:  # last resort: one line, no traceback, no data values
            _fail(f"internal error ({type(exc).__name__}); please report it with the input's shape, not its data")

    return wrapper


def print_issues(issues, stream=None, minimum: Severity = Severity.WARNING) -> None:
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    for issue in issues:
        if order[issue.severity] <= order[minimum]:
            click.echo(str(issue) if issue.severity is Severity.ERROR else f"{issue} ({issue.severity.value})",
                       err=stream is None, file=stream)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edi-pipeline")
def cli():
    """X12 837P/835 pipeline for pain-management billing.

    \b
    Examples:
      edi-pipeline demo
      edi-pipeline validate claims.837 --ack-dir acks/
      edi-pipeline convert claims.837 --to ndjson | jq .patient_control_number
      edi-pipeline scrub claims.837 -o claims.fixed.837 --report findings.json
    """


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Output file; - is stdout.")
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print input warnings.")
@guarded
def convert(input, output, fmt, quiet):
    """Convert X12 (or XML written by this tool) to ndjson, json, xml, csv or x12.

    \b
    ndjson: one object per 837P claim / 835 claim payment (plus one per 835 header)
    json:   the whole interchange tree; xml: loops, segments and elements
    csv:    one row per service line; x12: the same segments back

    \b
    Examples:
      edi-pipeline convert claims.837 --to ndjson > claims.ndjson
      edi-pipeline convert claims.837 --to xml -o claims.xml
      edi-pipeline convert claims.xml --to x12 -o claims.837
      cat remit.835 | edi-pipeline convert - --to csv
    """
    data = sys.stdin.buffer.read() if input == "-" else Path(input).read_bytes()
    name = "<stdin>" if input == "-" else input
    issues = IssueList()
    if looks_like_xml(data[:64]):
        buf = io.StringIO()
        xml_to_x12(data, buf, name)
        if fmt == "xml":
            with atomic_output(output) as out:
                out.write(data.decode("utf-8", errors="surrogateescape"))
            return
        data = buf.getvalue().encode("utf-8", errors="surrogateescape")
    with atomic_output(output, mode=0o600) as out:
        CONVERTERS[fmt](data, out, name, issues)
    if not quiet:
        print_issues(issues)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--ack-dir", type=click.Path(file_okay=False), help="Write one 999 per functional group here.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guarded
def validate(files, ack_dir, fmt):
    """Validate X12 files: envelopes, TR3 (pyx12 maps), balancing, NPIs and code lists.

    Prints one line per defect: FILE:LINE: SEGMENT#POSITION [LOOP] ELEMENT code message.
    Exit 0 when every file is accepted, 1 when any has an error, 2 on usage errors.

    \b
    Examples:
      edi-pipeline validate claims.837
      edi-pipeline validate inbox/*.837 --ack-dir acks/ --format json
    """
    from .validate import validate_file

    failed = False
    results = []
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            click.echo(f"{path}:0: - ENV-UNREADABLE {exc.strerror or exc}", err=True)
            failed = True
            continue
        result = validate_file(path, path, data)
        failed |= not result.ok
        results.append(result)
        if ack_dir:
            write_acks(result, Path(ack_dir))
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


def write_acks(result, ack_dir: Path) -> list[Path]:
    written = []
    base = Path(result.file).name
    for ack in result.acks:
        target = ack_dir / f"{base}.{ack.group_control_number or 'group'}.999"
        with atomic_output(target) as out:
            out.write(ack.ack_text)
        written.append(target)
    return written


# --- scrub, rules and auth commands (scrub.py, rules.py) ---------------------------------


# --- ingest, reconcile, denials and report commands (ingest.py, reconcile.py, denials.py, report.py) ---


# --- batch and demo commands (batch.py) ------------------------------------------------


def main() -> None:
    cli(prog_name="edi-pipeline")


if __name__ == "__main__":
    main()
