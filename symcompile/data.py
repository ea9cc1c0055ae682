"""Training data as users have it: class labels, target checks, a seeded validation split, standardized inputs.

- `one_hot(labels, n_classes)`: integer class labels (a CSV column, or a 1-D
  integer `Y`) as the one-hot rows softmax cross-entropy trains on.
- `check_targets(loss, Y)`: targets a cross-entropy cannot take (a BCE target of
  2, a softmax row that is not a distribution) are refused in one line, where
  they would otherwise train towards a negative loss. (Both checks live in
  symcompile/runtime/targets.py, which generated modules use too.)
- `split_rows(n, fraction, seed)`: the rows held out for validation, the same
  for the same seed (the command line's `validation_split`).
- `standardization(X)`: the means and scales of inputs scaled to mean 0 and
  standard deviation 1 *inside the model's formula* (symcompile/standardize.py
  writes them in). The output becomes a
  function of `(x - X_MEAN) / X_SCALE`, so every function of the generated
  module (forward, loss, train, predict) takes inputs in the data's own units
  and applies the same scaling: training and prediction cannot disagree.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from symcompile.runtime import targets
from symcompile.errors import SymcompileError

# Means and scales are rounded to this many significant digits, so the module's X_MEAN and X_SCALE print as the
# very numbers the formula's constants hold.
SCALING_DIGITS = 12


def one_hot(labels, n_classes: int, what="labels") -> np.ndarray:
    """(N, n_classes) one-hot rows from N integer labels 0 .. n_classes - 1; for one class column (a binary
    classifier), the 0/1 labels as a column."""
    with _as_user_error():
        return targets.one_hot(labels, n_classes, what)


def is_label_vector(Y, n_targets: int) -> bool:
    """Whether `Y` given to the API is class labels to one-hot: integers, one per sample, for several targets."""
    return targets.is_label_vector(Y, n_targets)


def check_targets(loss: str, Y: np.ndarray, what="Y") -> None:
    """Refuse targets a cross-entropy cannot take, naming the first: outside [0, 1], or a softmax row that does not
    sum to 1. (Outside them the loss rewards the wrong answer and can go negative.)"""
    with _as_user_error():
        targets.check_targets(loss, Y, what)


def target_loss(model) -> str:
    """The cross-entropy whose targets the model's data and module check: an MLP's loss when it is one; "" for
    other losses (an expression's loss says nothing of its targets' domain)."""
    loss = model.network.shape.loss if model.network is not None else ""
    return loss if loss in targets.PROBABILITY_LOSSES else ""


@contextmanager
def _as_user_error():
    """The standalone checks' ValueError (symcompile/targets.py) as the SymcompileError of bad user input."""
    try:
        yield
    except ValueError as exc:
        raise SymcompileError(str(exc)) from None


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
