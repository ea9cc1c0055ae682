"""The bit-for-bit check of issue 22's mini-batch changes: train the digits model (64-32-10 tanh/softmax) with
Adam in mini-batches of several sizes, and full-batch, and save or compare the final weights exactly.

    python benchmarks/minibatch_steps/same_weights.py save BEFORE.npz      # with the code before the change
    python benchmarks/minibatch_steps/same_weights.py compare BEFORE.npz   # after: every weight equal, bit for bit

Batch sizes: 32 (a block of 64 holds one batch), 20 and 33 (a batch shorter and longer than half a block), 64 and
100 (a whole block, a block and a part); each also ends an epoch on a shorter batch. With shuffling, and with
validation data (its loss runs the kernel on 359 samples: whole blocks and a short one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
import tempfile

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the checkout: benchmarks.bench, and the tests' references

from benchmarks.bench.scenario_minibatch import digits_data, minibatch_model
from symcompile.pipeline import build
from symcompile.writer import load_module

EPOCHS = 5


def runs(module):
    """{name: final weights} of each training run."""
    X, Y = module.X, module.Y
    X_train, Y_train, X_val, Y_val = X[:1438], Y[:1438], X[1438:], Y[1438:]
    results = {}
    for batch in (32, 20, 33, 64, 100):
        result = module.train(module.INIT, X, Y, lr=0.01, max_iter=EPOCHS, optimizer="adam", batch_size=batch, seed=0)
        results[f"adam_batch{batch}"] = result.w
    result = module.train(module.INIT, X_train, Y_train, lr=0.01, max_iter=EPOCHS, optimizer="adam", batch_size=32,
                          seed=1, X_val=X_val, Y_val=Y_val)  # fmt: skip
    results["adam_batch32_validation"] = np.concatenate(
        [result.w, result.loss_history, result.val_loss_history, result.accuracy_history]
    )
    result = module.train(module.INIT, X, Y, lr=0.01, max_iter=EPOCHS, optimizer="momentum", momentum=0.9,
                          batch_size=32, shuffle=False)  # fmt: skip
    results["momentum_batch32_no_shuffle"] = np.concatenate([result.w, result.loss_history])
    result = module.train(module.INIT, X, Y, lr=0.1, max_iter=20, optimizer="adam")
    results["adam_full_batch"] = np.concatenate([result.w, result.loss_history])
    loss, grad = module.loss_and_grad(module.INIT, X[:32], Y[:32])
    results["loss_and_grad_32"] = np.concatenate([[loss], grad])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "compare"))
    parser.add_argument("path")
    args = parser.parse_args()
    X, labels, _ = digits_data()
    module = load_module(build(minibatch_model(X, labels), tempfile.mkdtemp(prefix="same_weights")).path)
    results = runs(module)
    if args.action == "save":
        np.savez(args.path, **results)
        print(f"saved {len(results)} runs to {args.path}")
        return 0
    before = np.load(args.path)
    differing = 0
    for name, got in results.items():
        want = before[name]
        same = got.shape == want.shape and np.array_equal(got.view(np.uint64), want.view(np.uint64))
        largest = np.max(np.abs(got - want)) if got.shape == want.shape else np.nan
        print(f"{name}: {'identical, bit for bit' if same else f'DIFFERS (largest difference {largest:.3g})'}")
        differing += not same
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
