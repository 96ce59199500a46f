"""Damaged input through every command: exit 0 or 1 with a one-line error, never an exception, never an
internal error (exit 3, or a batch file quarantined as one)."""

import shutil

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from mutations import mutated

from edi_pipeline.cli.commands import cli
from edi_pipeline.store.store import Store

COMMANDS = [
    ["convert", "{f}", "--to", "ndjson", "-o", "{d}/o.ndjson"],
    ["convert", "{f}", "--to", "xml", "-o", "{d}/o.xml"],
    ["validate", "{f}", "--ack-dir", "{d}/acks"],
    ["scrub", "{f}", "-o", "{d}/s.837", "--rejects", "{d}/r.837", "--report", "{d}/rep.json", "--db", "{d}/s.db"],
    ["ingest", "{f}", "--db", "{d}/i.db"],
]


def check(result):
    """The rules every command's run obeys on any input; `internal error` is a bug even under exit 1."""
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_commands_never_raise(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("h")
    f = d / "in.edi"
    f.write_bytes(data)
    runner = CliRunner()
    for cmd in COMMANDS:
        check(runner.invoke(cli, [a.format(f=f, d=d) for a in cmd]))
    assert not list(d.rglob(".*.tmp"))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_batch_never_raises(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("b")
    inbox = d / "inbox"
    inbox.mkdir()
    (inbox / "in.837").write_bytes(data)
    result = CliRunner().invoke(cli, ["batch", str(inbox), "--out", str(d / "out"), "--quiet", "--settle", "0"])
    check(result)
    outcomes = [p.name for sub in ("outbound", "quarantine", "reports") for p in (d / "out" / sub).iterdir()]
    store = Store(str(d / "out" / "edi_pipeline.db"))
    stored = store.db["batch_files"].count_where("status = 'done'")
    store.close()
    assert outcomes or stored, "the file went somewhere: outputs, quarantine or the store"
    shutil.rmtree(d)
