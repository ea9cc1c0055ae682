"""Small compiled helpers on the weights' vectors, shared by the training loops and the least-squares solver."""

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def copy_into(target, source):
    """target[:] = source as a loop: Numba compiles `a[:] = b` with a shape check whose error message (string
    formatting) costs about two seconds of compile."""
    for j in range(target.shape[0]):
        target[j] = source[j]


@numba.njit(cache=True, error_model="numpy")
def all_finite(values):
    # No early exit: without branches the loop is short straight code for a small model, and vectorizes for a
    # large one (an exit would be taken only once a run has failed).
    finite = True
    for j in range(values.shape[0]):
        finite &= np.isfinite(values[j])
    return finite


@numba.njit(cache=True, error_model="numpy")
def all_below(values, tol):
    """Whether every |value| < tol."""
    for value in values:
        if not abs(value) < tol:
            return False
    return True


# For a module's own full-batch loop (symcompile/emit.py: named_full_batch_loop), inlined there by Numba: LLVM
# does not inline a call into the runtime's cached code (rules.inlined_gradient_descent_step says what it cost),
# and each call passes its arrays' descriptors (on the blog's loop, inlining these with the sweep took it from
# 280 to 245 ns an iteration; BENCHMARKS.md, issue 20).
inlined_copy_into = numba.njit(inline="always", error_model="numpy")(copy_into.py_func)
inlined_all_finite = numba.njit(inline="always", error_model="numpy")(all_finite.py_func)
inlined_all_below = numba.njit(inline="always", error_model="numpy")(all_below.py_func)
