"""Measures of a trained model that `train` reports beside the loss."""

from __future__ import annotations

import numpy as np


def accuracy(outputs, Y):
    """Fraction of samples classified right, or None when the model is not a classifier.

    A model counts as a classifier when its outputs are probabilities (all in
    [0, 1]) and its targets are labels: 0 or 1 for one output (right when the
    output is on the target's side of 0.5), one-hot rows for several (right
    when the largest output is the target's class).
    """
    outputs = np.asarray(outputs).reshape(len(Y), -1)
    Y = np.asarray(Y)
    if outputs.shape != Y.shape or not np.all((outputs >= 0) & (outputs <= 1)) or not np.all((Y == 0) | (Y == 1)):
        return None
    if Y.shape[1] == 1:
        return float(np.mean((outputs >= 0.5) == (Y == 1)))
    if not np.all(Y.sum(axis=1) == 1):
        return None
    return float(np.mean(outputs.argmax(axis=1) == Y.argmax(axis=1)))
