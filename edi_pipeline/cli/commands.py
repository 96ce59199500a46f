"""The `edi-pipeline` command line: parse arguments, call the library, render, set the exit code."""

from __future__ import annotations

import codecs
import contextlib
import functools
import gc
import io
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Iterable

import click

from edi_pipeline.formats.convert import CONVERTERS, FORMATS, compact_json, looks_like_xml, xml_to_x12
from edi_pipeline.core.errors import EdiError, IssueList, Severity
from edi_pipeline.core.files import atomic_output

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal's number, as shells report it


def _fail(message: str, code: int = EXIT_FAIL) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt (temporary files are removed, store transactions
    rolled back) and is never caught as an Exception, so no `except Exception` takes it for a bad file."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def guarded(fn):
    """Turn every failure into one line on stderr and an exit code, never a traceback: 1 for errors in
    the input (or files that cannot be read or written), 3 for an internal error (a bug: set
    EDI_PIPELINE_DEBUG=1 to raise it), 130/143 when interrupted by SIGINT/SIGTERM."""

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
            _fail("interrupted (SIGINT)", EXIT_SIGINT)
        except Terminated:
            _fail("interrupted (SIGTERM)", EXIT_SIGTERM)
        except Exception as exc:  # last resort: one line, no traceback, no data values
            if os.environ.get("EDI_PIPELINE_DEBUG"):
                raise
            _fail(f"internal error ({type(exc).__name__}); please report it with the input's shape, not its data",
                  EXIT_INTERNAL)

    return wrapper


MAX_ISSUE_LINES = 100  # per file; then one line counting the rest (validate --format json lists them all)
def _echo_as_read(exc: UnicodeError):
    """Error handler of stdout and stderr: a byte of the input that is not UTF-8 (the reader's surrogate
    escape) goes out as that byte, any other character the terminal's encoding lacks as a \\x/\\u escape.
    So messages echo such values losslessly, and a strict terminal encoding never fails a command."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if 0xDC80 <= ord(char) <= 0xDCFF:
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    return char.encode("ascii", "backslashreplace").decode("ascii"), exc.start + 1


codecs.register_error("edi-pipeline-echo", _echo_as_read)


def print_issues(issues, stream=None, minimum: Severity = Severity.WARNING) -> None:
    """One line per issue at `minimum` severity or worse, at most MAX_ISSUE_LINES per file, then a count
    of the rest."""
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    shown: dict[str | None, int] = {}
    rest: dict[str | None, list[int]] = {}  # file -> [errors, others] not shown
    for issue in issues:
        if order[issue.severity] > order[minimum]:
            continue
        file = issue.pos.file
        if shown.get(file, 0) >= MAX_ISSUE_LINES:
            rest.setdefault(file, [0, 0])[issue.severity is not Severity.ERROR] += 1
            continue
        shown[file] = shown.get(file, 0) + 1
        click.echo(str(issue) if issue.severity is Severity.ERROR else f"{issue} ({issue.severity.value})",
                   err=stream is None, file=stream)
    for file, (errors, others) in rest.items():
        click.echo(f"{file or '-'}: {errors + others} more issues not shown ({errors} errors, {others} warnings "
                   f"or notes)", err=stream is None, file=stream)


STDIN = "<stdin>"  # how messages, reports and the store name an input read from `-`


@contextlib.contextmanager
def _input_path(arg: str):
    """The path to read the INPUT argument from: itself, or for `-` a private (0600) temporary copy of
    stdin, removed afterwards (the readers take a path: they read a file twice, for its digest and its
    contents, and validate's memory stays flat)."""
    if arg != "-":
        yield arg
        return
    with tempfile.NamedTemporaryFile(prefix="edi-pipeline-stdin.", suffix=".tmp") as tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
        tmp.flush()
        yield tmp.name


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edi-pipeline")
def cli():
    """X12 837P/835 pipeline for pain-management billing.

    Exit codes: 0 fine, 1 errors in the input (or held claims), 2 usage, 3 internal error (a bug: set
    EDI_PIPELINE_DEBUG=1 to see its traceback), 130/143 interrupted by SIGINT/SIGTERM (nothing half-written
    is left). An input of - reads stdin (convert, validate, scrub, ingest).

    \b
    Examples:
      edi-pipeline demo
      edi-pipeline validate claims.837 --ack-dir acks/
      edi-pipeline convert claims.837 --to ndjson | jq .patient_control_number
      edi-pipeline scrub claims.837 -o claims.fixed.837 --report findings.json
      edi-pipeline batch inbox/ --out out/ --workers 2
      edi-pipeline denials --by carc --db out/edi_pipeline.db
    """
    for stream in (sys.stdout, sys.stderr):  # every command's messages echo the input's bytes (_echo_as_read)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="edi-pipeline-echo")


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


# --- scrub, rules and auth commands (scrub.py, rules.py) ---------------------------------

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
    widths = [max([len(c)] + [len(t[k]) for t in table]) for k, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    for t in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())


# --- ingest, reconcile, denials and report commands (ingest.py, reconcile.py, denials.py, report.py) ---

def _rows_out(rows: list[dict], fmt: str, out=None) -> None:
    """Render dict rows as an aligned table, CSV or JSON on stdout."""
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=str), file=out)
        return
    cols = list(rows[0]) if rows else []
    if fmt == "csv":  # cells safe for spreadsheets (safe_text.csv_cell)
        from edi_pipeline.core.safe_text import SafeCsvWriter

        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        w.writerow(cols)
        w.writerows([r.get(c) for c in cols] for r in rows)
        click.echo(buf.getvalue(), nl=False, file=out)
        return
    if not rows:
        click.echo("(none)", file=out)
        return
    cells = [[("" if r[c] is None else " ".join(r[c]) if isinstance(r[c], list) else str(r[c])) for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip(), file=out)
    click.echo("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def _rows_stream(rows: Iterable[dict], fmt: str) -> None:
    """_rows_out's csv or json text, written row by row (the same text, without holding the rows)."""
    out = click.get_text_stream("stdout")
    rows = iter(rows)
    first = next(rows, None)
    if fmt == "json":
        if first is None:
            out.write("[]\n")
            return
        out.write("[\n")
        for k, r in enumerate(itertools.chain([first], rows)):
            out.write((",\n" if k else "") + textwrap.indent(json.dumps(r, indent=1, default=str), " "))
        out.write("\n]\n")
        return
    from edi_pipeline.core.safe_text import SafeCsvWriter

    cols = list(first) if first else []
    w = SafeCsvWriter(out)
    w.writerow(cols)
    for r in itertools.chain([first], rows) if first else ():
        w.writerow([r.get(c) for c in cols])


_DB_OPTION = click.option("--db", type=click.Path(dir_okay=False), default=None,
                          help="SQLite store (default $EDI_PIPELINE_DB or edi_pipeline.db).")


def _open_store(db, must_exist: bool = False):
    from edi_pipeline.store.store import Store, default_db_path

    path = db or default_db_path()
    if must_exist and not Path(path).exists():
        raise EdiError(f"store {path} does not exist: ingest files first, or pass --db")
    return Store(path)


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


def _as_of(value):
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--as-of") from None


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



# --- batch and demo commands (batch.py) ------------------------------------------------


def _run_batch(inbox, out, db, workers, quiet, log_json=False, settle=0.0):
    from edi_pipeline.runners.batch import inbox_files, run_batch, settled, setup_logging

    log = (log_json, quiet)
    setup_logging(*log)
    total = len(settled(inbox_files(inbox)[0], settle))
    show = not quiet and not log_json and sys.stderr.isatty() and total > 0
    if show:
        with click.progressbar(length=total, label="files", file=sys.stderr) as bar:
            return run_batch(inbox, out, db, workers, progress=lambda _o: bar.update(1), log_setup=log,
                             settle=settle)
    return run_batch(inbox, out, db, workers, log_setup=log, settle=settle)


def _retry(inbox, out_dir, db, names) -> None:
    from edi_pipeline.runners.batch import retry_quarantined

    moved, problems = retry_quarantined(inbox, out_dir, db, names)
    for name in moved:
        click.echo(f"{_shown(name)}: back in {inbox}; the next run takes it")
    for line in problems:
        click.echo(f"Error: {_shown(line)}", err=True)
    if not moved and not problems:
        click.echo(f"nothing in {Path(out_dir) / 'quarantine'} to retry")
    sys.exit(EXIT_FAIL if problems else EXIT_OK)


SUMMARY_NOTES = 12  # per-file lines in the batch summary, so that it fits one screen


def _shown(text: str) -> str:
    """Text from a file name as the summary prints it: what a terminal would act on, or cannot encode
    (a name's undecodable bytes), escaped."""
    return "".join(c if c.isprintable() else
                   f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def _print_summary(summary, out_dir) -> None:
    d = summary.to_dict()
    waiting = f"; {d['waiting']} still changing, left for the next run" if d["waiting"] else ""
    failed = f", {d['failed']} failed" if d["failed"] else ""
    ignored = f", {d['ignored']} ignored (not regular files)" if d["ignored"] else ""
    click.echo(f"files: {d['files']} ({d['done']} done, {d['skipped']} already done, "
               f"{d['quarantined']} quarantined{failed}{ignored}){waiting}")
    click.echo(f"claims: {d['claims_in']} in, {d['claims_out']} out, {d['claims_held']} held; "
               f"{d['findings']} findings")
    click.echo(f"999s: {d['acks_accepted']} accepted, {d['acks_rejected']} rejected; 277CAs: {d['claim_acks']}; "
               f"claim payments ingested: {d['payments']}")
    if d["ack_events"] or d["unmatched_acks"]:
        click.echo(f"payers' 999s and 277CAs: {d['ack_events']} claim status events, {len(d['unmatched_acks'])} "
                   "matching nothing sent")
    if summary.reconcile_error:
        click.echo(f"reconciliation failed: {summary.reconcile_error}")
    if summary.reconciled is not None:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.reconciled.items())) or "no claims"
        click.echo(f"reconciled: {statuses}; {summary.unmatched_remits} remits match no claim "
                   f"(reports/{summary.reconciliation}, copied to reports/reconciliation-latest.csv)")
    notes = []
    for f in sorted(summary.files, key=lambda f: f.name):
        name = _shown(f.name)
        if f.status in ("quarantined", "failed", "ignored"):
            # a reason names its file first (NAME:line: ...); the line names it once
            notes.append(f"  {f.status} {_shown(f.detail)}" if f.detail.startswith(f"{f.name}:")
                         else f"  {f.status} {name}: {_shown(f.detail)}")
        notes += [f"  unmatched {name}:{a['line']}: {_shown(a['reason'])}" for a in f.unmatched_acks]
        if f.output:
            notes.append(f"  {name}: its outputs are named {f.output} (a different file of that name came "
                         "before, or its name is not a safe file name)")
    shown = notes if len(notes) <= SUMMARY_NOTES else notes[:SUMMARY_NOTES - 1]
    for line in shown:
        click.echo(line)
    if len(shown) < len(notes):  # one screen: the rest are in quarantine/*.error.txt and --format json
        click.echo(f"  ... and {len(notes) - len(shown)} more (quarantine/*.error.txt, or --format json)")
    click.echo(f"outputs: {out_dir}/{{acks,outbound,rejects,reports,quarantine}}")


@cli.command()
@click.argument("inbox", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--db", type=click.Path(dir_okay=False), default=None,
              help="Store (default: $EDI_PIPELINE_DB, else OUT/edi_pipeline.db).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no warnings.")
@click.option("--log-json", is_flag=True, help="Structured JSON-lines log on stderr.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the summary and every file's outcome as one JSON document on stdout.")
@click.option("--settle", type=click.FloatRange(0), default=5, show_default=True, metavar="SECONDS",
              help="Leave files changed in the last SECONDS for the next run (still being uploaded). "
                   "Names ending .part, .filepart, .partial, .tmp, .crdownload or .uploading are never read.")
@click.option("--retry", "retry", multiple=True, metavar="NAME",
              help="Put OUT/quarantine/NAME back into INBOX for the next run (repeatable), then stop.")
@click.option("--retry-all", is_flag=True,
              help="Put every quarantined file back into INBOX for the next run, then stop.")
@guarded
def batch(inbox, out_dir, db, workers, quiet, log_json, fmt, settle, retry, retry_all):
    """Process every 837P and 835 file in INBOX.

    \b
    837P: validate (999 -> OUT/acks), scrub (OUT/outbound, OUT/rejects, OUT/reports), store the claims
          sent; a transaction set its 999 rejects goes to OUT/rejects whole and is not sent on, and a
          file with an interchange a TA1 rejects (broken envelope) is quarantined whole
    835:  ingest into the store, then reconcile the claims those remits paid or denied
          (OUT/reports/reconciliation-RUN.csv per run, RUN its UTC start, and a copy in
          OUT/reports/reconciliation-latest.csv; `edi-pipeline reconcile` covers the whole store)
    unreadable: moved out of INBOX to OUT/quarantine with NAME.error.txt saying why and where;
          --retry NAME or --retry-all puts it back for the next run (after the cause is fixed)
    not a regular file (a link, folder, FIFO, device): left alone, never opened, one summary line

    Files already done are skipped, so a rerun after a crash finishes the job without duplicates.
    A second copy of a file is skipped, and a different file resending an interchange already
    processed (same ISA06 sender and ISA13 control number) is quarantined: nothing goes out twice.
    Outputs are named after their input, with its digest added when a different file of that name
    came before, so nothing waiting to be picked up is overwritten; a name holding anything but
    letters, digits and -_. (or too long) is cut to those and tagged with a digest; envelope values in
    ack names (ISA13, GS06) likewise. Nothing is ever written outside OUT. Outputs appear only once the
    file's store rows commit (they wait in OUT/.staging/ until then). One batch runs at a time per --out
    folder, and batches sharing a --db never take the same file. A run first removes the temporary
    files (.NAME.xxxxxxxx.tmp) a killed run left in OUT.
    Exit 0 when everything went through; 1 when a file was quarantined or failed (left in INBOX for the
    next run), a set rejected by its 999, a claim held or the reconciliation failed; 3 when a file hit an
    internal error (it is quarantined with that reason and the run goes on).

    \b
    Examples:
      edi-pipeline batch inbox/ --out out/
      edi-pipeline batch inbox/ --out out/ --workers 2 --log-json 2> batch.log
      edi-pipeline batch /sftp/in --out /sftp/out --settle 60 --quiet   # from cron
      edi-pipeline batch inbox/ --out out/ --format json | jq '.file_outcomes[] | select(.status != "done")'
      edi-pipeline batch inbox/ --out out/ --retry claims-0412.837   # after fixing its cause
    """
    db = db or os.environ.get("EDI_PIPELINE_DB")
    if retry or retry_all:
        if retry and retry_all:
            raise click.UsageError("give --retry NAME or --retry-all, not both")
        _retry(inbox, out_dir, db, None if retry_all else list(retry))
    summary = _run_batch(inbox, out_dir, db, workers, quiet, log_json, settle)
    if fmt == "json":
        click.echo(json.dumps(summary.to_json(), indent=1))
    else:
        _print_summary(summary, out_dir)
    sys.exit(EXIT_INTERNAL if summary.internal_errors else EXIT_OK if summary.ok else EXIT_FAIL)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="edi-demo", show_default=True,
              help="Fresh output folder (emptied if an earlier demo made it).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@guarded
def demo(out_dir, workers):
    """Run the batch job over the bundled fixtures with a fresh embedded store.

    Prints the batch summary, the denial table and where the HTML report is. Some fixtures are
    broken on purpose, so quarantined files and held claims are expected here (exit 0).

    \b
    Examples:
      edi-pipeline demo
      edi-pipeline demo --out /tmp/demo --workers 2
    """
    from datetime import date

    from edi_pipeline.runners.batch import bundled_fixtures, fresh_dir
    from edi_pipeline.codes.tables import load_tables
    from edi_pipeline.analytics.denials import find_denials
    from edi_pipeline.analytics.reconcile import reconcile
    from edi_pipeline.analytics.report import write_report
    from edi_pipeline.store.store import Store

    fixtures = bundled_fixtures()
    if not fixtures.is_dir():
        raise EdiError(f"bundled fixtures not found at {fixtures} (install from a checkout: pip install -e .)")
    out = fresh_dir(Path(out_dir))
    inbox = out / "inbox"
    inbox.mkdir()
    for f in sorted(fixtures.iterdir()):
        if f.suffix in (".837", ".835"):
            shutil.copyfile(f, inbox / f.name)
    db = str(out / "edi_pipeline.db")
    summary = _run_batch(inbox, out, db, workers, True)
    click.echo("== batch summary")
    _print_summary(summary, out)
    store = Store(db)
    try:
        tables = load_tables()
        rec = reconcile(store, date.today(), tables)  # once, for the denial table and the report
        denials = find_denials(store, tables, rec)
        click.echo("\n== denials")
        _rows_out([{k: v for k, v in d.flat().items() if k not in ("payer_claim_control_number", "level")}
                   for d in denials], "table")
        report = out / "report.html"
        write_report(store, report, rec.as_of, tables, rec=rec, denials=denials)
    finally:
        store.close()
    click.echo(f"\n== HTML report: {report.resolve()}")
    click.echo(f"== store: {Path(db).resolve()}")


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


from edi_pipeline.cli import export  # noqa: E402,F401  (registers the export command on the group)
import edi_pipeline.cli.spark  # noqa: E402,F401  (registers spark-batch on the group; pyspark loads only when it runs)


def main() -> None:
    # The records we build hold no reference cycles; collecting less often saves ~10% on big files.
    gc.set_threshold(100_000, 50, 100)
    signal.signal(signal.SIGTERM, _on_sigterm)  # only here: batch's worker processes keep the default
    try:
        cli(prog_name="edi-pipeline")
    except Terminated:  # outside a command (while parsing arguments): nothing to clean up
        sys.exit(EXIT_SIGTERM)


if __name__ == "__main__":
    main()
