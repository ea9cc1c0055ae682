"""`train` on a module found current for the same spec, data and versions loads it without making the model
(without SymPy); any change to those inputs, or to the module file, takes the full check again."""

import os
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_second_run_imports_no_sympy(spec, tmp_path):
    out_dir = tmp_path / "gen"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "symcompile", "train", str(spec), "--out-dir", str(out_dir)]
    subprocess.run(command, check=True, capture_output=True, env=env)
    probe = (
        "import runpy, sys; sys.argv = ['symcompile', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('symcompile', run_name='__main__')\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\nprint('sympy' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe, *command[3:]], check=True, capture_output=True, text=True, env=env
    )
    assert shown.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_a_module_this_runtime_cannot_run_is_rebuilt_not_a_traceback(tmp_path, capsys):
    """A dense module built for other dense loops (a runtime upgrade) is rebuilt by train, on the shortcut and on
    the full check alike, instead of ending in the runtime's ImportError. (The upgrade is a fresh process whose
    runtime says another version: in one process, the loops already registered would not change.)"""
    (tmp_path / "data.csv").write_text("x1,x2,y\n" + "".join(f"{i % 3},{i % 5},{i % 2}\n" for i in range(20)))
    spec = tmp_path / "wide.toml"
    spec.write_text(
        'kind = "mlp"\nname = "wide"\nlayers = [2, 8, 1]\n[training]\nmax_iter = 3\n[data]\ncsv = "data.csv"\n'
    )
    out_dir = tmp_path / "gen"
    assert main(["train", str(spec), "--out-dir", str(out_dir)]) == 0
    assert "_dense.prepare(" in (out_dir / "wide.py").read_text()
    upgraded = (
        "import sys\nfrom symcompile.runtime import dense\ndense.VERSION += 1\nfrom symcompile.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    # The shortcut finds its record, the module is stale there, and the full check rebuilds it.
    done = subprocess.run([sys.executable, "-c", upgraded, "train", str(spec), "--out-dir", str(out_dir)],
                          capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "cannot be imported by this symcompile" in done.stdout
    assert "_dense.prepare(" in (out_dir / "wide.py").read_text()
