"""The per-group part of the Spark job's reconcile and denials, with the local analytics' own code.

The Spark job (spark/job.py) joins each sent claim and each claim payment to its claim group (a patient
control number, or the replacement's when a replacement or void's REF*F8 names a payment's CLP07) and
hands every group whole to one partition. Here a partition's claims and remits go, in the batch's order,
into an in-memory store, and analytics.reconcile (without lines) and analytics.denials run over it for
what stays per group:
- which payments are still active once reversals cancel (CLP02 = 22: the latest still-active payment of
  the same CLP07, else of the negated CLP04, else the latest). No join states it: a reversal sees only
  the payments before it, latest first (a stack, not a rank), and its fallbacks take payments a later
  reversal's CLP07 would have taken. Payments O1 (CLP07 A, CLP04 10), R1 (22, CLP07 B, CLP04 -10), R2
  (22, CLP07 A, CLP04 -12): the loop cancels O1 with R1 (the negated CLP04) and leaves R2 active (-12);
  a CLP07 join pass first, then a CLP04 pass, would cancel O1 with R2 and leave R1 (-10).
- the denial rows of the active payments (their CARC/RARC categories, actions and back-links): not an
  order question, but denials.py's classification is Python over the code tables and the payer
  profiles; a SQL copy would be a second copy of those rules.
Line matching (REF*6R, SVC06, the fallbacks) and the claim level are DataFrame windows and joins over
these active payments in the job (job.match_lines, job.claim_level).
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


def payment_id(key: str, segment_index: int) -> str:
    """The store's id of the claim payment at `segment_index` of the file stored under `key`
    (Store.save_remits_bulk: the digest's first 16 characters and the CLP's position)."""
    return f"{key[:16]}:{segment_index}"


def group_matches(rows: list[dict], tables: CodeTables, profiles: PayerProfiles,
                  as_of: date) -> tuple[list[dict], list[dict]]:
    """(groups, denials) of the claim groups in `rows`: (group, kind, pcn, file_order, segment_index,
    header_index, file, payload) with kind CLAIM (payload: a pickled sent claim) or PAYMENT (a pickled
    (RemitHeader, ClaimPayment)), any order. A group's row: its active payments' (file_order,
    segment_index)."""
    store = Store(":memory:")
    try:
        claims = sorted((r for r in rows if r["kind"] == CLAIM), key=lambda r: (r["file_order"], r["segment_index"]))
        for name, same in groupby(claims, key=lambda r: r["file"]):
            store.add_file(file_key(name), name, "837P", None, None, "scrub")
            store.save_claims([pickle.loads(r["payload"]) for r in same], file_key(name), "scrub",
                              profile_of=lambda c: profiles.profile_for(c.claim_filing_indicator, c.payer.id).name)
        pays = sorted((r for r in rows if r["kind"] == PAYMENT), key=lambda r: (r["file_order"], r["segment_index"]))
        of_payment: dict[str, dict] = {}
        for name, in_file in groupby(pays, key=lambda r: r["file"]):
            key = file_key(f"{name}:835")  # apart from its claims, as the batch keeps a file's remits
            store.add_file(key, name, "835", None, None, "batch")
            for _, same in groupby(in_file, key=lambda r: r["header_index"]):
                same = list(same)
                of_payment.update((payment_id(key, r["segment_index"]), r) for r in same)
                loaded = [pickle.loads(r["payload"]) for r in same]
                store.save_remits_bulk([(loaded[0][0], [p for _, p in loaded])], key)
        rec = reconcile(store, as_of, tables)
        denials = find_denials(store, tables, rec, profiles)
        group_of = {r["patient_control_number"]: r["group"] for r in rows}
        groups = [dict(group=group_of[g.patient_control_number],
                       active=[{k: of_payment[p.id][k] for k in ("file_order", "segment_index")} for p in g.active])
                  for g in rec.groups]
        return groups, [d.flat() for d in denials]
    finally:
        store.close()
