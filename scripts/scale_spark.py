"""Throughput of spark-batch (local[1], local[2]) against batch (1 and 2 workers), in one run.

Generates N claims in M 837P files (and their 835s) with scripts/generate.py, then runs each runner in its
own process over a copy of that inbox, timing it and sampling the memory (RSS) of its process tree every
0.2 s: for Spark, the driver JVM (in local mode also the executor) and the largest Python worker; for
batch, the largest process. Not a test: run it by hand and quote the figures (README, "Spark runner").

    python3 scripts/scale_spark.py --claims 50000 --files 10 --work /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def _rss_mb(pid: int) -> tuple[float, str]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return 0.0, ""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024, cmd
    return 0.0, cmd


def measure(cmd: list[str], env: dict, log: Path) -> dict:
    """Run `cmd`; its wall time and peak RSS: per kind of process (jvm, python worker, other) the largest.
    Its stderr goes to `log` (a failed run's error line is then kept, and the run's rc says it failed)."""
    t0 = time.perf_counter()
    err = open(log, "w")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    peaks = {"jvm": 0.0, "python_worker": 0.0, "main": 0.0}
    total = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            s = 0.0
            for p in _tree(proc.pid):
                mb, c = _rss_mb(p)
                s += mb
                kind = "jvm" if "java" in c.split(" ", 1)[0] else "python_worker" if p != proc.pid else "main"
                peaks[kind] = max(peaks[kind], mb)
            total[0] = max(total[0], s)
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    err.close()
    done.set()
    t.join()
    return {"seconds": round(time.perf_counter() - t0, 1), "rc": proc.returncode,
            "peak_rss_mb": {k: round(v) for k, v in peaks.items()}, "peak_tree_rss_mb": round(total[0]),
            "stdout": out[-2000:]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=50_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--work", default="/tmp/edi-scale-spark")
    ap.add_argument("--claims-per-st", type=int, default=100,
                    help="one claim that breaks the TR3 makes its set's 999 reject the whole set: keep sets small")
    ap.add_argument("--trip-rate", type=float, default=0.02, help="share of claims that trip a rule (generate.py)")
    ap.add_argument("--skip", default="", help="comma-separated runs to leave out (batch1,batch2,spark1,spark2)")
    args = ap.parse_args(argv)
    from generate import generate

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    per = max(1, args.claims // args.files)
    for k in range(args.files):
        p7, p5, _ = generate(per, 1000 + k, work / f"gen{k}", args.claims_per_st, 1, args.trip_rate)
        p7.rename(inbox / f"gen-{k:03d}.837")
        p5.rename(inbox / f"gen-{k:03d}.835")
        shutil.rmtree(work / f"gen{k}")
    size = sum(p.stat().st_size for p in inbox.iterdir())
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDI_SCRUB_DATE="2026-12-01")
    exe = [sys.executable, "-m", "edi_pipeline"]
    runs = {
        "batch1": lambda out: exe + ["batch", str(out / "inbox"), "--out", str(out), "--workers", "1", "--settle", "0", "--quiet"],
        "batch2": lambda out: exe + ["batch", str(out / "inbox"), "--out", str(out), "--workers", "2", "--settle", "0", "--quiet"],
        "spark1": lambda out: exe + ["spark-batch", str(inbox), "--out", str(out), "--master", "local[1]",
                                     "--format", "json"],
        "spark2": lambda out: exe + ["spark-batch", str(inbox), "--out", str(out), "--master", "local[2]",
                                     "--format", "json"],
    }
    results = {"claims": per * args.files, "files": args.files * 2, "input_mb": round(size / 1e6, 1)}
    for name, cmd in runs.items():
        if name in args.skip.split(","):
            continue
        out = work / name
        if name.startswith("batch"):  # batch takes its inbox's files away: a copy each
            shutil.copytree(inbox, out / "inbox")
        out.mkdir(parents=True, exist_ok=True)
        r = measure(cmd(out), env, work / f"{name}.stderr")
        r["claims_per_second"] = round(results["claims"] / r["seconds"]) if r["seconds"] else None
        if name.startswith("spark"):
            try:
                r["summary"] = json.loads(r["stdout"])["claims"]
            except ValueError:
                pass
        del r["stdout"]
        results[name] = r
        print(name, json.dumps(r), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
