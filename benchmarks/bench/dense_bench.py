"""Dense MLP kernels against the scalar kernels, JAX and NumPy: `python -m benchmarks.bench.dense_bench`.

Epoch = one full-batch loss-and-gradient plus a gradient step, from the same initial weights in
every implementation; each figure is the median over interleaved rounds (each round runs every
implementation once, `epochs` epochs each), so all of them see the same machine load. JAX pinned to
one thread runs in a subprocess (XLA reads its thread flags at start-up) that answers "run" lines,
so it is interleaved too. `--hog` repeats the dense rows with a CPU hog on one core; `--workloads wide`
runs 784-1000-1000-10 (build, first call and epoch against JAX). `--blocks 32,64,128` sweeps block sizes.

Figures go to stdout as a table; BENCHMARKS.md records them with the command and the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.bench.full_batch_run import FullBatchRun
from benchmarks.bench.timing import format_seconds, load_average
from symcompile.dense import MLPShape, dense_kernels_source
from symcompile.writer import load_module, write_module

DESCENT_SOURCE = '''

@numba.njit(cache=True, error_model="numpy")
def _bench_descent(w, X, Y, lr, epochs, history):
    """`epochs` gradient steps (the generated module's simultaneous update, without its checks)."""
    grad = np.empty_like(w)
    for i in range(epochs):
        history[i] = _loss_and_grad_kernel(w, X, Y, grad)
        for j in range(w.shape[0]):
            w[j] -= lr * grad[j]
'''


def standalone_source(shape: MLPShape, **options) -> str:
    """The dense kernels as a module of their own (`symcompile.dense.dense_kernels_source` with its imports)."""
    return "import math\n\nimport numba\nimport numpy as np\n\n\n" + dense_kernels_source(shape, **options)


@dataclass(frozen=True)
class Workload:
    name: str
    shape: MLPShape
    X: np.ndarray
    Y: np.ndarray
    lr: float
    epochs: int  # per timed run


def _one_hot(labels, n_classes):
    return np.eye(n_classes)[labels]


def small_workload():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, 2))
    Y = (X[:, :1] * X[:, 1:] > 0).astype(float)  # an XOR-like pattern
    return Workload("2-16-16-1 sigmoid BCE x 4,096", MLPShape((2, 16, 16, 1)), X, Y, 0.5, 20)


def digits_workload():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("skipped digits: scikit-learn is not installed (pip install scikit-learn)")
        return None
    digits = load_digits()
    shape = MLPShape((64, 32, 10), "tanh", "softmax", "softmax_cross_entropy")
    return Workload(
        "digits 64-32-10 tanh/softmax x 1,797", shape, digits.data / 16.0, _one_hot(digits.target, 10), 0.5, 20
    )


def wide_workload():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10_000, 784))
    shape = MLPShape((784, 1000, 1000, 10), "tanh", "softmax", "softmax_cross_entropy")
    return Workload(
        "784-1000-1000-10 tanh/softmax x 10,000 (synthetic)",
        shape,
        X,
        _one_hot(rng.integers(10, size=10_000), 10),
        0.05,
        1,
    )


def initial_weights(shape, seed=0):
    """Xavier-uniform weights, zero biases, in the flat order of symcompile.mlp (per-neuron biases)."""
    rng = np.random.default_rng(seed)
    parts = []
    for n_in, n_out in zip(shape.layers, shape.layers[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        parts += [rng.uniform(-limit, limit, size=n_in * n_out), np.zeros(n_out)]
    return np.concatenate(parts)


def unpack(shape, flat):
    layers, at = [], 0
    for n_in, n_out in zip(shape.layers, shape.layers[1:]):
        W = flat[at : at + n_in * n_out].reshape(n_in, n_out)
        b = flat[at + n_in * n_out : at + n_in * n_out + n_out]
        layers.append((W, b))
        at += n_in * n_out + n_out
    return layers


# --- the implementations: each a function (w0) -> final weights, run for workload.epochs epochs -------------------


def dense_runner(workload, folder, block=None, threads=None):
    """The dense kernels in a module of their own; returns (runner, build seconds, first-call seconds)."""
    options = {} if block is None else {"block": block}
    start = time.perf_counter()
    source = standalone_source(workload.shape, **options) + DESCENT_SOURCE
    built = time.perf_counter() - start
    name = f"dense_{abs(hash((workload.shape, block))) % 10**8}"
    module = load_module(write_module(source, folder, name)[0])

    def run(w0, epochs=workload.epochs):
        w = w0.copy()
        history = np.empty(epochs)
        module._dense_call(module._bench_descent, threads, w, workload.X, workload.Y, workload.lr, epochs, history)
        return w

    start = time.perf_counter()  # the first call, on 256 samples: the compile (or cache load), not an epoch
    w, history = initial_weights(workload.shape), np.empty(1)
    module._dense_call(module._bench_descent, threads, w, workload.X[:256], workload.Y[:256], workload.lr, 1, history)
    return run, built, time.perf_counter() - start


def scalar_runner(workload, folder):
    """The current pipeline's module with its scalar kernels (one symbol per weight), trained by the runtime's
    compiled full-batch loop with the simultaneous rule (train's loop, without its checks)."""
    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build

    shape = workload.shape
    model = mlp_model(
        f"scalar_{shape.layers[0]}_{shape.layers[1]}", list(shape.layers), hidden_activation=shape.hidden_activation,
        output_activation=shape.output_activation, loss=shape.loss, bias=shape.bias,
    )  # fmt: skip
    module = load_module(build(model, folder, kernels="scalar").path)  # auto would pick the dense kernels
    loop = FullBatchRun(module, "gd", initial_weights(shape), workload.X, workload.Y, {"lr": workload.lr})

    def run(w0):
        loop.restart(w0)
        loop(workload.epochs, np.empty(workload.epochs + 1))
        return loop.w.copy()

    run(initial_weights(shape))
    return run


def numpy_runner(workload):
    shape = workload.shape
    X, Y = workload.X, workload.Y
    hidden = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[shape.hidden_activation]
    derivative = {"sigmoid": lambda a: a * (1 - a), "tanh": lambda a: 1 - a * a}[shape.hidden_activation]

    def grad(w):
        layers = unpack(shape, w)
        activations = [X]
        for W, b in layers[:-1]:
            activations.append(hidden(activations[-1] @ W + b))
        z = activations[-1] @ layers[-1][0] + layers[-1][1]
        if shape.output_activation == "softmax":
            p = np.exp(z - z.max(axis=1, keepdims=True))
            delta = p / p.sum(axis=1, keepdims=True) * Y.sum(axis=1, keepdims=True) - Y
        else:
            delta = 1 / (1 + np.exp(-z)) - Y
        delta /= X.shape[0]
        parts = []
        for l in range(len(layers) - 1, -1, -1):
            parts = [(activations[l].T @ delta).ravel(), delta.sum(axis=0)] + parts
            if l:
                delta = (delta @ layers[l][0].T) * derivative(activations[l])
        return np.concatenate(parts)

    def run(w0):
        w = w0.copy()
        for _ in range(workload.epochs):
            w -= workload.lr * grad(w)
        return w

    return run


JAX_CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from benchmarks.bench.dense_bench import jax_runner, load_workload, saved_workload
workload = saved_workload(sys.argv[2]) if sys.argv[2].endswith(".npz") else load_workload(sys.argv[2])
run = jax_runner(workload)
w0 = np.load(sys.argv[3])
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    w = run(w0)
    seconds = time.perf_counter() - start
    np.save(sys.argv[3] + ".out.npy", w)
    print(seconds, flush=True)
"""


def save_workload(workload, path):
    shape = workload.shape
    np.savez(
        path,
        X=workload.X,
        Y=workload.Y,
        lr=workload.lr,
        epochs=workload.epochs,
        layers=np.array(shape.layers),
        names=np.array([workload.name, shape.hidden_activation, shape.output_activation, shape.loss, shape.bias]),
    )


def saved_workload(path):
    data = np.load(path)
    name, hidden, output, loss, bias = (str(v) for v in data["names"])
    shape = MLPShape(tuple(int(n) for n in data["layers"]), hidden, output, loss, bias)
    return Workload(name, shape, data["X"], data["Y"], float(data["lr"]), int(data["epochs"]))


def jax_runner(workload):
    """JAX `jit` + `lax.fori_loop` with matrices, as JAX users write an MLP; float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    from benchmarks.bench.jax_mlp import mlp_mean_loss

    shape = workload.shape
    X, Y = jnp.asarray(workload.X), jnp.asarray(workload.Y)
    loss_of = mlp_mean_loss(shape.hidden_activation, shape.output_activation)

    def mean_loss(layers):
        return loss_of(layers, X, Y)

    grad = jax.grad(mean_loss)

    @jax.jit
    def descend(layers):
        def step(i, layers):
            return jax.tree_util.tree_map(lambda p, g: p - workload.lr * g, layers, grad(layers))

        return lax.fori_loop(0, workload.epochs, step, layers)

    def run(w0):
        layers = descend([(jnp.asarray(W), jnp.asarray(b)) for W, b in unpack(shape, w0)])
        return np.concatenate([np.concatenate([np.asarray(W).ravel(), np.asarray(b)]) for W, b in layers])

    run(initial_weights(shape))
    return run


def load_workload(name):
    return {"small": small_workload, "digits": digits_workload, "wide": wide_workload}[name]()


class JaxOneThread:
    """JAX in a subprocess with XLA on one thread; `run` asks it for one timed run."""

    FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

    def __init__(self, workload_key, w0, folder, workload=None):
        """`workload_key` names one of load_workload's; a `workload` given goes to the subprocess in a file."""
        self.weights = str(Path(folder) / f"w0_{workload_key}.npy")
        np.save(self.weights, w0)
        if workload is not None:
            workload_key = str(Path(folder) / f"workload_{workload_key}.npz")
            save_workload(workload, workload_key)
        env = dict(os.environ, XLA_FLAGS=self.FLAGS, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])
        self.process = subprocess.Popen(
            [sys.executable, "-c", JAX_CHILD, root, workload_key, self.weights],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the one-thread JAX subprocess did not start")

    def run(self):
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def result(self):
        return np.load(self.weights + ".out.npy")

    def run_and_result(self):
        """(final weights, seconds as the subprocess timed them: without the pipe's and the files' time)."""
        seconds = self.run()
        return self.result(), seconds

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def timed(run, w0):
    start = time.perf_counter()
    w = run(w0)
    return time.perf_counter() - start, w


def compare(workload, workload_key, folder, rounds, include_scalar, hog=False):
    """Interleaved rounds; prints per-epoch medians and the largest weight difference from the dense result."""
    w0 = initial_weights(workload.shape)
    runners = {}
    if include_scalar:
        start = time.perf_counter()
        runners["scalar kernels (current)"] = scalar_runner(workload, folder)
        print(f"  scalar build + first call: {format_seconds(time.perf_counter() - start)}")
    dense_1, built, first = dense_runner(workload, folder, threads=1)
    print(f"  dense build {format_seconds(built)}, first call (compile or cache load) {format_seconds(first)}")
    runners["dense, 1 thread"] = dense_1
    runners["dense, default threads"] = dense_runner(workload, folder)[0]
    if not hog:
        runners["JAX jit+fori_loop, default threads"] = jax_runner(workload)
        child = JaxOneThread(workload_key, w0, folder)
        runners["JAX jit+fori_loop, 1 thread"] = child
        runners["NumPy"] = numpy_runner(workload)
    seconds = {name: [] for name in runners}
    finals = {}
    for _ in range(rounds):
        for name, run in runners.items():
            if isinstance(run, JaxOneThread):
                seconds[name].append(run.run())
                finals[name] = run.result()
            else:
                elapsed, finals[name] = timed(run, w0)
                seconds[name].append(elapsed)
    if not hog:
        child.close()
    reference = finals["dense, 1 thread"]
    base = statistics.median(seconds["dense, 1 thread"])
    for name, times in seconds.items():
        median = statistics.median(times) / workload.epochs
        difference = np.max(np.abs(finals[name] - reference)) / np.max(np.abs(reference))
        ratio = statistics.median(times) / base
        print(
            f"  {name:38s} {format_seconds(median):>10s}/epoch  ({ratio:5.2f}x dense 1 thread)  max rel weight diff {difference:.1e}"
        )


def sweep_blocks(workload, folder, blocks, rounds):
    w0 = initial_weights(workload.shape)
    runners = {block: dense_runner(workload, folder, block=block, threads=1)[0] for block in blocks}
    seconds = {block: [] for block in blocks}
    for _ in range(rounds):
        for block, run in runners.items():
            seconds[block].append(timed(run, w0)[0])
    for block in blocks:
        print(
            f"  block {block:4d}: {format_seconds(statistics.median(seconds[block]) / workload.epochs)}/epoch (1 thread)"
        )


# The layer loops live in the runtime (compiled once per machine); the per-unit functions in the module.
RUNTIME_HOT_LOOPS = ("affine", "backprop", "weight_grad")
MODULE_HOT_LOOPS = ("_dense_hidden", "_dense_output_loss")


def vector_instructions(workload, folder):
    """What the hot loops compiled to: counts of packed (ymm/zmm) and scalar (sd) floating-point instructions."""
    import re
    from collections import Counter

    from symcompile.runtime import dense as runtime_dense

    module = load_module(write_module(standalone_source(workload.shape), folder, "dense_asm")[0])
    module._loss_and_grad_kernel(
        initial_weights(workload.shape),
        workload.X[:100],
        workload.Y[:100],
        np.empty(len(initial_weights(workload.shape))),
    )
    hot = [(name, getattr(runtime_dense, name)) for name in RUNTIME_HOT_LOOPS]
    hot += [(name, getattr(module, name)) for name in MODULE_HOT_LOOPS]
    for name, dispatcher in hot:
        for asm in dispatcher.inspect_asm().values():
            kinds = Counter()
            for op, register in re.findall(r"^\s+(v[a-z0-9]+)\s+[^\n]*?%(zmm|ymm|xmm)", asm, re.M):
                packed = op.endswith("pd") and register != "xmm"
                kind = f"packed {register}" if packed else "scalar sd" if op.endswith("sd") else None
                if kind and re.match(r"v(fmadd|fmsub|fnmadd|mul|add|sub|div|max|min)", op):
                    kinds[kind] += 1
            print(f"  {name:22s} arithmetic instructions: {dict(kinds)}")


class CpuHog:
    """A busy loop in a subprocess, to measure the threaded kernels when another core is taken."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench.dense_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-scalar", action="store_true", help="skip the current scalar kernels (slow to build)")
    parser.add_argument("--hog", action="store_true", help="also measure dense threads with a CPU hog running")
    parser.add_argument(
        "--workloads", default="small,digits",
        help="comma-separated: small (2-16-16-1), digits (64-32-10), wide (784-1000-1000-10: build, first call, epoch)",
    )  # fmt: skip
    parser.add_argument("--asm", action="store_true", help="count vector instructions in the hot loops and stop")
    parser.add_argument("--blocks", help="sweep these block sizes (comma-separated) on both small workloads")
    args = parser.parse_args(argv)
    import numba

    print(
        f"load average at start: {load_average()}, CPU count {os.cpu_count()}, Numba threads {numba.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory(prefix="dense_bench_") as folder:
        for key in args.workloads.split(","):
            workload = load_workload(key)
            if workload is None:
                continue
            print(workload.name)
            if args.asm:
                vector_instructions(workload, folder)
                continue
            if args.blocks:
                sweep_blocks(workload, folder, [int(b) for b in args.blocks.split(",")], args.rounds)
                continue
            wide = key == "wide"  # the scalar pipeline cannot build it; 3 rounds of seconds-long epochs
            compare(workload, key, folder, 3 if wide else args.rounds, not (args.no_scalar or wide))
            if args.hog and not wide:
                with CpuHog():
                    print("  with a CPU hog on one core:")
                    compare(workload, key, folder, args.rounds, False, hog=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
