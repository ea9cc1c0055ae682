"""The NIST StRD problems as residual models compiled by symcompile itself.

Each problem's formula becomes `compile_model(model, None, params, [x], [y],
residual=model - y, ...)`, so its module's `least_squares` runs on the
compiler's own residual-and-Jacobian kernel. Problems with the same formula
(Misra1a and BoxBOD) share one module: the data are arguments of
`least_squares`, and every module costs a Numba compile of the solver at its
first fit. The fitting bench and tests/test_fitting.py fit through these.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from references.nist_strd import NistProblem
from symcompile.pipeline import compile_model


def problem_model(problem: NistProblem):
    """(formula, params, x, y) as SymPy objects."""
    x, y = sp.Symbol("x"), sp.Symbol("y")
    params = sp.symbols(problem.parameters)
    formula = sp.sympify(problem.model, locals={"x": x, **{str(p): p for p in params}})
    return formula, params, x, y


def problem_data(problem: NistProblem):
    """(X, Y) as the modules take them: one column each."""
    return np.asarray(problem.x, dtype=np.float64)[:, None], np.asarray(problem.y, dtype=np.float64)[:, None]


def build_problem_module(problem: NistProblem, out_dir, name=None):
    """The problem's residual model compiled into out_dir (its data and Start 1 as the module's defaults)."""
    formula, params, x, y = problem_model(problem)
    return compile_model(
        formula, None, params, [x], [y], residual=formula - y, name=name or f"nist_{problem.name.lower()}",
        init=problem.start1, X=problem.x, Y=problem.y, out_dir=out_dir,
        description=f"NIST StRD {problem.name} ({problem.level} difficulty): y = {problem.model}",
    )  # fmt: skip


def build_problem_modules(problems, out_dir) -> dict:
    """{problem name: module}, one module per distinct formula."""
    by_formula, modules = {}, {}
    for problem in problems:
        if problem.model not in by_formula:
            by_formula[problem.model] = build_problem_module(problem, out_dir)
        modules[problem.name] = by_formula[problem.model]
    return modules
