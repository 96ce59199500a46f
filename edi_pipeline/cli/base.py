"""Shared by the commands: the group, exit codes, error handling (guarded), issue and table output."""

from __future__ import annotations

import codecs
import contextlib
import functools
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

from edi_pipeline.core.errors import EdiError, Severity


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
    click.echo(text_table(cols, cells), file=out)


def text_table(cols: list[str], cells: list[list[str]], rule: bool = True) -> str:
    """An aligned text table (tabulate): columns two spaces apart, cells as given (no number parsing),
    a dashed rule under the header unless `rule` is False."""
    import tabulate

    padding, tabulate.MIN_PADDING = tabulate.MIN_PADDING, 0  # columns as wide as their widest cell
    try:
        text = tabulate.tabulate(cells, headers=cols, tablefmt="simple" if rule else "plain",
                                 disable_numparse=True, stralign="left", missingval="")
    finally:
        tabulate.MIN_PADDING = padding
    return "\n".join(line.rstrip() for line in text.split("\n"))


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


def _as_of(value):
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--as-of") from None
