"""The SHA-256 of every generated module over a grid of examples and build options, for checking that a change
which only moves code around leaves every generated module byte-identical.

    python benchmarks/module_digests.py > before.json      # on the old checkout
    python benchmarks/module_digests.py --compare before.json   # on the new one: lists any module that differs

Each module is built by the CLI into a fresh folder (no module cache). The grid: every example spec with the
default options, and the built-in seed and the small examples with each layout, each gradient, kernels, --hessian.
"""

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("*.toml"))
SMALL = ["seed", "xor", "logistic", "softmax3"]
OPTIONS = [
    [],
    *([f"--layout={layout}"] for layout in ("unrolled", "rolled", "blocks", "rolled-blocks")),
    *([f"--gradient={gradient}"] for gradient in ("diff", "reverse")),
    ["--hessian"],
    ["--kernels=scalar"],
]


def grid():
    """(name, spec or None for the built-in seed, options) of every module to build."""
    cases = [(name, name, []) for name in EXAMPLES]
    cases += [("builtin", None, [])]
    for name, options in itertools.product(SMALL, OPTIONS[1:]):
        cases.append((name, name, options))
    return cases


def digest(spec, options, folder):
    """The SHA-256 of each file the build writes into `folder`, by file name."""
    # relative to the checkout: the module's rebuild command names the spec as given, the same in any checkout
    spec_arguments = [f"examples/{spec}.toml"] if spec else []
    command = [sys.executable, "-m", "symcompile", "build", *spec_arguments, *options, "--out-dir", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if done.returncode != 0:
        return {"refused": done.stderr.strip().splitlines()[-1:]}
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.py"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="a JSON file of an earlier run: print the modules that differ")
    args = parser.parse_args()
    digests = {}
    with tempfile.TemporaryDirectory() as scratch:
        for n, (name, spec, options) in enumerate(grid()):
            folder = Path(scratch) / str(n)
            folder.mkdir()
            digests[" ".join([name, *options])] = digest(spec, options, folder)
    if args.compare is None:
        print(json.dumps(digests, indent=1))
        return 0
    earlier = json.loads(args.compare.read_text())
    differ = [case for case in sorted(set(earlier) | set(digests)) if earlier.get(case) != digests.get(case)]
    print(f"{len(digests) - len(differ)} of {len(digests)} builds byte-identical; differ: {differ or 'none'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
