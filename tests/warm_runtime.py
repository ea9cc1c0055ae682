"""Compile symcompile's runtime into the Numba cache named by NUMBA_CACHE_DIR, one part per process:

    python tests/warm_runtime.py float64  # the dense loops in float64, full batch and mini-batches
    python tests/warm_runtime.py float32  # the same in float32
    python tests/warm_runtime.py scalar   # the training loops and rules of scalar kernels, Levenberg-Marquardt

tests/conftest.py runs the three side by side before pytest-xdist starts its workers when the session's cache is new,
so each part compiles once (in parallel) instead of once in every worker and in every subprocess a test starts
before any process has written it (the dense loops alone take 15 s a process and a dtype)."""

import sys
import tempfile
from pathlib import Path

import numpy as np

from symcompile.mlp import mlp_model
from symcompile.cli import main
from symcompile.pipeline import build
from symcompile.seed import seed_model
from symcompile.writer import load_module

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def dense(folder, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 8))
    Y = np.eye(3)[rng.integers(0, 3, 96)]
    model = mlp_model(f"warm_{dtype}", [8, 24, 3], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy", X=X, Y=Y, dtype=dtype)  # fmt: skip
    module = load_module(build(model, folder, kernels="dense").path)
    module.train(module.INIT, X, Y, optimizer="adam", batch_size=32, max_iter=2)
    module.train(module.INIT, X, Y, max_iter=2, X_val=X[:10], Y_val=Y[:10])


def scalar(folder):
    module = load_module(build(seed_model(), folder).path)
    for optimizer in ("gd", "sequential", "adam"):
        module.train(module.INIT, optimizer=optimizer, max_iter=2)
    assert main(["build", str(EXAMPLES / "misra1a.toml"), "--out-dir", folder]) == 0
    misra = load_module(f"{folder}/misra1a.py")
    misra.least_squares(misra.INIT)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        scalar(scratch) if sys.argv[1] == "scalar" else dense(scratch, sys.argv[1])
