"""The embedded SQLite store: tables, migrations and queries."""
