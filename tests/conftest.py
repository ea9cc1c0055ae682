import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Numba's cache for the whole session lives in a temporary folder (set before anything imports Numba): the tests
# neither read a cache a developer's earlier runs left nor leave one behind. Tests that check the cache beside the
# module, as users get it, drop the variable in their subprocesses.
SESSION_CACHE = "NUMBA_CACHE_DIR" not in os.environ
if SESSION_CACHE:
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


# ---- the runtime's compiled code, kept from one session to the next ----------------------------------------------
# symcompile/runtime compiles once per machine (the dense loops alone 13 s, in each process that finds no cache),
# which would be most of a `pytest -m "not slow"` run. Its part of the session's cache is copied in from a folder in
# the system's temporary directory when the session starts, and back when it ends. Numba checks every entry against
# its source file, so an edited runtime file compiles again. SYMCOMPILE_TESTS_COLD=1 starts from nothing (as CI does,
# on a fresh machine); a cache given in NUMBA_CACHE_DIR is left alone.
KEPT = Path(tempfile.gettempdir()) / f"symcompile-tests-runtime-py{sys.version_info[0]}{sys.version_info[1]}"


def _runtime_cache(cache_dir):
    """The runtime's folder in the Numba cache `cache_dir` (Numba names it after the source folder)."""
    import symcompile.runtime
    from numba.core.caching import UserProvidedCacheLocator

    return Path(cache_dir) / UserProvidedCacheLocator.get_suitable_cache_subpath(symcompile.runtime.__file__)


def _keeps_runtime(config):
    controller = not hasattr(config, "workerinput")  # pytest-xdist's workers share the controller's cache
    return SESSION_CACHE and controller and os.environ.get("SYMCOMPILE_TESTS_COLD") != "1"


def pytest_configure(config):
    compiled = _runtime_cache(os.environ["NUMBA_CACHE_DIR"])
    kept = KEPT / compiled.name  # one per checkout: the name is the runtime folder's
    if _keeps_runtime(config) and kept.is_dir():  # before pytest-xdist starts its workers
        shutil.copytree(kept, compiled, dirs_exist_ok=True)
    elif SESSION_CACHE and not hasattr(config, "workerinput"):
        _compile_runtime()


def _compile_runtime():
    """The runtime compiled into the new session cache in three processes side by side (tests/warm_runtime.py),
    before the workers start: else each worker, and each subprocess a test starts early, compiles it again."""
    script = Path(__file__).with_name("warm_runtime.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(script.parents[1]), os.environ.get("PYTHONPATH", "")]))
    parts = [subprocess.Popen([sys.executable, str(script), part], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for part in ("float64", "float32", "scalar")]  # fmt: skip
    for part in parts:
        part.wait()  # a part that fails leaves its code to compile where a test needs it, as without this


def pytest_unconfigure(config):
    compiled = _runtime_cache(os.environ["NUMBA_CACHE_DIR"])
    if not (_keeps_runtime(config) and compiled.is_dir()):
        return
    kept = KEPT / compiled.name
    KEPT.mkdir(exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=kept.name + "-", dir=KEPT))
    try:  # whole or not at all: a copy beside it, renamed into place (a session beside this one may do the same)
        shutil.copytree(compiled, staged, dirs_exist_ok=True)
        old = kept.with_name(staged.name + "-old")
        if kept.is_dir():
            kept.rename(old)
        staged.rename(kept)
    except OSError:
        pass  # another session's copy won; this one is only a head start for the next session
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(kept.with_name(staged.name + "-old"), ignore_errors=True)
