"""The store as typed Parquet tables for analysts (duckdb, pandas, Spark): money decimal(12,2), dates date,
written in batches so memory stays flat in the store's size; each file appears whole or not at all."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

from edi_pipeline.analytics.reconcile import CLAIM_COLUMNS, reconcile_stream
from edi_pipeline.core.errors import EdiError
from edi_pipeline.core.files import atomic_binary
from edi_pipeline.store.store import Store

BATCH_ROWS = 10_000  # rows per row group: 50,000 peaked at 296 MB, this at 175 MB (200,000-claim store)
MONEY_DIGITS = 12  # decimal(12, 2): up to 9,999,999,999.99
DATE_COLUMNS = frozenset({"service_date", "payment_date", "event_date"})
INT_COLUMNS = frozenset({"segment_index", "line", "line_number", "seq", "days_outstanding"})
RECON_MONEY = frozenset({"billed", "paid", "patient_responsibility", "adjustments"})
TABLES = (*Store.EXPORT_QUERIES, "reconciliation")
INSTALL_HINT = "export needs pyarrow: pip install 'edi-pipeline[spark]' (or pip install pyarrow)"


class ExportError(EdiError):
    """A value the Parquet types cannot hold, or pyarrow missing."""


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError(INSTALL_HINT) from None
    return pyarrow


def _field(pa, name: str):
    """(output column name, Arrow type, converter from the store's value) of a store column."""
    if name.endswith("_cents"):
        return name.removesuffix("_cents"), pa.decimal128(MONEY_DIGITS, 2), _money
    if name in DATE_COLUMNS:
        return name, pa.date32(), _date
    if name in INT_COLUMNS:
        return name, pa.int64(), None
    return name, pa.string(), None


def _money(cents: int | None) -> Decimal | None:
    if cents is None:
        return None
    if abs(cents) >= 10 ** MONEY_DIGITS:
        raise ExportError(f"an amount over {MONEY_DIGITS - 2} digits of dollars does not fit decimal(12,2)")
    return Decimal(cents).scaleb(-2)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:  # the store holds ISO dates; anything else is left empty rather than guessed
        return None


def _write(pa, path: Path, columns: list[str], rows: Iterator[tuple]) -> int:
    fields = [_field(pa, c) for c in columns]
    schema = pa.schema([pa.field(name, typ) for name, typ, _ in fields])
    n = 0
    with atomic_binary(path, mode=0o600) as fh:
        with pa.parquet.ParquetWriter(fh, schema) as writer:
            while batch := _take(rows, BATCH_ROWS):
                arrays = []
                for k, (_, typ, convert) in enumerate(fields):
                    values = [r[k] for r in batch]
                    arrays.append(pa.array(list(map(convert, values)) if convert else values, type=typ))
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                n += len(batch)
    return n


def _take(rows: Iterator[tuple], n: int) -> list[tuple]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _reconciliation_rows(store: Store, as_of: date | None) -> Iterator[tuple]:
    for c in reconcile_stream(store, as_of).claims:
        yield (c.patient_control_number, c.payer, c.service_date, c.billed, c.paid, c.patient_responsibility,
               c.adjustments, c.status, c.state, c.days_outstanding)


def export_parquet(store: Store, out_dir: str | os.PathLike, as_of: date | None = None,
                   tables: Iterable[str] = TABLES) -> dict[str, int]:
    """Write each table as OUT_DIR/TABLE.parquet; returns the rows per table. The reconciliation is
    reconcile's per-claim rows (as of `as_of`) with its money columns named as reconcile names them."""
    pa = _pyarrow()
    out = Path(out_dir)
    counts = {}
    for table in tables:
        if table == "reconciliation":
            columns = [f"{c}_cents" if c in RECON_MONEY else c for c in CLAIM_COLUMNS]
            rows = _reconciliation_rows(store, as_of)
        else:
            columns, rows = store.export_rows(table)
        counts[table] = _write(pa, out / f"{table}.parquet", columns, iter(rows))
    return counts


__all__ = ["export_parquet", "ExportError", "TABLES", "INSTALL_HINT"]
