"""Where two threads start to pay on a dense network: one chunk on one thread against 2, 4 and 6 chunks on two
threads, for digits' 64-32-10 tanh/softmax network on the first n samples of digits (samples x weights = the work
`symcompile.dense.PARALLEL_MIN_WORK` is compared with), loss and gradient per call, rounds interleaved.

    python benchmarks/epochs/threads_threshold.py [--rounds 25] [--samples 512,896,1280,1797] [--pause 0.05]

The chunk count is forced by editing each built module's kernel (the argument `_dense_chunks(...)` becomes a
constant), so the same runtime loops run every configuration. `--pause` sleeps before each timed call (the cores
clock down when idle: a call after a pause runs slower, and so do its threads). Prints medians and quartiles, and
each configuration's median over one chunk on one thread's.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ((1, 1), (2, 2), (4, 2), (6, 2), (6, 1))  # (chunks, threads)


def modules(folder, X, Y):
    """chunks -> a digits module whose kernels always run that many chunks."""
    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    built = {}
    for chunks in sorted({c for c, _ in CONFIGS}):
        model = mlp_model(f"threads_threshold_{chunks}", [64, 32, 10], hidden_activation="tanh",
                          output_activation="softmax", loss="softmax_cross_entropy", seed=0, X=X, Y=Y)  # fmt: skip
        path = Path(build(model, folder).path)
        source, count = re.subn(r"_dense_chunks\(X\.shape\[0\], n_blocks\)\)", f"{chunks})", path.read_text())
        assert count == 2, "the kernels' chunk argument was not found"
        path.write_text(source)
        built[chunks] = load_module(str(path))
    return built


def measure(built, X, Y, rounds, pause):
    init = np.asarray(built[1].INIT, dtype=float)
    grad = np.zeros_like(init)
    times = {config: [] for config in CONFIGS}

    def call(chunks, threads):
        module = built[chunks]
        module._dense_call(module._loss_and_grad_kernel, threads, init, X, Y, grad)

    for config in CONFIGS:
        call(*config)
    for _ in range(rounds):
        for config in CONFIGS:
            time.sleep(pause)
            start = time.perf_counter()
            call(*config)
            times[config].append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--samples", default="512,896,1280,1797")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to sleep before each timed call")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from sklearn.datasets import load_digits

    digits = load_digits()
    X_all, Y_all = digits.data / 16.0, np.eye(10)[digits.target]
    with tempfile.TemporaryDirectory(prefix="symcompile-threads-") as folder:
        built = modules(folder, X_all, Y_all)
        for n in (int(n) for n in args.samples.split(",")):
            X, Y = np.ascontiguousarray(X_all[:n]), np.ascontiguousarray(Y_all[:n])
            times = measure(built, X, Y, args.rounds, args.pause)
            base = statistics.median(times[1, 1])
            print(f"{n} samples (work {n * 2368:.2g}):")
            for (chunks, threads), values in times.items():
                q1, _, q3 = statistics.quantiles(values, n=4)
                median = statistics.median(values)
                print(f"  {chunks} chunks, {threads} threads: {median * 1e6:7.0f} us ({median / base:.2f}x)  "
                      f"quartiles {q1 * 1e6:.0f}-{q3 * 1e6:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
