"""Writes the prototype modules from generated/seed_mlp.py and one loop text (python make.py SEED_MODULE)."""

import sys

seed = open(sys.argv[1]).read().splitlines(keepends=True)


def block(first, last):  # lines of the seed module, 1-based, inclusive
    return "".join(seed[first - 1 : last])


def find(text):
    return next(i + 1 for i, l in enumerate(seed) if l.startswith(text))


def fn(name):  # the decorated function `name` up to the next decorator
    start = find(f"def {name}(") - 1
    end = next(i for i in range(start + 1, len(seed)) if seed[i].startswith("@numba.njit"))
    return block(start, end)


HEAD = """import math
import numba
import numpy as np
_N_PARAMS = 7
_DIVERGED_FACTOR = 1e6
_ENDED_ABOVE_FACTOR = 10.0
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
"""
KERNELS = (
    fn("_sigmoid") + fn("_softplus") + fn("_forward_kernel") + fn("_loss_and_grad_kernel") + fn("_accuracy_kernel")
)
HELPERS = "".join(
    fn(n)
    for n in (
        "_copy_into",
        "_weights_finite",
        "_diverged",
        "_ended_above",
        "_all_below",
        "_shuffle",
        "_batch_buffers",
        "_gather",
    )
)
# A: today's shape, verbatim: kernels, helpers, the full-batch and mini-batch Adam loops in the model module.
open("model_a.py", "w").write(HEAD + KERNELS + HELPERS + fn("_train_adam_kernel") + fn("_train_adam_batches_kernel"))

# One loop text, mini-batch Adam; full batch is batch_size >= n_samples (no copy when WHOLE).
LOOP = """
def NAME(KARGSw, X_train, Y_train, lr, weight_decay, betas, eps, tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies):
    n = NPARAMS
    grad = np.empty(n)
    steps = np.empty(n)
    previous = np.empty(n)
    n_samples = X_train.shape[0]
    X_batch, Y_batch, X_last, Y_last = batch_buffers(X_train, Y_train, batch_size)
    out_val = np.empty((X_val.shape[0], 1))
    iteration, step, bad_epochs, best_loss = int(run[0]), int(run[1]), int(run[2]), run[4]
    if run[5] == 0.0:
        diverged(LG(w, X_train, Y_train, grad), run)
    first = iteration
    last = losses.shape[0] - 1
    status = -1
    while iteration < stop:
        if rng.shape[0]:
            shuffle(order, rng)
        total = 0.0
        below_tol = True
        finite = True
        for start in range(0, n_samples, batch_size):
            if WHOLE and batch_size >= n_samples:
                X, Y = X_train, Y_train
            else:
                X, Y = (X_batch, Y_batch) if start + batch_size <= n_samples else (X_last, Y_last)
                gather(X_train, Y_train, order, start, X, Y)
            loss = LG(w, X, Y, grad)
            adam_step(w, grad, state, step, lr, weight_decay, betas, eps, previous, steps)
            finite = np.isfinite(loss) and weights_finite(w)
            if not finite:
                break
            step += 1
            total += loss * X.shape[0]
            below_tol = below_tol and all_below(steps, tol)
        if not finite:
            copy_into(w, previous)
            status = 2
            break
        losses[min(iteration - first, last)] = total / n_samples
        if diverged(total / n_samples, run):
            copy_into(w, previous)
            status = 3
            break
        if X_val.shape[0] > 0:
            val_loss = LG(w, X_val, Y_val, grad)
            val_losses[iteration - first] = val_loss
            val_accuracies[iteration - first] = ACC(w, X_val, Y_val, out_val)
            if val_loss < best_loss:
                best_loss, bad_epochs = val_loss, 0
                copy_into(best_w, w)
                run[3] = iteration + 1
            else:
                bad_epochs += 1
        iteration += 1
        if below_tol:
            status = 1
            break
        if 0 < patience <= bad_epochs:
            status = 4
            break
    if status < 0 and iteration == max_iter:
        status = 0
    if status >= 0:
        final_loss = LG(w, X_train, Y_train, grad)
        losses[min(iteration - first, last)] = final_loss
        if status <= 1 and patience == 0 and ended_above(final_loss, run):
            status = 3
    run[0], run[1], run[2], run[4] = iteration, step, bad_epochs, best_loss
    return status
"""


def loop(name, kargs, lg, acc, nparams, whole="True"):
    return (
        LOOP.replace("NAME", name)
        .replace("KARGS", kargs)
        .replace("LG", lg)
        .replace("ACC", acc)
        .replace("NPARAMS", nparams)
        .replace("WHOLE", whole)
    )


RT = "from rtproto.core import adam_step, copy_into, weights_finite, diverged, ended_above, all_below, shuffle, batch_buffers, gather\n"
NJ = '\n@numba.njit(cache=True, error_model="numpy")'
# B: the loop in the model module, the runtime's step and helpers by global name.
b = HEAD + RT + KERNELS + NJ + loop("train", "", "_loss_and_grad_kernel", "_accuracy_kernel", "_N_PARAMS")
open("model_b.py", "w").write(b)
open("model_b_twin.py", "w").write(b)  # warms the runtime's cache: the "second model" case
open("model_b_copy.py", "w").write(
    HEAD
    + RT
    + KERNELS
    + NJ
    + loop(  # E: the same loop, a batch always copied
        "train", "", "_loss_and_grad_kernel", "_accuracy_kernel", "_N_PARAMS", whole="False"
    )
)
# C, D: one generic loop in the runtime, the kernels as arguments.
generic = loop("train_generic", "lg, acc, ", "lg", "acc", "w.shape[0]")
open("rtproto/loops.py", "w").write(
    """import numba
import numpy as np
from numba import types
from numba.extending import register_jitable
"""
    + RT
    + '''
def make_train(lg, acc):
    """D2: a closure over the model's kernels, compiled and cached per model."""
    def train(w, X_train, Y_train, lr, weight_decay, betas, eps, tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies):
        return train_generic_inline(lg, acc, w, X_train, Y_train, lr, weight_decay, betas, eps, tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies)
    return numba.njit(cache=True, error_model="numpy")(train)
'''
    + generic
    + """
train_c = numba.njit(cache=True, error_model="numpy")(train_generic)            # C
train_generic_inline = numba.njit(inline="always", error_model="numpy")(train_generic)  # D2, D3
train_jitable = register_jitable(train_generic)                                # D4
"""
)
open("rtproto/loops_ft.py", "w").write(
    """import math
import numba
import numpy as np
from numba import types
"""
    + RT
    + """
a1, a2 = types.float64[::1], types.float64[:, ::1]
LG_T = types.FunctionType(types.float64(a1, a2, a2, a1))
ACC_T = types.FunctionType(types.float64(a1, a2, a2, a2))
SIG = types.int64(LG_T, ACC_T, a1, a2, a2, types.float64, types.float64, types.UniTuple(types.float64, 2), types.float64,
    types.float64, types.int64, types.uint64[::1], types.int64[::1], a2, a2, types.int64, a2, a1, a1, types.int64,
    types.int64, a1, a1, a1)
"""
    + generic.replace("\ndef ", '\n@numba.njit(SIG, cache=True, error_model="numpy")\ndef ')
)
stub = """
@numba.njit(cache=True, error_model="numpy")
def train(w, X_train, Y_train, lr, weight_decay, betas, eps, tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies):
    return loops.FN(_loss_and_grad_kernel, _accuracy_kernel, w, X_train, Y_train, lr, weight_decay, betas, eps, tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies)
"""
kd = KERNELS.replace("forceinline=True", "")  # D1: no inlining through a function pointer anyway
open("model_c.py", "w").write(HEAD + "from rtproto import loops\n" + KERNELS)
open("model_d1.py", "w").write(HEAD + "from rtproto import loops_ft as loops\n" + kd)
open("model_d2.py", "w").write(
    HEAD
    + "from rtproto import loops\n"
    + KERNELS
    + "train = loops.make_train(_loss_and_grad_kernel, _accuracy_kernel)\n"
)
open("model_d3.py", "w").write(
    HEAD + "from rtproto import loops\n" + KERNELS + stub.replace("FN", "train_generic_inline")
)
open("model_d4.py", "w").write(HEAD + "from rtproto import loops\n" + KERNELS + stub.replace("FN", "train_jitable"))
# D1, full batch: the seed's dedicated full-batch Adam loop, in the runtime, the kernels as FunctionType arguments.
full = fn("_train_adam_kernel").replace('@numba.njit(cache=True, error_model="numpy")\n', "")
full = full.replace("def _train_adam_kernel(w,", "def train_full(lg, acc, w,").replace("_loss_and_grad_kernel(", "lg(")
full = full.replace("_accuracy_kernel(", "acc(").replace("_N_PARAMS", "w.shape[0]")
for h in ("copy_into", "weights_finite", "diverged", "ended_above", "all_below"):
    full = full.replace("_" + h + "(", h + "(")
open("rtproto/loops_ft.py", "a").write(
    """
SIG_FULL = types.int64(LG_T, ACC_T, a1, a2, a2, types.float64, types.float64, types.float64, types.boolean,
    types.UniTuple(types.float64, 2), types.float64, types.float64, a2, a2, types.int64, a2, a1, a1, types.int64,
    types.int64, a1, a1, a1)
@numba.njit(SIG_FULL, cache=True, error_model="numpy")
"""
    + full
)
