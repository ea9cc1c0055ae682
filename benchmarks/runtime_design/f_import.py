"""F: python f_import.py -> import of numba, of a runtime module with 11 cached njit functions, and loading them all."""

import os, subprocess, sys, tempfile, statistics

here = os.path.dirname(os.path.abspath(__file__))
CODE = r"""
import time; t0 = time.perf_counter()
import numba, numpy as np; t1 = time.perf_counter()
from rtproto import core; t2 = time.perf_counter()
w = np.ones(7); r = np.zeros(6); X = np.ones((4, 2)); o = np.arange(4); rng = np.ones(1, np.uint64)
core.diverged(1.0, r); t3 = time.perf_counter()  # the first cache load: Numba's CPU target starts
st = core.adam_init(7); core.adam_step(w, w, st, 0, 0.1, 0.0, (0.9, 0.999), 1e-8, w.copy(), w.copy())
core.sgd_step(w, w, st, 0, 0.1, 0.0, (0.9, 0.999), 1e-8, w.copy(), w.copy()); core.copy_into(w, w)
core.weights_finite(w); core.ended_above(1.0, r); core.all_below(w, 1.0); core.shuffle(o, rng)
b = core.batch_buffers(X, X, 3); core.gather(X, X, o, 0, b[0], b[1]); t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""
cache = tempfile.mkdtemp()
env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=here)
run = lambda: [
    float(x)
    for x in subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
]
cold = run()
warm = [run() for _ in range(3)]
m = [statistics.median(x[i] for x in warm) * 1000 for i in range(4)]
print(f"cold cache, compile all 11: {sum(cold[2:]):.2f} s")
print(
    "| warm cache (ms, median of 3) | import numba+numpy | import runtime module | first cache load (target start) | 10 more cache loads |"
)
print(f"| | {m[0]:.0f} | {m[1]:.1f} | {m[2]:.0f} | {m[3]:.0f} |")
