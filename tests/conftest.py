import pytest

from symcompile.pipeline import build
from symcompile.seed import seed_model
from symcompile.writer import load_module


@pytest.fixture(scope="session")
def seed_module(tmp_path_factory):
    """The seed model compiled by the full pipeline into a fresh folder, and imported."""
    report = build(seed_model(), tmp_path_factory.mktemp("generated"))
    return load_module(report.path)
