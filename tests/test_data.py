"""Classification data as users have it (class labels, checked targets), the seeded validation split, and inputs
standardized inside the model: compared with NumPy's own means, standard deviations and network."""

import numpy as np
import pytest
import sympy as sp

import symcompile
from references import mlp_forward
from symcompile import cli
from symcompile.data import check_targets, one_hot, split_rows
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.spec import load_spec, load_spec_settings
from symcompile.writer import load_module

LABELS = [2, 0, 1, 1, 0, 2, 2, 1]
X = np.array([[0.5, 10.0], [1.5, 30.0], [2.0, 20.0], [0.0, 15.0], [3.0, 35.0], [1.0, 12.0], [2.5, 28.0],
              [0.25, 18.0]])  # fmt: skip


def test_labels_become_one_hot_rows():
    np.testing.assert_array_equal(one_hot([2, 0, 1], 3), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(one_hot([1.0, 0.0], 1), [[1], [0]])  # one target: the labels are the column


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0, 3, 1], "labels: 3 in sample 1 is not a class label: expected an integer from 0 to 2 (3 classes"),
        ([0, -1], "labels: -1 in sample 1 is not a class label"),
        ([0, 1.5], "labels: 1.5 in sample 1 is not a class label"),
    ],
)
def test_a_label_outside_the_classes_is_one_line(labels, message):
    with pytest.raises(SymcompileError) as error:
        one_hot(labels, 3)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_integer_Y_to_the_api_is_one_hot_and_float_Y_is_not_guessed():
    model = mlp_model("labelled", [2, 3], output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=LABELS)
    np.testing.assert_array_equal(model.Y, np.eye(3)[LABELS])
    with pytest.raises(SymcompileError, match=r"Y has shape \(8,\), expected \(N, 3\)"):
        mlp_model("floats", [2, 3], output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=np.ones(8))
    with pytest.raises(SymcompileError, match="Y: 5 in sample 0 is not a class label"):
        mlp_model("big", [2, 3], output_activation="softmax", loss="softmax_cross_entropy", X=X, Y=[5] + LABELS[1:])


@pytest.mark.parametrize(
    "loss, Y, message",
    [
        ("binary_cross_entropy", [[0], [2]], "binary_cross_entropy needs targets in [0, 1]; Y has 2 in sample 1"),
        ("binary_cross_entropy", [[-0.5], [1]], "Y has -0.5 in sample 0"),
        (
            "softmax_cross_entropy",
            [[1, 0], [1, 1]],
            "each target row to sum to 1 (one-hot, or class probabilities); sample 1 sums to 2",
        ),  # fmt: skip
        ("softmax_cross_entropy", [[0.5, 0.25]], "sample 0 sums to 0.75"),
    ],
)
def test_targets_a_cross_entropy_cannot_take_are_refused(loss, Y, message):
    with pytest.raises(SymcompileError) as error:
        check_targets(loss, np.array(Y, dtype=float))
    assert message in str(error.value) and "\n" not in str(error.value)
    check_targets("mean_squared_error", np.array(Y, dtype=float))  # any real target is fine for least squares


def test_a_bce_network_refuses_a_target_of_two():
    with pytest.raises(SymcompileError, match="needs targets in \\[0, 1\\]; Y has 2 in sample 1"):
        mlp_model("bce", [2, 1], X=[[0, 0], [1, 1]], Y=[0, 2])


def test_the_validation_split_is_seeded_disjoint_and_complete():
    train, val = split_rows(100, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    again, val_again = split_rows(100, 0.2, seed=3)
    np.testing.assert_array_equal(val, val_again)
    assert not np.array_equal(val, split_rows(100, 0.2, seed=4)[1])
    np.testing.assert_array_equal(split_rows(5, 0.0, seed=0)[0], np.arange(5))
    with pytest.raises(SymcompileError, match="leaves 0 for validation and 3 for training; each needs at least one"):
        split_rows(3, 0.1, seed=0)


SPEC = """
kind = "mlp"
name = "{name}"
layers = [2, 4, 3]
hidden_activation = "tanh"
output_activation = "softmax"
loss = "softmax_cross_entropy"

[training]
lr = 0.05
max_iter = 3
validation_split = 0.25
seed = 1

[data]
csv = "flowers.csv"
X_columns = ["width", "height"]
labels = "kind"
{extra}
"""


def _spec(folder, name="flowers", extra="standardize = true", labels=LABELS):
    lines = ["id,width,height,kind"] + [f"{i},{a},{b},{k}" for i, ((a, b), k) in enumerate(zip(X, labels))]
    (folder / "flowers.csv").write_text("\n".join(lines) + "\n")
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, extra=extra))
    return path


@pytest.fixture(scope="module")
def standardized_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standardized")
    spec = _spec(folder)
    assert cli.main(["build", str(spec), "--out-dir", str(folder / "out")]) == 0
    return load_spec(spec), load_module(folder / "out" / "flowers.py")


def test_a_label_column_in_a_csv_gives_one_hot_targets(standardized_module):
    model, _ = standardized_module
    np.testing.assert_array_equal(model.Y, np.eye(3)[LABELS])


def test_standardization_uses_the_training_rows_only(standardized_module):
    _, module = standardized_module
    train, _ = split_rows(len(X), 0.25, seed=1)
    np.testing.assert_allclose(module.X_MEAN, X[train].mean(axis=0), rtol=1e-11)
    np.testing.assert_allclose(module.X_SCALE, X[train].std(axis=0), rtol=1e-11)
    np.testing.assert_array_equal(module.X, X)  # the module keeps the data in its own units


@pytest.mark.slow
def test_forward_and_loss_apply_the_stored_scaling(standardized_module):
    """The module's outputs from raw inputs equal NumPy's network on (X - X_MEAN) / X_SCALE."""
    _, module = standardized_module
    expected = mlp_forward(module.INIT, (X - module.X_MEAN) / module.X_SCALE, [2, 4, 3], "tanh", "softmax",
                           "per-neuron")  # fmt: skip
    np.testing.assert_allclose(module.forward(module.INIT, X), expected, rtol=1e-13)
    loss = -np.mean(np.log(expected[np.arange(len(X)), LABELS]))
    np.testing.assert_allclose(module.loss(module.INIT, X, module.Y), loss, rtol=1e-13)


def test_a_module_without_standardization_has_no_scaling_names(seed_module):
    assert not hasattr(seed_module, "X_MEAN") and not hasattr(seed_module, "X_SCALE")


def test_spec_training_keys_are_checked_in_one_line(tmp_path):
    _, run = load_spec_settings(_spec(tmp_path))
    assert (run.validation_split, run.seed, run.optimizer, run.batch_size) == (0.25, 1, None, None)
    bad = {
        "optimizer = 'rmsprop'": "training.optimizer: unknown optimizer 'rmsprop'; choose one of gd, sequential, "
        "simultaneous, momentum, adam, adamw",
        "batch_size = 0": "training.batch_size: batch_size must be an integer of at least 1, not 0",
        "betas = [0.9, 1.0]": "training.betas: betas must be two numbers, each a number from 0 to 1 (excluded)",
        "momentum = -1": "training.momentum: momentum must be a non-negative number, not -1",
        "nesterov = true": "[training]: nesterov does not apply to optimizer 'gd' (it reads lr, weight_decay)",
        "optimizer = 'momentum'\nnesterov = true": "[training]: nesterov needs a momentum above 0",
        "batch_sise = 32": "unknown key 'batch_sise' in [training]; did you mean 'batch_size'?",
    }
    momentum = SPEC.format(name="fine", extra="").replace("seed = 1\n", "seed = 1\noptimizer = 'momentum'\n"
                                                            "momentum = 0.9\nnesterov = true\n")  # fmt: skip
    (tmp_path / "fine.toml").write_text(momentum)
    assert load_spec_settings(tmp_path / "fine.toml")[1].nesterov is True  # keys checked together, not one by one
    for line, message in bad.items():
        text = SPEC.format(name="bad", extra="").replace("seed = 1\n", f"seed = 1\n{line}\n")
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(SymcompileError) as error:
            load_spec(tmp_path / "bad.toml")
        assert message in str(error.value) and "\n" not in str(error.value), (line, str(error.value))


def test_cli_refuses_a_bad_label_in_one_line(tmp_path, capsys):
    spec = _spec(tmp_path, labels=[0, 1, 2, 3, 0, 1, 2, 0])
    assert cli.main(["train", str(spec), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.labels: column 'kind': 3 in sample 3 is not a class label" in err, err
    assert not (tmp_path / "out").exists()


# --- standardize= from Python -------------------------------------------------------------------------------------

BINARY = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=float)


def _by_hand(X_raw):
    """X standardized with NumPy's own means and (population) standard deviations."""
    return (X_raw - X.mean(axis=0)) / X.std(axis=0)


@pytest.fixture(scope="module")
def logistic(tmp_path_factory):
    """A logistic regression on inputs of very different scales, standardized by compile_model."""
    a, b, c, x1, x2, y = sp.symbols("a b c x1 x2 y")
    p = 1 / (1 + sp.exp(-(a * x1 + b * x2 + c)))
    return symcompile.compile_model(
        p, -(y * sp.log(p) + (1 - y) * sp.log(1 - p)), [a, b, c], [x1, x2], [y], name="standardized_logistic",
        init=[0.3, -0.2, 0.1], X=X, Y=BINARY, lr=0.5, max_iter=20, update="simultaneous", standardize=True,
        out_dir=tmp_path_factory.mktemp("api_standardized"),
    )  # fmt: skip


def test_compile_model_standardize_stores_numpys_means_and_scales(logistic):
    np.testing.assert_allclose(logistic.X_MEAN, X.mean(axis=0), rtol=1e-11)
    np.testing.assert_allclose(logistic.X_SCALE, X.std(axis=0), rtol=1e-11)
    np.testing.assert_array_equal(logistic.X, X)  # the data stays in its own units


def test_compile_model_standardize_forward_loss_and_gradient_are_numpys(logistic):
    w = np.array([0.7, -1.1, 0.2])
    U = _by_hand(X)
    p = 1 / (1 + np.exp(-(U @ w[:2] + w[2])))
    np.testing.assert_allclose(logistic.forward(w, X), p, rtol=1e-10)
    loss, grad = logistic.loss_and_grad(w, X, BINARY)
    np.testing.assert_allclose(loss, -np.mean(BINARY * np.log(p) + (1 - BINARY) * np.log(1 - p)), rtol=1e-10)
    np.testing.assert_allclose(grad, np.r_[U.T @ (p - BINARY), np.sum(p - BINARY)] / len(X), rtol=1e-9)


@pytest.mark.slow
def test_compile_model_standardize_trains_and_predicts_in_the_datas_units(logistic):
    """20 steps of gradient descent on the standardized inputs, written out in NumPy; predict takes raw inputs."""
    U, w = _by_hand(X), np.array([0.3, -0.2, 0.1])
    for _ in range(20):
        p = 1 / (1 + np.exp(-(U @ w[:2] + w[2])))
        w = w - 0.5 * np.r_[U.T @ (p - BINARY), np.sum(p - BINARY)] / len(X)
    result = logistic.train()
    np.testing.assert_allclose(result.w, w, rtol=1e-9)
    new = np.array([[1.0, 25.0], [0.1, 11.0]])
    np.testing.assert_allclose(result.predict(new), 1 / (1 + np.exp(-(_by_hand(new) @ w[:2] + w[2]))), rtol=1e-9)


def test_compile_model_standardizes_residuals_too(tmp_path):
    a, b, c, x1, x2, y = sp.symbols("a b c x1 x2 y")
    f = a * x1 + b * x2 + c
    m = symcompile.compile_model(
        f, None, [a, b, c], [x1, x2], [y], name="standardized_line", X=X, Y=BINARY, residual=f - y,
        standardize=True, out_dir=tmp_path,
    )  # fmt: skip
    w = np.array([0.5, 2.0, -1.0])
    np.testing.assert_allclose(
        m.residuals(w, X, BINARY).ravel(), _by_hand(X) @ w[:2] + w[2] - BINARY, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(standardize="yes", X=X, Y=BINARY), "standardize must be True or False, not 'yes'"),
        (dict(standardize=True), "standardize needs training data to compute the means and scales from"),
    ],
)
def test_compile_model_standardize_is_checked_in_one_line(tmp_path, settings, message):
    a, x1, x2, y = sp.symbols("a x1 x2 y")
    with pytest.raises(SymcompileError) as error:
        symcompile.compile_model(
            a * x1 + x2, (a * x1 + x2 - y) ** 2, [a], [x1, x2], [y], name="bad", out_dir=tmp_path, **settings
        )
    assert str(error.value) == message
    assert not (tmp_path / "bad.py").exists()
