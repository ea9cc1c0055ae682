"""Models beyond the examples: random MLPs drawn by hypothesis, non-smooth functions, and the Python API."""

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from references import central_differences, mlp_forward, mlp_mean_loss, sympy_evaluated, sympy_loss_and_grad
from symcompile import compile_model
from symcompile.mlp import ACTIVATIONS, BIAS_SCHEMES, OUTPUT_ACTIVATIONS, mlp_model
from symcompile.model import make_model
from symcompile.pipeline import build
from symcompile.writer import load_module

_names = (f"drawn_mlp_{k}" for k in itertools.count())


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@st.composite
def mlp_settings(draw):
    n_outputs = draw(st.integers(1, 3))
    output_activation = draw(st.sampled_from(list(ACTIVATIONS) + (["softmax"] if n_outputs > 1 else [])))
    fitting_losses = {  # the losses defined for the output's range
        "softmax": ["softmax_cross_entropy", "binary_cross_entropy", "mean_squared_error"],
        "sigmoid": ["binary_cross_entropy", "mean_squared_error"],
    }.get(output_activation, ["mean_squared_error"])
    return {
        "layers": [draw(st.integers(1, 3)), *draw(st.lists(st.integers(1, 3), max_size=2)), n_outputs],
        "hidden_activation": draw(st.sampled_from(list(ACTIVATIONS))),
        "output_activation": output_activation,
        "loss": draw(st.sampled_from(fitting_losses)),
        "bias": draw(st.sampled_from(BIAS_SCHEMES)),
    }


def _sample(settings, seed, n_samples=3):
    """Random weights and data fit for the loss: labels for cross-entropies, any numbers for squared error."""
    rng = np.random.default_rng(seed)
    layers = settings["layers"]
    X = rng.uniform(-1, 1, (n_samples, layers[0]))
    if settings["loss"] == "softmax_cross_entropy":
        Y = np.eye(layers[-1])[rng.integers(0, layers[-1], n_samples)]
    elif settings["loss"] == "binary_cross_entropy":
        Y = rng.integers(0, 2, (n_samples, layers[-1])).astype(float)
    else:
        Y = rng.uniform(-1, 1, (n_samples, layers[-1]))
    return X, Y, rng


def _check_against_references(model, loss_and_grad, settings, w, X, Y):
    loss, grad = loss_and_grad(w, X, Y)
    numpy_loss = lambda v: mlp_mean_loss(v, X, Y, **settings)  # noqa: E731
    assert loss == pytest.approx(numpy_loss(w), rel=1e-11)
    expected = central_differences(numpy_loss, w)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7 * max(1.0, np.abs(expected).max()))
    if len(w) > 16:
        return  # SymPy's diff is too slow for a unit test here; the references above still apply
    loss, grad = loss_and_grad(w, X[:2], Y[:2])  # and two samples are enough for it
    sympy_loss, sympy_grad = sympy_loss_and_grad(model, w, X[:2], Y[:2])
    assert loss == pytest.approx(sympy_loss, rel=1e-11)
    np.testing.assert_allclose(grad, sympy_grad, rtol=1e-9, atol=1e-12 * max(1.0, np.abs(sympy_grad).max()))


def _generated_python(module):
    """The generated kernel run as plain Python (its Numba-free original): the same source, no compile."""

    def loss_and_grad(w, X, Y):
        grad = np.empty_like(w)
        loss = module._loss_and_grad_kernel.py_func(w, np.ascontiguousarray(X), np.ascontiguousarray(Y), grad)
        return loss, grad

    return loss_and_grad


@pytest.mark.slow  # 15 drawn networks compiled: 25 s
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings=mlp_settings(), seed=st.integers(0, 2**32 - 1))
def test_drawn_mlps_generated_code_agrees_with_references(out_dir, settings, seed):
    """Sizes, activations, losses and bias schemes drawn at random; the generated code run without Numba."""
    X, Y, rng = _sample(settings, seed)
    model = mlp_model(next(_names), **settings, X=X, Y=Y)
    # The scalar kernels: their code runs as Python (the dense kernels' block loops call compiled helpers,
    # and tests/test_dense.py checks them against these for random networks).
    module = load_module(build(model, out_dir, kernels="scalar").path)
    w = rng.normal(0, 0.7, model.n_params)
    _check_against_references(model, _generated_python(module), settings, w, X, Y)


FITTING_LOSSES = {"softmax": "softmax_cross_entropy", "sigmoid": "binary_cross_entropy"}


@pytest.mark.parametrize("bias", BIAS_SCHEMES)
@pytest.mark.parametrize("output_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden_activation", list(ACTIVATIONS))
def test_networks_built_without_eval_are_what_sympy_evaluates(hidden_activation, output_activation, bias):
    """mlp builds its sums, products and functions unevaluated (eval's assumption queries take seconds on a
    large layer); every node must still be exactly SymPy's evaluated form, or modules and digests would change."""
    loss = FITTING_LOSSES.get(output_activation, "mean_squared_error")
    model = mlp_model("evaluated", [2, 3, 2], hidden_activation=hidden_activation,
                      output_activation=output_activation, loss=loss, bias=bias)  # fmt: skip
    for expr in (*model.outputs, model.loss):
        assert sp.srepr(expr) == sp.srepr(sympy_evaluated(expr))


COMPILED = [
    {"layers": [3, 3, 2], "hidden_activation": "relu", "output_activation": "identity",
     "loss": "mean_squared_error", "bias": "shared"},
    {"layers": [2, 2, 2, 1], "hidden_activation": "softplus", "output_activation": "sigmoid",
     "loss": "binary_cross_entropy", "bias": "per-neuron"},
    {"layers": [2, 3, 3], "hidden_activation": "sigmoid", "output_activation": "softmax",
     "loss": "softmax_cross_entropy", "bias": "per-neuron"},
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("settings", COMPILED, ids=lambda s: f"{s['hidden_activation']}-{s['output_activation']}")
def test_compiled_mlps_agree_with_references(out_dir, settings):
    X, Y, rng = _sample(settings, seed=5, n_samples=20)
    model = mlp_model(next(_names), **settings, X=X, Y=Y)
    module = load_module(build(model, out_dir).path)
    w = rng.normal(0, 0.7, model.n_params)
    _check_against_references(model, module.loss_and_grad, settings, w, X, Y)
    expected = mlp_forward(w, X, settings["layers"], settings["hidden_activation"], settings["output_activation"],
                           settings["bias"])  # fmt: skip
    np.testing.assert_allclose(module.forward(w, X).reshape(expected.shape), expected, rtol=1e-12)


# Every non-smooth function SymPy offers that the printer must handle, in one model.
a, b, c, x, y = sp.symbols("a b c x y")
KINKED_OUTPUT = (
    a * sp.Abs(x) + sp.Max(b * x, c) + sp.Min(a * x, b) + sp.Piecewise((b * x**2, x > 0), (c * x, True))
    + a * sp.Heaviside(x) + b * sp.sign(x)
)  # fmt: skip
KINKED_LOSS = sp.Abs(KINKED_OUTPUT - y) + (KINKED_OUTPUT - y) ** 2 / 2


def _kinked_numpy_loss(w, X, Y):
    a_, b_, c_ = w
    x_, y_ = X[:, 0], np.reshape(Y, -1)
    f = (a_ * np.abs(x_) + np.maximum(b_ * x_, c_) + np.minimum(a_ * x_, b_) + np.where(x_ > 0, b_ * x_**2, c_ * x_)
         + a_ * np.heaviside(x_, 0.5) + b_ * np.sign(x_))  # fmt: skip
    return float(np.mean(np.abs(f - y_) + (f - y_) ** 2 / 2))


@pytest.fixture(scope="module")
def kinked(out_dir):
    """The non-smooth model through the Python API, with Y given as (N,) for its one target."""
    rng = np.random.default_rng(8)
    X = rng.uniform(0.2, 2, 12) * rng.choice([-1, 1], 12)  # away from the kinks at x = 0
    Y = rng.uniform(-1, 1, 12)
    return compile_model(
        KINKED_OUTPUT, KINKED_LOSS, [a, b, c], [x], [y], name="kinked", init=[0.5, -0.3, 0.2], X=X, Y=Y,
        out_dir=out_dir, lr=0.01, max_iter=200,
    )  # fmt: skip


@pytest.mark.slow
def test_non_smooth_functions_compile_and_agree_with_references(kinked):
    model = make_model("kinked", KINKED_OUTPUT, KINKED_LOSS, [a, b, c], [x], [y])
    rng = np.random.default_rng(9)
    for _ in range(3):
        w = rng.normal(0, 1, 3)
        loss, grad = kinked.loss_and_grad(w)
        assert loss == pytest.approx(_kinked_numpy_loss(w, kinked.X, kinked.Y), rel=1e-12)
        expected = central_differences(lambda v: _kinked_numpy_loss(v, kinked.X, kinked.Y), w)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)
        sympy_loss, sympy_grad = sympy_loss_and_grad(model, w, kinked.X, kinked.Y)
        assert loss == pytest.approx(sympy_loss, rel=1e-12)
        np.testing.assert_allclose(grad, sympy_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_non_smooth_model_trains_both_ways(kinked):
    for update in ("simultaneous", "sequential"):
        result = kinked.train(update=update)
        assert result.status == "max_iter" and result.loss_history[-1] < 0.9 * result.loss_history[0]


def test_api_takes_one_dimensional_Y_and_the_training_defaults(kinked):
    assert kinked.Y.shape == (12, 1)
    w = np.array([0.1, 0.2, 0.3])
    assert kinked.loss(w, kinked.X, kinked.Y[:, 0]) == kinked.loss(w, kinked.X, kinked.Y)
    assert kinked.DEFAULTS == {"lr": 0.01, "max_iter": 200, "tol": 0.0, "update": "simultaneous"}
    assert kinked.PARAMS == ("a", "b", "c")


def test_api_compiles_several_outputs(out_dir):
    p, q, u, y1, y2 = sp.symbols("p q u y1 y2")
    outputs = [p * u + q, p * q * u**2]
    loss = (outputs[0] - y1) ** 2 + (outputs[1] - y2) ** 2
    rng = np.random.default_rng(10)
    X, Y = rng.uniform(-1, 1, (6, 1)), rng.uniform(-1, 1, (6, 2))
    m = compile_model(outputs, loss, [p, q], [u], [y1, y2], name="two_outputs", init=[1, 1], X=X, Y=Y, out_dir=out_dir)
    w = rng.normal(size=2)
    np.testing.assert_allclose(m.forward(w), np.column_stack([w[0] * X[:, 0] + w[1], w[0] * w[1] * X[:, 0] ** 2]))

    def reference(v):
        return float(np.mean((v[0] * X[:, 0] + v[1] - Y[:, 0]) ** 2 + (v[0] * v[1] * X[:, 0] ** 2 - Y[:, 1]) ** 2))

    loss_value, grad = m.loss_and_grad(w)
    assert loss_value == pytest.approx(reference(w), rel=1e-12)
    np.testing.assert_allclose(grad, central_differences(reference, w), rtol=1e-7)
