"""Stage 2, rewrite: algebraically equal forms that compute better.

Each rewrite is a small named function from expression to expression; the
stage applies them in order and reports which ones changed something, so the
build report shows what was done to the user's formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import sympy as sp

from symcompile.model import Model


def float_e_powers_to_exp(expr):
    """`e**z` with a float `e` (as NumPy's `e`) becomes `exp(z)`.

    `float(e)**z == exp(z * log(float(e)))`, and `log(float(e))` rounds to 1.0
    in double precision, so this is exact to the last bit of the base.
    """
    return expr.replace(
        lambda node: node.is_Pow and node.base.is_Float and float(node.base) == math.e,
        lambda node: sp.exp(node.exp),
    )


REWRITES = (float_e_powers_to_exp,)


@dataclass(frozen=True)
class RewriteReport:
    applied: tuple[str, ...]


def rewrite(model: Model) -> tuple[Model, RewriteReport]:
    """Apply every rewrite to the model's outputs and loss."""
    outputs, loss, applied = model.outputs, model.loss, []
    for rule in REWRITES:
        new_outputs = tuple(rule(o) for o in outputs)
        new_loss = rule(loss)
        if new_outputs != outputs or new_loss != loss:
            applied.append(rule.__name__)
        outputs, loss = new_outputs, new_loss
    return replace(model, outputs=outputs, loss=loss), RewriteReport(tuple(applied))
