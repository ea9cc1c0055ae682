"""Build, first call and epoch from 2-16-16-1 up to 784-1000-1000-10, beside JAX: `python -m benchmarks.bench.sizes_table`.

Each network runs in a new process with an empty Numba cache (NUMBA_CACHE_DIR in a fresh temporary
folder), on synthetic data (inputs normal, one random class of 10 per sample; 2-16-16-1: sigmoid and
binary cross-entropy on 0/1 targets), tanh hidden layers and softmax cross-entropy otherwise:

- build: `symcompile.pipeline.build` of the MLP (model, stages, write; the interpreter and imports not included);
- first call: the module's first `train(max_iter=1)` (Numba's compile plus one epoch), wall and CPU seconds
  (the process's CPU time, all threads: on a shared machine it says more than the wall time);
- epoch: the median of `--repeats` timed `train(max_iter=k)` calls, less one loss-and-gradient pass (the median
  of as many timed `loss_and_grad` calls: `train` ends by computing the loss at the weights it returns, which
  JAX's loop does not; with k = 1 it had doubled the figure), divided by k (k epochs per call, fewer for wider
  networks), full-batch simultaneous gradient descent at Numba's default threads;
- JAX `jit` + `lax.fori_loop` (the dataset scenario's peer, default threads, float64) in the same
  process on the same data and initial weights: its first call (trace, XLA compile, k epochs) and
  its epoch; its weights after k epochs against the module's (max relative difference).

One run per network, printed as a Markdown table; BENCHMARKS.md records it with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench.timing import format_seconds, load_average

SIZES = ("2-16-16-1", "64-32-10", "784-100-10", "784-300-300-10", "784-1000-1000-10")
WORK_PER_CALL = 2e10  # samples x parameters per timed call: k = this / (samples x parameters), 1 to 20 epochs

CHILD = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from benchmarks.bench.sizes_table import measure
print(json.dumps(measure([int(n) for n in sys.argv[2].split("-")], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
"""


def workload(layers, samples, epochs):
    """The dense bench's Workload for these layer sizes: synthetic data, lr 0.05, `epochs` per run."""
    import numpy as np

    from benchmarks.bench.dense_bench import Workload
    from symcompile.mlp import MLPShape

    rng = np.random.default_rng(1)
    X = rng.normal(size=(samples, layers[0]))
    if layers[-1] == 1:
        shape = MLPShape(tuple(layers))  # sigmoid, binary cross-entropy
        Y = (X[:, :1] * X[:, 1:2] > 0).astype(float) if layers[0] > 1 else (X[:, :1] > 0).astype(float)
    else:
        shape = MLPShape(tuple(layers), "tanh", "softmax", "softmax_cross_entropy")
        Y = np.eye(layers[-1])[rng.integers(layers[-1], size=samples)]
    return Workload("-".join(map(str, layers)), shape, X, Y, 0.05, epochs)


def measure(layers, samples, repeats, out_dir):
    """One network, in this (new) process: the figures of the table's row, as a dict of seconds."""
    import statistics
    import time

    from benchmarks.bench import dense_bench
    from symcompile.mlp import mlp_model
    from symcompile.model import TrainingDefaults
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    n_params = sum(a * b + b for a, b in zip(layers, layers[1:]))
    epochs = int(max(1, min(20, WORK_PER_CALL / (samples * n_params))))
    data = workload(layers, samples, epochs)
    shape = data.shape
    start = time.perf_counter()
    model = mlp_model(
        "sizes_" + "_".join(map(str, layers)), layers, hidden_activation=shape.hidden_activation,
        output_activation=shape.output_activation, loss=shape.loss, seed=0,
        training=TrainingDefaults(lr=data.lr, max_iter=1, update="simultaneous"),
    )  # fmt: skip
    report = build(model, out_dir)
    built = time.perf_counter() - start
    module = load_module(report.path)
    settings = dict(lr=data.lr, tol=0.0, update="simultaneous", record_every=0)
    start, start_cpu = time.perf_counter(), time.process_time()
    module.train(module.INIT, data.X, data.Y, max_iter=1, **settings)
    first, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    train_times, final_pass_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = module.train(module.INIT, data.X, data.Y, max_iter=epochs, **settings)
        train_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        module.loss_and_grad(module.INIT, data.X, data.Y)
        final_pass_times.append(time.perf_counter() - start)
    epoch = (statistics.median(train_times) - statistics.median(final_pass_times)) / epochs
    row = {"layers": "-".join(map(str, layers)), "params": n_params, "samples": samples, "epochs_per_call": epochs,
           "kernels": report.kernels, "build": built, "first_call": first, "first_call_cpu": first_cpu,
           "epoch": epoch}  # fmt: skip
    try:
        import jax  # noqa: F401
    except ImportError:
        return row
    start = time.perf_counter()
    jax_run = dense_bench.jax_runner(data)  # traces, compiles and runs once
    row["jax_first_call"] = time.perf_counter() - start
    jax_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax_w = jax_run(module.INIT)
        jax_times.append((time.perf_counter() - start) / epochs)
    row["jax_epoch"] = statistics.median(jax_times)
    row["weight_difference"] = float(abs(jax_w - result.w).max() / abs(result.w).max())
    return row


def run_one(layers_text, samples, repeats):
    root = str(Path(__file__).resolve().parents[2])
    with tempfile.TemporaryDirectory(prefix="symcompile-sizes-") as folder:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(folder, "numba"))
        done = subprocess.run([sys.executable, "-c", CHILD, root, layers_text, str(samples), str(repeats), folder],
                              capture_output=True, text=True, env=env)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the process for {layers_text} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows):
    lines = ["| network | parameters | samples | kernels | build | first `train()` (compile + 1 epoch) | epoch | "
             "JAX first call (k epochs) | JAX epoch | epoch / JAX's | max rel weight diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        jax = "jax_epoch" in r
        lines.append(
            f"| {r['layers']} | {r['params']:,} | {r['samples']:,} | {r['kernels']} | {format_seconds(r['build'])} | "
            f"{format_seconds(r['first_call'])} (CPU {format_seconds(r['first_call_cpu'])}) | "
            f"{format_seconds(r['epoch'])} (k={r['epochs_per_call']}) | "
            + (f"{format_seconds(r['jax_first_call'])} | {format_seconds(r['jax_epoch'])} | "
               f"{r['epoch'] / r['jax_epoch']:.2f} | {r['weight_difference']:.1e} |" if jax else "- | - | - | - |")
        )  # fmt: skip
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench.sizes_table", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated layer sizes (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=10_000, help="samples per network (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per network (default: %(default)s)")
    args = parser.parse_args(argv)
    print(f"load average at start: {load_average()}", flush=True)
    rows = []
    for layers_text in args.sizes.split(","):
        rows.append(run_one(layers_text, args.samples, args.repeats))
        print(json.dumps(rows[-1]), f"(load {load_average()})", flush=True)
    print(table(rows))
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
