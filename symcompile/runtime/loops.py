"""The compiled training loops, one for full-batch training and one for mini-batches, for every model and rule.

Each takes the model's kernels and the rule's step as function pointers (`numba.types.FunctionType`, explicit
signatures below), so each loop is compiled once per machine and cached, and a new model compiles only its
own kernels (BENCHMARKS.md, "Issue 20 groundwork": design D1). Full batch keeps its own loop: sharing the
mini-batch loop cost 12-20% of the seed's iteration (the batch loop, the epoch sums).

A call runs iterations run[ITERATION] to `stop` of `max_iter` and returns a status code (-1: `stop` came first; call
again to go on). What is carried from one call to the next (the weights, the rule's state, the counters in
`run`, the samples' order and its random state, the best weights): see `training.train_in_chunks`.
`run` holds the counters a run carries between calls, one slot each (named below; `new_run()` makes one).
"""

import numba
import numpy as np
from numba import types

from .arrays import (  # noqa: F401 (the inlined ones: for modules' own loops, symcompile/emit.py)
    all_below, all_finite, copy_into, inlined_all_below, inlined_all_finite, inlined_copy_into,
)  # fmt: skip
from .lazy import njit_on_first_call
from .rules import MODEL_STEP, STEP
from .signatures import LOSS_AND_GRAD, MATRIX, VECTOR

# accuracy(w, X, Y, out) -> the fraction classified right (out: room for the outputs)
ACCURACY = types.FunctionType(types.float64(VECTOR, MATRIX, MATRIX, MATRIX))

# The slots of `run`, a float64 vector the loops read and write in compiled code: iterations done, updates done
# (the rules' step count), epochs without a better validation loss, the best validation loss's iteration (its
# count after it), the best validation loss, and 1 + |the first loss| (the divergence tests' scale; 0 before it).
ITERATION, UPDATES, BAD_EPOCHS, BEST_ITERATION, BEST_LOSS, LOSS_SCALE = range(6)
RUN_SLOTS = ("ITERATION", "UPDATES", "BAD_EPOCHS", "BEST_ITERATION", "BEST_LOSS", "LOSS_SCALE")


def new_run(updates=0):
    """The counters of a run that has not started (`updates`: a rule's step count carried over)."""
    run = np.zeros(len(RUN_SLOTS))
    run[UPDATES], run[BEST_LOSS] = updates, np.inf
    return run


# The loops' status codes; "interrupted" (Ctrl-C) is noticed between calls.
STATUS = ("max_iter", "converged", "non-finite", "diverged", "early_stopped", "interrupted")
INTERRUPTED = 5
# Training has diverged once the loss exceeds this many times (1 + |its first value|): stopped there, long
# before it overflows. Every kernel uses NumPy's error model: x/0 gives inf or NaN, never an exception.
DIVERGED_FACTOR = 1e6
# A run that stops (max_iter, converged) with its loss above this many times (1 + |its first value|) diverged
# too: a loss may rise for a while (momentum, Adam's first steps, a noisy batch) but not end tenfold above its
# start; the runs that diverged without passing the limit above ended 1e4 times above it and more.
ENDED_ABOVE_FACTOR = 10.0

# SplitMix64's constants (Steele, Lea and Flood, 2014): the mini-batches' order comes from it, in compiled code.
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)

_njit = numba.njit(cache=True, error_model="numpy")
# The loops' parts that call kernels, inlined where they are called (Numba's IR): a kernel passed to a compiled
# function as an argument would make that function uncacheable in the module's inlined loop.
_inlined = numba.njit(inline="always", error_model="numpy")
_I = types.int64
_KERNELS = (LOSS_AND_GRAD, ACCURACY, STEP, MODEL_STEP, types.boolean)
# w, X, Y, hyperparameters, tol, [batch_size, rng, order,] X_val, Y_val, patience, state, run, best_w, stop,
# max_iter, losses, val_losses, val_accuracies
_RUN = (MATRIX, MATRIX, _I, MATRIX, VECTOR, VECTOR, _I, _I, VECTOR, VECTOR, VECTOR)
FULL_BATCH = types.int64(*_KERNELS, VECTOR, MATRIX, MATRIX, VECTOR, types.float64, *_RUN)
MINI_BATCH = types.int64(
    *_KERNELS, VECTOR, MATRIX, MATRIX, VECTOR, types.float64, _I, types.uint64[::1], _I[::1], *_RUN
)


@_njit
def diverged(loss, run):
    """Whether the loss has passed DIVERGED_FACTOR * (1 + |first loss|) (run[LOSS_SCALE]; 0 before the first)."""
    if run[LOSS_SCALE] == 0.0:
        run[LOSS_SCALE] = abs(loss) + 1.0
        return False
    return loss > DIVERGED_FACTOR * run[LOSS_SCALE]


inlined_diverged = numba.njit(inline="always", error_model="numpy")(diverged.py_func)


@_njit
def ended_above(final_loss, run):
    """Whether a run that stopped ends far above where it started (ENDED_ABOVE_FACTOR)."""
    return final_loss > ENDED_ABOVE_FACTOR * run[LOSS_SCALE]


@_njit
def class_accuracy(out, Y):
    """The fraction of samples whose largest output is their target's largest (its class): softmax outputs."""
    correct = 0
    for n in range(out.shape[0]):
        correct += np.argmax(out[n]) == np.argmax(Y[n])
    return correct / out.shape[0]


@_njit
def threshold_accuracy(out, Y):
    """The fraction of outputs on the same side of 0.5 as their targets: outputs that are probabilities."""
    correct = 0
    for n in range(out.shape[0]):
        for k in range(out.shape[1]):
            correct += (out[n, k] >= 0.5) == (Y[n, k] >= 0.5)
    return correct / out.size


@_njit
def no_accuracy(w, X, Y, out):
    """Passed as the accuracy where none is recorded (no validation data, or not a classifier): the model's
    accuracy kernels then never compile."""
    return np.nan


@_njit
def shuffle(order, rng):
    """Fisher-Yates shuffle of `order` in place with SplitMix64 numbers; rng[0] is the generator's state."""
    state = rng[0]
    for i in range(order.shape[0] - 1, 0, -1):
        state += _GOLDEN_GAMMA
        z = (state ^ (state >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        j = (z ^ (z >> np.uint64(31))) % np.uint64(i + 1)  # the bias of a modulo is below 2**-40 here
        order[i], order[j] = order[j], order[i]
    rng[0] = state


@_njit
def gather(X, Y, order, start, X_batch, Y_batch):
    """Copy samples order[start], order[start + 1], ... into the batch's arrays. (The row read once per sample:
    read in the inner loops, it kept them from vectorizing, 3.1 us a batch of 32 digits against 0.9 us.)"""
    for i in range(X_batch.shape[0]):
        row = order[start + i]
        for k in range(X.shape[1]):
            X_batch[i, k] = X[row, k]
        for k in range(Y.shape[1]):
            Y_batch[i, k] = Y[row, k]


@_njit
def in_order(order):
    """Whether order[i] = i for every i: the batches are then slices of the samples, no copies needed."""
    for i in range(order.shape[0]):
        if order[i] != i:
            return False
    return True


@_inlined
def _step(loss_and_grad, step, model_step, own_step, w, X, Y, hyperparameters, state, t, grad, previous, steps):
    """One update on the batch X, Y; returns its loss at the starting weights (`previous`)."""
    if own_step:  # the model's own step (sequential, newton)
        copy_into(previous, w)
        return model_step(w, X, Y, hyperparameters, previous, steps)
    loss = loss_and_grad(w, X, Y, grad)
    step(w, grad, state, t, hyperparameters, previous, steps)
    return loss


@_njit
def record_validation(val_loss, accuracy, w, iteration, first, run, best_w, val_losses, val_accuracies):
    """Record the validation loss and accuracy after an iteration; keep the best weights. Returns whether
    the loss is not better than the best (an epoch that counts against `patience`)."""
    val_losses[iteration - first] = val_loss
    val_accuracies[iteration - first] = accuracy
    if val_loss < run[BEST_LOSS]:
        run[BEST_LOSS] = val_loss
        copy_into(best_w, w)
        run[BEST_ITERATION] = iteration + 1
        return False
    return True


@_njit
def final_status(status, final_loss, iteration, first, patience, run, losses):
    """The status of a loop that has stopped (status >= 0), the final loss recorded after the iterations."""
    losses[min(iteration - first, losses.shape[0] - 1)] = final_loss
    if status <= 1 and patience == 0 and ended_above(final_loss, run):  # (patience returns the best weights)
        return 3
    return status


def _train_full_batch(loss_and_grad, accuracy, step, model_step, own_step, w, X, Y, hyperparameters, tol, X_val,
                      Y_val, patience, state, run, best_w, stop, max_iter, losses, val_losses, val_accuracies):  # fmt: skip
    """Full-batch training: one iteration is one update on all of X, Y (symcompile.runtime.loops). The kernels'
    calls are written out here, not in helpers: a kernel passed on to another function is called through a
    pointer even where that function is inlined (on the seed, 115 ns an iteration against 63 ns)."""
    grad, steps, previous = np.empty(w.shape[0]), np.empty(w.shape[0]), np.empty(w.shape[0])
    out_val = np.empty((X_val.shape[0], Y_val.shape[1]))
    iteration, t, bad_epochs = int(run[ITERATION]), int(run[UPDATES]), int(run[BAD_EPOCHS])
    first = iteration
    last = losses.shape[0] - 1  # a run that records no losses passes room for one, which each loss overwrites
    status = -1
    while iteration < stop:
        if own_step:  # the model's own step (sequential, newton)
            copy_into(previous, w)
            loss = model_step(w, X, Y, hyperparameters, previous, steps)
        else:
            loss = loss_and_grad(w, X, Y, grad)
            step(w, grad, state, t, hyperparameters, previous, steps)
        finite = np.isfinite(loss) and all_finite(w)
        if not finite or diverged(loss, run):
            copy_into(w, previous)  # the last finite weights, or those at which the loss passed the limit
            status = 3 if finite else 2
            break
        t += 1
        losses[min(iteration - first, last)] = loss
        if X_val.shape[0] > 0:
            val_loss = loss_and_grad(w, X_val, Y_val, grad)
            worse = record_validation(val_loss, accuracy(w, X_val, Y_val, out_val), w, iteration, first, run, best_w,
                                      val_losses, val_accuracies)  # fmt: skip
            bad_epochs = bad_epochs + 1 if worse else 0
        iteration += 1
        if all_below(steps, tol):
            status = 1
            break
        if 0 < patience <= bad_epochs:
            status = 4
            break
    if status < 0 and iteration == max_iter:
        status = 0
    if status >= 0:
        status = final_status(status, loss_and_grad(w, X, Y, grad), iteration, first, patience, run, losses)
    run[ITERATION], run[UPDATES], run[BAD_EPOCHS] = iteration, t, bad_epochs
    return status


# The full-batch loop, compiled once per machine, taking every kernel through a function pointer. A small model's
# module also carries its source with the kernels named (`_train_full_batch_kernel`, symcompile/emit.py), where
# LLVM inlines them: on the seed, calls through pointers took 220 ns an iteration against 63 ns (BENCHMARKS.md).
train_full_batch = njit_on_first_call(FULL_BATCH, error_model="numpy")(_train_full_batch)


@njit_on_first_call(MINI_BATCH, error_model="numpy")
def train_mini_batches(loss_and_grad, accuracy, step, model_step, own_step, w, X_train, Y_train, hyperparameters,
                       tol, batch_size, rng, order, X_val, Y_val, patience, state, run, best_w, stop, max_iter,
                       losses, val_losses, val_accuracies):  # fmt: skip
    """Training in mini-batches of `batch_size` samples (the last one smaller): one iteration is one epoch,
    visiting the samples in `order`, shuffled at each epoch's start unless `rng` is empty. An epoch's loss is
    the mean of its batches' losses, each weighted by its batch's size and taken at the weights it started from.
    An epoch ends as a full-batch iteration does, written out again: `_train_full_batch` must stay one function
    (a small model's module renders its source), and a helper would take the kernels through pointers."""
    grad, steps, previous = np.empty(w.shape[0]), np.empty(w.shape[0]), np.empty(w.shape[0])
    n_samples = X_train.shape[0]
    last_size = n_samples % batch_size
    X_batch, Y_batch = np.empty((batch_size, X_train.shape[1])), np.empty((batch_size, Y_train.shape[1]))
    X_last, Y_last = np.empty((last_size, X_train.shape[1])), np.empty((last_size, Y_train.shape[1]))
    out_val = np.empty((X_val.shape[0], Y_val.shape[1]))
    iteration, t, bad_epochs = int(run[ITERATION]), int(run[UPDATES]), int(run[BAD_EPOCHS])
    slices = rng.shape[0] == 0 and in_order(order)  # no shuffling: each batch is a view of the samples
    if (
        run[LOSS_SCALE] == 0.0
    ):  # the divergence limit from the loss at the start, not from the first epoch's (already moving)
        diverged(loss_and_grad(w, X_train, Y_train, grad), run)
    first = iteration
    last = losses.shape[0] - 1
    status = -1
    while iteration < stop:
        if rng.shape[0]:
            shuffle(order, rng)
        total = 0.0  # of the batches' losses, each times its batch's size
        below_tol = True
        finite = True
        for start in range(0, n_samples, batch_size):
            if slices:
                X, Y = X_train[start : start + batch_size], Y_train[start : start + batch_size]
            else:
                X, Y = (X_batch, Y_batch) if start + batch_size <= n_samples else (X_last, Y_last)
                gather(X_train, Y_train, order, start, X, Y)
            loss = _step(loss_and_grad, step, model_step, own_step, w, X, Y, hyperparameters, state, t, grad,
                         previous, steps)  # fmt: skip
            finite = np.isfinite(loss) and all_finite(w)
            if not finite:
                break
            t += 1
            total += loss * X.shape[0]
            below_tol = below_tol and all_below(steps, tol)
        if not finite:
            copy_into(w, previous)  # keep the last finite weights
            status = 2
            break
        losses[min(iteration - first, last)] = total / n_samples
        if diverged(total / n_samples, run):
            copy_into(w, previous)  # the weights before the update after which the loss passed the limit
            status = 3
            break
        if X_val.shape[0] > 0:
            val_loss = loss_and_grad(w, X_val, Y_val, grad)
            worse = record_validation(val_loss, accuracy(w, X_val, Y_val, out_val), w, iteration, first, run, best_w,
                                      val_losses, val_accuracies)  # fmt: skip
            bad_epochs = bad_epochs + 1 if worse else 0
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
        status = final_status(status, loss_and_grad(w, X_train, Y_train, grad), iteration, first, patience, run, losses)
    run[ITERATION], run[UPDATES], run[BAD_EPOCHS] = iteration, t, bad_epochs
    return status
