"""python benchmarks/dense_runtime/bench.py [--before COMMIT-OR-FOLDER] [--reps N] [--processes N]: dense kernels
before and after a change to them (issue 20: the layer loops, then the vectorizable math, moved into the runtime).

Writes, into a scratch folder, digits' dense kernels as a module of their own (`symcompile.dense.dense_kernels_source` and its imports)
two ways: as COMMIT generated them (default 94acc99, the last one with per-model loops; its code is checked out
with `git archive`), or the checkout in FOLDER (another working copy: a change not committed yet), and as this
checkout does. Iris's (4-8-3, same activations) are written the same ways, to fill the runtime's cache as an
earlier model would. Then:

1. compile times, N repetitions: each case on a new NUMBA_CACHE_DIR, then a second process on it (`run1.py`);
2. speed: N processes, each timing every variant interleaved (`speed.py`), medians of each round's best call,
   then over the processes, with each process's ratio to the kernels before;
3. equality: loss, gradient and outputs of each variant against those before, at the same weights.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

WRITE_KERNELS = """
import sys
from symcompile import dense
from symcompile.spec import load_spec
shape = load_spec(sys.argv[1]).network.shape
open(sys.argv[2], "w").write("import math\n\nimport numba\nimport numpy as np\n\n\n" + dense.dense_kernels_source(shape))
"""

WRITE_DATA = """
import sys
import numpy as np
from symcompile.spec import load_spec
model = load_spec(sys.argv[1])
np.savez(sys.argv[2], X=np.ascontiguousarray(model.X), Y=np.ascontiguousarray(model.Y), n_params=model.n_params)
"""


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def run_python(code, path, *arguments):
    """`code` run with symcompile imported from the checkout at `path` (the current folder comes first on sys.path)."""
    subprocess.run(
        [sys.executable, "-c", code, *arguments], env=dict(os.environ, PYTHONPATH=path), cwd=path, check=True
    )


def scratch(before):
    """The variants' kernels modules, each in its own folder with the PYTHONPATH it runs with."""
    root = tempfile.mkdtemp(prefix="dense_runtime")
    if os.path.isdir(before):  # another working copy
        checkout = os.path.abspath(before)
    else:
        checkout = f"{root}/before/checkout"
        os.makedirs(checkout)
        archive = subprocess.run(["git", "archive", before], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", checkout], input=archive, check=True)
    variants = {"before": checkout, "after": REPO}
    for variant, path in variants.items():
        os.makedirs(f"{root}/{variant}", exist_ok=True)
        for spec in ("digits", "iris"):
            run_python(WRITE_KERNELS, path, f"{REPO}/examples/{spec}.toml", f"{root}/{variant}/{spec}.py")
    run_python(WRITE_DATA, REPO, f"{REPO}/examples/digits.toml", f"{root}/digits.npz")
    shutil.copy(f"{HERE}/run1.py", root)
    return root, variants


def process(root, variants, variant, cache, spec="digits"):
    environment = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=variants[variant])
    done = subprocess.run([sys.executable, f"{root}/run1.py", f"{root}/{variant}/{spec}.py", f"{root}/digits.npz"],
                          env=environment, capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


COMPILE_CASES = {  # name: (variant, fill the runtime's cache first with iris's kernels)
    "before, runtime not cached": ("before", False),
    "before, runtime cached (iris ran first)": ("before", True),
    "after, runtime not cached": ("after", False),
    "after, runtime cached (iris ran first)": ("after", True),
}


def compile_table(root, variants, reps):
    rows = {}
    for _ in range(reps):
        for name, (variant, warm) in COMPILE_CASES.items():
            cache = tempfile.mkdtemp(prefix="nbcache")
            if warm:
                process(root, variants, variant, cache, spec="iris")
            first = process(root, variants, variant, cache)
            rows.setdefault(name, []).append((first, process(root, variants, variant, cache)))
            shutil.rmtree(cache)
    print("| case | module import (per-block functions; the runtime's loops) | 1st loss+grad call | 1st forward call | "
          "1st process, from the module's import | 2nd process, same |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in rows.items():

        def median(key, which=0):
            return statistics.median(run[which][key] for run in runs)

        def total(which):
            return statistics.median(sum(run[which][k] for k in ("module", "loss_and_grad", "forward")) for run in runs)

        print(f"| {name} | {median('module'):.2f} s | {median('loss_and_grad'):.2f} s | {median('forward'):.2f} s | "
              f"**{total(0):.2f} s** | {total(1):.3f} s |")  # fmt: skip
    print("\nCompile events of the first repetition's first process (outermost functions, s including their callees):")
    for name, runs in rows.items():
        print(f"- {name}: " + ", ".join(f"{e[0]} {e[1]:.2f}" for e in runs[0][0]["events"] if e[2] == 0))
    return rows


def equality(rows):
    import numpy as np

    first = [runs[0][0] for runs in rows.values()]
    print("\nAgainst the kernels before (same weights, all 1,797 digits):")
    for name, got in zip(list(rows)[1:], first[1:]):
        grad = np.abs(np.array(got["grad"]) - np.array(first[0]["grad"])).max()
        out = np.abs(np.array(got["out"]) - np.array(first[0]["out"])).max()
        print(f"- {name}: |loss difference| {abs(got['loss'] - first[0]['loss']):.3g}, max |gradient difference| "
              f"{grad:.3g}, max |output difference| {out:.3g}")  # fmt: skip


def speed_table(root, variants, processes):
    """Every variant in each process, interleaved: one process, so each sees the same luck (load, placement)."""
    paths = [f"{root}/{variant}/digits.py" for variant in variants]
    cache = tempfile.mkdtemp(prefix="nbcache")
    # Every variant imports symcompile.runtime (if at all) from this checkout: its dense loops are those before.
    environment = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=REPO)
    runs = []
    for index in range(processes + 1):  # the first process compiles
        done = subprocess.run([sys.executable, f"{HERE}/speed.py", f"{root}/digits.npz", "20", *paths], env=environment,
                              capture_output=True, text=True, check=True)  # fmt: skip
        if index:
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    shutil.rmtree(cache)
    names = {"full": "full batch loss+grad (1,797 samples)", "batch": "mini-batch loss+grad (32 samples)",
             "forward": "full-batch forward"}  # fmt: skip
    print(f"\n| variant | {' | '.join(names.values())} |")
    print("| --- | --- | --- | --- |")
    for variant, path in zip(variants, paths):
        cells = []
        for key in names:
            times = [run[path][key] for run in runs]
            ratios = [run[path][key] / run[paths[0]][key] for run in runs]
            cells.append(f"{statistics.median(times) * 1e6:.1f} us ({statistics.median(ratios):.3f}x; "
                         f"processes {min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip
        print(f"| {variant} | " + " | ".join(cells) + " |")


def main():
    root, variants = scratch(option("--before", "94acc99"))
    print(f"load average at the start: {os.getloadavg()}")
    rows = compile_table(root, variants, int(option("--reps", 3)))
    equality(rows)
    print(f"load average: {os.getloadavg()}")
    speed_table(root, variants, int(option("--processes", 5)))
    print(f"load average at the end: {os.getloadavg()}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
