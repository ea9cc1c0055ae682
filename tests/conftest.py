from pathlib import Path

import pytest

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
