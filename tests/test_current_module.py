"""`train` on a module found current for the same spec, data and versions loads it without making the model
(without SymPy); any change to those inputs, or to the module file, takes the full check again."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symcompile import current_module
from symcompile.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = """kind = "mlp"
name = "tiny"
layers = [1, 2, 1]
loss = "mean_squared_error"
output_activation = "identity"
[training]
lr = 0.1
max_iter = 5
[data]
csv = "data.csv"
"""


@pytest.fixture()
def spec(tmp_path):
    (tmp_path / "data.csv").write_text("x1,y\n0,0\n1,1\n2,2\n")
    (tmp_path / "tiny.toml").write_text(SPEC)
    return tmp_path / "tiny.toml"


def _train(spec, out_dir, capsys):
    assert main(["train", str(spec), "--out-dir", str(out_dir)]) == 0
    return capsys.readouterr().out


def test_a_second_train_takes_the_recorded_module(spec, tmp_path, capsys):
    out_dir = tmp_path / "gen"
    first = _train(spec, out_dir, capsys)
    assert "building it" in first
    key = current_module.inputs_key(str(spec), None, {})
    assert current_module.recorded(out_dir, key)[0] == out_dir / "tiny.py"
    second = _train(spec, out_dir, capsys)
    assert "building it" not in second
    def results(out):
        return [line for line in out.splitlines() if line.lstrip().startswith(("final", "weights"))]

    assert results(second) == results(first) and len(results(first)) == 2


@pytest.mark.parametrize("change", ["spec", "data", "module"])
def test_a_change_takes_the_full_check(spec, tmp_path, capsys, change):
    out_dir = tmp_path / "gen"
    _train(spec, out_dir, capsys)
    key = current_module.inputs_key(str(spec), None, {})
    if change == "spec":
        spec.write_text(SPEC.replace("lr = 0.1", "lr = 0.2"))
    elif change == "data":
        (tmp_path / "data.csv").write_text("x1,y\n0,0\n1,1\n2,3\n")
    else:
        module = out_dir / "tiny.py"
        module.write_text(module.read_text() + "\n# edited\n")
    new_key = current_module.inputs_key(str(spec), None, {})
    assert (new_key != key) == (change != "module")
    assert current_module.recorded(out_dir, new_key) is None
    out = _train(spec, out_dir, capsys)
    assert "building it" in out  # a new model, new data, or a module that is not the build's output
    if change == "spec":
        assert "lr=0.2" in out


def test_a_pipe_or_a_split_gets_its_own_key(spec):
    assert current_module.inputs_key("/dev/stdin", None, {}) is None
    plain = current_module.inputs_key(str(spec), None, {})
    assert current_module.inputs_key(str(spec), None, {"validation_split": 0.25}) != plain
    assert current_module.inputs_key(str(spec), str(spec.parent.parent), {}) != plain


def test_the_second_run_imports_no_sympy(spec, tmp_path):
    out_dir = tmp_path / "gen"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "symcompile", "train", str(spec), "--out-dir", str(out_dir)]
    subprocess.run(command, check=True, capture_output=True, env=env)
    probe = ("import runpy, sys; sys.argv = ['symcompile', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('symcompile', run_name='__main__')\nexcept SystemExit as e:\n"
             "    assert e.code == 0, e.code\nprint('sympy' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", probe, *command[3:]], check=True, capture_output=True, text=True, env=env)
    assert shown.stdout.strip().splitlines()[-1] == "False"
