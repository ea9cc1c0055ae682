"""A sigmoid MLP by hand in NumPy: matrices, and backpropagation written out.

The peer of the dataset scenario: the same network as `symcompile.mlp.mlp_model`
with per-neuron biases, sigmoid activations and binary cross-entropy averaged
over the samples, but computed a layer at a time with matrix products, as
people write it without a compiler. `MlpLayout` moves weights between the
generated module's flat PARAMS order and per-layer matrices, so both sides
start from the same point and can be compared after the same work.
"""

from __future__ import annotations

import re

import numpy as np


class MlpLayout:
    """Where each layer's weight matrix and bias vector sit in the flat parameter vector.

    Read from the parameter names `mlp_model` gives: `w{i}_{j}` joins neuron i
    to neuron j and `b{j}` is neuron j's bias, neurons numbered inputs first.
    """

    def __init__(self, layers, param_names):
        first = np.cumsum([0] + list(layers))  # neuron numbers of layer l are first[l] + 1 ... first[l + 1]
        position = {name: k for k, name in enumerate(param_names)}
        self.layers = list(layers)
        self.size = len(param_names)
        self.weight_index, self.bias_index = [], []
        for l in range(1, len(layers)):
            sources = range(first[l - 1] + 1, first[l] + 1)
            targets = range(first[l] + 1, first[l + 1] + 1)
            self.weight_index.append(np.array([[position[f"w{i}_{j}"] for j in targets] for i in sources]))
            self.bias_index.append(np.array([position[f"b{j}"] for j in targets]))
        covered = sorted(np.concatenate([i.ravel() for i in self.weight_index + self.bias_index]))
        if covered != list(range(self.size)) or not all(re.fullmatch(r"[wb][0-9_]+", n) for n in param_names):
            raise ValueError("parameters are not those of a per-neuron-bias MLP with these layers")

    def unpack(self, flat):
        """[(W, b) for each layer], W of shape (inputs, outputs)."""
        return [(flat[wi], flat[bi]) for wi, bi in zip(self.weight_index, self.bias_index)]

    def pack(self, layer_params):
        flat = np.empty(self.size)
        for (W, b), wi, bi in zip(layer_params, self.weight_index, self.bias_index):
            flat[wi] = W
            flat[bi] = b
        return flat


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def loss_and_grad(layer_params, X, Y):
    """(mean loss, [(dW, db) for each layer]) by one forward and one backward pass."""
    activations = [X]
    for W, b in layer_params:
        activations.append(_sigmoid(activations[-1] @ W + b))
    out = activations[-1]
    loss = -np.mean(np.sum(Y * np.log(out) + (1.0 - Y) * np.log(1.0 - out), axis=1))
    delta = (out - Y) / X.shape[0]  # dloss/dz of the output layer: sigmoid under cross-entropy
    grads = []
    for l in range(len(layer_params) - 1, -1, -1):
        W, _ = layer_params[l]
        a = activations[l]
        grads.append((a.T @ delta, delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ W.T) * a * (1.0 - a)  # through the sigmoid of layer l
    return loss, grads[::-1]


def train(layer_params, X, Y, lr, epochs):
    """Full-batch gradient descent; returns the final parameters and the loss before each epoch."""
    layer_params = [(W.copy(), b.copy()) for W, b in layer_params]
    history = []
    for _ in range(epochs):
        loss, grads = loss_and_grad(layer_params, X, Y)
        for (W, b), (dW, db) in zip(layer_params, grads):
            W -= lr * dW
            b -= lr * db
        history.append(loss)
    return layer_params, history
