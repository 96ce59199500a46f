"""`spark-batch`: the batch's results for many files at once, computed with Spark, as Parquet tables.

1. Read: the inputs with `binaryFile`; each file parsed in `mapInArrow` (spark/rows.py) into typed rows of
   every table at once (one struct column per table, explicit Arrow schemas; no schema is ever inferred).
2. Scrub: claims grouped by member (buckets of members by a hash of member_hash, cogrouped with the
   history table, `applyInArrow`) and each member scrubbed by spark/member.py with the scrubber's own rules: findings, and each claim sent (its X12 text), held,
   emptied or withheld.
3. Reconcile and denials: every sent claim and claim payment joined to its claim group (replacement and
   void links found with a join of REF*F8 against CLP07). Joins and windows over all groups: the payments
   reversals leave active (net_reversals: reconcile's walk as one round of joins per reversal of a group,
   every group's k-th reversal at once), line matching (match_lines: REF*6R, SVC06 and the three
   fallbacks as ranks per key, proven the same as reconcile's greedy loop), the claim level (claim_level:
   the claim of record, the active payments' totals and CAS, statuses, unmatched remits) and
   denial_summary (a groupBy). Per group, in mapInArrow over the groups a join finds an active denied
   payment in (denied_groups), hash-partitioned: the denial rows (spark/analytics.py: denials.py's
   classification, Python over the code tables).
4. Write: tables under OUT/tables/NAME (Parquet, partitioned), published only once all are written; then
   per input file, as `batch` writes them, its 999s (acks/, on the driver), corrected 837P (outbound/) and
   held claims (rejects/): their X12 text made in the executors from the file's bytes, published by the
   driver.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from edi_pipeline.analytics.denials import BY_KEYS
from edi_pipeline.analytics.lifecycle import SUBMITTED
from edi_pipeline.analytics.reconcile import find_root, not_denial_reasons
from edi_pipeline.codes.tables import load_profiles, load_tables
from edi_pipeline.core.errors import EdiError
from edi_pipeline.core.files import folder_inputs
from edi_pipeline.spark import rows as R
from edi_pipeline.spark.analytics import CLAIM, PAYMENT, group_denials
from edi_pipeline.spark.member import SENT, SentLine, scrub_member
from edi_pipeline.spark.outputs import file_x12, publish, write_file_acks

# pyspark 4.3 warns on every Arrow UDF under pandas 3, which it runs fine (the equality test says so)
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

_str, _int, _long = pa.string(), pa.int32(), pa.int64()
FINDINGS = pa.schema([("file", _str), ("file_order", _int), ("claim_segment_index", _long), ("rule", _str),
                      ("severity", _str), ("patient_control_number", _str), ("line", _long), ("procedure", _str),
                      ("action", _str), ("message", _str)])
OUTCOMES = pa.schema([("file", _str), ("file_order", _int), ("segment_index", _long),
                      ("patient_control_number", _str), ("status", _str), ("x12", _str), ("invalid", _str),
                      ("frequency_code", _str), ("payer_claim_control_number", _str), ("payer", _str),
                      ("service_date", pa.date32()), ("charge", R.WIDE_MONEY), ("lines", pa.list_(R.MATCH_LINE)),
                      ("claim", pa.binary())])
HISTORY = pa.schema([("member_hash", _str), ("claim", _str), ("patient_control_number", _str),
                     ("frequency_code", _str), ("service_date", pa.date32()), ("procedure", _str),
                     ("units", R.QUANTITY), ("charge", R.MONEY)])
_LINE_MATCH = pa.struct([("line_number", _long), ("procedure", _str), ("billed", _str), ("paid", _str),
                         ("matched_by", _str)])
RECONCILIATION = pa.schema([("patient_control_number", _str), ("payer", _str), ("service_date", _str),
                            ("billed", _str), ("paid", _str), ("patient_responsibility", _str),
                            ("adjustments", _str), ("status", _str), ("state", _str), ("days_outstanding", _long),
                            ("lines", pa.list_(_LINE_MATCH))])
UNMATCHED = pa.schema([("patient_control_number", _str), ("payer_claim_control_number", _str), ("payer", _str),
                       ("payments", _long), ("charge", _str), ("paid", _str), ("last_payment_date", _str)])
DENIALS = pa.schema([("patient_control_number", _str), ("payer_claim_control_number", _str), ("payer", _str),
                     ("level", _str), ("procedure", _str), ("service_date", _str), ("group", _str), ("carc", _str),
                     ("rarcs", _str), ("amount", _str), ("category", _str), ("action", _str),
                     ("preventable_by", _str)])
_POSITION = pa.struct([("file_order", _int), ("segment_index", _long)])
ACTIVE = pa.schema([("group", _str), ("active", pa.list_(_POSITION))])
MATCHED = pa.schema([*ACTIVE, ("lines", pa.list_(_LINE_MATCH))])
DENIAL_SUMMARY = pa.schema([("by", _str), ("key", _str), ("count", _long), ("amount", pa.decimal128(30, 2))])

# The tables written, and the column each is partitioned by.
WRITTEN = {"claims": "file_order", "lines": "file_order", "payments": "file_order",
           "service_payments": "file_order", "adjustments": "file_order", "acknowledgments": "file_order",
           "findings": "file_order",
           "errors": "file_order", "history": None, "reconciliation": "status", "unmatched_remits": None,
           "denials": "action", "denial_summary": None}


@contextlib.contextmanager
def spark_session(master: str = "local[2]", memory: str | None = None) -> Iterator[SparkSession]:
    """session(master, memory), stopped at the end unless one was running already (a caller's, a test's)."""
    owned = SparkSession.getActiveSession() is None
    spark = session(master, memory)
    try:
        yield spark
    finally:
        if owned:
            spark.stop()


def session(master: str = "local[2]", memory: str | None = None) -> SparkSession:
    """A Spark session for the job: the UI off, few shuffle partitions on a small machine (run_spark_batch
    sets them per run), adaptive execution coalescing the small ones."""
    b = (SparkSession.builder.master(master).appName("edi-pipeline")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", str(_cores(master) * 2))
         .config("spark.sql.adaptive.enabled", "true").config("spark.sql.adaptive.coalescePartitions.enabled", "true")
         .config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
         .config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false"))
    if memory:
        b = b.config("spark.driver.memory", memory)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _cores(master: str) -> int:
    inside = master[master.find("[") + 1:master.find("]")] if "[" in master else "2"
    if inside == "*":
        return os.cpu_count() or 2
    return max(int(inside), 1) if inside.isdigit() else 2


def input_files(inputs: list[str | os.PathLike]) -> list[Path]:
    """The files named, and the files to read of the folders named (core.files.folder_inputs: the batch's
    listing of its inbox), in the batch's order (by path). Two inputs of one name are refused: their outputs
    would collide."""
    files: list[Path] = []
    for x in map(Path, inputs):
        files.extend(folder_inputs(x)[0] if x.is_dir() else [x])
    files = sorted({p.resolve() for p in files})
    seen: dict[str, Path] = {}
    for p in files:
        if p.name in seen:
            raise EdiError(f"{p.name}: two inputs of that name ({seen[p.name]} and {p}); rename one")
        seen[p.name] = p
    return files


@dataclass
class SparkSummary:
    files: int = 0
    errors: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # rows per table written
    outcomes: dict[str, int] = field(default_factory=dict)  # claims sent / held / emptied / withheld
    seconds: dict[str, float] = field(default_factory=dict)  # per step (a table's step runs what it needs)

    def to_dict(self) -> dict:
        return {"files": self.files, "errors": self.errors, "tables": self.counts, "claims": self.outcomes,
                "seconds": self.seconds}


# ---------------------------------------------------------------- 1. read


def _struct_of(schema: pa.Schema) -> pa.StructType:
    return pa.struct(list(schema))


def layout(schemas: dict[str, pa.Schema]) -> pa.Schema:
    """Several tables in one DataFrame: a `table` name, and a struct column per table (null in other rows)."""
    return pa.schema([("table", _str)] + [(t, _struct_of(s)) for t, s in schemas.items()])


def tagged(schemas: dict[str, pa.Schema], name: str, rows: list[dict] | pa.RecordBatch) -> pa.RecordBatch:
    """`rows` of table `name` as a batch of layout(schemas)."""
    b = rows if isinstance(rows, pa.RecordBatch) else pa.RecordBatch.from_pylist(rows, schema=schemas[name])
    n = b.num_rows
    cols = [pa.array([name] * n, _str)]
    for t, s in schemas.items():
        cols.append(pa.StructArray.from_arrays(b.columns, fields=list(s)) if t == name else pa.nulls(n, _struct_of(s)))
    return pa.RecordBatch.from_arrays(cols, schema=layout(schemas))


PARSED = layout(R.SCHEMAS)


def _parse_batches(order: dict[str, int]):
    def parse(batches):
        for b in batches:
            for path, content in zip(b.column("path").to_pylist(), b.column("content").to_pylist()):
                name = path.rsplit("/", 1)[-1]
                yield from _as_parsed(R.file_rows(content, _unquote(name), order[_unquote(name)]))
    return parse


def _unquote(name: str) -> str:
    from urllib.parse import unquote

    return unquote(name)


def _as_parsed(rows: R.FileRows):
    for name, batch in rows.batches().items():
        if batch.num_rows:
            yield tagged(R.SCHEMAS, name, batch)


def partitions(spark: SparkSession, files: int) -> int:
    """Partitions of the parsed input, of the claim groups and of a run's shuffles (adaptive execution
    coalesces the small ones): at least one a file, so a partition's rows (and the Python worker's memory)
    stay about one file's however many files a run takes; the 1,000,000-claim, 50-file run ran out of
    heap with partitions fixed by the core count."""
    return max(spark.sparkContext.defaultParallelism * 2, files, 1)


def read_files(spark: SparkSession, files: list[Path]) -> DataFrame:
    order = {p.name: k for k, p in enumerate(files)}
    raw = spark.read.format("binaryFile").load([str(p) for p in files]).repartition(max(1, len(files)))  # a file a partition
    return raw.mapInArrow(_parse_batches(order), from_arrow_schema(PARSED))


def table(parsed: DataFrame, name: str) -> DataFrame:
    return parsed.where(F.col("table") == name).select(f"{name}.*")


# ---------------------------------------------------------------- 2. scrub


_CACHE: dict = {}


def _rules():
    if not _CACHE:
        _CACHE["tables"], _CACHE["profiles"] = load_tables(), load_profiles()
    return _CACHE["tables"], _CACHE["profiles"]


SCRUB_TABLES = {"findings": FINDINGS, "outcomes": OUTCOMES, "history": HISTORY}
SCRUBBED = layout(SCRUB_TABLES)


def _scrub_group(today: date):
    def scrub(claims: pa.Table, history: pa.Table) -> pa.Table:
        """One bucket of members: each member's claims scrubbed with that member's history."""
        tables, profiles = _rules()
        sent: dict[str, list[SentLine]] = defaultdict(list)
        for h in history.to_pylist():
            sent[h["member_hash"]].append(SentLine(h["claim"], h["patient_control_number"], h["frequency_code"],
                                                   h["service_date"], h["procedure"], h["units"], h["charge"]))
        by_member: dict[str, list[dict]] = defaultdict(list)
        for r in claims.to_pylist():
            by_member[r["member_hash"]].append(r)
        findings, outcomes, new = [], [], []
        for member, rows in by_member.items():
            got_findings, got = scrub_member(rows, tables, profiles, today, sent.get(member, ()))
            findings += got_findings
            for o in got:
                new += [dict(member_hash=member, claim=ln.claim, patient_control_number=ln.patient_control_number,
                             frequency_code=ln.frequency_code, service_date=ln.service_date, procedure=ln.procedure,
                             units=R.decimal_cell(ln.units, 3), charge=R.decimal_cell(ln.charge))
                        for ln in o.pop("sent_lines")]
            outcomes += got
        parts = [tagged(SCRUB_TABLES, name, rows)
                 for name, rows in (("findings", findings), ("outcomes", outcomes), ("history", new)) if rows]
        return pa.Table.from_batches(parts, schema=SCRUBBED)
    return scrub


def scrub(spark: SparkSession, scrub_input: DataFrame, history: DataFrame | None, today: date,
          files: int = 1) -> DataFrame:
    """Findings, outcomes and new history lines of every claim. Members are grouped into buckets by a hash
    of member_hash (a member's claims and history always in one bucket): a Python call per bucket, not
    per member, as a group's call costs milliseconds whatever its size."""
    if history is None:
        history = spark.createDataFrame([], from_arrow_schema(HISTORY))
    buckets = max(spark.sparkContext.defaultParallelism * 16, partitions(spark, files) * 4)

    def bucketed(df: DataFrame) -> DataFrame:
        return df.withColumn("bucket", F.pmod(F.xxhash64("member_hash"), F.lit(buckets)))

    return (bucketed(scrub_input).groupBy("bucket").cogroup(bucketed(history).groupBy("bucket"))
            .applyInArrow(_scrub_group(today), from_arrow_schema(SCRUBBED)))


# ---------------------------------------------------------------- 3. reconcile and denials


MADE = {"reconciliation": RECONCILIATION, "unmatched_remits": UNMATCHED, "denials": DENIALS,
        "denial_summary": DENIAL_SUMMARY}  # the tables this step makes


def _match_partition(as_of: date):
    def match(batches):
        rows = [r for b in batches for r in b.to_pylist()]
        if not rows:
            return
        tables, profiles = _rules()
        got = group_denials(rows, tables, profiles, as_of)
        if got:
            yield pa.RecordBatch.from_pylist(got, schema=DENIALS)
    return match


def _payment_order() -> list[F.Column]:
    """Payment order, as the store reads payments (Store.recon_payments): by date, the undated first, then
    by file and position."""
    return [F.col("payment_date").asc_nulls_first(), F.col("file_order"), F.col("segment_index")]


def claim_groups(spark: SparkSession, sent: DataFrame, remits: DataFrame) -> DataFrame:
    """patient control number -> its claim group, for the numbers a replacement or void links to another
    (reconcile's rule: a frequency 7/8 claim whose REF*F8 is a payment's CLP07 joins that payment's group,
    under the replacement's number). The links are few: they are found with a join and closed here."""
    first = Window.partitionBy("payer_claim_control_number").orderBy(*_payment_order())
    pcn_of_icn = (remits.where(F.col("payer_claim_control_number").isNotNull()
                               & (F.col("payer_claim_control_number") != ""))
                  .withColumn("k", F.row_number().over(first)).where("k = 1")
                  .select(F.col("payer_claim_control_number").alias("icn"),
                          F.col("patient_control_number").alias("paid_pcn")))
    links = (sent.where(F.col("frequency_code").isin("7", "8") & F.col("payer_claim_control_number").isNotNull())
             .join(pcn_of_icn, F.col("payer_claim_control_number") == F.col("icn"))
             .select("paid_pcn", "patient_control_number", "file_order", "segment_index")
             .orderBy("file_order", "segment_index").collect())
    parent: dict[str, str] = {}
    for r in links:
        a, b = find_root(parent, r["paid_pcn"]), find_root(parent, r["patient_control_number"])
        if a != b:
            parent[a] = b
    pairs = [(x, find_root(parent, x)) for x in parent]
    return spark.createDataFrame(pairs, "pcn string, root string")


def net_reversals(pays: DataFrame) -> DataFrame:
    """(group, active): the payments (file_order, segment_index) left active in each claim group of `pays`
    (group, file_order, segment_index, payment_date, status_code, payer_claim_control_number, paid) once
    reversals cancel, by analytics.reconcile._net, in payment order.

    _net walks the payments in order, and a reversal (CLP02 = 22) cancels the latest earlier payment still
    active that is not a reversal: of its CLP07 if it has one, else of paid = -its paid, else any; with
    none it stays active. The payments a reversal may take are those before it that no earlier reversal
    took, so the walk is K rounds of joins (K: the most reversals of a group): round k takes the k-th
    reversal of every group at once against what rounds 1..k-1 left, each candidate ranked (its tier, then
    its position, latest first). Only groups with a reversal take part, each round's state checkpointed
    so the plan does not grow with K."""
    ordered = Window.partitionBy("group").orderBy(*_payment_order())
    rev = F.col("status_code") == "22"
    p = (pays.select("group", "file_order", "segment_index", "payer_claim_control_number", "paid", rev.alias("rev"),
                     F.row_number().over(ordered).alias("pos"), F.max(rev.cast("int")).over(
                         Window.partitionBy("group")).alias("reversed"))
         .withColumn("k", F.when(F.col("rev"), F.row_number().over(Window.partitionBy("group", "rev").orderBy("pos")))))
    busy = p.where(F.col("reversed") == 1).withColumn("gone", F.lit(False)).localCheckpoint()
    rounds = busy.agg(F.max("k")).first()[0] or 0
    for k in range(1, rounds + 1):
        r = busy.where(F.col("k") == k).select("group", F.col("pos").alias("rpos"),
                                               F.col("payer_claim_control_number").alias("ricn"),
                                               F.col("paid").alias("rpaid"))
        same_icn = (F.coalesce("ricn", F.lit("")) != "") & (F.col("payer_claim_control_number") == F.col("ricn"))
        tier = (F.when(same_icn, 0)
                .when(F.col("rpaid").isNotNull() & (F.col("paid") == -F.col("rpaid")), 1).otherwise(2))
        taken = (busy.where(~F.col("rev") & ~F.col("gone")).join(r, "group").where(F.col("pos") < F.col("rpos"))
                 .groupBy("group", "rpos").agg(F.max(F.struct((-tier).alias("t"), F.col("pos").alias("p"))).alias("b")))
        hit = (taken.select("group", F.col("b.p").alias("pos"))
               .unionByName(taken.select("group", F.col("rpos").alias("pos"))).withColumn("hit", F.lit(True)))
        busy = (busy.join(hit, ["group", "pos"], "left")
                .withColumn("gone", F.col("gone") | F.coalesce("hit", F.lit(False))).drop("hit").localCheckpoint())
    left = (p.where(F.col("reversed") == 0).select("group", "pos", "file_order", "segment_index")
            .unionByName(busy.where(~F.col("gone")).select("group", "pos", "file_order", "segment_index")))
    return (left.groupBy("group").agg(F.array_sort(F.collect_list(F.struct("pos", "file_order", "segment_index")))
                                      .alias("active"))
            .select("group", F.transform("active", lambda x: F.struct(x["file_order"].alias("file_order"),
                                                         x["segment_index"].alias("segment_index"))).alias("active")))


def _text(money: F.Column) -> F.Column:
    """Money as the local reconciliation's text (cents_text: "12.30", "-0.05")."""
    return money.cast("string")


def is_denial(a: F.Column, not_denial: list[str]) -> F.Column:
    """Whether a CAS (group, reason, amount) is a denial, as the store counts them (Store._denial): a
    positive CO/PI/OA/PR amount whose CARC is not contractual or patient responsibility."""
    return a["group"].isin("CO", "PI", "OA", "PR") & (a["amount"] > 0) & ~a["reason"].isin(*(not_denial or [""]))


def denied_groups(remits: DataFrame, active: DataFrame, not_denial: list[str]) -> DataFrame:
    """(group): the claim groups with a denial row: an active payment with a denial CAS or CLP02 = 4
    (analytics.denials' denied payments)."""
    on = active.select("group", F.explode("active").alias("p")).select("group", "p.file_order", "p.segment_index")
    denied = F.exists("adjustments", lambda a: is_denial(a, not_denial)) | (F.col("status_code") == "4")
    return remits.join(on, ["group", "file_order", "segment_index"]).where(denied).select("group").distinct()


def claim_level(sent: DataFrame, remits: DataFrame, groups: DataFrame, not_denial: list[str]) -> DataFrame:
    """One row a claim group, by analytics.reconcile's rules, as a join of its submissions, its payments
    and its matched group: its claim of record is its latest submission (payer, date, CLM02, frequency;
    null without one); its active payments' paid, patient responsibility, CAS and CLP03 summed (each
    payment's CAS as the store sums them: the non-PR ones, and the denials, a positive CO/PI/OA/PR
    amount whose CARC is not contractual or patient responsibility); its last payment in payment order
    (CLP01, CLP07, payer, date); `status` (claim_status). `sent` and `remits` carry their group."""
    wide = "decimal(30,2)"
    zero = F.lit(0).cast(wide)

    def cas(keep) -> F.Column:
        return F.aggregate("adjustments", zero, lambda acc, a: (acc + F.when(keep(a), F.coalesce(a["amount"], zero))
                                                                .otherwise(zero)).cast(wide))

    pays = (remits.join(groups.select("group", "active"), "group")
            .withColumn("on", F.array_contains("active", F.struct("file_order", "segment_index"))))

    def active(c: F.Column) -> F.Column:
        return F.sum(F.when(F.col("on"), F.coalesce(c, zero)).otherwise(zero))

    last = F.max(F.struct(F.isnotnull("payment_date").alias("k"), "payment_date", "file_order", "segment_index",
                          "patient_control_number", "payer_claim_control_number", "payer"))
    totals = pays.groupBy("group").agg(
        active(F.col("paid")).alias("total_paid"), active(F.col("patient_responsibility")).alias("total_pr"),
        active(cas(lambda a: a["group"] != "PR")).alias("total_adjusted"),
        active(cas(lambda a: is_denial(a, not_denial))).alias("total_denied"),
        active(F.col("charge")).alias("total_charge"),
        F.max(F.col("on") & (F.col("status_code") == "4")).alias("status_4"),
        F.max(F.when(F.col("on"), F.col("payment_date"))).alias("last_date"),
        F.sum(F.col("on").cast("long")).alias("active"), F.count(F.lit(1)).alias("payments"), last.alias("last"))
    record = record_of(sent).select("group", "patient_control_number", "payer", "service_date", "charge",
                                    "frequency_code")
    return (groups.select("group", "lines").join(record, "group", "left").join(totals, "group", "left")
            .withColumn("status", claim_status()))


def record_of(sent: DataFrame) -> DataFrame:
    """Each claim group's claim of record: its latest submission."""
    latest = Window.partitionBy("group").orderBy(F.col("file_order").desc(), F.col("segment_index").desc())
    return sent.withColumn("k", F.row_number().over(latest)).where("k = 1").drop("k")


_L, _S = 0, 1  # the sides of line matching: claim lines, service payments
# reconcile's fallbacks (_FALLBACKS) in order, with their keys: `code` is a line's procedure, a service
# payment's billed code (SVC06, else SVC01)
FALLBACKS = (("exact", ("code", "modifiers", "service_date", "charge")),
             ("procedure+date", ("code", "service_date")), ("procedure", ("code",)))


def match_lines(lines: DataFrame, services: DataFrame) -> DataFrame:
    """(group, lines): analytics.reconcile.match_lines of each group's claim lines (`lines`: group,
    position, R.MATCH_LINE's fields) and service payments (`services`: group, position, R.MATCH_SERVICE's),
    as windows over both in one frame, partitioned by group once. `position` orders each side.

    The greedy loop, pass by pass, is the same as ranks: on REF*6R, a number names only the last service
    payment that has it (a dict), and that one pairs with the first line in order of that number whose
    code is its SVC01 or SVC06, if any; numbers never interact. In a fallback pass a line of key k takes
    the first free payment of key k, so the i-th pending line of key k gets the i-th free payment of key k
    (keys never interact within a pass); what a pass pairs leaves the next pass's ranks (`taken` is part
    of each window). Keys compare as Python's == does: None equals None (windows group nulls together).
    The matches are ordered as reconcile sorts them (line number, the unnumbered service payments last),
    ties in the order reconcile appended them (pass, then position)."""
    wide = "decimal(20,2)"

    def given(c: str) -> F.Column:
        return F.coalesce(F.col(c), F.lit("")) != ""

    none = F.lit(None)
    rows = (lines.select("group", F.lit(_L).alias("side"), "position", "line_number", "procedure",
                         none.cast("string").alias("original_procedure"), F.col("procedure").alias("code"),
                         "modifiers", "charge", none.cast(wide).alias("paid"), "service_date", "control_number")
            .unionByName(services.select(
                "group", F.lit(_S).alias("side"), "position", none.cast("long").alias("line_number"), "procedure",
                "original_procedure", F.when(given("original_procedure"), F.col("original_procedure"))
                .otherwise(F.col("procedure")).alias("code"), "modifiers", "charge", "paid", "service_date",
                "control_number"))
            .repartition("group"))  # every window below is within a group: no other shuffle
    line, service = F.col("side") == _L, F.col("side") == _S
    # REF*6R
    numbered = given("control_number")
    same_number = Window.partitionBy("group", "control_number")
    last = F.row_number().over(Window.partitionBy("group", "side", "control_number")
                               .orderBy(F.col("position").desc()))
    rows = rows.withColumn("named", numbered & service & (last == 1))

    def named(c: str) -> F.Column:
        return F.max(F.when(F.col("named"), F.col(c))).over(same_number)

    code = F.col("procedure")
    rows = rows.withColumn("fits", numbered & line & F.max("named").over(same_number)
                           & (code.eqNullSafe(named("procedure")) | code.eqNullSafe(named("original_procedure"))))
    first = F.row_number().over(Window.partitionBy("group", "control_number", "fits").orderBy("position"))
    rows = (rows.withColumn("hit", F.col("fits") & (first == 1))
            .withColumn("got", F.when(F.col("hit"), named("paid")))
            .withColumn("how", F.when(F.col("hit"), F.lit("6R")))
            .withColumn("taken", F.col("hit") | (F.col("named") & F.max("fits").over(same_number)))
            .withColumn("pass", F.when(F.col("hit"), F.lit(0))))
    for k, (how, keys) in enumerate(FALLBACKS, 1):
        rank = F.row_number().over(Window.partitionBy("group", "taken", "side", *keys).orderBy("position"))
        rows = rows.withColumn("rank", rank)
        pair = Window.partitionBy("group", "taken", "rank", *keys)
        hit = ~F.col("taken") & (F.count(F.lit(1)).over(pair) == 2)
        rows = (rows.withColumn("hit", hit).withColumn("paired", F.max(F.when(service, F.col("paid"))).over(pair))
                .withColumn("got", F.when(F.col("hit") & line, F.col("paired")).otherwise(F.col("got")))
                .withColumn("how", F.when(F.col("hit") & line, F.lit(how)).otherwise(F.col("how")))
                .withColumn("pass", F.when(F.col("hit"), F.lit(k)).otherwise(F.col("pass")))
                .withColumn("taken", F.col("taken") | F.col("hit")))
    unmatched = len(FALLBACKS) + 1
    order = F.struct(F.isnull("line_number").alias("a"), F.coalesce("line_number", F.lit(0)).alias("b"),
                     F.coalesce("pass", F.when(line, unmatched).otherwise(unmatched + 1)).alias("c"),
                     F.col("position").alias("d"))
    match = F.struct(F.col("line_number"), F.col("code").alias("procedure"), _text(F.col("charge")).alias("billed"),
                     _text(F.when(line, F.col("got")).otherwise(F.col("paid"))).alias("paid"),
                     F.col("how").alias("matched_by"))
    return (rows.where(line | ~F.col("taken")).groupBy("group")
            .agg(F.array_sort(F.collect_list(F.struct(order.alias("order"), match.alias("m")))).alias("lines"))
            .select("group", F.transform("lines", lambda x: x["m"]).alias("lines")))


def line_inputs(record: DataFrame, remits: DataFrame, active: DataFrame) -> tuple[DataFrame, DataFrame]:
    """match_lines' inputs: the claim of record's lines, and the service payments of the group's active
    payments, in payment order (date, undated first, then file and position), then SVC order."""
    lines = record.select("group", F.posexplode("lines").alias("position", "l")).select("group", "position", "l.*")
    on = active.select("group", F.explode("active").alias("p")).select("group", "p.file_order", "p.segment_index")
    paying = Window.partitionBy("group").orderBy(F.col("payment_date").asc_nulls_first(), "file_order",
                                                 "segment_index", "j")
    services = (remits.join(on, ["group", "file_order", "segment_index"])
                .select("group", "payment_date", "file_order", "segment_index", F.posexplode("services").alias("j", "s"))
                .withColumn("position", F.row_number().over(paying)).select("group", "position", "s.*"))
    return lines, services


def claim_status() -> F.Column:
    """A claim level row's status: voided (a void of record), open (no payment), reversed (none active),
    denied (nothing paid, a denial or CLP02 = 4), partially paid (a denial, or CLP03 not accounted for by
    paid + patient responsibility + CAS), else paid."""
    paid, pr, adjusted, denied = (_total(n) for n in ("paid", "pr", "adjusted", "denied"))
    return (F.when(F.col("frequency_code") == "8", "voided")
            .when(F.coalesce("payments", F.lit(0)) == 0, "open")
            .when(F.col("active") == 0, "reversed")
            .when((paid <= 0) & ((denied > 0) | F.coalesce("status_4", F.lit(False))), "denied")
            .when((denied > 0) | (paid + pr + adjusted < _total("charge")), "partially paid")
            .otherwise("paid"))


def _total(name: str) -> F.Column:
    return F.coalesce(F.col(f"total_{name}"), F.lit(0).cast("decimal(30,2)"))


def reconciliation(level: DataFrame, as_of: date) -> DataFrame:
    """The claim groups with a claim: the reconciliation's rows (days from the date of service to the last
    active payment, to `as_of` with none active)."""
    end = F.when(F.col("active") > 0, F.col("last_date")).otherwise(F.lit(as_of))
    return level.where(F.col("patient_control_number").isNotNull()).select(
        "patient_control_number", "payer", F.col("service_date").cast("string").alias("service_date"),
        _text(F.col("charge")).alias("billed"), _text(_total("paid")).alias("paid"),
        _text(_total("pr")).alias("patient_responsibility"), _text(_total("adjusted")).alias("adjustments"),
        "status", F.when(F.col("status") == "open", SUBMITTED).otherwise(F.col("status")).alias("state"),
        F.datediff(end, "service_date").cast("long").alias("days_outstanding"),
        F.coalesce("lines", F.array().cast(from_arrow_schema(MATCHED)["lines"].dataType)).alias("lines"))


def unmatched_remits(level: DataFrame) -> DataFrame:
    """The claim groups of payments with no claim: named by their last payment."""
    last = F.col("last")
    return level.where(F.col("patient_control_number").isNull()).select(
        last["patient_control_number"].alias("patient_control_number"),
        last["payer_claim_control_number"].alias("payer_claim_control_number"), last["payer"].alias("payer"),
        F.col("active").alias("payments"), _text(_total("charge")).alias("charge"), _text(_total("paid")).alias("paid"),
        last["payment_date"].cast("string").alias("last_payment_date"))


def denial_summary(denials: DataFrame) -> DataFrame:
    """Count and dollars of the denials per key (`by`: analytics.denials.summarize's keys, the carc as
    GROUP-CARC; "(none)" for none), in one groupBy."""
    def given(c: str) -> F.Column:
        return F.when(F.coalesce(F.col(c), F.lit("")) != "", F.col(c))

    keys = {"carc": F.when(given("carc").isNotNull(),
                           F.concat(F.coalesce(F.col("group"), F.lit("None")), F.lit("-"), F.col("carc")))}
    pairs = F.array(*(F.struct(F.lit(by).alias("by"), F.coalesce(keys.get(by, given(by)), F.lit("(none)")).alias("key"))
                      for by in BY_KEYS))
    return (denials.select(F.explode(pairs).alias("p"), F.col("amount").cast("decimal(20,2)").alias("amount"))
            .groupBy("p.by", "p.key").agg(F.count(F.lit(1)).alias("count"), F.sum("amount").alias("amount")))


def analyse(spark: SparkSession, outcomes: DataFrame, remits: DataFrame, as_of: date,
            files: int = 1) -> dict[str, DataFrame]:
    """The tables of the claim groups' matches: reconciliation, unmatched remits, denials and their summary
    (the active payments, the claim level and the denials are persisted; run_spark_batch clears the cache
    when done)."""
    sent = outcomes.where(F.col("status") == SENT)
    roots = F.broadcast(claim_groups(spark, sent, remits))

    def grouped(df: DataFrame) -> DataFrame:
        return (df.join(roots, df["patient_control_number"] == roots["pcn"], "left")
                .withColumn("group", F.coalesce("root", "patient_control_number")).drop("pcn", "root"))

    sent, remits = grouped(sent), grouped(remits)

    def rows(df: DataFrame, kind: int, header: str | None, payload: str) -> DataFrame:
        return df.select("group", F.lit(kind).alias("kind"), "patient_control_number", "file", "file_order",
                         "segment_index", (F.col(header) if header else F.lit(None)).cast("long").alias("header_index"),
                         F.col(payload).alias("payload"))

    both = rows(sent, CLAIM, None, "claim").unionByName(rows(remits, PAYMENT, "header_index", "remit"))
    every = sent.select("group").unionByName(remits.select("group")).distinct()
    none = F.array().cast(from_arrow_schema(ACTIVE)["active"].dataType)
    active = (every.join(net_reversals(remits), "group", "left")
              .select("group", F.coalesce("active", none).alias("active")).persist())
    lines = match_lines(*line_inputs(record_of(sent), remits, active))
    tables, _ = _rules()
    not_denial = not_denial_reasons(tables)
    level = claim_level(sent, remits.drop("remit"), active.join(lines, "group", "left"), not_denial).persist()
    # broadcast: with a shuffled semi-join below it, adaptive execution split a group over two partitions
    denials = (both.join(F.broadcast(denied_groups(remits, active, not_denial)), "group", "left_semi")
               .repartition(partitions(spark, files), "group")
               .mapInArrow(_match_partition(as_of), from_arrow_schema(DENIALS)).persist())  # and their summary
    return {"reconciliation": reconciliation(level, as_of), "unmatched_remits": unmatched_remits(level),
            "denials": denials, "denial_summary": denial_summary(denials)}


# ---------------------------------------------------------------- 4. the job


def _private(folder: Path) -> None:
    """The tables hold claims (diagnoses, dates of service): files 0600, folders 0700, as the store's."""
    for root, dirs, names in os.walk(folder):
        os.chmod(root, 0o700)
        for n in names:
            os.chmod(os.path.join(root, n), 0o600)


def _arrow_schema(name: str) -> pa.Schema:
    s = {**R.SCHEMAS, **SCRUB_TABLES, **MADE}[name]
    part = WRITTEN[name]
    return pa.schema([f for f in s if f.name != part])  # the partition column lives in the folder names


def run_spark_batch(spark: SparkSession, inputs: list[str | os.PathLike], out: str | os.PathLike,
                    history: str | os.PathLike | None = None, today: date | None = None,
                    as_of: date | None = None) -> SparkSummary:
    """Run the job over `inputs` into OUT (see the module docstring). `today` is the scrub date
    (TIMELY-FILING), `as_of` the reconciliation's (both default to today)."""
    from edi_pipeline.scrub.scrubber import scrub_date

    out = Path(out)
    files = input_files(inputs)
    summary = SparkSummary(files=len(files))
    if not files:
        return summary
    today = today or scrub_date()
    as_of = as_of or date.today()
    shuffle = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions(spark, len(files))))  # AQE coalesces the small
    parsed = read_files(spark, files).persist()
    try:
        hist = spark.read.schema(from_arrow_schema(HISTORY)).parquet(str(history)) if history else None
        scrubbed = scrub(spark, table(parsed, "scrub_input"), hist, today, len(files)).persist()
        outcomes = table(scrubbed, "outcomes")
        t0 = time.perf_counter()
        analysed = analyse(spark, outcomes, table(parsed, "remit_input"), as_of, len(files))
        summary.seconds["read, scrub, claim groups"] = round(time.perf_counter() - t0, 1)
        frames = {t: table(parsed, t) for t in ("claims", "lines", "payments", "service_payments", "adjustments",
                                                "acknowledgments", "errors")}
        frames.update({t: table(scrubbed, t) for t in ("findings", "history")})
        frames.update(analysed)
        stage = out / ".tables-staging"
        shutil.rmtree(stage, ignore_errors=True)
        for name, df in frames.items():
            t0 = time.perf_counter()
            w = df.write.mode("overwrite")
            if WRITTEN[name]:
                w = w.partitionBy(WRITTEN[name])
            w.parquet(str(stage / name))
            if not any((stage / name).glob("**/*.parquet")):  # Spark writes no file for no rows: one that opens
                pq.write_table(_arrow_schema(name).empty_table(), stage / name / "part-00000-empty.parquet")
                summary.counts[name] = 0
            else:
                summary.counts[name] = ds.dataset(stage / name, format="parquet", partitioning="hive").count_rows()
            summary.seconds[f"table {name}"] = round(time.perf_counter() - t0, 1)
        _private(stage)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        for name in frames:  # published once every table is written
            target = out / "tables" / name
            shutil.rmtree(target, ignore_errors=True)
            os.replace(stage / name, target)
        shutil.rmtree(stage, ignore_errors=True)
        summary.outcomes = {r["status"]: r["count"] for r in outcomes.groupBy("status").count().collect()}
        summary.errors = summary.counts.get("errors", 0)
        t0 = time.perf_counter()
        _write_outputs(spark, files, table(parsed, "files"), outcomes, out)
        summary.seconds["x12 outputs"] = round(time.perf_counter() - t0, 1)
    finally:
        spark.catalog.clearCache()
        spark.conf.set("spark.sql.shuffle.partitions", shuffle)
    return summary


X12_OUT = pa.schema([("file", _str), ("file_order", _int), ("folder", _str), ("x12", _str)])
_OUTCOME = pa.struct([("segment_index", _long), ("status", _str), ("x12", _str)])
_X12_IN = pa.schema([("file", _str), ("file_order", _int), ("content", pa.binary()),
                     ("outcomes", pa.list_(_OUTCOME))])


def _x12_batches(batches):
    """Each file's outbound and rejects X12 text, from its bytes and its claims' outcomes (an executor)."""
    for b in batches:
        rows = []
        for f in b.to_pylist():
            texts = file_x12(f["content"], f["file"], {o["segment_index"]: o for o in f["outcomes"]})
            rows += [dict(file=f["file"], file_order=f["file_order"], folder=k, x12=v) for k, v in texts.items()]
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=X12_OUT)


def _named(order: dict[str, int]):
    def name(batches):
        for b in batches:
            names = [_unquote(p.rsplit("/", 1)[-1]) for p in b.column("path").to_pylist()]
            yield pa.RecordBatch.from_arrays([pa.array(names, _str), pa.array([order[n] for n in names], _int),
                                              b.column("content")], names=["file", "file_order", "content"])
    return name


def x12_outputs(spark: SparkSession, files: list[Path], files_df: DataFrame, outcomes: DataFrame) -> DataFrame:
    """(file, file_order, folder, x12): each taken file's corrected 837P and held claims, made in the
    executors from the file's bytes (read again with binaryFile: object storage works the same) and its
    claims' outcomes (spark/outputs.file_x12)."""
    order = {p.name: k for k, p in enumerate(files)}
    raw = (spark.read.format("binaryFile").load([str(p) for p in files]).select("path", "content")
           .mapInArrow(_named(order), "file string, file_order int, content binary"))
    taken = files_df.where(F.col("error").isNull()).select("file_order")
    mine = outcomes.groupBy("file_order").agg(
        F.collect_list(F.struct("segment_index", "status", "x12")).alias("outcomes"))
    return (raw.join(taken, "file_order").join(mine, "file_order").select("file", "file_order", "content", "outcomes")
            .mapInArrow(_x12_batches, from_arrow_schema(X12_OUT)))


def by_file(df: DataFrame, files: int) -> DataFrame:
    """`df`'s rows in file order, a partition a file, so toLocalIterator fetches one file's text at a time
    (a sort's range partitions held 25 files' at 1,000,000 claims, and the task result was lost)."""
    return df.repartitionByRange(max(files, 1), "file_order").sortWithinPartitions("file_order")


def _write_outputs(spark: SparkSession, files: list[Path], files_df: DataFrame, outcomes: DataFrame,
                   out: Path) -> None:
    """Per input file, in order: its 999s (validator.write_acks: one control-number counter), then its
    corrected 837P and held claims as the executors made them (read back in file order, one file's at a
    time on the driver), each file written atomically under its own safe name."""
    info = sorted(files_df.select("file", "file_order", "validation").collect(), key=lambda r: r["file_order"])
    for f in info:
        if f["validation"]:
            write_file_acks(f["file"], out, pickle.loads(f["validation"]))
    name_of = {f["file_order"]: f["file"] for f in info}
    texts: dict[str, str] = {}
    current = None
    for r in by_file(x12_outputs(spark, files, files_df, outcomes), len(files)).toLocalIterator():
        if r["file_order"] != current and current is not None:
            publish(out, name_of[current], texts)
            texts = {}
        current = r["file_order"]
        texts[r["folder"]] = r["x12"]
    if current is not None:
        publish(out, name_of[current], texts)
