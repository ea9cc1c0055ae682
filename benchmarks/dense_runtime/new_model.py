"""python benchmarks/dense_runtime/new_model.py BEFORE AFTER [--rounds N]: `train examples/digits.toml` for a new
model and for a second run, two checkouts interleaved, each a whole fresh process timed from outside.

For each checkout (a folder with symcompile/ and examples/): one run fills a Numba cache of its own (the runtime
and the model compile) into a first output folder. Then each round, checkouts in turns (the order alternating):
  new model   the same command into a new output folder on that cache: the runtime is cached, the module (a new
              file, so new to Numba's cache) compiles: issue 20's "h" case;
  second run  the command again into the first folder: everything loads from the cache ("b").
Prints each run, then per case and checkout the median, min and max, and after/before of the medians, and the load
average at the start and the end (the figures mean something only on a quiet machine).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(checkout, cache, out_dir):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(checkout))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symcompile", "train", "examples/digits.toml", "--out-dir", str(out_dir)],
                   cwd=checkout, env=environment, check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def main():
    before, after = (Path(p).resolve() for p in sys.argv[1:3])
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
    print(f"load average at the start: {os.getloadavg()}")
    scratch = Path(tempfile.mkdtemp(prefix="new_model"))
    sides = {"before": before, "after": after}
    for name, checkout in sides.items():
        train(checkout, scratch / f"cache-{name}", scratch / f"first-{name}")
    times = {}
    for r in range(rounds):
        for name in sides if r % 2 == 0 else reversed(list(sides)):
            checkout, cache = sides[name], scratch / f"cache-{name}"
            cases = (("new model", scratch / f"new-{name}-{r}"), ("second run", scratch / f"first-{name}"))
            for case, out_dir in cases:
                seconds = train(checkout, cache, out_dir)
                times.setdefault((case, name), []).append(seconds)
                print(f"round {r + 1}/{rounds}  {case:10s}  {name:6s}  {seconds:.3f} s", flush=True)
    print(f"load average at the end: {os.getloadavg()}")
    for case in ("new model", "second run"):
        medians = {}
        for name in sides:
            values = times[(case, name)]
            medians[name] = statistics.median(values)
            spread = f"(min {min(values):.3f}, max {max(values):.3f})"
            print(f"{case:10s}  {name:6s}  median {medians[name]:.3f} s  {spread}")
        print(f"{case:10s}  after / before {medians['after'] / medians['before']:.3f}")
    subprocess.run(["rm", "-rf", str(scratch)], check=True)


if __name__ == "__main__":
    main()
