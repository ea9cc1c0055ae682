"""What a call's chunks cost on one thread: 64-32-10 tanh/softmax on 10,000 synthetic samples (the module's 9
chunks) against the same module forced to one chunk, loss and gradient per call on one thread, rounds interleaved.

    python benchmarks/epochs/chunks_one_thread.py [--rounds 40]

On one thread the chunks run one after the other in the compiled loop (symcompile.runtime.dense); before, they
went through Python's threaded path (run this on an older checkout to compare). Prints the medians and the ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def build(folder, name, X, Y, chunks=None):
    """A 64-32-10 module; with `chunks`, its kernels always run that many chunks."""
    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build as build_module
    from symcompile.writer import load_module

    model = mlp_model(name, [64, 32, 10], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy", seed=0, X=X, Y=Y)  # fmt: skip
    path = Path(build_module(model, folder).path)
    if chunks is not None:
        source, count = re.subn(r"_dense_chunks\(X\.shape\[0\], n_blocks\)\)", f"{chunks})", path.read_text())
        assert count == 2, "the kernels' chunk argument was not found"
        path.write_text(source)
    return load_module(str(path))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10_000, 64))
    Y = np.eye(10)[rng.integers(10, size=10_000)]
    with tempfile.TemporaryDirectory(prefix="symcompile-chunks-") as folder:
        modules = {
            "its chunks": build(folder, "chunks_default", X, Y),
            "one chunk": build(folder, "chunks_one", X, Y, 1),
        }
        n_blocks = (X.shape[0] + 63) // 64
        print(f"the module's chunks for 10,000 samples: {modules['its chunks']._dense_chunks(X.shape[0], n_blocks)}")
        w = np.asarray(modules["one chunk"].INIT, dtype=float)
        grad = np.zeros_like(w)
        times = {label: [] for label in modules}
        for module in modules.values():
            module._dense_call(module._loss_and_grad_kernel, 1, w, X, Y, grad)
        for _ in range(args.rounds):
            for label, module in modules.items():
                start = time.perf_counter()
                module._dense_call(module._loss_and_grad_kernel, 1, w, X, Y, grad)
                times[label].append(time.perf_counter() - start)
        medians = {label: statistics.median(values) for label, values in times.items()}
        for label, median in medians.items():
            print(f"{label}, one thread: {median * 1e3:.3f} ms")
        print(f"its chunks / one chunk: {medians['its chunks'] / medians['one chunk']:.3f}")


if __name__ == "__main__":
    main()
