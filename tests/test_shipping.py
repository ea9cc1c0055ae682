"""symcompile/shipping.py without a cluster (runs without Dask): a generated module packaged as the workers
receive it, and loaded the way a worker loads it, into a folder of its own."""

import dataclasses

import numpy as np
import pytest
import sympy as sp

from symcompile import SymcompileError, compile_model
from symcompile import shipping


@pytest.fixture(scope="module")
def module_with_a_data_file(tmp_path_factory):
    """A linear model whose 6,000 default numbers go to a data file beside the module (above 4,096)."""
    a, b, x, y = sp.symbols("a b x y")
    X = np.linspace(0.0, 1.0, 3000)
    return compile_model(a * x + b, (a * x + b - y) ** 2, [a, b], [x], [y], name="line", init=[0.0, 0.0],
                         X=X, Y=2.0 * X + 1.0, out_dir=tmp_path_factory.mktemp("built"))  # fmt: skip


def test_a_worker_loads_the_module_and_its_data_file_from_its_own_folder(
    module_with_a_data_file, tmp_path, monkeypatch
):
    monkeypatch.setenv(shipping.WORKER_DIR_VARIABLE, str(tmp_path))
    package = shipping.package(module_with_a_data_file)
    assert list(package.files) == ["line.npz"]
    loaded = shipping.load_package(package)
    assert str(tmp_path) in loaded.__file__ and loaded is not module_with_a_data_file
    np.testing.assert_array_equal(loaded.X, module_with_a_data_file.X)  # read from the shipped data file
    assert shipping.load_package(package) is loaded  # once per process
    assert shipping.module_on_worker(package.digest) is loaded


def test_a_package_damaged_on_the_way_is_refused(module_with_a_data_file, tmp_path, monkeypatch):
    monkeypatch.setenv(shipping.WORKER_DIR_VARIABLE, str(tmp_path))
    package = shipping.package(module_with_a_data_file)
    damaged = dataclasses.replace(package, digest="0" * 64)
    with pytest.raises(SymcompileError, match="arrived damaged"):
        shipping.load_package(damaged)
    with pytest.raises(SymcompileError, match="not loaded on this worker"):
        shipping.module_on_worker("f" * 64)
