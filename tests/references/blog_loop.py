"""The blog's own gradient-descent loop, evaluated with `expr.subs`, as the reference.

Same expressions as the blog (the sample and target substituted as numbers,
NumPy's float `e`), the same seven `diff` derivatives, the same sequential
update order, the same learning rate. It is slow by nature (about 0.2 s per
iteration), so callers choose how many iterations to run.
"""

import sympy as sp

from symcompile import seed


class BlogLoop:
    """The blog's symbolic model and its subs-based update, one object per loop."""

    def __init__(self, learning_rate=seed.TRAINING.lr):
        self.params = sp.symbols(seed.PARAM_NAMES)
        self.f5 = seed.network_output(*seed.SAMPLE, *self.params)
        self.loss = seed.binary_cross_entropy(self.f5, seed.TARGET)
        self.derivatives = [sp.diff(self.loss, p) for p in self.params]
        self.learning_rate = learning_rate

    def _subs(self, expr, values):
        return expr.subs(dict(zip(self.params, values)))

    def output(self, values):
        return float(self._subs(self.f5, values))

    def iterate(self, values):
        """One iteration of the blog's loop: each parameter's new value feeds the next derivative."""
        values = list(values)
        steps = []
        for j, derivative in enumerate(self.derivatives):
            step = self.learning_rate * self._subs(derivative, values)
            values[j] = values[j] - step
            steps.append(float(step))
        return [float(v) for v in values], steps

    def run(self, iterations, values=seed.INIT, progress=None):
        """Run `iterations` iterations from `values`; `progress` wraps the range (e.g. tqdm)."""
        steps = []
        for _ in (progress or iter)(range(iterations)):
            values, steps = self.iterate(values)
        return list(values), steps
