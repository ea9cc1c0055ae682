"""The seed's compiled train() against hand-written Numba backprop, interleaved: `python -m symcompile.bench.seed_hand`.

Simultaneous gradient descent on the blog's network and sample (lr 0.3), `--iterations` per timed call;
each round times every row once, in turn, so all rows see the same machine load; medians per iteration.

Rows: the committed module (generated/seed_mlp.py) `train(update="simultaneous", tol=0)` with
record_every=0 (no loss history kept) and with record_every=1; `symcompile.bench.numba_seed.train_stable`
(backprop by hand with the module's stable sigmoid and softplus, no history: the same arithmetic as the
module, without its checks); `numba_seed.train` (backprop by hand with plain exp/log and the loss recorded
each iteration). Every row's final weights are compared with the module's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from symcompile.bench import numba_seed
from symcompile.bench.timing import format_seconds, load_average
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m symcompile.bench.seed_hand", description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000, help="iterations per timed call (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default: %(default)s)")
    args = parser.parse_args(argv)
    module = load_module(SEED_MODULE)
    rows = runners(module, args.iterations)
    print(f"load average at start: {load_average()}; {args.iterations} iterations per call, {args.rounds} rounds")
    finals = {name: run() for name, run in rows.items()}  # compiles (or loads from Numba's cache)
    seconds = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, run in rows.items():
            start = time.perf_counter()
            finals[name] = run()
            seconds[name].append((time.perf_counter() - start) / args.iterations)
    reference = finals["compiled train(record_every=0)"]
    base = statistics.median(seconds["hand-written Numba backprop, stable sigmoid/softplus, no history"])
    print("| implementation | per iteration (median) | min - max | x hand-written (stable) | max rel weight diff |")
    print("| --- | --- | --- | --- | --- |")
    for name, times in seconds.items():
        median = statistics.median(times)
        difference = np.max(np.abs(finals[name] - reference)) / np.max(np.abs(reference))
        print(f"| {name} | {format_seconds(median)} | {format_seconds(min(times))} - {format_seconds(max(times))} | "
              f"{median / base:.3f} | {difference:.1e} |")  # fmt: skip
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
