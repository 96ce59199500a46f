"""Element values: X12 decimals to Decimal, CCYYMMDD to date, and back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

_dates: dict[str, date | None] = {}
_money: dict[str, Decimal | None] = {}


def to_decimal(text: str) -> Decimal | None:
    """X12 R/N2 text to Decimal; None when empty or malformed."""
    got = _money.get(text, _money)
    if got is not _money:
        return got  # type: ignore[return-value]
    try:
        value = Decimal(text) if text else None
        if value is not None and not value.is_finite():
            value = None
    except (InvalidOperation, ValueError):
        value = None
    if len(_money) < 100_000:
        _money[text] = value
    return value


def to_date(text: str) -> date | None:
    """CCYYMMDD (or the first date of CCYYMMDD-CCYYMMDD) to date; None when invalid."""
    got = _dates.get(text, _dates)
    if got is not _dates:
        return got  # type: ignore[return-value]
    value = None
    t = text[:8]
    if len(t) == 8 and t.isdigit():
        try:
            value = date.fromisoformat(t)  # CCYYMMDD is ISO 8601's basic form; ASCII digits only
        except ValueError:
            value = None
    if len(_dates) < 100_000:
        _dates[text] = value
    return value


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
