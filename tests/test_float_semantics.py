"""Floating-point semantics in generated code: division by zero gives inf/NaN as in NumPy, never an exception,
and training reports it ("non-finite"), as it reports a loss that grows without bound ("diverged")."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sympy as sp

from symcompile import compile_model

a, b, d, e, f, g, u, v, x, y = sp.symbols("a b d e f g u v x y")
# One model with every singularity of the issue, each reached alone by moving one parameter or input to it.
SINGULAR_OUTPUT = u / a + b / v + x**-2 + sp.log(d) + sp.sqrt(e) + f**g
SINGULAR_PARAMS = [a, b, d, e, f, g]
SINGULAR_INPUTS = [u, v, x]
REGULAR_W = np.ones(6)  # a, b, d, e, f, g
REGULAR_X = np.ones((1, 3))  # u, v, x
CASES = {  # name: (weights, data) where the loss or its gradient divides by zero
    "x/a at a = 0": ({0: 0.0}, {}),
    "a/x at data x = 0": ({}, {1: 0.0}),
    "x**-2 at x = 0": ({}, {2: 0.0}),
    "log(a) at a = 0, through the gradient": ({2: 0.0}, {}),
    "sqrt(a) at a = 0, through the gradient": ({3: 0.0}, {}),
    "a**b at (0, -1)": ({4: 0.0, 5: -1.0}, {}),
}


@pytest.fixture(scope="module")
def singular(tmp_path_factory):
    return compile_model(
        SINGULAR_OUTPUT, (SINGULAR_OUTPUT - y) ** 2, SINGULAR_PARAMS, SINGULAR_INPUTS, [y],
        name="singular", out_dir=tmp_path_factory.mktemp("generated"),
    )  # fmt: skip


def numpy_loss(w, X):
    """The same loss in NumPy, with NumPy's floating-point semantics (the independent reference)."""
    a_, b_, d_, e_, f_, g_ = w
    u_, v_, x_ = X[0]
    with np.errstate(all="ignore"):
        out = u_ / a_ + b_ / v_ + x_**-2.0 + np.log(d_) + np.sqrt(e_) + f_**g_
        return (out - 0.0) ** 2


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_division_by_zero_gives_inf_or_nan_and_a_non_finite_status(singular, case):
    w_changes, x_changes = CASES[case]
    w, X = REGULAR_W.copy(), REGULAR_X.copy()
    for i, value in w_changes.items():
        w[i] = value
    for i, value in x_changes.items():
        X[0, i] = value
    Y = np.zeros((1, 1))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        loss, grad = singular.loss_and_grad(w, X, Y)  # raised ZeroDivisionError with Numba's default error model
    assert not (math.isfinite(loss) and np.all(np.isfinite(grad)))
    reference = numpy_loss(w, X)
    assert loss == reference or (math.isnan(loss) and math.isnan(reference))
    for update in ("simultaneous", "sequential"):
        result = singular.train(w, X, Y, lr=0.01, max_iter=5, tol=0, update=update)
        assert result.status == "non-finite", (case, update)
        assert np.all(np.isfinite(result.w))


def test_loss_warns_in_one_line_at_a_non_finite_point(singular):
    w = REGULAR_W.copy()
    w[0] = 0.0
    with pytest.warns(RuntimeWarning, match="divides by zero") as caught:
        assert math.isinf(singular.loss(w, REGULAR_X, np.zeros((1, 1))))
    assert "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finite loss warns of nothing
        assert math.isfinite(singular.loss(REGULAR_W, REGULAR_X, np.zeros((1, 1))))


@pytest.mark.slow
def test_growing_loss_stops_as_diverged(tmp_path):
    """Gradient descent on (a*x - y)**2 with lr 2 at x = 1 multiplies a's error by -3 each step: the loss
    grows 9-fold per iteration, passes the bound 1e6*(1 + first loss) within 10 iterations, and would overflow
    only after about 320."""
    m = compile_model(a * x, (a * x - y) ** 2, [a], [x], [y], name="runaway", init=[0.0], X=[1.0], Y=[1.0],
                      out_dir=tmp_path)  # fmt: skip
    result = m.train(lr=2.0, max_iter=1000, tol=0, update="simultaneous")
    assert result.status == "diverged" and not result.converged
    losses = [(3.0**k) ** 2 for k in range(result.iterations + 1)]  # the error after k steps is (-3)**k
    np.testing.assert_allclose(result.loss_history, losses, rtol=1e-12)
    assert losses[-2] <= 1e6 * (1 + losses[0]) < losses[-1]
    assert m.train(lr=0.1, max_iter=1000, tol=1e-12).status == "converged"  # a healthy run is not cut short


RECIP_SPEC = """\
kind = "expression"
name = "recip"
params = ["a", "b"]
inputs = ["x"]
targets = ["y"]
output = "b + x/a"
loss = "(b + x/a - y)**2"
[data]
X = [1.0, 2.0, 3.0]
Y = [2.0, 1.5, 1.3]
"""


@pytest.mark.slow
def test_cli_trains_the_issues_reciprocal_spec_to_a_non_finite_status(tmp_path):
    spec = tmp_path / "recip.toml"
    spec.write_text(RECIP_SPEC)
    done = subprocess.run(
        [sys.executable, "-m", "symcompile", "train", str(spec), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # a failed run: its report, then one line and exit 1 (README)
    assert "iterations 0 (non-finite)" in done.stdout
    assert done.stderr.splitlines()[-1].startswith(
        "symcompile: training stopped at a loss or weight that is not finite"
    )
    assert "Traceback" not in done.stderr
