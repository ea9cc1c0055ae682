"""A generated module's full-batch training run, set up once and called straight into the runtime's compiled loop.

The benches time the loop itself beside `train` (which checks its arguments, sets this up again and runs the loop
through `symcompile.runtime.training.train_in_chunks`): `FullBatchRun` builds the arguments `train` would pass for
a run without validation data, and calls `symcompile.runtime.loops.train_full_batch` with them.
"""

from __future__ import annotations

import functools

import numpy as np

from symcompile.runtime import loops, rules

# The validation histories of a run without validation data: the loop writes nothing into them.
NO_VALIDATION_HISTORIES = (np.empty(0), np.empty(0))


def _counters_at_start():
    """`run` before the first iteration (symcompile.runtime.loops names its slots)."""
    return loops.new_run()


class FullBatchRun:
    """Full-batch training of `module` with `optimizer` (a name `train` takes) from w0 on X, Y, without validation.

    `arguments` are the compiled loop's arguments up to `best_w`, as `train` passes them to `train_in_chunks`;
    they hold `w`, the rule's `state` and the counters `run`, which each call carries on from. `loop` is the
    compiled loop, run on the module's threads where its kernels are parallel (dense modules).
    """

    def __init__(self, module, optimizer, w0, X, Y, hyperparameters=None, tol=0.0):
        model = module.MODEL
        rule, values = model.optimizer(optimizer, None, hyperparameters or {})
        X = model.samples(X)
        Y = model.target_rows(Y, X.shape[0])
        self.w = model.weights(w0).copy()
        self.state, self.run = rules.init(rule, self.w.shape[0]), _counters_at_start()
        no_validation = np.empty((0, X.shape[1])), np.empty((0, Y.shape[1]))
        self.arguments = (*model.loop_kernels(rule, False), self.w, X, Y, rules.vector(values), tol, *no_validation,
                          0, self.state, self.run, self.w.copy())  # fmt: skip
        serial = model.call_on_threads is None
        self.loop = loops.train_full_batch if serial else functools.partial(model.run, loops.train_full_batch, None)

    def restart(self, w0):
        """Back to the start, from the weights w0."""
        self.w[:] = w0
        self.state[:] = 0.0
        self.run[:] = _counters_at_start()

    def __call__(self, iterations, losses):
        """Run `iterations` more iterations in one call; their losses, then the final one, go into `losses`
        (room for iterations + 1). Returns the loop's status code (symcompile.runtime.loops.STATUS)."""
        stop = int(self.run[loops.ITERATION]) + iterations
        return self.loop(*self.arguments, stop, stop, losses, *NO_VALIDATION_HISTORIES)
