"""The bit-for-bit check of the register-blocked layer products (symcompile/runtime/dense.py: `affine`,
`backprop`) against the loops of one row they replaced (copied below from f47e897), on random data, every shape
from 1 to 19 inputs and outputs, blocks of 64 and 32: every output element equal to the last bit.

    python benchmarks/dense_products/same_products.py
"""

from __future__ import annotations

import sys

import numba
import numpy as np

from symcompile.runtime import dense

BLOCK_LOOP = dict(cache=True, error_model="numpy", fastmath={"contract"})  # as in runtime/dense.py


@numba.njit(**BLOCK_LOOP)
def affine_one_row(W, bias, a, z, block):
    numba.literally(block)
    n_in = a.shape[0]
    n_fours = n_in - n_in % 4
    for j in range(z.shape[0]):
        for s in range(block):
            z[j, s] = bias[j]
        for i in range(0, n_fours, 4):
            w0, w1, w2, w3 = W[i, j], W[i + 1, j], W[i + 2, j], W[i + 3, j]
            for s in range(block):
                z[j, s] += w0 * a[i, s] + w1 * a[i + 1, s] + w2 * a[i + 2, s] + w3 * a[i + 3, s]
        for i in range(n_fours, n_in):
            wij = W[i, j]
            for s in range(block):
                z[j, s] += wij * a[i, s]


@numba.njit(**BLOCK_LOOP)
def backprop_one_row(W, delta_out, dact, delta_in, block):
    numba.literally(block)
    n_out = delta_out.shape[0]
    n_fours = n_out - n_out % 4
    for i in range(delta_in.shape[0]):
        for s in range(block):
            delta_in[i, s] = 0.0
        for j in range(0, n_fours, 4):
            w0, w1, w2, w3 = W[i, j], W[i, j + 1], W[i, j + 2], W[i, j + 3]
            for s in range(block):
                delta_in[i, s] += (w0 * delta_out[j, s] + w1 * delta_out[j + 1, s] + w2 * delta_out[j + 2, s]
                                   + w3 * delta_out[j + 3, s])  # fmt: skip
        for j in range(n_fours, n_out):
            wij = W[i, j]
            for s in range(block):
                delta_in[i, s] += wij * delta_out[j, s]
        for s in range(block):
            delta_in[i, s] *= dact[i, s]


@numba.njit(cache=True)
def run_all(W, bias, a, z, z_ref, dact, delta_in, delta_ref, block):
    if block == 64:
        dense.affine(W, bias, a, z, 64)
        affine_one_row(W, bias, a, z_ref, 64)
        dense.backprop(W, z, dact, delta_in, 64)
        backprop_one_row(W, z, dact, delta_ref, 64)
    else:
        dense.affine(W, bias, a, z, 32)
        affine_one_row(W, bias, a, z_ref, 32)
        dense.backprop(W, z, dact, delta_in, 32)
        backprop_one_row(W, z, dact, delta_ref, 32)


def same(x, y):
    return np.array_equal(x.view(np.uint64), y.view(np.uint64))


def main():
    rng = np.random.default_rng(0)
    checked = differing = 0
    for block in (64, 32):
        for n_in in range(1, 20):
            for n_out in range(1, 20):
                W, bias = rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)
                a, dact = rng.standard_normal((n_in, block)), rng.standard_normal((n_in, block))
                z, z_ref = np.full((n_out, block), np.nan), np.full((n_out, block), np.nan)
                delta_in, delta_ref = np.full((n_in, block), np.nan), np.full((n_in, block), np.nan)
                run_all(W, bias, a, z, z_ref, dact, delta_in, delta_ref, block)
                for name, got, want in (("affine", z, z_ref), ("backprop", delta_in, delta_ref)):
                    checked += 1
                    if not same(got, want):
                        differing += 1
                        print(f"{name} {n_in}x{n_out} block {block}: DIFFERS, largest {np.max(np.abs(got - want)):.3g}")
    print(f"{checked} products checked, {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
