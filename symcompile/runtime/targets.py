"""Targets checked the same way everywhere: class labels made one-hot, and targets a cross-entropy cannot take refused.

A generated module's `train`, `loss`, `accuracy`, ... accept and refuse the targets that a spec and `mlp_model`
do, with the same messages: one copy, here in the runtime (NumPy only, ValueError). `symcompile.data` is their
face in symcompile (one_hot, check_targets: SymcompileError).
"""

import numpy as np

PROBABILITY_LOSSES = ("binary_cross_entropy", "softmax_cross_entropy")
# Softmax cross-entropy targets are distributions: rows that sum to 1 up to this (one-hot rows sum to 1 exactly).
ROW_SUM_TOLERANCE = 1e-9


def one_hot(labels, n_classes, what="labels"):
    """(N, n_classes) one-hot rows from N integer labels 0 .. n_classes - 1; for one class column (a binary
    classifier), the 0/1 labels as a column."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    classes = max(n_classes, 2)  # one target column: labels 0 and 1
    bad = np.flatnonzero(~(np.isfinite(labels) & (labels == np.round(labels)) & (labels >= 0) & (labels < classes)))
    if len(bad):
        raise ValueError(
            f"{what}: {labels[bad[0]]:g} in sample {bad[0]} is not a class label: expected an integer from 0 to "
            f"{classes - 1} ({classes} classes, one per {'output' if n_classes > 1 else 'value of the target'})"
        )
    if n_classes == 1:
        return labels[:, None]
    return np.eye(n_classes)[labels.astype(np.int64)]


def is_label_vector(Y, n_targets):
    """Whether `Y` is class labels to one-hot: integers, one per sample, for several targets (an integer Y of
    shape (N,)). Floats are never guessed to be labels."""
    if n_targets < 2 or not isinstance(Y, (list, tuple, np.ndarray)):
        return False
    try:
        Y = np.asarray(Y)
    except ValueError:  # ragged lists: not labels (the shape check says what is wrong)
        return False
    return Y.ndim == 1 and Y.dtype.kind in "iu"


def check_targets(loss, Y, what="Y"):
    """Refuse targets a cross-entropy cannot take, naming the first: outside [0, 1], or a softmax row that does
    not sum to 1. Outside them the loss rewards the wrong answer and can go negative."""
    if loss not in PROBABILITY_LOSSES or Y.size == 0:
        return
    outside = np.flatnonzero((Y < 0) | (Y > 1))
    if len(outside):
        row, column = np.unravel_index(outside[0], Y.shape)
        raise ValueError(
            f"{loss} needs targets in [0, 1]; {what} has {Y[row, column]:g} in sample {row}, target {column}"
        )
    if loss == "softmax_cross_entropy":
        sums = Y.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
        if len(off):
            raise ValueError(
                f"softmax_cross_entropy needs each target row to sum to 1 (one-hot, or class probabilities); "
                f"sample {off[0]} sums to {sums[off[0]]:g} in {what}"
            )
