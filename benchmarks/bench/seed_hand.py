"""The seed's compiled train() against hand-written Numba backprop, interleaved: `python -m benchmarks.bench.seed_hand`.

Simultaneous gradient descent on the blog's network and sample (lr 0.3), `--iterations` per timed call;
each round times every row once, in turn, so all rows see the same machine load; medians per iteration.

`--processes K` repeats the whole measurement in K new processes and prints each one's ratio of the compiled
`train(record_every=0)` to the stable hand loop, and their median: one process's figure moves with where its
code and arrays land.

Rows: the committed module (generated/seed_mlp.py) `train(update="simultaneous", tol=0)` with
record_every=0 (no loss history kept) and with record_every=1; `benchmarks.bench.numba_seed.train_stable`
(backprop by hand with the module's stable sigmoid and softplus, no history: the same arithmetic as the
module, without its checks); `numba_seed.train` (backprop by hand with plain exp/log and the loss recorded
each iteration). Every row's final weights are compared with the module's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench import numba_seed
from benchmarks.bench.timing import format_seconds, load_average
from symcompile.writer import load_module

SEED_MODULE = Path(__file__).resolve().parents[2] / "generated" / "seed_mlp.py"
LR = 0.3


def runners(module, iterations):
    """{row name: run() -> final weights}."""
    X, Y, w0 = module.X, module.Y, np.asarray(module.INIT, dtype=float)

    def compiled(record_every):
        return lambda: module.train(w0, X, Y, lr=LR, max_iter=iterations, tol=0.0, update="simultaneous",
                                    record_every=record_every).w  # fmt: skip

    def hand_stable():
        w = w0.copy()
        numba_seed.train_stable(w, X, Y, LR, iterations)
        return w

    def module_kernel():
        w = w0.copy()
        numba_seed.train_with_kernel(module._loss_and_grad_kernel, w, X, Y, LR, iterations)
        return w

    def hand_plain():
        w = w0.copy()
        numba_seed.train(w, X, Y, LR, iterations, np.empty(iterations + 1))
        return w

    return {
        "compiled train(record_every=0)": compiled(0),
        "hand-written Numba backprop, stable sigmoid/softplus, no history": hand_stable,
        "compiled train(record_every=1)": compiled(1),
        "the module's loss-and-gradient kernel in a bare compiled loop": module_kernel,
        "hand-written Numba backprop, plain exp/log, loss each iteration": hand_plain,
    }


HAND = "hand-written Numba backprop, stable sigmoid/softplus, no history"
COMPILED = "compiled train(record_every=0)"


def measure(iterations, rounds):
    """({row: per-iteration seconds of each round}, {row: max relative weight difference from COMPILED})."""
    module = load_module(SEED_MODULE)
    rows = runners(module, iterations)
    finals = {name: run() for name, run in rows.items()}  # compiles (or loads from Numba's cache)
    seconds = {name: [] for name in rows}
    for _ in range(rounds):
        for name, run in rows.items():
            start = time.perf_counter()
            finals[name] = run()
            seconds[name].append((time.perf_counter() - start) / iterations)
    reference = finals[COMPILED]
    return seconds, {
        name: float(np.max(np.abs(w - reference)) / np.max(np.abs(reference))) for name, w in finals.items()
    }


def print_table(seconds, differences):
    base = statistics.median(seconds[HAND])
    print("| implementation | per iteration (median) | min - max | x hand-written (stable) | max rel weight diff |")
    print("| --- | --- | --- | --- | --- |")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"| {name} | {format_seconds(median)} | {format_seconds(min(times))} - {format_seconds(max(times))} | "
              f"{median / base:.3f} | {differences[name]:.1e} |")  # fmt: skip


def in_processes(count, iterations, rounds, say=print):
    """The measurement in `count` new processes, one after another: where code and arrays land differs from
    process to process, and moved the seed's compiled loop by up to a sixth against the same hand loop.
    Returns each process's medians per iteration {"compiled": [...], "hand": [...], "ratios": [...]}."""
    ratios, medians = [], {"compiled": [], "hand": []}
    for _ in range(count):
        command = [sys.executable, "-m", "benchmarks.bench.seed_hand", "--iterations", str(iterations),
                   "--rounds", str(rounds), "--json"]  # fmt: skip
        root = Path(__file__).resolve().parents[2]  # the checkout, where `-m benchmarks...` finds the package
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root)
        seconds = json.loads(done.stdout)["seconds"]
        ratio = statistics.median(seconds[COMPILED]) / statistics.median(seconds[HAND])
        ratios.append(ratio)
        medians["compiled"].append(statistics.median(seconds[COMPILED]))
        medians["hand"].append(statistics.median(seconds[HAND]))
        say(f"process {len(ratios)}: {COMPILED} {format_seconds(statistics.median(seconds[COMPILED]))}, hand "
              f"{format_seconds(statistics.median(seconds[HAND]))}: {ratio:.3f}x")  # fmt: skip
    say(
        f"median over {count} processes: {statistics.median(ratios):.3f}x (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    return {**medians, "ratios": ratios}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench.seed_hand", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--iterations", type=int, default=200_000, help="iterations per timed call (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=0,
                        help="repeat in this many new processes and print each one's ratio and their median")  # fmt: skip
    parser.add_argument("--json", action="store_true",
                        help="print the raw seconds as JSON (what --processes reads); with --processes, each "
                             "process's medians and ratio")  # fmt: skip
    args = parser.parse_args(argv)
    print_load = not args.json
    if print_load:
        print(f"load average at start: {load_average()}; {args.iterations} iterations per call, {args.rounds} rounds")
    if args.processes:
        figures = in_processes(args.processes, args.iterations, args.rounds, say=_silent if args.json else print)
        if args.json:
            print(json.dumps(figures))
    else:
        seconds, differences = measure(args.iterations, args.rounds)
        if args.json:
            print(json.dumps({"seconds": seconds, "differences": differences}))
        else:
            print_table(seconds, differences)
    if print_load:
        print(f"load average at end: {load_average()}")


def _silent(line):
    pass


if __name__ == "__main__":
    main()
