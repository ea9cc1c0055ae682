"""float32 against float64, symcompile and JAX side by side in one run (issue 22, item 4).

    python benchmarks/float32/compare.py [--rounds 7] [--only NAME,...] [--skip-compile]

Workloads (the same initial weights for every peer and dtype: the float64 symcompile module's INIT):

- digits-full: scikit-learn's digits, 64-32-10 tanh/softmax, full-batch gradient descent (lr 0.05), 50 epochs a call
- digits-adam: the same network, Adam lr 0.01, mini-batches of 32 in order (shuffling off), 20 epochs a call
- 2-16-16-1: sigmoid/binary cross-entropy on 4,096 synthetic samples, full batch (lr 0.05), 100 epochs a call

Peers: the symcompile module built with dtype float64 and with dtype float32 (`train(threads=None)`, in this
process), and JAX (`jit`; `lax.fori_loop` over full-batch epochs, `lax.scan` over an epoch's batches for Adam)
in two worker processes: one with jax_enable_x64 and float64 arrays, one without it (float32, JAX's default).
Each round times one call of every peer on every workload, interleaved; the table gives medians over the rounds.
symcompile's `train` also computes the loss at its start (mini-batch) and after the last step, passes JAX's
loops do not make: its epoch is (call - extra passes x one `loss_and_grad` pass, timed in the same round) / epochs.

Loss trajectories: each peer's recorded loss per epoch (full batch: the loss before each step; mini-batch: the
epoch's batch losses averaged, each at the weights its batch started from, as symcompile's `train` records it),
then the final loss. The script prints the largest |float32 - float64| over them, for symcompile and for JAX, and
the largest weight difference between the peers after one call.

Also (unless --skip-compile): the seconds the runtime's loops take to compile for float64 and for float32 in a
fresh Numba cache (once per machine), and the packed instructions of the float32 matrix loops (inspect_asm).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench.jax_mlp import flat_weights, layer_params  # noqa: E402
from benchmarks.bench.line_worker import LineWorker, serve  # noqa: E402

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Workload:
    name: str
    layers: tuple[int, ...]
    hidden: str
    output: str  # "softmax" (softmax cross-entropy) or "sigmoid" (binary cross-entropy)
    optimizer: str  # "adam" (mini-batches of `batch`, in order) or "gd" (full batch)
    lr: float
    epochs: int  # per timed call
    samples: int
    batch: int | None = None


WORKLOADS = (
    Workload("digits-full", (64, 32, 10), "tanh", "softmax", "gd", 0.05, 50, 1797),
    Workload("digits-adam", (64, 32, 10), "tanh", "softmax", "adam", 0.01, 20, 1797, 32),
    Workload("2-16-16-1", (2, 16, 16, 1), "sigmoid", "sigmoid", "gd", 0.05, 100, 4096),
)


def data(workload):
    """(X, Y) in float64: digits (pixels / 16, one-hot labels), or normal inputs with 0/1 targets (sign of x1*x2)."""
    if workload.name.startswith("digits"):
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, np.eye(10)[digits.target]
    X = np.random.default_rng(1).normal(size=(workload.samples, workload.layers[0]))
    return X, (X[:, :1] * X[:, 1:2] > 0).astype(float)


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


# ---- symcompile, in this process -----------------------------------------------------------------------------------


class Symcompile:
    def __init__(self, workload, X, Y, dtype, folder):
        from symcompile.mlp import mlp_model
        from symcompile.pipeline import build
        from symcompile.writer import load_module

        loss = "softmax_cross_entropy" if workload.output == "softmax" else "binary_cross_entropy"
        name = f"f32_{workload.name.replace('-', '_')}_{dtype}"
        model = mlp_model(name, list(workload.layers), hidden_activation=workload.hidden,
                          output_activation=workload.output, loss=loss, seed=0, X=X, Y=Y, dtype=dtype)  # fmt: skip
        self.module = load_module(build(model, folder).path)
        self.workload, self.X, self.Y = workload, X, Y
        self.settings = dict(lr=workload.lr, tol=0.0, optimizer=workload.optimizer, batch_size=workload.batch,
                             shuffle=False)  # fmt: skip
        self.extra_passes = 2 if workload.optimizer == "adam" else 1  # the loss at the start, and after the last step
        self.call()  # compile, or load from the cache

    @property
    def init(self):
        return np.asarray(self.module.INIT, dtype=float)

    def call(self, record_every=0):
        return self.module.train(self.init, self.X, self.Y, max_iter=self.workload.epochs, record_every=record_every,
                                 **self.settings)  # fmt: skip

    def one_pass(self):
        return self.module.loss_and_grad(self.init, self.X, self.Y)


# ---- JAX, in worker processes (float64: jax_enable_x64; float32: JAX's default) ----------------------------------


def jax_trainer(workload, X, Y, init, dtype):
    """(a function () -> final weights, a function () -> (final weights, loss history)): `workload.epochs` epochs
    from `init` in JAX, in `dtype`; the history as symcompile's `train` records it."""
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp
    from jax import lax

    from benchmarks.bench.jax_mlp import mlp_mean_loss

    mean_loss = mlp_mean_loss(workload.hidden, workload.output)

    value_and_grad = jax.value_and_grad(mean_loss)
    Xd, Yd = jnp.asarray(X, dtype=dtype), jnp.asarray(Y, dtype=dtype)
    params0 = [
        (jnp.asarray(W, dtype=dtype), jnp.asarray(b, dtype=dtype)) for W, b in layer_params(workload.layers, init)
    ]
    epochs = workload.epochs

    if workload.optimizer == "gd":

        def gd_step(params):
            loss, g = value_and_grad(params, Xd, Yd)
            return jax.tree_util.tree_map(lambda p, gi: p - workload.lr * gi, params, g), loss

        @jax.jit
        def run(params):
            return lax.fori_loop(0, epochs, lambda i, p: gd_step(p)[0], params)

        @jax.jit
        def run_recorded(params):
            params, losses = lax.scan(lambda p, _: gd_step(p), params, None, length=epochs)
            return params, losses

        def train():
            return run(params0)

        def recorded():
            params, losses = run_recorded(params0)
            return params, np.append(np.asarray(losses, dtype=float), float(mean_loss(params, Xd, Yd)))

    else:  # Adam as torch.optim.Adam computes it (symcompile's "adam"), the batches in order
        beta1, beta2, eps, lr, size = 0.9, 0.999, 1e-8, workload.lr, workload.batch
        full = (len(X) // size) * size

        def step(state, batch):
            params, m, v, t = state
            loss, g = value_and_grad(params, *batch)
            t = t + 1
            m = jax.tree_util.tree_map(lambda mi, gi: beta1 * mi + (1 - beta1) * gi, m, g)
            v = jax.tree_util.tree_map(lambda vi, gi: beta2 * vi + (1 - beta2) * gi * gi, v, g)
            c1, c2 = (1 - beta1**t).astype(dtype), (1 - beta2**t).astype(dtype)  # (float32 stays float32)
            params = jax.tree_util.tree_map(
                lambda p, mi, vi: p - lr * (mi / c1) / (jnp.sqrt(vi / c2) + eps), params, m, v
            )
            return (params, m, v, t), loss * batch[0].shape[0]

        @jax.jit
        def epoch(state):
            batches = (Xd[:full].reshape(-1, size, X.shape[1]), Yd[:full].reshape(-1, size, Y.shape[1]))
            state, weighted = lax.scan(step, state, batches)
            total = jnp.sum(weighted)
            if full < len(X):  # the last, shorter batch
                state, last = step(state, (Xd[full:], Yd[full:]))
                total = total + last
            return state, total / len(X)

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params0)

        def run_epochs():
            state, losses = (params0, zeros, zeros, jnp.asarray(0.0, dtype=dtype)), []
            for _ in range(epochs):
                state, loss = epoch(state)
                losses.append(loss)
            return state[0], losses

        def train():
            return run_epochs()[0]

        def recorded():
            params, losses = run_epochs()
            return params, np.array([*map(float, losses), float(mean_loss(params, Xd, Yd))])

    return (lambda: jax.block_until_ready(train())), (lambda: (lambda p, h: (flat_weights(p), h))(*recorded()))


def worker(dtype):
    """A JAX peer: answers the commands of `measure`, one JSON line each (benchmarks/bench/line_worker.py)."""
    trainers = {}

    def answer(command):
        name = command["workload"]
        if command["do"] == "setup":
            arrays = np.load(command["path"])
            workload = next(w for w in WORKLOADS if w.name == name)
            trainers[name] = jax_trainer(workload, arrays["X"], arrays["Y"], arrays["init"], dtype)
            trainers[name][0]()  # trace and compile
            return {}
        if command["do"] == "time":
            wall, _ = timed(trainers[name][0])
            return {"wall": wall}
        w, history = trainers[name][1]()  # "recorded": the weights and the loss history of one call
        np.savez(command["path"], w=w, history=history)
        return {}

    serve(answer)


# ---- the measurement -----------------------------------------------------------------------------------------------

PEERS = tuple(f"{tool} {dtype}" for dtype in DTYPES for tool in ("symcompile", "JAX"))


def measure(workloads, rounds, folder):
    jax_peers = {f"JAX {dtype}": LineWorker(__file__, dtype) for dtype in DTYPES}
    ours, times = {}, {(w.name, p): [] for w in workloads for p in PEERS}
    try:
        for w in workloads:
            X, Y = data(w)
            for dtype in DTYPES:
                ours[w.name, f"symcompile {dtype}"] = Symcompile(w, X, Y, dtype, folder)
            path = os.path.join(folder, f"{w.name}.npz")
            np.savez(path, X=X, Y=Y, init=ours[w.name, "symcompile float64"].init)
            for peer in jax_peers.values():
                peer.ask(do="setup", workload=w.name, path=path)
            print(f"set up {w.name} (load {os.getloadavg()[0]:.2f})", flush=True)
        for r in range(rounds):
            for w in workloads:
                for label in PEERS:
                    if label in jax_peers:
                        times[w.name, label].append(jax_peers[label].ask(do="time", workload=w.name)["wall"] / w.epochs)
                        continue
                    sym = ours[w.name, label]
                    wall, _ = timed(sym.call)
                    pass_wall, _ = timed(sym.one_pass)
                    times[w.name, label].append((wall - sym.extra_passes * pass_wall) / w.epochs)
            print(f"round {r + 1}/{rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
        runs = {}  # (workload, peer) -> (final weights, loss history)
        for w in workloads:
            for label in PEERS:
                if label in jax_peers:
                    path = os.path.join(folder, f"{w.name}-{label.replace(' ', '_')}.npz")
                    jax_peers[label].ask(do="recorded", workload=w.name, path=path)
                    saved = np.load(path)
                    runs[w.name, label] = saved["w"], saved["history"]
                else:
                    result = ours[w.name, label].call(record_every=1)
                    runs[w.name, label] = result.w, np.asarray(result.loss_history, dtype=float)
    finally:
        for peer in jax_peers.values():
            peer.close()
    return times, runs


def table(workloads, times):
    lines = ["| workload | peer | epoch (median) | range | vs same tool float64 | vs JAX same dtype |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for w in workloads:
        for p in PEERS:
            tool, dtype = p.split()
            t = statistics.median(times[w.name, p])
            vs64 = "" if dtype == "float64" else f"{t / statistics.median(times[w.name, f'{tool} float64']):.2f}x"
            vs_jax = "" if tool == "JAX" else f"{t / statistics.median(times[w.name, f'JAX {dtype}']):.2f}x"
            lines.append(f"| {w.name} | {p} | {t * 1e3:.3f} ms | {min(times[w.name, p]) * 1e3:.3f}-"
                         f"{max(times[w.name, p]) * 1e3:.3f} | {vs64} | {vs_jax} |")  # fmt: skip
    return "\n".join(lines)


def trajectories(workloads, runs):
    lines = ["| workload | max abs loss diff, symcompile float32 vs float64 | the same, JAX | "
             "loss at the end (symcompile float64) | max abs weight diff: symcompile vs JAX float64 | "
             "the same, float32 | symcompile float32 vs float64 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for w in workloads:
        (w64, h64), (w32, h32) = runs[w.name, "symcompile float64"], runs[w.name, "symcompile float32"]
        (j64, k64), (j32, k32) = runs[w.name, "JAX float64"], runs[w.name, "JAX float32"]
        lines.append(f"| {w.name} | {np.max(np.abs(h32 - h64)):.1e} | {np.max(np.abs(k32 - k64)):.1e} | {h64[-1]:.6f} | "
                     f"{np.max(np.abs(w64 - j64)):.1e} | {np.max(np.abs(w32 - j32)):.1e} | "
                     f"{np.max(np.abs(w32 - w64)):.1e} |")  # fmt: skip
    return "\n".join(lines)


# ---- compile time and the float32 loops' instructions (in fresh processes) ------------------------------------------

COMPILE_PROBE = """
import sys, time
sys.path.insert(0, {root!r})
from symcompile.runtime import dense
for dtype in ("float64", "float32"):
    start = time.perf_counter()
    dense.loops(64, False, dtype)
    print(dtype, round(time.perf_counter() - start, 1))
"""


def compile_seconds():
    """{dtype: seconds} to compile the runtime's loops (blocks of 64, no BLAS) in an empty Numba cache."""
    with tempfile.TemporaryDirectory(prefix="symcompile-f32-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", COMPILE_PROBE.format(root=str(ROOT))], env=env, text=True,
                             capture_output=True, check=True).stdout  # fmt: skip
    return {dtype: float(seconds) for dtype, seconds in (line.split() for line in out.splitlines())}


def packed_instructions():
    """{loop: {(instruction, register): count}} of the float32 matrix loops, compiled here (no cache) for digits'
    first layer: multiply-adds on zmm (AVX-512) or ymm registers, ...ps (packed single), are the vector loop."""
    import numba

    from symcompile.runtime import dense

    f32, counts = np.float32, {}
    calls = {
        "affine_pairs": lambda f: f(
            np.ones((64, 32), f32), np.ones(32, f32), np.ones((64, 64), f32), np.ones((32, 64), f32), 64
        ),  # fmt: skip
        "backprop_fours": lambda f: f(
            np.ones((64, 32), f32), np.ones((32, 64), f32), np.ones((64, 64), f32), np.ones((64, 64), f32), 64
        ),  # fmt: skip
    }
    for name, call in calls.items():
        function = numba.njit(error_model="numpy", fastmath={"contract"})(getattr(dense, name).py_func)
        call(function)
        (asm,) = function.inspect_asm().values()
        found = collections.Counter(f"{m.group(1)}ps %{m.group(2)}mm"
                                    for m in re.finditer(r"\b(vfmadd\w*?)ps\s+.*?%([xyz])mm", asm))  # fmt: skip
        counts[name] = dict(found)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated workload names (default: all)")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the compile times and the asm check")
    parser.add_argument("--worker", choices=DTYPES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    names = [w.name for w in WORKLOADS]
    only = [n for n in args.only.split(",") if n]
    if any(n not in names for n in only) or args.rounds < 1:
        parser.error(f"--only takes {', '.join(names)}; --rounds at least 1")
    workloads = [w for w in WORKLOADS if not only or w.name in only]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{os.cpu_count()} CPUs; uptime: {uptime}", flush=True)
    with tempfile.TemporaryDirectory(prefix="symcompile-f32-") as folder:
        times, runs = measure(workloads, args.rounds, folder)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\n{args.rounds} rounds, Numba's default threads, JAX's default; uptime at end: {uptime}\n")
    print(table(workloads, times))
    print("\nLoss trajectories (per epoch, then the final loss) and weights after one call:\n")
    print(trajectories(workloads, runs))
    if not args.skip_compile:
        print(f"\nThe runtime's loops (blocks of 64), compiled in an empty Numba cache, seconds: {compile_seconds()}")
        print(f"float32 matrix loops, packed multiply-adds in their code: {packed_instructions()}")


if __name__ == "__main__":
    main()
