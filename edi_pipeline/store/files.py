"""The files a store took and the batch job's records of them: files, the interchanges each brought, and
batch_files/batch_claims (a file's outcome, its publication, which run holds it)."""

from __future__ import annotations

import os
from typing import Callable, Iterable

from edi_pipeline.store.sql import now, store_row
from edi_pipeline.tx.registry import kinds_of


class FileRecords:
    """The files and batch_files families of Store (composed into store.Store)."""

    def seen_file(self, sha: str) -> dict | None:
        """The earlier copy of a file with these exact bytes."""
        rows = list(self.query("select * from files where sha256 = ?", [sha]))
        return rows[0] if rows else None

    def earlier_interchanges(self, interchanges: Iterable[tuple], exclude_sha: str | None = None) -> dict[int, dict]:
        """Those of `interchanges` (ISA06 sender, ISA13 control number, kind of sets, ...) that an earlier file
        brought with sets of the same kind: their positions in the list, each with the first such file's
        row. A file's own parts, `sha` and `sha:835`, are not earlier files."""
        base = (exclude_sha or "").removesuffix(":835")
        found: dict[int, dict] = {}
        for k, (sender, control, kind, *_) in enumerate(interchanges):
            if not (sender and control):
                continue
            wanted = kinds_of(kind)
            for row in self.query("select f.*, i.kind as interchange_kind from interchanges i "
                                  "join files f on f.sha256 = i.file_sha256 where i.isa_sender = ? "
                                  "and i.isa_control = ? and i.file_sha256 not in (?, ?) order by f.rowid",
                                  [sender, control, base, f"{base}:835"]):
                if wanted & kinds_of(row.pop("interchange_kind")):
                    found[k] = row
                    break
        return found

    def add_interchanges(self, sha: str, interchanges: Iterable[tuple]) -> None:
        """Record the interchanges (ISA06 sender, ISA13 control number, kind of sets, ...) a file brought."""
        self.insert_rows("interchanges", ("file_sha256", "isa_sender", "isa_control", "kind"),
                         [(sha, sender, control, kind) for sender, control, kind, *_ in interchanges
                          if sender and control])

    _FILE_COLS = ("sha256", "name", "kind", "isa_sender", "isa_control", "origin", "ingested_at", "claims",
                  "payments")

    def add_file(self, sha: str, name: str, kind: str, isa_sender: str | None, isa_control: str | None,
                 origin: str, claims: int = 0, payments: int = 0) -> None:
        """Record (or update) a file; call again at the end of a job with its final counts."""
        self.insert_rows("files", self._FILE_COLS, [(sha, os.path.basename(name), kind, isa_sender, isa_control,
                                                     origin, now(), claims, payments)])

    def batch_file_done(self, sha: str) -> bool:
        """Whether the batch job has finished a file with these bytes."""
        return self.conn.execute("select 1 from batch_files where sha256 = ?", [sha]).fetchone() is not None

    def batch_file(self, sha: str) -> dict | None:
        """The batch job's record of a file with these bytes (status, publish_to, ...), if any."""
        return next(self.query("select * from batch_files where sha256 = ?", [sha]), None)

    def claim_batch_file(self, sha: str, run: str, alive: Callable[[str], bool]) -> str | None:
        """Claim a file for batch run `run`, in one IMMEDIATE transaction, so that two runs on this store
        never both process it: None when claimed (or already this run's), "done" when finished before,
        else the run id of the live run holding it. A claim of a run that `alive` says is gone is taken over."""
        with self.transaction():
            if self.batch_file_done(sha):
                return "done"
            row = self.conn.execute("select run from batch_claims where sha256 = ?", [sha]).fetchone()
            if row is not None and row[0] != run and alive(row[0]):
                return row[0]
            self.conn.execute("insert or replace into batch_claims values (?, ?, ?)", [sha, run, now()])
        return None

    def release_batch_claims(self, run: str) -> None:
        """Drop every claim of batch run `run` (its files not marked: a later run takes them)."""
        with self.transaction():
            self.conn.execute("delete from batch_claims where run = ?", [run])

    def batch_files_to_publish(self) -> list[dict]:
        """The batch job's files committed whose outputs still wait in their staging folder."""
        return list(self.query("select * from batch_files where publish_to is not null order by rowid"))

    def batch_file_published(self, sha: str) -> None:
        """Record that a batch file's staged outputs are all in place."""
        with self.transaction():
            self.conn.execute("update batch_files set publish_to = null where sha256 = ?", [sha])

    def batch_name_taken(self, name: str, sha: str) -> bool:
        """Whether the batch job has recorded a different file under this name."""
        return self.conn.execute("select 1 from batch_files where name = ? and sha256 != ? limit 1",
                                 store_row([name, sha])).fetchone() is not None

    def batch_files_with_status(self, status: str) -> list[dict]:
        """The batch job's files recorded with `status`, in the order they were recorded."""
        return list(self.query("select * from batch_files where status = ? order by rowid", [status]))

    def set_batch_status(self, shas: Iterable[str], status: str) -> None:
        """Change the recorded status of the batch job's files, in one transaction."""
        with self.transaction():
            self.conn.executemany("update batch_files set status = ? where sha256 = ?", [(status, s) for s in shas])

    def forget_batch_files(self, shas: Iterable[str], status: str) -> None:
        """Drop the batch job's records of these files while they have `status`, so the next run takes
        them again (batch --retry; a file that could not be quarantined)."""
        with self.transaction():
            self.conn.executemany("delete from batch_files where sha256 = ? and status = ?",
                                  [(s, status) for s in shas])

    def mark_batch_file(self, sha: str, name: str, kind: str | None, status: str, detail: str,
                        publish_to: str | None = None) -> None:
        """Record the batch job's outcome for a file and drop its claim, in a transaction of its own;
        `publish_to`: the output folder whose staging folder holds the file's outputs, not yet published."""
        with self.transaction():
            self.insert_rows("batch_files", ("sha256", "name", "kind", "status", "detail", "finished_at",
                                             "publish_to"),
                             [(sha, name, kind, status, detail, now(), publish_to)])
            self.conn.execute("delete from batch_claims where sha256 = ?", [sha])

