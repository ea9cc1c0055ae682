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

from symcompile.errors import SymcompileError
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
    grads = gradient(model.loss, model.params)
    return Program(
        model=model,
        forward=StraightLine((), model.outputs),
        loss_and_grad=StraightLine((), (model.loss,) + grads),
        method=method,
    )


def gradient(loss, params) -> tuple[sp.Expr, ...]:
    """The partial derivatives of `loss`, in closed form, or a SymcompileError naming what SymPy cannot differentiate.

    Every symbol stands for a float, so SymPy is told it is real: with its
    default complex symbols, d|w|/dw comes out in terms of re(w), im(w) and
    their unevaluated derivatives. The user's formula is the only input here,
    so whatever SymPy raises while differentiating it (a function without a
    derivative rule, a bad argument) is reported as a problem with the model.
    """
    real = {s: sp.Dummy(s.name, real=True) for s in loss.free_symbols | set(params)}
    back = {dummy: s for s, dummy in real.items()}
    real_loss = loss.xreplace(real)
    grads = []
    for param in params:
        try:
            derivative = sp.diff(real_loss, real[param])
        except Exception as exc:  # noqa: BLE001 (SymPy raises many types; see the docstring)
            raise SymcompileError(f"cannot differentiate the loss with respect to {param.name}: {exc}") from exc
        unevaluated = next(iter(derivative.atoms(sp.Derivative)), None)
        if unevaluated is not None:
            raise SymcompileError(
                f"the loss has no closed-form derivative with respect to {param.name}: "
                f"SymPy has no derivative rule for {unevaluated.expr.func}"
            )
        grads.append(derivative.xreplace(back))
    return tuple(grads)
