"""The generated module's own checks: the CLI's settings checks, stale temporaries, and the body digest."""

import math
import subprocess
import sys

import pytest

from symcompile import cli
from symcompile.writer import load_module

F5_SEQUENTIAL_999 = "output 0.999453185534"  # the blog's result, as `train` prints it


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The seed's module built by the CLI into a folder of its own."""
    out_dir = tmp_path_factory.mktemp("generated")
    assert cli.main(["build", "--out-dir", str(out_dir)]) == 0
    return out_dir


BAD_SETTINGS = [  # (CLI arguments, the same setting as a keyword of the module's train)
    (["--lr", "-1.0"], {"lr": -1.0}),
    (["--lr", "0"], {"lr": 0.0}),
    (["--lr", "inf"], {"lr": math.inf}),
    (["--tol", "nan"], {"tol": math.nan}),
    (["--max-iter", "0"], {"max_iter": 0}),
    (["--max-iter", "-3"], {"max_iter": -3}),
]


@pytest.mark.parametrize("argv, keywords", BAD_SETTINGS)
def test_module_train_refuses_what_the_cli_refuses_with_the_same_message(built, capsys, argv, keywords):
    assert cli.main(["train", "--out-dir", str(built), *argv]) == 2
    cli_message = capsys.readouterr().err.strip().removeprefix("symcompile: error: ")
    module = load_module(built / "seed_mlp.py")
    with pytest.raises(ValueError) as refused:
        module.train(**keywords)
    assert str(refused.value) == cli_message


def test_a_build_removes_the_temporaries_of_killed_builds(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".seed_mlp.{int(dead.stdout)}.0a1b2c3d.tmp"  # left by a build killed before os.replace
    stale.write_text("half a module")
    live = tmp_path / f".seed_mlp.{subprocess.os.getpid()}.0a1b2c3d.tmp"  # a build still running keeps its own
    live.write_text("a module being written")
    other = tmp_path / f".other_model.{int(dead.stdout)}.0a1b2c3d.tmp"  # another module's: not this build's business
    other.write_text("x")
    assert cli.main(["build", "--out-dir", str(tmp_path)]) == 0
    assert not stale.exists() and live.exists() and other.exists()


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_module_checks_its_own_digest(built, tmp_path):
    copy = tmp_path / "seed_mlp.py"
    copy.write_bytes((built / "seed_mlp.py").read_bytes())
    load_module(copy).check_digest()  # as built: passes
    _edit(copy, "        loss += t9*_softplus(t7)", "        loss += 2*t9*_softplus(t7)")
    with pytest.raises(ValueError, match="changed after symcompile built it"):
        load_module(copy).check_digest()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["edited", "truncated"])
def test_cli_train_rebuilds_a_module_edited_or_cut_short(tmp_path, capsys, damage):
    assert cli.main(["build", "--out-dir", str(tmp_path)]) == 0
    path = tmp_path / "seed_mlp.py"
    original = path.read_bytes()
    if damage == "edited":  # by hand, in the one-sample sweep that `train` runs: w0 would take double steps
        _edit(path, "    step_w0 = lr*(", "    step_w0 = 2*lr*(")
    else:  # the header and half the body: imports, then fails on a missing name
        path.write_bytes(original[: len(original) // 2])
    capsys.readouterr()
    assert cli.main(["train", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "was changed after it was generated" in out
    assert F5_SEQUENTIAL_999 in out
    assert path.read_bytes() == original
