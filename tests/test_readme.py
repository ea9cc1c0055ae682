"""Every command and code sample in README.md and docs/*.md runs as shown.

The ```sh lines and ```python blocks are run page by page (README.md first, then
the docs pages in alphabetical order) and in order within each page, in one
scratch copy of examples/ and generated/seed_mlp.py (so their files land there,
not in the checkout), with `python` this interpreter and the checkout's
symcompile on the path. A sample may use the files an earlier sample of its own
page made, never another page's, so that each page reads on its own (the shared
folder does not check this: keep such samples together, in order, on one page).
The scratch folder is pytest's cache folder, kept between runs: the modules the
samples build keep their bytes, so Numba's cache beside them saves the minutes
of compiling after the first run. Those that are unsafe or slow are skipped,
each with its reason in SKIPPED below; the test fails if a skip rule no longer
matches anything, so the list stays true."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# README.md first, then the docs pages in a fixed order: the order the samples run in (one shared workspace).
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (pattern found in the command or sample, why it is not run); the first match wins.
SKIPPED = [
    (r"^pip ", "installs packages: the network, and it changes the environment"),
    (r"-m pytest", "the test suite itself"),
    (r"\bbench\b|-m benchmarks", "a benchmark: minutes of measuring, never a test"),
    (r"digits", "the digits network: Numba compiles its kernels for one to two minutes"),
    (r"for k in range\(32\):\n\s+t\[33", "an excerpt of a generated module's kernel, not a program"),
    (
        r'm\.load_weights\("weights\.npz"\)',
        "the trainer's sample: tests/test_readme_trainer.py runs it and checks its output",
    ),
]
# Samples that need an optional extra run where it is installed and are skipped, naming it, where not.
EXTRAS = [
    (r"--plot", "matplotlib", "plot"),
    (r"make_data\.py", "sklearn", "examples"),
    (r"--dask|from symcompile import distributed", "distributed", "dask"),
    (r"symcompile\.sklearn", "sklearn", "sklearn"),
]


def samples():
    """(page, kind, text) for each ```sh line and ```python block, page by page, in order within each page."""
    found = []
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        for language, body in re.findall(r"^```(sh|python)\n(.*?)^```$", page.read_text(encoding="utf-8"), re.S | re.M):
            if language == "python":
                found.append((name, "python", body))
            else:
                lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
                found += [(name, "sh", line) for line in lines]
    return found


SAMPLES = samples()


def skip_reason(text):
    for pattern, reason in SKIPPED:
        if re.search(pattern, text, re.M):
            return reason
    return None


@pytest.fixture(scope="module")
def workspace(request, tmp_path_factory):
    """A scratch folder laid out like the checkout, with `python` on PATH meaning this interpreter (in pytest's
    cache folder, or a temporary one when the cache is turned off: -p no:cacheprovider)."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("symcompile-readme") if cache is not None else tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("digits.csv"))  # fmt: skip
    (folder / "generated").mkdir(exist_ok=True)
    seed = ROOT / "generated" / "seed_mlp.py"
    if (
        not (folder / "generated" / seed.name).is_file()
        or (folder / "generated" / seed.name).read_bytes() != seed.read_bytes()
    ):
        shutil.copy(seed, folder / "generated")  # only when changed: a new timestamp would void Numba's cache
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    # A script, not a symlink: a virtual environment's interpreter finds its packages from the path it is run as.
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_CACHE_DIR", None)
    return folder, env


def test_skip_rules_each_match_a_sample():
    for pattern, _ in SKIPPED:
        assert any(re.search(pattern, text, re.M) for _, _, text in SAMPLES), f"no sample matches {pattern!r}"


def test_every_sample_block_is_found():
    """A fence the pattern misses (say, no closing ```) would drop its samples silently."""
    assert len(PAGES) > 1, "no docs pages"
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        opened = re.findall(r"^```(?:sh|python)$", text, re.M)
        assert len(re.findall(r"^```(sh|python)\n(.*?)^```$", text, re.S | re.M)) == len(opened), page.name


@pytest.mark.slow
@pytest.mark.parametrize("page, kind, text", SAMPLES, ids=[f"{p}:{k}:{t.splitlines()[0][:50]}" for p, k, t in SAMPLES])
def test_readme_sample_runs(workspace, page, kind, text):
    reason = skip_reason(text)
    if reason:
        pytest.skip(reason)
    for pattern, module, extra in EXTRAS:
        if re.search(pattern, text):
            pytest.importorskip(module, reason=f"needs the {extra} extra ({module})")
    folder, env = workspace
    command = ["bash", "-c", text] if kind == "sh" else [sys.executable, "-c", text]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{page}: {text}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
