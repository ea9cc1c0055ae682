"""python run1.py KERNELS.py DATA.npz: one fresh process's compile times for a dense kernels module.

Imports the module (after the change, that compiles or loads its per-block functions and the runtime's loops),
then calls `_loss_and_grad_kernel` and `_forward_kernel` on the data. Prints one JSON line: seconds to import
Numba and the module, to the first loss-and-gradient and forward results, every Numba compile event (function,
inclusive seconds, nesting depth; a cache load fires none), and the results, for bench.py's comparisons.
"""

import importlib.util
import json
import sys
import time

clock = time.perf_counter
start = clock()
import numpy as np  # noqa: E402
from numba.core import event  # noqa: E402

numba_seconds = clock() - start


class CompileTimes(event.Listener):
    def __init__(self):
        self.events, self.open = [], []

    def on_start(self, ev):
        self.events.append([ev.data["dispatcher"].py_func.__qualname__, -clock(), len(self.open)])
        self.open.append(len(self.events) - 1)

    def on_end(self, ev):
        self.events[self.open.pop()][1] += clock()


def main():
    path, data = sys.argv[1], np.load(sys.argv[2])
    X, Y, n = data["X"], data["Y"], int(data["n_params"])
    listener = CompileTimes()
    event.register("numba:compile", listener)
    t = clock()
    # One name for the module in every process: Numba's cache finds a kernel's module by it (numba issue #7075).
    spec = importlib.util.spec_from_file_location("dense_kernels_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module_seconds = clock() - t
    w = np.random.default_rng(0).normal(scale=0.3, size=n)
    grad, out = np.empty(n), np.empty(Y.shape)
    t = clock()
    loss = module._loss_and_grad_kernel(w, X, Y, grad)
    first_loss_and_grad = clock() - t
    t = clock()
    module._forward_kernel(w, X, out)
    first_forward = clock() - t
    print(json.dumps(dict(numba=numba_seconds, module=module_seconds, loss_and_grad=first_loss_and_grad,
                          forward=first_forward, events=listener.events, loss=loss, grad=grad.tolist(),
                          out=out.ravel().tolist())))  # fmt: skip


if __name__ == "__main__":
    main()
