"""`batch` and `demo`: folders of files through the whole pipeline."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from edi_pipeline.core.errors import EdiError

from edi_pipeline.cli.base import EXIT_FAIL, EXIT_INTERNAL, EXIT_OK, _rows_out, cli, guarded


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
    internal error (it is quarantined with that reason and the run goes on, or, when a worker process
    died, left in INBOX and the run stops).

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
