"""The code passes `ruff check` (pyflakes: unused and undefined names, redefinitions; syntax) and is laid out as
`ruff format` lays it out, as configured in pyproject.toml. Skipped where ruff is not installed (it comes with the
test extra)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff(*arguments):
    pytest.importorskip("ruff", reason="needs the test extra (ruff)")
    return subprocess.run([sys.executable, "-m", "ruff", *arguments, "."], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_passes():
    done = ruff("check", "--output-format", "concise")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_the_code_is_laid_out_as_ruff_format_lays_it_out():
    done = ruff("format", "--check")
    assert done.returncode == 0, "run `ruff format .`:\n" + done.stdout[-3000:] + done.stderr[-1000:]
