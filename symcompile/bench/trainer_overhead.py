"""What the trainer's Python layer and the loss history cost on the seed's 999 sequential iterations.

    python -m symcompile.bench.trainer_overhead [generated folder] [repeats] [another seed_mlp.py]

Rows, side by side in one run (CPU time per call, medians of interleaved repeats, so that other
processes on a shared machine count less): one direct call of the module's compiled full-batch loop;
the same loop through `_train_in_chunks` (the chunk driver: chunk sizing, Ctrl-C handling, history
slicing); `train()` (its argument checks too); and `train(record_every=0)`. Given another build of
the seed module (main's, say), its `train()` and `train(update="simultaneous")` run beside this one's.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _seed_module(folder):
    sys.path.insert(0, folder)
    import seed_mlp

    return seed_mlp


def _other_module(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_mlp_other", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["seed_mlp_other"] = module
    spec.loader.exec_module(module)
    return module


def cases(m):
    w, run = m.INIT.copy(), np.zeros(6)
    lr = m.DEFAULTS["lr"]
    arguments = (w, m.X, m.Y, lr, 0.0, 0.0, False, (0.9, 0.999), 1e-8, 0.0, *m._NO_SAMPLES, 0, np.zeros((0, len(w))), run, w.copy())
    kernel, n = m._TRAIN_KERNELS["sequential"], m.DEFAULTS["max_iter"]

    def restart():
        w[:] = m.INIT
        run[:] = (0, 0, 0, 0, np.inf, 0)

    def direct():
        restart()
        kernel(*arguments, n, n, np.empty(n + 1), *m._NO_VALIDATION)

    def chunked():
        restart()
        m._train_in_chunks(kernel, arguments, run, n, 1, m._FIRST_GUESS * m.X.shape[0] * len(w), False)

    return {
        "one direct call of the compiled loop": direct,
        "the chunk driver (_train_in_chunks)": chunked,
        "train()": lambda: m.train(),
        "train(record_every=0)": lambda: m.train(record_every=0),
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    m = _seed_module(argv[0] if argv else "generated")
    repeats = int(argv[1]) if len(argv) > 1 else 30
    rows = cases(m)
    if len(argv) > 2:
        other = _other_module(argv[2])
        rows |= {
            "train(update='simultaneous')": lambda: m.train(update="simultaneous"),
            "other module: train()": lambda: other.train(),
            "other module: train(update='simultaneous')": lambda: other.train(update="simultaneous"),
        }
    for run in rows.values():
        run()
    times = {name: [] for name in rows}
    for _ in range(repeats):
        for name, run in rows.items():
            started = time.process_time()
            for _ in range(50):
                run()
            times[name].append((time.process_time() - started) / 50)
    base = np.median(times["one direct call of the compiled loop"])
    for name, values in times.items():
        print(f"{name:40s} {np.median(values) * 1e6:8.1f} us per {m.DEFAULTS['max_iter']} iterations ({np.median(values) / base:.3f}x)")


if __name__ == "__main__":
    main()
