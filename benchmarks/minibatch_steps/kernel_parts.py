"""Where the loss-and-gradient kernel's time goes on a 32-sample batch of digits (64-32-10 tanh/softmax, blocks
of 64): each piece of a block's pass (symcompile/runtime/dense.py, `block_loss_and_grad`) called directly, as the
narrow path calls it, `--reps` times per timing, medians over repeats with the pieces interleaved.

    python benchmarks/minibatch_steps/kernel_parts.py [--repeats 7] [--reps 2000]

Reads the runtime's internals (this checkout's: the matrix loops over 32 of a block's 64 columns, the module's
per-block functions over all 64); a rough guide to the kernel's time, not its exact split (the pieces run on
warm data here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
import statistics
import tempfile
import time

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the checkout: benchmarks.bench, and the tests' references

from benchmarks.bench.scenario_minibatch import digits_data, minibatch_model
from symcompile.pipeline import build
from symcompile.runtime.dense import (
    affine,
    backprop,
    biases,
    load_inputs,
    rows,
    unit_offsets,
    units,
    weight_grad,
)
from symcompile.writer import load_module

BLOCK, WIDTH = 64, 32
PIECES = ("the inputs into the block (load_inputs)", "layer 1 product 64->32 (affine)", "layer 2 product 32->10",
          "tanh and its derivative, 32 x 64 (module)", "softmax cross-entropy, 10 x 64 (module)",
          "layer 2 weight gradient", "backward product 10->32 (backprop)", "layer 1 weight gradient",
          "the kernel's allocations (one call's)", "zero and scale the gradient (the module's kernel)")  # fmt: skip


@numba.njit(cache=True, error_model="numpy")
def run_piece(hidden, output_loss, w, X, Y, g, layers, reps, piece):
    at, n_units = unit_offsets(layers)
    n_out_units = n_units - at[1]
    a, z = np.zeros(n_units * BLOCK), np.zeros(n_out_units * BLOCK)
    d, delta = np.zeros(n_out_units * BLOCK), np.zeros(n_out_units * BLOCK)
    b, lane_loss = biases(w, layers, at), np.zeros(BLOCK)
    W1, W2 = rows(w, layers[0, 2], 64, 32), rows(w, layers[1, 2], 32, 10)
    G1, G2 = rows(g, layers[0, 2], 64, 32), rows(g, layers[1, 2], 32, 10)
    a0, a1 = units(a, 0, 64, BLOCK), units(a, 64, 32, BLOCK)
    z1, z2, d1 = units(z, 0, 32, BLOCK), units(z, 32, 10, BLOCK), units(d, 0, 32, BLOCK)
    delta1, delta2 = units(delta, 0, 32, BLOCK), units(delta, 32, 10, BLOCK)
    gb1, gb2 = g[layers[0, 3] : layers[0, 3] + 32], g[layers[1, 3] : layers[1, 3] + 10]
    check = 0.0
    for _ in range(reps):
        if piece == 0:
            load_inputs(X, 0, WIDTH, a0, WIDTH)
        elif piece == 1:
            affine(W1, b[0:], a0, z1, WIDTH)
        elif piece == 2:
            affine(W2, b[32:], a1, z2, WIDTH)
        elif piece == 3:
            hidden(z1, a1, d1)
        elif piece == 4:
            output_loss(z2, Y, 0, WIDTH, delta2, lane_loss)
        elif piece == 5:
            weight_grad(a1, delta2, G2, gb2, min(WIDTH, a1.shape[1]))
        elif piece == 6:
            backprop(W2, delta2, d1, delta1, WIDTH)
        elif piece == 7:
            weight_grad(a0, delta1, G1, gb1, min(WIDTH, a0.shape[1]))
        elif piece == 8:  # what the runtime's loop allocates per call
            at_, n_ = unit_offsets(layers)
            buffers = (np.empty(n_ * BLOCK), np.empty((n_ - at_[1]) * BLOCK), np.empty((n_ - at_[1]) * BLOCK),
                       np.empty((n_ - at_[1]) * BLOCK), biases(w, layers, at_), np.zeros(n_ - at_[1]), np.empty(0),
                       np.zeros(BLOCK))  # fmt: skip
            check += buffers[4][0]
        else:
            for j in range(g.shape[0]):
                g[j] = 0.0
            for j in range(g.shape[0]):
                g[j] *= 0.5
    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    X, labels, _ = digits_data()
    module = load_module(build(minibatch_model(X, labels), tempfile.mkdtemp(prefix="kernel_parts")).path)
    w, g = module.INIT.copy(), np.zeros_like(module.INIT)
    X_batch, Y_batch = module.X[:WIDTH].copy(), module.Y[:WIDTH].copy()
    arguments = (module._dense_hidden, module._dense_output_loss, w, X_batch, Y_batch, g, module._DENSE_LAYERS)
    for piece in range(len(PIECES)):
        run_piece(*arguments, 1, piece)
    times = [[] for _ in PIECES]
    for _ in range(args.repeats):
        for piece in range(len(PIECES)):
            start = time.perf_counter()
            run_piece(*arguments, args.reps, piece)
            times[piece].append((time.perf_counter() - start) / args.reps)
    print("| piece of the kernel, 32-sample batch | median (us) |\n| --- | --- |")
    medians = [statistics.median(t) for t in times]
    for name, median in zip(PIECES, medians):
        print(f"| {name} | {median * 1e6:.2f} |")
    print(f"| sum | {sum(medians) * 1e6:.2f} |")


if __name__ == "__main__":
    main()
