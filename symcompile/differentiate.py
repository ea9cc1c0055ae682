"""The differentiate stage (options.STAGES): `Model` -> `Program`.

A `Program` is the model's numeric work as straight-line code: a list of
assignments followed by result expressions. The forward program yields the
outputs; the gradient program yields the per-sample loss and its partial
derivatives in parameter order. Plain `diff` leaves the assignment list empty;
a reverse-mode stage fills it with the shared forward and adjoint values.

Two more programs where they pay (thresholds in options.py): the Hessian
program extends the gradient program with the derivatives of its every value
along each parameter (forward over the gradient's code: for `diff` that is
just `diff` of each partial derivative) and yields loss, gradient and the
Hessian's upper triangle; a residual model's Jacobian program yields its
residuals and their partial derivatives.
"""

from __future__ import annotations


import sympy as sp

from symcompile.model import Model
from symcompile.options import AUTO_DIFF_MAX_PARAMS, HESSIAN_MAX_PARAMS, JACOBIAN_MAX_PARAMS, choose
from symcompile.reverse import check_closed_form, forward_values, real_derivative, reverse_gradient
from symcompile.stage_types import Program, StraightLine  # noqa: F401 (StraightLine: the compiler's stages import it from here)


def chosen_method(model: Model, method: str) -> str:
    """`method`, with "auto" resolved by the model's size (options.AUTO_DIFF_MAX_PARAMS)."""
    if choose("gradient", method) == "auto":
        return "diff" if len(model.params) <= AUTO_DIFF_MAX_PARAMS else "reverse"
    return method


def differentiate(model: Model, method: str = "auto", hessian: bool = False) -> Program:
    """`diff`: one SymPy derivative per parameter; `reverse`: reverse mode over the loss's expression graph;
    `auto`: `diff` for small models, `reverse` for the others. `Program.method` says which was used.
    `hessian`: the second derivatives too (for models of at most HESSIAN_MAX_PARAMS parameters)."""
    method = chosen_method(model, method)
    if method == "reverse":
        forward = StraightLine(*forward_values(model.outputs, model.params))
        loss_and_grad = StraightLine(*reverse_gradient(model.loss, model.params))
    else:
        forward = StraightLine((), model.outputs)
        loss_and_grad = StraightLine((), (model.loss,) + gradient(model.loss, model.params))
    n_params = len(model.params)
    return Program(
        model=model, forward=forward, loss_and_grad=loss_and_grad, method=method,
        hessian=with_hessian(loss_and_grad, model.params) if hessian and n_params <= HESSIAN_MAX_PARAMS else None,
        residuals_and_jacobian=(
            residuals_and_jacobian(model.residuals, model.params, method)
            if model.residuals and n_params <= JACOBIAN_MAX_PARAMS else None
        ),
    )  # fmt: skip


def gradient(loss, params) -> tuple[sp.Expr, ...]:
    """The partial derivatives of `loss`, in closed form, or a SymcompileError naming what SymPy cannot differentiate."""
    grads = []
    for param in params:
        derivative = real_derivative(loss, param)
        check_closed_form(derivative, param.name)
        grads.append(derivative)
    return tuple(grads)


def with_hessian(code: StraightLine, params) -> StraightLine:
    """`code` (loss and gradient) extended to the Hessian's upper triangle, by forward mode over its values.

    Each assigned value v gets its derivative along each parameter p, dv/dp = de/dp + sum over the assigned
    values s that e reads of de/ds * ds/dp (only those not identically zero are assigned); the Hessian's
    row i is then the same chain rule over the partial derivative i. For `diff` (no assignments) this is
    `diff` of each partial derivative.
    """
    loss, grads = code.results[0], code.results[1:]
    assignments = list(code.assignments)
    rows = []
    for i, param in enumerate(params):
        along = _tangents(code.assignments, param, assignments)
        rows.append([_total_derivative(grads[j], param, along) for j in range(i, len(params))])
    # H[i, j] for j >= i is d grad_j / d param_i: taken along param_i, it reuses that parameter's tangents
    return StraightLine(tuple(assignments), (loss, *grads, *(h for row in rows for h in row)))


def _tangents(assignments, param, out):
    """{assigned symbol: the symbol holding its derivative along `param`}, appending those assignments to `out`."""
    along = {}
    for symbol, expr in assignments:
        derivative = _total_derivative(expr, param, along)
        if derivative != 0:
            along[symbol] = sp.Dummy(f"d{symbol}", real=True)
            out.append((along[symbol], derivative))
    return along


def _total_derivative(expr, param, along):
    derivative = real_derivative(expr, param)
    for symbol in expr.free_symbols & along.keys():
        derivative += real_derivative(expr, symbol) * along[symbol]
    check_closed_form(derivative, param.name)
    # A kink's second derivative (of Max, Abs, Heaviside...) is a DiracDelta: zero wherever it exists, and the
    # Hessian takes it so, as the gradient takes SymPy's value at the kink.
    return derivative.xreplace({delta: sp.S.Zero for delta in derivative.atoms(sp.DiracDelta)})


def residuals_and_jacobian(residuals, params, method) -> StraightLine:
    """The residuals and their derivatives, residual by residual: one `diff` each, or reverse mode per residual."""
    if method != "reverse":
        return StraightLine((), tuple(residuals) + tuple(d for r in residuals for d in gradient(r, params)))
    assignments, values, rows = [], [], []
    for residual in residuals:
        code, (value, *grads) = reverse_gradient(residual, params)
        assignments += code
        values.append(value)
        rows += grads
    return StraightLine(tuple(assignments), (*values, *rows))
