"""Small helpers the store's table families share: text parameters as the store holds them, a list as one
JSON parameter, ISO dates and timestamps."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Iterable

from edi_pipeline.core.safe_text import store_text

JSON_LIST = "(select value from json_each(?))"  # `in` a list given as one JSON parameter (json_list)


def store_row(row: Iterable) -> tuple:
    """A row's text values as the store holds them (store_text)."""
    return tuple(store_text(v) if isinstance(v, str) else v for v in row)


def json_list(values: Iterable[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
