"""The module cache (symcompile/module_cache.py): one module per formula, found again by later calls."""

import numpy as np
import pytest
import sympy as sp

from symcompile import module_cache
from symcompile.model import make_model
from symcompile.options import BuildOptions

a, b, x, y = sp.symbols("a b x y")


def _decay(name="decay", X=None, Y=None, init=None):
    return make_model(name, a * sp.exp(-b * x), None, [a, b], [x], [y], residual=a * sp.exp(-b * x) - y, X=X, Y=Y,
                      init=init)  # fmt: skip


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(module_cache, "_LOADED", {})
    monkeypatch.setenv(module_cache.ENVIRONMENT_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_one_module_per_formula_whatever_the_name_data_and_initial_weights(folder):
    first = module_cache.cached_module(_decay())
    X = np.linspace(0, 1, 9)
    other = _decay("another_name", X=X, Y=2 * np.exp(-3 * X), init=[5, 5])
    assert module_cache.cached_module(other) is first
    assert [p.name for p in folder.glob("*.py")] == [first.__file__.rpartition("/")[2]]
    fit = first.least_squares(np.array([1.0, 1.0]), X, 2 * np.exp(-3 * X))
    np.testing.assert_allclose(fit.w, [2.0, 3.0], rtol=1e-10)


def test_another_formula_or_option_is_another_module(folder):
    first = module_cache.cached_module(_decay())
    shifted = make_model("decay", a * sp.exp(-b * x) + 1, None, [a, b], [x], [y], residual=a * sp.exp(-b * x) + 1 - y)
    assert module_cache.cached_module(shifted) is not first
    assert module_cache.cached_module(_decay(), BuildOptions(gradient="reverse")) is not first
    assert len(list(folder.glob("*.py"))) == 3


def test_a_new_process_loads_the_file_and_a_damaged_one_is_rebuilt(folder):
    path = module_cache.cached_module(_decay()).__file__
    module_cache._LOADED.clear()  # as a new process: the file is found, not rebuilt
    before = open(path, "rb").read()
    assert module_cache.cached_module(_decay()).__file__ == path
    open(path, "wb").write(before[: len(before) // 2])
    module_cache._LOADED.clear()
    module = module_cache.cached_module(_decay())
    assert open(path, "rb").read() == before
    np.testing.assert_allclose(module.forward(np.array([2.0, 3.0]), np.array([0.5])), [2 * np.exp(-1.5)])


def test_the_folder_is_the_argument_then_the_variable_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(module_cache.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert module_cache.cache_dir() == tmp_path / "xdg" / "symcompile"
    monkeypatch.setenv(module_cache.ENVIRONMENT_VARIABLE, str(tmp_path / "env"))
    assert module_cache.cache_dir() == tmp_path / "env"
    assert module_cache.cache_dir(tmp_path / "given") == tmp_path / "given"


@pytest.mark.slow
def test_a_module_of_other_dense_loops_is_built_again(tmp_path):
    """A cached network module built by an earlier symcompile for other dense loops (its runtime refuses it when
    imported) is built again in the cache, not a traceback: what an upgrade does to scikit-learn users' modules."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys\nfrom symcompile.runtime import dense\ndense.VERSION += int(sys.argv[2])\n"
        "from symcompile import module_cache\nfrom symcompile.mlp import mlp_model\nfrom symcompile.options import BuildOptions\n"
        "module = module_cache.cached_module(mlp_model('net', [2, 8, 1]), BuildOptions(kernels='dense'), folder=sys.argv[1])\n"
        "print(module.loss_and_grad(module.INIT, [[0.5, 1.0]], [[1.0]])[0])"
    )
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": str(root)}
    runs = [subprocess.run([sys.executable, "-c", probe, str(tmp_path), str(bump)], capture_output=True, text=True,
                           env=env) for bump in (0, 1)]  # fmt: skip
    for done in runs:
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert float(runs[0].stdout) == float(runs[1].stdout)  # the same loss from the module built again
