"""The training loops: the sequential (blog-order) sweep has two kernels, one straight-line program for a single
sample and a loop over samples for several, and both must follow the blog's own subs loop; and either update rule
stops at the last finite weights when descent diverges."""

import numpy as np
import pytest
import sympy as sp

from symcompile import compile_model
from symcompile.reference import BlogLoop


def test_sweep_over_several_samples_follows_the_blog_loop(seed_module):
    """Two copies of the blog's sample have the blog's mean loss and gradient, but take the many-sample kernel."""
    expected, expected_steps = BlogLoop().run(3)
    X, Y = np.repeat(seed_module.X, 2, axis=0), np.repeat(seed_module.Y, 2, axis=0)
    many = seed_module.train(seed_module.INIT, X, Y, max_iter=3, update="sequential")
    np.testing.assert_allclose(many.w, expected, rtol=1e-12)


def test_one_sample_sweep_reports_the_blog_loss_and_steps(seed_module):
    """The single-sample kernel's loss is the blog's at the starting weights, and its steps drive `tol`."""
    blog = BlogLoop()
    start = list(seed_module.INIT)
    values, steps = blog.iterate(start)
    below = seed_module.train(max_iter=5, tol=max(map(abs, steps)) * 1.001)
    above = seed_module.train(max_iter=1, tol=max(map(abs, steps)) * 0.999)
    assert below.iterations == 1 and below.converged
    assert above.iterations == 1 and not above.converged
    np.testing.assert_allclose(below.w, values, rtol=1e-12)
    assert below.loss_history[0] == pytest.approx(float(blog.loss.subs(dict(zip(blog.params, start)))), rel=1e-13)


@pytest.fixture(scope="module")
def line_fit(tmp_path_factory):
    """A straight-line least-squares fit: no divisions, so a too-large step overflows to inf rather than raising."""
    a, b, x, y = sp.symbols("a b x y")
    return compile_model(
        a * x + b, (a * x + b - y) ** 2, [a, b], [x], [y], name="line_fit", init=[0.0, 0.0],
        X=[[1.0], [2.0], [3.0]], Y=[1.0, 2.0, 3.0], out_dir=tmp_path_factory.mktemp("generated"),
    )  # fmt: skip


@pytest.mark.parametrize("update", ["sequential", "simultaneous"])
def test_diverging_descent_stops_at_the_last_finite_weights(line_fit, update):
    result = line_fit.train(lr=10.0, max_iter=10_000, update=update)
    assert result.status == "non-finite" and not result.converged and result.iterations < 10_000
    assert np.all(np.isfinite(result.w)) and np.all(np.isfinite(result.loss_history[:-1]))
    assert np.max(np.abs(result.w)) > 1e100  # it did diverge, a long way
    np.testing.assert_array_equal(result.w, line_fit.train(lr=10.0, max_iter=result.iterations, update=update).w)
