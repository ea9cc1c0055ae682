"""Epochs side by side: symcompile and JAX, each at its default threads and on one thread, in one run (issue 22).

    python benchmarks/epochs/compare.py [--rounds 5] [--skip-wide] [--busy] [--only NAME,...]

Workloads (float64, the same initial weights for every peer: the symcompile module's INIT):

- digits-adam: scikit-learn's digits, 64-32-10 tanh/softmax, Adam lr 0.01, mini-batches of 32, shuffling off
- digits-full: the same network, full-batch gradient descent (lr 0.05)
- 2-16-16-1: sigmoid/binary cross-entropy on 4,096 synthetic samples, full batch
- 64-32-10x10k: the digits network on 10,000 synthetic samples, full batch (mid-size: where threads should pay)
- 784-1000-1000-10: tanh/softmax on 10,000 synthetic samples, full batch (`--skip-wide` leaves it out)

Peers: the symcompile module's `train(threads=None)` (Numba's default threads) and `train(threads=1)`, in this
process; JAX (`jit`; `lax.scan` over an epoch's batches for Adam, `lax.fori_loop` over the epochs for full batch)
in two worker processes, one as JAX starts by default and one made single-threaded (XLA_FLAGS below, and the
worker's CPU affinity set to one core, as XLA's CPU client sizes its thread pool from the visible cores). Each
round times one call of every peer on every workload, interleaved, so that a change of the machine's load hits
them all; the tables give medians over the rounds.

symcompile's `train(max_iter=k)` also computes the loss at the start (mini-batch) and after the last step, passes
JAX's loops do not make: its epoch is (call - extra passes x one `loss_and_grad` pass, timed in the same round) / k.
The "cpu/wall" column is the process's CPU seconds over wall seconds during the calls (about the threads busy).
GFLOP/s: 6 x samples x sum(n_in x n_out) per epoch (the forward product and the two backward ones, 2 FLOPs a
multiply-add), against the one-core peak of benchmarks/peak_flops.py (a 1024^3 BLAS product on one thread).
After the last round, each JAX peer's weights are compared with symcompile's (max abs difference).

--busy starts a process spinning on one core (`while True: pass`) for the whole measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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

ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass(frozen=True)
class Workload:
    name: str
    layers: tuple[int, ...]
    hidden: str  # hidden activation
    output: str  # "softmax" (softmax cross-entropy) or "sigmoid" (binary cross-entropy)
    optimizer: str  # "adam" (mini-batches of `batch`, shuffling off) or "gd" (full batch)
    lr: float
    epochs: int  # per timed call
    samples: int
    batch: int | None = None

    def flops(self):
        """Per epoch: the forward product and the two backward ones, 2 FLOPs a multiply-add."""
        return 6 * self.samples * sum(a * b for a, b in zip(self.layers, self.layers[1:]))


WORKLOADS = (
    Workload("digits-adam", (64, 32, 10), "tanh", "softmax", "adam", 0.01, 20, 1797, 32),
    Workload("digits-full", (64, 32, 10), "tanh", "softmax", "gd", 0.05, 50, 1797),
    Workload("2-16-16-1", (2, 16, 16, 1), "sigmoid", "sigmoid", "gd", 0.05, 100, 4096),
    Workload("64-32-10x10k", (64, 32, 10), "tanh", "softmax", "gd", 0.05, 10, 10_000),
    Workload("784-1000-1000-10", (784, 1000, 1000, 10), "tanh", "softmax", "gd", 0.05, 1, 10_000),
)


def data(workload):
    """(X, Y): scikit-learn's digits (pixels / 16, one-hot labels) for the digits workloads, else synthetic data
    (inputs normal; one random class a sample, or 0/1 targets from the sign of x1 * x2)."""
    rng = np.random.default_rng(1)
    n_in, n_out = workload.layers[0], workload.layers[-1]
    if workload.name.startswith("digits"):
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, np.eye(10)[digits.target]
    X = rng.normal(size=(workload.samples, n_in))
    if n_out == 1:
        return X, (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return X, np.eye(n_out)[rng.integers(n_out, size=workload.samples)]


# ---- symcompile, in this process -----------------------------------------------------------------------------------


class Symcompile:
    def __init__(self, workload, X, Y, folder):
        from symcompile.mlp import mlp_model
        from symcompile.pipeline import build
        from symcompile.writer import load_module

        loss = "softmax_cross_entropy" if workload.output == "softmax" else "binary_cross_entropy"
        name = "epochs_" + workload.name.replace("-", "_")
        model = mlp_model(name, list(workload.layers), hidden_activation=workload.hidden,
                          output_activation=workload.output, loss=loss, seed=0, X=X, Y=Y)  # fmt: skip
        self.module = load_module(build(model, folder).path)
        self.workload, self.X, self.Y = workload, X, Y
        adam = workload.optimizer == "adam"
        self.settings = dict(lr=workload.lr, tol=0.0, record_every=0, optimizer=workload.optimizer,
                             batch_size=workload.batch, shuffle=False)  # fmt: skip
        self.extra_passes = 2 if adam else 1  # the loss at the start (mini-batch), and after the last step
        self.call(None), self.call(1)  # compile or load from the cache

    @property
    def init(self):
        return np.asarray(self.module.INIT, dtype=float)

    def call(self, threads):
        return self.module.train(self.init, self.X, self.Y, max_iter=self.workload.epochs, threads=threads,
                                 **self.settings).w  # fmt: skip

    def one_pass(self, threads):
        return self.module.loss_and_grad(self.init, self.X, self.Y, threads=threads)


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


# ---- JAX, in worker processes --------------------------------------------------------------------------------------


def jax_trainer(workload, X, Y, init):
    """A function () -> final flat weights: `workload.epochs` epochs from `init` in JAX, float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    from benchmarks.bench.jax_mlp import mlp_mean_loss

    mean_loss = mlp_mean_loss(workload.hidden, workload.output)

    grad = jax.grad(mean_loss)
    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    params0 = [(jnp.asarray(W), jnp.asarray(b)) for W, b in layer_params(workload.layers, init)]

    if workload.optimizer == "gd":

        @jax.jit
        def run(params):
            def step(i, params):
                return jax.tree_util.tree_map(lambda p, g: p - workload.lr * g, params, grad(params, Xd, Yd))

            return lax.fori_loop(0, workload.epochs, step, params)

        def train():
            return run(params0)

    else:  # Adam as torch.optim.Adam computes it, shuffling off: the batches in order
        beta1, beta2, eps, lr, size = 0.9, 0.999, 1e-8, workload.lr, workload.batch
        full = (len(X) // size) * size

        def step(state, batch):
            params, m, v, t = state
            g = grad(params, *batch)
            t = t + 1
            m = jax.tree_util.tree_map(lambda mi, gi: beta1 * mi + (1 - beta1) * gi, m, g)
            v = jax.tree_util.tree_map(lambda vi, gi: beta2 * vi + (1 - beta2) * gi * gi, v, g)
            params = jax.tree_util.tree_map(
                lambda p, mi, vi: p - lr * (mi / (1 - beta1**t)) / (jnp.sqrt(vi / (1 - beta2**t)) + eps), params, m, v
            )
            return (params, m, v, t), None

        @jax.jit
        def epoch(state):
            batches = (Xd[:full].reshape(-1, size, X.shape[1]), Yd[:full].reshape(-1, size, Y.shape[1]))
            state, _ = lax.scan(step, state, batches)
            if full < len(X):  # the last, shorter batch
                state, _ = step(state, (Xd[full:], Yd[full:]))
            return state

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params0)

        def train():
            state = (params0, zeros, zeros, 0)
            for _ in range(workload.epochs):
                state = epoch(state)
            return state[0]

    def flat():
        return flat_weights(jax.block_until_ready(train()))

    return flat


def worker():
    """A JAX peer: answers the commands of `measure`, one JSON line each (benchmarks/bench/line_worker.py)."""
    if os.environ.get("EPOCHS_ONE_CORE"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    trainers = {}

    def answer(command):
        name = command["workload"]
        if command["do"] == "setup":
            arrays = np.load(command["path"])
            workload = next(w for w in WORKLOADS if w.name == name)
            trainers[name] = jax_trainer(workload, arrays["X"], arrays["Y"], arrays["init"])
            trainers[name]()  # trace and compile
            return {}
        if command["do"] == "time":
            wall, cpu, _ = timed(trainers[name])
            return {"wall": wall, "cpu": cpu}
        np.save(command["path"], trainers[name]())  # "weights"
        return {}

    serve(answer)


def jax_peer(one_thread):
    """A JAX worker, as JAX starts by default or held to one thread (XLA's flags, and one core)."""
    env = dict(os.environ)
    if one_thread:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + ONE_THREAD_XLA).strip()
        env["EPOCHS_ONE_CORE"] = "1"
    return LineWorker(__file__, env=env)


# ---- the measurement -----------------------------------------------------------------------------------------------


def peak_gflops():
    """benchmarks/peak_flops.py's one-core float64 peak (BLAS on one thread)."""
    spec = importlib.util.spec_from_file_location("peak_flops", ROOT / "benchmarks" / "peak_flops.py")
    peak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peak)
    with peak.one_thread():
        return peak.gflops(np.float64, 1024, 7)


def spinner():
    """A process spinning on one core (the busy machine)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


PEERS = ("symcompile default threads", "symcompile threads=1", "JAX default", "JAX one thread")


def measure(workloads, rounds, folder):
    peers = {"JAX default": jax_peer(False), "JAX one thread": jax_peer(True)}
    ours, times = {}, {(w.name, p): [] for w in workloads for p in PEERS}
    cpu = {key: [] for key in times}
    try:
        for w in workloads:
            X, Y = data(w)
            ours[w.name] = Symcompile(w, X, Y, folder)
            path = os.path.join(folder, f"{w.name}.npz")
            np.savez(path, X=X, Y=Y, init=ours[w.name].init)
            for peer in peers.values():
                peer.ask(do="setup", workload=w.name, path=path)
            print(f"set up {w.name} (load {os.getloadavg()[0]:.2f})", flush=True)
        for r in range(rounds):
            for w in workloads:
                sym = ours[w.name]
                for threads, label in ((None, PEERS[0]), (1, PEERS[1])):
                    wall, used, _ = timed(lambda: sym.call(threads))
                    pass_wall, _, _ = timed(lambda: sym.one_pass(threads))
                    times[w.name, label].append((wall - sym.extra_passes * pass_wall) / w.epochs)
                    cpu[w.name, label].append(used / wall)
                for label, peer in peers.items():
                    answer = peer.ask(do="time", workload=w.name)
                    times[w.name, label].append(answer["wall"] / w.epochs)
                    cpu[w.name, label].append(answer["cpu"] / answer["wall"])
            print(f"round {r + 1}/{rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
        differences = {}
        for w in workloads:
            w_ours = ours[w.name].call(None)
            for label, peer in peers.items():
                path = os.path.join(folder, f"{w.name}-{label.replace(' ', '_')}.npy")
                peer.ask(do="weights", workload=w.name, path=path)
                differences[w.name, label] = float(np.max(np.abs(np.load(path) - w_ours)))
            differences[w.name, PEERS[1]] = float(np.max(np.abs(ours[w.name].call(1) - w_ours)))
    finally:
        for peer in peers.values():
            peer.close()
    return times, cpu, differences


def table(workloads, times, cpu, differences, peak):
    lines = ["| workload | peer | epoch (median) | range | cpu/wall | GFLOP/s | % of 1-core peak | vs JAX same threads "
             "| max abs weight diff vs ours |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for w in workloads:
        for p in PEERS:
            t = statistics.median(times[w.name, p])
            jax_same = statistics.median(times[w.name, "JAX one thread" if p.endswith("=1") else "JAX default"])
            ratio = f"{t / jax_same:.2f}x" if p.startswith("symcompile") else ""
            diff = differences.get((w.name, p))
            lines.append(
                f"| {w.name} | {p} | {t * 1e3:.3f} ms | {min(times[w.name, p]) * 1e3:.3f}-"
                f"{max(times[w.name, p]) * 1e3:.3f} | {statistics.median(cpu[w.name, p]):.2f} | "
                f"{w.flops() / t / 1e9:.1f} | {100 * w.flops() / t / 1e9 / peak:.0f}% | {ratio} | "
                + ("(ours)" if diff is None else f"{diff:.1e}") + " |"
            )  # fmt: skip
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-wide", action="store_true", help="leave out 784-1000-1000-10")
    parser.add_argument("--busy", action="store_true", help="another process spins on one core meanwhile")
    parser.add_argument("--only", default="", help="comma-separated workload names (default: all)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = [w.name for w in WORKLOADS]
    only = [n for n in args.only.split(",") if n]
    unknown = [n for n in only if n not in names]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)} (choose from {', '.join(names)})")
    workloads = [w for w in WORKLOADS if (not only or w.name in only)
                 and not (args.skip_wide and w.name == "784-1000-1000-10")]  # fmt: skip
    peak = peak_gflops()
    print(f"{os.cpu_count()} CPUs; one-core float64 peak (1024^3 BLAS product, one thread): {peak:.1f} GFLOP/s; "
          f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)  # fmt: skip
    busy = spinner() if args.busy else None
    try:
        with tempfile.TemporaryDirectory(prefix="symcompile-epochs-") as folder:
            times, cpu, differences = measure(workloads, args.rounds, folder)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(f"\n{'busy (a process spinning on one core)' if args.busy else 'no extra load'}; {args.rounds} rounds; "
          f"uptime at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}\n")  # fmt: skip
    print(table(workloads, times, cpu, differences, peak))


if __name__ == "__main__":
    main()
