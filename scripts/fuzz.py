"""Long fuzz run: damage fixture files at random and feed them to every command; save any input that crashes.

    python scripts/fuzz.py --iterations 5000 --seed 7 --crashes /tmp/crashes

A crash is an exception other than SystemExit, an exit code other than 0/1 (3 is an internal error), an
`internal error` line or a traceback in the output (batch names a file that hit one so), or a temporary
file left behind. Not a test: the hypothesis tests run a short version in CI.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edi_pipeline.cli.commands import cli  # noqa: E402

COMMANDS = [  # `-` reads the damaged input from stdin; the store commands read what ingest and batch stored
    ["convert", "{f}", "--to", "ndjson", "-o", "{d}/o.ndjson"],
    ["convert", "{f}", "--to", "json", "-o", "{d}/o.json"],
    ["convert", "{f}", "--to", "xml", "-o", "{d}/o.xml"],
    ["convert", "{f}", "--to", "csv", "-o", "{d}/o.csv"],
    ["convert", "-", "--to", "x12", "-o", "{d}/o.x12"],
    ["validate", "{f}", "--ack-dir", "{d}/acks"],
    ["scrub", "{f}", "-o", "{d}/s.837", "--rejects", "{d}/r.837", "--report", "{d}/rep.json", "--db", "{d}/s.db"],
    ["ingest", "-", "--db", "{d}/i.db"],
    ["batch", "{d}/inbox", "--out", "{d}/out", "--quiet", "--settle", "0"],
    ["reconcile", "--db", "{d}/i.db", "--format", "json"],
    ["denials", "--db", "{d}/out/edi_pipeline.db", "--format", "csv"],
    ["report", "--db", "{d}/i.db", "-o", "{d}/report.html"],
]
SWAPS = [(b"*", b"~"), (b"~", b"*"), (b":", b"*"), (b"*", b"|"), (b"~", b"\n"), (b"\n", b""), (b"~", b"~~")]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(["truncate", "swap", "drop", "dup", "stray", "flip", "splice"])
        segs = bytes(out).split(b"~")
        if op == "truncate":
            out = out[: rng.randint(0, len(out))]
        elif op == "swap":
            a, b = rng.choice(SWAPS)
            out = bytearray(bytes(out).replace(a, b, rng.randint(1, 8)))
        elif op in ("drop", "dup", "splice") and len(segs) > 2:
            k = rng.randrange(len(segs))
            if op == "drop":
                segs.pop(k)
            elif op == "dup":
                segs.insert(k, segs[k])
            else:
                segs.insert(rng.randrange(len(segs)), segs[k])
            out = bytearray(b"~".join(segs))
        elif op == "stray":
            at = rng.randint(0, len(out))
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        elif op == "flip" and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--crashes", default="fuzz-crashes", help="Folder for inputs that crashed.")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = [p.read_bytes() for p in sorted((ROOT / "fixtures" / "edi").glob("*.8*"))]
    runner = CliRunner()
    crashes = 0
    t0 = time.time()
    for it in range(args.iterations):
        data = mutate(rng, rng.choice(seeds))
        d = Path(tempfile.mkdtemp(prefix="fuzz-"))
        f = d / "in.edi"
        f.write_bytes(data)
        (d / "inbox").mkdir()
        (d / "inbox" / "in.edi").write_bytes(data)
        try:
            for cmd in COMMANDS:
                r = runner.invoke(cli, [a.format(f=f, d=d) for a in cmd], input=data if "-" in cmd else None)
                bad = (r.exit_code not in (0, 1) or "Traceback" in r.output or "internal error" in r.output
                       or (r.exception is not None and not isinstance(r.exception, SystemExit))
                       or list(d.rglob(".*.tmp")))
                if bad:
                    crashes += 1
                    keep = Path(args.crashes)
                    keep.mkdir(parents=True, exist_ok=True)
                    (keep / f"crash-{args.seed}-{it}.edi").write_bytes(data)
                    print(f"iteration {it}: {cmd[0]} exit {r.exit_code} {r.exception!r}", flush=True)
                    break
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if (it + 1) % 100 == 0:
            print(f"{it + 1} inputs, {crashes} crashes, {time.time() - t0:.0f} s", flush=True)
    print(f"done: {args.iterations} inputs x {len(COMMANDS)} commands, {crashes} crashes")
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
