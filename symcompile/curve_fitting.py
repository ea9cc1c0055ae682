"""`curve_fit`: scipy.optimize.curve_fit's call, on a compiled module with the exact Jacobian.

`f` is a formula string ("a*exp(-b*x) + c", parsed by symcompile.expression, never evaluated), a SymPy
expression, or a Python function f(x, a, b, ...) written with NumPy, traced once on symbols (symcompile.tracing).
The independent variable is `x` (x1, x2, ... for xdata of shape (k, N); or `independent=`), every other name a
parameter, in order of first appearance (or `params=`). The formula's module (residual f - y, its exact
Jacobian, MINPACK's Levenberg-Marquardt) comes from the module cache: built once, then loaded, in any process.
Each formula is also kept in this process, so a loop of fits pays only the checks and the compiled fit.

As SciPy: p0 defaults to ones (or the middle of finite bounds); sigma is 1-D (standard deviations) or 2-D (a
covariance matrix); pcov is the pseudo-inverse of J^T J (J the final Jacobian of the weighted residuals; SVD
threshold eps * max(m, P) * the largest singular value), times the reduced chi-square unless absolute_sigma, inf
(with an OptimizeWarning) where it cannot be estimated; no convergence is a RuntimeError. Bounds, weights, robust
losses and fixed parameters are the solver's (symcompile.runtime.least_squares: bounds by a transform, so the
method is Levenberg-Marquardt whatever `method` says; "lm" with bounds or a robust loss is refused, as SciPy
does). symcompile's extras: fixed={"c": 0.5} keeps parameters at given values (their pcov rows and columns are 0),
loss/f_scale (robust losses, as SciPy's least_squares).

`curve_fit_report` runs the same fit and returns symcompile.fit_report's FitReport: lmfit's report and the
model's confidence band (lmfit's eval_uncertainty, with the exact Jacobian); curve_fit itself stays SciPy's.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.expression import CONSTANTS, FUNCTIONS, ExpressionParser
from symcompile.fit_report import from_least_squares, stop_reason, unscaled_covariance

__all__ = ["OptimizeWarning", "curve_fit", "curve_fit_report"]


class OptimizeWarning(UserWarning):
    """The covariance of the parameters could not be estimated (SciPy's scipy.optimize.OptimizeWarning)."""


# SciPy leastsq's defaults (curve_fit's method "lm"); max_iter defaults to 100 * (P + 1) as leastsq's with a Jacobian.
XTOL = FTOL = 1.49012e-08
GTOL = 0.0
METHODS = ("lm", "trf", "dogbox")
SOLVER_KEYWORDS = {"max_iter", "maxfev", "max_nfev", "xtol", "ftol", "gtol", "loss", "f_scale", "fixed"}
FORMULA_KEYWORDS = {"params", "independent"}


@dataclass(frozen=True)
class Formula:
    """A traced or parsed formula and its compiled module: `params` in the module's order."""

    params: tuple[str, ...]
    module: object


_FORMULAS: dict = {}  # (f, n_inputs, params, independent, n_params) -> Formula: a fit loop traces and looks up once
_MAX_FORMULAS = 1024


def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None, bounds=(-np.inf, np.inf),
              method=None, jac=None, *, full_output=False, nan_policy=None, **kwargs):  # fmt: skip
    """Fit f's parameters to ydata ~ f(xdata, *params): scipy.optimize.curve_fit's arguments and results.

    Returns (popt, pcov), or with full_output (popt, pcov, infodict, mesg, ier); infodict has "nfev" and "fvec"
    (the final weighted residuals). f's Jacobian is exact (symbolic), so `jac` is accepted and never called.
    Keywords beyond SciPy's: max_iter (= maxfev), xtol, ftol, gtol, loss, f_scale, fixed ({name: value}), and for
    formulas params (the parameters' order) and independent (the independent variables' names).
    """
    fitted = _fit(f, xdata, ydata, p0, sigma, check_finite, bounds, method, nan_policy, kwargs)
    fit, settings = fitted.fit, fitted.settings
    if not fit.converged:
        raise RuntimeError(f"Optimal parameters not found: {stop_reason(fit.status, settings)[1]}")
    pcov = _covariance(fit, absolute_sigma, fitted.free)
    if full_output:
        ier, mesg = stop_reason(fit.status, settings)
        return fit.w, pcov, {"nfev": fit.iterations, "fvec": fit.fun}, mesg, ier
    return fit.w, pcov


def curve_fit_report(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False, check_finite=None,
                     bounds=(-np.inf, np.inf), method=None, jac=None, *, nan_policy=None, **kwargs):  # fmt: skip
    """curve_fit's fit (the same arguments), as a symcompile.fit_report.FitReport: lmfit's report
    (`print(report)`), the values, standard errors, correlations and statistics as attributes, and the
    model at new x with its confidence band (`report.eval(x)`, `report.eval_uncertainty(x, sigma=1)`).

    A fit that does not converge is reported (report.converged is False, report.status says why), not raised.
    x for eval and eval_uncertainty is given as xdata: (N,) or (k, N)."""
    fitted = _fit(f, xdata, ydata, p0, sigma, check_finite, bounds, method, nan_policy, kwargs)
    X, Y = _module_arrays(fitted.xdata, fitted.ydata)
    fixed = [i for i in range(len(fitted.formula.params)) if i not in fitted.free]
    report = from_least_squares(fitted.formula.module, fitted.fit, X, Y, fixed=fixed,
                                absolute_sigma=absolute_sigma, init=fitted.p0, settings=fitted.settings,
                                model=_model_line(f, fitted.formula))  # fmt: skip
    return dataclasses.replace(report, _xdata_layout=True)


@dataclass(frozen=True)
class _Fitted:
    """What _fit did: the formula and its module, the solver's FitResult, its settings, the free parameters'
    indices, the start and the data as fitted (NaN rows dropped)."""

    formula: Formula
    fit: object
    settings: dict
    free: list
    p0: np.ndarray
    xdata: np.ndarray
    ydata: np.ndarray


def _fit(f, xdata, ydata, p0, sigma, check_finite, bounds, method, nan_policy, kwargs) -> _Fitted:
    """curve_fit's checks and fit, up to the FitResult."""
    formula_options, solver_options = _split_keywords(kwargs)
    if method is not None and method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} or None, not {method!r}")
    xdata, ydata, sigma = _checked_data(xdata, ydata, sigma, check_finite, nan_policy)
    n_inputs = 1 if xdata.ndim == 1 else xdata.shape[0]
    formula = _formula(f, n_inputs, None if p0 is None else np.size(p0), **formula_options)
    n = len(formula.params)
    fixed = _fixed(solver_options.pop("fixed", None), formula.params)
    bounds = _bounds(bounds, n)
    p0 = _start(p0, n, formula.params, bounds, fixed)
    _check_method(method, bounds, solver_options.get("loss", "linear"))
    free = [i for i, name in enumerate(formula.params) if name not in fixed]
    if len(free) > ydata.size:
        raise TypeError(f"The number of func parameters={len(free)} must not exceed the number of data "
                        f"points={ydata.size}")  # fmt: skip
    settings = _settings(solver_options, len(free))
    fit = _solve(formula.module, p0, xdata, ydata, settings, _solver_extras(free, n, bounds, sigma, solver_options))
    return _Fitted(formula, fit, settings, free, p0, xdata, ydata)


def _module_arrays(xdata, ydata):
    """(X (N, k), Y (N, 1)): xdata and ydata as the formula's module takes them."""
    X = np.ascontiguousarray(xdata.reshape(1, -1).T if xdata.ndim == 1 else xdata.T)
    return X, np.ascontiguousarray(ydata.reshape(-1, 1))


def _model_line(f, formula):
    """The report's [[Model]] line: the formula as given, or the function's name and parameters."""
    if isinstance(f, (str, sp.Basic)):
        return str(f)
    return f"{getattr(f, '__name__', 'f')}(x, {', '.join(formula.params)})"


def _solve(module, p0, xdata, ydata, settings, extras):
    """The runtime's least_squares on the module's kernel, with the data as the module would check it (checked
    here already: float64, finite where they must be, the right shapes), skipping the module's second check."""
    from symcompile.runtime import least_squares as solver

    X, Y = _module_arrays(xdata, ydata)
    max_iter, xtol, ftol, gtol = solver.checked_settings(settings["max_iter"], settings["xtol"], settings["ftol"],
                                                         settings["gtol"])  # fmt: skip
    kernel, per_sample = module.MODEL.kernels["_residuals_and_jacobian"], module.MODEL.residuals_per_sample
    return solver.least_squares(kernel, per_sample, p0, X, Y, max_iter, xtol, ftol, gtol, **extras)


# --- the formula and its module --------------------------------------------------------------------------------


def _formula(f, n_inputs, n_p0, params=None, independent=None) -> Formula:
    params = None if params is None else tuple(_names(params, "params"))
    independent = None if independent is None else tuple(_names(independent, "independent"))
    key = (f, n_inputs, params, independent, n_p0 if callable(f) else None)
    try:
        return _FORMULAS[key]
    except TypeError:  # an unhashable f: not kept
        return _compiled(f, n_inputs, n_p0, params, independent)
    except KeyError:
        pass
    formula = _compiled(f, n_inputs, n_p0, params, independent)
    if len(_FORMULAS) >= _MAX_FORMULAS:  # functions made in a loop must not pile up
        _FORMULAS.clear()
    _FORMULAS[key] = formula
    return formula


def _compiled(f, n_inputs, n_p0, params, independent) -> Formula:
    from symcompile.model import make_model
    from symcompile.module_cache import cached_module

    expr, param_symbols, input_symbols = _symbolic(f, n_inputs, n_p0, params, independent)
    taken = {s.name for s in param_symbols + input_symbols}
    target = sp.Symbol(next(name for name in ("y", "ydata", "y_target", "_y") if name not in taken))
    model = make_model("curve_fit", expr, None, param_symbols, input_symbols, [target], residual=expr - target)
    return Formula(tuple(s.name for s in param_symbols), cached_module(model, prefix="curve_fit"))


def _symbolic(f, n_inputs, n_p0, params, independent):
    """(expression, parameter symbols, input symbols) of a formula string, a SymPy expression or a function."""
    if isinstance(f, str):
        inputs, names = _split_names(_names_in_order(f), n_inputs, params, independent)
        symbols = {name: sp.Symbol(name) for name in inputs + names}
        return ExpressionParser(symbols).parse(f), [symbols[n] for n in names], [symbols[n] for n in inputs]
    if isinstance(f, sp.Basic):
        if not isinstance(f, sp.Expr):
            raise SymcompileError(f"f must be a SymPy expression, not {type(f).__name__}")
        by_name = {s.name: s for s in f.free_symbols}
        try:
            order = _names_in_order(str(f))  # as printed; names Python cannot parse (`lambda`, `w_{1}`): sorted
        except SymcompileError:
            order = []
        if set(order) != set(by_name):
            order = sorted(by_name)
        inputs, names = _split_names(order, n_inputs, params, independent)
        symbols = {n: by_name.get(n, sp.Symbol(n)) for n in inputs + names}
        return f, [symbols[n] for n in names], [symbols[n] for n in inputs]
    if callable(f):
        return _traced(f, n_inputs, n_p0, params, independent)
    raise TypeError(f"f must be a function f(x, *params), a formula string or a SymPy expression, not "
                    f"{type(f).__name__}")  # fmt: skip


def _traced(f, n_inputs, n_p0, params, independent):
    from symcompile.tracing import signature_parameters, trace

    if independent is not None:
        raise TypeError("independent= is for formulas; a function's first argument is x")
    names, variadic = signature_parameters(f)
    names = list(params) if params is not None else names
    if variadic and params is None:
        if n_p0 is None:
            raise ValueError("Unable to determine number of fit parameters: f takes *args, so give p0")
        names = names + [f"p{i}" for i in range(len(names), n_p0)]
    if n_p0 is not None and n_p0 != len(names):
        raise ValueError(f"p0 has {n_p0} values but {getattr(f, '__name__', 'f')} has {len(names)} parameters "
                         f"({', '.join(names)})")  # fmt: skip
    base = _first_argument(f)
    inputs = [base] if n_inputs == 1 else [f"{base}{i + 1}" for i in range(n_inputs)]
    inputs = [name + "_" * (name in names) for name in inputs]
    param_symbols, input_symbols = [sp.Symbol(n) for n in names], [sp.Symbol(n) for n in inputs]
    return trace(f, input_symbols, param_symbols), param_symbols, input_symbols


def _first_argument(f):
    try:
        first = next(iter(inspect.signature(f).parameters.values()))
        return first.name if first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD) else "x"
    except (TypeError, ValueError, StopIteration):
        return "x"


def _names_in_order(text) -> list[str]:
    """The names a formula uses, in order of first appearance (functions and constants left out): read from
    Python's parse tree, which runs nothing. A text that does not parse gets the formula parser's error."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        ExpressionParser({}).parse(text)  # raises its one-line SymcompileError
        raise
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in calls]
    found = sorted((node.lineno, node.col_offset, node.id) for node in names)
    return list(dict.fromkeys(name for *_, name in found if name not in FUNCTIONS and name not in CONSTANTS))


def _split_names(order, n_inputs, params, independent):
    """(independent variables, parameters) of a formula whose names appear in `order`."""
    if independent is None:
        independent = ("x",) if n_inputs == 1 else tuple(f"x{i + 1}" for i in range(n_inputs))
    if len(independent) != n_inputs:
        raise ValueError(f"xdata has {n_inputs} independent variable(s) (its first axis), but independent= names "
                         f"{len(independent)}: {', '.join(independent)}")  # fmt: skip
    absent = [name for name in independent if name not in order]
    if absent and order:
        raise ValueError(f"the formula does not use the independent variable(s) {', '.join(absent)} (its names: "
                         f"{', '.join(order)}); name them with independent=")  # fmt: skip
    if params is None:
        params = tuple(name for name in order if name not in independent)
    clash = set(params) & set(independent)
    if clash:
        raise ValueError(f"{', '.join(sorted(clash))} cannot be both a parameter and an independent variable")
    if not params:
        raise ValueError("the formula has no parameters to fit")
    return list(independent), list(params)


def _names(value, what):
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise TypeError(f"{what} must be a name or a list of names, not {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names a variable twice: {value!r}")
    return names


# --- arguments ---------------------------------------------------------------------------------------------------


def _split_keywords(kwargs):
    if "args" in kwargs:
        raise ValueError("'args' is not a supported keyword argument.")
    unknown = set(kwargs) - SOLVER_KEYWORDS - FORMULA_KEYWORDS
    if unknown:
        known = ", ".join(sorted(SOLVER_KEYWORDS | FORMULA_KEYWORDS))
        raise TypeError(f"curve_fit() got unexpected keyword argument(s) {', '.join(sorted(unknown))} (known: {known})")
    formula = {k: v for k, v in kwargs.items() if k in FORMULA_KEYWORDS}
    return formula, {k: v for k, v in kwargs.items() if k in SOLVER_KEYWORDS}


def _checked_data(xdata, ydata, sigma, check_finite, nan_policy):
    """(xdata (N,) or (k, N), ydata (N,), sigma) as float arrays, NaN rows dropped where nan_policy="omit"."""
    if nan_policy not in (None, "raise", "omit"):
        if nan_policy == "propagate":
            raise ValueError("`nan_policy='propagate'` is not supported by this function.")
        raise ValueError("nan_policy must be one of {None, 'raise', 'omit'}")
    if check_finite is None:
        check_finite = nan_policy is None
    ydata, xdata = _float_array(ydata, "ydata", check_finite), _float_array(xdata, "xdata", check_finite)
    if ydata.size == 0:
        raise ValueError("`ydata` must not be empty!")
    if ydata.ndim != 1:
        raise ValueError(f"ydata must be 1-D (one value per data point), got shape {ydata.shape}")
    if xdata.ndim not in (1, 2) or xdata.shape[-1] != ydata.size:
        raise ValueError(f"xdata must have shape ({ydata.size},) or (k, {ydata.size}) for ydata's {ydata.size} "
                         f"points, got {xdata.shape}")  # fmt: skip
    sigma = _sigma(sigma, ydata.size)
    if not check_finite and nan_policy is not None:
        has_nan = np.isnan(ydata) | np.isnan(xdata).reshape(-1, ydata.size).any(axis=0)
        if has_nan.any() and nan_policy == "raise":
            raise ValueError("The input contains nan values")
        if has_nan.any():
            keep = ~has_nan
            xdata, ydata = xdata[..., keep], ydata[keep]
            if sigma is not None:
                sigma = sigma[keep] if sigma.ndim == 1 else sigma[np.ix_(keep, keep)]
            if ydata.size == 0:
                raise ValueError("every data point has a NaN: nothing left to fit")
    return xdata, ydata, sigma


def _float_array(values, what, check_finite):
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an array of numbers") from None
    if check_finite and not np.isfinite(array).all():
        raise ValueError(f"{what} must not contain infs or NaNs (pass nan_policy='omit' to leave NaN points out)")
    return array


def _sigma(sigma, n_points):
    """sigma as SciPy reads it: a scalar or (N,) standard deviations, or an (N, N) covariance matrix."""
    if sigma is None:
        return None
    sigma = np.asarray(sigma, dtype=float)
    if sigma.size == 1 or sigma.shape == (n_points,):
        sigma = np.broadcast_to(sigma.reshape(-1), (n_points,)).copy()
        if not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise ValueError("sigma must be positive and finite (standard deviations of ydata)")
        return sigma
    if sigma.shape == (n_points, n_points):
        if not np.isfinite(sigma).all():
            raise ValueError("`sigma` must be positive definite.")
        try:
            np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            raise ValueError("`sigma` must be positive definite.") from None
        return sigma
    raise ValueError(f"`sigma` has incorrect shape {sigma.shape}: give ({n_points},) standard deviations or a "
                     f"({n_points}, {n_points}) covariance matrix")  # fmt: skip


def _fixed(fixed, params):
    if fixed is None:
        return {}
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict of parameter name -> value, not {type(fixed).__name__}")
    unknown = [name for name in fixed if name not in params]
    if unknown:
        raise ValueError(f"fixed names {', '.join(map(str, unknown))}, not parameters (they are: {', '.join(params)})")
    values = {name: float(value) for name, value in fixed.items()}
    if not all(np.isfinite(v) for v in values.values()):
        raise ValueError("fixed values must be finite numbers")
    if len(values) == len(params):
        raise ValueError("every parameter is fixed: nothing left to fit")
    return values


_UNBOUNDED = (-np.inf, np.inf)


def _bounds(bounds, n):
    """(lower, upper) arrays of n, as SciPy's prepare_bounds reads (lb, ub) scalars or arrays, or a Bounds
    object; None where every bound is infinite."""
    if bounds is _UNBOUNDED or (type(bounds) is tuple and bounds == _UNBOUNDED):  # the default: no array work
        return None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        bounds = (bounds.lb, bounds.ub)
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError("bounds must be (lower, upper): two numbers or two arrays of one value per parameter")
    lower, upper = (np.asarray(b, dtype=float) for b in bounds)
    if lower.ndim > 1 or upper.ndim > 1 or lower.size not in (1, n) or upper.size not in (1, n):
        raise ValueError(f"bounds must hold one value, or {n} (one per parameter), on each side")
    lower, upper = np.broadcast_to(lower.reshape(-1), (n,)).copy(), np.broadcast_to(upper.reshape(-1), (n,)).copy()
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError("bounds must not be NaN")
    if (lower >= upper).any():
        i = int(np.argmax(lower >= upper))
        raise ValueError(f"Each lower bound must be strictly less than each upper bound: parameter {i} has "
                         f"lower {lower[i]} >= upper {upper[i]}")  # fmt: skip
    return (lower, upper) if np.isfinite(lower).any() or np.isfinite(upper).any() else None


def _start(p0, n, params, bounds, fixed):
    """p0 as floats (ones, or SciPy's feasible default inside finite bounds, where not given), fixed values set."""
    if p0 is None:
        p0 = np.ones(n)
        if bounds is not None:
            lower, upper = bounds
            both, low, high = np.isfinite(lower) & np.isfinite(upper), np.isfinite(lower), np.isfinite(upper)
            p0[both] = 0.5 * (lower[both] + upper[both])
            p0[low & ~both] = lower[low & ~both] + 1
            p0[high & ~both] = upper[high & ~both] - 1
    else:
        p0 = np.array(p0, dtype=float, ndmin=1).reshape(-1)
        if p0.size != n:
            raise ValueError(f"p0 has {p0.size} values for {n} parameters ({', '.join(params)})")
        if not np.isfinite(p0).all():
            raise ValueError("p0 must be finite")
    for name, value in fixed.items():
        p0[params.index(name)] = value
    if bounds is not None:
        lower, upper = bounds
        outside = [i for i in range(n) if not lower[i] <= p0[i] <= upper[i]]
        if outside:
            i = outside[0]
            raise ValueError(f"p0 is outside the bounds: {params[i]} = {p0[i]} not in [{lower[i]}, {upper[i]}]")
    return p0


def _check_method(method, bounds, loss):
    if method == "lm" and bounds is not None:
        raise ValueError("Method 'lm' only works for unconstrained problems. Use 'trf' or 'dogbox' instead.")
    if method == "lm" and loss != "linear":
        raise ValueError("method='lm' supports only 'linear' loss function.")


def _settings(options, n_free):
    given = [name for name in ("max_iter", "maxfev", "max_nfev") if options.get(name) is not None]
    if len(given) > 1:
        raise TypeError(f"give one of max_iter, maxfev and max_nfev, not {' and '.join(given)}")
    max_iter = options[given[0]] if given else 100 * (n_free + 1)
    return {"max_iter": max_iter, "xtol": options.get("xtol", XTOL), "ftol": options.get("ftol", FTOL),
            "gtol": options.get("gtol", GTOL)}  # fmt: skip


def _solver_extras(free, n, bounds, sigma, options):
    """The solver's keyword arguments beyond its settings, only where they are not its defaults (so an
    unweighted, unbounded fit takes the solver's plain path). Fixed parameters: a mask, their values in p0."""
    extras = {}
    if len(free) < n:
        extras["fixed"] = np.isin(np.arange(n), free, invert=True)
    if bounds is not None:
        extras["bounds"] = bounds
    if sigma is not None:
        extras["sigma"] = sigma
    if options.get("loss", "linear") != "linear":
        extras["loss"] = options["loss"]
    if options.get("f_scale", 1.0) != 1.0:
        extras["f_scale"] = options["f_scale"]
    return extras


# --- results -----------------------------------------------------------------------------------------------------


def _covariance(fit, absolute_sigma, free):
    """SciPy's pcov: the pseudo-inverse of J^T J (J = fit.jac, the free parameters' columns) from the SVD of J,
    singular values above eps * max(m, P) * the largest, times chi^2 / (m - P) unless absolute_sigma; inf with an
    OptimizeWarning where it cannot be estimated. Fixed parameters' rows and columns are 0.

    Scaled, that is the solver's own covariance (its QR's inverse at full rank, the same pseudo-inverse), so
    only absolute_sigma computes the SVD (fit_report.unscaled_covariance, which the report uses too)."""
    if not absolute_sigma:
        covariance = fit.covariance
    else:
        vary = np.zeros(fit.w.size, dtype=bool)
        vary[free] = True
        covariance = unscaled_covariance(fit.jac, vary)
    if not np.isfinite(covariance).all():
        warnings.warn("Covariance of the parameters could not be estimated", OptimizeWarning, stacklevel=3)
        return np.full_like(covariance, np.inf)
    return covariance
