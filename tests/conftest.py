import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Numba's cache for the whole session lives in a temporary folder (set before anything imports Numba): the tests
# neither read a cache a developer's earlier runs left nor leave one behind. Tests that check the cache beside the
# module, as users get it, drop the variable in their subprocesses.
if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="symcompile-tests-numba-")
    atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)

import pytest  # noqa: E402

from symcompile.cli import main

from symcompile.pipeline import build
from symcompile.seed import seed_model
from symcompile.writer import load_module


@pytest.fixture(scope="session")
def seed_module(tmp_path_factory):
    """The seed model compiled by the full pipeline into a fresh folder, and imported."""
    report = build(seed_model(), tmp_path_factory.mktemp("generated"))
    return load_module(report.path)


@pytest.fixture(scope="session")
def fit_dir(tmp_path_factory):
    """The folder of the residual models' modules (test_fitting.py, test_distributed.py)."""
    return tmp_path_factory.mktemp("fitting")


@pytest.fixture(scope="session")
def misra(fit_dir):
    """examples/misra1a.toml (a spec with `residual =`) built by the CLI: also BoxBOD's formula. Shared, since
    its first fit compiles Levenberg-Marquardt's solver (tens of seconds)."""
    spec = Path(__file__).resolve().parents[1] / "examples" / "misra1a.toml"
    assert main(["build", str(spec), "--out-dir", str(fit_dir)]) == 0
    return load_module(fit_dir / "misra1a.py")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory):
    """One folder for the example specs' modules, shared by every test that builds or trains an unmodified example
    with `--out-dir`: each example is compiled once a session, not once a test module."""
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="session")
def example_module(examples_dir):
    """example_module("xor"): examples/xor.toml built by the CLI into examples_dir (once), then imported."""
    loaded = {}

    def built(name):
        if name not in loaded:
            assert main(["build", str(EXAMPLES / f"{name}.toml"), "--out-dir", str(examples_dir)]) == 0
            loaded[name] = load_module(examples_dir / f"{name}.py")
        return loaded[name]

    return built
