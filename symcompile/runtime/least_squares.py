"""Levenberg-Marquardt for residual models: MINPACK's lmder, line for line, compiled once per machine.

A generated module with a residual model has a kernel `residuals_and_jacobian(w, X, Y, r, J)` (type
`RESIDUALS_AND_JACOBIAN`): it fills r (m,) with the residuals and J (m, P) with their derivatives dr_i/dw_j at
the weights w, in place, m = N*K (every residual of every sample, sample-major: residual k of sample n at
n*K + k for X with N rows; P = len(w)), and keeps no state between calls. The module's `least_squares` checks
its arguments (`checked_settings`, then its own data checks) and calls `least_squares` here with the kernel;
the compiled driver `lm_solve` calls the kernel through a function pointer, so it does not depend on the model:
compiled once per machine and cached, while each model compiles only its kernel (BENCHMARKS.md, "Issue 20
groundwork", design D1).

A fit's options (fixed weights, bounds, sigma, robust losses: symcompile.runtime.fit_options) run the same lmder
(`_lmder`, one source for both) on an internal problem, compiled once per machine too (`lm_solve_options`): the
maps from the internal variables and residuals to the kernel's are compiled code, called at each evaluation.
A fit without options takes `lm_solve` as before, step for step and bit for bit.
"""

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

from . import checks, fit_options
from .arrays import copy_into
from .pointers import function_value
from .signatures import MATRIX, RESIDUALS_AND_JACOBIAN, VECTOR


class FitResult(NamedTuple):
    """What least_squares found. `cost` is 0.5*sum(r**2) (SciPy's convention; with a robust loss SciPy's
    0.5 * f_scale**2 * sum(rho(f**2 / f_scale**2))); `iterations` counts evaluations of the residuals, the
    first at the starting weights (the count `max_iter` bounds, as MINPACK's maxfev); `covariance` is
    s^2 (J^T J)^-1 with s^2 = 2*cost/(m - P) and J = `jac` (P: the free weights; a fixed weight's row and column
    are 0), `stderr` the square root of its diagonal. `fun` and `jac` mean what SciPy least_squares' do: the
    residuals at w, weighted by sigma (not by the loss), and their Jacobian in the weights (zero in a fixed
    weight's column), each row scaled for a robust loss so that J^T J is the Gauss-Newton Hessian of the cost."""

    w: np.ndarray
    iterations: int
    cost: float
    converged: bool
    status: str
    covariance: np.ndarray
    stderr: np.ndarray
    fun: np.ndarray
    jac: np.ndarray


# MINPACK's info codes, as lm_solve returns them; -1 is ours: residuals or Jacobian not finite.
_STATUS = {
    -1: "non-finite",
    0: "improper input",
    1: "ftol",  # both the actual and the predicted relative reduction of the sum of squares are at most ftol
    2: "xtol",  # the relative change of the (scaled) weights is at most xtol
    3: "ftol+xtol",
    4: "gtol",  # the residuals are orthogonal to the Jacobian's columns to gtol (cosine of the angle)
    5: "max_iter",  # max_iter evaluations of the residuals
    6: "ftol-machine",  # no further reduction of the sum of squares is possible at machine precision
    7: "xtol-machine",  # no further improvement of the weights is possible at machine precision
    8: "gtol-machine",  # the residuals are orthogonal to the Jacobian's columns at machine precision
}
_CONVERGED = (1, 2, 3, 4, 6, 7, 8)

# The constants of MINPACK's lmder, lmpar, qrfac and qrsolv, and of enorm's scaling.
_EPSMCH = np.finfo(np.float64).eps
_DWARF = np.finfo(np.float64).tiny
_RDWARF = 3.834e-20
_RGIANT = 1.304e19
_FACTOR = 100.0  # the initial step bound: factor * ||diag * w0||, or factor itself where that is zero


@numba.njit(cache=True, error_model="numpy")
def _enorm(x):
    """The Euclidean norm of x, as MINPACK's enorm: sums of squares kept in three scales (tiny,
    ordinary and huge components) so that it neither overflows nor underflows."""
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    x1max = 0.0
    x3max = 0.0
    agiant = _RGIANT / max(x.shape[0], 1)
    for i in range(x.shape[0]):
        xabs = abs(x[i])
        if _RDWARF < xabs < agiant:
            s2 += xabs * xabs
        elif xabs <= _RDWARF:
            if xabs > x3max:
                s3 = 1.0 + s3 * (x3max / xabs) ** 2
                x3max = xabs
            elif xabs != 0.0:
                s3 += (xabs / x3max) ** 2
        elif xabs > x1max:
            s1 = 1.0 + s1 * (x1max / xabs) ** 2
            x1max = xabs
        else:
            s1 += (xabs / x1max) ** 2
    if s1 != 0.0:
        return x1max * math.sqrt(s1 + (s2 / x1max) / x1max)
    if s2 != 0.0:
        if s2 >= x3max:
            return math.sqrt(s2 * (1.0 + (x3max / s2) * (x3max * s3)))
        return math.sqrt(x3max * ((s2 / x3max) + (x3max * s3)))
    return x3max * math.sqrt(s3)


@numba.njit(cache=True, error_model="numpy")
def _qrfac(a, ipvt, rdiag, acnorm, wa):
    """MINPACK's qrfac with column pivoting: Householder QR of a (m, n), in place.

    On return the upper triangle of a's first n rows holds R without its diagonal, which is in
    rdiag; the Householder vectors are below it; column j of R is column ipvt[j] of the input, the
    columns taken in order of decreasing remaining norm. acnorm gets the input's column norms.
    """
    m, n = a.shape
    for j in range(n):
        acnorm[j] = _enorm(a[:, j])
        rdiag[j] = acnorm[j]
        wa[j] = rdiag[j]
        ipvt[j] = j
    for j in range(min(m, n)):
        # bring the column of largest remaining norm into the pivot position
        kmax = j
        for k in range(j, n):
            if rdiag[k] > rdiag[kmax]:
                kmax = k
        if kmax != j:
            for i in range(m):
                temp = a[i, j]
                a[i, j] = a[i, kmax]
                a[i, kmax] = temp
            rdiag[kmax] = rdiag[j]
            wa[kmax] = wa[j]
            k = ipvt[j]
            ipvt[j] = ipvt[kmax]
            ipvt[kmax] = k
        # the Householder transformation that reduces column j to a multiple of the j-th unit vector
        ajnorm = _enorm(a[j:, j])
        if ajnorm != 0.0:
            if a[j, j] < 0.0:
                ajnorm = -ajnorm
            for i in range(j, m):
                a[i, j] /= ajnorm
            a[j, j] += 1.0
            # apply it to the remaining columns and update their norms
            for k in range(j + 1, n):
                total = 0.0
                for i in range(j, m):
                    total += a[i, j] * a[i, k]
                temp = total / a[j, j]
                for i in range(j, m):
                    a[i, k] -= temp * a[i, j]
                if rdiag[k] != 0.0:
                    temp = a[j, k] / rdiag[k]
                    rdiag[k] *= math.sqrt(max(0.0, 1.0 - temp * temp))
                    if 0.05 * (rdiag[k] / wa[k]) ** 2 <= _EPSMCH:
                        # the downdated norm has lost its digits: compute it afresh
                        rdiag[k] = _enorm(a[j + 1 :, k])
                        wa[k] = rdiag[k]
        rdiag[j] = -ajnorm


@numba.njit(cache=True, error_model="numpy")
def _qrsolv(r, ipvt, diag, qtb, x, sdiag, wa):
    """MINPACK's qrsolv: the least-squares solution x of [A; D] x = [b; 0], given A P = Q R (r's
    upper triangle, ipvt), D = diag(diag) and the first n components of Q^T b (qtb).

    Givens rotations eliminate D from R, giving the triangular S in sdiag and r's strict lower
    triangle; r's upper triangle and diagonal are left as they came.
    """
    n = r.shape[1]
    # copy R and Q^T b, keep R's diagonal in x
    for j in range(n):
        for i in range(j, n):
            r[i, j] = r[j, i]
        x[j] = r[j, j]
        wa[j] = qtb[j]
    for j in range(n):
        # the row of D that belongs to column j of R, eliminated against R and the rows before
        l = ipvt[j]
        if diag[l] != 0.0:
            for k in range(j, n):
                sdiag[k] = 0.0
            sdiag[j] = diag[l]
            qtbpj = 0.0
            for k in range(j, n):
                if sdiag[k] == 0.0:
                    continue
                if abs(r[k, k]) < abs(sdiag[k]):
                    cotan = r[k, k] / sdiag[k]
                    sin = 0.5 / math.sqrt(0.25 + 0.25 * cotan * cotan)
                    cos = sin * cotan
                else:
                    tan = sdiag[k] / r[k, k]
                    cos = 0.5 / math.sqrt(0.25 + 0.25 * tan * tan)
                    sin = cos * tan
                r[k, k] = cos * r[k, k] + sin * sdiag[k]
                temp = cos * wa[k] + sin * qtbpj
                qtbpj = -sin * wa[k] + cos * qtbpj
                wa[k] = temp
                for i in range(k + 1, n):
                    temp = cos * r[i, k] + sin * sdiag[i]
                    sdiag[i] = -sin * r[i, k] + cos * sdiag[i]
                    r[i, k] = temp
        sdiag[j] = r[j, j]
        r[j, j] = x[j]
    # solve S z = Q^T b; where S is singular, the least-squares solution with the trailing components zero
    nsing = n
    for j in range(n):
        if sdiag[j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa[j] = 0.0
    for j in range(nsing - 1, -1, -1):
        total = 0.0
        for i in range(j + 1, nsing):
            total += r[i, j] * wa[i]
        wa[j] = (wa[j] - total) / sdiag[j]
    for j in range(n):
        x[ipvt[j]] = wa[j]


@numba.njit(cache=True, error_model="numpy")
def _lmpar(r, ipvt, diag, qtb, delta, par, x, sdiag, wa1, wa2):
    """MINPACK's lmpar: the Levenberg-Marquardt parameter par, and the step x, such that x solves
    min ||J x + f|| + par ||D x||^2 with ||D x|| within 10% of delta (or par = 0 and ||D x|| <= 1.1 delta).
    Returns par. r, ipvt and qtb are qrfac's output and Q^T f."""
    n = r.shape[1]
    # the Gauss-Newton direction; where R is singular, the least-squares one
    nsing = n
    for j in range(n):
        wa1[j] = qtb[j]
        if r[j, j] == 0.0 and nsing == n:
            nsing = j
        if nsing < n:
            wa1[j] = 0.0
    for j in range(nsing - 1, -1, -1):
        wa1[j] /= r[j, j]
        temp = wa1[j]
        for i in range(j):
            wa1[i] -= r[i, j] * temp
    for j in range(n):
        x[ipvt[j]] = wa1[j]
    # accept it if it lies within the trust region (to 10%)
    iteration = 0
    for j in range(n):
        wa2[j] = diag[j] * x[j]
    dxnorm = _enorm(wa2)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return 0.0
    # a lower bound parl for the zero of phi(par) = ||D x(par)|| - delta (0 where J is rank deficient)
    parl = 0.0
    if nsing >= n:
        for j in range(n):
            l = ipvt[j]
            wa1[j] = diag[l] * (wa2[l] / dxnorm)
        for j in range(n):
            total = 0.0
            for i in range(j):
                total += r[i, j] * wa1[i]
            wa1[j] = (wa1[j] - total) / r[j, j]
        temp = _enorm(wa1)
        parl = ((fp / delta) / temp) / temp
    # an upper bound paru
    for j in range(n):
        total = 0.0
        for i in range(j + 1):
            total += r[i, j] * qtb[i]
        wa1[j] = total / diag[ipvt[j]]
    gnorm = _enorm(wa1)
    paru = gnorm / delta
    if paru == 0.0:
        paru = _DWARF / min(delta, 0.1)
    # start from the given par, moved into [parl, paru]
    par = max(par, parl)
    par = min(par, paru)
    if par == 0.0:
        par = gnorm / dxnorm
    while True:
        iteration += 1
        if par == 0.0:
            par = max(_DWARF, 0.001 * paru)
        temp = math.sqrt(par)
        for j in range(n):
            wa1[j] = temp * diag[j]
        _qrsolv(r, ipvt, wa1, qtb, x, sdiag, wa2)
        for j in range(n):
            wa2[j] = diag[j] * x[j]
        dxnorm = _enorm(wa2)
        temp = fp
        fp = dxnorm - delta
        # close enough, or phi increasing from a negative value with parl = 0, or 10 iterations
        if abs(fp) <= 0.1 * delta or (parl == 0.0 and fp <= temp and temp < 0.0) or iteration == 10:
            return par
        # the Newton correction
        for j in range(n):
            l = ipvt[j]
            wa1[j] = diag[l] * (wa2[l] / dxnorm)
        for j in range(n):
            wa1[j] /= sdiag[j]
            temp = wa1[j]
            for i in range(j + 1, n):
                wa1[i] -= r[i, j] * temp
        temp = _enorm(wa1)
        parc = ((fp / delta) / temp) / temp
        if fp > 0.0:
            parl = max(parl, par)
        if fp < 0.0:
            paru = min(paru, par)
        par = max(parl, par + parc)


@numba.njit(cache=True, error_model="numpy")
def _all_finite(values):
    for value in values.flat:
        if not math.isfinite(value):
            return False
    return True


# A matrix copy as loops, as copy_into copies vectors: `a[:, :] = b` compiles a shape check whose error message
# costs compile time.
@numba.njit(cache=True, error_model="numpy")
def _copy_matrix(target, source):
    for i in range(target.shape[0]):
        for j in range(target.shape[1]):
            target[i, j] = source[i, j]


# lm_solve(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol)
#   -> (w, nfev, njev, info, r, J)
LM_SOLVE = types.Tuple((VECTOR, types.int64, types.int64, types.int64, VECTOR, MATRIX))(
    RESIDUALS_AND_JACOBIAN,
    types.int64,
    VECTOR,
    MATRIX,
    MATRIX,
    types.int64,
    types.float64,
    types.float64,
    types.float64,
)
# lm_solve_options(..., as lm_solve, then FitOptions' free, kinds, lower, upper, sigma, cholesky, loss, f_scale, start)
#   -> (w, nfev, njev, info, g, f, jac): the solver's residuals g, the weighted residuals f and SciPy's jac at w
LM_SOLVE_OPTIONS = types.Tuple((VECTOR, types.int64, types.int64, types.int64, VECTOR, VECTOR, MATRIX))(
    *LM_SOLVE.args,
    types.int64[::1],
    types.int64[::1],
    VECTOR,
    VECTOR,
    VECTOR,
    MATRIX,
    types.int64,
    types.float64,
    VECTOR,
)


def lm_solve(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol):
    """The compiled solver (`_lm_solve`) on a model's kernel, a Numba dispatcher: the kernel is compiled for
    exactly its type (`RESIDUALS_AND_JACOBIAN`), so the arrays must be C-contiguous float64 (the module's
    checks make them so), and the settings as `checked_settings` returns them."""
    kernel = function_value(residuals_and_jacobian, RESIDUALS_AND_JACOBIAN)
    return _compiled_lm_solve()(kernel, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol)


def lm_solve_options(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol, options):
    """lm_solve through a fit's options (fit_options.FitOptions): the same lmder on the internal problem."""
    kernel = function_value(residuals_and_jacobian, RESIDUALS_AND_JACOBIAN)
    return _compiled_lm_solve_options()(kernel, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol, *options)


# Compiled (or loaded from Numba's cache) at the first fit, not at import: with an explicit signature Numba
# compiles on decoration, and a module that imports this one only to train should not pay for the solver.
@functools.cache
def _compiled_lm_solve():
    return numba.njit(LM_SOLVE, cache=True, error_model="numpy")(_lm_solve)


@functools.cache
def _compiled_lm_solve_options():
    return numba.njit(LM_SOLVE_OPTIONS, cache=True, error_model="numpy")(_lm_solve_options)


# lmder calls the kernel itself, between two steps that depend on the problem: a kernel passed on to another
# function is called through a pointer even where that function is inlined (measured: 4-5% of a misra1a fit).
def kernel_arguments(problem, w, r, J):
    """(weights, residuals, Jacobian) for the kernel at lmder's point w: w, r and J themselves for a plain fit
    (problem = ()); for a fit's options (problem from `_lm_solve_options`) the user's weights w(q) and the
    problem's arrays for the kernel's residuals and Jacobian. Chosen when compiling, by the problem's type."""


def from_kernel(problem, w, r, J):
    """Make the kernel's output lmder's r and J: nothing to do for a plain fit; for a fit's options the
    internal problem's residuals and Jacobian (`_from_kernel_with_options`)."""


@overload(kernel_arguments, inline="always", jit_options={"error_model": "numpy"})
def _kernel_arguments(problem, w, r, J):
    if len(problem) == 0:
        return lambda problem, w, r, J: (w, r, J)
    return _kernel_arguments_with_options


@overload(from_kernel, inline="always", jit_options={"error_model": "numpy"})
def _from_kernel(problem, w, r, J):
    if len(problem) == 0:
        return lambda problem, w, r, J: None
    return _from_kernel_with_options


def _kernel_arguments_with_options(problem, w, r, J):
    options, weights, dw_dq, f, J_weights, _ = problem
    free, kinds, lower, upper = options[:4]
    fit_options.to_user(w, free, kinds, lower, upper, weights, dw_dq)
    return weights, f, J_weights


def _from_kernel_with_options(problem, w, r, J):
    """The internal problem of symcompile.runtime.fit_options at its variables (here w: q) from the kernel's
    residuals and Jacobian at w(q): the residuals weighted (f) and made robust (r: g); each free weight's
    column of J by the chain rule, dg/dq = dg/df * df/dw * dw/dq."""
    options, _, dw_dq, f, J_weights, dg_df = problem
    free, _, _, _, sigma, cholesky, loss, f_scale = options
    fit_options.whiten(sigma, cholesky, f, J_weights)
    fit_options.robust(loss, f_scale, f, r, dg_df)
    for i in range(J.shape[0]):
        for k in range(J.shape[1]):
            J[i, k] = dg_df[i] * J_weights[i, free[k]] * dw_dq[k]


def _lm_solve(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol):
    """lmder on the model's residuals and Jacobian (`_lmder`)."""
    m = X.shape[0] * residuals_per_sample
    return _lmder(residuals_and_jacobian, X, Y, (), w0, m, max_iter, xtol, ftol, gtol)


def _lm_solve_options(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol, free,
                      kinds, lower, upper, sigma, cholesky, loss, f_scale, start):  # fmt: skip
    """lmder on the internal problem of a fit's options, from `start` (w0 moved inside its bounds), then the
    weighted residuals f and SciPy's jac at the weights found: the Jacobian of f in the user's weights, each
    row scaled for a robust loss (fit_options.gauss_newton_scale), zero in the fixed weights' columns."""
    m = X.shape[0] * residuals_per_sample
    n = w0.shape[0]
    w, dw_dq, f, J = start.copy(), np.empty(free.shape[0]), np.empty(m), np.empty((m, n))
    q0 = np.empty(free.shape[0])
    fit_options.to_internal(start, free, kinds, lower, upper, q0)
    options = (free, kinds, lower, upper, sigma, cholesky, loss, f_scale)
    q, nfev, njev, info, g, _ = _lmder(residuals_and_jacobian, X, Y, (options, w, dw_dq, f, J, np.empty(m)), q0,
                                       m, max_iter, xtol, ftol, gtol)  # fmt: skip
    fit_options.to_user(q, free, kinds, lower, upper, w, dw_dq)
    residuals_and_jacobian(w, X, Y, f, J)
    fit_options.whiten(sigma, cholesky, f, J)
    scale = np.empty(m)
    fit_options.gauss_newton_scale(loss, f_scale, f, scale)
    jac = np.zeros((m, n))
    for i in range(m):
        for k in range(free.shape[0]):
            jac[i, free[k]] = scale[i] * J[i, free[k]]
    return w, nfev, njev, info, g, f, jac


@numba.njit(cache=True, error_model="numpy")
def _lmder(kernel, X, Y, problem, w0, m, max_iter, xtol, ftol, gtol):
    """MINPACK's lmder (mode 1: variables scaled by the Jacobian's column norms; factor 100), calling the
    kernel for both residuals and Jacobian (through the problem's maps, `kernel_arguments` and `from_kernel`;
    problem = () for a plain fit). Returns (w, nfev, njev, info, r, J):
    the weights, the evaluations of the residuals and of the Jacobian, MINPACK's info code (or -1:
    residuals or Jacobian not finite), and the residuals and Jacobian at w.

    Every trial point gets its Jacobian with its residuals (one fused kernel); MINPACK's separate
    Jacobian call after an accepted step is that Jacobian, so nfev and njev count as lmder's do.
    A trial point whose residuals are not finite counts as one whose sum of squares is infinite:
    rejected, and the step bound cut tenfold.
    """
    n = w0.shape[0]
    w = w0.copy()
    r = np.empty(m)
    J = np.empty((m, n))
    if n <= 0 or m < n or ftol < 0.0 or xtol < 0.0 or gtol < 0.0 or max_iter <= 0:
        r[:] = np.nan
        J[:] = np.nan
        return w, 0, 0, 0, r, J
    r_trial = np.empty(m)
    J_trial = np.empty((m, n))
    qr = np.empty((m, n))
    qtf = np.empty(n)
    diag = np.empty(n)
    ipvt = np.empty(n, dtype=np.int64)
    wa1 = np.empty(n)
    wa2 = np.empty(n)
    wa3 = np.empty(n)
    wa4 = np.empty(m)
    wa5 = np.empty(n)  # lmder passes its m-long wa4 to lmpar, which uses n of it

    weights, kernel_r, kernel_J = kernel_arguments(problem, w, r, J)
    kernel(weights, X, Y, kernel_r, kernel_J)
    from_kernel(problem, w, r, J)
    nfev = 1
    njev = 0
    if not (_all_finite(r) and _all_finite(J)):
        return w, nfev, njev, -1, r, J
    fnorm = _enorm(r)
    par = 0.0
    iteration = 1
    delta = 0.0
    xnorm = 0.0
    info = 0
    while True:
        # the Jacobian at w (MINPACK's iflag = 2 call), QR-factored with column pivoting
        njev += 1
        _copy_matrix(qr, J)
        _qrfac(qr, ipvt, wa1, wa2, wa3)
        if iteration == 1:
            # scale by the Jacobian's column norms, and bound the first step by factor * ||diag * w||
            for j in range(n):
                diag[j] = wa2[j] if wa2[j] != 0.0 else 1.0
                wa3[j] = diag[j] * w[j]
            xnorm = _enorm(wa3)
            delta = _FACTOR * xnorm
            if delta == 0.0:
                delta = _FACTOR
        # Q^T r, its first n components in qtf; R's diagonal back into qr
        copy_into(wa4, r)
        for j in range(n):
            if qr[j, j] != 0.0:
                total = 0.0
                for i in range(j, m):
                    total += qr[i, j] * wa4[i]
                temp = -total / qr[j, j]
                for i in range(j, m):
                    wa4[i] += qr[i, j] * temp
            qr[j, j] = wa1[j]
            qtf[j] = wa4[j]
        # the norm of the scaled gradient: the largest cosine between r and a column of J
        gnorm = 0.0
        if fnorm != 0.0:
            for j in range(n):
                l = ipvt[j]
                if wa2[l] != 0.0:
                    total = 0.0
                    for i in range(j + 1):
                        total += qr[i, j] * (qtf[i] / fnorm)
                    gnorm = max(gnorm, abs(total / wa2[l]))
        if gnorm <= gtol:
            info = 4
            break
        for j in range(n):
            diag[j] = max(diag[j], wa2[j])
        while True:
            # the Levenberg-Marquardt step within the trust region delta
            par = _lmpar(qr, ipvt, diag, qtf, delta, par, wa1, wa2, wa3, wa5)
            for j in range(n):
                wa1[j] = -wa1[j]
                wa2[j] = w[j] + wa1[j]
                wa3[j] = diag[j] * wa1[j]
            pnorm = _enorm(wa3)
            if iteration == 1:
                delta = min(delta, pnorm)
            weights, kernel_r, kernel_J = kernel_arguments(problem, wa2, r_trial, J_trial)
            kernel(weights, X, Y, kernel_r, kernel_J)
            from_kernel(problem, wa2, r_trial, J_trial)
            nfev += 1
            fnorm1 = _enorm(r_trial)
            if not math.isfinite(fnorm1):
                fnorm1 = np.inf
            # the actual and the predicted reduction of the sum of squares, relative
            actred = -1.0
            if 0.1 * fnorm1 < fnorm:
                actred = 1.0 - (fnorm1 / fnorm) ** 2
            for j in range(n):
                wa3[j] = 0.0
                temp = wa1[ipvt[j]]
                for i in range(j + 1):
                    wa3[i] += qr[i, j] * temp
            temp1 = _enorm(wa3) / fnorm
            temp2 = (math.sqrt(par) * pnorm) / fnorm
            prered = temp1 * temp1 + temp2 * temp2 / 0.5
            dirder = -(temp1 * temp1 + temp2 * temp2)
            ratio = 0.0
            if prered != 0.0:
                ratio = actred / prered
            # update the step bound
            if ratio <= 0.25:
                if actred >= 0.0:
                    temp = 0.5
                else:
                    temp = 0.5 * dirder / (dirder + 0.5 * actred)
                if 0.1 * fnorm1 >= fnorm or temp < 0.1:
                    temp = 0.1
                delta = temp * min(delta, pnorm / 0.1)
                par /= temp
            elif par == 0.0 or ratio >= 0.75:
                delta = pnorm / 0.5
                par *= 0.5
            # a successful step: move there (its Jacobian came with its residuals)
            if ratio >= 1e-4:
                if not _all_finite(J_trial):
                    copy_into(w, wa2)
                    copy_into(r, r_trial)
                    _copy_matrix(J, J_trial)
                    return w, nfev, njev, -1, r, J
                for j in range(n):
                    w[j] = wa2[j]
                    wa2[j] = diag[j] * w[j]
                copy_into(r, r_trial)
                _copy_matrix(J, J_trial)
                xnorm = _enorm(wa2)
                fnorm = fnorm1
                iteration += 1
            # the convergence tests
            if abs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1.0:
                info = 1
            if delta <= xtol * xnorm:
                info = 3 if info == 1 else 2
            if info != 0:
                break
            # the tests for tolerances below what the arithmetic can reach
            if nfev >= max_iter:
                info = 5
            if abs(actred) <= _EPSMCH and prered <= _EPSMCH and 0.5 * ratio <= 1.0:
                info = 6
            if delta <= _EPSMCH * xnorm:
                info = 7
            if gnorm <= _EPSMCH:
                info = 8
            if info != 0:
                break
            if ratio >= 1e-4:
                break  # on to the next Jacobian
        if info != 0:
            break
    return w, nfev, njev, info, r, J


@numba.njit(cache=True, error_model="numpy")
def _unscaled_covariance(J):
    """((J^T J)^-1, rank) from J's pivoted QR: P R^-1 R^-T P^T, never forming J^T J.

    The rank counts R's leading diagonal entries above eps * max(m, P) * |R[0, 0]| (with pivoting
    they decrease, and the first one below says J is rank deficient to working precision); below
    full rank the inverse is not computed and the first result is all NaN.
    """
    m, n = J.shape
    a = J.copy()
    ipvt = np.empty(n, dtype=np.int64)
    rdiag = np.empty(n)
    acnorm = np.empty(n)
    wa = np.empty(n)
    _qrfac(a, ipvt, rdiag, acnorm, wa)
    covariance = np.full((n, n), np.nan)
    threshold = _EPSMCH * max(m, n) * abs(rdiag[0]) if n > 0 else 0.0
    rank = 0
    while rank < min(m, n) and abs(rdiag[rank]) > threshold:
        rank += 1
    if rank < n:
        return covariance, rank
    for j in range(n):
        a[j, j] = rdiag[j]
    # R^-1, column by column (upper triangular)
    rinv = np.zeros((n, n))
    for k in range(n):
        rinv[k, k] = 1.0 / a[k, k]
        for i in range(k - 1, -1, -1):
            total = 0.0
            for j in range(i + 1, k + 1):
                total += a[i, j] * rinv[j, k]
            rinv[i, k] = -total / a[i, i]
    for i in range(n):
        for j in range(n):
            total = 0.0
            for k in range(max(i, j), n):
                total += rinv[i, k] * rinv[j, k]
            covariance[ipvt[i], ipvt[j]] = total
    return covariance, rank


def _pseudo_covariance(J):
    """The pseudo-inverse of J^T J, from the SVD of J, singular values below eps * max(m, P) * the
    largest dropped (curve_fit's threshold): finite where J is rank deficient."""
    m, n = J.shape
    _, singular, vt = np.linalg.svd(J, full_matrices=False)
    kept = singular > np.finfo(np.float64).eps * max(m, n) * singular[0]
    return (vt[kept].T / singular[kept] ** 2) @ vt[kept]


def _covariance(r, J):
    """(s^2 (J^T J)^-1 with s^2 = sum(r^2)/(m - P), rank of J). Full rank: from the QR of J, in
    compiled code. Rank deficient: the pseudo-inverse instead (finite, nan-free; the rank says it
    is not an inverse). No degrees of freedom left (m <= P): undefined, all inf."""
    m, n = J.shape
    unscaled, rank = _unscaled_covariance(J)
    if rank < n:
        unscaled = _pseudo_covariance(J)
    if m <= n:
        return np.full((n, n), np.inf), rank
    return unscaled * (float(r @ r) / (m - n)), rank


# The compiled solver counts evaluations in an int64.
_MAX_ITER = 2**62


def checked_settings(max_iter, xtol, ftol, gtol):
    """(max_iter, xtol, ftol, gtol) as an int and floats; a TypeError or ValueError naming the first bad one."""
    max_iter = checks.integer("max_iter", max_iter, 1, _MAX_ITER)  # TypeError for 2.5, True, '10'
    xtol, ftol, gtol = (_tolerance(name, value) for name, value in (("xtol", xtol), ("ftol", ftol), ("gtol", gtol)))
    return max_iter, xtol, ftol, gtol


def _tolerance(name, value):
    """A tolerance as a float; a TypeError (not a number) or ValueError (negative, NaN, infinite) naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a finite number >= 0, not {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64
        number = math.inf
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return number


def least_squares(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol, *, fixed=None,
                  bounds=None, loss="linear", f_scale=1.0, sigma=None):  # fmt: skip
    """A module's least_squares after its checks: the FitResult of lmder from w0 on the data (w0, X and Y
    checked C-contiguous float64 arrays, the settings as `checked_settings` returns them).

    The options (symcompile.runtime.fit_options, checked here: one-line TypeError or ValueError): `fixed`, a
    boolean mask or the indices of weights held at w0; `bounds`, (lower, upper) as SciPy's least_squares takes
    them; `loss` and `f_scale`, SciPy's robust losses; `sigma`, a standard deviation per residual (1-D) or their
    covariance matrix (2-D). They compose. With none of them (or bounds all infinite) the fit is plain lmder.
    A ValueError where there are fewer residuals than free weights.
    """
    m = X.shape[0] * residuals_per_sample
    plain = (
        fixed is None
        and bounds is None
        and sigma is None
        and type(loss) is str
        and loss == "linear"
        and (type(f_scale) is float and f_scale == 1.0)
    )  # the common case, checked without the NumPy calls of checked_options (10-25 us, as long as a small fit)
    options = None if plain else fit_options.checked_options(w0, m, fixed=fixed, bounds=bounds, loss=loss,
                                                             f_scale=f_scale, sigma=sigma)  # fmt: skip
    free = w0.size if options is None else options.free.size
    if m < free:
        raise ValueError(f"{m} residuals cannot determine {free} {'weights' if free == w0.size else 'free weights'}")
    if options is None:
        w, nfev, _, info, r, J = lm_solve(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol,
                                          ftol, gtol)  # fmt: skip
        return _result(w, nfev, info, r, r, J)
    solved = lm_solve_options(residuals_and_jacobian, residuals_per_sample, w0, X, Y, max_iter, xtol, ftol, gtol,
                              options)  # fmt: skip
    w, nfev, _, info, g, f, jac = solved
    return _result(w, nfev, info, g, f, jac, None if options.free.size == w.size else options.free)


def _result(w, nfev, info, g, f, jac, free=None):
    """The FitResult: cost 0.5*sum(g**2) of the residuals the solver minimized; the covariance from jac's
    columns of the free weights (all where free is None), s^2 = 2*cost/(m - free weights), zero in the fixed
    weights' rows and columns."""
    cost = 0.5 * float(g @ g)
    status = _STATUS[info]
    if info == -1:
        covariance = np.full((w.size, w.size), np.nan)
    elif free is None:
        covariance, rank = _covariance(g, jac)
        if rank < w.size:
            status = "singular"
    else:
        covariance = np.zeros((w.size, w.size))
        free_covariance, rank = _covariance(g, np.ascontiguousarray(jac[:, free]))
        covariance[np.ix_(free, free)] = free_covariance
        if rank < free.size:
            status = "singular"
    stderr = np.sqrt(np.diag(covariance))
    return FitResult(w, nfev, cost, info in _CONVERGED, status, covariance, stderr, f, jac)
