"""python speed.py DATA.npz ROUNDS MODULE.py...: the modules' kernels timed in one process, interleaved.

Each round times, for every module in turn, the full-batch loss and gradient (best of 10 calls), a 32-sample
mini-batch call (best of 200) and the full-batch forward (best of 10). Prints one JSON line: per module and
measure, the median over the rounds of those bests (seconds). One process for all the modules, so that the
process's own luck (where its buffers and code landed, what else ran) is the same for each.
"""

import importlib.util
import json
import statistics
import sys
import time


def load(path, index):
    # One name per module in every process: Numba's cache finds a kernel's module by it (numba issue #7075).
    spec = importlib.util.spec_from_file_location(f"dense_kernels_{index}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def best(kernel, arguments, calls):
    fastest = float("inf")
    for _ in range(calls):
        t = time.perf_counter()
        kernel(*arguments)
        fastest = min(fastest, time.perf_counter() - t)
    return fastest


def main():
    import numpy as np

    data, rounds, paths = np.load(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    X, Y = data["X"], data["Y"]
    modules = [load(path, i) for i, path in enumerate(paths)]
    w = np.random.default_rng(0).normal(scale=0.3, size=int(data["n_params"]))
    grad, out = np.empty(w.size), np.empty(Y.shape)
    batch = (w, X[:32].copy(), Y[:32].copy(), grad)
    times = {path: {"full": [], "batch": [], "forward": []} for path in paths}
    for module in modules:  # compiled or loaded before timing
        module._loss_and_grad_kernel(w, X, Y, grad)
        module._forward_kernel(w, X, out)
    for _ in range(rounds):
        for path, module in zip(paths, modules):
            times[path]["full"].append(best(module._loss_and_grad_kernel, (w, X, Y, grad), 10))
            times[path]["batch"].append(best(module._loss_and_grad_kernel, batch, 200))
            times[path]["forward"].append(best(module._forward_kernel, (w, X, out), 10))
    print(
        json.dumps({path: {k: statistics.median(v) for k, v in measures.items()} for path, measures in times.items()})
    )


if __name__ == "__main__":
    main()
