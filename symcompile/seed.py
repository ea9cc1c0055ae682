"""The built-in model: the blog's 2-2-1 sigmoid network, written as the blog writes it.

Faithful to the seed, quirks included: one shared bias `w0` added once per
incoming edge, and NumPy's float `e` raised to a power rather than `exp`
(the rewrite stage recognizes those powers as `exp`).
"""

import sympy as sp
from numpy import e

from symcompile.model import make_model
from symcompile.options import TrainingSettings

# The blog's parameter order, which is also its sequential update order.
PARAM_NAMES = ("w0", "w13", "w14", "w23", "w24", "w35", "w45")
INIT = (0.1, 0.2, 0.8, 0.6, 0.4, 0.1, 0.5)
SAMPLE = (0.35, 0.9)
TARGET = 1
TRAINING = TrainingSettings(lr=0.3, max_iter=999, tol=0.0, update="sequential")


def network_output(x1, x2, w0, w13, w14, w23, w24, w35, w45):
    """The training function f5, line for line as in the blog; x1, x2 may be numbers or symbols."""
    z3 = (x1 * w13 + w0) + (x2 * w23 + w0)
    f3 = 1 / (1 + e ** (-z3))
    z4 = (x1 * w14 + w0) + (x2 * w24 + w0)
    f4 = 1 / (1 + e ** (-z4))
    z5 = (f3 * w35 + w0) + (f4 * w45 + w0)
    return 1 / (1 + e ** (-z5))


def binary_cross_entropy(f5, y_true):
    return -y_true * sp.log(f5) - (1 - y_true) * sp.log(1 - f5)


def seed_model():
    params = sp.symbols(PARAM_NAMES)
    x1, x2, y = sp.symbols("x1 x2 y")
    f5 = network_output(x1, x2, *params)
    return make_model(
        "seed_mlp",
        f5,
        binary_cross_entropy(f5, y),
        params,
        (x1, x2),
        (y,),
        init=INIT,
        X=[SAMPLE],
        Y=[TARGET],
        training=TRAINING,
        description="The blog's 2-2-1 sigmoid network with one shared bias w0 and binary cross-entropy loss.",
        classifier="binary",
    )
