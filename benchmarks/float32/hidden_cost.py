"""Where float32's time goes on digits: one loss-and-gradient pass with a tanh hidden layer and with an identity one
(no per-unit function), in float64 and float32 (each unit's code runs in float64 in both; a float32 module's tanh
only to float32's accuracy, the runtime's `tanh_single`).

    python benchmarks/float32/hidden_cost.py

Interleaved, 15 rounds of 20 passes each; medians.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main():
    from sklearn.datasets import load_digits

    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    digits = load_digits()
    X, Y = digits.data / 16.0, np.eye(10)[digits.target]
    modules = {}
    with tempfile.TemporaryDirectory() as folder:
        for hidden in ("tanh", "identity"):
            for dtype in ("float64", "float32"):
                model = mlp_model(f"cost_{hidden}_{dtype}", [64, 32, 10], hidden_activation=hidden,
                                  output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=Y, dtype=dtype)  # fmt: skip
                modules[hidden, dtype] = load_module(build(model, folder).path)
        w = modules["tanh", "float64"].INIT
        times = {key: [] for key in modules}
        for _ in range(15):
            for key, module in modules.items():
                module.loss_and_grad(w)
                start = time.perf_counter()
                for _ in range(20):
                    module.loss_and_grad(w)
                times[key].append((time.perf_counter() - start) / 20)
    for (hidden, dtype), seconds in times.items():
        print(f"{hidden:8} {dtype}: {statistics.median(seconds) * 1e3:.3f} ms a pass")


if __name__ == "__main__":
    main()
