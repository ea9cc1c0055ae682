"""Prototype runtime: model-independent pieces, @njit(cache=True), NumPy and Numba only."""

import math

import numba
import numpy as np

nj = numba.njit(cache=True, error_model="numpy")
_DIVERGED_FACTOR = 1e6
_ENDED_ABOVE_FACTOR = 10.0
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@nj
def adam_init(n):
    return np.zeros((2, n))


@nj
def adam_step(w, grad, state, step, lr, weight_decay, betas, eps, previous, steps):
    """Optax-style step on arrays: updates w and state in place; previous/steps for the stop tests."""
    m = state[0]
    v = state[1]
    beta1, beta2 = betas
    t = float(step + 1)
    step_size = lr / (1.0 - beta1**t)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
    for j in range(w.shape[0]):
        g = grad[j] + weight_decay * w[j]
        m[j] += (1.0 - beta1) * (g - m[j])
        v[j] = v[j] * beta2 + (1.0 - beta2) * g * g
        previous[j] = w[j]
        w[j] = w[j] - step_size * (m[j] / (math.sqrt(v[j]) / bias_correction2_sqrt + eps))
        steps[j] = previous[j] - w[j]


@nj
def sgd_step(w, grad, state, step, lr, weight_decay, betas, eps, previous, steps):
    for j in range(w.shape[0]):
        previous[j] = w[j]
        w[j] -= lr * (grad[j] + weight_decay * w[j])
        steps[j] = previous[j] - w[j]


@nj
def copy_into(target, source):
    for j in range(target.shape[0]):
        target[j] = source[j]


@nj
def weights_finite(w):
    finite = True
    for j in range(w.shape[0]):
        finite &= np.isfinite(w[j])
    return finite


@nj
def diverged(loss, run):
    if run[5] == 0.0:
        run[5] = abs(loss) + 1.0
        return False
    return loss > _DIVERGED_FACTOR * run[5]


@nj
def ended_above(final_loss, run):
    return final_loss > _ENDED_ABOVE_FACTOR * run[5]


@nj
def all_below(values, tol):
    for value in values:
        if not abs(value) < tol:
            return False
    return True


@nj
def shuffle(order, rng):
    state = rng[0]
    for i in range(order.shape[0] - 1, 0, -1):
        state += _GOLDEN_GAMMA
        z = (state ^ (state >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        j = (z ^ (z >> np.uint64(31))) % np.uint64(i + 1)
        order[i], order[j] = order[j], order[i]
    rng[0] = state


@nj
def batch_buffers(X, Y, batch_size):
    last = X.shape[0] % batch_size
    return (
        np.empty((batch_size, X.shape[1])),
        np.empty((batch_size, Y.shape[1])),
        np.empty((last, X.shape[1])),
        np.empty((last, Y.shape[1])),
    )


@nj
def gather(X, Y, order, start, X_batch, Y_batch):
    for i in range(X_batch.shape[0]):
        for k in range(X.shape[1]):
            X_batch[i, k] = X[order[start + i], k]
        for k in range(Y.shape[1]):
            Y_batch[i, k] = Y[order[start + i], k]
