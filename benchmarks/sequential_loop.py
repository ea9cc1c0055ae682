"""The blog's sequential loop per iteration: a seed module's `train(max_iter=ITERS, record_every=0)`, timed ROUNDS
times after a warm-up, median and min per iteration, and the weights' first bytes (to compare two builds).

    python benchmarks/sequential_loop.py generated/seed_mlp.py [ROUNDS] [ITERS] [--json PATH]

--json PATH also writes the seconds per iteration of every round, their median, and the load average, as JSON.

Before and after, alternating, as BENCHMARKS.md measured it (the "before" checkout's own module and symcompile):

    for i in 1 2 3 4; do
      (cd /tmp/before && PYTHONPATH=/tmp/before python ~/symcompile/benchmarks/sequential_loop.py generated/seed_mlp.py 9 200000)
      python benchmarks/sequential_loop.py generated/seed_mlp.py 9 200000
    done
"""

import argparse
import importlib.util
import json
import os
import statistics
import time


def main(path, rounds=9, iterations=200_000, json_path=None):
    load_start = os.getloadavg()[0]
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
    if json_path:
        figures = {"seconds_per_iteration": [p * 1e-9 for p in per], "median": statistics.median(per) * 1e-9,
                   "iterations": iterations, "load_average": {"start": load_start, "end": os.getloadavg()[0]}}  # fmt: skip
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="a seed module, e.g. generated/seed_mlp.py")
    parser.add_argument("rounds", nargs="?", type=int, default=9)
    parser.add_argument("iterations", nargs="?", type=int, default=200_000)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    main(args.module, args.rounds, args.iterations, args.json)
