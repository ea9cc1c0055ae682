"""The vectorized elementary functions against libm, in speed and accuracy.

    python -m symcompile.bench.vecmath_bench [--repeats 41] [--accuracy-points 4000]

Speed: ns per value of a Numba loop over 65,536 float64 values, one loop
calling `math.exp`/`math.log`/... (as the generated module's helpers do), one
calling the `symcompile.vecmath` function; the two are timed in turns and each
figure is the median of the repeats.

Accuracy: the largest error in ulp (of the exact result rounded to float64) and
the largest relative error, against mpmath at 50 digits on points spread over
the function's whole domain (`domain_points`, which tests/test_vecmath.py also
uses). Relative errors are taken where the exact result is a normal float;
below that (subnormal results) the ulp error says it.
"""

from __future__ import annotations

import argparse
import math

import mpmath
import numba
import numpy as np

from symcompile import vecmath
from symcompile.bench.numba_seed import (
    stable_sigmoid,
    stable_softplus,
)  # libm forms, as templates/helpers.py.j2 writes them
from symcompile.bench.timing import load_average, machine

VALUES = 65_536
SMALLEST_NORMAL = 2.2250738585072014e-308

MPMATH = {  # the exact functions, for mpmath numbers
    "_vexp": mpmath.exp,
    "_vlog": mpmath.log,
    "_vlog1p": mpmath.log1p,
    "_vsigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
    "_vsoftplus": lambda x: mpmath.log1p(mpmath.exp(x)),
    "_vtanh": mpmath.tanh,
}

EDGES = [  # values every function is checked at (those outside its domain are dropped)
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    1e-310,
    -1e-310,
    SMALLEST_NORMAL,
    -SMALLEST_NORMAL,
    2.0**-53,
    -(2.0**-53),
    1.1102230246251565e-16,
    0.5,
    1.0,
    -1.0,
    2.0,
    0.55,
    -0.55,
    0.5493061443340548,
    19.0,
    20.0,
    36.7,
    37.0,
    709.782712893384,
    709.7827128933841,
    -708.3964185322641,
    -708.4,
    -745.1332191019411,
    -745.1332191019412,
    1e300,
    -1e300,
    1.7976931348623157e308,
    -1.7976931348623157e308,
]


def _log_uniform(rng, count, low_exponent, high_exponent):
    """Magnitudes 10**u, u uniform: every binade of the range gets points."""
    return 10.0 ** rng.uniform(low_exponent, high_exponent, count)


def domain_points(name, count, seed=0):
    """About `count` finite float64 inputs across the whole domain of `name`, dense where it is delicate."""
    rng = np.random.default_rng(seed)
    part = count // 4
    magnitudes = _log_uniform(rng, 2 * part, -323.5, 308.2)
    signs = np.where(rng.random(2 * part) < 0.5, -1.0, 1.0)
    near = {  # where each function turns: its own range reduction, thresholds, cancellation
        "_vexp": rng.uniform(-746.0, 710.0, part),
        "_vlog": 1.0 + signs[:part] * _log_uniform(rng, part, -17.0, -0.3),
        "_vlog1p": np.concatenate(
            [
                -1.0 + _log_uniform(rng, part // 2, -16.0, 0.0),
                signs[: part - part // 2] * _log_uniform(rng, part - part // 2, -20.0, 0.0),
            ]
        ),
        "_vsigmoid": rng.uniform(-750.0, 750.0, part),
        "_vsoftplus": rng.uniform(-750.0, 750.0, part),
        "_vtanh": np.concatenate([rng.uniform(-20.0, 20.0, part // 2), rng.uniform(-1.0, 1.0, part - part // 2)]),
    }[name]
    points = np.concatenate([signs * magnitudes, near, rng.uniform(-40.0, 40.0, part), EDGES])
    if name == "_vlog":
        points = points[points > 0.0]
    if name == "_vlog1p":
        points = points[points > -1.0]
    return points


def apply(function, points):
    """`function` over `points` in a vectorized loop (with the caller's fastmath on: it must not reach in)."""
    return vector_loop(function, fastmath=True)(points)


_LOOPS = {}


def vector_loop(function, fastmath=False):
    """A compiled loop applying `function` to every element of a float64 array (one per function and flag)."""
    key = (function, fastmath)
    if key not in _LOOPS:

        @numba.njit(error_model="numpy", fastmath=fastmath)
        def loop(points):
            out = np.empty_like(points)
            for i in range(points.shape[0]):
                out[i] = function(points[i])
            return out

        _LOOPS[key] = loop
    return _LOOPS[key]


def errors(name, points, values):
    """(largest ulp error, largest relative error over normal results) of `values` against mpmath."""
    exact_function = MPMATH[name]
    worst_ulp = worst_relative = 0.0
    with mpmath.workdps(50):
        for point, value in zip(points.tolist(), values.tolist()):
            exact = exact_function(mpmath.mpf(point))
            rounded = float(exact)
            if math.isinf(rounded):  # beyond the largest float: right only if the value is inf too
                worst_ulp = max(worst_ulp, 0.0 if value == rounded else math.inf)
                continue
            error = abs(mpmath.mpf(value) - exact)
            worst_ulp = max(worst_ulp, float(error / math.ulp(rounded)))
            if abs(rounded) >= SMALLEST_NORMAL:
                worst_relative = max(worst_relative, float(error / abs(exact)))
    return worst_ulp, worst_relative


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
        "log": (_libm_log, vecmath._vlog, _log_uniform(rng, VALUES, -10.0, 10.0)),
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
        prog="python -m symcompile.bench.vecmath_bench", description=__doc__.split("\n")[0]
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
