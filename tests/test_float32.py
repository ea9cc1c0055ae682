"""dtype="float32": dense kernels on float32 blocks (issue 22, item 4), against a NumPy float64 reference.

A float32 module's loss, gradient and outputs must agree with float64 NumPy to float32's accuracy, its training
track the float64 module's losses; the dtype is refused, in one line, where it does not apply (any other value,
expression models, scalar kernels); and a float64 module is what it was (the same bytes with dtype unset).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from symcompile import cli, dense
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.pipeline import build, generate
from symcompile.spec import load_spec
from symcompile.writer import load_module

# Digits-like: tanh hidden layer, softmax output (a short last block: 300 = 4 x 64 + 44); and 2-16-16-1 sigmoid.
NETWORKS = {
    "f32_softmax": dict(layers=[16, 12, 4], hidden_activation="tanh", output_activation="softmax",
                        loss="softmax_cross_entropy", samples=300),
    "f32_sigmoid": dict(layers=[2, 16, 16, 1], hidden_activation="tanh", output_activation="sigmoid",
                        loss="binary_cross_entropy", samples=500),
}  # fmt: skip
# float32's unit roundoff is 6e-8; sums over a few hundred samples and a few dozen units stay well within this.
LOSS_RTOL, GRAD_RTOL, OUT_ATOL = 1e-6, 1e-5, 1e-6


def data(layers, samples, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, layers[0]))
    if layers[-1] == 1:
        return X, (X[:, :1] * X[:, 1:2] > 0).astype(float)
    return X, np.eye(layers[-1])[rng.integers(layers[-1], size=samples)]


def network_model(name, dtype=None, **network):
    network = dict(network)
    X, Y = data(network["layers"], network.pop("samples"))
    dtype_argument = {} if dtype is None else {"dtype": dtype}
    return mlp_model(name, network.pop("layers"), **network, seed=0, X=X, Y=Y, **dtype_argument)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """name -> {dtype: module}, each network built with dense kernels in float64 and in float32."""
    folder = tmp_path_factory.mktemp("float32")
    built = {}
    for name, network in NETWORKS.items():
        built[name] = {dtype: load_module(build(network_model(f"{name}_{dtype}", dtype, **network), folder).path)
                       for dtype in ("float64", "float32")}  # fmt: skip
    return built


# ---- a NumPy float64 reference: forward and backward through the layers ----


def unpack(layers, w):
    parts, at = [], 0
    for n_in, n_out in zip(layers, layers[1:]):
        parts.append((w[at : at + n_in * n_out].reshape(n_in, n_out), w[at + n_in * n_out : at + (n_in + 1) * n_out]))
        at += (n_in + 1) * n_out
    return parts


def reference(network, w, X, Y):
    """(mean loss, gradient, outputs) in float64: tanh hidden layers, a softmax or sigmoid output."""
    parts = unpack(network["layers"], w)
    activations, a = [X], X
    for W, b in parts[:-1]:
        a = np.tanh(a @ W + b)
        activations.append(a)
    z = a @ parts[-1][0] + parts[-1][1]
    if network["output_activation"] == "softmax":
        top = z.max(axis=1, keepdims=True)
        lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
        out, loss = np.exp(z - lse), np.sum(Y * (lse - z), axis=1)
        delta = out * Y.sum(axis=1, keepdims=True) - Y
    else:
        out = 1 / (1 + np.exp(-z))
        loss = np.sum(np.logaddexp(0, -z) * Y + np.logaddexp(0, z) * (1 - Y), axis=1)
        delta = out - Y
    n, grads = X.shape[0], []
    for l in range(len(parts) - 1, -1, -1):
        grads = [(activations[l].T @ delta).ravel() / n, delta.sum(axis=0) / n] + grads
        if l:
            delta = (delta @ parts[l][0].T) * (1 - activations[l] ** 2)
    return loss.mean(), np.concatenate(grads), out


def weights(module, seed=1):
    return module.INIT + 0.3 * np.random.default_rng(seed).normal(size=module.INIT.size)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_loss_gradient_and_outputs_agree_with_numpy_float64(modules, name):
    module = modules[name]["float32"]
    w = weights(module)
    loss, grad = module.loss_and_grad(w)
    want_loss, want_grad, want_out = reference(NETWORKS[name], w, module.X, module.Y)
    assert grad.dtype == np.float64  # (the gradient is summed in float64, block by block)
    assert abs(loss - want_loss) <= LOSS_RTOL * abs(want_loss)
    assert np.linalg.norm(grad - want_grad) <= GRAD_RTOL * np.linalg.norm(want_grad)
    out = module.forward(w)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(want_out.shape), want_out, rtol=0, atol=OUT_ATOL)
    # and the float64 module, with the same reference, to float64's accuracy
    loss64, grad64 = modules[name]["float64"].loss_and_grad(w)
    assert abs(loss64 - want_loss) <= 1e-12 * abs(want_loss)
    assert np.linalg.norm(grad64 - want_grad) <= 1e-12 * np.linalg.norm(want_grad)


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_training_tracks_the_float64_run(modules, name):
    """A few epochs of Adam in mini-batches (the last one short) and of full-batch descent: the loss per epoch
    within 1e-5 of float64's (measured: about 1e-8; the weights stay float64 between steps)."""
    runs = {}
    for dtype, module in modules[name].items():
        w = weights(module, seed=2)
        runs[dtype] = (module.train(w, max_iter=5, optimizer="adam", lr=0.01, batch_size=32, shuffle=False),
                       module.train(w, max_iter=5, optimizer="gd", lr=0.1))  # fmt: skip
    for run32, run64 in zip(runs["float32"], runs["float64"]):
        assert run32.w.dtype == np.float64
        np.testing.assert_allclose(run32.loss_history, run64.loss_history, rtol=0, atol=1e-5)
        np.testing.assert_allclose(run32.w, run64.w, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_the_threaded_path_gives_the_same_bits_on_any_number_of_threads(tmp_path, monkeypatch):
    """Chunks on threads (forced from one block on): the same bits on one thread and on two, and the unchunked
    float32 module's numbers to float32's accuracy."""
    monkeypatch.setattr(dense, "PARALLEL_MIN_WORK", 1)
    network = NETWORKS["f32_softmax"]
    module = load_module(build(network_model("f32_chunked", "float32", **network), tmp_path).path)
    w = weights(module)
    one, two = module.loss_and_grad(w, threads=1), module.loss_and_grad(w, threads=2)
    assert one[0] == two[0] and np.array_equal(one[1], two[1])
    want_loss, want_grad, want_out = reference(network, w, module.X, module.Y)
    assert abs(one[0] - want_loss) <= LOSS_RTOL * abs(want_loss)
    assert np.linalg.norm(one[1] - want_grad) <= GRAD_RTOL * np.linalg.norm(want_grad)
    np.testing.assert_allclose(module.forward(w), want_out, rtol=0, atol=OUT_ATOL)


@pytest.mark.slow
def test_wide_layers_through_blas_in_float32(tmp_path, monkeypatch):
    """The BLAS path (np.dot on float32 blocks: sgemm), made to take a small network's layers."""
    monkeypatch.setattr(dense, "BLAS_MIN_WEIGHTS", 10)
    network = dict(NETWORKS["f32_softmax"], samples=600)
    module = load_module(build(network_model("f32_blas", "float32", **network), tmp_path).path)
    assert module._DENSE_BLAS
    w = weights(module)
    loss, grad = module.loss_and_grad(w)
    want_loss, want_grad, _ = reference(network, w, module.X, module.Y)
    assert abs(loss - want_loss) <= LOSS_RTOL * abs(want_loss)
    assert np.linalg.norm(grad - want_grad) <= GRAD_RTOL * np.linalg.norm(want_grad)


@pytest.mark.slow
def test_a_second_process_loads_the_float32_loops_from_numbas_cache(modules):
    """The runtime's float32 loops compile once per machine: a new process finds both in Numba's cache."""
    probe = ("import json; from symcompile.runtime import dense; loops = dense.loops(64, False, 'float32'); "
             "print(json.dumps([sum(f.stats.cache_hits.values()) for f in loops] "
             "+ [sum(f.stats.cache_misses.values()) for f in loops]))")  # fmt: skip
    for _ in range(2):  # (the first may compile them, where this test runs alone)
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [1, 1, 0, 0]


# ---- float64 stays as it was ----


def test_a_float64_module_is_the_same_bytes_with_dtype_unset_or_float64():
    network = NETWORKS["f32_softmax"]
    unset = generate(network_model("same_bytes", None, **network)).text
    assert generate(network_model("same_bytes", "float64", **network)).text == unset
    assert "float32" not in unset
    single = generate(network_model("same_bytes", "float32", **network)).text
    assert "float32" in single
    assert "_single" not in unset


def test_float32_hidden_units_use_the_float32_accuracy_functions_and_the_loss_does_not():
    """A float32 module stores its hidden activations in float32: they are computed to float32's accuracy
    (`_vtanh_single`, `_vsigmoid_single`: symcompile.runtime.vecmath, tests/test_vecmath.py); the output and the loss
    keep float64's (`_vsigmoid`, the softmax's `_vexp` and log)."""
    for hidden, output, loss in (("tanh", "sigmoid", "binary_cross_entropy"),
                                 ("sigmoid", "softmax", "softmax_cross_entropy")):  # fmt: skip
        network = dict(NETWORKS["f32_softmax"], hidden_activation=hidden, output_activation=output, loss=loss)
        text = generate(network_model("single_names", "float32", **network)).text
        hidden_code = text[text.index("def _dense_hidden") : text.index("def _dense_output(")]
        output_code = text[text.index("def _dense_output(") : text.index("def _dense_chunks")]
        assert f"_v{hidden}_single(" in hidden_code
        assert "_single" not in output_code


# ---- where dtype is refused, in one line ----


def one_line(error):
    assert "\n" not in str(error.value), str(error.value)
    return str(error.value)


def test_the_api_refuses_other_dtypes_and_non_dense_models():
    network = NETWORKS["f32_sigmoid"]
    with pytest.raises(SymcompileError, match="unknown dtype 'float16'; choose one of float64, float32") as error:
        network_model("bad", "float16", **network)
    one_line(error)
    with pytest.raises(SymcompileError, match="dtype float32 is for dense networks") as error:
        generate(network_model("scalar32", "float32", **network), kernels="scalar")
    one_line(error)


def test_the_seed_and_expression_specs_refuse_float32(tmp_path, capsys):
    """The seed (an expression model) on the command line; an expression spec's key."""
    assert cli.main(["build", "--dtype", "float32", "--out-dir", str(tmp_path)]) == 2
    assert "dtype float32 is for dense networks" in capsys.readouterr().err
    spec = tmp_path / "line.toml"
    spec.write_text('kind = "expression"\ndtype = "float32"\nparams = ["a"]\ninputs = ["x"]\ntargets = ["y"]\n'
                    'output = "a * x"\nloss = "(f - y)**2"\n[data]\nX = [[1.0]]\nY = [[2.0]]\n')  # fmt: skip
    with pytest.raises(SymcompileError, match="dtype: float32 is for dense networks") as error:
        load_spec(spec)
    one_line(error)


@pytest.mark.parametrize("value, message", [('"float16"', "unknown dtype 'float16'"), ("32", "not 32")])
def test_a_spec_refuses_other_dtypes(tmp_path, value, message):
    spec = tmp_path / "net.toml"
    spec.write_text(f'kind = "mlp"\ndtype = {value}\nlayers = [2, 3, 1]\n[data]\nX = [[0.0, 1.0]]\nY = [[1.0]]\n')
    with pytest.raises(SymcompileError, match=message) as error:
        load_spec(spec)
    assert one_line(error).startswith(f"{spec}: dtype: ")


def test_the_command_line_refuses_other_dtypes(capsys):
    for command in ("build", "train"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--dtype", "float16"])
        assert exit_.value.code == 2
        assert "argument --dtype: unknown dtype 'float16'; choose one of float64, float32" in capsys.readouterr().err


def test_a_spec_and_the_command_line_build_float32(tmp_path):
    """dtype in the spec, or --dtype, writes a float32 module; the flag outranks the spec and is in its rebuild
    command."""
    spec = tmp_path / "net.toml"
    spec.write_text('kind = "mlp"\ndtype = "float32"\nlayers = [2, 3, 1]\n[data]\nX = [[0.0, 1.0]]\nY = [[1.0]]\n')
    assert load_spec(spec).dtype == "float32"
    assert cli.main(["build", str(spec), "--out-dir", str(tmp_path / "a")]) == 0
    assert "_dense.loss_and_grad_float32(" in (tmp_path / "a" / "net.py").read_text()
    assert cli.main(["build", str(spec), "--dtype", "float64", "--out-dir", str(tmp_path / "b")]) == 0
    text = (tmp_path / "b" / "net.py").read_text()
    assert "--dtype float64" in text and "float32" not in text
