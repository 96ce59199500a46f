"""Element values: X12 decimals to Decimal, CCYYMMDD to date, and back."""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

CACHE_LIMIT = 100_000  # distinct values a bounded_memo keeps: amounts and dates repeat across claims


def bounded_memo(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`fn` of one hashable argument, with the results of its first CACHE_LIMIT distinct arguments kept
    (memory stays flat on any file). The table is `.cache` (cleared to time a cold start)."""
    cache: dict = {}

    def memo(key):
        got = cache.get(key, cache)
        if got is cache:
            got = fn(key)
            if len(cache) < CACHE_LIMIT:
                cache[key] = got
        return got

    memo.cache = cache  # type: ignore[attr-defined]
    return functools.update_wrapper(memo, fn)


MAX_DIGITS = 18  # an X12 R or N element holds at most 18 digits


@bounded_memo
def to_decimal(text: str) -> Decimal | None:
    """X12 R/N2 text to Decimal; None when empty or malformed, or past the 18 digits an X12 numeric
    element holds (`1E30` would overflow every sum and format of it)."""
    try:
        value = Decimal(text) if text else None
    except (InvalidOperation, ValueError):
        return None
    return value if value is None or (value.is_finite() and value.adjusted() < MAX_DIGITS) else None


@bounded_memo
def to_date(text: str) -> date | None:
    """CCYYMMDD (or the first date of CCYYMMDD-CCYYMMDD) to date; None when invalid."""
    t = text[:8]
    if len(t) == 8 and t.isdigit():
        try:
            return date.fromisoformat(t)  # CCYYMMDD is ISO 8601's basic form; ASCII digits only
        except ValueError:
            return None
    return None


def date_range(text: str) -> tuple[date | None, date | None]:
    if "-" in text:
        a, _, b = text.partition("-")
        return to_date(a), to_date(b)
    d = to_date(text)
    return d, d


def format_amount(value: Decimal) -> str:
    """Decimal to X12 R text: no exponent, no needless trailing zeros beyond cents."""
    q = value.quantize(Decimal("0.01"))
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def format_number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@bounded_memo
def cents(value: Decimal | None) -> int | None:
    return None if value is None else int((value * 100).to_integral_value())


def from_cents(value: int | None) -> Decimal | None:
    return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


@bounded_memo
def cents_text(value: int | None) -> str | None:
    """Cents as decimal text, the same as str(from_cents(value)) but cheaper (amounts repeat)."""
    if value is None:
        return None
    a = abs(value)
    return f"{'-' if value < 0 else ''}{a // 100}.{a % 100:02d}"
