"""The generated module's wrappers: bad input gets a clear error before compiled code runs; good input of any
real dtype or layout gives the float64 answer; training stops on a non-finite loss or weight."""

import numpy as np
import pytest
import sympy as sp

import symcompile
from symcompile.runtime import loops

W7 = np.linspace(-1, 1, 7)


def _forbid_kernels(module, monkeypatch):
    def forbidden(*args):
        raise AssertionError("compiled code ran on bad input")

    for kernel in module.MODEL.kernels:  # the module's functions find its kernels here
        monkeypatch.setitem(module.MODEL.kernels, kernel, forbidden)
    for loop in ("train_full_batch", "train_mini_batches"):  # and train its compiled loops here
        monkeypatch.setattr(loops, loop, forbidden)


BAD_CALLS = {
    # weights
    "w too short": (lambda m: m.loss(np.zeros(6)), ValueError, r"w \(one value per parameter: w0, w13.*shape \(7,\), got \(6,\)"),
    "w as a column": (lambda m: m.forward(np.zeros((7, 1))), ValueError, r"shape \(7,\), got \(7, 1\)"),
    "w a scalar": (lambda m: m.forward(0.5), ValueError, r"shape \(7,\), got \(\)"),
    "w ragged": (lambda m: m.forward([[1, 2], [3]]), ValueError, r"w .*must be an array of shape \(7,\)"),
    "w strings": (lambda m: m.forward(np.array(["a"] * 7)), TypeError, r"w .*real numbers \(int or float\), got dtype <U1"),
    "w objects": (lambda m: m.forward([None] * 7), TypeError, r"real numbers \(int or float\), got dtype object"),
    "w complex": (lambda m: m.forward(W7 + 0j), TypeError, r"got dtype complex128"),
    "w bool": (lambda m: m.forward(np.ones(7, dtype=bool)), TypeError, r"w .*\(int or float\), got dtype bool"),
    "w NaN": (lambda m: m.forward(np.full(7, np.nan)), ValueError, r"w .*contains NaN or infinity"),
    "w inf": (lambda m: m.loss_and_grad(np.r_[W7[:6], np.inf]), ValueError, r"w .*contains NaN or infinity"),
    # inputs
    "X wrong columns": (lambda m: m.forward(W7, np.zeros((3, 3))), ValueError, r"X .*x1, x2.*shape \(N, 2\), got \(3, 3\)"),
    "X one sample, 1-D": (lambda m: m.forward(W7, np.zeros(2)), ValueError, r"shape \(N, 2\), got \(2,\)"),
    "X no samples": (lambda m: m.forward(W7, np.zeros((0, 2))), ValueError, r"X has no samples"),
    "X strings": (lambda m: m.forward(W7, [["a", "b"]]), TypeError, r"X .*\(int, float or bool\), got dtype <U1"),
    "X dates": (lambda m: m.forward(W7, np.zeros((1, 2), "datetime64[s]")), TypeError, r"got dtype datetime64"),
    "X NaN": (lambda m: m.loss(W7, [[0.1, np.nan]], [1.0]), ValueError, r"X .*contains NaN or infinity"),
    # targets
    "Y sample count": (lambda m: m.loss_and_grad(W7, m.X, np.zeros(2)), ValueError, r"Y .*target: y\).*shape \(1, 1\), got \(2, 1\)"),
    "Y complex": (lambda m: m.loss(W7, m.X, [1j]), TypeError, r"Y .*got dtype complex128"),
    "Y inf": (lambda m: m.train(W7, m.X, [[np.inf]]), ValueError, r"Y .*contains NaN or infinity"),
    # training settings
    "update unknown": (lambda m: m.train(update="lbfgs"), ValueError, r"unknown update rule 'lbfgs'; choose one of sequential, simultaneous, momentum, adam, adamw, newton"),
    "max_iter negative": (lambda m: m.train(max_iter=-1), ValueError, r"max_iter must be an integer from 1 to 2\*\*62, not -1"),
    "max_iter zero": (lambda m: m.train(max_iter=0), ValueError, r"max_iter must be an integer from 1 to 2\*\*62, not 0"),
    "max_iter float": (lambda m: m.train(max_iter=2.5), TypeError, r"max_iter must be an integer from 1 to 2\*\*62, not 2.5"),
    "max_iter bool": (lambda m: m.train(max_iter=True), TypeError, r"max_iter .*not True"),
    "lr string": (lambda m: m.train(lr="0.1"), TypeError, r"lr must be a positive number, not '0.1'"),
    "lr NaN": (lambda m: m.train(lr=float("nan")), ValueError, r"lr must be a positive number, not nan"),
    "lr negative": (lambda m: m.train(lr=-1.0), ValueError, r"lr must be a positive number, not -1.0"),
    "lr zero": (lambda m: m.train(lr=0), ValueError, r"lr must be a positive number, not 0"),
    "tol negative": (lambda m: m.train(tol=-1e-3), ValueError, r"tol must be a non-negative number, not -0.001"),
    "tol NaN": (lambda m: m.train(tol=float("nan")), ValueError, r"tol must be a non-negative number, not nan"),
    "optimizer unknown": (lambda m: m.train(optimizer="lbfgs"), ValueError, r"optimizer must be one of gd, sequential, .*adamw, newton, not 'lbfgs'"),
    "lr inf": (lambda m: m.train(lr=float("inf"), optimizer="adam"), ValueError, r"lr must be a positive number, not inf"),
    "betas": (lambda m: m.train(optimizer="adam", betas=(0.9, 1.0)), ValueError, r"betas must be two numbers, each a number from 0 to 1 \(excluded\), not \(0.9, 1.0\)"),
    "nesterov 1": (lambda m: m.train(optimizer="momentum", momentum=0.9, nesterov=1), ValueError, r"nesterov must be True or False, not 1"),
    "nesterov without momentum": (lambda m: m.train(optimizer="momentum", nesterov=True), ValueError, r"nesterov=True needs a momentum above 0"),
    "momentum for adam": (lambda m: m.train(optimizer="adam", momentum=0.9), ValueError, r"momentum does not apply to optimizer 'adam' \(it reads lr, weight_decay, betas, eps\)"),
    "batch_size 0": (lambda m: m.train(batch_size=0), ValueError, r"batch_size must be an integer from 1 up or None, not 0"),
    "record_every float": (lambda m: m.train(record_every=0.5), TypeError, r"record_every must be an integer from 0 up, not 0.5"),
    "patience without validation": (lambda m: m.train(patience=3), ValueError, r"patience needs validation data: give X_val and Y_val"),
    "X_val alone": (lambda m: m.train(X_val=m.X), ValueError, r"give both X_val and Y_val, or neither"),
    "Y_val wrong rows": (lambda m: m.train(X_val=m.X, Y_val=[[1.0], [0.0]]), ValueError, r"Y_val must have shape \(1, 1\), got \(2, 1\)"),
    "samples for weights": (lambda m: m.forward(np.zeros((5, 2))), ValueError, r"w .*must have shape \(7,\), got \(5, 2\): samples go in X, as in forward\(w, X\)"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_input_is_refused_before_compiled_code_runs(seed_module, monkeypatch, case):
    call, error, message = BAD_CALLS[case]
    _forbid_kernels(seed_module, monkeypatch)
    with pytest.raises(error, match=message):
        call(seed_module)


def test_any_real_dtype_and_layout_gives_the_float64_answer(seed_module):
    m = seed_module
    rng = np.random.default_rng(2)
    X = rng.integers(-2, 3, (5, 2)).astype(np.float64)
    Y = rng.integers(0, 2, (5, 1)).astype(np.float64)
    loss, grad = m.loss_and_grad(W7, X, Y)
    variants = [
        (W7.tolist(), X.astype(np.int32), Y.astype(np.uint8)),  # lists and integers
        (W7.astype(">f8"), X.astype(">f8"), Y.ravel()),  # big-endian; one target as a 1-D array
        (np.asfortranarray(np.c_[W7, W7])[:, 0], np.asfortranarray(X), Y.astype(bool)),  # strided; bool data
        (W7, np.repeat(X, 2, axis=1)[:, ::2], Y.ravel().tolist()),  # a non-contiguous view
    ]
    for w_, X_, Y_ in variants:
        got_loss, got_grad = m.loss_and_grad(w_, X_, Y_)
        assert got_loss == loss
        np.testing.assert_array_equal(got_grad, grad)
    X32 = X.astype(np.float32) / 3
    assert m.loss(W7, X32, Y) == m.loss(W7, X32.astype(np.float64), Y)


@pytest.mark.slow
def test_read_only_weights_are_not_modified(seed_module):
    w = W7.copy()
    w.setflags(write=False)
    result = seed_module.train(w, max_iter=5)
    np.testing.assert_array_equal(w, W7)
    assert not np.array_equal(result.w, W7)


# ----------------------------------------------------------------------------- non-finite training


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """loss = (a*x - y)**2: with x = 1, y = 0 and lr = 10, each step multiplies a by 1 - 2*lr = -19."""
    a, x, y = sp.symbols("a x y")
    return symcompile.compile_model(
        a * x, (a * x - y) ** 2, [a], [x], [y], name="line", init=[1.0], X=[[1.0]], Y=[[0.0]],
        out_dir=tmp_path_factory.mktemp("line"),
    )  # fmt: skip


def _reference_run(a, lr, max_iter):
    """The same descent in plain float64: (weights reached, losses before each step) up to the first overflow."""
    a, losses = np.float64(a), []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(max_iter):
            loss = a * a
            new = a - lr * (2 * a)
            if not (np.isfinite(loss) and np.isfinite(new)):
                return a, losses, a * a
            losses.append(loss)
            a = new
    return a, losses, a * a


@pytest.mark.slow
@pytest.mark.parametrize("update", ["sequential", "simultaneous"])
def test_training_stops_at_the_first_non_finite_loss_and_keeps_finite_weights(line, update):
    # From a loss of 1e304 the divergence limit (1e6 times the first loss) is infinite, so the overflow stops it.
    result = line.train([1e152], lr=10.0, max_iter=10_000, update=update)
    a, losses, final_loss = _reference_run(1e152, 10.0, 10_000)
    assert result.status == "non-finite" and not result.converged
    assert result.iterations == len(losses) < 10_000
    assert np.isfinite(result.w[0]) and result.w[0] == pytest.approx(a, rel=1e-12)
    np.testing.assert_allclose(result.loss_history[:-1], losses, rtol=1e-12)
    assert result.loss_history[-1] == final_loss  # the loss at the returned weights: inf here, reported as such


@pytest.mark.slow
def test_training_from_weights_whose_loss_overflows_stops_at_once(line):
    result = line.train([1e200], lr=0.1, max_iter=10)
    assert result.status == "non-finite" and result.iterations == 0
    assert result.w[0] == 1e200 and list(result.loss_history) == [np.inf]
