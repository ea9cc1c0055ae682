"""Dense MLP kernels (symcompile/dense.py) against the scalar pipeline's kernels and finite differences.

Each network is built twice: by the current pipeline (one symbol per weight) and as dense kernels
rendered into a module of their own; loss, gradient and outputs must agree to 1e-12 relative on
random weights and data, for short last blocks and for the threaded (chunked) path too.
"""

import numpy as np
import pytest

from symcompile import dense
from symcompile.dense import MLPShape, standalone_source
from symcompile.errors import SymcompileError
from symcompile.mlp import mlp_model
from symcompile.pipeline import build
from symcompile.seed import seed_model
from symcompile.writer import load_module, write_module

NETWORKS = {
    "seed_shared_221": MLPShape((2, 2, 1), bias="shared"),
    "tanh_231_bce": MLPShape((2, 3, 1), "tanh", "sigmoid", "binary_cross_entropy"),
    "relu_243_softmax": MLPShape((2, 4, 3), "relu", "softmax", "softmax_cross_entropy"),
    "identity_232_mse": MLPShape((2, 3, 2), "identity", "identity", "mean_squared_error"),
    "softplus_2331_tanh_mse": MLPShape((2, 3, 3, 1), "softplus", "tanh", "mean_squared_error"),
    "tanh_3442_softmax_shared": MLPShape((3, 4, 4, 2), "tanh", "softmax", "softmax_cross_entropy", "shared"),
}
BLOCK = 8  # small, so that a few dozen samples make several blocks and a short last one


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """name -> (scalar module, dense module), each built once for the session (Numba caches beside them, in tmp)."""
    folder = tmp_path_factory.mktemp("dense")
    modules = {}
    for name, shape in NETWORKS.items():
        if name == "seed_shared_221":
            model = seed_model()
        else:
            model = mlp_model(
                f"scalar_{name}", list(shape.layers), hidden_activation=shape.hidden_activation,
                output_activation=shape.output_activation, loss=shape.loss, bias=shape.bias,
            )  # fmt: skip
        scalar = load_module(build(model, folder).path)
        # Forced onto the chunked (prange) path from 40 samples, to test it on small data.
        source = standalone_source(shape, block=BLOCK).replace(
            f"if n_samples < {max(1, dense.PARALLEL_MIN_WORK // _work(shape))}:", "if n_samples < 40:"
        )
        assert "if n_samples < 40:" in source
        path, _ = write_module(source, folder, f"dense_{name}")
        modules[name] = (scalar, load_module(path))
    return modules


@pytest.fixture(scope="session")
def blas_module(tmp_path_factory):
    """tanh_3442_softmax_shared with every layer multiplied through BLAS (as wide layers are)."""
    before = dense.BLAS_MIN_WEIGHTS
    dense.BLAS_MIN_WEIGHTS = 0
    try:
        source = standalone_source(NETWORKS["tanh_3442_softmax_shared"], block=BLOCK)
    finally:
        dense.BLAS_MIN_WEIGHTS = before
    assert "_dense_affine_blas(W1" in source and "_dense_weight_grad_blas(a0" in source
    return load_module(write_module(source, tmp_path_factory.mktemp("dense_blas"), "dense_blas")[0])


def test_the_blas_path_matches_the_scalar_kernels(built, blas_module):
    scalar, _ = built["tanh_3442_softmax_shared"]
    _assert_matches(blas_module, scalar, NETWORKS["tanh_3442_softmax_shared"], 21, seed=5)


def _work(shape):
    return sum(a * b for a, b in zip(shape.layers, shape.layers[1:]))


def _data(shape, n_samples, rng):
    X = rng.normal(size=(n_samples, shape.layers[0]))
    if shape.output_activation == "softmax":
        Y = np.eye(shape.layers[-1])[rng.integers(shape.layers[-1], size=n_samples)]
    elif shape.loss == "binary_cross_entropy":
        Y = rng.integers(2, size=(n_samples, shape.layers[-1])).astype(float)
    else:
        Y = rng.normal(size=(n_samples, shape.layers[-1]))
    return X, Y


def _loss_and_grad(module, w, X, Y):
    grad = np.empty_like(w)
    return module._loss_and_grad_kernel(w, X, Y, grad), grad


def _assert_matches(module, scalar, shape, n_samples, seed):
    """Loss, gradient and outputs of `module` against the scalar kernels, on random weights and data."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=len(scalar.PARAMS))
    X, Y = _data(shape, n_samples, rng)
    loss, grad = _loss_and_grad(module, w, X, Y)
    want_loss, want_grad = _loss_and_grad(scalar, w, X, Y)
    assert grad.shape == want_grad.shape == (dense.n_params(shape),)
    _assert_close(loss, want_loss)
    _assert_close(grad, want_grad)
    got, want = np.empty((n_samples, shape.layers[-1])), np.empty((n_samples, shape.layers[-1]))
    module._forward_kernel(w, X, got)
    scalar._forward_kernel(w, X, want)
    _assert_close(got, want)


def _assert_close(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    scale = np.max(np.abs(want)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("n_samples", [1, 8, 13, 100])  # one sample; one full block; a short last block; chunks
def test_loss_gradient_and_outputs_match_the_scalar_kernels(built, name, n_samples):
    scalar, dense_module = built[name]
    _assert_matches(dense_module, scalar, NETWORKS[name], n_samples, seed=n_samples)


def test_gradient_matches_central_differences(built):
    """Independent of both kernels' derivative code: the loss alone, at w +- h e_j."""
    _, dense_module = built["tanh_3442_softmax_shared"]
    shape = NETWORKS["tanh_3442_softmax_shared"]
    rng = np.random.default_rng(3)
    w = rng.normal(size=dense.n_params(shape))
    X, Y = _data(shape, 30, rng)
    _, grad = _loss_and_grad(dense_module, w, X, Y)
    h = 1e-6
    numeric = np.empty_like(w)
    for j in range(w.size):
        step = np.zeros_like(w)
        step[j] = h
        numeric[j] = (_loss_and_grad(dense_module, w + step, X, Y)[0] - _loss_and_grad(dense_module, w - step, X, Y)[0]) / (2 * h)
    _assert_close(grad, numeric, rtol=1e-7)


def test_the_seed_reproduces_the_blog_output(built):
    """The blog's f5 at its initial weights (DESIGN.md), through the dense forward kernel."""
    scalar, dense_module = built["seed_shared_221"]
    out = np.empty((1, 1))
    dense_module._forward_kernel(scalar.INIT, scalar.X, out)
    assert out[0, 0] == pytest.approx(0.649864477526152, rel=1e-14)


def test_results_do_not_depend_on_the_thread_count(built):
    import numba

    _, dense_module = built["relu_243_softmax"]
    shape = NETWORKS["relu_243_softmax"]
    rng = np.random.default_rng(11)
    w = rng.normal(size=dense.n_params(shape))
    X, Y = _data(shape, 500, rng)
    results = [dense_module._dense_call(dense_module._loss_and_grad_kernel, threads, w, X, Y, np.empty_like(w))
               for threads in (1, numba.config.NUMBA_NUM_THREADS, None, 1)]  # fmt: skip
    grads = [_loss_and_grad(dense_module, w, X, Y)[1] for _ in range(2)]
    assert len({r for r in results}) == 1  # bit for bit
    assert np.array_equal(grads[0], grads[1])


def test_softmax_with_another_loss_is_refused_in_one_line():
    with pytest.raises(SymcompileError, match="softmax output supports only softmax_cross_entropy"):
        dense.dense_kernels_source(MLPShape((2, 3, 2), "tanh", "softmax", "mean_squared_error"))


def test_bad_shapes_are_refused():
    with pytest.raises(SymcompileError, match="unknown hidden activation"):
        MLPShape((2, 3, 1), "swish")
    with pytest.raises(SymcompileError, match="softmax_cross_entropy needs"):
        MLPShape((2, 3, 2), "tanh", "sigmoid", "softmax_cross_entropy")
    with pytest.raises(SymcompileError, match="block must be a positive integer"):
        dense.dense_kernels_source(MLPShape((2, 3, 1)), block=0)
