"""The blog's sequential loop per iteration: a seed module's `train(max_iter=ITERS, record_every=0)`, timed ROUNDS
times after a warm-up, median and min per iteration, and the weights' first bytes (to compare two builds).

    python benchmarks/sequential_loop.py generated/seed_mlp.py [ROUNDS] [ITERS]

Before and after, alternating, as BENCHMARKS.md measured it (the "before" checkout's own module and symcompile):

    for i in 1 2 3 4; do
      (cd /tmp/before && PYTHONPATH=/tmp/before python ~/symcompile/benchmarks/sequential_loop.py generated/seed_mlp.py 9 200000)
      python benchmarks/sequential_loop.py generated/seed_mlp.py 9 200000
    done
"""

import importlib.util
import statistics
import sys
import time


def main(path, rounds=9, iterations=200_000):
    spec = importlib.util.spec_from_file_location("seed_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(max_iter=1000, record_every=0)  # compiled, or loaded from Numba's cache
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = module.train(max_iter=iterations, record_every=0, tol=0.0)
        times.append(time.perf_counter() - start)
    per = [t / iterations * 1e9 for t in times]
    print(f"{statistics.median(per):.1f} ns  min {min(per):.1f}  w={result.w.tobytes().hex()[:16]}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:4]))
