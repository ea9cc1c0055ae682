"""Numba's on-disk cache and the ways a generated module is loaded (numba issue #7075).

A cached kernel records the name of the module that compiled it. Each row of the
matrix below is two fresh processes on a fresh copy of the seed's module with an
empty cache: the first loads the module one way (and fills the cache), the second
another way, from another folder or under another name. Every process must compute
the seed's loss, and the second must load its kernel from the cache where it reads
the same file.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

LOSS_AT_INIT = 0.430991433944403  # the blog's loss at its initial weights (README, `train`)

# How a process loads the module; {folder} is the folder holding seed_mlp.py, {parent} the one above it.
ROUTES = {
    "import": "sys.path.insert(0, {folder!r}); import seed_mlp as m",
    "package import": "sys.path.insert(0, {parent!r}); from generated import seed_mlp as m",
    "file load": (
        "import importlib.util; spec = importlib.util.spec_from_file_location('seed_mlp', {file!r}); "
        "m = importlib.util.module_from_spec(spec); sys.modules['seed_mlp'] = m; spec.loader.exec_module(m)"
    ),
    "file load under another name": (
        "import importlib.util; spec = importlib.util.spec_from_file_location('other_name', {file!r}); "
        "m = importlib.util.module_from_spec(spec); sys.modules['other_name'] = m; spec.loader.exec_module(m)"
    ),
    "file load without sys.modules": (
        "import importlib.util; spec = importlib.util.spec_from_file_location('seed_mlp', {file!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)"
    ),
    "runpy": "import runpy, types; m = types.SimpleNamespace(**runpy.run_path({file!r}))",
}

PROBE = """
import json, sys
{load}
loss = m.loss()
stats = m._loss_and_grad_kernel.stats
print(json.dumps({{"loss": loss, "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}}))
"""

# (first process, second process, whether the second reads the same file, so that its cache can be hit)
MATRIX = [
    ("file load without sys.modules", "import", True),
    ("import", "file load under another name", True),
    ("package import", "import", True),
    ("import", "package import", True),
    ("runpy", "import", True),
    ("file load", "runpy", True),
    ("import", "import", False),  # the second imports a copy of the file in another folder
]


def run_route(route, module_file, cwd):
    folder = os.path.dirname(module_file)
    code = PROBE.format(load=ROUTES[route].format(folder=folder, parent=os.path.dirname(folder), file=module_file))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}  # the cache beside the file, as users get it
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{route} failed:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout.splitlines()[-1])


def run_row(row, seed_file, root):
    """Both processes of one row, each in a working folder of its own; returns their probe results."""
    first, second, same_file = row
    home = root / "home" / "generated"
    home.mkdir(parents=True)
    shutil.copy(seed_file, home / "seed_mlp.py")
    elsewhere = root / "elsewhere" / "generated"
    elsewhere.mkdir(parents=True)
    first_result = run_route(first, str(home / "seed_mlp.py"), cwd=root / "home")
    if not same_file:
        shutil.copy(home / "seed_mlp.py", elsewhere / "seed_mlp.py")
    second_file = home / "seed_mlp.py" if same_file else elsewhere / "seed_mlp.py"
    second_result = run_route(second, str(second_file), cwd=root / "elsewhere")
    return first_result, second_result


@pytest.mark.slow
def test_every_loading_route_computes_and_reuses_the_cache(tmp_path):
    seed_file = Path(__file__).resolve().parent.parent / "generated" / "seed_mlp.py"
    with ThreadPoolExecutor(max_workers=2) as pool:  # each process mostly waits on Numba's compile
        results = list(pool.map(lambda i: run_row(MATRIX[i], seed_file, tmp_path / f"row{i}"), range(len(MATRIX))))
    for (first_route, second_route, same_file), (first, second) in zip(MATRIX, results):
        row = f"{first_route} -> {second_route}"
        assert first["loss"] == pytest.approx(LOSS_AT_INIT, abs=1e-14), row
        assert second["loss"] == pytest.approx(LOSS_AT_INIT, abs=1e-14), row
        assert (first["hits"], first["misses"]) == (0, 1), row
        # The same file: its kernel comes from the cache. A copy elsewhere has a cache of its own, empty.
        assert (second["hits"], second["misses"]) == ((1, 0) if same_file else (0, 1)), row
