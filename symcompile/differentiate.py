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


@dataclass(frozen=True)
class StraightLine:
    """`assignments` run in order, then `results` are evaluated."""

    assignments: tuple[tuple[sp.Symbol, sp.Expr], ...]
    results: tuple[sp.Expr, ...]


@dataclass(frozen=True)
class Program:
    model: Model
    forward: StraightLine
    loss_and_grad: StraightLine  # results: (loss, dloss/dparam for each param)
    method: str


def differentiate(model: Model, method: str = "diff") -> Program:
    grads = tuple(sp.diff(model.loss, p) for p in model.params)
    return Program(
        model=model,
        forward=StraightLine((), model.outputs),
        loss_and_grad=StraightLine((), (model.loss,) + grads),
        method=method,
    )
