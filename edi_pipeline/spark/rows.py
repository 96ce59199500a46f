"""One input file to typed rows: the Spark runner's tables (explicit Arrow schemas) and its scrub input.

Pure Python and pyarrow (no pyspark), so it runs in an executor's mapInArrow and in tests alike. Field names
are the NDJSON contract's (formats/convert.py); money is decimal(12,2), dates are date, every row keeps its
file and position. Names, member ids and birth dates never reach a table: a claim's patient is its
member_hash. A file that cannot be read becomes one `errors` row, never an exception.
"""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import pyarrow as pa

from edi_pipeline.core.errors import EdiError, IssueList, Severity
from edi_pipeline.scrub.scrubber import UNWRITABLE, invalid_claims, ScrubResult
from edi_pipeline.tx.ack_records import ClaimStatus, SetResponse
from edi_pipeline.tx.acks import ack_set_records
from edi_pipeline.tx.model import Claim, member_hash
from edi_pipeline.tx.parse_835 import parse_835, parse_835_header
from edi_pipeline.tx.parse_837p import parse_837p
from edi_pipeline.tx.registry import Kind, kind_of
from edi_pipeline.x12.isa import Isa, gs_control
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment

MONEY = pa.decimal128(12, 2)
QUANTITY = pa.decimal128(15, 3)
WIDE_MONEY = pa.decimal128(20, 2)  # any X12 amount (18 digits) to the cent: the reconciliation's sums are exact
_ADJUSTMENT = pa.struct([("group", pa.string()), ("reason", pa.string()), ("amount", WIDE_MONEY)])
# What line matching reads of a sent claim's line and of a service payment, as the store keeps them: modifiers
# joined by spaces, a line's date else its claim's (a service payment's: else its claim payment's).
MATCH_LINE = pa.struct([("line_number", pa.int64()), ("procedure", pa.string()), ("modifiers", pa.string()),
                        ("charge", WIDE_MONEY), ("service_date", pa.date32()), ("control_number", pa.string())])
MATCH_SERVICE = pa.struct([("procedure", pa.string()), ("original_procedure", pa.string()),
                           ("modifiers", pa.string()), ("charge", WIDE_MONEY), ("paid", WIDE_MONEY),
                           ("service_date", pa.date32()), ("control_number", pa.string())])
_POSITION = [("file", pa.string()), ("file_order", pa.int32()), ("line", pa.int64()), ("segment_index", pa.int64())]

SCHEMAS: dict[str, pa.Schema] = {
    "claims": pa.schema(_POSITION + [
        ("st_position", pa.int64()), ("interchange", pa.string()), ("group", pa.string()),
        ("transaction_set", pa.string()), ("patient_control_number", pa.string()), ("member_hash", pa.string()),
        ("total_charge", MONEY), ("claim_filing_indicator", pa.string()), ("payer_id", pa.string()),
        ("billing_provider_npi", pa.string()), ("rendering_provider_npi", pa.string()),
        ("place_of_service", pa.string()), ("frequency_code", pa.string()), ("prior_authorization", pa.string()),
        ("payer_claim_control_number", pa.string()), ("service_date", pa.date32()),
        ("diagnoses", pa.list_(pa.string())), ("withheld", pa.bool_())]),
    "lines": pa.schema(_POSITION + [
        ("claim_segment_index", pa.int64()), ("patient_control_number", pa.string()), ("line_number", pa.int64()),
        ("procedure", pa.string()), ("modifiers", pa.list_(pa.string())), ("charge", MONEY), ("units", QUANTITY),
        ("unit_basis", pa.string()), ("service_date", pa.date32()), ("place_of_service", pa.string()),
        ("control_number", pa.string()), ("prior_authorization", pa.string()), ("rendering_npi", pa.string())]),
    "payments": pa.schema(_POSITION + [
        ("patient_control_number", pa.string()), ("status_code", pa.string()), ("charge", MONEY), ("paid", MONEY),
        ("patient_responsibility", MONEY), ("claim_filing_indicator", pa.string()),
        ("payer_claim_control_number", pa.string()), ("frequency_code", pa.string()), ("payer_id", pa.string()),
        ("payee_npi", pa.string()), ("trace_number", pa.string()), ("payment_date", pa.date32()),
        ("service_date", pa.date32()), ("remarks", pa.list_(pa.string()))]),
    "service_payments": pa.schema(_POSITION + [
        ("payment_segment_index", pa.int64()), ("patient_control_number", pa.string()), ("procedure", pa.string()),
        ("modifiers", pa.list_(pa.string())), ("original_procedure", pa.string()), ("charge", MONEY),
        ("paid", MONEY), ("allowed", MONEY), ("units", QUANTITY), ("service_date", pa.date32()),
        ("control_number", pa.string()), ("remarks", pa.list_(pa.string()))]),
    "adjustments": pa.schema(_POSITION + [
        ("payment_segment_index", pa.int64()), ("service_segment_index", pa.int64()),
        ("patient_control_number", pa.string()), ("group", pa.string()), ("reason", pa.string()),
        ("amount", MONEY), ("quantity", QUANTITY)]),
    # a 999's answer for one set we sent (type 999_set_response: the ST02 answered, IK501) or a 277CA's for one
    # claim (277CA_claim_status: the patient control number, STC01-1 category)
    "acknowledgments": pa.schema(_POSITION + [
        ("type", pa.string()), ("sender_id", pa.string()), ("group_control_number", pa.string()),
        ("control_number", pa.string()), ("patient_control_number", pa.string()),
        ("payer_claim_control_number", pa.string()), ("code", pa.string()), ("accepted", pa.bool_())]),
    "errors": pa.schema(_POSITION + [("kind", pa.string()), ("message", pa.string())]),
    # what the scrub needs of a claim (not written out: `claim` is the pickled claim, with PHI)
    "scrub_input": pa.schema([("file", pa.string()), ("file_order", pa.int32()), ("segment_index", pa.int64()),
                              ("st_index", pa.int64()), ("member_hash", pa.string()), ("withheld", pa.bool_()),
                              ("invalid", pa.string()), ("claim", pa.binary())]),
    # what reconcile needs of a claim payment (not written out: `remit` is the pickled header and payment;
    # amounts to the cent however large, `adjustments` its claim and line CAS, `payer` the name else the id)
    "remit_input": pa.schema([("file", pa.string()), ("file_order", pa.int32()), ("segment_index", pa.int64()),
                              ("header_index", pa.int64()), ("patient_control_number", pa.string()),
                              ("payer_claim_control_number", pa.string()), ("payment_date", pa.date32()),
                              ("status_code", pa.string()), ("payer", pa.string()), ("charge", WIDE_MONEY),
                              ("paid", WIDE_MONEY), ("patient_responsibility", WIDE_MONEY),
                              ("adjustments", pa.list_(_ADJUSTMENT)), ("services", pa.list_(MATCH_SERVICE)),
                              ("remit", pa.binary())]),
    # one row a file: its kind, why it was not taken (None when it was), its validation (pickled, for its 999s)
    "files": pa.schema([("file", pa.string()), ("file_order", pa.int32()), ("kind", pa.string()),
                        ("error", pa.string()), ("validation", pa.binary())]),
}
INTERNAL = ("scrub_input", "remit_input", "files")
TABLES = tuple(SCHEMAS)


def decimal_cell(value: Decimal | None, places: int = 2, digits: int = 12) -> Decimal | None:
    """A value as the column's scale holds it (rounded as core.values.cents rounds); None where it would
    not fit (`digits`) or is not finite."""
    if value is None or not value.is_finite():
        return None
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return q if q.adjusted() < digits - places else None


def wide_money(value: Decimal | None) -> Decimal | None:
    return decimal_cell(value, 2, 20)


@dataclass
class FileRows:
    """The rows of one file, per table (lists of dicts in the table's field order)."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in TABLES})

    order: int = 0

    def add(self, table: str, **row) -> None:
        if table not in INTERNAL:
            row["file_order"] = self.order
        self.rows[table].append(row)

    def batches(self) -> dict[str, pa.RecordBatch]:
        return {t: pa.RecordBatch.from_pylist(r, schema=SCHEMAS[t]) for t, r in self.rows.items()}


def match_lines(claim: Claim) -> list[dict]:
    """A sent claim's lines as line matching reads them (MATCH_LINE), in order."""
    return [dict(line_number=ln.line_number, procedure=ln.procedure, modifiers=" ".join(ln.modifiers),
                 charge=wide_money(ln.charge), service_date=ln.service_date or claim.service_date,
                 control_number=ln.control_number) for ln in claim.lines]


def match_services(payment) -> list[dict]:
    """A claim payment's service payments as line matching reads them (MATCH_SERVICE), in order."""
    return [dict(procedure=sp.procedure, original_procedure=sp.original_procedure, modifiers=" ".join(sp.modifiers),
                 charge=wide_money(sp.charge), paid=wide_money(sp.paid),
                 service_date=sp.service_date or payment.service_date, control_number=sp.control_number)
            for sp in payment.lines]


def own_segments(claim: Claim) -> Claim:
    """A copy of the claim whose `segments` are only its own (CLM at 0): small to ship between processes."""
    c = copy.copy(claim)
    shift = claim.start
    c.segments = claim.segments[claim.start:claim.end]
    c.tx_lines = claim.tx_lines[claim.start:claim.end] if claim.tx_lines else None
    c.tx_first_index = claim.tx_first_index + shift
    c.start, c.end = 0, claim.end - shift
    c.hl_billing = c.hl_subscriber = 0
    c.hl_patient = None
    c.lines = [copy.copy(ln) for ln in claim.lines]
    for ln in c.lines:
        ln.start -= shift
        ln.end -= shift
    return c


def file_rows(data: bytes, name: str, order: int) -> FileRows:
    """The rows of one file, as the batch takes it: an 837P file is validated first (the sets its 999s
    reject are withheld, an interchange its TA1 rejects makes the whole file an error)."""
    validation = None
    if _has_837p(data):
        from edi_pipeline.validate.validator import validate_file  # here: an 835-only job does not load TR3 maps

        validation = validate_file(name, name, data=data)
        rejected = validation.rejected_interchanges()
        if rejected:
            return _failed(name, order, "837P", f"{name}: interchange {rejected[0].control_number} rejected "
                           f"(TA1 {rejected[0].note}): {rejected[0].errors[0]}", validation)
    out = FileRows(order=order)
    try:
        kind = _read(data, name, order, frozenset(validation.rejected_sets()) if validation else frozenset(), out)
    except EdiError as exc:
        return _failed(name, order, "837P" if validation else None, str(exc), validation)
    out.add("files", file=name, file_order=order, kind=kind, error=None,
            validation=None if validation is None else pickle.dumps(validation, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def _has_837p(data: bytes) -> bool:
    return b"005010X222" in data


def _failed(name: str, order: int, kind: str | None, message: str, validation=None) -> FileRows:
    out = FileRows(order=order)
    out.add("errors", file=name, line=None, segment_index=None, kind=kind or "unknown", message=message)
    out.add("files", file=name, file_order=order, kind=kind, error=message,
            validation=None if validation is None else pickle.dumps(validation, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def _read(data: bytes, name: str, order: int, withheld: frozenset, out: FileRows) -> str:
    """Read the file's rows into `out`; its kind ("837P", "835" or "837P+835"). EdiError when it is not taken."""
    isa13 = gs06 = ""
    isa_index = 0
    sets_837 = sets_835 = sets_ack = 0
    issues = IssueList()
    with EnvelopeReader(data, name) as env:
        for item in env:
            if isinstance(item, EnvelopeSegment):
                e = item.elements
                if item.tag == "ISA":
                    isa13, isa_index = Isa.of(e).control, item.index
                elif item.tag == "GS":
                    gs06 = gs_control(e)
                continue
            tx = item
            if not tx.complete:
                raise EdiError(f"{name}:{tx.lines[-1]}: transaction set {tx.control_number} is truncated "
                               f"(no SE trailer); nothing written")
            st02 = tx.control_number.strip()
            kind = kind_of(tx)
            if kind is Kind.CLAIM_837P:
                sets_837 += 1
                first = len(issues)
                claims = list(parse_837p(tx, issues))
                held = ScrubResult(name, "", None, None, [])
                invalid = invalid_claims(claims, issues[first:], held)
                bad = {r["segment_index"]: r["error"] for r in held.claims_invalid}
                is_withheld = (isa_index, gs06, st02) in withheld
                for c in claims:
                    _claim_rows(c, out, isa13, gs06, st02, is_withheld)
                    out.add("scrub_input", file=name, file_order=order, segment_index=c.source.segment_index,
                            st_index=tx.first_index, member_hash=member_hash(c), withheld=is_withheld,
                            invalid=bad.get(c.source.segment_index) if id(c) in invalid else None,
                            claim=pickle.dumps((own_segments(c), tx.delimiters), protocol=pickle.HIGHEST_PROTOCOL))
            elif kind is Kind.REMIT_835:
                sets_835 += 1
                first = len(issues)
                header = parse_835_header(tx, issues)
                for p in parse_835(tx, header, issues):
                    _payment_rows(p, out)
                    out.add("remit_input", file=name, file_order=order, segment_index=p.source.segment_index,
                            header_index=tx.first_index, patient_control_number=p.patient_control_number,
                            payer_claim_control_number=p.payer_claim_control_number, payment_date=header.payment_date,
                            status_code=p.status_code, payer=header.payer.name or header.payer.id,
                            charge=wide_money(p.charge), paid=wide_money(p.paid),
                            patient_responsibility=wide_money(p.patient_responsibility),
                            adjustments=[dict(group=a.group, reason=a.reason, amount=wide_money(a.amount))
                                         for a in [*p.adjustments, *(a for ln in p.lines for a in ln.adjustments)]],
                            services=match_services(p),
                            remit=pickle.dumps((header, p), protocol=pickle.HIGHEST_PROTOCOL))
                errors = [i for i in issues[first:] if i.severity is Severity.ERROR]
                if errors:  # as ingest_file: a remit with an error is not taken at all
                    raise EdiError(f"{errors[0]}; remit not taken")
            elif kind in (Kind.ACK_999, Kind.CLAIM_ACK_277CA):
                sets_ack += 1
                for rec in ack_set_records(tx, issues):
                    _ack_row(rec, out)
        broken = [i for i in env.issues.errors if i.code in UNWRITABLE or sets_835]
        if broken:
            raise EdiError(f"{broken[0]}; nothing written")
        if not sets_837 and not sets_835 and not sets_ack:
            raise EdiError(f"{name}:1: no 837P, 835, 999 or 277CA transaction set in the file")
    return "+".join(k for k, n in (("837P", sets_837), ("835", sets_835), ("ack", sets_ack)) if n)


def _claim_rows(c: Claim, out: FileRows, isa13: str, gs06: str, st02: str, withheld: bool) -> None:
    s = c.source
    rp = c.rendering_provider
    out.add("claims", file=s.file, line=s.line, segment_index=s.segment_index, st_position=s.st_position,
            interchange=isa13, group=gs06, transaction_set=st02, patient_control_number=c.patient_control_number,
            member_hash=member_hash(c), total_charge=decimal_cell(c.total_charge),
            claim_filing_indicator=c.claim_filing_indicator, payer_id=c.payer.id,
            billing_provider_npi=c.billing_provider.npi, rendering_provider_npi=rp.npi if rp else None,
            place_of_service=c.place_of_service, frequency_code=c.frequency_code,
            prior_authorization=c.prior_authorization, payer_claim_control_number=c.payer_claim_control_number,
            service_date=c.service_date, diagnoses=c.diagnoses, withheld=withheld)
    for ln in c.lines:
        out.add("lines", file=s.file, line=ln.source.line, segment_index=ln.source.segment_index,
                claim_segment_index=s.segment_index, patient_control_number=c.patient_control_number,
                line_number=ln.line_number, procedure=ln.procedure, modifiers=ln.modifiers,
                charge=decimal_cell(ln.charge), units=decimal_cell(ln.units, 3), unit_basis=ln.unit_basis,
                service_date=ln.service_date, place_of_service=ln.place_of_service,
                control_number=ln.control_number, prior_authorization=ln.prior_authorization,
                rendering_npi=ln.rendering_npi)


def _ack_row(rec, out: FileRows) -> None:
    s = rec.source
    if isinstance(rec, SetResponse):
        out.add("acknowledgments", file=s.file, line=s.line, segment_index=s.segment_index, type="999_set_response",
                sender_id=rec.envelope.sender_id, group_control_number=rec.group_control_number,
                control_number=rec.control_number, patient_control_number=None, payer_claim_control_number=None,
                code=rec.code, accepted=rec.accepted)
    elif isinstance(rec, ClaimStatus):
        out.add("acknowledgments", file=s.file, line=s.line, segment_index=s.segment_index,
                type="277CA_claim_status", sender_id=rec.envelope.sender_id, group_control_number=None,
                control_number=None, patient_control_number=rec.patient_control_number,
                payer_claim_control_number=rec.payer_claim_control_number, code=rec.category, accepted=rec.accepted)


def _payment_rows(p, out: FileRows) -> None:
    s, h = p.source, p.header
    pcn = p.patient_control_number
    out.add("payments", file=s.file, line=s.line, segment_index=s.segment_index, patient_control_number=pcn,
            status_code=p.status_code, charge=decimal_cell(p.charge), paid=decimal_cell(p.paid),
            patient_responsibility=decimal_cell(p.patient_responsibility),
            claim_filing_indicator=p.claim_filing_indicator, payer_claim_control_number=p.payer_claim_control_number,
            frequency_code=p.frequency_code, payer_id=h.payer.id, payee_npi=h.payee.npi, trace_number=h.trace_number,
            payment_date=h.payment_date, service_date=p.service_date, remarks=p.remarks)
    for a in p.adjustments:
        out.add("adjustments", file=s.file, line=s.line, segment_index=s.segment_index,
                payment_segment_index=s.segment_index, service_segment_index=None, patient_control_number=pcn,
                group=a.group, reason=a.reason, amount=decimal_cell(a.amount), quantity=decimal_cell(a.quantity, 3))
    for ln in p.lines:
        ls = ln.source
        out.add("service_payments", file=s.file, line=ls.line, segment_index=ls.segment_index,
                payment_segment_index=s.segment_index, patient_control_number=pcn, procedure=ln.procedure,
                modifiers=ln.modifiers, original_procedure=ln.original_procedure, charge=decimal_cell(ln.charge),
                paid=decimal_cell(ln.paid), allowed=decimal_cell(ln.allowed), units=decimal_cell(ln.units, 3),
                service_date=ln.service_date, control_number=ln.control_number, remarks=ln.remarks)
        for a in ln.adjustments:
            out.add("adjustments", file=s.file, line=ls.line, segment_index=ls.segment_index,
                    payment_segment_index=s.segment_index, service_segment_index=ls.segment_index,
                    patient_control_number=pcn, group=a.group, reason=a.reason, amount=decimal_cell(a.amount),
                    quantity=decimal_cell(a.quantity, 3))
