"""The checkouts a start-up measurement compares: this one, and optionally another (`--before PATH`).

A checkout's symcompile runs as `python -m symcompile` with the checkout as working folder and PYTHONPATH, so
it imports that copy and not the installed one; `check_import` prints where it came from and stops if that is
elsewhere. Each checkout's examples/*.toml are copied into a scratch folder with their data: examples/data is not
all committed (digits.csv is written by `python examples/make_data.py`), so a fresh worktree lacks some of it,
and the files it lacks are taken from this checkout's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

THIS_CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Checkout:
    """A checkout in the report (its name there, its root) and its examples copied to `examples`."""

    name: str
    root: Path
    examples: Path

    def env(self, cache=None):
        """The environment its commands run in; `cache`: a NUMBA_CACHE_DIR of their own."""
        env = dict(os.environ, PYTHONPATH=str(self.root))
        if cache is not None:
            env["NUMBA_CACHE_DIR"] = str(cache)
        return env


def add_before_argument(parser):
    parser.add_argument("--before", type=Path, metavar="PATH",
                        help="another checkout of this repository (a git worktree of an older commit) to measure "
                             "beside this one")  # fmt: skip


def checked_before(parser, before):
    if before is not None and not (before / "symcompile" / "__init__.py").is_file():
        parser.error(f"--before {before}: no symcompile/__init__.py there")
    return before


def checkouts(before, scratch):
    """[this checkout] or [before, after], their examples copied under `scratch`, their imports checked."""
    roots = [("this", THIS_CHECKOUT)] if before is None else [("before", before.resolve()), ("after", THIS_CHECKOUT)]
    found = [Checkout(name, root, copy_examples(root, scratch / f"examples-{name}")) for name, root in roots]
    for checkout in found:
        check_import(checkout)
    return found


def copy_examples(root, folder):
    """`root`'s examples/*.toml in `folder`, with data/: this checkout's examples/data, overlaid by root's own."""
    folder.mkdir(parents=True)
    for spec in (root / "examples").glob("*.toml"):
        shutil.copy(spec, folder / spec.name)
    for data in (THIS_CHECKOUT / "examples" / "data", root / "examples" / "data"):
        if data.is_dir():
            shutil.copytree(data, folder / "data", dirs_exist_ok=True)
    return folder


def check_import(checkout):
    """Print where the checkout's commands import symcompile from; stop if not from the checkout."""
    command = [sys.executable, "-c", "import symcompile; print(symcompile.__file__)"]
    done = subprocess.run(command, cwd=checkout.root, env=checkout.env(), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{checkout.name} ({checkout.root}): importing symcompile failed:\n{done.stderr[-2000:]}")
    imported = Path(done.stdout.strip()).resolve()
    print(f"{checkout.name:<6} symcompile imported from {imported}")
    if checkout.root not in imported.parents:
        sys.exit(f"{checkout.name}: symcompile comes from {imported}, not from {checkout.root}")
