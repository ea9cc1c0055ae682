"""The core never loads the benchmarks or their libraries: building a model needs SymPy, Jinja, NumPy and Numba
only."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH_ONLY = ("symcompile.seed_comparison", "benchmarks", "references", "tqdm", "jax", "torch", "threadpoolctl")
DASK_ONLY = ("dask", "distributed", "symcompile.distributed")


def _modules_after(code, tmp_path):
    """The modules a fresh interpreter holds after running `code` (from the checkout, building into tmp_path)."""
    probe = f"import json, sys\nsys.path.insert(0, {str(REPO)!r})\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def _loaded(modules, names):
    return [m for m in modules if any(m == name or m.startswith(name + ".") for name in names)]


@pytest.mark.slow
def test_importing_symcompile_and_building_loads_no_bench_module(tmp_path):
    code = (
        "import symcompile, symcompile.pipeline, symcompile.cli\n"
        "from symcompile.seed import seed_model\n"
        f"symcompile.build(seed_model(), {str(tmp_path)!r})"
    )
    modules = _modules_after(code, tmp_path)
    assert "symcompile.pipeline" in modules and (tmp_path / "seed_mlp.py").is_file()
    assert _loaded(modules, BENCH_ONLY) == []


@pytest.mark.slow
def test_cli_build_loads_only_the_bench_options(tmp_path):
    """The command line's parser includes `bench`'s options (symcompile.seed_comparison); nothing it measures with."""
    modules = _modules_after(
        f"import symcompile.cli\nsymcompile.cli.main(['build', '--out-dir', {str(tmp_path)!r}])", tmp_path
    )
    assert (tmp_path / "seed_mlp.py").is_file()
    assert _loaded(modules, BENCH_ONLY) == ["symcompile.seed_comparison"]
    assert _loaded(modules, DASK_ONLY) == []  # Dask loads only when --dask or symcompile.distributed is used
