"""Issue 19, item 12: the peak memory of `train examples/xor.toml --max-iter N --history h.csv` for N = 10^3 (the
process's own size) up to 10^8, to show that a long run's history costs bounded memory.

    python benchmarks/robustness/history_memory.py [--largest 8]   # 10^3, 10^6 .. 10^largest; exit 1 if unbounded

Each run is a fresh process on a warm Numba cache (a first run compiled it); its peak resident memory is the
kernel's (`os.wait4`'s ru_maxrss of that child alone). Columns: the history file's rows (iteration 0, every
k-th, the last), k (the stride between rows), its size, the loop's wall time as train printed it. The check: the
peak of the largest run within 50 MB of the 10^6 run's, and no history longer than 2^16 + 2 rows.
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import EXAMPLES, ROOT, command, documented, environment, table, uptime

MAX_RECORDED = 2**16  # symcompile.runtime.training.MAX_RECORDED, which the README states
BOUND_MB = 50


def peak_run(argv, folder):
    """(exit status, stdout, peak resident MB) of one fresh process."""
    process = subprocess.Popen(command(argv, folder), cwd=ROOT, env=environment(folder), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, out, usage.ru_maxrss / 1024  # KiB on Linux


def history_figures(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    iterations = [int(r[0]) for r in rows]
    stride = iterations[2] - iterations[1] if len(iterations) > 2 else 1
    return len(rows), stride, path.stat().st_size / 1e6


def readme_policy():
    """Where the documentation states the history policy, and the sentence, or None."""
    return documented(r"A run keeps at most 2\^16 values of each history.*?says which")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=int, default=8, help="the largest run is 10^LARGEST iterations")
    args = parser.parse_args()
    print(f"load before: {uptime()}", flush=True)
    rows, peaks = [], {}
    with tempfile.TemporaryDirectory(prefix="symcompile-history-") as scratch:
        folder = Path(scratch)
        train = ["train", str(EXAMPLES / "xor.toml"), "--no-progress"]
        peak_run([*train, "--max-iter", "1000"], folder)  # builds and compiles: the runs below load the cache
        for power in (3, *range(6, args.largest + 1)):
            history = folder / f"h{power}.csv"
            status, out, peak = peak_run([*train, "--max-iter", str(10**power), "--history", str(history)], folder)
            if status != 0:
                raise SystemExit(f"10^{power}: exit {status}\n{out}")
            wall = re.search(r"wall time\s+([0-9.]+) ms", out).group(1)
            count, stride, megabytes = history_figures(history)
            peaks[power] = peak
            rows.append(
                [f"10^{power}", f"{float(wall) / 1e3:.1f} s", f"{peak:.0f} MB", count, stride, f"{megabytes:.2f} MB"]
            )
            print(table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(HEADER, rows))
    policy = readme_policy()
    print(f"\nthe documentation's history policy: {': '.join(map(str, policy)) if policy else 'MISSING'}")
    print(f"load after: {uptime()}")
    growth = peaks[args.largest] - peaks[6] if args.largest >= 6 else 0
    longest = max(row[3] for row in rows)
    print(f"growth from 10^6 to 10^{args.largest} iterations: {growth:+.0f} MB; longest history {longest} rows")
    return 0 if growth <= BOUND_MB and longest <= MAX_RECORDED + 2 and policy else 1


HEADER = ["iterations", "loop", "peak RSS", "history rows", "every k-th", "history size"]

if __name__ == "__main__":
    sys.exit(main())
