"""Stable numerics: the rewrites keep values equal, and keep them finite where the textbook formulas overflow.

References: the blog's own formula and its SymPy `diff` derivatives evaluated
with mpmath at enough digits to be exact to 50 (the same formula in float64
gives inf or nan there), SymPy `evalf` at 30 digits, and mpmath for the helpers.
"""

import mpmath
import numpy as np
import pytest
import sympy as sp

from references import sympy_evaluated
from symcompile import seed
from symcompile.differentiate import gradient
from symcompile.mlp import mlp_model
from symcompile.pipeline import build
from symcompile.rewrite import rewrite
from symcompile.stable import logsumexp, mpmath_functions, sigmoid, softplus
from symcompile.writer import load_module

TINY = np.finfo(np.float64).tiny  # smallest normal double


def assert_matches_exact(got, exact, rel=1e-9):
    """Each float within `rel` of its exact value, or, where that is below the normal doubles, below them too."""
    got = np.atleast_1d(np.asarray(got, dtype=float))
    assert len(got) == len(exact)
    for k, (value, truth) in enumerate(zip(got, exact)):
        assert np.isfinite(value), f"component {k}: {value}"
        if abs(truth) >= TINY:
            assert abs(mpmath.mpf(value) - truth) <= rel * abs(truth), f"component {k}: {value!r} vs {truth}"
        else:  # e.g. exp(-1600): double precision has no such number, so 0 (or a subnormal) is right
            assert abs(value) <= TINY, f"component {k}: {value!r} vs {truth}"


def exact_values(mpmath_function, args, digits):
    """mpmath values good to 50 digits: evaluated at `digits` and again at 40 more, and checked to agree."""
    values = []
    for dps in (digits, digits + 40):
        with mpmath.workdps(dps):
            values.append(mpmath_function(*[_to_mpf(a) for a in args]))
    for coarse, fine in zip(*values):
        assert abs(coarse - fine) <= mpmath.mpf(10) ** -50 * abs(fine), "reference not converged"
    return values[1]


def _to_mpf(value):
    """Numbers, or nested sequences of them, as mpf: the exact binary values the kernel sees."""
    if np.ndim(value) == 0:
        return mpmath.mpf(float(value))
    return [_to_mpf(v) for v in value]


# ----------------------------------------------------------------------------- the seed at extreme weights

ALTERNATING = np.array([1.0, -1, 1, -1, 1, -1, 1])
EXTREME_WEIGHTS = {
    "all +40": np.full(7, 40.0),
    "all +400": np.full(7, 400.0),
    "all -400": np.full(7, -400.0),
    "alternating 40": 40 * ALTERNATING,
    "alternating 400": 400 * ALTERNATING,
    "-alternating 400": -400 * ALTERNATING,
    "random signs 400": 400 * np.random.default_rng(6).choice([-1.0, 1.0], 7),
}


@pytest.fixture(scope="module")
def blog_formula():
    """The blog's loss and its seven diff() derivatives, as written (NumPy's float e), in float64 and in mpmath."""
    x1, x2, y = sp.symbols("x1 x2 y")
    params = sp.symbols(seed.PARAM_NAMES)
    loss = seed.binary_cross_entropy(seed.network_output(x1, x2, *params), y)
    outputs = [loss, *(sp.diff(loss, p) for p in params)]
    args = (params, x1, x2, y)
    return sp.lambdify(args, outputs, "numpy"), sp.lambdify(args, outputs, "mpmath")


@pytest.mark.slow
@pytest.mark.parametrize("target", [0.0, 1.0])
@pytest.mark.parametrize("case", EXTREME_WEIGHTS)
def test_seed_at_extreme_weights_is_exact_where_the_naive_formula_is_not_finite(
    seed_module, blog_formula, case, target
):
    w, (x1, x2) = EXTREME_WEIGHTS[case], seed.SAMPLE
    in_float64, in_mpmath = blog_formula
    with np.errstate(all="ignore"):
        naive = np.array(in_float64(tuple(np.float64(w)), np.float64(x1), np.float64(x2), np.float64(target)))
    assert not np.all(np.isfinite(naive)), f"the blog's formula in float64 gave {naive}"

    loss, grad = seed_module.loss_and_grad(w, [[x1, x2]], [[target]])
    digits = 60 + int(2 * np.max(np.abs(w)))  # 1 - f5 cancels about |z5|/ln(10) <= 4*max|w|/2.3 digits
    assert_matches_exact([loss, *grad], exact_values(in_mpmath, (w, x1, x2, target), digits))


@pytest.mark.parametrize("case", ["all +400", "all -400", "random signs 400"])
def test_seed_output_at_extreme_weights_is_exact(seed_module, case):
    w = EXTREME_WEIGHTS[case]
    exact = exact_values(lambda *a: [seed.network_output(*a)], (*seed.SAMPLE, *w), 60 + int(2 * np.max(np.abs(w))))
    assert_matches_exact(seed_module.forward(w), exact)


@pytest.mark.slow
def test_training_from_extreme_weights_stays_finite_and_descends(seed_module):
    for update in ("sequential", "simultaneous"):
        result = seed_module.train(np.full(7, -400.0), max_iter=200, update=update)
        assert result.status == "max_iter" and result.iterations == 200
        assert np.all(np.isfinite(result.w)) and np.all(np.isfinite(result.loss_history))
        assert result.loss_history[0] == pytest.approx(800.0, rel=1e-12)
        assert result.loss_history[-1] < result.loss_history[0] - 100


# ----------------------------------------------------------------------------- the helpers themselves

EDGE_ARGUMENTS = [-1000.0, -745.5, -400.0, -37.5, -1.0, -1e-9, 0.0, 1e-9, 1.0, 37.5, 400.0, 709.9, 1000.0]


def test_sigmoid_and_softplus_helpers_are_exact_everywhere(seed_module):
    for z in EDGE_ARGUMENTS:
        with mpmath.workdps(50):
            exact_sigmoid = 1 / (1 + mpmath.exp(-mpmath.mpf(z)))
            exact_softplus = mpmath.log1p(mpmath.exp(mpmath.mpf(z)))
        assert_matches_exact([seed_module._sigmoid(z)], [exact_sigmoid], rel=1e-15)
        assert_matches_exact([seed_module._softplus(z)], [exact_softplus], rel=1e-15)
    assert seed_module._sigmoid(np.inf) == 1.0 and seed_module._sigmoid(-np.inf) == 0.0
    assert seed_module._softplus(np.inf) == np.inf and seed_module._softplus(-np.inf) == 0.0


@pytest.fixture(scope="module")
def softmax_module(tmp_path_factory):
    """A 2-3 softmax classifier with softmax cross-entropy (the MLP builder's), compiled."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (4, 2))
    Y = np.eye(3)[[0, 1, 2, 1]]
    model = mlp_model("softmax_2_3", [2, 3], output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=Y)
    return model, load_module(build(model, tmp_path_factory.mktemp("softmax")).path)


def test_logsumexp_helper_is_exact_everywhere(softmax_module):
    _, module = softmax_module
    for values in [(1000.0, 999.0, -1000.0), (-1000.0, -1001.0, -1000.5), (0.0, 0.0, 0.0), (1e-9, -3.0, 2.0)]:
        with mpmath.workdps(50):
            exact = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in values))
        assert_matches_exact([module._logsumexp(values)], [exact], rel=1e-15)
    assert module._logsumexp((-np.inf, -np.inf, -np.inf)) == -np.inf
    assert module._logsumexp((np.inf, 0.0, 1.0)) == np.inf


@pytest.fixture(scope="module")
def softmax_formula(softmax_module):
    """The builder's loss exactly as written (exps / sum of exps), summed over the module's samples."""
    model, module = softmax_module
    args = (model.params, model.inputs, model.targets)
    formulas = [model.loss, *(sp.diff(model.loss, p) for p in model.params)]
    per_sample_float64 = sp.lambdify(args, formulas, "numpy")
    per_sample_mpmath = sp.lambdify(args, formulas, "mpmath")

    def mean_over_samples(per_sample, total):
        def mean(w, X, Y):
            rows = [per_sample(w, x, y) for x, y in zip(X, Y)]
            return [total(column) / len(rows) for column in zip(*rows)]

        return mean

    return mean_over_samples(per_sample_float64, sum), mean_over_samples(per_sample_mpmath, mpmath.fsum)


@pytest.mark.slow
def test_softmax_cross_entropy_at_extreme_logits_is_exact_where_the_naive_formula_is_not_finite(
    softmax_module, softmax_formula
):
    model, module = softmax_module
    in_float64, in_mpmath = softmax_formula
    w = 400 * np.random.default_rng(8).choice([-1.0, 1.0], len(model.params))
    with np.errstate(all="ignore"):
        naive = np.array(in_float64(w, module.X, module.Y))
    assert not np.all(np.isfinite(naive)), f"the formula in float64 gave {naive}"
    loss, grad = module.loss_and_grad(w)
    assert_matches_exact([loss, *grad], exact_values(in_mpmath, (w, module.X, module.Y), 60 + 3 * 400))
    softmax = sp.lambdify((model.params, model.inputs), list(model.outputs), "mpmath")
    for x, probabilities in zip(module.X, module.forward(w)):
        assert_matches_exact(probabilities, exact_values(softmax, (w, x), 60 + 3 * 400))


def test_softmax_cross_entropy_equals_the_naive_formula_where_that_is_finite(softmax_module, softmax_formula):
    model, module = softmax_module
    in_float64, _ = softmax_formula
    for seed_value in range(3):
        w = np.random.default_rng(seed_value).normal(0, 1.5, len(model.params))
        naive = np.array(in_float64(w, module.X, module.Y))
        loss, grad = module.loss_and_grad(w)
        assert loss == pytest.approx(naive[0], rel=1e-12)
        np.testing.assert_allclose(grad, naive[1:], rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------- the rewrites are identities

z, u = sp.symbols("z u")


def _user_formula_model():
    """Stable-rewrite patterns written by hand: exp(z)/(1+exp(z)), log(1+exp(z)), 1 - 1/(1+exp(-z))."""
    from symcompile.model import make_model

    a, b, x, y = sp.symbols("a b x y")
    zz = a * x + b
    p = sp.exp(zz) / (1 + sp.exp(zz))
    loss = -y * sp.log(p) - (1 - y) * sp.log(1 - 1 / (1 + sp.exp(-zz))) + sp.log(1 + sp.exp(a - b)) / 10
    return make_model("by_hand", p, loss, [a, b], [x], [y])


REWRITE_CASES = {
    "seed": (seed.seed_model, {"logistic_to_sigmoid", "sigmoid_complement", "log_sigmoid_to_softplus"}),
    "sigmoid BCE, softplus hidden": (
        lambda: mlp_model("m1", [2, 2, 1], hidden_activation="softplus"),
        {"logistic_to_sigmoid", "sigmoid_complement", "log_sigmoid_to_softplus", "log_one_plus_exp_to_softplus"},
    ),
    "softmax cross-entropy": (
        lambda: mlp_model("m2", [2, 2, 3], output_activation="softmax", loss="softmax_cross_entropy"),
        {"log_softmax_to_logsumexp", "softmax_to_logsumexp"},
    ),
    "softmax squared error": (
        lambda: mlp_model("m3", [2, 3], output_activation="softmax", loss="mean_squared_error"),
        {"softmax_to_logsumexp"},
    ),
    "by hand": (
        _user_formula_model,
        {
            "exp_ratio_to_sigmoid",
            "logistic_to_sigmoid",
            "sigmoid_complement",
            "log_sigmoid_to_softplus",
            "log_one_plus_exp_to_softplus",
        },
    ),  # fmt: skip
}


@pytest.mark.slow
@pytest.mark.parametrize("case", REWRITE_CASES)
def test_rewritten_model_equals_the_original_and_so_does_its_gradient(case):
    make, expected_rules = REWRITE_CASES[case]
    original = make()
    rewritten, report = rewrite(original)
    assert expected_rules <= set(report.applied)
    symbols = original.params + original.inputs + original.targets
    before = [original.loss, *original.outputs, *(sp.diff(original.loss, p) for p in original.params)]
    after = [rewritten.loss, *rewritten.outputs, *gradient(rewritten.loss, rewritten.params)]
    before, after = (sp.lambdify(symbols, exprs, [mpmath_functions(), "mpmath"]) for exprs in (before, after))
    rng = np.random.default_rng(len(case))
    for _ in range(3):
        point = _to_mpf(rng.normal(0, 2, len(symbols)))
        with mpmath.workdps(30):
            for k, (expected, got) in enumerate(zip(before(*point), after(*point))):
                assert abs(got - expected) <= 1e-12 * abs(expected) + mpmath.mpf(10) ** -25, k


@pytest.mark.parametrize("case", REWRITE_CASES)
def test_rewrites_write_what_sympy_evaluates(case):
    """softmax_to_logsumexp builds its exp unevaluated (exp's eval asks the assumption system about a layer's
    whole sum: seconds at the digits example's size); what it builds must still be SymPy's evaluated form."""
    rewritten, _ = rewrite(REWRITE_CASES[case][0]())
    for expr in (*rewritten.outputs, rewritten.loss):
        assert sp.srepr(expr) == sp.srepr(sympy_evaluated(expr))


def test_stable_functions_differentiate_into_stable_functions():
    assert sp.diff(softplus(z), z) == sigmoid(z)
    assert sp.diff(sigmoid(z), z) == sigmoid(z) * sigmoid(-z)
    assert sp.diff(logsumexp(z, u), u) == sp.exp(u - logsumexp(z, u))
    assert not sp.diff(softplus(sigmoid(z) * u), z).has(sp.exp)  # no exp left to overflow
