"""GFLOP/s of the dense runtime's layer products (symcompile/runtime/dense.py: `affine`, `backprop`,
`weight_grad`) on issue 22's shapes, each product's share of an epoch, and the machine's measured peak.

    python benchmarks/dense_products/bench.py [--repeats 7] [--asm]

Shapes: digits 64-32-10 full batch (1,797 samples: 28 blocks of 64 and a narrow block of 32 for the last 5
samples), digits in mini-batches of 32 (each batch one narrow block of 32), and 2-16-16-1 on 4,096 samples
(64 blocks of 64). Each product is called directly, as the loss-and-gradient loop calls it, on one block of
random data, many times per timing (the data stays in L1, as it does in a block's pass); medians over rounds
with the products interleaved. The share of the epoch: the product's time per block, times the blocks of an
epoch, over an epoch of train() on one thread (full batch: `update="simultaneous"`; batch 32: Adam). The peak:
benchmarks/peak_flops.py's gflops() (BLAS dgemm on one thread). `--asm` prints the hot loops' vector FMAs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from symcompile.runtime import dense

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # the checkout: benchmarks.bench
from peak_flops import gflops, one_thread  # noqa: E402

KINDS = ("forward", "backprop", "weight_grad")


@numba.njit(cache=False, error_model="numpy")
def run_product(kind, W, bias, a, z, dact, gW, gb, reps, block):
    """`reps` calls of one product on one block, as block_loss_and_grad makes them (block: 64 or 32)."""
    for _ in range(reps):
        if block == 64:
            if kind == 0:
                dense.affine(W, bias, a, z, 64)
            elif kind == 1:
                dense.backprop(W, z, dact, a, 64)
            else:
                dense.weight_grad(a, z, gW, gb)
        else:
            if kind == 0:
                dense.affine(W, bias, a, z, 32)
            elif kind == 1:
                dense.backprop(W, z, dact, a, 32)
            else:
                dense.weight_grad(a, z, gW, gb)


class Product:
    """One layer product on one block: n_in x n_out weights, `block` samples; `calls`: blocks per epoch."""

    def __init__(self, workload, kind, n_in, n_out, block, calls):
        self.workload, self.kind, self.n_in, self.n_out, self.block, self.calls = (
            workload, kind, n_in, n_out, block, calls)  # fmt: skip
        rng = np.random.default_rng(n_in * 100 + n_out)
        self.W = rng.standard_normal((n_in, n_out))
        self.bias = rng.standard_normal(n_out)
        self.a = rng.standard_normal((n_in, block))  # inputs (forward, weight_grad) or delta_in (backprop)
        self.z = rng.standard_normal((n_out, block))  # outputs (forward) or delta_out (backprop, weight_grad)
        self.dact = rng.standard_normal((n_in, block))
        self.gW, self.gb = np.zeros((n_in, n_out)), np.zeros(n_out)
        self.flops = 2 * n_in * n_out * block

    def name(self):
        shape = {"forward": f"{self.n_in}->{self.n_out}", "backprop": f"{self.n_out}->{self.n_in}",
                 "weight_grad": f"{self.n_in}x{self.n_out}"}[self.kind]  # fmt: skip
        return f"{self.kind} {shape}"

    def run(self, reps):
        run_product(KINDS.index(self.kind), self.W, self.bias, self.a, self.z, self.dact, self.gW, self.gb, reps,
                    self.block)  # fmt: skip


def layer_products(workload, layers, blocks):
    """Every product of a block's pass: the forward products, the weight gradients, the backward products
    (none into the inputs)."""
    products = []
    for kind in KINDS:
        for l, (n_in, n_out) in enumerate(zip(layers, layers[1:])):
            if kind == "backprop" and l == 0:
                continue
            for width, count in blocks:
                products.append(Product(workload, kind, n_in, n_out, width, count))
    return products


def epoch_seconds(layers, samples, batch, repeats):
    """An epoch of train() on one thread (the module built here), median over `repeats`."""
    from benchmarks.bench.scenario_dataset import synthetic_data
    from benchmarks.bench.scenario_minibatch import digits_data, minibatch_model
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    folder = tempfile.mkdtemp(prefix="dense_products")
    if layers == (64, 32, 10):
        X, labels, _ = digits_data()
        module = load_module(build(minibatch_model(X, labels), folder).path)
    else:
        X, Y = synthetic_data(layers[0], layers[-1], samples, 0)
        module = load_module(build(_small_model(X, Y), folder).path)
    X, Y = module.X, module.Y
    epochs = 20
    if batch:
        options = dict(optimizer="adam", lr=0.01, batch_size=batch, seed=0)
    else:
        options = dict(update="simultaneous", lr=0.5, threads=1)
    module.train(module.INIT, X, Y, max_iter=1, tol=0.0, **options)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module.train(module.INIT, X, Y, max_iter=epochs, tol=0.0, **options)
        times.append((time.perf_counter() - start) / epochs)
    return statistics.median(times)


def _small_model(X, Y):
    from benchmarks.bench.scenario_dataset import DatasetSettings, workload_model
    from symcompile.mlp import MLPShape

    return workload_model("small", DatasetSettings(), (MLPShape((2, 16, 16, 1)), X, Y, 0.5, 20))


WORKLOADS = {  # name: (layers, samples, batch or 0 for full batch, [(block width, blocks per epoch)])
    "digits 64-32-10, full batch (1,797)": ((64, 32, 10), 1797, 0, [(64, 28), (32, 1)]),
    "digits 64-32-10, batches of 32": ((64, 32, 10), 1797, 32, [(32, 57)]),
    "2-16-16-1 x 4,096, full batch": ((2, 16, 16, 1), 4096, 0, [(64, 64)]),
}


def measure(products, repeats, seconds_per_timing=0.02):
    for product in products:
        product.run(1)
    reps = {}
    for product in products:  # enough calls for a timing of ~20 ms
        start = time.perf_counter()
        product.run(1000)
        reps[product] = max(100, int(1000 * seconds_per_timing / max(time.perf_counter() - start, 1e-9)))
    times = {product: [] for product in products}
    for _ in range(repeats):
        for product in products:
            start = time.perf_counter()
            product.run(reps[product])
            times[product].append((time.perf_counter() - start) / reps[product])
    return {product: statistics.median(t) for product, t in times.items()}


def hot_loops_asm():
    """The vector FMAs (and their register width) in each compiled product, on digits' 64->32 layer (2-16-16-1's
    2->16 and 16->1 for the loops of few inputs or outputs): fresh copies of the runtime's loops, called here (Numba
    shows no code for what it loaded from its cache)."""
    products = {"affine_pairs": ("forward", 64, 32), "affine_few_inputs": ("forward", 2, 16),
                "backprop_fours": ("backprop", 32, 10), "backprop_few_outputs": ("backprop", 16, 1),
                "affine": ("forward", 64, 32), "backprop": ("backprop", 32, 10)}  # fmt: skip
    if hasattr(dense, "affine_pairs"):  # (after the change, affine and backprop only choose one of these)
        del products["affine"], products["backprop"]
    lines = []
    for name, (kind, n_in, n_out) in products.items():
        dispatcher = getattr(dense, name, None)
        if dispatcher is None:
            continue
        fresh = numba.njit(**{**dispatcher.targetoptions, "cache": False})(dispatcher.py_func)
        for block in (64, 32):
            p = Product("", kind, n_in, n_out, block, 0)
            fresh(p.W, p.bias, p.a, p.z, block) if kind == "forward" else fresh(p.W, p.z, p.dact, p.a, block)
        for signature in fresh.signatures:
            lines.append(f"{name}, block {signature[-1].literal_value}: " + fma_summary(fresh.inspect_asm(signature)))
    for block in (64, 32):
        p = Product("", "weight_grad", 64, 32, block, 0)
        weight_grad_only(p.a, p.z, p.gW, p.gb)
    for signature in weight_grad_only.signatures:  # (one: the block's width is a run-time value here)
        asm = weight_grad_only.inspect_asm(signature)
        lines.append(f"weight_grad, inlined into a caller of its own: {fma_summary(asm)}")
    return lines


@numba.njit(cache=False, error_model="numpy")
def weight_grad_only(a, delta, gW, gb):
    dense.weight_grad(a, delta, gW, gb)


def fma_summary(asm):
    counts = {}
    for match in re.finditer(r"\b(vfn?m(?:add|sub)\d+[sp]d)\s+[^\n]*?%?([xyz]mm)\d+", asm):
        key = f"{match.group(1)} {match.group(2)}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{count} {key}" for key, count in sorted(counts.items())) or "no FMA"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--asm", action="store_true")
    args = parser.parse_args(argv)
    numba.set_num_threads(1)
    with one_thread():
        peak = gflops(np.float64, 1024, 5)
    print(f"load average {os.getloadavg()[0]:.2f}; peak (BLAS dgemm, one thread, float64): {peak:.1f} GFLOP/s")
    for workload, (layers, samples, batch, blocks) in WORKLOADS.items():
        products = layer_products(workload, layers, blocks)
        medians = measure(products, args.repeats)
        epoch = epoch_seconds(layers, samples, batch, args.repeats)
        print(f"\n{workload}: epoch {epoch * 1e3:.3f} ms (train(), one thread)")
        print("| product | block | us per block | GFLOP/s | of peak | share of the epoch |")
        print("| --- | --- | --- | --- | --- | --- |")
        total_share = total_flops = total_time = 0.0
        for product in products:
            seconds = medians[product]
            rate = product.flops / seconds / 1e9
            share = seconds * product.calls / epoch
            total_share += share
            total_flops += product.flops * product.calls
            total_time += seconds * product.calls
            print(f"| {product.name()} | {product.block} | {seconds * 1e6:.3f} | {rate:.1f} | {rate / peak:.0%} "
                  f"| {share:.1%} |")  # fmt: skip
        rate = total_flops / total_time / 1e9
        print(f"| all products | | {total_time * 1e6:.1f} per epoch | {rate:.1f} | {rate / peak:.0%} "
              f"| {total_share:.1%} |")  # fmt: skip
        print(f"epoch: {total_flops / epoch / 1e9:.2f} GFLOP/s (the products' arithmetic over the epoch's time), "
              f"{total_flops / epoch / 1e9 / peak:.0%} of peak")  # fmt: skip
    if args.asm:
        print()
        for line in hot_loops_asm():
            print(line)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
