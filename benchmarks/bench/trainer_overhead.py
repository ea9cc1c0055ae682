"""What the trainer's Python layer and the loss history cost on the seed's 999 sequential iterations.

    python -m benchmarks.bench.trainer_overhead [generated folder] [repeats] [another seed_mlp.py]

Rows, side by side in one run (CPU time per call, medians of interleaved repeats, so that other
processes on a shared machine count less): one direct call of the runtime's compiled full-batch loop
(`symcompile.runtime.loops.train_full_batch`, with the module's kernels);
the same loop through the runtime's `train_in_chunks` (the chunk driver: chunk sizing, Ctrl-C handling,
history slicing); `train()` (its argument checks too); `train()` with the driver replaced by one direct call
of the loop (what chunking costs a whole `train()`); and `train(record_every=0)`. Then the same rows
for one iteration, where the loop takes almost no time, so that the fixed Python cost of each row
stands out, as microseconds above the direct call and as a share of the 999 iterations' direct call.
Given another build of the seed module (main's, say), its `train()` and
`train(update="simultaneous")` run beside this one's.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks.bench.full_batch_run import NO_VALIDATION_HISTORIES, FullBatchRun
from symcompile.runtime import loops, training

DIRECT = "one direct call of the compiled loop"


def _seed_module(folder):
    sys.path.insert(0, folder)
    import seed_mlp

    return seed_mlp


def _other_module(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_mlp_other", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["seed_mlp_other"] = module
    spec.loader.exec_module(module)
    return module


def _one_piece(loop, arguments, run, max_iter, record_every, first_guess, progress):
    """A stand-in for `symcompile.runtime.training.train_in_chunks` that calls the compiled loop once for the
    whole run (no chunks, no Ctrl-C handling, no progress), as the trainer did before chunking; full-batch,
    without validation."""
    losses = np.empty(max_iter + 1)
    status = loop(*arguments, max_iter, max_iter, losses, *NO_VALIDATION_HISTORIES)
    return status, losses[: int(run[loops.ITERATION]) + 1 : record_every or max_iter + 2], *NO_VALIDATION_HISTORIES


def cases(m, n):
    """The rows for `n` iterations of the seed's sequential rule."""
    setup = FullBatchRun(m, "sequential", m.INIT, m.X, m.Y)
    first_guess = training.FIRST_GUESS * m.X.shape[0] * len(m.INIT)
    chunked_driver = training.train_in_chunks

    def direct():
        setup.restart(m.INIT)
        setup.loop(*setup.arguments, n, n, np.empty(n + 1), *NO_VALIDATION_HISTORIES)

    def chunked():
        setup.restart(m.INIT)
        chunked_driver(setup.loop, setup.arguments, setup.run, n, 1, first_guess, False)

    def train_in_one_piece():
        training.train_in_chunks = _one_piece  # train looks the driver up in the runtime at each call
        try:
            m.train(max_iter=n)
        finally:
            training.train_in_chunks = chunked_driver

    return {
        DIRECT: direct,
        "the chunk driver (train_in_chunks)": chunked,
        "train()": lambda: m.train(max_iter=n),
        "train(), the loop called in one piece": train_in_one_piece,
        "train(record_every=0)": lambda: m.train(max_iter=n, record_every=0),
    }


def measure(rows, repeats, calls=50):
    """Median CPU seconds per call of each row, the rows interleaved in each of `repeats` rounds (every other
    round in reverse order, so that no row always follows the same one)."""
    for run in rows.values():
        run()
    times = {name: [] for name in rows}
    for round_ in range(repeats):
        for name, run in list(rows.items())[:: 1 if round_ % 2 else -1]:
            started = time.process_time()
            for _ in range(calls):
                run()
            times[name].append((time.process_time() - started) / calls)
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    m = _seed_module(argv[0] if argv else "generated")
    repeats = int(argv[1]) if len(argv) > 1 else 30
    n = m.DEFAULTS["max_iter"]
    rows = cases(m, n)
    if len(argv) > 2:
        other = _other_module(argv[2])
        rows |= {
            "train(update='simultaneous')": lambda: m.train(update="simultaneous"),
            "other module: train()": lambda: other.train(),
            "other module: train(update='simultaneous')": lambda: other.train(update="simultaneous"),
        }
    whole = measure(rows, repeats)
    print(f"{n} iterations: us per call (CPU time, medians of {repeats} interleaved rounds)")
    for name, seconds in whole.items():
        print(f"  {name:42s} {seconds * 1e6:8.1f} us  {seconds / whole[DIRECT]:.3f}x")
    short = measure(cases(m, 1), repeats, calls=2000)
    print(f"1 iteration: the fixed Python cost above the direct call, and its share of the {n}-iteration direct call")
    for name, seconds in short.items():
        extra = seconds - short[DIRECT]
        print(f"  {name:42s} {seconds * 1e6:8.2f} us  {extra * 1e6:+7.2f} us  {extra / whole[DIRECT]:+7.2%}")


if __name__ == "__main__":
    main()
