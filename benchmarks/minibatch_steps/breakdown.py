"""Where a mini-batch step's time goes: digits 64-32-10 tanh/softmax, Adam, batches of 32 (issue 22, item 1).

Times, side by side in one run (each row a median over repeats, the rows interleaved in every repeat):

- the whole epoch through the module's `train(optimizer="adam", batch_size=32, max_iter=k)`, per step (the
  call's time over its k epochs' steps);
- each thing the mini-batch loop (symcompile/runtime/loops.py, `train_mini_batches`) does per step, called the way
  the loop calls it (compiled code calling the kernels through function pointers, `reps` calls per timing):
  the gather of a batch, the loss-and-gradient kernel on the 32-sample batch, the Adam step over all weights,
  the finiteness and tolerance tests; per epoch, the shuffle (shared out over the epoch's steps); per call, the
  loss on all samples at the start (the divergence limit) and at the end (the final loss), shared out over the
  call's steps;
- for reference: gather, kernel and Adam step one after the other in a compiled loop (the step without the loop's
  bookkeeping), the kernel on one full 64-sample block, and a module built with blocks of 32 on the batch;
- JAX's step, as the bench (`python -m benchmarks --scenario minibatch`) trains it: the same epochs, timed
  interleaved with the rest (its own order of the samples; the same work).

The row "rest of the loop" is the step's time less the parts: the loop's own bookkeeping.

    python benchmarks/minibatch_steps/breakdown.py [--repeats 15] [--epochs 20]

Run it against another checkout with PYTHONPATH=<checkout> (the generated modules go to a folder of its own).
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
from pathlib import Path

import numba
import numpy as np
from numba import types

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the checkout: benchmarks.bench, and the tests' references

import symcompile
from benchmarks.bench.dense_bench import standalone_source
from benchmarks.bench.scenario_minibatch import (
    LAYERS,
    MinibatchSettings,
    digits_data,
    jax_adam,
    minibatch_model,
)
from references.numpy_mlp import MlpLayout
from symcompile.mlp import MLPShape
from symcompile.pipeline import build
from symcompile.runtime import arrays, loops, rules
from symcompile.runtime.pointers import function_value
from symcompile.runtime.signatures import LOSS_AND_GRAD, MATRIX, VECTOR
from symcompile.writer import load_module

BATCH = 32
LR = 0.01
_I = types.int64
_njit = {"cache": True, "error_model": "numpy"}


@numba.njit(types.void(MATRIX, MATRIX, _I[::1], MATRIX, MATRIX, _I), **_njit)
def repeat_gather(X, Y, order, X_batch, Y_batch, reps):
    """`reps` gathers of consecutive batches of `order`, as the loop takes them."""
    n_batches = X.shape[0] // X_batch.shape[0]
    for r in range(reps):
        loops.gather(X, Y, order, (r % n_batches) * X_batch.shape[0], X_batch, Y_batch)


@numba.njit(types.float64(LOSS_AND_GRAD, VECTOR, MATRIX, MATRIX, VECTOR, _I), **_njit)
def repeat_loss_and_grad(loss_and_grad, w, X, Y, grad, reps):
    total = 0.0
    for _ in range(reps):
        total += loss_and_grad(w, X, Y, grad)
    return total


@numba.njit(types.void(rules.STEP, VECTOR, VECTOR, MATRIX, VECTOR, VECTOR, VECTOR, _I), **_njit)
def repeat_step(step, w, grad, state, hyperparameters, previous, steps, reps):
    for t in range(reps):
        step(w, grad, state, t, hyperparameters, previous, steps)


@numba.njit(types.float64(LOSS_AND_GRAD, rules.STEP, MATRIX, MATRIX, _I[::1], MATRIX, MATRIX, VECTOR, VECTOR, MATRIX,
                          VECTOR, VECTOR, VECTOR, _I), **_njit)  # fmt: skip
def repeat_steps(loss_and_grad, step, X, Y, order, X_batch, Y_batch, w, grad, state, hyperparameters, previous, steps,
                 reps):  # fmt: skip
    """`reps` steps of gather, loss and gradient, Adam: the loop's step without its bookkeeping."""
    n_batches = X.shape[0] // X_batch.shape[0]
    total = 0.0
    for t in range(reps):
        loops.gather(X, Y, order, (t % n_batches) * X_batch.shape[0], X_batch, Y_batch)
        total += loss_and_grad(w, X_batch, Y_batch, grad)
        step(w, grad, state, t, hyperparameters, previous, steps)
    return total


@numba.njit(types.boolean(VECTOR, VECTOR, types.float64, _I), **_njit)
def repeat_tests(w, steps, tol, reps):
    """What the loop tests after each step: the loss and weights finite, every step below tol."""
    ok = True
    for _ in range(reps):
        ok &= arrays.all_finite(w)
        ok &= arrays.all_below(steps, tol)
    return ok


@numba.njit(types.void(_I[::1], types.uint64[::1], _I), **_njit)
def repeat_shuffle(order, rng, reps):
    for _ in range(reps):
        loops.shuffle(order, rng)


def block_module(block):
    """The digits network's dense kernels as a module of their own, with blocks of `block` samples."""
    shape = MLPShape(tuple(LAYERS), "tanh", "softmax", "softmax_cross_entropy")
    folder = tempfile.mkdtemp(prefix="breakdown_block")
    path = os.path.join(folder, f"breakdown_block{block}.py")
    with open(path, "w") as file:
        file.write(standalone_source(shape, block=block))
    spec = importlib.util.spec_from_file_location(f"breakdown_block{block}", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parts(module, epochs):
    """(steps an epoch, {row name: (function of reps, reps per timing, steps per call)}): each thing timed, and how
    many steps share one call of it (reps None: a whole training run, called without arguments)."""
    X, Y = module.X, module.Y
    n = X.shape[0]
    steps_per_epoch = -(-n // BATCH)
    rng = np.random.default_rng(0)
    order = rng.permutation(n).astype(np.int64)
    X_batch, Y_batch = np.empty((BATCH, X.shape[1])), np.empty((BATCH, Y.shape[1]))
    loops.gather(X, Y, order, 0, X_batch, Y_batch)
    X_block, Y_block = np.empty((64, X.shape[1])), np.empty((64, Y.shape[1]))
    loops.gather(X, Y, order, 0, X_block, Y_block)
    w = module.INIT.copy()
    grad = np.empty_like(w)
    kernel = function_value(module._loss_and_grad_kernel, LOSS_AND_GRAD)
    kernel(w, X_batch, Y_batch, grad)
    adam = rules.RULES["adam"]
    hyper = rules.vector({"lr": LR})
    state, previous, steps = rules.init(adam, w.shape[0]), np.empty_like(w), np.full_like(w, 1e-3)
    w_step, w_steps, state_steps = w.copy(), w.copy(), rules.init(adam, w.shape[0])
    step = function_value(adam.step, rules.STEP)
    block32 = function_value(block_module(32)._loss_and_grad_kernel, LOSS_AND_GRAD)
    order_copy, seed = order.copy(), np.array([0], dtype=np.uint64)

    def train(k):
        return lambda: module.train(module.INIT, X, Y, lr=LR, max_iter=k, optimizer="adam", batch_size=BATCH, seed=0)

    jax_train = jax_adam(MlpLayout(LAYERS, module.PARAMS), X, Y.argmax(axis=1),
                         MinibatchSettings(lr=LR, batch_size=BATCH, epochs=epochs))  # fmt: skip
    return steps_per_epoch, {
        "whole step (train(), epoch / steps)": (train(epochs), None, epochs * steps_per_epoch),
        "[peer] JAX's step (the bench's jit-compiled epochs, epoch / steps)": (
            lambda: jax_train(module.INIT),
            None,
            epochs * steps_per_epoch,
        ),
        "gather a batch (loops.gather)": (lambda r: repeat_gather(X, Y, order, X_batch, Y_batch, r), 2000, 1),
        "loss and gradient, 32-sample batch (module kernel)": (
            lambda r: repeat_loss_and_grad(kernel, w, X_batch, Y_batch, grad, r),
            500,
            1,
        ),
        "Adam step over all weights (rules.adam_step)": (
            lambda r: repeat_step(step, w_step, grad, state, hyper, previous, steps, r),
            1000,
            1,
        ),
        "finite and tol tests (all_finite, all_below)": (lambda r: repeat_tests(w, steps, 0.0, r), 2000, 1),
        "shuffle (per epoch, shared out over its steps)": (
            lambda r: repeat_shuffle(order_copy, seed, r),
            200,
            steps_per_epoch,
        ),
        "loss and gradient on all samples, at train()'s start and end (per call, shared out)": (
            lambda r: repeat_loss_and_grad(kernel, w, X, Y, grad, r),
            2,
            epochs * steps_per_epoch / 2,
        ),
        "[ref] gather, loss and gradient, Adam step: one after the other in a compiled loop": (
            lambda r: repeat_steps(
                kernel, step, X, Y, order, X_batch, Y_batch, w_steps, grad, state_steps, hyper, previous, steps, r
            ),
            500,
            1,
        ),
        "[ref] loss and gradient, one 64-sample block": (
            lambda r: repeat_loss_and_grad(kernel, w, X_block, Y_block, grad, r),
            500,
            1,
        ),
        "[ref] loss and gradient, 32-sample batch, module with blocks of 32": (
            lambda r: repeat_loss_and_grad(block32, w, X_batch, Y_batch, grad, r),
            500,
            1,
        ),
    }


def measure(rows, repeats):
    """Seconds per step of each row: medians over `repeats` rounds, every row timed once per round."""
    times = {name: [] for name in rows}
    for name, (run, reps, steps_per_call) in rows.items():  # warm up: compile or load every function
        run() if reps is None else run(1)
    for _ in range(repeats):
        for name, (run, reps, steps_per_call) in rows.items():
            start = time.perf_counter()
            if reps is None:  # a whole training run
                run()
                seconds = (time.perf_counter() - start) / steps_per_call
            else:
                run(reps)
                seconds = (time.perf_counter() - start) / reps / steps_per_call
            times[name].append(seconds)
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def table(results):
    whole = results[next(iter(results))][0]
    lines = ["| per step | median (us) | min-max (us) | share of the step |", "| --- | --- | --- | --- |"]
    accounted = 0.0
    for name, (median, low, high) in results.items():
        share = f"{100 * median / whole:.0f}%"
        if not name.startswith(("whole", "[ref]", "[peer]")):
            accounted += median
        lines.append(f"| {name} | {median * 1e6:.2f} | {low * 1e6:.2f}-{high * 1e6:.2f} | {share} |")
    rest = whole - accounted
    rest_row = f"| rest of the loop (the step less the parts below) | {rest * 1e6:.2f} | | {100 * rest / whole:.0f}% |"
    lines.insert(4, rest_row)
    return "\n".join(lines)


def machine_load():
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per timed train() call")
    parser.add_argument("--out-dir", default=None, help="where the module is built (default: a temporary folder)")
    args = parser.parse_args()
    load = machine_load()
    X, labels, source = digits_data()
    built = build(minibatch_model(X, labels), args.out_dir or tempfile.mkdtemp(prefix="breakdown"))
    module = load_module(built.path)
    steps_per_epoch, rows = parts(module, args.epochs)
    results = measure(rows, args.repeats)
    print(f"symcompile from {os.path.dirname(symcompile.__file__)}; {source}, {X.shape[0]} samples, batch {BATCH} "
          f"({steps_per_epoch} steps an epoch), Adam lr {LR}; {args.repeats} repeats, numba threads "
          f"{numba.get_num_threads()}")  # fmt: skip
    print(f"load before: {load}")
    print(table(results))
    whole, jax = (results[name][0] for name in list(results)[:2])
    print(f"epoch: symcompile {whole * steps_per_epoch * 1e3:.3f} ms, JAX {jax * steps_per_epoch * 1e3:.3f} ms "
          f"(symcompile / JAX: {whole / jax:.2f})")  # fmt: skip
    print(f"load after: {machine_load()}")


if __name__ == "__main__":
    main()
