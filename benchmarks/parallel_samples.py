"""Does `numba.njit(parallel=True)` with `prange` over samples pay for the fused loss-and-gradient kernel?

    python benchmarks/parallel_samples.py [--sizes 100 10000 100000 1000000] [--repeats 15]

For each model and sample count N this times, side by side and alternating
call by call, the generated serial `_loss_and_grad_kernel` and a `prange`
variant of the very same straight-line code. The variant accumulates each
gradient entry in its own scalar (Numba turns those into per-thread
reductions; `grad[j] += ...` inside `prange` would race). It prints medians,
min-max and the ratio, and how far the parallel sums drift from the serial
ones (a parallel reduction adds in a different order).

This is a measurement, not product code: symcompile emits the serial kernel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numba
import numpy as np

# Run from a checkout, measure the checkout's symcompile (not some other installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from symcompile.emit import render_block, template_environment
from symcompile.mlp import mlp_model
from symcompile.names import NameTable
from symcompile.optimize import optimize
from symcompile.differentiate import differentiate
from symcompile.pipeline import build
from symcompile.printer import KernelPrinter
from symcompile.rewrite import rewrite
from symcompile.seed import seed_model
from symcompile.stable import helpers_used
from symcompile.writer import load_module


def models():
    softmax = dict(hidden_activation="tanh", output_activation="softmax", loss="softmax_cross_entropy")
    return [
        seed_model(),
        mlp_model("xor_2_3_1", [2, 3, 1], hidden_activation="tanh"),
        mlp_model("softmax_2_4_3", [2, 4, 3], **softmax),
    ]


def scalar_sums_kernel_source(model, parallel):
    """The fused kernel's straight-line code with one scalar accumulator per result, in a prange or plain loop."""
    rewritten, _ = rewrite(model)
    names = NameTable(model.params + model.inputs + model.targets)
    code = optimize(differentiate(rewritten), names.new_temporaries).loss_and_grad
    block = render_block(code, rewritten, names, KernelPrinter(names.code))
    sums = [f"acc{j}" for j in range(len(block.results))]  # acc0 is the loss, then one per parameter
    loop = "numba.prange" if parallel else "range"
    lines = block.param_loads + [f"{s} = 0.0" for s in sums] + [f"for n in {loop}(X.shape[0]):"]
    lines += ["    " + line for line in block.sample_lines]
    lines += [f"    {s} += {r}" for s, r in zip(sums, block.results)]
    lines += [f"grad[{j}] = {s} / X.shape[0]" for j, s in enumerate(sums[1:])] + [f"return {sums[0]} / X.shape[0]"]
    # The stable functions (sigmoid, softplus, logsumexp) the code calls, as the generated module defines them.
    helpers = (
        template_environment()
        .get_template("helpers.py.j2")
        .render(helpers=helpers_used([rhs for _, rhs in code.assignments] + list(code.results)))
    )
    return (
        f"import math\nimport numba\n{helpers}\n\n@numba.njit(parallel={parallel})\n"
        "def loss_and_grad(w, X, Y, grad):\n" + textwrap.indent("\n".join(lines), "    ") + "\n"
    )


def time_alternating(calls, repeats):
    """Median, min and max seconds of each call, the calls taking turns so that machine load hits them alike."""
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, record in zip(calls, times):
            start = time.perf_counter()
            call()
            record.append(time.perf_counter() - start)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def variants(model, folder):
    """The generated kernel, and the scalar-sums form of it run serially and with prange."""
    built = load_module(build(model, folder).path)._loss_and_grad_kernel
    kernels = {"generated": built}
    for label, parallel in (("scalar sums", False), ("prange", True)):
        path = folder / f"{model.name}_{'prange' if parallel else 'scalar'}.py"
        path.write_text(scalar_sums_kernel_source(model, parallel), encoding="utf-8")
        kernels[label] = load_module(path).loss_and_grad
    return kernels


def sample_data(model, n, rng):
    X = rng.uniform(-1, 1, (n, len(model.inputs)))
    if len(model.targets) == 1:
        return X, rng.integers(0, 2, (n, 1)).astype(float)
    return X, np.eye(len(model.targets))[rng.integers(0, len(model.targets), n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="symcompile-parallel-"))
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"numba {numba.__version__}, {threads} threads; median (min-max) per call of the fused kernel")
    header = ["model", "N", "generated", "scalar sums", "prange", "gen/prange", "drift"]
    print("{:<14} {:>8} {:>24} {:>24} {:>24} {:>10} {:>8}".format(*header))
    for model in models():
        kernels = variants(model, folder)
        rng = np.random.default_rng(0)
        for n in args.sizes:
            X, Y = sample_data(model, n, rng)
            w = rng.normal(size=len(model.params))
            grads = {label: np.empty_like(w) for label in kernels}
            losses = {label: kernel(w, X, Y, grads[label]) for label, kernel in kernels.items()}  # compiles
            base = "generated"
            drift = max(abs(losses["prange"] - losses[base]) / abs(losses[base]),
                        np.max(np.abs(grads["prange"] - grads[base])) / np.max(np.abs(grads[base])))  # fmt: skip
            calls = [lambda k=k, g=grads[label]: k(w, X, Y, g) for label, k in kernels.items()]
            times = time_alternating(calls, args.repeats)
            cells = [f"{m * 1e6:.1f} us ({lo * 1e6:.0f}-{hi * 1e6:.0f})" for m, lo, hi in times]
            ratio = times[0][0] / times[2][0]
            print(f"{model.name:<14} {n:>8} {cells[0]:>24} {cells[1]:>24} {cells[2]:>24} {ratio:>10.2f} {drift:>8.0e}")


if __name__ == "__main__":
    main()
