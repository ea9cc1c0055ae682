"""The options of a least-squares fit beyond plain lmder: fixed weights, bounds, measurement uncertainties (sigma)
and robust losses. Their checks run once per fit, in Python (`checked_options`); their maps run at every
evaluation of the residuals, in compiled code (`evaluate`, called by the solver in least_squares.py).

The solver minimizes 0.5 * sum(g**2) over internal variables q, one per free weight:

- weights: the kernel's w has every weight; a fixed one keeps its starting value, a free one is w(q) below.
- bounds: the bound transform of MINUIT and lmfit. Two-sided, w = lo + (hi - lo) * (sin q + 1) / 2; lower only,
  w = lo - 1 + sqrt(q**2 + 1); upper only, w = hi + 1 - sqrt(q**2 + 1); unbounded, w = q. Why this and not
  SciPy's trust-region reflective (`trf`): it keeps lmder as it is (MINPACK's steps and tests, which solve more
  NIST problems than SciPy's, and one compiled solver for every fit), with the exact Jacobian by the chain rule
  (dr/dq = dr/dw * dw/dq); trf would be a second solver (reflections, Coleman-Li scaling, its own subproblem).
  Its cost: at a bound active at the solution dw/dq = 0, so the Gauss-Newton model is flat along that weight
  and the last steps towards the bound converge linearly: more evaluations than trf there
  (benchmarks/bounded_fits.py counts both); the solution is the same.
- sigma: a standard deviation per residual (1-D: f = r / sigma) or their covariance matrix C (2-D: f = L^-1 r
  with C = L L^T, Cholesky), as scipy.optimize.curve_fit weighs its residuals; J likewise.
- loss: SciPy least_squares' robust losses rho, with cost = 0.5 * C**2 * sum(rho(f**2 / C**2)), C = f_scale. The
  solver sees g = C * sign(f) * sqrt(rho(f**2 / C**2)), so 0.5 * sum(g**2) is that cost exactly, and
  dg/df = rho'(z) / sqrt(rho(z) / z) with z = f**2 / C**2, which is 1 at f = 0 (rho(z)/z is computed in forms
  that keep their digits as z -> 0).
"""

import math
from typing import NamedTuple

import numba
import numpy as np

_njit = numba.njit(cache=True, error_model="numpy")

LOSSES = ("linear", "soft_l1", "huber", "cauchy", "arctan")  # codes 0..4 in compiled code
_LINEAR, _SOFT_L1, _HUBER, _CAUCHY, _ARCTAN = range(len(LOSSES))
# How a free weight depends on its internal variable (codes in compiled code).
_UNBOUNDED, _LOWER, _UPPER, _BOTH = range(4)
_EPS = np.finfo(np.float64).eps
# SciPy least_squares moves a start on a bound this far inside (relative, at least absolute): make_strictly_feasible.
_FEASIBLE_STEP = 1e-10


class FitOptions(NamedTuple):
    """A fit's options as the compiled solver takes them. free: the free weights' indices; kinds, lower, upper:
    each free weight's bound transform and bounds; sigma: 1-D standard deviations (empty: none); cholesky: the
    lower Cholesky factor of a 2-D sigma (0 x 0: none); loss: index into LOSSES; f_scale: C. start: the starting
    weights, moved strictly inside the bounds where they were on one (as SciPy's trf starts)."""

    free: np.ndarray
    kinds: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    sigma: np.ndarray
    cholesky: np.ndarray
    loss: int
    f_scale: float
    start: np.ndarray


def checked_options(w0, m, *, fixed=None, bounds=None, loss="linear", f_scale=1.0, sigma=None):
    """The options as FitOptions, or None where they ask for nothing beyond plain lmder (no fixed weight, no
    finite bound, no sigma, linear loss): those fits take the plain solver's path. A one-line TypeError or
    ValueError naming the first bad option. w0: the P starting weights; m: the number of residuals."""
    n = w0.shape[0]
    is_fixed = _fixed_mask(fixed, n)
    lower, upper = _bounds(bounds, n)
    loss_code = loss_index(loss)
    f_scale = _f_scale(f_scale)
    sigma, cholesky = _sigma(sigma, m)
    if np.any((w0 < lower) | (w0 > upper)):
        j = int(np.argmax((w0 < lower) | (w0 > upper)))
        raise ValueError(f"w0[{j}] = {w0[j]:g} is outside its bounds [{lower[j]:g}, {upper[j]:g}]")
    bounded = np.isfinite(lower) | np.isfinite(upper)
    if not is_fixed.any() and not bounded.any() and loss_code == _LINEAR and sigma.size == 0 and cholesky.size == 0:
        return None
    free = np.flatnonzero(~is_fixed)
    if free.size == 0:
        raise ValueError("every weight is fixed: there is nothing to fit")
    kinds = np.where(np.isfinite(lower), _LOWER, _UNBOUNDED) + np.where(np.isfinite(upper), _UPPER, 0)
    kinds = kinds[free].astype(np.int64)  # _LOWER + _UPPER == _BOTH
    start = _strictly_feasible(w0, lower, upper, is_fixed)
    return FitOptions(free, kinds, lower[free].copy(), upper[free].copy(), sigma, cholesky, loss_code, f_scale, start)


def _fixed_mask(fixed, n):
    """fixed (None, a boolean mask of the n weights, or their indices) as a boolean mask."""
    if fixed is None:
        return np.zeros(n, dtype=bool)
    values = np.asarray(fixed)
    if values.dtype == bool:
        if values.shape != (n,):
            raise ValueError(f"fixed as a mask must have one entry per weight, shape ({n},), not {values.shape}")
        return values.copy()
    if values.size == 0:
        return np.zeros(n, dtype=bool)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"fixed must be a boolean mask of the {n} weights or a list of their indices, not {fixed!r}")
    if values.min() < 0 or values.max() >= n:
        bad = values.min() if values.min() < 0 else values.max()
        raise ValueError(f"fixed: weight indices go from 0 to {n - 1}, not {bad}")
    mask = np.zeros(n, dtype=bool)
    mask[values] = True
    return mask


def _bounds(bounds, n):
    """(lower, upper) as float arrays of n, as SciPy's least_squares reads `bounds` (a pair of scalars or arrays,
    or an object with .lb and .ub such as scipy.optimize.Bounds)."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        bounds = (bounds.lb, bounds.ub)
    if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise TypeError(f"bounds must be a pair (lower, upper), not {bounds!r}")
    pair = []
    for name, value in zip(("lower", "upper"), bounds):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} bounds must be numbers, not {value!r}") from None
        if array.ndim == 0:
            array = np.full(n, float(array))
        if array.shape != (n,):
            raise ValueError(f"{name} bounds must be a number or one per weight, shape ({n},), not {array.shape}")
        if np.isnan(array).any():
            raise ValueError(f"{name} bounds must not be NaN")
        pair.append(array)
    lower, upper = pair
    if np.any(lower >= upper):
        j = int(np.argmax(lower >= upper))
        raise ValueError(
            f"each lower bound must be strictly less than its upper bound: weight {j} has [{lower[j]:g}, {upper[j]:g}]"
        )
    return lower, upper


def loss_index(loss):
    """The loss's index in LOSSES; a one-line ValueError for any other value."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    return LOSSES.index(loss)


def _f_scale(f_scale):
    if isinstance(f_scale, (bool, np.bool_)) or not isinstance(f_scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"f_scale must be a finite number > 0, not {f_scale!r}")
    if not (math.isfinite(f_scale) and f_scale > 0):
        raise ValueError(f"f_scale must be a finite number > 0, not {f_scale!r}")
    return float(f_scale)


def _sigma(sigma, m):
    """(1-D standard deviations, Cholesky factor of a 2-D covariance), the one not given empty."""
    none_1d, none_2d = np.empty(0), np.empty((0, 0))
    if sigma is None:
        return none_1d, none_2d
    try:
        sigma = np.array(sigma, dtype=np.float64, order="C")
    except (TypeError, ValueError):
        raise TypeError("sigma must be an array of numbers") from None
    if sigma.ndim == 1:
        if sigma.shape != (m,):
            raise ValueError(f"sigma must have one standard deviation per residual, shape ({m},), not {sigma.shape}")
        if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
            raise ValueError("sigma must be finite and > 0 (a standard deviation per residual)")
        return sigma, none_2d
    if sigma.shape != (m, m):
        raise ValueError(f"sigma must be 1-D, shape ({m},), or a covariance matrix, ({m}, {m}), not {sigma.shape}")
    if not np.all(np.isfinite(sigma)):
        raise ValueError("sigma (a covariance matrix) must be finite")
    if np.max(np.abs(sigma - sigma.T)) > 1e-10 * np.max(np.abs(sigma)):
        raise ValueError("sigma (a covariance matrix) must be symmetric")
    try:
        cholesky = np.linalg.cholesky(sigma)  # reads the lower triangle, as SciPy's curve_fit
    except np.linalg.LinAlgError:
        raise ValueError("sigma (a covariance matrix) must be positive definite") from None
    return none_1d, np.ascontiguousarray(cholesky)


def _strictly_feasible(w0, lower, upper, is_fixed):
    """w0 with each free weight on one of its bounds moved inside, as SciPy's make_strictly_feasible (trf's
    start): there dw/dq = 0, and lmder could not move it. Fixed weights keep their values."""
    start = w0.copy()
    with np.errstate(invalid="ignore"):  # infinite bounds give inf - inf: never on a bound
        step_lower = _FEASIBLE_STEP * np.maximum(1.0, np.abs(lower))
        step_upper = _FEASIBLE_STEP * np.maximum(1.0, np.abs(upper))
        on_lower = ~is_fixed & np.isfinite(lower) & (w0 - lower <= step_lower)
        on_upper = ~is_fixed & np.isfinite(upper) & (upper - w0 <= step_upper)
        start[on_lower] = (lower + step_lower)[on_lower]
        start[on_upper] = (upper - step_upper)[on_upper]
        too_tight = ~is_fixed & ((start < lower) | (start > upper))
        start[too_tight] = (0.5 * (lower + upper))[too_tight]
    return start


# The compiled maps. Each runs once per evaluation of the residuals, over the weights or the residuals.


@_njit
def to_internal(w, free, kinds, lower, upper, q):
    """The internal variables q of the free weights w[free] (the inverse of `to_user`)."""
    for k in range(free.shape[0]):
        value, kind, lo, hi = w[free[k]], kinds[k], lower[k], upper[k]
        if kind == _BOTH:
            q[k] = math.asin(min(1.0, max(-1.0, (value - lo) / (hi - lo) * 2.0 - 1.0)))
        elif kind == _LOWER:
            d = value - lo
            q[k] = math.sqrt(d * (d + 2.0))  # sqrt((d + 1)**2 - 1) without cancellation near the bound
        elif kind == _UPPER:
            d = hi - value
            q[k] = math.sqrt(d * (d + 2.0))
        else:
            q[k] = value


@_njit
def to_user(q, free, kinds, lower, upper, w, dw_dq):
    """w[free] from the internal variables q, and each dw/dq; the fixed weights of w are left as they are."""
    for k in range(free.shape[0]):
        x, kind, lo, hi = q[k], kinds[k], lower[k], upper[k]
        if kind == _BOTH:
            half_width = 0.5 * hi - 0.5 * lo  # (hi - lo) / 2 without overflow for bounds near +-1e308
            value = 0.5 * lo + 0.5 * hi + half_width * math.sin(x)
            w[free[k]] = min(hi, max(lo, value))  # exactly on a bound, never past it by a rounding
            dw_dq[k] = half_width * math.cos(x)
        elif kind == _LOWER or kind == _UPPER:
            root = math.sqrt(x * x + 1.0)
            away = x * x / (root + 1.0)  # root - 1 without cancellation near the bound
            w[free[k]] = lo + away if kind == _LOWER else hi - away
            dw_dq[k] = x / root if kind == _LOWER else -x / root
        else:
            w[free[k]] = x
            dw_dq[k] = 1.0


@_njit
def whiten(sigma, cholesky, r, J):
    """r and J weighted in place: divided by sigma (1-D), or L^-1 r and L^-1 J by forward substitution (2-D)."""
    m, n = J.shape
    if sigma.shape[0] > 0:
        for i in range(m):
            r[i] /= sigma[i]
            for j in range(n):
                J[i, j] /= sigma[i]
    elif cholesky.shape[0] > 0:
        for i in range(m):
            pivot = cholesky[i, i]
            for k in range(i):
                factor = cholesky[i, k]
                r[i] -= factor * r[k]
                for j in range(n):
                    J[i, j] -= factor * J[k, j]
            r[i] /= pivot
            for j in range(n):
                J[i, j] /= pivot


@_njit
def _rho_ratio_and_slope(loss, z):
    """(rho(z) / z, rho'(z)) of the loss, rho(z)/z in forms exact as z -> 0 (where it is 1)."""
    if loss == _SOFT_L1:  # rho = 2 (sqrt(1 + z) - 1)
        root = math.sqrt(1.0 + z)
        return 2.0 / (root + 1.0), 1.0 / root
    if loss == _HUBER:  # rho = z for z <= 1, else 2 sqrt(z) - 1
        if z <= 1.0:
            return 1.0, 1.0
        root = math.sqrt(z)
        return (2.0 * root - 1.0) / z, 1.0 / root
    if loss == _CAUCHY:  # rho = log(1 + z)
        return (math.log1p(z) / z if z > 0.0 else 1.0), 1.0 / (1.0 + z)
    if loss == _ARCTAN:  # rho = arctan(z)
        return (math.atan(z) / z if z > 0.0 else 1.0), 1.0 / (1.0 + z * z)
    return 1.0, 1.0


@_njit
def robust(loss, f_scale, f, g, dg_df):
    """g = C sign(f) sqrt(rho(f^2 / C^2)) = f sqrt(rho(z) / z), and dg/df = rho'(z) / sqrt(rho(z) / z)."""
    for i in range(f.shape[0]):
        scaled = f[i] / f_scale
        ratio, slope = _rho_ratio_and_slope(loss, scaled * scaled)
        root = math.sqrt(ratio)
        g[i] = f[i] * root
        dg_df[i] = slope / root


@_njit
def gauss_newton_scale(loss, f_scale, f, scale):
    """SciPy least_squares' factor for each row of J under a robust loss (its scale_for_robust_loss_function):
    sqrt(max(rho'(z) + 2 z rho''(z), eps)), so that J^T J is the Gauss-Newton Hessian of the cost."""
    for i in range(f.shape[0]):
        scaled = f[i] / f_scale
        z = scaled * scaled
        if loss == _SOFT_L1:
            value = (1.0 + z) ** -0.5 - z * (1.0 + z) ** -1.5
        elif loss == _HUBER:
            value = 1.0 if z <= 1.0 else z**-0.5 - z * z**-1.5
        elif loss == _CAUCHY:
            value = 1.0 / (1.0 + z) - 2.0 * z / (1.0 + z) ** 2
        elif loss == _ARCTAN:
            t = 1.0 + z * z
            value = 1.0 / t - 4.0 * z * z / (t * t)
        else:
            value = 1.0
        scale[i] = math.sqrt(max(value, _EPS))
