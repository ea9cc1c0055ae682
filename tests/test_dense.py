"""Dense MLP kernels (symcompile/dense.py) through the real pipeline, against the scalar kernels and NumPy.

Each network is built twice by `build`: kernels="scalar" (one symbol per weight) and kernels="dense";
loss, gradient and outputs must agree to 1e-12 relative on random weights and data, for short last
blocks, for the threaded (chunked) path, for the wide layers' BLAS path, and on the examples.
"""

import importlib.util

import numpy as np
import pytest
from references import mlp_forward, mlp_mean_loss

from symcompile import dense
from symcompile.errors import SymcompileError
from symcompile.mlp import MLPShape, initial_weights, mlp_model, param_names, symbolic_form
from symcompile.pipeline import build
from symcompile.spec import load_spec
from symcompile.writer import load_module

# Random networks for what the examples (tanh/sigmoid, no hidden layer, tanh/softmax) leave out: relu, softplus,
# tanh outputs, mean squared error, two hidden layers (the shared bias: the seed). Each costs a Numba compile.
# (Softmax with the shared bias has a gradient of exactly 0 for w0: rounding noise, no relative comparison.)
NETWORKS = {
    "softplus_2331_tanh_mse": MLPShape((2, 3, 3, 1), "softplus", "tanh", "mean_squared_error"),
    "relu_3442_softmax": MLPShape((3, 4, 4, 2), "relu", "softmax", "softmax_cross_entropy"),
}
HAVE_SCIPY = importlib.util.find_spec("scipy") is not None
BLOCK = 8  # small, so that a few dozen samples make several blocks and a short last one
EXAMPLES = ["xor", "logistic", "softmax3"]


def _model(name, shape, **data):
    return mlp_model(name, list(shape.layers), hidden_activation=shape.hidden_activation,
                     output_activation=shape.output_activation, loss=shape.loss, bias=shape.bias, **data)  # fmt: skip


def _build_pair(model, folder):
    """(scalar module, dense module) of `model`; the dense one named <name>_dense."""
    scalar = load_module(build(model, folder, kernels="scalar").path)
    renamed = mlp_model(f"{model.name}_dense", list(model.network.shape.layers), **_shape_arguments(model))
    return scalar, load_module(build(renamed, folder, kernels="dense").path)


def _shape_arguments(model):
    shape = model.network.shape
    return dict(hidden_activation=shape.hidden_activation, output_activation=shape.output_activation,
                loss=shape.loss, bias=shape.bias, init=model.init, X=model.X, Y=model.Y,
                training=model.training)  # fmt: skip


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """name -> (scalar module, dense module), built once for the session with small blocks and the chunked
    (threaded) path from two blocks on (Numba caches beside them, in tmp)."""
    folder = tmp_path_factory.mktemp("dense")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dense, "DEFAULT_BLOCK", BLOCK)
        patch.setattr(dense, "PARALLEL_MIN_WORK", 1)
        modules = {name: _build_pair(_model(name, shape), folder) for name, shape in NETWORKS.items()}
        # The seed's network from the MLP builder, with the blog's weights and sample
        seed = mlp_model("mlp_221", [2, 2, 1], bias="shared", init=[0.1, 0.2, 0.8, 0.6, 0.4, 0.1, 0.5],
                         X=[[0.35, 0.9]], Y=[1])  # fmt: skip
        modules["seed"] = _build_pair(seed, folder)
        if HAVE_SCIPY:  # every layer through BLAS, as wide layers are (Numba's np.dot needs SciPy)
            patch.setattr(dense, "BLAS_MIN_WEIGHTS", 0)
            blas = _model("blas_3442", NETWORKS["relu_3442_softmax"])
            modules["blas"] = (modules["relu_3442_softmax"][0], load_module(build(blas, folder, kernels="dense").path))
            assert "_DENSE_BLAS = True" in open(modules["blas"][1].__file__).read()
    return modules


def _data(shape, n_samples, rng):
    X = rng.normal(size=(n_samples, shape.layers[0]))
    if shape.output_activation == "softmax":
        Y = np.eye(shape.layers[-1])[rng.integers(shape.layers[-1], size=n_samples)]
    elif shape.loss == "binary_cross_entropy":
        Y = rng.integers(2, size=(n_samples, shape.layers[-1])).astype(float)
    else:
        Y = rng.normal(size=(n_samples, shape.layers[-1]))
    return X, Y


def _assert_matches(module, scalar, w, X, Y):
    """Loss, gradient and outputs of `module` against the scalar kernels."""
    loss, grad = module.loss_and_grad(w, X, Y)
    want_loss, want_grad = scalar.loss_and_grad(w, X, Y)
    _assert_close(loss, want_loss)
    _assert_close(grad, want_grad)
    _assert_close(module.forward(w, X), scalar.forward(w, X))


def _assert_close(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    scale = np.max(np.abs(want)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


SHAPES = {**NETWORKS, "blas": NETWORKS["relu_3442_softmax"], "seed": MLPShape((2, 2, 1), bias="shared")}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("n_samples", [1, 13, 100])  # one sample; a short last block; chunks
def test_loss_gradient_and_outputs_match_the_scalar_kernels(built, name, n_samples):
    if name == "blas" and not HAVE_SCIPY:
        pytest.skip("the BLAS layers need SciPy (the wide extra)")
    scalar, dense_module = built[name]
    shape = SHAPES[name]
    rng = np.random.default_rng(n_samples)
    _assert_matches(dense_module, scalar, rng.normal(size=len(scalar.PARAMS)), *_data(shape, n_samples, rng))


@pytest.mark.slow
def test_the_module_says_it_has_dense_kernels(built):
    scalar, dense_module = built["relu_3442_softmax"]
    text = open(dense_module.__file__).read()
    assert "# Options: kernels=dense, block=8, rewrites=none" in text
    assert "d loss/dz = " in text  # the per-unit derivative from SymPy, in the header
    assert dense_module.PARAMS == scalar.PARAMS


def test_the_seed_network_reproduces_the_blog(built):
    """The blog's f5 at its initial weights, and its 999 simultaneous steps (DESIGN.md), through dense kernels."""
    _, module = built["seed"]
    assert module.forward()[0] == pytest.approx(0.649864477526152, rel=1e-14)
    result = module.train(lr=0.3, max_iter=999)
    assert module.forward(result.w)[0] == pytest.approx(0.9994550920282003, rel=1e-13)


@pytest.mark.parametrize("name", ["relu_3442_softmax", "blas"])
def test_results_do_not_depend_on_the_thread_count(built, name):
    import numba

    if name not in built:
        pytest.skip("no SciPy: Numba's np.dot has no BLAS, so no layer goes through it")
    _, module = built[name]
    rng = np.random.default_rng(11)
    w = rng.normal(size=len(module.PARAMS))
    X, Y = _data(SHAPES[name], 500, rng)
    counts = (1, numba.config.NUMBA_NUM_THREADS, None, 1)
    gradients = [module.loss_and_grad(w, X, Y, threads=threads)[1] for threads in counts]
    trained = [module.train(w, X, Y, max_iter=5, threads=threads).w for threads in counts]
    for got in gradients[1:]:
        assert np.array_equal(got, gradients[0])  # bit for bit: the chunks are summed in a fixed order
    for got in trained[1:]:
        assert np.array_equal(got, trained[0])
    with pytest.raises(ValueError, match="threads must be None or an integer from 1"):
        module.train(w, X, Y, max_iter=1, threads=0)


def test_chunks_repeated_or_left_to_the_calling_thread_give_the_same_bits(built, monkeypatch):
    """The threaded path's ways around a helper thread without a core: the calling thread computes a chunk a helper
    is late with again (here at once, LATE_CHUNK 0), a chunk a helper failed on, or every chunk when no helper
    starts (a pool that never runs its work); the results are the same to the last bit as on one thread."""
    import threading
    from concurrent.futures import Future

    from symcompile.runtime import dense as runtime_dense

    _, module = built["relu_3442_softmax"]
    rng = np.random.default_rng(12)
    w = rng.normal(size=len(module.PARAMS))
    X, Y = _data(NETWORKS["relu_3442_softmax"], 500, rng)
    want, want_out = module.loss_and_grad(w, X, Y, threads=1), module.forward(w, X)
    monkeypatch.setattr(runtime_dense._WAYS, "choose", lambda shape: True)  # every call with chunks on threads
    runs, run_chunks = [], runtime_dense._run_chunks
    monkeypatch.setattr(runtime_dense, "_run_chunks", lambda *args: runs.append(1) or run_chunks(*args))
    monkeypatch.setattr(runtime_dense, "LATE_CHUNK", 0.0)
    repeated = module.loss_and_grad(w, X, Y, threads=2)
    monkeypatch.setattr(runtime_dense, "LATE_CHUNK", 1.5)
    caller, execute = threading.get_ident(), runtime_dense._ChunkRun.execute

    def fails_on_helpers(run, c):
        if threading.get_ident() != caller:
            raise MemoryError("a helper thread's failure")
        return execute(run, c)

    monkeypatch.setattr(runtime_dense._ChunkRun, "execute", fails_on_helpers)
    helpers_failed = module.loss_and_grad(w, X, Y, threads=2), module.forward(w, X)
    monkeypatch.setattr(runtime_dense._ChunkRun, "execute", execute)

    class NoStart:
        def submit(self, *args):
            return Future()  # never run

    monkeypatch.setattr(runtime_dense, "_pool", lambda threads: NoStart())
    alone = module.loss_and_grad(w, X, Y, threads=2)
    for loss, grad in (repeated, helpers_failed[0], alone):
        assert loss == want[0] and np.array_equal(grad, want[1])
    for out in (helpers_failed[1], module.forward(w, X)):
        assert np.array_equal(out, want_out)
    assert len(runs) == 5  # each call above went through the threaded path


def test_chunked_calls_take_the_way_that_ran_faster_and_try_the_other_now_and_then(monkeypatch):
    """symcompile.runtime.dense._Ways: the two ways (threads, one thread) alternate until each has TIMES_KEPT times,
    then the one with the lower median is taken, the other every PROBE_EVERY calls; on one thread, never threads."""
    import numba

    from symcompile.runtime import dense as runtime_dense

    ways, clock = runtime_dense._Ways(), [0.0]
    monkeypatch.setattr(runtime_dense.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)

    def call(threaded_seconds, serial_seconds):
        threaded = ways.start(("shape",))
        clock[0] += threaded_seconds if threaded else serial_seconds
        ways.end()
        return threaded

    first = [call(1.0, 2.0) for _ in range(2 * runtime_dense.TIMES_KEPT)]
    assert first == [True, False] * runtime_dense.TIMES_KEPT
    chosen = [call(1.0, 2.0) for _ in range(2 * runtime_dense.PROBE_EVERY)]
    assert chosen.count(False) == 2 and all(chosen[i] for i in range(len(chosen)) if chosen[i] is not False)
    # threads turn slow (a busy machine): the next probes of one thread find it faster, and it is taken
    later = [call(3.0, 2.0) for _ in range(4 * runtime_dense.PROBE_EVERY)]
    assert later[-runtime_dense.PROBE_EVERY + 1 :].count(True) <= 1
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert not any(call(1.0, 2.0) for _ in range(10))


# softmax3 in every run; xor and logistic (10 s each, the same kernels with a sigmoid output) with -m slow.
@pytest.mark.parametrize(
    "example", [pytest.param(e, marks=pytest.mark.slow) if e != "softmax3" else e for e in EXAMPLES]
)
def test_examples_match_the_scalar_kernels(example, tmp_path_factory):
    model = load_spec(f"examples/{example}.toml")
    scalar, dense_module = _build_pair(model, tmp_path_factory.mktemp(example))
    w = np.random.default_rng(4).normal(size=len(scalar.PARAMS))
    _assert_matches(dense_module, scalar, w, scalar.X, scalar.Y)
    _assert_close(dense_module.train(max_iter=50).w, scalar.train(max_iter=50).w)


def _digits_loss_and_grad(w, X, Y):
    """64-32-10 tanh/softmax cross-entropy by NumPy backpropagation: an independent reference."""
    W1, b1 = w[:2048].reshape(64, 32), w[2048:2080]
    W2, b2 = w[2080:2400].reshape(32, 10), w[2400:]
    hidden = np.tanh(X @ W1 + b1)
    z = hidden @ W2 + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(X)
    delta2 = (p * Y.sum(axis=1, keepdims=True) - Y) / n
    delta1 = (delta2 @ W2.T) * (1 - hidden**2)
    grad = np.concatenate([(X.T @ delta1).ravel(), delta1.sum(0), (hidden.T @ delta2).ravel(), delta2.sum(0)])
    return mlp_mean_loss(w, X, Y, [64, 32, 10], "tanh", "softmax", "softmax_cross_entropy", "per-neuron"), grad


@pytest.mark.slow
def test_digits_matches_numpy(tmp_path_factory):
    datasets = pytest.importorskip("sklearn.datasets", reason="needs the sklearn extra (pip install '.[sklearn]')")
    digits = datasets.load_digits()
    X, Y = digits.data / 16.0, np.eye(10)[digits.target]
    model = mlp_model("digits_dense", [64, 32, 10], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy", X=X, Y=Y)  # fmt: skip
    module = load_module(build(model, tmp_path_factory.mktemp("digits")).path)  # auto: dense
    w = np.random.default_rng(5).normal(scale=0.3, size=len(module.PARAMS))
    loss, grad = module.loss_and_grad(w)
    want_loss, want_grad = _digits_loss_and_grad(w, X, Y)
    _assert_close(loss, want_loss)
    _assert_close(grad, want_grad)
    _assert_close(module.forward(w), mlp_forward(w, X, [64, 32, 10], "tanh", "softmax", "per-neuron"))


@pytest.mark.slow
def test_wide_networks_skip_the_sympy_form_and_regenerate_their_weights(tmp_path):
    model = mlp_model("wide", [30, 200, 60, 3], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy", init="normal", seed=7)  # fmt: skip
    assert not model.symbolic and model.n_params == 30 * 200 + 200 + 200 * 60 + 60 + 60 * 3 + 3
    text = build(model, tmp_path).path.read_text()
    assert "PARAMS = _param_names()" in text and "INIT = _initial_weights()" in text
    module = load_module(tmp_path / "wide.py")
    assert module.PARAMS == tuple(param_names([30, 200, 60, 3], "per-neuron"))
    np.testing.assert_array_equal(module.INIT, model.init)
    np.testing.assert_array_equal(model.init, initial_weights([30, 200, 60, 3], "per-neuron", "normal", 7))


def test_kernel_choices_are_checked_in_one_line(built):
    from symcompile.seed import seed_model

    with pytest.raises(SymcompileError, match="kernels=dense applies to MLP models"):
        build(seed_model(), "unused", kernels="dense")
    with pytest.raises(SymcompileError, match="at most 5,000 with the scalar kernels.*kernels=dense or auto"):
        symbolic_form(mlp_model("big", [100, 100, 1]))
    with pytest.raises(SymcompileError, match="unknown kernels 'vector'"):
        build(seed_model(), "unused", kernels="vector")


def test_softmax_with_another_loss_is_refused_in_one_line():
    with pytest.raises(SymcompileError, match="softmax output supports only softmax_cross_entropy"):
        dense.dense_kernels_source(MLPShape((2, 3, 2), "tanh", "softmax", "mean_squared_error"))


def test_wide_layers_build_with_loops_without_scipy(monkeypatch):
    monkeypatch.setattr(dense, "_numba_has_blas", lambda: False)
    monkeypatch.setattr(dense, "BLAS_MIN_WEIGHTS", 0)
    source = dense.dense_kernels_source(MLPShape((3, 4, 2), "relu", "softmax", "softmax_cross_entropy"))
    assert "_DENSE_BLAS = False" in source and "import scipy" not in source


def test_bad_shapes_are_refused():
    with pytest.raises(SymcompileError, match="unknown hidden activation"):
        MLPShape((2, 3, 1), "swish")
    with pytest.raises(SymcompileError, match="softmax_cross_entropy needs"):
        MLPShape((2, 3, 2), "tanh", "sigmoid", "softmax_cross_entropy")
    with pytest.raises(SymcompileError, match="block must be a positive integer"):
        dense.dense_kernels_source(MLPShape((2, 3, 1)), block=0)


@pytest.mark.slow
def test_mini_batch_adam_matches_the_scalar_kernels(built):
    scalar, dense_module = built["softplus_2331_tanh_mse"]
    rng = np.random.default_rng(5)
    w = rng.normal(size=len(scalar.PARAMS))
    X, Y = _data(NETWORKS["softplus_2331_tanh_mse"], 40, rng)
    settings = dict(max_iter=3, optimizer="adam", lr=0.01, batch_size=8, seed=3)
    want = scalar.train(w, X, Y, **settings)
    got = dense_module.train(w, X, Y, threads=1, **settings)
    np.testing.assert_allclose(got.w, want.w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_history, want.loss_history, rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [None, 16])
def test_validation_and_early_stopping_match_the_scalar_kernels(built, batch_size):
    """The validation path (its accuracy runs through an object-mode block in dense modules), full-batch and
    in mini-batches, with the threaded path taken (the session's modules thread from two blocks on)."""
    scalar, dense_module = built["relu_3442_softmax"]
    rng = np.random.default_rng(8)
    w = rng.normal(size=len(scalar.PARAMS))
    X, Y = _data(NETWORKS["relu_3442_softmax"], 60, rng)
    X_val, Y_val = _data(NETWORKS["relu_3442_softmax"], 30, rng)
    settings = dict(max_iter=12, lr=0.5, X_val=X_val, Y_val=Y_val, patience=2, batch_size=batch_size)
    want = scalar.train(w, X, Y, **settings)
    got = dense_module.train(w, X, Y, **settings)
    assert (got.status, got.iterations) == (want.status, want.iterations)
    np.testing.assert_allclose(got.w, want.w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.val_loss_history, want.val_loss_history, rtol=1e-10)
    assert np.array_equal(got.accuracy_history, want.accuracy_history)
    assert len(got.accuracy_history) == got.iterations > 0


def test_second_order_and_least_squares_say_dense_modules_lack_them(built):
    _, dense_module = built["softplus_2331_tanh_mse"]  # mean squared error: a residual model
    for function in (dense_module.hessian, dense_module.residuals, dense_module.jacobian, dense_module.least_squares):
        with pytest.raises(
            NotImplementedError, match="not available in a module with dense kernels; build it with --kernels scalar"
        ):
            function()


FRESH_OR_CACHED = """
import sys
import numpy as np
from symcompile.writer import load_module
module = load_module(sys.argv[1])
module.forward(module.INIT)  # compiles the forward kernel's functions first, as a session would
print(module.loss_and_grad(module.INIT)[1].tobytes().hex())
"""


@pytest.mark.slow
def test_a_fresh_compile_and_a_cached_load_give_the_same_bits(tmp_path):
    """The gradient of a process that compiles the kernels (into an empty Numba cache, and with the cache off)
    equals, bit for bit, that of one loading them from the cache: the sums over samples once ran in an order
    that depended on which of these a process did."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 16))
    Y = np.eye(10)[rng.integers(10, size=300)]
    model = mlp_model("fresh_or_cached", [16, 24, 10], hidden_activation="tanh", output_activation="softmax",
                      loss="softmax_cross_entropy", X=X, Y=Y)  # fmt: skip
    path = str(build(model, tmp_path, kernels="dense").path)

    def gradient(**settings):
        environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache"), **settings}
        done = subprocess.run([sys.executable, "-c", FRESH_OR_CACHED, path], env=environment, capture_output=True,
                              text=True, check=True)  # fmt: skip
        return done.stdout.strip()

    fresh, cached, uncached = gradient(), gradient(), gradient(NUMBA_DISABLE_CACHE="1")
    assert fresh == cached == uncached


def test_blas_layers_stay_on_one_thread_while_chunks_run_on_the_threads(built):
    """A BLAS network's chunks run on the threads asked for, each calling BLAS on one thread (threadpoolctl): BLAS's
    own threads would compete with them (and OpenBLAS's change a product's last bits with their count)."""
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="needs the wide extra (pip install '.[wide]')")
    if "blas" not in built:
        pytest.skip("no SciPy: Numba's np.dot has no BLAS, so no layer goes through it")
    _, module = built["blas"]

    def blas_threads():
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}

    for threads, want in ((None, {1}), (1, {1}), (2, {1})):
        with module._blas_threads(threads):
            assert blas_threads() == want


def _host_has_avx2():
    import llvmlite.binding

    features = llvmlite.binding.get_host_cpu_features()
    return features.get("avx2", False) and features.get("fma", False)


@pytest.mark.slow
@pytest.mark.skipif(not _host_has_avx2(), reason="this CPU has no AVX2/FMA to vectorize with")
def test_the_per_block_loops_vectorize_the_runtimes_math(tmp_path):
    """The vectorizable functions (tanh, softplus; exp and log in the softmax) come from symcompile.runtime.vecmath,
    compiled once per machine: LLVM still inlines them into the module's loops over a block of the default size
    and vectorizes them (packed FMAs on ymm/zmm registers), and no libm call is left. (With blocks of 8, as in
    `built`, LLVM unrolls those loops instead.) A float32 module's hidden units too, with tanh to float32's accuracy.
    """
    import re
    import sys

    shapes = {"softplus": MLPShape((2, 3, 3, 1), "softplus", "tanh", "mean_squared_error"),
              "softmax": MLPShape((4, 8, 3), "tanh", "softmax", "softmax_cross_entropy"),
              "float32": MLPShape((4, 8, 3), "tanh", "softmax", "softmax_cross_entropy")}  # fmt: skip
    functions = {"softplus": ["_dense_hidden"], "softmax": ["_dense_hidden", "_dense_output", "_dense_output_loss"],
                 "float32": ["_dense_hidden"]}  # fmt: skip
    for name, shape in shapes.items():
        dtype = "float32" if name == "float32" else "float64"
        kernels = dense.dense_kernels_source(shape, dtype=dtype)
        source = "import math\n\nimport numba\nimport numpy as np\n\n\n" + kernels
        assert "from symcompile.runtime.vecmath import " in source and "def _v" not in source
        path = tmp_path / f"vectorized_{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"test_dense_vectorized_{name}", path)
        module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # compiles the per-block functions (dense.prepare)
        for function in functions[name]:
            dispatcher = getattr(module, function)
            signature = dispatcher.signatures[0]
            assert len(re.findall(r"vfmadd\w*pd\s[^\n]*%[yz]mm", dispatcher.inspect_asm(signature))) >= 4, function
            assert not re.search(r"call [^\n]*@(llvm\.)?(exp|log|tanh)[\w.]*\(", dispatcher.inspect_llvm(signature))
