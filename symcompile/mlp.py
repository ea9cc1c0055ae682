"""Multilayer perceptrons as `Model`s: layer sizes, activations, a loss and a bias scheme.

Neurons are numbered as in the blog: inputs first, then each layer in turn,
so the 2-2-1 network has inputs 1-2, hidden neurons 3-4 and output 5.
Parameters are named after the edge they sit on: `w1_3` joins neuron 1 to
neuron 3; biases are `b3`, ... (`per-neuron`), or a single `w0` added once per
incoming edge (`shared`, the blog's scheme). All symbols are created real,
as `make_model` would make them, so it has nothing to replace in the network.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.model import make_model
from symcompile.options import allowed, choose


def _sigmoid(z):
    return 1 / (1 + sp.exp(-z))


def _softplus(z):
    return sp.log(1 + sp.exp(z))


ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": sp.tanh,
    "relu": lambda z: sp.Max(0, z),
    "identity": lambda z: z,
    "softplus": _softplus,
}
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS) + ("softmax",)
BIAS_SCHEMES = allowed("bias")
INIT_SCHEMES = allowed("init")


def binary_cross_entropy(outputs, targets):
    return sum(-y * sp.log(f) - (1 - y) * sp.log(1 - f) for f, y in zip(outputs, targets))


def mean_squared_error(outputs, targets):
    return sum((f - y) ** 2 for f, y in zip(outputs, targets)) / len(outputs)


def mean_squared_error_residuals(outputs, targets):
    """Residuals whose sum of squares is `mean_squared_error`: (f - y)/sqrt(outputs), or f - y for one output."""
    return [(f - y) / sp.sqrt(len(outputs)) for f, y in zip(outputs, targets)]


def softmax_cross_entropy(outputs, targets):
    """Cross-entropy of softmax probabilities against one-hot (or soft) targets."""
    return -sum(y * sp.log(p) for p, y in zip(outputs, targets))


LOSSES = {
    "binary_cross_entropy": binary_cross_entropy,
    "mean_squared_error": mean_squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def check_layers(layers):
    if not (isinstance(layers, (list, tuple)) and len(layers) >= 2):
        raise SymcompileError(f"layers must list at least an input and an output size, got {layers!r}")
    for size in layers:
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
            raise SymcompileError(f"layer sizes must be positive integers, got {size!r}")
    return list(layers)


def _check_loss_fits(loss, output_activation, n_outputs):
    if loss == "softmax_cross_entropy" and output_activation != "softmax":
        raise SymcompileError("softmax_cross_entropy needs output_activation = 'softmax'")
    if output_activation == "softmax" and n_outputs < 2:
        raise SymcompileError("softmax needs at least two outputs")


def input_symbols(n_inputs):
    """x1, x2, ...: the inputs are neurons 1 to n_inputs."""
    return [sp.Symbol(f"x{j + 1}", real=True) for j in range(n_inputs)]


def target_symbols(n_outputs):
    """`y` for one output, else y1, y2, ... (one per output neuron)."""
    names = ["y"] if n_outputs == 1 else [f"y{k + 1}" for k in range(n_outputs)]
    return [sp.Symbol(name, real=True) for name in names]


def network(layers, hidden_activation, output_activation, bias):
    """Symbols and expressions of an MLP: (params, inputs, outputs, per-layer weight shapes)."""
    numbers = np.cumsum([0] + layers)  # neuron j of layer l is numbers[l] + j + 1
    inputs = input_symbols(layers[0])
    params = [sp.Symbol("w0", real=True)] if bias == "shared" else []
    fans = []  # (fan_in, fan_out) of each weight parameter, for initialization
    values = inputs
    for l in range(1, len(layers)):
        activation = ACTIVATIONS.get(hidden_activation if l < len(layers) - 1 else output_activation)
        sources = [numbers[l - 1] + i + 1 for i in range(layers[l - 1])]
        targets = [numbers[l] + j + 1 for j in range(layers[l])]
        # Source-major order, as the blog lists its parameters: w13, w14, w23, w24, ...
        weights = {(i, j): sp.Symbol(f"w{i}_{j}", real=True) for i in sources for j in targets}
        params += weights.values()
        fans += [(layers[l - 1], layers[l])] * len(weights)
        z = []
        for j in targets:
            incoming = [(v, weights[i, j]) for v, i in zip(values, sources)]
            # One Add of all the terms: summing them one by one re-sorts the growing sum at every step.
            if bias == "shared":  # the blog's scheme: w0 added once per incoming edge
                z.append(sp.Add(*(v * w + params[0] for v, w in incoming)))
            else:
                params.append(sp.Symbol(f"b{j}", real=True))
                fans.append(None)
                z.append(sp.Add(*(v * w for v, w in incoming), params[-1]))
        if activation is None:  # softmax: normalized exponentials of the whole layer
            exps = [sp.exp(zj) for zj in z]
            total = sp.Add(*exps)
            values = [e / total for e in exps]
        else:
            values = [activation(zj) for zj in z]
    if bias == "shared":
        fans.insert(0, None)
    return params, inputs, values, fans


def initial_weights(fans, scheme, seed):
    """Seeded initial values: weights by `scheme`, biases zero."""
    rng = np.random.default_rng(seed)
    init = np.zeros(len(fans))
    for k, fan in enumerate(fans):
        if fan is None or scheme == "zeros":
            continue
        fan_in, fan_out = fan
        if scheme == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            init[k] = rng.uniform(-limit, limit)
        else:
            init[k] = rng.normal(0.0, 1.0 / np.sqrt(fan_in))
    return init


def mlp_model(
    name,
    layers,
    *,
    hidden_activation="sigmoid",
    output_activation="sigmoid",
    loss="binary_cross_entropy",
    bias="per-neuron",
    init="xavier",
    seed=0,
    X=None,
    Y=None,
    training=None,
    description="",
):
    """A `Model` for an MLP. `init` is a scheme name (xavier, normal, zeros) or explicit values."""
    layers = check_layers(layers)
    choose("hidden_activation", hidden_activation)
    choose("output_activation", output_activation)
    choose("loss", loss)
    choose("bias", bias)
    _check_loss_fits(loss, output_activation, layers[-1])
    params, inputs, outputs, fans = network(layers, hidden_activation, output_activation, bias)
    targets = target_symbols(layers[-1])
    if isinstance(init, str):
        init = initial_weights(fans, choose("init", init), seed)
    sizes = "-".join(map(str, layers))
    description = description or (
        f"A {sizes} network: {hidden_activation} hidden layers, {output_activation} output, {loss}, {bias} bias."
    )
    return make_model(
        name,
        outputs,
        LOSSES[loss](outputs, targets),
        params,
        inputs,
        targets,
        init=init,
        X=X,
        Y=Y,
        training=training,
        description=description,
        # The loss stays as written above; these residuals square and sum to it (a residual model, for
        # least_squares).
        residual=mean_squared_error_residuals(outputs, targets) if loss == "mean_squared_error" else None,
    )
