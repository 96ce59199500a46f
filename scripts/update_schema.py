"""Rewrite edi_pipeline/store/schema.sql: the statements the store's migrations leave in sqlite_master, from
which a new store is made without sqlite-utils. Run after adding a migration step, then review the diff.

    python scripts/update_schema.py
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edi_pipeline.store import migrations  # noqa: E402


def main() -> int:
    conn = sqlite3.connect(":memory:")
    migrations.migrate(conn)
    migrations.SCHEMA.write_text(migrations.schema_sql(conn), encoding="utf-8")
    print(f"wrote {migrations.SCHEMA.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
