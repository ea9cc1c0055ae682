"""The size of every example's generated module, and where its fused loss-and-gradient kernel starts.

    python benchmarks/startup/module_sizes.py [--before PATH]

Builds each examples/*.toml (`python -m symcompile build SPEC --out-dir DIR`, a new folder each) and the built-in
seed (`build` with no spec: generated/seed_mlp.py) into a temporary folder, and prints a markdown table: lines and
KB of the generated .py (data kept beside the module, in a .npz, is not counted) and the line of
`def _loss_and_grad_kernel`. A spec whose CSV file is missing is skipped, and said so. With `--before PATH`, the
other checkout's modules from its own specs, side by side (checkouts.py says how each is run and where its data
come from).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from checkouts import add_before_argument, checked_before, checkouts

KERNEL = "def _loss_and_grad_kernel"
SEED = "seed (no spec)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_before_argument(parser)
    args = parser.parse_args(argv)
    checked_before(parser, args.before)
    scratch = Path(tempfile.mkdtemp(prefix="symcompile-sizes-"))
    try:
        sides = checkouts(args.before, scratch)
        sizes = {side.name: sizes_of(side, scratch / f"built-{side.name}") for side in sides}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(sizes)


def sizes_of(checkout, out):
    """{example: (lines, KB, kernel line or None) or the reason there is none}, the seed last."""
    sizes = {}
    for spec in sorted(checkout.examples.glob("*.toml")):
        missing = missing_csv(spec)
        if missing:
            sizes[spec.stem] = f"skipped: {missing} is missing"
        else:
            sizes[spec.stem] = built_size(checkout, [str(spec)], out / f"example-{spec.stem}")
    sizes[SEED] = built_size(checkout, [], out / "no-spec")
    return sizes


def missing_csv(spec):
    """The spec's CSV file (relative to it) when it names one that is not there, else None."""
    with open(spec, "rb") as f:
        csv = tomllib.load(f).get("data", {}).get("csv")
    return f"data/{Path(csv).name}" if csv and not (spec.parent / csv).is_file() else None


def built_size(checkout, spec, folder):
    """Build into `folder`/module (new) with the checkout's symcompile; the one .py written there, measured."""
    out = folder / "module"
    command = [sys.executable, "-m", "symcompile", "build", *spec, "--out-dir", str(out)]
    done = subprocess.run(command, cwd=checkout.root, env=checkout.env(cache=folder / "cache"),
                          capture_output=True, text=True)  # fmt: skip
    modules = list(out.glob("*.py"))
    if done.returncode != 0 or len(modules) != 1:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        return f"build failed (exit {done.returncode}, {len(modules)} modules): {last}"
    text = modules[0].read_text()
    lines = text.splitlines()
    kernel = next((i + 1 for i, line in enumerate(lines) if line.startswith(KERNEL)), None)
    return len(lines), len(text.encode()) / 1024, kernel


def print_table(sizes):
    names = list(sizes)
    examples = list(dict.fromkeys(example for side in sizes.values() for example in side))
    header = ["example"] + [
        f"{what}{f' ({name})' if len(names) > 1 else ''}"
        for what in ("lines", "KB", KERNEL.removeprefix("def ") + " at line")
        for name in names
    ]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    notes = []
    for example in examples:
        found = [sizes[name].get(example, "not in this checkout") for name in names]
        cells = [_cell(size, column) for column in range(3) for size in found]
        print(f"| {example} | " + " | ".join(cells) + " |")
        notes += [f"{example} ({name}): {size}" for name, size in zip(names, found) if isinstance(size, str)]
    if notes:
        print()
        print("\n".join(notes))


def _cell(size, column):
    if isinstance(size, str):
        return "-"
    value = size[column]
    if value is None:
        return "not found"
    return f"{value:,.1f}" if column == 1 else f"{value:,}"


if __name__ == "__main__":
    main()
