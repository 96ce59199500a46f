"""The per-group part of the Spark job's denials, with the local analytics' own code.

The Spark job (spark/job.py) joins each sent claim and each claim payment to its claim group (a patient
control number, or the replacement's when a replacement or void's REF*F8 names a payment's CLP07) and
hands every group whole to one partition. Here a partition's claims and remits go, in the batch's order,
into an in-memory store, and analytics.reconcile (without lines) and analytics.denials run over it for
the denial rows of the active payments (their CARC/RARC categories, actions and back-links): denials.py's
classification is Python over the code tables and the payer profiles; a SQL copy would be a second copy
of those rules. Only the groups with an active denied payment come here (job.denied_groups); reconcile
nets their reversals again because find_denials takes a reconciliation (the same active payments as
job.net_reversals: tests/test_spark.py proves the two equal). Which payments are active, line matching
(REF*6R, SVC06, the fallbacks) and the claim level are DataFrame joins and windows in the job
(job.net_reversals, job.match_lines, job.claim_level).
"""

from __future__ import annotations

import hashlib
import pickle
from datetime import date
from itertools import groupby

from edi_pipeline.analytics.denials import find_denials
from edi_pipeline.analytics.reconcile import reconcile
from edi_pipeline.codes.tables import CodeTables, PayerProfiles
from edi_pipeline.store.store import Store

CLAIM, PAYMENT = 0, 1


def file_key(name: str) -> str:
    """A stand-in for a file's digest in the partition's store (its rows' ids are file + position)."""
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()


def group_denials(rows: list[dict], tables: CodeTables, profiles: PayerProfiles, as_of: date) -> list[dict]:
    """The denial rows (Denial.flat) of the claim groups in `rows`: (group, kind, pcn, file_order,
    segment_index, header_index, file, payload) with kind CLAIM (payload: a pickled sent claim) or PAYMENT
    (a pickled (RemitHeader, ClaimPayment)), any order."""
    store = Store(":memory:")
    try:
        claims = sorted((r for r in rows if r["kind"] == CLAIM), key=lambda r: (r["file_order"], r["segment_index"]))
        for name, same in groupby(claims, key=lambda r: r["file"]):
            store.add_file(file_key(name), name, "837P", None, None, "scrub")
            store.save_claims([pickle.loads(r["payload"]) for r in same], file_key(name), "scrub",
                              profile_of=lambda c: profiles.profile_for(c.claim_filing_indicator, c.payer.id).name)
        pays = sorted((r for r in rows if r["kind"] == PAYMENT), key=lambda r: (r["file_order"], r["segment_index"]))
        for name, in_file in groupby(pays, key=lambda r: r["file"]):
            key = file_key(f"{name}:835")  # apart from its claims, as the batch keeps a file's remits
            store.add_file(key, name, "835", None, None, "batch")
            for _, same in groupby(in_file, key=lambda r: r["header_index"]):
                same = list(same)
                loaded = [pickle.loads(r["payload"]) for r in same]
                store.save_remits_bulk([(loaded[0][0], [p for _, p in loaded])], key)
        return [d.flat() for d in find_denials(store, tables, reconcile(store, as_of, tables), profiles)]
    finally:
        store.close()
