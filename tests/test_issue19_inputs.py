"""Issue 19, items 2, 3, 4 and 7: the data a run trains on and the kernels `auto` picks.

- 2: a standardized model's means and scales come from the rows the run trains on, whether the spec's [training]
  or train's --validation-split / --seed gives the split (references: NumPy means of the rows the documented split
  keeps).
- 3: every module function that takes Y refuses targets outside the loss's domain, as the spec does.
- 4: an integer Y of shape (N,) is one-hot in every module function that takes Y (references: NumPy's softmax
  cross-entropy, and the same calls with explicit one-hot rows).
- 7: kernels="auto" builds the MLPs the dense kernels refuse with the scalar ones.
"""

import numpy as np
import pytest

from references import mlp_forward
from symcompile import cli, dense
from symcompile.data import check_targets
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.pipeline import build, generate
from symcompile.provenance import why_rebuild
from symcompile.runtime import loops
from symcompile.writer import load_module

# --- 2: the split of the run is the split of the scaling ----------------------------------------------------------

ROWS = np.array([[0.5, 10.0], [1.5, 30.0], [2.0, 20.0], [0.0, 15.0], [3.0, 35.0], [1.0, 12.0], [2.5, 28.0],
                 [0.25, 18.0]])  # fmt: skip
SPEC = """kind = "mlp"
name = "scaled"
layers = [2, 1]
[training]
max_iter = 1
{training}
[data]
X = {X}
Y = [0, 1, 1, 0, 1, 0, 1, 0]
standardize = true
"""


def _spec(folder, training=""):
    path = folder / "scaled.toml"
    path.write_text(SPEC.format(training=training, X=ROWS.tolist()))
    return str(path)


def _training_rows(fraction, seed):
    """The rows the documented split trains on: all but the first round(n * fraction) of a permutation drawn by
    NumPy's generator seeded with `seed`."""
    held_out = np.random.default_rng(seed).permutation(len(ROWS))[: round(len(ROWS) * fraction)]
    return ROWS[np.setdiff1d(np.arange(len(ROWS)), held_out)]


def _mean(spec, **split):
    model = cli.resolve_model_settings(spec, None, split)[0]
    return model.standardization.mean


@pytest.mark.parametrize(
    "training, split, fraction, seed",
    [
        ("", {"validation_split": 0.25}, 0.25, 0),  # the split given on the command line only
        ("", {"validation_split": 0.25, "seed": 3}, 0.25, 3),
        ("validation_split = 0.25\nseed = 1", {}, 0.25, 1),  # the spec's
        ("validation_split = 0.25\nseed = 1", {"validation_split": 0.0}, 0.0, 0),  # the command line outranks it
        ("validation_split = 0.25\nseed = 1", {"seed": 5}, 0.25, 5),
    ],
)
def test_the_scaling_comes_from_the_rows_the_run_trains_on(tmp_path, training, split, fraction, seed):
    rows = _training_rows(fraction, seed)
    np.testing.assert_allclose(_mean(_spec(tmp_path, training), **split), rows.mean(axis=0), rtol=1e-11)
    model = cli.resolve_model_settings(_spec(tmp_path, training), None, split)[0]
    np.testing.assert_allclose(model.standardization.scale, rows.std(axis=0), rtol=1e-11)


@pytest.mark.slow
def test_train_with_another_split_than_the_spec_rebuilds_with_its_scaling(tmp_path, capsys):
    """--validation-split 0 on a spec that holds out a quarter: the module is rebuilt with all rows' scaling."""
    spec, out = _spec(tmp_path, "validation_split = 0.25\nseed = 1"), tmp_path / "out"
    assert cli.main(["build", spec, "--out-dir", str(out)]) == 0
    np.testing.assert_allclose(load_module(out / "scaled.py").X_MEAN, _training_rows(0.25, 1).mean(axis=0), rtol=1e-11)
    assert cli.main(["train", spec, "--validation-split", "0", "--out-dir", str(out)]) == 0
    assert "building it" in capsys.readouterr().out
    np.testing.assert_allclose(load_module(out / "scaled.py").X_MEAN, ROWS.mean(axis=0), rtol=1e-11)
    spec_model = cli.resolve_model_settings(spec)[0]
    assert why_rebuild(out / "scaled.py", spec_model) == "was built from a different model"


# --- 3 and 4: targets in the module's functions -------------------------------------------------------------------

X4 = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, -0.5]])
LABELS = np.array([2, 0, 1, 1, 0])
SOFTMAX = dict(layers=[2, 3], hidden_activation="tanh", output_activation="softmax", loss="softmax_cross_entropy")


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """A binary cross-entropy network (xor's shape) and a softmax classifier, built (compiled as they are called)."""
    out = tmp_path_factory.mktemp("issue19_inputs")
    xor = mlp_model("xor19", [2, 3, 1], hidden_activation="tanh", X=X4[:4], Y=[[0], [1], [1], [0]])
    softmax = mlp_model("softmax19", **SOFTMAX, X=X4, Y=np.eye(3)[LABELS])
    return {m.name: load_module(build(m, out).path) for m in (xor, softmax)}


def _forbid_compiled_code(module, monkeypatch):
    def forbidden(*args):
        raise AssertionError("compiled code ran on bad targets")

    for kernel in module.MODEL.kernels:  # the module's functions find its kernels here
        monkeypatch.setitem(module.MODEL.kernels, kernel, forbidden)
    for loop in ("train_full_batch", "train_mini_batches"):  # and train its compiled loops here
        monkeypatch.setattr(loops, loop, forbidden)


def _calls(m, X, Y):
    """Every module function that takes targets, given `Y` as its Y (or as Y_val, training on good targets)."""
    good = np.eye(len(m.TARGETS))[[0, 1]] if len(m.TARGETS) > 1 else [0, 1]
    return {
        "train": lambda: m.train(X=X, Y=Y, max_iter=1),
        "loss": lambda: m.loss(X=X, Y=Y),
        "loss_and_grad": lambda: m.loss_and_grad(X=X, Y=Y),
        "accuracy": lambda: m.accuracy(X=X, Y=Y),
        "Y_val": lambda: m.train(X=X, Y=good, X_val=X, Y_val=Y, max_iter=1),
    }


BAD_TARGETS = {
    "xor19": [np.array([[0], [-1]]), np.array([[0.0], [2.0]])],
    "softmax19": [np.array([[1.0, 0, 0], [0.5, 0.25, 0]]), np.array([[1.0, 0, 0], [1.5, -0.5, 0]])],
}


@pytest.mark.parametrize("name", BAD_TARGETS)
@pytest.mark.parametrize("call", ["train", "loss", "loss_and_grad", "accuracy", "Y_val"])
def test_targets_outside_the_loss_are_refused_with_the_specs_message(modules, monkeypatch, name, call):
    """The issue's xor.train(X=np.zeros((2, 2)), Y=[0, -1]) trained to a loss of -998."""
    module = modules[name]
    _forbid_compiled_code(module, monkeypatch)
    loss = SOFTMAX["loss"] if name == "softmax19" else "binary_cross_entropy"
    for Y in BAD_TARGETS[name]:
        what = "Y_val" if call == "Y_val" else "Y"
        with pytest.raises(SymcompileError) as spec_error:  # what a spec's [data] and mlp_model say
            check_targets(loss, Y, what)
        given = Y.ravel().tolist() if name == "xor19" else Y  # a list, one target: the call
        with pytest.raises(ValueError) as error:
            _calls(module, np.zeros((2, 2)), given)[call]()
        assert str(error.value) == str(spec_error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("call", ["train", "loss", "accuracy", "Y_val"])
def test_a_label_outside_the_classes_is_refused_in_one_line(modules, monkeypatch, call):
    _forbid_compiled_code(modules["softmax19"], monkeypatch)
    what = "Y_val" if call == "Y_val" else "Y"
    with pytest.raises(
        ValueError, match=rf"^{what}: 3 in sample 1 is not a class label: expected an integer from 0 to 2 \(3 classes"
    ):
        _calls(modules["softmax19"], X4[:2], [0, 3])[call]()


def _numpy_loss_and_accuracy(w, X, labels):
    """Softmax cross-entropy and accuracy of the network written in NumPy."""
    p = mlp_forward(w, X, SOFTMAX["layers"], "tanh", "softmax", "per-neuron")
    return -np.mean(np.log(p[np.arange(len(X)), labels])), np.mean(p.argmax(axis=1) == labels)


@pytest.mark.slow
def test_integer_labels_are_one_hot_in_loss_and_accuracy(modules):
    m = modules["softmax19"]
    w = np.linspace(-0.8, 0.9, len(m.PARAMS))
    loss, accuracy = _numpy_loss_and_accuracy(w, X4, LABELS)
    for labels in (LABELS, LABELS.tolist(), LABELS.astype(np.uint8)):
        np.testing.assert_allclose(m.loss(w, X4, labels), loss, rtol=1e-13)
        assert m.accuracy(w, X4, labels) == accuracy
        value, grad = m.loss_and_grad(w, X4, labels)
        np.testing.assert_array_equal(grad, m.loss_and_grad(w, X4, np.eye(3)[LABELS])[1])


@pytest.mark.slow
def test_integer_labels_train_as_their_one_hot_rows(modules):
    """softmax3.train(X, Y.argmax(1)) raised a shape error; Y_val takes labels too."""
    m = modules["softmax19"]
    one_hot = np.eye(3)[LABELS]
    by_labels = m.train(m.INIT, X4, LABELS, max_iter=3, X_val=X4[:3], Y_val=LABELS[:3])
    by_rows = m.train(m.INIT, X4, one_hot, max_iter=3, X_val=X4[:3], Y_val=one_hot[:3])
    np.testing.assert_array_equal(by_labels.w, by_rows.w)
    np.testing.assert_array_equal(by_labels.val_loss_history, by_rows.val_loss_history)
    np.testing.assert_allclose(
        by_labels.loss_history[-1], _numpy_loss_and_accuracy(by_labels.w, X4, LABELS)[0], rtol=1e-12
    )


def test_float_Y_of_shape_N_is_not_taken_for_labels(modules, monkeypatch):
    _forbid_compiled_code(modules["softmax19"], monkeypatch)
    with pytest.raises(ValueError, match=r"Y \(one row per sample.*shape \(5, 3\), got \(5,\)"):
        modules["softmax19"].loss(X=X4, Y=LABELS.astype(float))


# --- 7: auto never picks kernels that refuse the model --------------------------------------------------------------


@pytest.mark.parametrize("layers, loss", [([3, 4, 3], "mean_squared_error"), ([3, 5, 3], "binary_cross_entropy")])
def test_auto_builds_a_softmax_network_the_dense_kernels_refuse_with_the_scalar_ones(layers, loss):
    model = mlp_model("soft", layers, hidden_activation="tanh", output_activation="softmax", loss=loss)
    assert model.n_params > 16  # where auto used to pick the dense kernels
    assert dense.chosen_kernels(model, "auto") == "scalar"
    assert generate(model, kernels="auto").provenance.kernels == "scalar"
    with pytest.raises(SymcompileError, match=r"^dense kernels: a softmax output supports only softmax_cross_entropy; "
                                              r"use kernels=scalar or auto$"):  # fmt: skip
        dense.chosen_kernels(model, "dense")


def test_auto_keeps_the_dense_kernels_where_they_apply():
    model = mlp_model("soft", [3, 4, 3], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy")  # fmt: skip
    assert dense.chosen_kernels(model, "auto") == "dense"


def test_a_network_neither_kernels_build_says_why_both_refuse():
    model = mlp_model("wide", [100, 60, 3], output_activation="softmax", loss="mean_squared_error")
    assert model.n_params == 100 * 60 + 60 + 60 * 3 + 3
    with pytest.raises(SymcompileError, match=r"6,243 parameters; .* at most 5,000 with the scalar kernels .*; the "
                                              r"dense kernels refuse this network: a softmax output supports only"):  # fmt: skip
        dense.chosen_kernels(model, "auto")
