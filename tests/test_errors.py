"""Bad user formulas end in one clear SymcompileError (one `symcompile: error:` line and exit 2 from the CLI),
never a SymPy traceback or a file; genuine bugs keep their traceback."""

import numpy as np
import pytest
import sympy as sp

import symcompile
from symcompile import cli
from symcompile.errors import SymcompileError
from symcompile.model import make_model
from symcompile.pipeline import build

a, b, x, y = sp.symbols("a b x y")


def _model(output, loss=None):
    return make_model("bad", output, (output - y) ** 2 if loss is None else loss, [a, b], [x], [y])


BAD_FORMULAS = {
    "undefined function": (lambda: _model(sp.Function("f")(a * x) + b), r"undefined function\(s\) f"),
    "unevaluated integral": (lambda: _model(sp.Integral(a * x, x) + b), r"unevaluated Integral"),
    "unevaluated substitution": (lambda: _model(sp.Subs(sp.sin(a * x), x, 2) + b), r"unevaluated Subs"),
    "division by zero": (lambda: _model(a * x + b / sp.S(0)), r"undefined value \(nan or zoo"),
    "complex": (lambda: _model(sp.I * a * x + b), r"complex \(contains I\)"),
    "no derivative rule": (lambda: _model(sp.floor(a * x) + b), r"no closed-form derivative with respect to a: .*floor"),
    "derivative not printable": (lambda: _model(sp.sign(a) * x + b), r"cannot generate code for DiracDelta\(a\)"),
    "function not printable": (lambda: _model(sp.besselj(0, a * x) + b), r"cannot generate code for besselj"),
    "not in Numba": (lambda: _model(sp.factorial(a) * x + b), r"cannot generate code for factorial\(a\)"),
    "model named math": (lambda: make_model("math", a * x, a * x - y, [a], [x], [y]), r"'math' is the name of a Python module"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FORMULAS)
def test_bad_formula_is_a_symcompile_error_and_writes_nothing(tmp_path, case):
    make, message = BAD_FORMULAS[case]
    with pytest.raises(SymcompileError, match=message):
        build(make(), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", BAD_FORMULAS)
def test_cli_reports_a_bad_formula_in_one_line(tmp_path, monkeypatch, capsys, case):
    make, message = BAD_FORMULAS[case]
    monkeypatch.setattr(
        cli, "resolve_model", lambda spec, data_root=None: (make(), "python -m symcompile build bad.toml")
    )
    assert cli.main(["build", "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symcompile: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_cli_does_not_hide_a_bug_as_a_user_error(tmp_path, monkeypatch):
    def broken_stage(*args):
        raise KeyError("a bug in symcompile")

    monkeypatch.setattr("symcompile.pipeline.optimize", broken_stage)
    with pytest.raises(KeyError, match="a bug in symcompile"):
        cli.main(["build", "--out-dir", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--lr", "nan"], "lr must be a positive number"),
        (["train", "--tol", "-1"], "tol must be a non-negative number"),
        (["train", "--max-iter", "-3"], "max_iter must be an integer"),
        (["train", "--max-iter", "100000000000000000000"], "max_iter must be an integer"),
        (["build", "no-such-model.toml"], "no-such-model.toml: cannot read spec file"),
        (["bench", "--scenario", "dataset", "examples/xor.toml"], "`bench` runs the seed comparison only"),
        (["bench", "--json", "/no/such/folder/out.json"], "cannot write /no/such/folder/out.json"),
    ],
)
def test_cli_bad_settings_are_one_line_and_write_nothing(tmp_path, capsys, argv, words):
    out_dir = tmp_path / "generated"
    assert cli.main([*argv, "--out-dir", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symcompile: error: ") and words in err and err.count("\n") == 1
    assert not out_dir.exists()


def test_cli_unwritable_output_folder_is_one_line(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert cli.main(["build", "--out-dir", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symcompile: error: cannot write") and err.count("\n") == 1


def test_absolute_value_differentiates_as_a_real_function(tmp_path):
    """SymPy's complex symbols would give d|u|/du in terms of re, im and unevaluated derivatives."""
    module = symcompile.compile_model(
        a * x + b, sp.Abs(a * x + b - y), [a, b], [x], [y], name="l1", X=[[1.0], [-2.0], [0.5]], Y=[0.0, 1.0, 3.0],
        out_dir=tmp_path,
    )  # fmt: skip
    w = np.array([0.7, -0.2])
    residual = w[0] * module.X[:, 0] + w[1] - module.Y[:, 0]
    expected_grad = [np.mean(np.sign(residual) * module.X[:, 0]), np.mean(np.sign(residual))]
    loss, grad = module.loss_and_grad(w)
    assert loss == pytest.approx(np.mean(np.abs(residual)), rel=1e-15)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-15)


def test_formula_text_is_never_executed(tmp_path):
    """Formulas must be SymPy objects: strings are refused, not parsed (SymPy's parser runs eval)."""
    marker = tmp_path / "executed"
    text = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(SymcompileError, match="is not a SymPy expression"):
        make_model("bad", text, (a * x - y) ** 2, [a], [x], [y])
    assert not marker.exists()
