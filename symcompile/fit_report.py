"""A least-squares fit's report, as lmfit's `fit_report`, and the model's confidence band, as lmfit's
`ModelResult.eval_uncertainty`.

`FitReport` holds the numbers lmfit reports, computed by lmfit's formulas (lmfit 1.3,
minimizer.MinimizerResult._calculate_statistics and Minimizer._calculate_uncertainties_correlations):

- chisqr = sum of the squared (sigma-weighted) residuals, N of them (`ndata`), `nvarys` free parameters;
- redchi = chisqr / max(1, N - nvarys); aic = N log(chisqr / N) + 2 nvarys; bic = N log(chisqr / N) + log(N) nvarys
  (chisqr floored at 1e-250 N first, as lmfit does);
- covariance = (J^T J)^-1 over the free parameters (J the Jacobian of the weighted residuals at the solution,
  exact here), times redchi (lmfit's scale_covar=True, SciPy's absolute_sigma=False) or not (absolute_sigma);
  standard errors its diagonal's square root, correlations C_ij / (s_i s_j); R-squared 1 - sum((y - f)^2) /
  sum((y - mean y)^2), unweighted.

With a linear loss that covariance is curve_fit's pcov. With a robust loss, lmfit scales by the reduced chi-square
of the plain weighted residuals and SciPy by the robust cost: the report follows lmfit.

The band at x: J_f the exact Jacobian of the model's output in the parameters (the module's `jacobian`: a
residual f - y has f's derivatives), band = t * sqrt(diag(J_f C J_f^T)), t Student's quantile at
(p + 1) / 2 with N - nvarys degrees of freedom, p = erf(sigma / sqrt 2) (or sigma itself for sigma < 1), as lmfit;
lmfit steps each parameter by stderr / 100 to differentiate, symcompile differentiates exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitReport", "MIN_CORREL", "from_least_squares"]

MIN_CORREL = 0.1  # lmfit's: correlations at most this (in absolute value) are left out of the report
# A module's least_squares defaults, for the stop message when the caller does not say which settings it used.
MODULE_SETTINGS = {"max_iter": 200, "xtol": 1e-10, "ftol": 1e-10, "gtol": 1e-10}
METHOD = "Levenberg-Marquardt (MINPACK lmder, exact Jacobian)"


# MINPACK's messages for the solver's stop reasons (SciPy's leastsq `errors`), and its info codes.
STOPS = {
    "ftol": (1, "Both actual and predicted relative reductions in the sum of squares\n  are at most {ftol}"),
    "xtol": (2, "The relative error between two consecutive iterates is at most {xtol}"),
    "ftol+xtol": (3, "Both actual and predicted relative reductions in the sum of squares\n  are at most {ftol} and "
                     "the relative error between two consecutive iterates is at \n  most {xtol}"),
    "gtol": (4, "The cosine of the angle between func(x) and any column of the\n  Jacobian is at most {gtol} in "
                "absolute value"),
    "max_iter": (5, "Number of calls to function has reached maxfev = {max_iter}."),
    "ftol-machine": (6, "ftol={ftol} is too small, no further reduction in the sum of squares\n  is possible."),
    "xtol-machine": (7, "xtol={xtol} is too small, no further improvement in the approximate\n  solution is possible."),
    "gtol-machine": (8, "gtol={gtol} is too small, func(x) is orthogonal to the columns of\n  the Jacobian to machine "
                        "precision."),
    # symcompile's: converged where the Jacobian is rank deficient; stopped where f or its Jacobian is not finite
    "singular": (1, "Converged; the Jacobian is rank deficient at the solution (pcov is a pseudo-inverse)"),
    "non-finite": (0, "f or its Jacobian is not finite at the last point reached (check p0, bounds and the data)"),
}  # fmt: skip


def stop_reason(status, settings):
    """(ier, mesg) for the solver's status, as SciPy's curve_fit gives them: MINPACK's code and message where it
    has one; `settings`: the max_iter, xtol, ftol and gtol the fit ran with."""
    code, text = STOPS.get(status, (0, f"stopped: {status}"))
    return code, text.format(**settings)


@dataclass(frozen=True, eq=False)
class FitReport:
    """A fit's numbers as lmfit reports them (the module docstring gives the formulas); `fit_report()` (or
    str()) is the text, `eval(x)` the model at x and `eval_uncertainty(x, sigma=1)` its confidence band.

    params, values, stderr, covariance: every parameter, in the model's order (a fixed one has stderr 0 and zero
    covariance); vary: which were free; init: the starting values. x, for eval and eval_uncertainty, is given as
    the fit took it: curve_fit's xdata ((N,) or (k, N)), or a module's X ((N, inputs); (N,) for one input)."""

    params: tuple[str, ...]
    values: np.ndarray
    stderr: np.ndarray
    covariance: np.ndarray
    vary: np.ndarray
    init: np.ndarray
    ndata: int
    nvarys: int
    chisqr: float
    redchi: float
    aic: float
    bic: float
    rsquared: float | None  # None where the residuals are not output - target (no fitted curve to compare)
    nfev: int
    converged: bool
    status: str
    message: str
    absolute_sigma: bool
    model: str = ""
    method: str = METHOD
    _module: object = field(default=None, repr=False)
    _X: np.ndarray | None = field(default=None, repr=False)  # the fitted data's inputs, as the module takes them
    _xdata_layout: bool = field(default=False, repr=False)  # x as curve_fit's xdata, (k, N), not (N, k)

    @property
    def nfree(self) -> int:
        return self.ndata - self.nvarys

    @property
    def relative_errors(self) -> np.ndarray:
        """|stderr / value| in percent, as lmfit prints it (NaN for fixed parameters and zero values)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            percent = np.abs(self.stderr / self.values) * 100.0
        return np.where(self.vary & (self.values != 0), percent, np.nan)

    @property
    def correlations(self) -> np.ndarray:
        """C_ij / (s_i s_j) between free parameters (1 on the diagonal); NaN in a fixed parameter's row and column
        or where a standard error is 0 (lmfit: no correlations then)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            correlations = self.covariance / np.outer(self.stderr, self.stderr)
        correlations[~self.vary, :] = np.nan
        correlations[:, ~self.vary] = np.nan
        return correlations

    def correlations_above(self, min_correl=MIN_CORREL) -> list[tuple[str, str, float]]:
        """(name, name, correlation) of the pairs whose |correlation| > min_correl, largest first, as lmfit's report
        lists them."""
        correlations, found = self.correlations, []
        for i in range(len(self.params)):
            for j in range(i + 1, len(self.params)):
                if abs(correlations[i, j]) > min_correl:  # NaN compares false: fixed pairs are left out
                    found.append((self.params[i], self.params[j], float(correlations[i, j])))
        return sorted(found, key=lambda pair: abs(pair[2]), reverse=True)

    def fit_report(self, min_correl=MIN_CORREL) -> str:
        """The report as lmfit's ModelResult.fit_report() lays it out, with the stop reason and the scaling of
        the standard errors added."""
        lines = [f"[[Model]]\n    {self.model}"] if self.model else []
        lines += _statistics_lines(self) + _variable_lines(self)
        pairs = self.correlations_above(min_correl)
        if pairs:
            lines.append(f"[[Correlations]] (unreported correlations are < {min_correl:.3f})")
            width = max(len(f"{a}, {b}") for a, b, _ in pairs)
            lines += [f"    C({a}, {b}){' ' * (width - len(f'{a}, {b}'))} = {value:+.4f}" for a, b, value in pairs]
        return "\n".join(lines)

    def __str__(self):
        return self.fit_report()

    def eval(self, x=None) -> np.ndarray:
        """The fitted model at x (default: the data's inputs): (N,) for one output, else (N, outputs)."""
        X = self._inputs(x)
        outputs = np.asarray(self._module.forward(self.values, X), dtype=float)
        return outputs.reshape(X.shape[0], -1)[:, 0] if outputs.size == X.shape[0] else outputs

    def eval_uncertainty(self, x=None, sigma=1.0, *, predicted=False) -> np.ndarray:
        """lmfit's ModelResult.eval_uncertainty(sigma=sigma) at x (default: the data's inputs), with the exact
        Jacobian: the half-width of the model's confidence band, the shape of eval(x). predicted=True: lmfit's
        `dely_predicted`, the band of a new observation (the reduced chi-square added in quadrature)."""
        scale = _band_scale(sigma, self.nfree)
        X = self._inputs(x)
        jacobian = self._output_jacobian(X)
        variance = np.einsum("ij,jk,ik->i", jacobian, self.covariance, jacobian)
        if predicted:
            variance = variance + self.redchi
        band = scale * np.sqrt(np.maximum(variance, 0.0))
        return band if band.size == X.shape[0] else band.reshape(X.shape[0], -1)

    # --- helpers ---------------------------------------------------------------------------------------------

    def _inputs(self, x):
        """x as the module's X, (N, inputs), C-contiguous float64."""
        if x is None:
            return np.ascontiguousarray(self._X, dtype=np.float64)
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("x must be an array of numbers") from None
        n_inputs = len(self._module.INPUTS)
        if x.ndim == 0:
            x = x.reshape(1)
        if x.ndim == 1 and n_inputs == 1:
            X = x.reshape(-1, 1)
        elif x.ndim == 2 and self._xdata_layout and x.shape[0] == n_inputs:
            X = x.T
        elif x.ndim == 2 and not self._xdata_layout and x.shape[1] == n_inputs:
            X = x
        else:
            wanted = f"({n_inputs}, N)" if self._xdata_layout else f"(N, {n_inputs})"
            raise ValueError(f"x must have shape {wanted} for the model's {n_inputs} input(s), not {x.shape}")
        if not np.isfinite(X).all():
            raise ValueError("x must be finite")
        return np.ascontiguousarray(X)

    def _output_jacobian(self, X):
        """d output / d parameters at X, one row per output value: the module's residual Jacobian, which is the
        output's where the residuals are output - target (checked at X: a ValueError where they are not)."""
        module = self._module
        outputs = np.asarray(module.forward(self.values, X), dtype=float).reshape(X.shape[0], -1)
        if not residuals_are_output_minus_target(module, self.values, X, outputs):
            raise ValueError("the confidence band needs residuals of the form output - target (the model's "
                             "residuals are not, so their Jacobian is not the model's)")  # fmt: skip
        Y = np.zeros((X.shape[0], len(module.TARGETS)))
        return np.asarray(module.jacobian(self.values, X, Y), dtype=float)


def residuals_are_output_minus_target(module, w, X, outputs=None):
    """Whether the module's residuals at w and X are its outputs minus the targets (as curve_fit's formulas and
    `residual = "f - y"` specs are): compared at targets 0 and 1, to rounding."""
    if outputs is None:
        outputs = np.asarray(module.forward(w, X), dtype=float).reshape(X.shape[0], -1)
    if outputs.shape[1] != len(module.TARGETS) or module.MODEL.residuals_per_sample != outputs.shape[1]:
        return False
    zeros = np.zeros((X.shape[0], len(module.TARGETS)))
    for Y in (zeros, zeros + 1.0):
        residuals = np.asarray(module.residuals(w, X, Y), dtype=float).reshape(outputs.shape)
        tolerance = 1e-9 * (1.0 + np.abs(outputs))
        if not (np.abs(residuals - (outputs - Y)) <= tolerance).all():
            return False
    return True


def from_least_squares(module, fit, X=None, Y=None, *, fixed=None, absolute_sigma=False, init=None, settings=None,
                       model="") -> FitReport:  # fmt: skip
    """The report of `fit`, a FitResult of `module.least_squares` on X, Y (default: the module's data).

    fixed: the parameters the fit held (a boolean mask, indices or names, as given to least_squares); absolute_sigma:
    standard errors from the unscaled covariance (sigma taken as absolute, SciPy's absolute_sigma=True) instead
    of scaled by the reduced chi-square; init: the starting values (default: the module's INIT); settings: the
    max_iter, xtol, ftol and gtol the fit ran with (for the stop message; default: least_squares' defaults);
    model: a line naming the model (the report's [[Model]])."""
    names = tuple(module.PARAMS)
    vary = ~_fixed_mask(fixed, names)
    X = np.ascontiguousarray(module.X if X is None else X, dtype=float)
    Y = np.ascontiguousarray(module.Y if Y is None else Y, dtype=float)
    residuals = np.asarray(fit.fun, dtype=float)
    chisqr, ndata, nvarys = float(residuals @ residuals), residuals.size, int(vary.sum())
    redchi = chisqr / max(1, ndata - nvarys)
    chisqr = max(chisqr, 1e-250 * ndata)  # as lmfit, after redchi: the logarithm below stays finite
    log_likelihood_term = ndata * math.log(chisqr / ndata)
    covariance = unscaled_covariance(np.asarray(fit.jac, dtype=float), vary)
    if not absolute_sigma:
        covariance = covariance * redchi
    code, message = stop_reason(fit.status, {**MODULE_SETTINGS, **(settings or {})})
    return FitReport(
        params=names, values=np.array(fit.w, dtype=float), stderr=np.sqrt(np.abs(np.diag(covariance))),
        covariance=covariance, vary=vary, init=np.array(module.INIT if init is None else init, dtype=float),
        ndata=ndata, nvarys=nvarys, chisqr=chisqr, redchi=redchi, aic=log_likelihood_term + 2 * nvarys,
        bic=log_likelihood_term + math.log(ndata) * nvarys, rsquared=_rsquared(module, fit.w, X, Y),
        nfev=int(fit.iterations), converged=bool(fit.converged), status=fit.status, message=" ".join(message.split()),
        absolute_sigma=bool(absolute_sigma), model=model, _module=module, _X=X,
    )  # fmt: skip


def unscaled_covariance(jacobian, vary):
    """(J^T J)^-1 over the free columns of J (the pseudo-inverse from J's SVD, singular values below
    eps * max(m, P) * the largest dropped, as SciPy's curve_fit), zero for the fixed parameters; all inf where
    J's free columns are not finite (no covariance)."""
    n, free = jacobian.shape[1], np.flatnonzero(vary)
    if not np.isfinite(jacobian[:, free]).all():
        return np.full((n, n), np.inf)
    _, singular, vt = np.linalg.svd(jacobian[:, free], full_matrices=False)
    kept = singular > np.finfo(float).eps * max(jacobian.shape[0], free.size) * singular[0]
    covariance = np.zeros((n, n))
    covariance[np.ix_(free, free)] = (vt[kept].T / singular[kept] ** 2) @ vt[kept]
    return covariance


def _fixed_mask(fixed, names):
    mask = np.zeros(len(names), dtype=bool)
    if fixed is None:
        return mask
    values = np.asarray(fixed)
    if values.dtype == bool:
        if values.shape != mask.shape:
            raise ValueError(f"fixed as a mask must have one entry per parameter, shape {mask.shape}, not "
                             f"{values.shape}")  # fmt: skip
        return values.copy()
    for item in values.reshape(-1).tolist():
        if isinstance(item, str) and item in names:
            mask[names.index(item)] = True
        elif isinstance(item, int) and 0 <= item < len(names):
            mask[item] = True
        else:
            raise ValueError(f"fixed must name parameters ({', '.join(names)}) by name or index, not {item!r}")
    return mask


def _rsquared(module, w, X, Y):
    """lmfit's R-squared, 1 - sum((y - f)^2) / sum((y - mean y)^2) over every target value; None where the
    residuals are not output - target (there is no fitted curve of the data then)."""
    X = np.ascontiguousarray(X, dtype=float)
    outputs = np.asarray(module.forward(w, X), dtype=float).reshape(X.shape[0], -1)
    if not residuals_are_output_minus_target(module, w, X, outputs):
        return None
    data = np.asarray(Y, dtype=float).reshape(outputs.shape)
    total = float(((data - data.mean()) ** 2).sum())
    return 1.0 - float(((data - outputs) ** 2).sum()) / max(np.finfo(float).tiny, total)


def _band_scale(sigma, nfree):
    """lmfit's factor: Student's t quantile at (p + 1) / 2, p = erf(sigma / sqrt 2) (sigma < 1: p = sigma)."""
    from scipy.special import erf
    from scipy.stats import t

    if isinstance(sigma, (bool, np.bool_)) or not isinstance(sigma, (int, float, np.integer, np.floating)):
        raise TypeError(f"sigma must be a number > 0 (how many standard deviations, or a probability < 1), not "
                        f"{sigma!r}")  # fmt: skip
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, not {sigma!r}")
    if nfree < 1:
        raise ValueError(f"no degrees of freedom left ({nfree} data points beyond the free parameters): no band")
    probability = sigma if sigma < 1.0 else float(erf(sigma / math.sqrt(2.0)))
    return float(t.ppf((probability + 1.0) / 2.0, nfree))


# --- the text --------------------------------------------------------------------------------------------------


def gformat(value, length=11):
    """lmfit's printfuncs.gformat: a number in `length` characters, as many digits as fit."""
    try:
        exponent = int(math.log10(abs(value)))
    except (OverflowError, ValueError):
        exponent = 0
    precision, form = length - 7, "e"
    if abs(exponent) > 99:
        precision -= 1
    elif (0 < exponent < precision + 4) or (exponent <= 0 and -exponent < precision - 1):
        form, precision = "f", precision + 4 - max(exponent, 0)
    return f"{value:{length}.{precision}{form}}"


def _statistics_lines(report):
    scaling = "absolute sigma (not scaled)" if report.absolute_sigma else "scaled by sqrt(reduced chi-square)"
    lines = [
        "[[Fit Statistics]]",
        f"    # fitting method   = {report.method}",
        f"    # function evals   = {report.nfev}",
        f"    # data points      = {report.ndata}",
        f"    # variables        = {report.nvarys}",
        f"    chi-square         = {gformat(report.chisqr).strip()}",
        f"    reduced chi-square = {gformat(report.redchi).strip()}",
        f"    Akaike info crit   = {gformat(report.aic).strip()}",
        f"    Bayesian info crit = {gformat(report.bic).strip()}",
    ]
    if report.rsquared is not None:
        lines.append(f"    R-squared          = {gformat(report.rsquared).strip()}")
    lines.append(f"    stop               = {report.status}: {report.message}")
    lines.append(f"    standard errors    = {scaling}")
    if not report.converged:
        lines.append("##  Warning: the fit did not converge; the numbers are at the last point reached")
    return lines


def _variable_lines(report):
    width = max(len(name) for name in report.params)
    lines = ["[[Variables]]"]
    for i, name in enumerate(report.params):
        label = f"{name}:{' ' * (width - len(name))}"
        if not report.vary[i]:
            lines.append(f"    {label} {report.values[i]: .7g} (fixed)")
            continue
        percent = report.relative_errors[i]
        relative = f" ({percent / 100:.2%})" if np.isfinite(percent) else ""
        lines.append(f"    {label} {gformat(report.values[i])} +/-{gformat(report.stderr[i])}{relative} "
                     f"(init = {report.init[i]:.7g})")  # fmt: skip
    return lines
