"""Analytics that stay flat in memory: the store read as streams, one claim group at a time, with the same
results as a reconciliation held whole."""

from __future__ import annotations

import io
import json
import statistics
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from edi_pipeline.analytics import lifecycle
from edi_pipeline.analytics.denials import find_denials, iter_store_denials
from edi_pipeline.analytics import reconcile as reconcile_module
from edi_pipeline.analytics.reconcile import reconcile, reconcile_pcns, reconcile_stream, statuses, write_claims_csv
from edi_pipeline.formats.convert import compact_json
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
AS_OF = date(2026, 12, 31)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.db")
    for n in ("pair-denials", "pair-reversal", "pair-corrections", "pair-plb"):
        for suffix in (".837", ".835"):
            assert ingest_file(FIXTURES / f"{n}{suffix}", s).status == "ingested"
    yield s
    s.close()


def test_stream_yields_the_first_group_before_reading_the_whole_store(store, monkeypatch):
    rows = list(store.iter_claims_by_pcn())
    read = []

    def counting():
        for r in rows:
            read.append(r)
            yield r

    monkeypatch.setattr(store, "iter_claims_by_pcn", counting)
    groups = reconcile_stream(store, AS_OF).iter_groups()
    next(groups)
    assert 0 < len(read) < len(rows) - 1  # the rest is not read yet


def test_stream_equals_the_reconciliation_held_whole(store):
    """Same claims (replacement groups merged in pcn order), unmatched remits, aging and JSON text."""
    whole = reconcile(store, AS_OF, lines=True, pcns=[r.patient_control_number for r in store.recon_claims()]
                      + [r.patient_control_number for r in store.recon_payments()])
    stream = reconcile_stream(store, AS_OF, lines=True)
    parts, expected = [], []
    stream.write_json(parts.append, compact_json, batch=2)
    whole.write_json(expected.append, compact_json)
    assert "".join(parts) == "".join(expected) == compact_json(whole.to_dict())
    assert stream.unmatched_remits == whole.unmatched_remits and stream.aging == whole.aging
    assert any(c.frequency_code == "7" for c in whole.claims)  # a replacement group took part
    csv_text = io.StringIO()
    assert write_claims_csv(reconcile_stream(store, AS_OF), csv_text) == len(whole.claims)


def test_streamed_denials_equal_those_of_a_reconciliation_held_whole(store):
    whole = reconcile(store, AS_OF, pcns=[r.patient_control_number for r in store.recon_claims()]
                      + [r.patient_control_number for r in store.recon_payments()])
    assert [d.to_dict() for d in iter_store_denials(store)] == [d.to_dict() for d in find_denials(store, rec=whole)]


@pytest.mark.parametrize("stream_min", [0, 10**9], ids=["streamed", "held-whole"])
def test_a_scoped_reconciliation_streamed_equals_the_one_held_whole(store, monkeypatch, stream_min):
    """batch's report of a run's remits (reconcile_pcns): a scope of many claims is a filtered stream,
    with the claims, statuses and unmatched remits of reconcile(pcns=...), for every one-pcn and mixed scope."""
    monkeypatch.setattr(reconcile_module, "SCOPED_STREAM_MIN", stream_min)
    pcns = sorted({r.patient_control_number for r in store.recon_claims()} | {r[1] for r in store.recon_payments()})
    scopes = [[p] for p in pcns] + [pcns[::2], pcns[1::3], pcns]
    for scope in scopes:
        held = reconcile(store, AS_OF, pcns=scope)
        got = reconcile_pcns(store, scope, AS_OF)
        assert isinstance(got, reconcile_module.ReconStream) == (stream_min == 0)
        text, expected = io.StringIO(), io.StringIO()
        assert write_claims_csv(got, text) == write_claims_csv(held, expected) == len(held.claims)
        assert text.getvalue() == expected.getvalue(), scope
        assert statuses(got) == statuses(held) and got.unmatched_remits == held.unmatched_remits, scope


def test_batch_reconciles_a_run_touching_many_claims_group_by_group(tmp_path, monkeypatch):
    """Regression: batch's reconciliation report held every claim group its remits touched in memory (2.2 GB
    at 1,000,000 claims in 50 files). Over SCOPED_STREAM_MIN claims it now streams: no group list is built."""
    from edi_pipeline.runners.batch import run_batch

    monkeypatch.setattr(reconcile_module, "SCOPED_STREAM_MIN", 0)
    held = []
    real = reconcile_module.Reconciliation.of
    monkeypatch.setattr(reconcile_module.Reconciliation, "of",
                        classmethod(lambda cls, as_of, groups: held.append(1) or real.__func__(cls, as_of, groups)))
    inbox = tmp_path / "in"
    inbox.mkdir()
    for n in ("pair-denials", "pair-plb"):
        for suffix in (".837", ".835"):
            (inbox / f"{n}{suffix}").write_bytes((FIXTURES / f"{n}{suffix}").read_bytes())
    summary = run_batch(inbox, tmp_path / "out", db=str(tmp_path / "b.db"), settle=0)
    assert summary.reconciled and sum(summary.reconciled.values()) > 2
    assert not held
    report = (tmp_path / "out" / "reports" / "reconciliation-latest.csv").read_text()
    assert report.count("\n") == sum(summary.reconciled.values()) + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=5, places=4, allow_nan=False), min_size=1, max_size=40))
def test_running_median_equals_the_median_of_the_values_so_far(values):
    m = lifecycle._RunningMedian()
    for k, v in enumerate(values, 1):
        m.add(v)
        assert len(m) == k
        assert m.median() == statistics.median(values[:k])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"a": st.text(max_size=5), "b": st.none() | st.integers(),
                                       "c": st.lists(st.text(max_size=3), max_size=2)}), max_size=4),
       st.sampled_from(["json", "csv"]))
def test_rows_stream_writes_what_rows_out_writes(rows, fmt):
    import click
    from click.testing import CliRunner

    from edi_pipeline.cli import base as commands

    held = CliRunner().invoke(click.command()(lambda: commands._rows_out(rows, fmt))).stdout
    streamed = CliRunner().invoke(click.command()(lambda: commands._rows_stream(iter(rows), fmt))).stdout
    assert streamed == held
