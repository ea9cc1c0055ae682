"""Reverse-mode gradients and the rolled layout, against SymPy `diff` and central finite differences.

Small models run their generated kernels as plain Python (`kernel.py_func`),
so many variants are checked without paying Numba's compile time; a few
modules are compiled to check that Numba accepts each layout.
"""

from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from symcompile.cli import main
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.model import make_model
from symcompile.pipeline import build
from symcompile.runtime import rules
from symcompile.seed import seed_model
from symcompile.writer import load_module

from test_errors import BAD_FORMULAS
from test_seed import WEIGHTS_SEQUENTIAL_999


def random_data(layers, loss, n_samples=5, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, layers[0]))
    if loss == "softmax_cross_entropy":
        Y = np.eye(layers[-1])[rng.integers(layers[-1], size=n_samples)]
    elif loss == "binary_cross_entropy":
        Y = (rng.random((n_samples, layers[-1])) < 0.5).astype(float)
    else:
        Y = rng.normal(size=(n_samples, layers[-1]))
    return X, Y


def python_loss_and_grad(module, w, X, Y):
    """The fused kernel run as plain Python: the generated code itself, without compiling it."""
    grad = np.empty_like(w)
    loss = module._loss_and_grad_kernel.py_func(w, X, Y, grad)
    return np.concatenate([[loss], grad])


def python_forward(module, w, X, n_outputs):
    out = np.empty((X.shape[0], n_outputs))
    module._forward_kernel.py_func(w, X, out)
    return out


def assert_close(values, reference, rel=1e-12):
    """Equal to `rel` relative to the largest reference value (components near zero included)."""
    values, reference = np.asarray(values), np.asarray(reference)
    np.testing.assert_allclose(values, reference, rtol=rel, atol=rel * np.max(np.abs(reference)))


def built(model, folder, **options):
    return load_module(build(model, folder, **options).path)


MLP_VARIANTS = [
    dict(layers=[2, 2, 1]),
    dict(layers=[2, 2, 1], bias="shared"),
    dict(layers=[2, 3, 1], hidden_activation="tanh", loss="mean_squared_error", output_activation="identity"),
    dict(layers=[2, 3, 1], hidden_activation="relu"),
    dict(layers=[2, 3, 1], hidden_activation="softplus", output_activation="tanh", loss="mean_squared_error"),
    dict(layers=[3, 2, 2, 1], hidden_activation="sigmoid", bias="shared"),
    dict(layers=[2, 3, 3], output_activation="softmax", loss="softmax_cross_entropy"),
    dict(layers=[2, 2, 2], output_activation="sigmoid", loss="binary_cross_entropy"),
]


def _variant_id(variant):
    return "-".join(map(str, variant["layers"])) + "".join(f",{v}" for k, v in variant.items() if k != "layers")


@pytest.mark.slow
@pytest.mark.parametrize("variant", MLP_VARIANTS, ids=_variant_id)
def test_reverse_equals_diff_on_small_networks(variant, tmp_path):
    options = dict(variant)
    layers = options.pop("layers")
    loss = options.get("loss", "binary_cross_entropy")
    X, Y = random_data(layers, loss)
    model = mlp_model("net", layers, X=X, Y=Y, init="normal", seed=3, **options)
    reference = built(model, tmp_path / "diff", gradient="diff", layout="unrolled")
    w = np.random.default_rng(4).normal(size=model.n_params)
    expected = python_loss_and_grad(reference, w, X, Y)
    for layout in ("unrolled", "rolled"):
        module = built(model, tmp_path / layout, gradient="reverse", layout=layout)
        assert_close(python_loss_and_grad(module, w, X, Y), expected)
        assert_close(python_forward(module, w, X, layers[-1]), python_forward(reference, w, X, layers[-1]))


def test_reverse_sequential_sweeps_equal_diff(tmp_path):
    """The sweep programs built from a reverse-mode program (one per parameter, and one for a single sample)."""
    X, Y = random_data([2, 3, 1], "binary_cross_entropy")
    model = mlp_model("net", [2, 3, 1], X=X, Y=Y, init="normal", seed=3)
    model = replace(model, training=replace(model.training, update="sequential"))  # its rule: the sweeps are built
    modules = [built(model, tmp_path / method, gradient=method) for method in ("diff", "reverse")]
    # (the general sweep also takes a weight decay: none here; the one-sample sweep is a MODEL_STEP, whose
    # hyperparameter vector holds the learning rate)
    hyperparameters = rules.vector({"lr": 0.5})
    for X_, Y_, kernel in ((X, Y, "_sequential_sweep_kernel"), (X[:1], Y[:1], "_sequential_sweep_one_sample_kernel")):
        results = []
        for module in modules:
            w, steps = module.INIT.copy(), np.empty_like(module.INIT)
            arguments = (0.5, 0.0) if kernel == "_sequential_sweep_kernel" else (hyperparameters, w.copy())
            loss = getattr(module, kernel).py_func(w, X_, Y_, *arguments, steps)
            results.append(np.concatenate([[loss], steps, w]))
        assert_close(results[1], results[0])


def test_reverse_equals_diff_on_the_seed_and_a_model_with_piecewise_and_clashing_names(tmp_path):
    t, k, c, x, y = sp.symbols("t k c x y", real=True)  # `t`, `k`: also names of the rolled layout
    output = sp.Piecewise((t * sp.exp(-k * x), x > 0), (t + k * x, True)) + c
    custom = make_model("custom", output, (output - y) ** 2 + sp.Abs(c) * 0.1, [t, k, c], [x], [y])
    X = np.array([[-1.0], [0.3], [0.5], [2.0]])
    Y = np.array([[0.5], [1.0], [0.2], [-0.3]])
    for model, w in ((seed_model(), np.array(seed_model().init)), (custom, np.array([1.5, 0.7, -0.2]))):
        X_, Y_ = (model.X, model.Y) if model.X.size else (X, Y)
        expected = python_loss_and_grad(built(model, tmp_path / "diff", gradient="diff"), w, X_, Y_)
        for layout in ("unrolled", "rolled"):
            module = built(model, tmp_path / layout, gradient="reverse", layout=layout)
            assert_close(python_loss_and_grad(module, w, X_, Y_), expected)


@pytest.fixture(scope="module")
def seed_reverse(tmp_path_factory):
    return built(seed_model(), tmp_path_factory.mktemp("seed_reverse"), gradient="reverse")


@pytest.mark.slow
def test_compiled_seed_reverse_matches_diff_and_the_blog(seed_reverse, seed_module):
    m = seed_reverse
    w = m.INIT + np.linspace(-0.3, 0.3, len(m.INIT))
    loss, grad = m.loss_and_grad(w)
    expected_loss, expected_grad = seed_module.loss_and_grad(w)
    assert_close(np.concatenate([[loss], grad]), np.concatenate([[expected_loss], expected_grad]))
    result = m.train()  # the seed's defaults: 999 sequential iterations
    np.testing.assert_allclose(result.w, WEIGHTS_SEQUENTIAL_999, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def wide_network(tmp_path_factory):
    """A 4-16-16-1 sigmoid network (369 parameters) with the scalar kernels, whose `auto` chooses reverse mode
    and the rolled layout."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12, 4))
    Y = (rng.random((12, 1)) < 0.5).astype(float)
    model = mlp_model("wide", [4, 16, 16, 1], X=X, Y=Y, seed=2)
    report = build(model, tmp_path_factory.mktemp("wide"), kernels="scalar")
    return report, load_module(report.path)


@pytest.mark.slow
def test_auto_chooses_reverse_and_rolled_for_a_wide_network(wide_network):
    report, module = wide_network
    assert (report.gradient, report.layout) == ("reverse", "rolled")
    source = report.path.read_text(encoding="utf-8")
    assert "for k in range(16):" in source
    assert "too long to show" in source  # the formula is summarized, not written out in the header
    # The kernels grow with the layers, not the weights (unrolled, loss_and_grad has a line per weight: 369);
    # the rest of the module (training loops, wrappers) is the same for every model.
    kernel = source.split("def _loss_and_grad_kernel(", 1)[1].split("\n\n\n", 1)[0]
    assert len(kernel.splitlines()) < 200


@pytest.mark.slow
def test_wide_network_gradient_agrees_with_central_differences(wide_network):
    _, m = wide_network
    w = m.INIT.copy()
    _, grad = m.loss_and_grad(w)
    h = 1e-5
    numeric = np.empty_like(w)
    for j in range(len(w)):
        up, down = w.copy(), w.copy()
        up[j] += h
        down[j] -= h
        numeric[j] = (m.loss(up) - m.loss(down)) / (2 * h)
    assert_close(grad, numeric, rel=1e-7)
    assert np.count_nonzero(grad) == len(w)


@pytest.mark.slow
def test_wide_network_forward_gives_the_outputs_the_loss_is_of(wide_network):
    _, m = wide_network
    f, y = m.forward(m.INIT, m.X), m.Y[:, 0]
    assert f.shape == (len(m.X),)
    np.testing.assert_allclose(np.mean(-y * np.log(f) - (1 - y) * np.log1p(-f)), m.loss(m.INIT), rtol=1e-12)


@pytest.mark.slow
def test_rolled_module_with_several_outputs_compiles_and_matches_diff(tmp_path):
    X, Y = random_data([2, 3, 3], "softmax_cross_entropy", n_samples=6)
    model = mlp_model("softmax", [2, 3, 3], output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=Y)
    rolled = built(model, tmp_path / "rolled", gradient="reverse", layout="rolled")
    reference = built(model, tmp_path / "diff", gradient="diff", layout="unrolled")
    w = np.random.default_rng(5).normal(size=model.n_params)
    outputs = rolled.forward(w, X)
    assert outputs.shape == (6, 3)
    assert_close(outputs, python_forward(reference, w, X, 3))
    loss, grad = rolled.loss_and_grad(w, X, Y)
    assert_close(np.concatenate([[loss], grad]), python_loss_and_grad(reference, w, X, Y))


@pytest.mark.slow
def test_wide_network_sequential_sweep_updates_one_parameter_at_a_time(wide_network):
    _, m = wide_network
    lr, w = 0.5, m.INIT.copy()
    for _ in range(2):  # the sequential rule written out: each step sees the parameters already updated
        for j in range(len(w)):
            w[j] -= lr * m.loss_and_grad(w)[1][j]
    result = m.train(lr=lr, max_iter=2, update="sequential")
    np.testing.assert_allclose(result.w, w, rtol=0, atol=1e-14)
    simultaneous = m.train(lr=lr, max_iter=20, update="simultaneous")
    assert simultaneous.loss_history[-1] < simultaneous.loss_history[0]


def test_cli_build_with_reverse_gradient_and_rolled_layout(tmp_path, capsys):
    assert main(["build", "--out-dir", str(tmp_path), "--gradient", "reverse", "--layout", "rolled"]) == 0
    out = capsys.readouterr().out
    assert "gradient by reverse" in out and "rolled layout" in out
    source = (tmp_path / "seed_mlp.py").read_text(encoding="utf-8")
    options = next(line for line in source.splitlines() if line.startswith("# Options:"))
    assert options.startswith("# Options: gradient=reverse, cse=on,") and options.endswith(", layout=rolled")


def test_cli_auto_gradient_keeps_diff_for_the_seed(tmp_path, capsys):
    assert main(["build", "--out-dir", str(tmp_path)]) == 0
    assert "gradient by diff" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--gradient", "--layout"])
def test_cli_rejects_unknown_choices(tmp_path, option, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["build", "--out-dir", str(tmp_path), option, "nonsense"])
    assert stop.value.code == 2
    assert "choose one of" in capsys.readouterr().err
    assert not (tmp_path / "seed_mlp.py").exists()


@pytest.mark.parametrize("case", BAD_FORMULAS)
def test_bad_formula_is_the_same_error_in_reverse_mode(tmp_path, case):
    make, message = BAD_FORMULAS[case]
    with pytest.raises(SymcompileError, match=message):
        build(make(), tmp_path, gradient="reverse")
    assert list(tmp_path.iterdir()) == []
