"""Training data as users have it: class labels, target checks, a seeded validation split, standardized inputs.

- `one_hot(labels, n_classes)`: integer class labels (a CSV column, or a 1-D
  integer `Y`) as the one-hot rows softmax cross-entropy trains on.
- `check_targets(loss, Y)`: targets a cross-entropy cannot take (a BCE target of
  2, a softmax row that is not a distribution) are refused in one line, where
  they would otherwise train towards a negative loss.
- `split_rows(n, fraction, seed)`: the rows held out for validation, the same
  for the same seed (the command line's `validation_split`).
- `standardization(X)` and `standardized(model, ...)`: inputs scaled to mean 0
  and standard deviation 1 *inside the model's formula*. The output becomes a
  function of `(x - X_MEAN) / X_SCALE`, so every function of the generated
  module (forward, loss, train, predict) takes inputs in the data's own units
  and applies the same scaling: training and prediction cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.graph import replace_bottom_up

# Softmax cross-entropy targets are distributions: rows that sum to 1 up to this (one-hot rows sum to 1 exactly).
ROW_SUM_TOLERANCE = 1e-9
# Means and scales are rounded to this many significant digits, so the module's X_MEAN and X_SCALE print as the
# very numbers the formula's constants hold.
SCALING_DIGITS = 12


def one_hot(labels, n_classes: int, what="labels") -> np.ndarray:
    """(N, n_classes) one-hot rows from N integer labels 0 .. n_classes - 1; for one class column (a binary
    classifier), the 0/1 labels as a column."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    classes = max(n_classes, 2)  # one target column: labels 0 and 1
    for row, label in enumerate(labels):
        if not (np.isfinite(label) and label == int(label) and 0 <= label < classes):
            raise SymcompileError(
                f"{what}: {label:g} in sample {row} is not a class label: expected an integer from 0 to "
                f"{classes - 1} ({classes} classes, one per {'output' if n_classes > 1 else 'value of the target'})"
            )
    if n_classes == 1:
        return labels[:, None]
    return np.eye(n_classes)[labels.astype(np.int64)]


def is_label_vector(Y, n_targets: int) -> bool:
    """Whether `Y` given to the API is class labels to one-hot: integers, one per sample, for several targets."""
    return n_targets > 1 and isinstance(Y, (list, tuple, np.ndarray)) and np.asarray(Y).ndim == 1 and (
        np.asarray(Y).dtype.kind in "iu"
    )


PROBABILITY_LOSSES = ("binary_cross_entropy", "softmax_cross_entropy")


def check_targets(loss: str, Y: np.ndarray) -> None:
    """Refuse targets a cross-entropy cannot take, naming the first: outside [0, 1], or a softmax row that does not
    sum to 1. (Outside them the loss rewards the wrong answer and can go negative.)"""
    if loss not in PROBABILITY_LOSSES or Y.size == 0:
        return
    outside = np.flatnonzero((Y < 0) | (Y > 1))
    if len(outside):
        row, column = np.unravel_index(outside[0], Y.shape)
        raise SymcompileError(f"{loss} needs targets in [0, 1]; Y has {Y[row, column]:g} in sample {row}, target {column}")
    if loss == "softmax_cross_entropy":
        sums = Y.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
        if len(off):
            raise SymcompileError(
                f"softmax_cross_entropy needs each target row to sum to 1 (one-hot, or class probabilities); "
                f"sample {off[0]} sums to {sums[off[0]]:g}"
            )


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): `fraction` of the n rows, rounded, drawn by a generator seeded with
    `seed`; each part keeps the data's order. fraction 0 holds nothing out."""
    n_val = int(round(n * fraction))
    if fraction == 0:
        return np.arange(n), np.arange(0)
    if not 1 <= n_val < n:
        raise SymcompileError(
            f"validation_split {fraction:g} of {n} samples leaves {n_val} for validation and {n - n_val} for "
            "training; each needs at least one"
        )
    held_out = np.sort(np.random.default_rng(seed).permutation(n)[:n_val])
    return np.setdiff1d(np.arange(n), held_out), held_out


@dataclass(frozen=True, eq=False)
class Standardization:
    """Per-input mean and scale: the model sees (x - mean) / scale. A constant input gets scale 1."""

    mean: np.ndarray
    scale: np.ndarray


def standardization(X: np.ndarray) -> Standardization:
    """The means and standard deviations of X's columns, rounded to SCALING_DIGITS significant digits."""
    if X.shape[0] == 0:
        raise SymcompileError("standardize needs training data to compute the means and scales from")
    rounded = np.vectorize(lambda v: float(f"{v:.{SCALING_DIGITS}g}"), otypes=[np.float64])
    std = X.std(axis=0)
    return Standardization(rounded(X.mean(axis=0)), rounded(np.where(std > 0, std, 1.0)))


def standardized(model, scaling: Standardization):
    """`model` whose formulas read each input x as (x - mean) / scale, recording `scaling` for the module.
    An MLP gets its SymPy form for it, and so the scalar kernels (the dense ones do not scale inputs)."""
    if not model.symbolic:
        from symcompile.mlp import symbolic_form  # here: symcompile.mlp imports this module

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
