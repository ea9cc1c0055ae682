"""The least-squares solver's options (symcompile/runtime/fit_options.py): fixed weights, bounds, sigma, robust losses.

References: SciPy's least_squares (MINPACK `lm` on the problem with the fixed weights substituted; `trf` with bounds
and robust losses) and curve_fit (sigma 1-D and 2-D), given the module's own residuals and Jacobian, so that only
the solvers differ. One generated module per formula, built once for this file.
"""

import numpy as np
import pytest
import sympy as sp

from symcompile.pipeline import compile_model

a, b, c, x, y = sp.symbols("a b c x y")
TIGHT = {"max_iter": 2000, "xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15}
SCIPY_TIGHT = {"xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15, "max_nfev": 2000}
LOSSES = ["soft_l1", "huber", "cauchy", "arctan"]


@pytest.fixture(scope="module")
def decay(tmp_path_factory):
    """y = a exp(-b x) + c."""
    model = a * sp.exp(-b * x) + c
    return compile_model(model, None, [a, b, c], [x], [y], name="decay_options", residual=model - y,
                         out_dir=tmp_path_factory.mktemp("options"))  # fmt: skip


def decay_data(outliers=0.0, seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = np.linspace(0.0, 4.0, n)
    Y = 2.0 * np.exp(-1.3 * X) + 0.5 + 0.02 * rng.standard_normal(n)
    if outliers:
        hit = rng.choice(n, int(outliers * n), replace=False)
        Y[hit] += rng.choice([-1.0, 1.0], hit.size) * rng.uniform(0.5, 2.0, hit.size)
    return X, Y


def scipy_least_squares(module, X, Y, w0, **options):
    optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    return optimize.least_squares(lambda w: module.residuals(w, X, Y), w0, jac=lambda w: module.jacobian(w, X, Y),
                                  **options)  # fmt: skip


W0 = np.array([1.0, 1.0, 0.2])


def test_no_options_and_neutral_options_are_the_plain_fit_bit_for_bit(decay):
    X, Y = decay_data()
    plain = decay.least_squares(W0, X, Y)
    neutral = decay.least_squares(W0, X, Y, bounds=(-np.inf, np.inf), fixed=[], loss="linear", f_scale=1.0)
    for field, value in plain._asdict().items():
        assert np.array_equal(value, getattr(neutral, field)), field
    np.testing.assert_array_equal(plain.fun, decay.residuals(plain.w, X, Y))
    np.testing.assert_array_equal(plain.jac, decay.jacobian(plain.w, X, Y))


@pytest.mark.peers
@pytest.mark.parametrize("fixed", [[2], np.array([False, False, True])], ids=["indices", "mask"])
def test_fixed_weights_take_minpacks_steps_on_the_problem_without_them(decay, fixed):
    """Fixing c is lmder on (a, b) alone: SciPy's MINPACK on that problem takes the same evaluations to the same w."""
    X, Y = decay_data()
    fit = decay.least_squares(W0, X, Y, fixed=fixed)

    def full(free):
        return np.array([free[0], free[1], W0[2]])

    optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    theirs = optimize.least_squares(lambda p: decay.residuals(full(p), X, Y), W0[:2], method="lm", x_scale="jac",
                                    jac=lambda p: decay.jacobian(full(p), X, Y)[:, :2],
                                    xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=200)  # fmt: skip
    assert fit.w[2] == W0[2] and fit.converged
    assert fit.iterations == theirs.nfev
    np.testing.assert_allclose(fit.w[:2], theirs.x, rtol=1e-12)
    J = theirs.jac
    expected = np.linalg.inv(J.T @ J) * (theirs.fun @ theirs.fun / (X.size - 2))
    np.testing.assert_allclose(fit.covariance[:2, :2], expected, rtol=1e-7)
    assert not fit.covariance[2].any() and not fit.covariance[:, 2].any() and fit.stderr[2] == 0.0
    assert not fit.jac[:, 2].any()


@pytest.mark.parametrize(
    ("lower", "upper"),
    [([0, 0, 0.6], [10, 10, 1]), ([0, 1.5, -1], [10, 5, 1]), ([-np.inf, -np.inf, -np.inf], [1.8, np.inf, np.inf]),
     (0.4, [2.5, 1.0, 0.55])],
    ids=["two-sided", "lower-active", "upper-only", "scalar-lower"],
)  # fmt: skip
def test_bounds_active_at_the_solution_give_scipys_trf_solution(decay, lower, upper):
    X, Y = decay_data()
    w0 = np.clip(np.array([1.0, 1.6, 0.7]), np.broadcast_to(lower, 3), np.broadcast_to(upper, 3))
    fit = decay.least_squares(w0, X, Y, bounds=(lower, upper), **TIGHT)
    theirs = scipy_least_squares(decay, X, Y, w0, bounds=(lower, upper), method="trf", **SCIPY_TIGHT)
    assert fit.converged, fit.status
    assert np.any(theirs.active_mask != 0)  # a bound is active at the solution
    np.testing.assert_allclose(fit.w, theirs.x, rtol=0, atol=1e-6)
    assert fit.cost == pytest.approx(theirs.cost, rel=1e-9)
    assert np.all(fit.w >= np.broadcast_to(lower, 3)) and np.all(fit.w <= np.broadcast_to(upper, 3))
    np.testing.assert_allclose(fit.jac, decay.jacobian(fit.w, X, Y), rtol=1e-12)  # in the user's weights


@pytest.mark.parametrize("f_scale", [0.05, 0.3, 2.0])
@pytest.mark.parametrize("loss", LOSSES)
def test_robust_losses_on_ten_percent_outliers_equal_scipys(decay, loss, f_scale):
    X, Y = decay_data(outliers=0.1)
    fit = decay.least_squares(W0, X, Y, loss=loss, f_scale=f_scale, **TIGHT)
    theirs = scipy_least_squares(decay, X, Y, W0, loss=loss, f_scale=f_scale, method="trf", **SCIPY_TIGHT)
    assert fit.converged, fit.status
    np.testing.assert_allclose(fit.w, theirs.x, rtol=0, atol=1e-6)
    assert fit.cost == pytest.approx(theirs.cost, rel=1e-9)
    np.testing.assert_allclose(fit.fun, theirs.fun, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.jac, theirs.jac, rtol=0, atol=1e-5)
    if f_scale < 0.5:  # below the outliers' size, they count less than in a plain fit
        plain = decay.least_squares(W0, X, Y)
        assert np.abs(fit.w - [2.0, 1.3, 0.5]).max() < np.abs(plain.w - [2.0, 1.3, 0.5]).max()


@pytest.mark.parametrize("loss", LOSSES)
def test_robust_losses_are_smooth_at_zero_residuals(decay, loss):
    """dg/df is rho'(0) = 1 at f = 0 (not 0/0): data on the curve are fitted exactly, with a finite Jacobian."""
    X = np.linspace(0.0, 4.0, 20)
    fit = decay.least_squares(W0, X, 2.0 * np.exp(-1.3 * X) + 0.5, loss=loss)
    assert fit.converged and np.all(np.isfinite(fit.jac))
    np.testing.assert_allclose(fit.w, [2.0, 1.3, 0.5], rtol=1e-8)


def covariance_sigma(n, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) * 0.01
    return A @ A.T + np.diag(rng.uniform(0.01, 0.05, n) ** 2)


@pytest.mark.peers
@pytest.mark.parametrize("kind", ["1-D", "2-D"])
def test_sigma_gives_curve_fits_popt_and_pcov(decay, kind):
    optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    X, Y = decay_data()
    sigma = np.linspace(0.01, 0.05, X.size) if kind == "1-D" else covariance_sigma(X.size)
    fit = decay.least_squares(W0, X, Y, sigma=sigma, **TIGHT)
    popt, pcov = optimize.curve_fit(lambda x, a, b, c: a * np.exp(-b * x) + c, X, Y, W0, sigma=sigma,
                                    jac=lambda x, *p: decay.jacobian(np.array(p), x, Y), xtol=1e-15, ftol=1e-15,
                                    gtol=1e-15, maxfev=2000)  # fmt: skip
    np.testing.assert_allclose(fit.w, popt, rtol=1e-8)
    # to 1e-8 of the matrix's scale: its small off-diagonal entries carry the rounding of the larger ones
    np.testing.assert_allclose(fit.covariance, pcov, rtol=1e-8, atol=1e-8 * np.abs(pcov).max())
    L = np.linalg.cholesky(np.diag(sigma**2) if kind == "1-D" else sigma)
    np.testing.assert_allclose(fit.fun, np.linalg.solve(L, decay.residuals(fit.w, X, Y)), rtol=1e-10, atol=1e-12)


def test_one_d_sigma_is_the_diagonal_covariance(decay):
    X, Y = decay_data()
    sigma = np.linspace(0.01, 0.05, X.size)
    one = decay.least_squares(W0, X, Y, sigma=sigma, **TIGHT)
    two = decay.least_squares(W0, X, Y, sigma=np.diag(sigma**2), **TIGHT)
    np.testing.assert_allclose(one.w, two.w, rtol=1e-12)
    np.testing.assert_allclose(one.covariance, two.covariance, rtol=1e-9)


@pytest.mark.peers
def test_everything_composes_as_scipys_trf_on_the_same_problem(decay):
    """fixed + bounds + 2-D sigma + loss against SciPy's trf on the whitened residuals of the free weights."""
    optimize = pytest.importorskip("scipy.optimize", reason="needs the test extra (pip install '.[test]')")
    X, Y = decay_data(outliers=0.1, seed=3)
    sigma = covariance_sigma(X.size, seed=4)
    L = np.linalg.cholesky(sigma)
    w0 = np.array([1.0, 1.0, 0.45])  # c fixed at 0.45; b bounded above at 1.2 (active)
    fit = decay.least_squares(w0, X, Y, fixed=[2], bounds=([0, 0, 0], [5, 1.2, 1]), sigma=sigma, loss="cauchy",
                              f_scale=2.0, **TIGHT)  # fmt: skip

    def full(p):
        return np.array([p[0], p[1], w0[2]])

    theirs = optimize.least_squares(
        lambda p: np.linalg.solve(L, decay.residuals(full(p), X, Y)), w0[:2],
        jac=lambda p: np.linalg.solve(L, decay.jacobian(full(p), X, Y)[:, :2]),
        bounds=([0, 0], [5, 1.2]), loss="cauchy", f_scale=2.0, method="trf", **SCIPY_TIGHT,
    )  # fmt: skip
    assert fit.converged and fit.w[2] == w0[2] and theirs.active_mask[1] == 1
    np.testing.assert_allclose(fit.w[:2], theirs.x, rtol=0, atol=1e-6)
    assert fit.cost == pytest.approx(theirs.cost, rel=1e-9)
    np.testing.assert_allclose(fit.jac[:, :2], theirs.jac, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"fixed": [3]}, ValueError, "indices go from 0 to 2"),
        ({"fixed": [0.5]}, TypeError, "fixed must be"),
        ({"fixed": [True, False]}, ValueError, "one entry per weight"),
        ({"fixed": [0, 1, 2]}, ValueError, "every weight is fixed"),
        ({"bounds": (1, 0)}, ValueError, "strictly less"),
        ({"bounds": ([0, 0], [1, 1])}, ValueError, "one per weight"),
        ({"bounds": (0, np.nan)}, ValueError, "NaN"),
        ({"bounds": (2, 3)}, ValueError, r"w0\[0\] = 1 is outside its bounds \[2, 3\]"),
        ({"bounds": 5}, TypeError, "pair"),
        ({"loss": "l1"}, ValueError, "loss must be one of"),
        ({"loss": len}, ValueError, "loss must be one of"),
        ({"f_scale": 0}, ValueError, "f_scale"),
        ({"f_scale": "1"}, TypeError, "f_scale"),
        ({"sigma": np.zeros(40)}, ValueError, "finite and > 0"),
        ({"sigma": np.full(40, np.inf)}, ValueError, "finite and > 0"),
        ({"sigma": np.ones(39)}, ValueError, r"shape \(40,\)"),
        ({"sigma": -np.eye(40)}, ValueError, "positive definite"),
        ({"sigma": np.triu(np.ones((40, 40)))}, ValueError, "symmetric"),
        ({"sigma": np.ones((40, 39))}, ValueError, r"\(40, 40\)"),
        ({"sigma": "big"}, TypeError, "sigma"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors(decay, options, error, message):
    X, Y = decay_data()
    with pytest.raises(error, match=message) as raised:
        decay.least_squares(W0, X, Y, **options)
    assert "\n" not in str(raised.value)


def test_a_start_on_a_bound_moves_inside_as_scipys_trf_does(decay):
    """SciPy accepts w0 on a bound and starts 1e-10 inside; so do we (on the bound, the transform could not move)."""
    X, Y = decay_data()
    w0 = np.array([1.0, 1.0, 0.0])
    fit = decay.least_squares(w0, X, Y, bounds=([0, 0, 0], [10, 10, 10]), **TIGHT)
    theirs = scipy_least_squares(decay, X, Y, w0, bounds=([0, 0, 0], [10, 10, 10]), method="trf", **SCIPY_TIGHT)
    np.testing.assert_allclose(fit.w, theirs.x, rtol=0, atol=1e-6)


def test_fewer_residuals_than_free_weights_is_refused_fixed_ones_do_not_count(decay):
    X, Y = decay_data(n=2)
    with pytest.raises(ValueError, match="2 residuals cannot determine 3 weights"):
        decay.least_squares(W0, X, Y)
    fit = decay.least_squares(W0, X, Y, fixed=[2])
    assert fit.converged and fit.cost < 1e-20
