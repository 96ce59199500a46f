"""Claim lifecycle: recorded events, timelines, latest states, the worklist, A/R aging, `status` and `worklist`."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from edi_pipeline.analytics import lifecycle
from edi_pipeline.cli.commands import cli
from edi_pipeline.pipeline.ingest import INGESTED, ingest_file
from edi_pipeline.analytics.reconcile import reconcile
from edi_pipeline.codes.tables import load_profiles
from edi_pipeline.store.rows import PaidLineRow
from edi_pipeline.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "edi"
AS_OF = date(2026, 12, 31)


def load(store: Store, *names: str) -> None:
    for n in names:
        r = ingest_file(FIXTURES / n, store)
        assert r.status == INGESTED, r.reason


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "life.db"
    s = Store(path)
    load(s, "pair-denials.837", "pair-denials.835", "837p-clean.837")
    yield s, path
    s.close()


def test_recorded_events_join_the_timeline_in_date_order(db):
    store, _ = db
    lifecycle.record_event(store, "CLEANMCR01", lifecycle.FILE_ACCEPTED, date(2099, 1, 2), "in/999.x12", 3, 4, "IK5 A")
    lifecycle.record_event(store, "CLEANMCR01", lifecycle.CLAIM_REJECTED, date(2099, 1, 3), "in/277ca.x12", 12, 13,
                           "STC A7:562")
    events = lifecycle.timeline(store, "CLEANMCR01")
    assert [e.state for e in events] == [lifecycle.SUBMITTED, lifecycle.FILE_ACCEPTED, lifecycle.CLAIM_REJECTED]
    rejected = events[-1]
    assert (rejected.day, rejected.source_file, rejected.segment_index, rejected.line, rejected.detail) == (
        "2099-01-03", "in/277ca.x12", 12, 13, "STC A7:562")
    assert events[0].source_file.endswith("837p-clean.837") and events[0].line


def test_the_same_event_again_replaces_it_and_an_unknown_state_is_refused(db):
    store, _ = db
    for _ in range(2):
        lifecycle.record_event(store, "CLEANMCR01", lifecycle.CLAIM_ACCEPTED, date(2099, 1, 3), "a.277", 5)
    assert [e.state for e in lifecycle.timeline(store, "CLEANMCR01")].count(lifecycle.CLAIM_ACCEPTED) == 1
    with pytest.raises(ValueError):
        lifecycle.record_event(store, "CLEANMCR01", "lost", date(2099, 1, 3), "a.277", 6)


def test_adjudications_show_as_paid_partially_paid_and_denied(db):
    store, _ = db
    assert lifecycle.timeline(store, "DAUTH01")[-1].state == lifecycle.DENIED
    assert lifecycle.timeline(store, "DBUNDLE01")[-1].state == lifecycle.PARTIALLY_PAID
    assert lifecycle.timeline(store, "DPARTIAL01")[-1].state == lifecycle.PARTIALLY_PAID  # CLP04 < CLP03
    assert lifecycle.timeline(store, "DPARTIAL01")[-1].source_file.endswith("pair-denials.835")


def test_reversal_and_a_corrected_claim_are_events(tmp_path):
    store = Store(tmp_path / "r.db")
    load(store, "pair-corrections.837", "pair-corrections.835") if (FIXTURES / "pair-corrections.837").exists() \
        else pytest.skip("pair-corrections fixtures absent")
    states = {e.state for pcn in {c.patient_control_number for c in reconcile(store, AS_OF).claims}
              for e in lifecycle.timeline(store, pcn)}
    assert {lifecycle.CORRECTED, lifecycle.REVERSED} & states
    store.close()


def test_latest_state_takes_a_277ca_rejection_newer_than_the_submission(db):
    store, _ = db
    lifecycle.record_event(store, "CLEANBL01", lifecycle.CLAIM_REJECTED, date(2099, 1, 3), "a.277", 9)
    states = lifecycle.latest_states(store, reconcile(store, AS_OF))
    assert states["CLEANBL01"] == lifecycle.CLAIM_REJECTED
    assert states["CLEANCI01"] == lifecycle.SUBMITTED
    assert states["DAUTH01"] == lifecycle.DENIED


def test_worklist_reasons_amounts_and_order(db):
    store, _ = db
    lifecycle.record_event(store, "CLEANBL01", lifecycle.CLAIM_REJECTED, date(2099, 1, 3), "a.277", 9)
    items = lifecycle.worklist(store, AS_OF)
    by = {w.patient_control_number: w for w in items}
    assert by["CLEANBL01"].reason == "rejected by payer, not resent" and by["CLEANBL01"].at_stake == 29500
    assert by["NOREMIT01"].reason.startswith("open past 30-day") and by["NOREMIT01"].age_days == 87
    assert by["DAUTH01"].reason.startswith("denied") and by["DAUTH01"].at_stake == 9500
    assert "DPARTIAL01" not in by  # paid, no earlier payments of the payer to expect more from
    assert [w.at_stake for w in items] == sorted((w.at_stake for w in items), reverse=True)
    # within the payer's turnaround nothing is open-late
    assert not [w for w in lifecycle.worklist(store, date(2026, 10, 20)) if w.reason.startswith("open")]


def test_worklist_turnaround_is_the_claims_payer_profile_value(db, tmp_path):
    """A user's profiles with a 10-day medicare turnaround: a Medicare claim open 15 days is listed, the
    commercial ones (shipped 30 days) are not; the CLI takes the file as --payer-rules."""
    store, path = db
    shipped = Path(load_profiles.__code__.co_filename).parent / "data" / "payer_profiles.toml"
    mine = tmp_path / "mine.toml"
    text = shipped.read_text()
    at = text.index("[profiles.medicare]")
    mine.write_text(text[:at] + text[at:].replace("turnaround_days = 30", "turnaround_days = 10", 1))
    day = date(2026, 10, 20)  # 15 days after the claims' date of service
    assert not [w for w in lifecycle.worklist(store, day) if w.reason.startswith("open")]
    late = {w.patient_control_number: w for w in lifecycle.worklist(store, day, load_profiles(mine))
            if w.reason.startswith("open")}
    assert set(late) == {"NOREMIT01", "CLEANMCR01", "CLEANMCR02", "CLEANMCR03", "CLEANMCR04"}  # SBR09 MB
    assert late["NOREMIT01"].reason == "open past 10-day turnaround" and late["NOREMIT01"].age_days == 15
    r = CliRunner().invoke(cli, ["worklist", "--db", str(path), "--as-of", "2026-10-20", "--format", "json",
                                 "--payer-rules", str(mine)])
    assert r.exit_code == 0, r.output
    assert {w["patient_control_number"] for w in json.loads(r.output) if w["reason"].startswith("open")} == set(late)
    mine.write_text(text.replace("turnaround_days = 30", "turnaround_days = 0", 1))
    r = CliRunner().invoke(cli, ["worklist", "--db", str(path), "--payer-rules", str(mine)])
    assert r.exit_code == 1 and "turnaround_days" in r.output and "Traceback" not in r.output


def test_worklist_names_the_scrubber_rule_that_would_have_prevented_a_denial(db):
    store, _ = db
    store.save_findings([{"patient_control_number": "DAUTH01", "rule": "AUTH-REQUIRED", "severity": "error",
                          "line": 1, "procedure": None, "action": "none", "message": "m"}], "f" * 64)
    w = {w.patient_control_number: w for w in lifecycle.worklist(store, AS_OF)}["DAUTH01"]
    assert (w.reason, w.rule) == ("denied, correctable", "AUTH-REQUIRED")
    assert lifecycle.HELD in {e.state for e in lifecycle.timeline(store, "DAUTH01")}


def test_worklist_finds_a_line_paid_below_the_payers_usual_rate_for_the_code():
    class C:  # reconciled claims, as reconcile makes them
        def __init__(self, pcn):
            self.patient_control_number, self.payer, self.service_date = pcn, "P", "2026-10-01"
            self.billed, self.paid, self.status, self.last_payment_date = 10000, 5000, "paid", "2026-11-09"
            self.state = "paid"

    class Rec:
        as_of = AS_OF
        claims = [C("LOW"), C("OTHERCODE"), C("A1")]

    store = Store(":memory:")
    rows = [(f"A{i}", "P", "20553", 10000, 8000, f"2026-11-0{i}") for i in range(1, 5)]  # 80% of charge
    rows += [("LOW", "P", "20553", 10000, 4000, "2026-11-09"),  # 40%: 4000 below the 8000 expected
             ("OTHERCODE", "P", "64483", 10000, 4000, "2026-11-09")]  # no earlier payments of the code
    store.paid_service_lines = lambda: [PaidLineRow(*r) for r in rows]
    items = lifecycle.worklist(store, AS_OF, rec=Rec())
    assert [(w.patient_control_number, w.at_stake) for w in items] == [("LOW", 4000)]


def test_ar_aging_covers_partly_paid_and_open_balances(db):
    store, _ = db
    rec = reconcile(store, AS_OF)
    aging = lifecycle.ar_aging(rec)
    by = {c.patient_control_number: c for c in rec.claims}
    assert lifecycle.unpaid_balance(by["DBUNDLE01"]) > 0  # partly paid: its denied rest is still owed
    assert lifecycle.unpaid_balance(by["DPARTIAL01"]) == 0  # paid, contractual and PR reductions only
    assert sum(b["claims"] for b in aging.values()) > sum(b["claims"] for b in rec.aging.values())
    assert sum(b["balance"] for b in aging.values()) == sum(lifecycle.unpaid_balance(c) for c in rec.claims)


def test_cli_status_prints_a_timeline_and_exits_1_for_an_unknown_claim(db):
    store, path = db
    lifecycle.record_event(store, "CLEANMCR01", lifecycle.CLAIM_ACCEPTED, date(2099, 1, 3), "a.277", 5)
    r = CliRunner().invoke(cli, ["status", "CLEANMCR01", "--db", str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [e["state"] for e in json.loads(r.output)] == [lifecycle.SUBMITTED, lifecycle.CLAIM_ACCEPTED]
    r = CliRunner().invoke(cli, ["status", "NOSUCH", "--db", str(path)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["status", "X", "--db", str(path.parent / "absent.db")])
    assert r.exit_code == 1


def test_cli_worklist_formats(db):
    store, path = db
    rows = json.loads(CliRunner().invoke(cli, ["worklist", "--db", str(path), "--as-of", "2026-12-31",
                                               "--format", "json"]).output)
    assert rows[0]["at_stake"] == "430.00" and set(rows[0]) == set(lifecycle.WORK_COLUMNS)
    r = CliRunner().invoke(cli, ["worklist", "--db", str(path), "--as-of", "2026-12-31", "--format", "csv"])
    assert r.exit_code == 0
    assert next(csv.reader(io.StringIO(r.output))) == list(lifecycle.WORK_COLUMNS)
    r = CliRunner().invoke(cli, ["worklist", "--db", str(path), "--as-of", "2026-12-31"])
    assert r.exit_code == 0 and "NOREMIT01" in r.output
    r = CliRunner().invoke(cli, ["worklist", "--db", str(path), "--as-of", "31/12/2026"])
    assert r.exit_code == 2


def test_a_claim_resent_after_its_277ca_rejection_leaves_the_rejected_list(db, tmp_path):
    store, _ = db
    lifecycle.record_event(store, "CLEANBL01", lifecycle.CLAIM_REJECTED, date(2026, 10, 7), "a.277", 9)
    store.conn.execute("update claim_events set recorded_at = '2000-01-01T00:00:00+00:00'")  # before the 837P
    store.conn.commit()
    assert lifecycle.latest_states(store, reconcile(store, AS_OF))["CLEANBL01"] == lifecycle.SUBMITTED
    assert "rejected" not in {w.patient_control_number: w for w in lifecycle.worklist(store, AS_OF)}["CLEANBL01"].reason


def test_reconcile_shows_the_latest_state_per_claim(db):
    store, path = db
    lifecycle.record_event(store, "CLEANBL01", lifecycle.CLAIM_REJECTED, date(2099, 1, 3), "a.277", 9)
    by = {c.patient_control_number: c for c in reconcile(store, AS_OF).claims}
    assert (by["CLEANBL01"].state, by["DAUTH01"].state, by["CLEANCI01"].state) == (
        lifecycle.CLAIM_REJECTED, lifecycle.DENIED, lifecycle.SUBMITTED)
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(
        cli, ["reconcile", "--db", str(path), "--as-of", "2026-12-31", "--format", "csv"]).output)))
    assert {r["patient_control_number"]: r["state"] for r in rows}["CLEANBL01"] == lifecycle.CLAIM_REJECTED
