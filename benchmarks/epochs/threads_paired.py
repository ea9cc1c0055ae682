"""Default threads against one, as paired loss-and-gradient passes: the thread policy's figure on a noisy machine.

    python benchmarks/epochs/threads_paired.py [--pairs 200] [--busy] [--wide-pairs 8]

For 64-32-10 tanh/softmax on 10,000 samples (and, with --wide-pairs above 0, 784-1000-1000-10 on 10,000), one
process times `loss_and_grad` of the same module at `threads=None` and `threads=1`, and of a module built with one
chunk (the threshold before issue 22: PARALLEL_MIN_WORK 5e8, no chunks at these sizes), one right after the other,
the order rotating each round. A load change hits the three alike, so the ratio of each round's times is the
figure: its median and quartiles are printed, with the load. --busy spins a process on one core meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def modules(workload, X, Y, folder):
    """(the module with this tree's chunk policy, one built with one chunk)."""
    from symcompile import dense

    chunked = compare.Symcompile(workload, X, Y, folder)
    before = dense.PARALLEL_MIN_WORK
    dense.PARALLEL_MIN_WORK = 500_000_000 if workload.layers[1] < 1000 else 10**15
    try:
        one_chunk = compare.Symcompile(dataclasses.replace(workload, name=workload.name + "-one-chunk"), X, Y, folder)
    finally:
        dense.PARALLEL_MIN_WORK = before
    return chunked, one_chunk


def paired(workload, pairs, folder):
    X, Y = compare.data(workload)
    chunked, one_chunk = modules(workload, X, Y, folder)
    variants = {"default threads": (chunked, None), "threads=1": (chunked, 1), "one chunk (before)": (one_chunk, 1)}
    names = list(variants)
    times = {name: [] for name in names}
    gradients = {}
    for r in range(pairs):
        for name in names[r % 3 :] + names[: r % 3]:
            sym, threads = variants[name]
            start = time.perf_counter()
            gradients[name] = sym.one_pass(threads)[1]
            times[name].append(time.perf_counter() - start)
    same = np.array_equal(gradients["default threads"], gradients["threads=1"])
    print(f"\n{workload.name}, {pairs} rounds; gradient at default threads == at threads=1, bit for bit: {same}")
    print("| pass | median | ratio to threads=1 (median of rounds) | quartiles of the ratio |")
    print("| --- | --- | --- | --- |")
    base = np.array(times["threads=1"])
    for name in names:
        ratio = np.array(times[name]) / base
        q1, q3 = np.percentile(ratio, [25, 75])
        print(
            f"| {name} | {statistics.median(times[name]) * 1e3:.2f} ms | {np.median(ratio):.3f} | {q1:.3f}-{q3:.3f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--wide-pairs", type=int, default=0)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.wide_pairs < 0:
        parser.error("--pairs must be at least 1 and --wide-pairs at least 0")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{'busy (a process spinning on one core)' if args.busy else 'no extra load'}; uptime: {uptime}")
    spinner = compare.spinner() if args.busy else None
    try:
        with tempfile.TemporaryDirectory(prefix="symcompile-threads-") as folder:
            by_name = {w.name: w for w in compare.WORKLOADS}
            paired(by_name["64-32-10x10k"], args.pairs, folder)
            if args.wide_pairs:
                paired(by_name["784-1000-1000-10"], args.wide_pairs, folder)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    print(f"\nuptime at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
