"""The blog's 2-2-1 network by hand: backpropagation in Numba, the practical limit for the seed.

This is what a person who knows the network would write instead of deriving
anything symbolically: one forward pass, then the chain rule backwards,
using that a sigmoid output under cross-entropy has dloss/dz = output - target.
Weights are in the blog's order (w0, w13, w14, w23, w24, w35, w45); w0 is the
shared bias, added once per incoming edge, so it enters every neuron twice.
Like the generated module it averages over the samples and records the loss
before each step.
"""

import math

import numba
import numpy as np


@numba.njit(error_model="numpy")
def _add_sample_gradient(grad, x1, x2, f3, f4, d3, d4, d5):
    """One sample's gradient from dloss/dz of neurons 3, 4, 5 (d3, d4, d5), added into `grad`."""
    grad[0] += 2.0 * (d3 + d4 + d5)
    grad[1] += d3 * x1
    grad[2] += d4 * x1
    grad[3] += d3 * x2
    grad[4] += d4 * x2
    grad[5] += d5 * f3
    grad[6] += d5 * f4


@numba.njit(error_model="numpy")
def _mean(loss, grad, n_samples):
    """The summed loss and gradient made means over the samples."""
    scale = 1.0 / n_samples
    for j in range(7):
        grad[j] *= scale
    return loss * scale


@numba.njit
def loss_and_grad(w, X, Y, grad):
    """Mean binary cross-entropy over the samples; its gradient goes into `grad`."""
    w0, w13, w14, w23, w24, w35, w45 = w[0], w[1], w[2], w[3], w[4], w[5], w[6]
    loss = 0.0
    grad[:] = 0.0
    for n in range(X.shape[0]):
        x1, x2, y = X[n, 0], X[n, 1], Y[n, 0]
        f3 = 1.0 / (1.0 + math.exp(-(w13 * x1 + w23 * x2 + 2.0 * w0)))
        f4 = 1.0 / (1.0 + math.exp(-(w14 * x1 + w24 * x2 + 2.0 * w0)))
        f5 = 1.0 / (1.0 + math.exp(-(w35 * f3 + w45 * f4 + 2.0 * w0)))
        loss += -y * math.log(f5) - (1.0 - y) * math.log(1.0 - f5)
        d5 = f5 - y  # dloss/dz5
        d3 = d5 * w35 * f3 * (1.0 - f3)  # dloss/dz3, through f3 = sigmoid(z3)
        d4 = d5 * w45 * f4 * (1.0 - f4)  # dloss/dz4
        _add_sample_gradient(grad, x1, x2, f3, f4, d3, d4, d5)
    return _mean(loss, grad, X.shape[0])


@numba.njit
def train(w, X, Y, lr, iterations, history):
    """Simultaneous gradient descent in place on `w`; history gets the loss before each step, then the final one."""
    grad = np.empty(7)
    for i in range(iterations):
        history[i] = loss_and_grad(w, X, Y, grad)
        for j in range(7):
            w[j] -= lr * grad[j]
    history[iterations] = loss_and_grad(w, X, Y, grad)


# The same network written with the stable forms the generated module uses (its `_sigmoid` and `_softplus`, here
# stable_sigmoid and stable_softplus: one exp of -|z| per unit, the loss as softplus of z5), so that it does the
# module's arithmetic and nothing more.


@numba.njit(error_model="numpy")
def stable_sigmoid(z):
    e = math.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


@numba.njit(error_model="numpy")
def stable_softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@numba.njit(error_model="numpy")
def stable_loss_and_grad(w, X, Y, grad):
    """loss_and_grad with the module's stable sigmoid and softplus."""
    w0, w13, w14, w23, w24, w35, w45 = w[0], w[1], w[2], w[3], w[4], w[5], w[6]
    loss = 0.0
    grad[:] = 0.0
    for n in range(X.shape[0]):
        x1, x2, y = X[n, 0], X[n, 1], Y[n, 0]
        f3 = stable_sigmoid(w13 * x1 + w23 * x2 + 2.0 * w0)
        f4 = stable_sigmoid(w14 * x1 + w24 * x2 + 2.0 * w0)
        z5 = w35 * f3 + w45 * f4 + 2.0 * w0
        f5 = stable_sigmoid(z5)
        loss += (1.0 - y) * stable_softplus(z5) + y * stable_softplus(-z5)
        d5 = f5 - y
        d3 = d5 * w35 * f3 * (1.0 - f3)
        d4 = d5 * w45 * f4 * (1.0 - f4)
        _add_sample_gradient(grad, x1, x2, f3, f4, d3, d4, d5)
    return _mean(loss, grad, X.shape[0])


@numba.njit(error_model="numpy")
def train_stable(w, X, Y, lr, iterations):
    """Simultaneous gradient descent in place on `w`, with stable_loss_and_grad; returns the last loss (no history,
    as train(record_every=0) keeps none)."""
    grad = np.empty(7)
    loss = 0.0
    for i in range(iterations):
        loss = stable_loss_and_grad(w, X, Y, grad)
        for j in range(7):
            w[j] -= lr * grad[j]
    return loss


@numba.njit(error_model="numpy")
def train_with_kernel(kernel, w, X, Y, lr, iterations):
    """Simultaneous descent in place on `w` through a module's `_loss_and_grad_kernel` and nothing else: no
    checks, no history. Against train_stable it isolates the kernel; against the module's train(), the loop."""
    grad = np.empty_like(w)
    for i in range(iterations):
        kernel(w, X, Y, grad)
        for j in range(w.shape[0]):
            w[j] -= lr * grad[j]
