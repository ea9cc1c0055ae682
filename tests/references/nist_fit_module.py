"""The NIST problems as one module of compiled fits: symcompile's runtime solver plus kernels.

The module fits with the Levenberg-Marquardt solver a generated module uses
(symcompile.runtime.least_squares), on a `_residuals_and_jacobian` written from
each problem's formula by SymPy (`diff`, `cse`, and the Python printer's `math.`
functions). One kernel for all problems dispatches on a problem number that
`problem_data` puts in X's second column. The tests and the fitting bench both
fit through it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import sympy
from sympy.printing.pycode import PythonCodePrinter

from references.nist_strd import PROBLEMS, NistProblem

# Two weights that only appear as a product: the Jacobian's columns are parallel everywhere.
# The data lie on y = 2.5 x plus a fixed wiggle, so the fit has a nonzero residual.
PRODUCT = NistProblem(
    name="Product",
    level="singular",
    model="b1*b2*x",
    x=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    y=(2.6, 4.9, 7.6, 9.9, 12.6, 14.9),
    start1=(1.0, 1.0),
    start2=(3.0, 0.5),
    certified=(float("nan"), float("nan")),
    certified_stderr=(float("nan"), float("nan")),
    certified_rss=float("nan"),
)

ALL_PROBLEMS = (*PROBLEMS, PRODUCT)

_MODULE_HEADER = '''"""NIST StRD fits: symcompile's Levenberg-Marquardt with SymPy-written kernels (a test module)."""

import math

import numba
import numpy as np

from symcompile.runtime import least_squares as _runtime_least_squares

FitResult = _runtime_least_squares.FitResult


def least_squares(w, X, Y, *, max_iter=200, xtol=1e-10, ftol=1e-10, gtol=1e-10):
    """As a generated module's least_squares, on arrays as problem_data gives them."""
    settings = _runtime_least_squares.checked_settings(max_iter, xtol, ftol, gtol)
    w0 = np.array(w, dtype=np.float64).ravel()
    X, Y = np.ascontiguousarray(X, np.float64), np.ascontiguousarray(Y, np.float64)
    return _runtime_least_squares.least_squares(_residuals_and_jacobian, 1, w0, X, Y, *settings)
'''


def model_and_derivatives(problem: NistProblem):
    """(x, parameters, [model, d model/d b1, ...]) as SymPy expressions."""
    x = sympy.Symbol("x")
    params = sympy.symbols(problem.parameters)
    model = sympy.sympify(problem.model, locals={"x": x, **{str(p): p for p in params}})
    return x, params, [model] + [sympy.diff(model, p) for p in params]


def kernel_function(problem: NistProblem, function_name: str) -> str:
    """`function_name(w, X, Y, r, J)`: the problem's residuals model - y and their derivatives."""
    _, params, exprs = model_and_derivatives(problem)
    temporaries, (value, *derivatives) = sympy.cse(exprs, symbols=sympy.numbered_symbols("t"))
    printer = PythonCodePrinter({"fully_qualified_modules": True})
    lines = [
        "",
        "",
        '@numba.njit(cache=True, error_model="numpy")',
        f"def {function_name}(w, X, Y, r, J):",
        *(f"    {p} = w[{j}]" for j, p in enumerate(params)),
        "    for i in range(Y.shape[0]):",
        "        x = X[i, 0]",
        *(f"        {name} = {printer.doprint(expr)}" for name, expr in temporaries),
        f"        r[i] = {printer.doprint(value)} - Y[i, 0]",
        *(f"        J[i, {j}] = {printer.doprint(d)}" for j, d in enumerate(derivatives)),
    ]
    return "\n".join(lines) + "\n"


def module_source(problems=ALL_PROBLEMS) -> str:
    """Header (with least_squares over the runtime), one kernel per problem, and the dispatching
    `_residuals_and_jacobian`."""
    names = [f"_model_{problem.name.lower()}" for problem in problems]
    dispatch = [
        "",
        "",
        '@numba.njit(cache=True, error_model="numpy")',
        "def _residuals_and_jacobian(w, X, Y, r, J):",
        "    problem = int(X[0, 1])",
    ]
    for number, name in enumerate(names):
        dispatch += [f"    {'if' if number == 0 else 'elif'} problem == {number}:", f"        {name}(w, X, Y, r, J)"]
    kernels = "".join(kernel_function(problem, name) for problem, name in zip(problems, names))
    return _MODULE_HEADER + kernels + "\n".join(dispatch) + "\n"


def problem_data(problem: NistProblem, problems=ALL_PROBLEMS):
    """(X, Y) for the module: X's columns are x and the problem's number; Y is one column, y."""
    x = np.asarray(problem.x, dtype=np.float64)
    X = np.column_stack([x, np.full_like(x, problems.index(problem))])
    return X, np.asarray(problem.y, dtype=np.float64).reshape(-1, 1)


def build_module(folder, problems=ALL_PROBLEMS, name="nist_fits"):
    """Write the module into `folder` (Numba caches beside it) and import it."""
    path = Path(folder) / f"{name}.py"
    path.write_text(module_source(problems), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def numpy_functions(problem: NistProblem):
    """(model(x, *b), derivatives(x, *b) -> list) in NumPy: the same SymPy derivatives, lambdified
    with common subexpressions shared (as a careful hand-written Jacobian would share them)."""
    x, params, (model, *derivatives) = model_and_derivatives(problem)
    value = sympy.lambdify([x, *params], model, "numpy", cse=True)
    gradient = sympy.lambdify([x, *params], derivatives, "numpy", cse=True)
    return value, gradient


def jacobian_function(problem: NistProblem):
    """(residuals(b), jacobian(b)) in NumPy on the problem's data, for SciPy's least_squares."""
    value, gradient = numpy_functions(problem)
    xs = np.asarray(problem.x, dtype=np.float64)
    ys = np.asarray(problem.y, dtype=np.float64)

    def residuals(b):
        return value(xs, *b) - ys

    def jacobian(b):
        return jacobian_columns(gradient(xs, *b), xs.size)

    return residuals, jacobian


def jacobian_columns(derivatives, m):
    """The (m, P) Jacobian from P derivatives, each an array over the samples or a constant."""
    J = np.empty((m, len(derivatives)))
    for j, column in enumerate(derivatives):
        J[:, j] = column
    return J
