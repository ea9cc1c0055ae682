"""The sequential (blog-order) sweep has two kernels: one straight-line program for a single sample, and a loop
over samples for several. Both must follow the blog's own subs loop."""

import numpy as np
import pytest

from references.blog_loop import BlogLoop


@pytest.mark.slow
def test_sweep_over_several_samples_follows_the_blog_loop(seed_module):
    """Two copies of the blog's sample have the blog's mean loss and gradient, but take the many-sample kernel."""
    expected, expected_steps = BlogLoop().run(3)
    X, Y = np.repeat(seed_module.X, 2, axis=0), np.repeat(seed_module.Y, 2, axis=0)
    many = seed_module.train(seed_module.INIT, X, Y, max_iter=3, update="sequential")
    np.testing.assert_allclose(many.w, expected, rtol=1e-12)


@pytest.mark.slow
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


def test_the_loop_is_chosen_once_per_run(seed_module):
    """One sample without weight decay (the blog's run) takes the loop that calls the straight-line sweep by name;
    more samples or a weight decay take the loop through the dispatching step (the many-sample route above)."""
    model = seed_module.MODEL
    rule, plain = model.optimizer("sequential", None, {})
    _, decayed = model.optimizer("sequential", None, {"weight_decay": 0.1})
    assert model.full_batch_loop(rule, False, 1, plain)[0] is seed_module._train_one_sample_sweep_kernel
    assert model.full_batch_loop(rule, False, 2, plain)[0] is seed_module._train_full_batch_kernel
    assert model.full_batch_loop(rule, False, 1, decayed)[0] is seed_module._train_full_batch_kernel
