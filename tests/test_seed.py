"""The seed network end to end, against the blog's published numbers and its own subs loop."""

import numpy as np
import pytest
import sympy as sp

from references.blog_loop import BlogLoop
from symcompile import seed
from symcompile.seed_comparison import SubsLoop

# Measured by running the blog's own code with its loop enabled (../shared/DESIGN.md).
F5_AT_INIT = 0.649864477526152
F5_SEQUENTIAL_999 = 0.999453185534398
WEIGHTS_SEQUENTIAL_999 = [
    2.4846334374192343, 0.20561372655997814, 0.8126079554509477, 0.6144346065563234,
    0.4324142091373462, 1.0784676489695109, 1.472313402127175,
]  # fmt: skip
F5_SIMULTANEOUS_999 = 0.9994550920282003
F5_SEQUENTIAL_TOL = 0.9983659108064153


@pytest.fixture(scope="module")
def blog():
    return BlogLoop()


def test_contract_names_and_defaults(seed_module):
    m = seed_module
    assert m.PARAMS == ("w0", "w13", "w14", "w23", "w24", "w35", "w45")
    assert m.INPUTS == ("x1", "x2") and m.TARGETS == ("y",)
    np.testing.assert_array_equal(m.INIT, [0.1, 0.2, 0.8, 0.6, 0.4, 0.1, 0.5])
    assert m.INIT.dtype == np.float64
    np.testing.assert_array_equal(m.X, [[0.35, 0.9]])
    np.testing.assert_array_equal(m.Y, [[1.0]])
    assert m.DEFAULTS == {"lr": 0.3, "max_iter": 999, "tol": 0.0, "update": "sequential"}


def test_forward_at_init_matches_blog(seed_module):
    assert seed_module.forward(seed_module.INIT, seed_module.X)[0] == pytest.approx(F5_AT_INIT, abs=1e-14)


def test_sequential_999_iterations_match_blog(seed_module):
    m = seed_module
    result = m.train(m.INIT, m.X, m.Y, lr=0.3, max_iter=999, tol=0, update="sequential")
    assert result.iterations == 999 and result.status == "max_iter" and not result.converged
    assert m.forward(result.w, m.X)[0] == pytest.approx(F5_SEQUENTIAL_999, abs=1e-9)
    np.testing.assert_allclose(result.w, WEIGHTS_SEQUENTIAL_999, rtol=0, atol=1e-9)
    assert len(result.loss_history) == 1000
    assert np.all(np.diff(result.loss_history) < 0)


def test_simultaneous_999_iterations(seed_module):
    m = seed_module
    result = m.train(m.INIT, m.X, m.Y, lr=0.3, max_iter=999, tol=0, update="simultaneous")
    assert m.forward(result.w, m.X)[0] == pytest.approx(F5_SIMULTANEOUS_999, abs=1e-9)


def test_tolerance_stops_at_iteration_331(seed_module):
    m = seed_module
    result = m.train(m.INIT, m.X, m.Y, lr=0.3, max_iter=999, tol=0.001, update="sequential")
    assert result.iterations == 331 and result.converged and result.status == "converged"
    assert m.forward(result.w, m.X)[0] == pytest.approx(F5_SEQUENTIAL_TOL, abs=1e-9)


def test_defaults_are_the_blog_run_and_caller_weights_untouched(seed_module):
    m = seed_module
    w = m.INIT.copy()
    result = m.train(w)
    np.testing.assert_array_equal(w, m.INIT)
    np.testing.assert_allclose(result.w, WEIGHTS_SEQUENTIAL_999, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed_value", [0, 1, 2])
def test_loss_and_grad_equal_sympy_subs(seed_module, blog, seed_value):
    """The blog's own loss and diff() derivatives, evaluated with subs at random weights."""
    w = np.random.default_rng(seed_value).uniform(-2, 2, size=7)
    values = dict(zip(blog.params, w))
    expected_loss = float(blog.loss.subs(values))
    expected_grad = [float(d.subs(values)) for d in blog.derivatives]
    loss, grad = seed_module.loss_and_grad(w, seed_module.X, seed_module.Y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=0)
    assert seed_module.loss(w) == loss


def test_forward_equals_sympy_evalf_at_random_weights(seed_module, blog):
    w = np.random.default_rng(7).uniform(-3, 3, size=7)
    expected = float(blog.f5.evalf(30, subs=dict(zip(blog.params, w))))
    assert seed_module.forward(w)[0] == pytest.approx(expected, rel=1e-13)


def test_compiled_iterations_equal_blog_subs_iterations(seed_module, blog):
    expected, steps = blog.run(3)
    result = seed_module.train(max_iter=3)
    np.testing.assert_allclose(result.w, expected, rtol=1e-12)


def test_bench_subs_loop_is_the_blog_loop_on_the_seed(blog):
    """`python -m symcompile bench`'s subs loop, written for any model, takes the blog's steps on the seed: the
    same values after each iteration, bit for bit (so its time per iteration is the blog's loop's)."""
    ours, theirs = SubsLoop(seed.seed_model()), list(seed.INIT)
    values = list(seed.INIT)
    for _ in range(2):
        values, (theirs, _) = ours.iterate(values), blog.iterate(theirs)
        assert values == theirs


def test_many_samples_average_the_per_sample_loss(seed_module, blog):
    """Loss and gradient over N samples are the mean of the per-sample values."""
    rng = np.random.default_rng(3)
    X, Y, w = rng.uniform(-1, 1, (5, 2)), rng.integers(0, 2, 5).astype(float), rng.uniform(-1, 1, 7)
    x1, x2, y = sp.symbols("x1 x2 y")
    params = sp.symbols(seed.PARAM_NAMES)
    f5 = seed.network_output(x1, x2, *params)
    L = seed.binary_cross_entropy(f5, y)
    per_sample = [L.subs({x1: a, x2: b, y: t, **dict(zip(params, w))}) for (a, b), t in zip(X, Y)]
    loss, grad = seed_module.loss_and_grad(w, X, Y)
    assert loss == pytest.approx(float(sum(per_sample)) / 5, rel=1e-12)
    h = 1e-6
    central = [(seed_module.loss(w + h * e, X, Y) - seed_module.loss(w - h * e, X, Y)) / (2 * h) for e in np.eye(7)]
    np.testing.assert_allclose(grad, central, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda m: m.forward(np.zeros(6)), ValueError, "shape (7,)"),
        (lambda m: m.forward(m.INIT, np.zeros((3, 3))), ValueError, "shape (N, 2)"),
        (lambda m: m.loss_and_grad(m.INIT, m.X, np.zeros(2)), ValueError, "shape (1, 1)"),
        (lambda m: m.forward(np.array(["a"] * 7)), TypeError, "real numbers"),
        (lambda m: m.forward(np.full(7, np.nan)), ValueError, "NaN"),
        (lambda m: m.train(update="lbfgs"), ValueError, "update"),
    ],
)
def test_wrappers_reject_bad_input(seed_module, call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(seed_module)


@pytest.mark.slow
def test_mlp_builder_with_shared_bias_is_the_seed_network(seed_module):
    """The generic MLP builder, in the blog's bias scheme, computes the same loss and gradient."""
    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    model = mlp_model("mlp_221", [2, 2, 1], bias="shared", X=[[0.35, 0.9]], Y=[1])
    assert [p.name for p in model.params] == ["w0", "w1_3", "w1_4", "w2_3", "w2_4", "w3_5", "w4_5"]
    module = load_module(build(model, seed_module.__file__.rsplit("/", 1)[0]).path)
    w = np.random.default_rng(11).normal(size=7)
    loss, grad = module.loss_and_grad(w)
    expected_loss, expected_grad = seed_module.loss_and_grad(w)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
