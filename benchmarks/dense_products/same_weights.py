"""The bit-for-bit check of the register-blocked products on whole trainings: digits (64-32-10, the runs of
benchmarks/minibatch_steps/same_weights.py: Adam in batches of 32, 20, 33, 64, 100, with validation, momentum
without shuffling, full batch) plus full-batch gradient descent on digits and on 2-16-16-1 x 4,096 (the dataset
bench's workloads, threads 1 and 2), and each model's forward pass; saved with the code before, compared after.

    python benchmarks/dense_products/same_weights.py save BEFORE.npz      # with the code before the change
    python benchmarks/dense_products/same_weights.py compare BEFORE.npz   # after: every number equal, bit for bit
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "minibatch_steps"))
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the checkout: benchmarks.bench, and the tests' references
import same_weights as minibatch_runs  # noqa: E402

from benchmarks.bench.scenario_dataset import DatasetSettings, synthetic_data, workload_model  # noqa: E402
from benchmarks.bench.scenario_minibatch import digits_data, minibatch_model  # noqa: E402
from symcompile.mlp import MLPShape  # noqa: E402
from symcompile.pipeline import build  # noqa: E402
from symcompile.writer import load_module  # noqa: E402


def full_batch_runs(name, module, lr):
    results = {}
    for threads in (1, 2):
        result = module.train(module.INIT, module.X, module.Y, lr=lr, max_iter=20, tol=0.0, update="simultaneous",
                              threads=threads)  # fmt: skip
        results[f"{name}_gd_threads{threads}"] = np.concatenate([result.w, result.loss_history])
    results[f"{name}_forward"] = np.asarray(module.forward(module.INIT, module.X)).ravel()
    return results


def runs():
    folder = tempfile.mkdtemp(prefix="dense_products_weights")
    X, labels, _ = digits_data()
    digits = load_module(build(minibatch_model(X, labels), folder).path)
    results = {f"digits_{name}": w for name, w in minibatch_runs.runs(digits).items()}
    results.update(full_batch_runs("digits", digits, 0.1))
    X, Y = synthetic_data(2, 1, 4096, 0)
    small = load_module(build(workload_model("small", DatasetSettings(), (MLPShape((2, 16, 16, 1)), X, Y, 0.5, 20)),
                              folder).path)  # fmt: skip
    results.update(full_batch_runs("small", small, 0.5))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "compare"))
    parser.add_argument("path")
    args = parser.parse_args()
    results = runs()
    if args.action == "save":
        np.savez(args.path, **results)
        print(f"saved {len(results)} runs to {args.path}")
        return 0
    before = np.load(args.path)
    differing = 0
    for name, got in results.items():
        want = before[name]
        same = got.shape == want.shape and np.array_equal(got.view(np.uint64), want.view(np.uint64))
        if same:
            print(f"{name}: identical, bit for bit")
        else:
            scale = np.max(np.abs(want)) if want.size else 0.0
            largest = np.max(np.abs(got - want)) if got.shape == want.shape else np.nan
            print(f"{name}: DIFFERS (largest difference {largest:.3g}, {largest / scale:.3g} of the largest value)")
        differing += not same
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
