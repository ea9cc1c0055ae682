"""Every example in examples/ builds and trains from the CLI; its losses and gradients agree with independent
references."""

import importlib.util
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from references import central_differences, mlp_forward, mlp_mean_loss, sympy_loss_and_grad
from symcompile.cli import main
from symcompile.graph import replace_bottom_up
from symcompile.mlp import symbolic_form
from symcompile.spec import load_spec
from symcompile.writer import load_module

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["seed", "xor", "logistic", "softmax3", "decay"]
FITTED = ["misra1a"]  # a residual model: built, fitted and checked in test_fitting.py
# Model making only: the CSV is not committed (make_data.py writes it from scikit-learn), and Numba
# takes minutes over a 2,410-parameter network's kernels.
MODEL_ONLY = ["digits"]
# Trained with Adam on mini-batches, a validation split and standardized inputs: tested on their own below.
WITH_RUN_SETTINGS = ["iris"]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="module")
def modules(out_dir):
    """Each example built with `python -m symcompile build SPEC`, then imported."""
    built = {}
    for name in NAMES:
        assert main(["build", str(EXAMPLES / f"{name}.toml"), "--out-dir", str(out_dir)]) == 0
        built[name] = load_module(out_dir / f"{name}.py")
    return built


def _random_weights(module, seed):
    return module.INIT + np.random.default_rng(seed).normal(0, 0.5, size=len(module.PARAMS))


def _independent_mean_loss(name, w, X, Y):
    """The example's mean loss computed without symcompile: NumPy formulas from the spec's own settings."""
    spec = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
    if spec["kind"] == "mlp":
        defaults = {"hidden_activation": "sigmoid", "output_activation": "sigmoid", "loss": "binary_cross_entropy",
                    "bias": "per-neuron"}  # fmt: skip
        options = {key: spec.get(key, default) for key, default in defaults.items()}
        return mlp_mean_loss(w, X, Y, spec["layers"], **options)
    if name == "decay":
        a, b, c = w
        return float(np.mean((a * np.exp(-b * X[:, 0]) + c - Y[:, 0]) ** 2))
    assert name == "seed"  # the blog's network, line for line
    w0, w13, w14, w23, w24, w35, w45 = w
    sigmoid = lambda z: 1 / (1 + math.e ** (-z))  # noqa: E731
    f3 = sigmoid((X[:, 0] * w13 + w0) + (X[:, 1] * w23 + w0))
    f4 = sigmoid((X[:, 0] * w14 + w0) + (X[:, 1] * w24 + w0))
    f5 = sigmoid((f3 * w35 + w0) + (f4 * w45 + w0))
    y = Y[:, 0]
    return float(np.mean(-y * np.log(f5) - (1 - y) * np.log(1 - f5)))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_loss_agrees_with_an_independent_formula(modules, name):
    m = modules[name]
    for seed in (1, 2):
        w = _random_weights(m, seed)
        assert m.loss(w) == pytest.approx(_independent_mean_loss(name, w, m.X, m.Y), rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_gradient_agrees_with_central_differences(modules, name):
    m = modules[name]
    w = _random_weights(m, 3)
    loss, grad = m.loss_and_grad(w)
    expected = central_differences(lambda v: _independent_mean_loss(name, v, m.X, m.Y), w)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_gradient_agrees_with_sympy_diff(modules, name):
    m = modules[name]
    w = _random_weights(m, 4)
    X, Y = m.X[:3], m.Y[:3]
    expected_loss, expected_grad = sympy_loss_and_grad(symbolic_form(load_spec(EXAMPLES / f"{name}.toml")), w, X, Y)
    loss, grad = m.loss_and_grad(w, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-11)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-12 * np.abs(expected_grad).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_training_lowers_the_loss(modules, name):
    m = modules[name]
    result = m.train()  # the spec's defaults
    history = result.loss_history
    assert result.status in ("max_iter", "converged") and np.all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0]
    assert np.all(np.diff(history) <= 1e-15 * history[0])  # every step goes downhill


@pytest.mark.slow
def test_xor_reaches_full_accuracy(modules):
    m = modules["xor"]
    predicted = m.forward(m.train().w) >= 0.5
    np.testing.assert_array_equal(predicted, m.Y[:, 0] == 1)


def test_softmax_and_logistic_classify_most_samples(modules):
    softmax, logistic = modules["softmax3"], modules["logistic"]
    assert np.mean(softmax.forward(softmax.train().w).argmax(axis=1) == softmax.Y.argmax(axis=1)) >= 0.95
    assert np.mean((logistic.forward(logistic.train().w) >= 0.5) == (logistic.Y[:, 0] == 1)) >= 0.9


@pytest.mark.slow
def test_curve_fit_recovers_the_curve_the_data_came_from(modules):
    a, b, c = modules["decay"].train().w  # examples/make_data.py: y = 2.5 exp(-1.3 x) + 0.5 + noise
    assert abs(a - 2.5) < 0.05 and abs(b - 1.3) < 0.1 and abs(c - 0.5) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_cli_trains_each_example(modules, out_dir, capsys, name):
    assert main(["train", str(EXAMPLES / f"{name}.toml"), "--out-dir", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "building it" not in out  # built by the fixture from the same spec: current
    final = next(line for line in out.splitlines() if line.strip().startswith("final"))
    assert float(final.split()[2].rstrip(",")) == pytest.approx(modules[name].train().loss_history[-1], rel=1e-12)
    if name == "xor":
        assert "accuracy 100.0% of 4 samples" in final


def test_every_example_is_tested():
    assert sorted(NAMES + MODEL_ONLY + WITH_RUN_SETTINGS + FITTED) == sorted(
        path.stem for path in EXAMPLES.glob("*.toml")
    )


@pytest.fixture(scope="module")
def iris(out_dir):
    assert main(["build", str(EXAMPLES / "iris.toml"), "--out-dir", str(out_dir)]) == 0
    return load_module(out_dir / "iris.py")


@pytest.mark.slow
def test_iris_loss_is_numpys_on_the_standardized_flowers(iris):
    """The CSV's species labels became one-hot rows, and the module scales its raw inputs as NumPy does."""
    rows = np.loadtxt(EXAMPLES / "data" / "iris.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(iris.X, rows[:, :4])
    np.testing.assert_array_equal(iris.Y, np.eye(3)[rows[:, 4].astype(int)])
    assert np.all(np.abs(iris.X_MEAN - rows[:, :4].mean(axis=0)) < 0.2)  # the training rows' means: near all rows'
    for seed in (1, 2):
        w = _random_weights(iris, seed)
        expected = mlp_mean_loss(w, (iris.X - iris.X_MEAN) / iris.X_SCALE, iris.Y, [4, 8, 3], "tanh", "softmax",
                                 "softmax_cross_entropy", "per-neuron")  # fmt: skip
        assert iris.loss(w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_iris_trains_with_adam_from_the_cli(iris, out_dir, capsys):
    assert main(["train", str(EXAMPLES / "iris.toml"), "--out-dir", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "optimizer=adam, batch_size=16" in out and "120 training samples, 30 validation samples" in out
    validation = next(line for line in out.splitlines() if line.strip().startswith("validation"))
    assert float(validation.split("accuracy ")[1].split("%")[0]) >= 90


@pytest.fixture(scope="module")
def digits_spec(tmp_path_factory):
    """examples/digits.toml beside the CSV that examples/make_data.py writes (from scikit-learn)."""
    pytest.importorskip("sklearn", reason="needs the sklearn extra (pip install '.[sklearn]')")
    folder = tmp_path_factory.mktemp("digits")
    loader = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    make_data = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(make_data)
    make_data.DATA = folder / "data"
    make_data.DATA.mkdir()
    make_data.digits()
    return Path(shutil.copy(EXAMPLES / "digits.toml", folder))


@pytest.mark.slow
def test_digits_model_computes_what_numpy_computes(digits_spec):
    model = symbolic_form(load_spec(digits_spec))
    assert len(model.params) == 64 * 32 + 32 + 32 * 10 + 10
    assert model.X.shape == (1797, 64) and model.Y.shape == (1797, 10)
    np.testing.assert_array_equal(model.Y.sum(axis=1), 1)  # one-hot
    spec = tomllib.loads(digits_spec.read_text())
    expected = mlp_forward(model.init, model.X[:2], spec["layers"], "tanh", "softmax", "per-neuron")
    for x, probabilities in zip(model.X[:2], expected):
        values = dict(zip(model.params + model.inputs, map(sp.Float, [*model.init, *x])))
        # Evaluated over the graph (each shared subexpression once); subs would walk the whole tree.
        got = [float(replace_bottom_up(output, values.get)) for output in model.outputs]
        np.testing.assert_allclose(got, probabilities, rtol=1e-12)
