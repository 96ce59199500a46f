"""The imported NCCI tables: a SQLite file beside the store (`STORE.ncci.sqlite`), its imports, and the
`codes.ncci.Table` lookups a scrub reads from it (`for_store`)."""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from edi_pipeline.codes.ncci import (AocEdit, MueEdit, Ncci, NcciError, ParsedFile, PtpEdit, Table, aoc_edit,
                                     ptp_edit, read_files)

_SCHEMA = """
create table if not exists files (
    id integer primary key, kind text not null, version text not null, part text not null,
    effective text not null, name text not null, sha256 text not null, rows integer not null,
    imported_at text not null, unique (kind, version, part));
create table if not exists ptp (file_id integer not null, column1 text not null, column2 text not null,
    effective text, deleted text, modifier integer not null, rationale text, version text not null);
create table if not exists mue (file_id integer not null, code text not null, mue integer not null,
    mai integer not null, rationale text, version text not null);
create table if not exists aoc (file_id integer not null, primary_code text not null, addon text not null,
    type integer not null, effective text, deleted text, version text not null);
"""
_COLS = {"ptp": "column1, column2, effective, deleted, modifier, rationale, version",
         "mue": "code, mue, mai, rationale, version",
         "aoc": "primary_code, addon, type, effective, deleted, version"}
_INDEXES = {"ptp": "create index if not exists ptp_pair on ptp (column1, column2, file_id)",
            "mue": "create index if not exists mue_code on mue (code, file_id)",
            "aoc": "create index if not exists aoc_addon on aoc (addon, file_id)"}


def db_path(store_path: str | os.PathLike) -> Path | None:
    """The imported NCCI tables of a store: `STORE.ncci.sqlite` beside it (None for an in-memory store)."""
    if str(store_path) == ":memory:":
        return None
    p = Path(store_path)
    return p.with_name(p.name + ".ncci.sqlite")


class NcciDb:
    """The imported tables: one SQLite file, rows indexed by code, every file recorded with its version."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            fresh = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path)
            if fresh:
                os.chmod(self.path, 0o600)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA busy_timeout=600000")
            self.conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise NcciError(f"cannot open NCCI tables {self.path}: {e}") from None

    def close(self) -> None:
        self.conn.close()

    def import_file(self, f: ParsedFile) -> str:
        """Store one file's rows (replacing an earlier import of the same version and part); returns
        "imported", "replaced" or "unchanged" (the same file again)."""
        conn = self.conn
        with conn:
            old = conn.execute("select id, sha256 from files where kind = ? and version = ? and part = ?",
                               (f.kind, f.version, f.part)).fetchone()
            if old and old[1] == f.sha256:
                return "unchanged"
            if old:
                conn.execute(f"delete from {f.kind} where file_id = ?", (old[0],))
                conn.execute("delete from files where id = ?", (old[0],))
            conn.execute(f"drop index if exists {_INDEXES[f.kind].split()[5]}")
            fid = conn.execute(
                "insert into files (kind, version, part, effective, name, sha256, rows, imported_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                (f.kind, f.version, f.part, f.effective.isoformat(), Path(f.name).name, f.sha256, len(f.rows),
                 datetime.now(timezone.utc).isoformat(timespec="seconds"))).lastrowid
            marks = ", ".join("?" * (len(_COLS[f.kind].split(",")) + 1))
            conn.executemany(f"insert into {f.kind} (file_id, {_COLS[f.kind]}) values ({marks})",
                             ((fid, *r) for r in f.rows))
            conn.execute(_INDEXES[f.kind])
        return "replaced" if old else "imported"

    def tables(self) -> Iterator[tuple[str, date, DbTable]]:
        """(kind, effective date, table) of each imported version, for codes.ncci.Ncci."""
        by_version: dict[tuple[str, str, str], list[int]] = {}
        for fid, kind, version, eff in self.conn.execute(
                "select id, kind, version, effective from files order by effective, id"):
            by_version.setdefault((kind, version, eff), []).append(fid)
        for (kind, _v, eff), ids in by_version.items():
            yield kind, date.fromisoformat(eff), DbTable(self.conn, kind, tuple(ids))

    def versions(self) -> list[dict]:
        cur = self.conn.execute("select kind, version, effective, count(*), sum(rows) from files "
                                "group by kind, version, effective order by kind, effective, version")
        return [dict(zip(("kind", "version", "effective", "files", "rows"), r)) for r in cur]


class DbTable(Table):
    """One imported version of one kind, read from NcciDb with each lookup cached."""

    def __init__(self, conn: sqlite3.Connection, kind: str, file_ids: tuple[int, ...]):
        self.conn, self.kind, self.ids = conn, kind, file_ids
        self._marks = ",".join("?" * len(file_ids))
        self._cache: dict = {}

    def ptp(self, codes: frozenset[str]) -> list[PtpEdit]:
        got = self._cache.get(codes)
        if got is None:
            cs = sorted(codes)
            m = ",".join("?" * len(cs))
            cur = self.conn.execute(
                f"select {_COLS['ptp']} from ptp where column1 in ({m}) and column2 in ({m}) "
                f"and file_id in ({self._marks})", (*cs, *cs, *self.ids))
            got = self._cache[codes] = [ptp_edit(r) for r in cur]
        return got

    def mue(self, code: str) -> MueEdit | None:
        if code not in self._cache:
            r = self.conn.execute(f"select {_COLS['mue']} from mue where code = ? and file_id in ({self._marks})",
                                  (code, *self.ids)).fetchone()
            self._cache[code] = MueEdit(*r) if r else None
        return self._cache[code]

    def aoc(self, addon: str) -> list[AocEdit]:
        if addon not in self._cache:
            cur = self.conn.execute(f"select {_COLS['aoc']} from aoc where addon = ? and file_id in ({self._marks})",
                                    (addon, *self.ids))
            self._cache[addon] = [aoc_edit(r) for r in cur]
        return self._cache[addon]



@lru_cache(maxsize=8)
def _for_path(path: str | None, mtime: int) -> Ncci:
    return Ncci(NcciDb(path).tables() if path else ())


def for_store(store) -> Ncci:
    """The NCCI lookups a scrub with this store uses: the shipped table plus the store's imports."""
    p = db_path(store.path) if store is not None else None
    if p is None or not p.exists():
        return _for_path(None, 0)
    return _for_path(str(p), p.stat().st_mtime_ns)


def import_files(paths: Iterable[str | os.PathLike], store_path: str | os.PathLike,
                 effective: date | None = None) -> list[dict]:
    """`ncci import`: read every file (all are read before anything is stored) and store each one."""
    files = read_files(paths, effective)
    target = db_path(store_path)
    if target is None:
        raise NcciError("NCCI tables need a store file (--db), not an in-memory store")
    db = NcciDb(target)
    try:
        out = []
        for f in files:
            status = db.import_file(f)
            out.append({"file": Path(f.name).name, "kind": f.kind, "version": f.version, "part": f.part,
                        "effective": f.effective.isoformat(), "rows": len(f.rows), "status": status})
        return out
    finally:
        db.close()
