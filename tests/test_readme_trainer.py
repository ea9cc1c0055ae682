"""The training sample of docs/training.md runs as shown (in a fresh process, from a temporary folder)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _sample():
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    after = text.split("<!-- trainer sample -->\n```python\n", 1)[1]
    return after.split("```", 1)[0]


@pytest.mark.slow
def test_the_readme_training_sample_runs(tmp_path):
    code = _sample().replace('sys.path.insert(0, "generated")', f"sys.path.insert(0, {str(ROOT / 'generated')!r})")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    status, iterations, val_loss, accuracy = done.stdout.splitlines()[0].split()
    assert status in ("early_stopped", "max_iter") and float(accuracy) > 0.5
    assert (tmp_path / "weights.npz").is_file()
