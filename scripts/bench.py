"""Benchmark edi-pipeline against pyx12 on the generator's files: claims/s, MB/s, peak RSS and ratios.

Every step runs as one command in its own process (so peak RSS is that step's own), on the same files,
in one run, and prints its speed over its pyx12 reference: pyx12's plain X12Reader over the same 837P
(parse, scrub) or 835 (ingest+reconcile), and pyx12's validation (validate). A last section repeats the
steps in one process, without interpreter start-up.

    python scripts/bench.py --claims 20000            # the standard figures
    python scripts/bench.py --claims 20000 --rss-gb 1 # also parse a ~1 GB 837P for peak RSS
    python scripts/bench.py --issue-table             # only issue 13's table: ratios to convert --to ndjson
    python scripts/bench.py --analytics 1000000       # only: reconcile, denials, report, worklist on a big store

Not a test: it prints a table and writes it as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run(cmd: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Run a command; return (seconds, peak RSS in MB, exit code)."""
    seconds, _cpu, rss, code = run_usage(cmd, env)
    return seconds, rss, code


def run_usage(cmd: list[str], env: dict | None = None) -> tuple[float, float, int, int]:
    """Run a command; return (wall seconds, CPU seconds of it and its children, peak RSS in MB, exit code)."""
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    after = os.times()  # (wait4's usage omits the workers a batch waited for; times() counts them too)
    cpu = max(usage.ru_utime + usage.ru_stime,
              after.children_user + after.children_system - before.children_user - before.children_system)
    return seconds, cpu, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def generate(claims: int, seed: int, out: Path, per_st: int = 2000, trip_rate: float | None = None) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    f837, f835 = out / f"gen-{claims}.837", out / f"gen-{claims}.835"
    if not (f837.exists() and f835.exists()):
        extra = [] if trip_rate is None else ["--trip-rate", str(trip_rate)]
        subprocess.run([PY, str(ROOT / "scripts" / "generate.py"), "--claims", str(claims), "--seed", str(seed),
                        "--out", str(out), "--claims-per-st", str(per_st), *extra], check=True,
                       stdout=subprocess.DEVNULL)
    return f837, f835


# TIMELY-FILING counts to the day the test suite pins (tests/conftest.py), whatever today is: the
# generator's dates of service (autumn 2026) are then all within their filing limits.
SCRUB_DATE = {"EDI_SCRUB_DATE": "2026-11-27"}
# Issue 13's table: each step as a ratio to `convert --to ndjson` of the same 837P files: (step, the
# figure the issue measured, the target). The batch --workers 2 row is the other way up: 1 worker's time
# over 2 workers' (a speed-up).
ISSUE_TABLE = (("batch --workers 1", "11.5x", "<= 4x"), ("batch --workers 2 vs --workers 1", "1.10x", ">= 1.7x"),
               ("validate", "7.5x", "<= 4x"), ("scrub", "2.0x", "<= 1.6x"))


def issue_table(claims: int, seed: int, work: Path, repeat: int) -> list[dict]:
    """Issue 13's speed table, side by side in one run: on one file of `claims` claims (837P + its 835),
    then on 4 files of claims/4, each step timed as one command per 837P (the batch: one command over an
    inbox holding every 837P and 835) in a fresh process and store, median of `repeat` runs. Clean files
    (--trip-rate 0): a BAL-CLAIM error would reject its set and leave the batch little to do."""
    rows = []
    for label, parts in ((f"one {claims:,}-claim 837P + its 835", 1), (f"4 files of {claims // 4:,} claims", 4)):
        pairs = [generate(claims // parts, seed + (100 + k if parts > 1 else 0),
                          work / f"table{parts}-{k}", trip_rate=0) for k in range(parts)]
        inbox = work / f"table{parts}-inbox"
        shutil.rmtree(inbox, ignore_errors=True)
        inbox.mkdir()
        for k, (f837, f835) in enumerate(pairs):
            shutil.copyfile(f837, inbox / f"part{k}.837")
            shutil.copyfile(f835, inbox / f"part{k}.835")
        out, db = work / f"table{parts}-out", work / f"table{parts}.db"

        def fresh() -> None:
            shutil.rmtree(out, ignore_errors=True)
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                p.unlink(missing_ok=True)

        def batch(workers: int) -> list[list[str]]:
            return [cli("batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0", "--workers",
                        str(workers))]

        steps = {"convert --to ndjson": [cli("convert", str(f), "--to", "ndjson", "-o", os.devnull, "--quiet")
                                         for f, _ in pairs],
                 "batch --workers 1": batch(1), "batch --workers 2": batch(2),
                 "validate": [cli("validate", str(f)) for f, _ in pairs],
                 "scrub": [cli("scrub", str(f), "-o", str(work / "table.out.837"), "--rejects",
                               str(work / "table.rejects.837"), "--db", str(db)) for f, _ in pairs]}
        runs: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in steps}
        for _ in range(repeat):  # the steps in turn, so a busy machine slows them alike
            for name, cmds in steps.items():
                fresh()
                results = [run_usage(cmd, SCRUB_DATE) for cmd in cmds]
                runs[name].append((sum(r[0] for r in results), sum(r[1] for r in results),
                                   max(r[2] for r in results), max(r[3] for r in results)))
        fresh()
        fig = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                      max(r[2] for r in rs), max(r[3] for r in rs)) for name, rs in runs.items()}
        base, base_cpu = fig["convert --to ndjson"][:2]
        print(f"\n{label}: ratio to convert --to ndjson ({base:.2f} s, {base_cpu:.2f} s CPU), "
              f"median of {repeat}")
        print(f"  {'step':34} {'seconds':>8} {'ratio':>7} {'today':>7} {'target':>8} {'CPU ratio':>9} "
              f"{'peak RSS':>9}  exit")
        for name, today, target in ISSUE_TABLE:
            if name.endswith("vs --workers 1"):
                (w2, c2, rss, code), w1 = fig["batch --workers 2"], fig["batch --workers 1"]
                seconds, ratio, cpu_ratio = w2, w1[0] / w2, f"{c2 / w1[1]:.2f}"  # CPU: the cost of 2 workers
            else:
                seconds, cpu, rss, code = fig[name]
                ratio, cpu_ratio = seconds / base, f"{cpu / base_cpu:.2f}x"
            print(f"  {name:34} {seconds:8.2f} {ratio:6.2f}x {today:>7} {target:>8} {cpu_ratio:>9} "
                  f"{rss:6d} MB  {code}")
            rows.append({"files": label, "step": name, "seconds": round(seconds, 3), "ratio": round(ratio, 2),
                         "today": today, "target": target, "cpu_ratio": cpu_ratio, "peak_rss_mb": rss, "exit": code})
        print(f"  {'convert --to ndjson':34} {base:8.2f} {'1.00x':>7} {'':>7} {'':>8} {'':>9} "
              f"{fig['convert --to ndjson'][2]:6d} MB  {fig['convert --to ndjson'][3]}")
    return rows


def count_payments(path: Path) -> int:
    """CLP segments in a file, read in chunks so this process stays small (children's peak RSS
    as wait4 reports it starts from the parent's size at fork)."""
    n, tail = 0, b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            buf = tail + chunk
            n += buf.count(b"CLP*")
            tail = buf[-3:]
    return n


def full_ncci_files(out: Path, ptp_rows: int) -> list[Path]:
    """A quarter of CMS-sized NCCI tables in the official layouts: the shipped real rows plus filler pairs
    and codes up to `ptp_rows` PTP rows (CMS's practitioner PTP files hold over a million), 15,000 MUE
    codes and 1,500 add-on edits."""
    import csv
    import io

    out.mkdir(parents=True, exist_ok=True)
    data = ROOT / "edi_pipeline" / "codes" / "data"

    def shipped(name):
        text = (data / name).read_text(encoding="utf-8")
        return list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))

    ptp = out / "ccipra-v999r0-f1.TXT"
    with open(ptp, "w", encoding="ascii", newline="") as fh:
        fh.write("CPT codes only copyright American Medical Association.\r\nColumn1/Column2 Edits\r\n"
                 "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n"
                 "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n\t\t\t\t*=no data\t1=allowed\t\r\n"
                 "\t\t\t\t\t9=not applicable\t\r\n")
        rows = shipped("ncci_ptp.csv")
        for r in rows:
            fh.write(f"{r['column1']}\t{r['column2']}\t\t{(r['effective'] or '19960101').replace('-', '')}\t"
                     f"{(r['deleted'] or '*').replace('-', '')}\t{r['modifier']}\t{r['rationale']}\r\n")
        for i in range(max(0, ptp_rows - len(rows))):
            c1, c2 = i // 200, (i * 7919) % 10000  # filler codes the claims do not use
            fh.write(f"{c1:04d}T\t{c2:04d}U\t\t20100101\t*\t{i % 2}\tMutually exclusive procedures\r\n")
    mue = out / "MCR_MUE_PractitionerServices_Eff_07-01-2099.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["notice"])
    w.writerow(["HCPCS/\nCPT Code", "Practitioner Services MUE Values", "MUE Adjudication Indicator", "Rationale"])
    mai = {"1": "1 Line Edit", "2": "2 Date of Service Edit: Policy", "3": "3 Date of Service Edit: Clinical"}
    for r in shipped("ncci_mue.csv"):
        w.writerow([r["code"], r["mue"], mai[r["mai"]], r["rationale"]])
    for i in range(15000):
        w.writerow([f"{i % 10000:04d}{'TU'[i // 10000]}", 1 + i % 9, mai[str(1 + i % 3)], "Clinical: Data"])
    mue.write_bytes(buf.getvalue().encode("latin-1"))
    aoc = out / "AOC_V2099Q3_01-MCR.txt"
    lines = ["Primary Code\tAdd-on Code\tAOC Edit Type\tAOC Edit Effective Date\tAOC Edit Deletion Date"]
    lines += [f"{r['primary']}\t{r['addon']}\t{r['type']}\t20100101\t*" for r in shipped("ncci_aoc.csv")]
    lines += [f"{i:04d}T\t{i:04d}U\t{1 + i % 3}\t20100101\t*" for i in range(1500)]
    aoc.write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    return [ptp, mue, aoc]


def cli(*args: str) -> list[str]:
    return [PY, "-m", "edi_pipeline", *args]


PYX12_READ = """
import sys, pyx12.x12file
n = 0
for seg in pyx12.x12file.X12Reader(sys.argv[1]):
    n += 1
"""

PYX12_VALIDATE = """
import io, logging, sys, pyx12.params, pyx12.x12n_document
logging.getLogger("pyx12").addHandler(logging.NullHandler())
logging.getLogger("pyx12").propagate = False
pyx12.x12n_document.x12n_document(pyx12.params.params(), sys.argv[1], None, None, None, io.StringIO())
"""


LIBRARY = """
import io, json, os, sys, time, gc
import pyx12.x12file
from edi_pipeline.formats.convert import to_ndjson
from edi_pipeline.tx.document import iter_records
from edi_pipeline.pipeline.ingest import ingest_file
from edi_pipeline.analytics.reconcile import reconcile
from edi_pipeline.scrub.scrubber import scrub_file
from edi_pipeline.store.store import Store
gc.set_threshold(100_000, 50, 100)
f837, f835, work = sys.argv[1:4]
out = {}
from edi_pipeline.core import values
def timed(name, fn):  # each step starts with empty value caches, as a fresh command does
    for memo in (values.to_date, values.to_decimal, values.cents, values.cents_text):
        memo.cache.clear()
    t = time.perf_counter(); fn(); out[name] = time.perf_counter() - t
timed("pyx12 X12Reader plain read", lambda: sum(1 for _ in pyx12.x12file.X12Reader(f837)))
timed("pyx12 X12Reader plain read (835)", lambda: sum(1 for _ in pyx12.x12file.X12Reader(f835)))
timed("typed 837P parse (iter_records)", lambda: sum(1 for _ in iter_records(f837)))
with open(os.devnull, "w") as devnull:
    timed("parse to NDJSON (to_ndjson)", lambda: to_ndjson(f837, devnull))
def remove_store(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
made = []
def fresh_store(name):  # removed again at the end: a rerun of the bench leaves no store behind
    made.append(os.path.join(work, name))
    remove_store(made[-1])
    return Store(made[-1])
store = fresh_store("lib-scrub.db")
timed("scrub (scrub_file, store)", lambda: scrub_file(f837, os.path.join(work, "lib.837"),
                                                     os.path.join(work, "lib.rejects.837"), store))
store2 = fresh_store("lib-remit.db")
ingest_file(f837, store2)
timed("ingest+reconcile (835)", lambda: (ingest_file(f835, store2), reconcile(store2)))
store.close(); store2.close()
for path in made:
    remove_store(path)
print(json.dumps(out))
"""


ANALYTICS_SECONDS, ANALYTICS_RSS_MB = 60, 300  # issue 16: each analytics command on a 1,000,000-claim store


def analytics_store(claims: int, seed: int, work: Path) -> Path:
    """A store of `claims` generated claims (no rule tripped) and their 835s, built once per --work folder."""
    db = work / f"analytics-{claims}.db"
    if db.exists():
        return db
    gen = work / f"analytics-gen-{claims}"
    subprocess.run([PY, str(ROOT / "scripts" / "generate.py"), "--claims", str(claims), "--seed", str(seed),
                    "--out", str(gen), "--trip-rate", "0"], check=True, stdout=subprocess.DEVNULL)
    tmp = db.with_suffix(".building.db")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    for suffix in ("837", "835"):
        seconds, rss, code = run(cli("ingest", str(gen / f"gen-{claims}.{suffix}"), "--db", str(tmp)))
        print(f"  built: ingest {suffix} {seconds:6.1f} s {rss:5d} MB exit {code}", flush=True)
    run(cli("reconcile", "--db", str(tmp), "--format", "csv"))  # checkpoints the WAL into the file
    for p in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    tmp.rename(db)
    shutil.rmtree(gen, ignore_errors=True)
    return db


def bench_analytics(claims: int, seed: int, work: Path, json_path: str | None) -> int:
    """The analytics commands on a store of `claims` claims and their payments, each once in a fresh
    process: seconds and peak RSS against the targets (< 60 s, <= 300 MB at 1,000,000 claims)."""
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "edi_pipeline")], check=True)
    print(f"analytics on a store of {claims:,} generated claims and their 835s (built once in {work})", flush=True)
    db = analytics_store(claims, seed, work)
    out = work / "analytics-out"
    out.mkdir(exist_ok=True)
    steps = {
        "reconcile --format csv": ["reconcile", "--format", "csv"],
        "reconcile --format json (lines)": ["reconcile", "--format", "json"],
        "denials --format csv": ["denials", "--format", "csv"],
        "report": ["report", "-o", str(out / "report.html")],
        "worklist --format csv": ["worklist", "--format", "csv"],
    }
    rows = []
    print(f"{'command':34} {'seconds':>8} {'claims/s':>9} {'peak RSS':>9}  exit  (targets at 1,000,000: "
          f"< {ANALYTICS_SECONDS} s, <= {ANALYTICS_RSS_MB} MB)")
    for name, args in steps.items():
        seconds, rss, code = run(cli(*args, "--db", str(db), "--as-of", "2026-12-31")
                                 if name != "denials --format csv" else cli(*args, "--db", str(db)))
        ok = seconds < ANALYTICS_SECONDS and rss <= ANALYTICS_RSS_MB and code == 0
        rows.append({"step": name, "seconds": round(seconds, 2), "peak_rss_mb": rss, "exit": code, "ok": ok})
        print(f"{name:34} {seconds:8.2f} {round(claims / seconds):>9,} {rss:6d} MB  {code:4d}  "
              f"{'ok' if ok else 'OVER'}", flush=True)
    print(f"load average during the run: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    if json_path:
        Path(json_path).write_text(json.dumps({"claims": claims, "analytics": rows}, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=None, help="Folder for generated files (default: a temp folder).")
    ap.add_argument("--skip-pyx12-validate", action="store_true", help="Skip the slow pyx12 validation reference.")
    ap.add_argument("--rss-gb", type=float, default=0, help="Also parse a generated file of about this many GB.")
    ap.add_argument("--repeat", type=int, default=3, help="Runs per step; the median is reported (default 3).")
    ap.add_argument("--json", help="Also write the figures here.")
    ap.add_argument("--ncci-rows", type=int, default=1_000_000,
                    help="PTP rows of the full NCCI tables imported for 'scrub, full NCCI tables' (default 1,000,000).")
    ap.add_argument("--analytics", type=int, metavar="CLAIMS",
                    help="Only time reconcile, denials, report and worklist on a store of this many generated "
                         "claims and their payments (built once in --work; 1,000,000 takes minutes to ingest).")
    ap.add_argument("--issue-table", action="store_true",
                    help="Only issue 13's table: batch, validate and scrub as ratios to convert --to ndjson.")
    args = ap.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="edi-bench-"))
    if args.issue_table:
        subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "edi_pipeline")], check=True)
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
              "every step one command per file in a fresh process (the batch: one over the inbox)")
        rows = issue_table(args.claims, args.seed, work, args.repeat)
        if args.json:
            Path(args.json).write_text(json.dumps({"claims": args.claims, "issue_table": rows}, indent=1))
        return 0
    if args.analytics:
        return bench_analytics(args.analytics, args.seed, work, args.json)
    f837, f835 = generate(args.claims, args.seed, work / "gen")
    mb837 = f837.stat().st_size / 1e6
    mb835 = f835.stat().st_size / 1e6
    n = args.claims
    rows: list[dict] = []

    def step(name: str, cmds: list[list[str]], count: int, mb: float, ref: dict | None = None,
             unit: str = "claims/s", reset=None, repeat: int | None = None) -> dict:
        """Time `cmds` (run one after the other: one step) `repeat` times, after `reset()` each time;
        report the median time and the largest peak RSS."""
        times, peak, code = [], 0, 0
        for _ in range(repeat or args.repeat):
            if reset:
                reset()
            total = 0.0
            for cmd in cmds:
                seconds, rss, c = run(cmd)
                total += seconds
                peak, code = max(peak, rss), code or c
            times.append(total)
        return record(name, statistics.median(times), peak, code, count, mb, ref, unit)

    def record(name: str, seconds: float, rss: int, code: int, count: int, mb: float,
               ref: dict | None = None, unit: str = "claims/s") -> dict:
        row = {"step": name, "seconds": round(seconds, 3), "claims_per_s": round(count / seconds),
               "mb_per_s": round(mb / seconds, 2), "peak_rss_mb": rss, "exit": code}
        if ref:
            row["vs"] = ref["step"]
            row["ratio"] = round(ref["seconds"] / seconds, 2)
        rows.append(row)
        versus = f"  {row['ratio']:5.2f}x {ref['step']}" if ref else ""
        print(f"{name:36} {seconds:7.2f} s {row['claims_per_s']:>8,} {unit:10} {row['mb_per_s']:6.2f} MB/s "
              f"{rss:5d} MB  exit {code}{versus}", flush=True)
        return row

    def fresh_db(path: Path, claims_from: Path | None = None):
        """A reset for step(): an empty store at `path`, or one holding `claims_from`'s claims (copied
        from a template made once, untimed)."""
        template = path.with_suffix(".template.db")
        if claims_from is not None:
            template.unlink(missing_ok=True)
            run(cli("ingest", str(claims_from), "--db", str(template)))
            run(cli("reconcile", "--db", str(template), "--format", "csv"))  # checkpoints the WAL into the file

        def reset() -> None:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
            if claims_from is not None:
                shutil.copyfile(template, path)
        return reset

    # Load edi_pipeline from bytecode, as an installed wheel does (editable installs under
    # PYTHONDONTWRITEBYTECODE would otherwise recompile every module in every command).
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "edi_pipeline")], check=True)
    payments = count_payments(f835)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; files: {f837.name} {mb837:.1f} MB ({n:,} claims), "
          f"{f835.name} {mb835:.1f} MB ({payments:,} claim payments)")
    print(f"every step is one command in a fresh process, median of {args.repeat} runs; the last column is its "
          "speed over its pyx12 reference\n")
    ref_read = step("pyx12 X12Reader plain read (837)", [[PY, "-c", PYX12_READ, str(f837)]], n, mb837)
    ref_read835 = step("pyx12 X12Reader plain read (835)", [[PY, "-c", PYX12_READ, str(f835)]], payments, mb835,
                       unit="payments/s")
    parse = step("parse: convert --to ndjson", [cli("convert", str(f837), "--to", "ndjson", "-o", os.devnull,
                                                    "--quiet")], n, mb837, ref=ref_read)
    # The scrub with the shipped NCCI tables, and with CMS-sized ones imported beside the store (they replace
    # the shipped ones): run in turn, so a busy machine slows both alike.
    db, db_full = work / "bench.db", work / "bench-ncci.db"
    ncci_files = full_ncci_files(work / "ncci", args.ncci_rows)
    Path(f"{db_full}.ncci.sqlite").unlink(missing_ok=True)
    ncci_import = step(f"ncci import ({args.ncci_rows:,} PTP rows)",
                       [cli("ncci", "import", *map(str, ncci_files), "--db", str(db_full), "--effective", "2000-01-01")],
                       args.ncci_rows, sum(p.stat().st_size for p in ncci_files) / 1e6, unit="rows/s", repeat=1)
    runs: dict[str, list] = {"shipped": [], "full": []}
    for _ in range(args.repeat):
        for key, path in (("shipped", db), ("full", db_full)):
            fresh_db(path)()
            runs[key].append(run(cli("scrub", str(f837), "-o", str(work / "out.837"), "--rejects",
                                     str(work / "rejects.837"), "--report", str(work / "report.json"),
                                     "--db", str(path))))
    scrub, scrub_full = (record(name, statistics.median(r[0] for r in runs[key]), max(r[1] for r in runs[key]),
                                max(r[2] for r in runs[key]), n, mb837, ref_read)
                         for name, key in (("scrub end to end (fresh store)", "shipped"),
                                           ("scrub, full NCCI tables imported", "full")))
    Path(f"{db_full}.ncci.sqlite").unlink(missing_ok=True)
    db2 = work / "remit.db"
    ingest = step("ingest+reconcile (835), 2 commands",
                  [cli("ingest", str(f835), "--db", str(db2)), cli("reconcile", "--db", str(db2), "--format", "json")],
                  payments, mb835, ref=ref_read835, unit="payments/s", reset=fresh_db(db2, claims_from=f837))
    # The batch job's path for an 835 (ingest, then reconcile), one command, on a store holding the claims.
    db3, inbox835, out835 = work / "remit-batch.db", work / "inbox835", work / "out835"
    shutil.rmtree(inbox835, ignore_errors=True)
    inbox835.mkdir()
    shutil.copyfile(f835, inbox835 / f835.name)
    reset_db3 = fresh_db(db3, claims_from=f837)

    def reset_batch835() -> None:
        reset_db3()
        shutil.rmtree(out835, ignore_errors=True)

    batch835 = step("batch: 835 ingest, then reconcile",
                    [cli("batch", str(inbox835), "--out", str(out835), "--db", str(db3), "--quiet", "--settle", "0")],
                    payments, mb835, ref=ref_read835, unit="payments/s", reset=reset_batch835)
    ref_val = None
    if not args.skip_pyx12_validate:  # about 15x slower than the rest: once
        ref_val = step("pyx12 validation (x12n_document)", [[PY, "-c", PYX12_VALIDATE, str(f837)]], n, mb837,
                       repeat=1)
    validate = step("validate", [cli("validate", str(f837))], n, mb837, ref=ref_val)

    inbox = work / "inbox"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir()
    parts = 4
    for k in range(parts):
        p837, p835 = generate(n // parts, args.seed + 100 + k, work / f"part{k}")
        shutil.copyfile(p837, inbox / f"part{k}.837")
        shutil.copyfile(p835, inbox / f"part{k}.835")
    mb_inbox = sum(p.stat().st_size for p in inbox.iterdir()) / 1e6
    batch = {}
    # Reference for the batch: pyx12 reading the same claims' 837 and 835 (its two plain reads).
    ref_both = {"step": "pyx12 plain reads (837+835)", "seconds": ref_read["seconds"] + ref_read835["seconds"]}
    for workers in (1, 2):
        out = work / f"batch{workers}"
        batch[workers] = step(f"batch --workers {workers}",
                              [cli("batch", str(inbox), "--out", str(out), "--quiet", "--settle", "0",
                                   "--workers", str(workers))],
                              n, mb_inbox, ref=ref_both, reset=lambda out=out: shutil.rmtree(out, ignore_errors=True))

    print("\nin one process (no interpreter start-up), same files:", flush=True)
    lib = json.loads(subprocess.run([PY, "-c", LIBRARY, str(f837), str(f835), str(work)], check=True,
                                    capture_output=True, text=True).stdout)
    for name, seconds in lib.items():
        is835 = "835" in name
        count = payments if is835 else n
        ref_name = "pyx12 X12Reader plain read (835)" if is835 else "pyx12 X12Reader plain read"
        ratio = "" if name.startswith("pyx12") else f"  {lib[ref_name] / seconds:5.1f}x {ref_name}"
        rows.append({"step": f"library: {name}", "seconds": round(seconds, 3),
                     "claims_per_s": round(count / seconds)})
        print(f"  {name:34} {seconds:6.2f} s {round(count / seconds):>9,} {'payments/s' if is835 else 'claims/s'}"
              f"{ratio}", flush=True)

    if args.rss_gb:
        big_claims = int(args.rss_gb * 1e9 / (f837.stat().st_size / n))
        b837, _ = generate(big_claims, args.seed, work / "big")
        step(f"parse {b837.stat().st_size / 1e9:.2f} GB 837P (RSS)",
             [cli("convert", str(b837), "--to", "ndjson", "-o", os.devnull, "--quiet")], big_claims,
             b837.stat().st_size / 1e6, repeat=1)

    def ratio(a: dict | None, b: dict | None) -> str:
        if a and b and a.get("vs") == b["step"]:
            return f"{a['ratio']:.2f}x"  # the figure its row printed
        return f"{b['seconds'] / a['seconds']:.2f}x" if a and b else "n/a"

    print()
    print(f"parse vs pyx12 plain read:       {ratio(parse, ref_read)}  {parse['claims_per_s']:>7,} claims/s"
          "   (target >= 4x and >= 30,000 claims/s)")
    print(f"scrub vs pyx12 plain read:       {ratio(scrub, ref_read)}  {scrub['claims_per_s']:>7,} claims/s"
          "   (target >= 3x and >= 20,000 claims/s)")
    print(f"scrub, full NCCI tables:         {scrub_full['seconds'] / scrub['seconds']:.2f}x the shipped tables' time"
          f"   (target <= 1.10x); ncci import {ncci_import['seconds']:.1f} s (target < 60 s)")
    print(f"ingest+reconcile vs pyx12 read:  {ratio(ingest, ref_read835)}  {ingest['claims_per_s']:>7,} payments/s"
          " (target >= 20,000 payments/s)")
    print(f"  the same as batch's 835 step:  {ratio(batch835, ref_read835)}  "
          f"{batch835['claims_per_s']:>7,} payments/s")
    print(f"validate vs pyx12 validation:    {ratio(validate, ref_val)}  {validate['claims_per_s']:>7,} claims/s"
          "   (target >= 10x)")
    print(f"batch 2 workers vs 1:            {ratio(batch[2], batch[1])}   (target: grows with --workers)")
    if args.json:
        Path(args.json).write_text(json.dumps({"claims": n, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
