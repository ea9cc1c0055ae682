"""Stage 3, differentiate: `Model` -> `Program`.

A `Program` is the model's numeric work as straight-line code: a list of
assignments followed by result expressions. The forward program yields the
outputs; the gradient program yields the per-sample loss and its partial
derivatives in parameter order. Plain `diff` leaves the assignment list empty;
a reverse-mode stage fills it with the shared forward and adjoint values.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symcompile.model import Model
from symcompile.options import AUTO_DIFF_MAX_PARAMS, choose
from symcompile.reverse import check_closed_form, forward_values, real_derivative, reverse_gradient


@dataclass(frozen=True)
class StraightLine:
    """`assignments` run in order, then `results` are evaluated."""

    assignments: tuple[tuple[sp.Symbol, sp.Expr], ...]
    results: tuple[sp.Expr, ...]


@dataclass(frozen=True)
class Program:
    """The model's numeric work as straight-line code, and the gradient method that derived it."""

    model: Model
    forward: StraightLine
    loss_and_grad: StraightLine  # results: (loss, dloss/dparam for each param)
    method: str  # "diff" or "reverse"


def chosen_method(model: Model, method: str) -> str:
    """`method`, with "auto" resolved by the model's size (options.AUTO_DIFF_MAX_PARAMS)."""
    if choose("gradient", method) == "auto":
        return "diff" if len(model.params) <= AUTO_DIFF_MAX_PARAMS else "reverse"
    return method


def differentiate(model: Model, method: str = "auto") -> Program:
    """`diff`: one SymPy derivative per parameter; `reverse`: reverse mode over the loss's expression graph;
    `auto`: `diff` for small models, `reverse` for the others. `Program.method` says which was used."""
    method = chosen_method(model, method)
    if method == "reverse":
        forward = StraightLine(*forward_values(model.outputs, model.params))
        loss_and_grad = StraightLine(*reverse_gradient(model.loss, model.params))
    else:
        forward = StraightLine((), model.outputs)
        loss_and_grad = StraightLine((), (model.loss,) + gradient(model.loss, model.params))
    return Program(model=model, forward=forward, loss_and_grad=loss_and_grad, method=method)


def gradient(loss, params) -> tuple[sp.Expr, ...]:
    """The partial derivatives of `loss`, in closed form, or a SymcompileError naming what SymPy cannot differentiate."""
    grads = []
    for param in params:
        derivative = real_derivative(loss, param)
        check_closed_form(derivative, param.name)
        grads.append(derivative)
    return tuple(grads)

