"""The submissions family of the store: claims and their lines as scrubbed or ingested, the findings on them,
authorizations and their uses, and the visit-history reads the rules ask of them."""

from __future__ import annotations

import csv
import os
from datetime import date
from decimal import Decimal
from typing import Iterable

from edi_pipeline.core.errors import StoreError
from edi_pipeline.core.safe_text import store_text
from edi_pipeline.core.values import cents, to_decimal
from edi_pipeline.store.rows import PayerKeysRow, ProcedureDateRow, ScrubCounts, UnitsRow
from edi_pipeline.store.sql import iso, now, store_row
from edi_pipeline.tx.model import Claim, member_hash


class Submissions:
    """The claims, claim_lines, findings, authorizations and auth_uses families of Store (composed into store.Store)."""

    _CLAIM_COLS = ("id", "file_sha256", "patient_control_number", "member_hash", "payer_id", "payer_name",
                   "claim_filing_indicator", "profile", "frequency_code", "payer_claim_control_number",
                   "total_charge_cents", "service_date", "billing_npi", "rendering_npi", "origin", "submitted_at",
                   "segment_index", "line")

    _LINE_COLS = ("id", "claim_id", "line_number", "procedure", "modifiers", "charge_cents", "units",
                  "service_date", "control_number", "dx_pointers", "segment_index", "line")

    def save_claims(self, claims: Iterable[Claim], sha: str, origin: str,
                    profile_of=None) -> int:
        """Insert claims and their lines (ids are file + position, so a replay replaces, never duplicates)."""
        claim_rows = []
        line_rows = []
        stamp = now()
        key = sha[:16]
        for c in claims:
            cid = f"{key}:{c.source.segment_index}"
            first_date = c.service_date
            if first_date is None:  # (a loop: a generator per claim costs more)
                for ln in c.lines:
                    if ln.service_date:
                        first_date = ln.service_date
                        break
            rendering = c.rendering_provider.npi if c.rendering_provider else c.billing_provider.npi
            claim_rows.append((
                cid, sha, c.patient_control_number, member_hash(c), c.payer.id, c.payer.name,
                c.claim_filing_indicator, profile_of(c) if profile_of else None, c.frequency_code,
                c.payer_claim_control_number, cents(c.total_charge), iso(first_date), c.billing_provider.npi,
                rendering, origin, stamp, c.source.segment_index, c.source.line))
            for ln in c.lines:
                src = ln.source
                line_rows.append((
                    f"{cid}:{src.segment_index}", cid, ln.line_number, ln.procedure, " ".join(ln.modifiers),
                    cents(ln.charge), None if ln.units is None else str(ln.units),
                    iso(ln.service_date or c.service_date), ln.control_number,
                    " ".join(map(str, ln.dx_pointers)), src.segment_index, src.line))
        self.insert_rows("claims", self._CLAIM_COLS, claim_rows)
        self.insert_rows("claim_lines", self._LINE_COLS, line_rows)
        return len(claim_rows)

    def visit_dates(self, member: str, procedures: Iterable[str], since: date, until: date,
                    exclude_file: str | None = None) -> set[date]:
        """Distinct service dates on file for a patient with any of `procedures` in [since, until]."""
        procs = sorted(set(procedures))
        if not procs:
            return set()
        marks = ",".join("?" * len(procs))
        sql = (f"select distinct l.service_date from claim_lines l join claims c on c.id = l.claim_id "
               f"where c.member_hash = ? and l.procedure in ({marks}) and l.service_date between ? and ? "
               f"and coalesce(c.frequency_code, '1') != '8'")
        params: list = [member, *procs, since.isoformat(), until.isoformat()]
        if exclude_file:
            sql += " and c.file_sha256 != ?"
            params.append(exclude_file)
        return {date.fromisoformat(r["service_date"]) for r in self.query(sql, params) if r["service_date"]}

    def procedure_dates(self, member: str, procedure: str, since: date, until: date,
                        exclude_file: str | None = None) -> list[ProcedureDateRow]:
        """The service date and claim of each line with `procedure` for a patient."""
        return [ProcedureDateRow(d, pcn) for d, pcn, _ in self.procedure_units(member, procedure, since, until, exclude_file)]

    def procedure_units(self, member: str, procedure: str, since: date, until: date,
                        exclude_file: str | None = None) -> list[UnitsRow]:
        """The service date, claim and units of each stored line with `procedure` for a patient
        in [since, until] (voided claims left out; units missing or unreadable = 1)."""
        sql = ("select l.service_date, c.patient_control_number, l.units from claim_lines l "
               "join claims c on c.id = l.claim_id where c.member_hash = ? and l.procedure = ? "
               "and l.service_date between ? and ? and coalesce(c.frequency_code, '1') != '8'")
        params: list = [member, procedure, since.isoformat(), until.isoformat()]
        if exclude_file:
            sql += " and c.file_sha256 != ?"
            params.append(exclude_file)
        return [UnitsRow(date.fromisoformat(d), pcn, Decimal(1) if (u := to_decimal(units or "")) is None else u)
                for d, pcn, units in self.conn.execute(sql, params)]

    AUTH_COLUMNS = ("member_id", "payer_id", "auth_number", "codes", "units", "start", "end")

    def import_authorizations(self, path: str | os.PathLike) -> int:
        """Load authorizations from CSV (member_id, payer_id, auth_number, codes, units, start, end).
        Bytes that are not UTF-8 (a Latin-1 export) are kept as store_text holds them, as a claim's are."""
        rows = []
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in self.AUTH_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise StoreError(f"{path}:1: missing columns: {', '.join(missing)}")
            for n, r in enumerate(reader, 2):
                try:
                    start, end = date.fromisoformat(r["start"].strip()), date.fromisoformat(r["end"].strip())
                    units = int(r["units"])
                except ValueError:
                    raise StoreError(f"{path}:{n}: units must be a whole number and dates YYYY-MM-DD") from None
                codes = " ".join(c for c in r["codes"].replace("|", " ").replace(";", " ").split() if c)
                rows.append({k: store_text(v) if isinstance(v, str) else v for k, v in {
                    "id": f"{r['payer_id'].strip()}:{r['auth_number'].strip()}",
                    "member_id": r["member_id"].strip(), "payer_id": r["payer_id"].strip(),
                    "auth_number": r["auth_number"].strip(), "codes": codes, "units": units,
                    "start_date": start.isoformat(), "end_date": end.isoformat(), "loaded_at": now(),
                }.items()})
        with self.transaction():
            self.db["authorizations"].insert_all(rows, replace=True)
        return len(rows)

    def authorizations(self) -> list[dict]:
        return list(self.query(
            "select a.*, a.units - coalesce(u.used, 0) as units_left from authorizations a left join "
            "(select auth_id, sum(units) as used from auth_uses group by auth_id) u on u.auth_id = a.id "
            "order by a.payer_id, a.auth_number"))

    def use_authorization(self, auth_id: str, pcn: str, procedure: str, line_number: int, units: int) -> None:
        """Record units used; the same claim line using the same auth again is not counted twice."""
        self.insert_rows("auth_uses", ("id", "auth_id", "patient_control_number", "procedure", "line_number",
                                       "units", "used_at"),
                         [(f"{auth_id}:{pcn}:{line_number}:{procedure}", auth_id, pcn, procedure, line_number,
                           units, now())])

    FINDING_COLS = ("id", "file_sha256", "patient_control_number", "rule", "severity", "line", "procedure",
                    "action", "message")

    def save_findings(self, findings: Iterable[dict], sha: str, start: int = 0) -> None:
        """Add a file's findings (dicts with the FINDING_COLS after id and file_sha256), numbered from `start`."""
        cols = self.FINDING_COLS[2:]
        self.insert_rows("findings", self.FINDING_COLS,
                         [(f"{sha}:{k}", sha, *(f.get(c) for c in cols)) for k, f in enumerate(findings, start)])

    def scrub_sink(self, sha: str, name: str, write: bool = True):
        """The sink of one scrub of file `sha` (scrub.scrubber.ScrubStore): store.scrub_sink.StoreScrubSink."""
        from edi_pipeline.store.scrub_sink import StoreScrubSink  # scrub (below the store) loads only when scrubbing

        return StoreScrubSink(self, sha, name, write)

    def report_scrub_counts(self) -> ScrubCounts:
        """(claims the scrubber emitted or held, those of them it changed (a correction) or held (an error))."""
        sent = self.conn.execute("select count(distinct patient_control_number) from claims "
                                 "where origin in ('scrub', 'batch')").fetchone()[0]
        changed, held = self.conn.execute(
            "select count(*), count(*) filter (where patient_control_number not in "
            "(select patient_control_number from claims)) from (select distinct patient_control_number "
            "from findings where action != 'none' or severity = 'error')").fetchone()
        return ScrubCounts(sent + held, changed)

    def line_controls(self, pcn: str) -> dict[str, int]:
        """REF*6R line control number -> line number, over the stored submissions of a claim."""
        return {ctl: n for ctl, n in self.conn.execute(
            "select l.control_number, l.line_number from claim_lines l join claims c on c.id = l.claim_id "
            "where c.patient_control_number = ? and l.control_number is not null", store_row([pcn]))}

    def denial_rules(self) -> dict[str, str]:
        """Per claim, the first error rule the scrubber found on it (the rule that would have prevented a denial)."""
        return {pcn: rule for pcn, rule in self.conn.execute(
            "select patient_control_number, min(rule) from findings where patient_control_number is not null "
            "and severity = 'error' group by patient_control_number")}

    def claim_profiles(self) -> dict[str, str]:
        """Per claim, the payer profile its latest submission was scrubbed under (None when unknown)."""
        return {pcn: profile for pcn, profile in self.conn.execute(
            "select patient_control_number, profile from claims where profile is not null order by rowid")}

    def claim_payer_keys(self) -> dict[str, PayerKeysRow]:
        """Per claim, the SBR09 and 2010BB payer id of its latest submission (what picks its payer profile)."""
        return {pcn: PayerKeysRow(sbr09, payer_id) for pcn, sbr09, payer_id in self.conn.execute(
            "select patient_control_number, claim_filing_indicator, payer_id from claims order by rowid")}

