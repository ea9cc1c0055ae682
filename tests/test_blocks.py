"""The blocks layouts: the scalar loss-and-gradient kernel over blocks of samples (templates/module.py.j2).

Each example is built per sample ("unrolled", libm) and in blocks (symcompile.vecmath's functions), both
straight-line ("blocks") and rolled into loops ("rolled-blocks"); loss and gradient must agree to 1e-12
relative for one sample, a short block, a whole one and several, and training must follow the same path.
"""

import dataclasses

import numpy as np
import pytest

from symcompile.options import SAMPLE_BLOCK
from symcompile.pipeline import build, generate
from symcompile.seed import seed_model
from symcompile.spec import load_spec
from symcompile.writer import load_module

EXAMPLES = ("logistic", "softmax3")  # sigmoid and softplus; tanh, exp and several outputs


BLOCK_LAYOUTS = ("blocks", "rolled-blocks")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """example -> {layout: module}, for "unrolled" and BLOCK_LAYOUTS, built once."""
    folder = tmp_path_factory.mktemp("blocks")
    modules = {}
    for name in EXAMPLES:
        model = load_spec(f"examples/{name}.toml")
        modules[name] = {
            layout: load_module(
                build(dataclasses.replace(model, name=f"{name}_{layout.replace('-', '_')}"), folder, layout=layout).path
            )  # fmt: skip
            for layout in ("unrolled", *BLOCK_LAYOUTS)
        }
    return modules


@pytest.fixture(params=BLOCK_LAYOUTS)
def pairs(built, request):
    """example -> (unrolled module, the module in one of BLOCK_LAYOUTS)."""
    return {name: (modules["unrolled"], modules[request.param]) for name, modules in built.items()}


def _data(module, n_samples, rng):
    """`n_samples` rows drawn from the module's own data, so that targets stay valid (0/1, one-hot)."""
    rows = rng.integers(len(module.X), size=n_samples)
    return module.X[rows] + rng.normal(scale=0.1, size=(n_samples, module.X.shape[1])), module.Y[rows]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("n_samples", [1, SAMPLE_BLOCK - 1, SAMPLE_BLOCK, 3 * SAMPLE_BLOCK + 5])
def test_blocks_equal_the_per_sample_kernel(pairs, name, n_samples):
    unrolled, blocks = pairs[name]
    rng = np.random.default_rng(n_samples)
    X, Y = _data(unrolled, n_samples, rng)
    w = rng.normal(size=len(unrolled.PARAMS))
    loss, grad = blocks.loss_and_grad(w, X, Y)
    want_loss, want_grad = unrolled.loss_and_grad(w, X, Y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-12 * np.max(np.abs(want_grad)))


@pytest.mark.slow
def test_blocks_stay_stable_where_exp_overflows(pairs):
    """Weights that put the logits near +-1000, where exp overflows: softplus and sigmoid must stay finite and
    agree (the blocks kernel's are symcompile.vecmath's, the per-sample kernel's the module's own)."""
    unrolled, blocks = pairs["logistic"]
    w = np.array([800.0, -800.0, 3.0])
    loss, grad = blocks.loss_and_grad(w)
    want_loss, want_grad = unrolled.loss_and_grad(w)
    assert np.isfinite(loss) and loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12)


@pytest.mark.slow
def test_training_in_blocks_follows_the_same_path(pairs):
    unrolled, blocks = pairs["logistic"]
    for settings in (dict(max_iter=200), dict(max_iter=5, optimizer="adam", lr=0.05, batch_size=16, seed=2)):
        got, want = blocks.train(**settings), unrolled.train(**settings)
        np.testing.assert_allclose(got.w, want.w, rtol=1e-10)
        np.testing.assert_allclose(got.loss_history, want.loss_history, rtol=1e-10)


def test_rolled_blocks_roll_the_statements_and_run_each_over_the_block(built):
    source = open(built["softmax3"]["rolled-blocks"].__file__).read()
    kernel = source[source.index("def _loss_and_grad_kernel") :]
    assert "for k in range(" in kernel and "            for _s in range(_count):" in kernel and "t[k, _s] = " in kernel


def test_auto_takes_blocks_only_where_the_data_fills_one():
    logistic = load_spec("examples/logistic.toml")  # 100 students
    assert len(logistic.X) >= SAMPLE_BLOCK and generate(logistic).layout == "blocks"
    assert generate(seed_model()).layout == "unrolled"  # one sample: the blog's straight-line loop stays
    few = dataclasses.replace(logistic, X=logistic.X[: SAMPLE_BLOCK - 1], Y=logistic.Y[: SAMPLE_BLOCK - 1])
    assert generate(few).layout == "unrolled"
