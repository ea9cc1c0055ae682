"""Standardized inputs written into a model's formulas: each input x read as (x - mean) / scale.

The means and scales are the training rows' (symcompile.data.standardization); here they become part of the
model, so that its module takes raw inputs. Above the model layer: an MLP gets its SymPy form first.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from symcompile.data import Standardization
from symcompile.graph import replace_bottom_up
from symcompile.mlp import symbolic_form


def standardized(model, scaling: Standardization):
    """`model` whose formulas read each input x as (x - mean) / scale, recording `scaling` for the module.
    An MLP gets its SymPy form for it, and so the scalar kernels (the dense ones do not scale inputs)."""
    if not model.symbolic:
        model = symbolic_form(model)
    inputs = {
        x: (x - sp.Float(mean)) / sp.Float(scale) for x, mean, scale in zip(model.inputs, scaling.mean, scaling.scale)
    }

    def scaled(exprs):
        return tuple(replace_bottom_up(expr, inputs.get) for expr in exprs)

    return replace(
        model, outputs=scaled(model.outputs), loss=replace_bottom_up(model.loss, inputs.get),
        residuals=scaled(model.residuals), standardization=scaling,
    )  # fmt: skip
