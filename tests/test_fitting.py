"""Residual models through the compiler: NIST StRD fits, exact Jacobians and Hessians, Newton's method, `fit`.

References: NIST's certified values (tests/references/nist_strd.py), SciPy's
MINPACK and a hand-written SymPy Jacobian (tests/test_least_squares_solver.py's
`scipy_fit`), SymPy `diff` + `subs`, central finite differences, and a NumPy
Newton iteration with the textbook logistic-regression gradient and Hessian.
Every module is built once per session; each residual model's first fit pays
a Numba compile of the solver, so problems that share a formula share a module.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from references.nist_compiled import build_problem_module, problem_data
from references.nist_strd import BOXBOD, MISRA1A, THURBER
from symcompile.cli import main
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.model import make_model
from symcompile.pipeline import build, compile_model
from symcompile.seed import seed_model
from symcompile.spec import load_spec
from symcompile.writer import load_module
from test_least_squares_solver import digits, scipy_fit, start_of

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIGHT = {"max_iter": 1000, "xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15}


@pytest.fixture(scope="session")
def thurber(fit_dir):
    return build_problem_module(THURBER, fit_dir)


@pytest.fixture(scope="session")
def product(fit_dir):
    """Two weights that only appear as a product: y = a*b*x."""
    a, b, x, y = sp.symbols("a b x y")
    xs = np.arange(1.0, 7.0)
    return compile_model(a * b * x, None, [a, b], [x], [y], residual=a * b * x - y, name="product", init=[1.0, 1.0],
                         X=xs, Y=2.5 * xs + np.array([0.1, -0.1, 0.1, -0.1, 0.1, -0.1]), out_dir=fit_dir)  # fmt: skip


# --- NIST StRD through the compiler -------------------------------------------------------------------------------


NIST_CASES = [(MISRA1A, 1), (MISRA1A, 2), (BOXBOD, 1), (BOXBOD, 2), (THURBER, 1), (THURBER, 2)]


@pytest.mark.peers
@pytest.mark.parametrize(("problem", "start"), NIST_CASES, ids=lambda v: getattr(v, "name", f"start{v}"))
def test_nist_certified_values_through_the_compiler(request, problem, start):
    """Parameters to 6 significant digits, standard errors to 4, RSS to 1e-9, from both of NIST's starts:
    wherever SciPy's MINPACK gets there, and (observed) where it does not (BoxBOD from Start 1)."""
    module = request.getfixturevalue("thurber" if problem is THURBER else "misra")
    fit = module.least_squares(start_of(problem, start), *problem_data(problem), **TIGHT)
    theirs, _ = scipy_fit(problem, start, max_iter=TIGHT["max_iter"], tol=TIGHT["xtol"])
    assert fit.converged, fit.status
    assert digits(fit.w, problem.certified) >= 6
    assert digits(fit.stderr, problem.certified_stderr) >= 4
    assert 2 * fit.cost == pytest.approx(problem.certified_rss, rel=1e-9)
    if digits(theirs.x, problem.certified) >= 6:
        np.testing.assert_allclose(fit.w, theirs.x, rtol=1e-7)


def test_module_defaults_are_the_spec_data_and_start(misra):
    fit = misra.least_squares()  # X, Y and INIT from the spec: Misra1a from Start 1
    assert digits(fit.w, MISRA1A.certified) >= 6


def test_weights_only_in_a_product_give_singular_not_nan(product):
    fit = product.least_squares()
    assert fit.status == "singular"
    assert np.all(np.isfinite(fit.w)) and np.all(np.isfinite(fit.stderr)) and np.all(np.isfinite(fit.covariance))
    x, y = product.X[:, 0], product.Y[:, 0]
    assert fit.w[0] * fit.w[1] == pytest.approx((x @ y) / (x @ x), rel=1e-7)  # the least-squares slope


# --- exact Jacobians and Hessians ----------------------------------------------------------------------------------


A, B, C, X1, Y1, Y2 = sp.symbols("a b c x y1 y2", real=True)
TWO_RESIDUALS = [A * sp.exp(-B * X1) + C - Y1, A * sp.sin(C * X1) + B * X1**2 - Y2]
W_SMALL = np.array([1.3, 0.7, -0.4])


@pytest.fixture(scope="session", params=["diff", "reverse"])
def small(request, fit_dir):
    """Three weights, two residuals per sample, derived by `diff` and by reverse mode (forward-over-reverse
    Hessian)."""
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 2, size=(7, 1))
    Y = rng.normal(size=(7, 2))
    return compile_model([A * sp.exp(-B * X1) + C], None, [A, B, C], [X1], [Y1, Y2], residual=TWO_RESIDUALS,
                         name=f"two_residuals_{request.param}", X=X, Y=Y, gradient=request.param, out_dir=fit_dir,
                         hessian=True)  # fmt: skip


def _subs(expr, w, x, y):
    return float(expr.subs({A: w[0], B: w[1], C: w[2], X1: x[0], Y1: y[0], Y2: y[1]}))


@pytest.mark.slow
def test_residuals_and_jacobian_equal_sympy_and_central_differences(small):
    r, J = small.residuals(W_SMALL), small.jacobian(W_SMALL)
    assert r.shape == (7, 2) and J.shape == (14, 3)
    for n, (x, y) in enumerate(zip(small.X, small.Y)):
        for k, residual in enumerate(TWO_RESIDUALS):
            assert r[n, k] == pytest.approx(_subs(residual, W_SMALL, x, y), rel=1e-13, abs=1e-14)
            expected = [_subs(sp.diff(residual, p), W_SMALL, x, y) for p in (A, B, C)]
            np.testing.assert_allclose(J[2 * n + k], expected, rtol=1e-12, atol=1e-14)
    h = 1e-6
    for j in range(3):
        up, down = W_SMALL.copy(), W_SMALL.copy()
        up[j] += h
        down[j] -= h
        differences = (small.residuals(up) - small.residuals(down)).ravel() / (2 * h)
        np.testing.assert_allclose(J[:, j], differences, rtol=0, atol=1e-8)


@pytest.mark.slow
def test_hessian_equals_sympy_and_central_differences(small):
    H = small.hessian(W_SMALL)
    loss = sum(r**2 for r in TWO_RESIDUALS)
    expected = np.mean(
        [[[_subs(sp.diff(loss, p, q), W_SMALL, x, y) for q in (A, B, C)] for p in (A, B, C)]
         for x, y in zip(small.X, small.Y)], axis=0,
    )  # fmt: skip
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-13)
    h = 1e-5
    for j in range(3):
        up, down = W_SMALL.copy(), W_SMALL.copy()
        up[j] += h
        down[j] -= h
        column = (small.loss_and_grad(up)[1] - small.loss_and_grad(down)[1]) / (2 * h)
        np.testing.assert_allclose(H[:, j], column, rtol=0, atol=1e-8)


@pytest.fixture(scope="module")
def seed_with_hessian(tmp_path_factory):
    return load_module(build(seed_model(), tmp_path_factory.mktemp("hessian"), hessian=True).path)


@pytest.mark.slow
def test_the_seeds_hessian_equals_sympy(seed_with_hessian):
    seed_module = seed_with_hessian
    model = seed_model()
    H = seed_module.hessian()
    values = dict(zip(model.params, seed_module.INIT)) | dict(
        zip(model.inputs + model.targets, [*seed_module.X[0], *seed_module.Y[0]])
    )
    expected = [[float(sp.diff(model.loss, p, q).subs(values)) for q in model.params] for p in model.params]
    np.testing.assert_allclose(H, expected, rtol=1e-10, atol=1e-14)


def test_hessian_beyond_the_threshold_is_one_clear_error(fit_dir):
    ps = sp.symbols("p0:17")
    x, y = sp.symbols("x y")
    model = make_model("wide", sum(p * x**i for i, p in enumerate(ps)), None, ps, [x], [y],
                       residual=sum(p * x**i for i, p in enumerate(ps)) - y)  # fmt: skip
    module = load_module(build(model, fit_dir, hessian=True).path)
    with pytest.raises(
        NotImplementedError, match=r"not emitted: this model has 17 parameters, more than HESSIAN_MAX_PARAMS = 16"
    ):
        module.hessian(np.zeros(17), [[1.0]], [[2.0]])
    assert hasattr(module, "least_squares")  # the Jacobian's threshold is higher


def test_a_module_built_without_the_hessian_says_how_to_get_it(seed_module):
    with pytest.raises(NotImplementedError, match=r"built without the Hessian: build it with --hessian"):
        seed_module.hessian()
    with pytest.raises(
        ValueError, match=r"optimizer 'newton' is not available: this module was built without the Hessian"
    ):
        seed_module.train(optimizer="newton", max_iter=1)


# --- Newton's method -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def logistic(fit_dir):
    """Logistic regression on overlapping classes: a strictly convex loss."""
    a, b, x, y = sp.symbols("a b x y")
    rng = np.random.default_rng(3)
    xs = rng.normal(size=40)
    ys = (xs + rng.normal(scale=1.0, size=40) > 0.3).astype(float)
    z = a * x + b
    return compile_model(1 / (1 + sp.exp(-z)), sp.log(1 + sp.exp(z)) - y * z, [a, b], [x], [y], name="logistic_newton",
                         X=xs, Y=ys, init=[0.0, 0.0], out_dir=fit_dir, hessian=True)  # fmt: skip


def numpy_newton(X, y, iterations=30):
    """Textbook Newton for logistic regression: g = A^T (p - y)/N, H = A^T diag(p (1 - p)) A/N."""
    design = np.column_stack([X[:, 0], np.ones(len(X))])
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-design @ w))
        g = design.T @ (p - y) / len(y)
        H = (design * (p * (1 - p))[:, None]).T @ design / len(y)
        w = w - np.linalg.solve(H, g)
    return w, H


@pytest.mark.slow
def test_newton_converges_on_a_convex_problem_as_numpy_newton_does(logistic):
    result = logistic.train(update="newton", max_iter=50, tol=1e-12)
    assert result.status == "converged" and result.iterations < 15
    expected, H = numpy_newton(logistic.X, logistic.Y[:, 0])
    np.testing.assert_allclose(result.w, expected, rtol=1e-10)
    np.testing.assert_allclose(logistic.hessian(result.w), H, rtol=1e-10)
    assert np.all(np.diff(result.loss_history) <= 1e-15)  # a descent method: the line search never goes up


@pytest.mark.slow
def test_newton_runs_where_the_module_default_lr_is_not_the_registry_default(seed_with_hessian):
    """The seed's training settings set lr = 0.3 (the registry's default is 0.1); newton reads no lr, so the
    untouched default must pass and a changed one must be refused in one line."""
    seed_module = seed_with_hessian
    assert seed_module.DEFAULTS["lr"] == 0.3
    result = seed_module.train(optimizer="newton", max_iter=3)
    first_loss = seed_module.loss(seed_module.INIT)
    assert result.loss_history[-1] < first_loss and np.all(np.diff(result.loss_history) <= 1e-15)
    with pytest.raises(ValueError, match="lr does not apply to optimizer 'newton'"):
        seed_module.train(optimizer="newton", lr=0.5, max_iter=1)


def test_cholesky_solves_and_refuses_indefinite_matrices(logistic):
    A = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    x = np.zeros(3)
    assert logistic._cholesky_solve(A, b, x)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-13)
    assert not logistic._cholesky_solve(np.array([[1.0, 2.0], [2.0, 1.0]]), b[:2], x[:2])


# --- residual models from specs, MLPs and the API ------------------------------------------------------------------


def test_mean_squared_error_networks_are_residual_models_with_the_same_loss():
    for layers in ([2, 3, 1], [2, 2, 3]):
        model = mlp_model("net", layers, output_activation="identity", loss="mean_squared_error", init="normal")
        assert len(model.residuals) == layers[-1]
        values = {s: v for s, v in zip(model.params + model.inputs + model.targets, np.linspace(-1, 1, 40))}
        total = sum(r**2 for r in model.residuals)
        assert float(total.subs(values)) == pytest.approx(float(model.loss.subs(values)), rel=1e-13)
    one = mlp_model("net", [2, 3, 1], output_activation="identity", loss="mean_squared_error")
    assert sp.simplify(one.residuals[0] - (one.outputs[0] - one.targets[0])) == 0  # one output: f - y itself


def test_a_loss_and_a_residual_in_one_spec_is_one_clear_error(tmp_path):
    spec = (EXAMPLES / "misra1a.toml").read_text() + "\n"
    spec = spec.replace('residual = "', 'loss = "(b1 - y)**2"\nresidual = "')
    path = tmp_path / "both.toml"
    path.write_text(spec)
    with pytest.raises(SymcompileError, match="give either loss or residual"):
        load_spec(path)


def test_the_residual_key_makes_a_residual_model():
    model = load_spec(EXAMPLES / "misra1a.toml")
    b1, b2, x, y = model.params + model.inputs + model.targets
    assert model.residuals == (b1 * (1 - sp.exp(-b2 * x)) - y,)
    assert sp.expand(model.loss - model.residuals[0] ** 2) == 0


# --- the fit command -----------------------------------------------------------------------------------------------


def test_fit_prints_parameters_with_standard_errors(misra, fit_dir, capsys):
    assert main(["fit", str(EXAMPLES / "misra1a.toml"), "--out-dir", str(fit_dir)]) == 0
    out = capsys.readouterr().out
    found = {name: (value, error) for name, value, error in re.findall(r"^  (b\d)\s+(\S+)\s+\+- (\S+)", out, re.M)}
    assert digits([float(found["b1"][0]), float(found["b2"][0])], MISRA1A.certified) >= 6
    stderr = [float(found["b1"][1]), float(found["b2"][1])]
    assert digits(stderr, MISRA1A.certified_stderr) >= 4
    rss = float(re.search(r"residual sum of squares (\S+)", out).group(1))
    assert rss == pytest.approx(MISRA1A.certified_rss, rel=1e-9)
    assert re.search(r"iterations \d+ \((ftol|xtol|ftol\+xtol|gtol)\)", out)
    assert "built" not in out  # the session's module was up to date


def test_fit_plot_draws_a_png(misra, fit_dir, capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="needs the plot extra (pip install '.[plot]')")  # the plot extra
    plot = tmp_path / "fit.png"
    assert main(["fit", str(EXAMPLES / "misra1a.toml"), "--out-dir", str(fit_dir), "--plot", str(plot)]) == 0
    assert f"plot       {plot}" in capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_of_a_model_without_residuals_is_one_line(capsys, fit_dir):
    assert main(["fit", str(EXAMPLES / "logistic.toml"), "--out-dir", str(fit_dir)]) == 2  # binary cross-entropy
    err = capsys.readouterr().err
    assert err.startswith("symcompile: error: logistic is not a residual model") and err.count("\n") == 1
    assert not (fit_dir / "logistic.py").exists()


def test_fitting_bench_tables(misra):
    """The bench's table and tally on one problem, timed once, with the session's compiler-built module."""
    from benchmarks.bench import lm_bench

    settings = {"max_iter": 200, "xtol": 1e-10, "ftol": 1e-10, "gtol": 1e-10}
    cases = lm_bench.bench_cases({"Misra1a": misra}, settings, repeats=1, problems=[MISRA1A])
    assert [(case.problem, case.start) for case in cases] == [("Misra1a", 1), ("Misra1a", 2)]
    assert all(case.fits["compiled"].digits >= 6 for case in cases)
    lines = lm_bench.table_lines(cases)
    assert len(lines) == 4 and lines[2].startswith("| Misra1a | lower | 1 | ")
    assert lm_bench.solved_line(cases).startswith("solved (parameters to 6 significant digits): compiled 2/2")
