"""The vectorized elementary functions' accuracy: exact values by mpmath, and points over each whole domain.

The reference tests/test_vecmath.py checks `symcompile.vecmath` against, and
the accuracy table of `python -m benchmarks.bench.vecmath_bench`: the largest
error in ulp (of the exact result rounded to float64) and the largest relative
error, against mpmath at 50 digits on points spread over the function's whole
domain (`domain_points`). Relative errors are taken where the exact result is a
normal float; below that (subnormal results) the ulp error says it.
"""

from __future__ import annotations

import math

import mpmath
import numba
import numpy as np

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


def log_uniform(rng, count, low_exponent, high_exponent):
    """Magnitudes 10**u, u uniform: every binade of the range gets points."""
    return 10.0 ** rng.uniform(low_exponent, high_exponent, count)


def domain_points(name, count, seed=0):
    """About `count` finite float64 inputs across the whole domain of `name`, dense where it is delicate."""
    rng = np.random.default_rng(seed)
    part = count // 4
    magnitudes = log_uniform(rng, 2 * part, -323.5, 308.2)
    signs = np.where(rng.random(2 * part) < 0.5, -1.0, 1.0)
    near = {  # where each function turns: its own range reduction, thresholds, cancellation
        "_vexp": rng.uniform(-746.0, 710.0, part),
        "_vlog": 1.0 + signs[:part] * log_uniform(rng, part, -17.0, -0.3),
        "_vlog1p": np.concatenate(
            [
                -1.0 + log_uniform(rng, part // 2, -16.0, 0.0),
                signs[: part - part // 2] * log_uniform(rng, part - part // 2, -20.0, 0.0),
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
