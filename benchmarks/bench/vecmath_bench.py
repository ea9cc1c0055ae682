"""The vectorized elementary functions against libm, in speed and accuracy.

    python -m benchmarks.bench.vecmath_bench [--repeats 41] [--accuracy-points 4000]   (from the checkout's root)

Speed: ns per value of a Numba loop over 65,536 float64 values, one loop
calling `math.exp`/`math.log`/... (as the generated module's helpers do), one
calling the `symcompile.vecmath` function; the two are timed in turns and each
figure is the median of the repeats.

Accuracy: the largest error in ulp (of the exact result rounded to float64) and
the largest relative error, against mpmath at 50 digits on points spread over
the function's whole domain: tests/references/vecmath_accuracy.py, which
tests/test_vecmath.py also checks with.
"""

from __future__ import annotations

import argparse
import math

import numba
import numpy as np

from symcompile import vecmath
from benchmarks.bench.numba_seed import (
    stable_sigmoid,
    stable_softplus,
)  # libm forms, as templates/helpers.py.j2 writes them
from benchmarks.bench.timing import load_average, machine
from references.vecmath_accuracy import MPMATH, apply, domain_points, errors, log_uniform, vector_loop

VALUES = 65_536


@numba.njit(error_model="numpy")
def _libm_exp(x):
    return math.exp(x)


@numba.njit(error_model="numpy")
def _libm_log(x):
    return math.log(x)


@numba.njit(error_model="numpy")
def _libm_tanh(x):
    return math.tanh(x)


def _bench_inputs(rng):
    """What the speed figures are taken on: activations' arguments, and positive values for log."""
    activations = rng.uniform(-30.0, 30.0, VALUES)
    return {
        "sigmoid": (stable_sigmoid, vecmath._vsigmoid, activations),
        "exp": (_libm_exp, vecmath._vexp, activations),
        "log": (_libm_log, vecmath._vlog, log_uniform(rng, VALUES, -10.0, 10.0)),
        "softplus": (stable_softplus, vecmath._vsoftplus, activations),
        "tanh": (_libm_tanh, vecmath._vtanh, activations),
    }


def time_pairs(repeats):
    """{function: (libm ns per value, vectorized ns per value)}, medians of interleaved repeats."""
    import time

    cases = _bench_inputs(np.random.default_rng(0))
    loops = {name: (vector_loop(libm), vector_loop(vector)) for name, (libm, vector, _) in cases.items()}
    times = {name: ([], []) for name in cases}
    for loop_pair, (_, _, points) in zip(loops.values(), cases.values()):
        for loop in loop_pair:
            loop(points)  # compile
    for _ in range(repeats):
        for name, (_, _, points) in cases.items():
            for loop, record in zip(loops[name], times[name]):
                start = time.perf_counter()
                loop(points)
                record.append((time.perf_counter() - start) / VALUES * 1e9)
    return {name: tuple(float(np.median(record)) for record in pair) for name, pair in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench.vecmath_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--accuracy-points", type=int, default=4000)
    args = parser.parse_args(argv)
    setting = machine()
    print(
        f"{setting['cpu']}, {setting['cpus']} CPUs, load {load_average()}; "
        f"{VALUES:,} values, median of {args.repeats} interleaved repeats"
    )
    print(f"{'function':<10} {'libm ns/value':>14} {'vectorized':>11} {'speed-up':>9}")
    for name, (libm, vector) in time_pairs(args.repeats).items():
        print(f"{name:<10} {libm:>14.2f} {vector:>11.2f} {libm / vector:>8.1f}x")
    print(f"\naccuracy against mpmath (50 digits), about {args.accuracy_points} points over each whole domain")
    print(f"{'function':<11} {'max ulp':>8} {'max relative':>13}")
    for name in MPMATH:
        points = domain_points(name, args.accuracy_points)
        ulp, relative = errors(name, points, apply(getattr(vecmath, name), points))
        print(f"{name:<11} {ulp:>8.2f} {relative:>13.2e}")
    print(f"load at the end {load_average()}")


if __name__ == "__main__":
    main()
