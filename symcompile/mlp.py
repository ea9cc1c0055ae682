"""Multilayer perceptrons as `Model`s: layer sizes, activations, a loss and a bias scheme.

Neurons are numbered as in the blog: inputs first, then each layer in turn,
so the 2-2-1 network has inputs 1-2, hidden neurons 3-4 and output 5.
Parameters are named after the edge they sit on: `w1_3` joins neuron 1 to
neuron 3; biases are `b3`, ... (`per-neuron`), or a single `w0` added once per
incoming edge (`shared`, the blog's scheme). All symbols are created real,
as `make_model` would make them, so it has nothing to replace in the network.

The network's functions and products are built without SymPy's eval(), whose
assumption queries on a layer's long sums were most of the 2-3 s that making
the digits example's 64-32-10 model took (BENCHMARKS.md), into exactly the
expressions SymPy's evaluation writes: tests/test_models.py checks every node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cmp_to_key

import numpy as np
import sympy as sp

from symcompile.data import check_targets
from symcompile.errors import SymcompileError
from symcompile.model import check_model_size, make_model, make_network_model
from symcompile.options import DENSE_MIN_PARAMS, Choice, add_choices, allowed, choose


# Each activation takes `evaluate=False` to skip SymPy's eval(), which asks the assumption system about its
# argument (is it zero? finite? negative?): seconds for a layer's sum of 65 terms, and it cannot simplify one
# (a sum with a free bias term). The network is built that way; expressions in specs are evaluated as usual.
def _sigmoid(z, evaluate=True):
    return sp.Pow(1 + sp.exp(-z, evaluate=evaluate), -1, evaluate=evaluate)


def _softplus(z, evaluate=True):
    return sp.log(1 + sp.exp(z, evaluate=evaluate), evaluate=evaluate)


ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": sp.tanh,
    "relu": lambda z, evaluate=True: sp.Max(0, z, evaluate=evaluate),
    "identity": lambda z, evaluate=True: z,
    "softplus": _softplus,
}
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS) + ("softmax",)
BIAS_SCHEMES = allowed("bias")
INIT_SCHEMES = allowed("init")


def _log(p):
    """log(p) of a network's output p, as SymPy writes it, without eval()'s assumption queries on p."""
    return sp.log(p, evaluate=False)


def binary_cross_entropy(outputs, targets):
    return sum(-y * _log(f) - (1 - y) * _log(1 - f) for f, y in zip(outputs, targets))


def mean_squared_error(outputs, targets):
    return sum((f - y) ** 2 for f, y in zip(outputs, targets)) / len(outputs)


def mean_squared_error_residuals(outputs, targets):
    """Residuals whose sum of squares is `mean_squared_error`: (f - y)/sqrt(outputs), or f - y for one output."""
    return [(f - y) / sp.sqrt(len(outputs)) for f, y in zip(outputs, targets)]


def softmax_cross_entropy(outputs, targets):
    """Cross-entropy of softmax probabilities against one-hot (or soft) targets."""
    return -sum(y * _log(p) for p, y in zip(outputs, targets))


LOSSES = {
    "binary_cross_entropy": binary_cross_entropy,
    "mean_squared_error": mean_squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
}
add_choices(
    hidden_activation=Choice("hidden activation", tuple(ACTIVATIONS), "sigmoid"),
    output_activation=Choice("output activation", OUTPUT_ACTIVATIONS, "sigmoid"),
    loss=Choice("loss", tuple(LOSSES), "binary_cross_entropy"),
)


def check_layers(layers):
    if not (isinstance(layers, (list, tuple)) and len(layers) >= 2):
        raise SymcompileError(f"layers must list at least an input and an output size, got {layers!r}")
    for size in layers:
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
            raise SymcompileError(f"layer sizes must be positive integers, got {size!r}")
    return list(layers)


# Cross-entropies are defined for outputs in [0, 1]: log(output) of anything else is NaN or meaningless.
# (Their targets are checked by data.check_targets.)
PROBABILITY_OUTPUTS = ("sigmoid", "softmax")


def _check_loss_fits(loss, output_activation, n_outputs):
    if loss == "softmax_cross_entropy" and output_activation != "softmax":
        raise SymcompileError("softmax_cross_entropy needs output_activation = 'softmax'")
    if loss == "binary_cross_entropy" and output_activation not in PROBABILITY_OUTPUTS:
        raise SymcompileError(
            f"binary_cross_entropy needs outputs in (0, 1), so output_activation = 'sigmoid' or 'softmax', "
            f"not {output_activation!r} (for unbounded outputs use mean_squared_error)"
        )
    if output_activation == "softmax" and n_outputs < 2:
        raise SymcompileError("softmax needs at least two outputs")


@dataclass(frozen=True)
class MLPShape:
    """An MLP as the dense kernels see it (the arguments of `mlp_model` that fix its arithmetic), checked."""

    layers: tuple[int, ...]
    hidden_activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    loss: str = "binary_cross_entropy"
    bias: str = "per-neuron"

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(check_layers(self.layers)))
        choose("hidden_activation", self.hidden_activation)
        choose("output_activation", self.output_activation)
        choose("loss", self.loss)
        choose("bias", self.bias)
        _check_loss_fits(self.loss, self.output_activation, self.layers[-1])

    @property
    def n_params(self) -> int:
        pairs = zip(self.layers, self.layers[1:])
        return sum(n_in * n_out + (0 if self.bias == "shared" else n_out) for n_in, n_out in pairs) + (
            self.bias == "shared"
        )

    def summary(self) -> str:
        sizes = "-".join(map(str, self.layers))
        return f"{sizes} network: {self.hidden_activation} hidden layers, {self.output_activation} output, {self.loss}, {self.bias} bias"


@dataclass(frozen=True)
class Network:
    """What a Model built by `mlp_model` keeps of its MLP: the shape, and the init scheme (None: explicit values)
    and seed its initial weights came from, so a module can regenerate them instead of listing millions."""

    shape: MLPShape
    init: str | None
    seed: int


def param_names(layers, bias) -> list[str]:
    """The parameters' names in `network`'s order: w0 (shared bias), then per layer w<i>_<j> source-major and,
    per-neuron, that layer's b<j>. Neurons are numbered from 1: inputs first, then each layer in turn."""
    names = ["w0"] if bias == "shared" else []
    first = 1
    for n_in, n_out in zip(layers, layers[1:]):
        sources, targets = range(first, first + n_in), range(first + n_in, first + n_in + n_out)
        names += [f"w{i}_{j}" for i in sources for j in targets]
        names += [] if bias == "shared" else [f"b{j}" for j in targets]
        first += n_in
    return names


def input_symbols(n_inputs):
    """x1, x2, ...: the inputs are neurons 1 to n_inputs."""
    return [sp.Symbol(f"x{j + 1}", real=True) for j in range(n_inputs)]


def target_symbols(n_outputs):
    """`y` for one output, else y1, y2, ... (one per output neuron)."""
    names = ["y"] if n_outputs == 1 else [f"y{k + 1}" for k in range(n_outputs)]
    return [sp.Symbol(name, real=True) for name in names]


_CANONICAL_ORDER = cmp_to_key(sp.Basic.compare)  # how Mul and Add sort their arguments


def _product(a, b):
    """a*b as SymPy writes it, for factors it cannot combine (no numbers, different bases).

    Mul's flatten would split each factor into base and exponent and rebuild it:
    exp(z) is rebuilt by exp's eval(), whose assumption queries on z take seconds.
    Sorted as Mul sorts, the factors need nothing else (and this is 5x faster).
    """
    return sp.Mul._from_args(sorted((a, b), key=_CANONICAL_ORDER))


def network(layers, hidden_activation, output_activation, bias):
    """Symbols and expressions of an MLP: (params, inputs, outputs)."""
    numbers = np.cumsum([0] + layers)  # neuron j of layer l is numbers[l] + j + 1
    inputs = input_symbols(layers[0])
    params = [sp.Symbol("w0", real=True)] if bias == "shared" else []
    values = inputs
    for l in range(1, len(layers)):
        activation = ACTIVATIONS.get(hidden_activation if l < len(layers) - 1 else output_activation)
        sources = [numbers[l - 1] + i + 1 for i in range(layers[l - 1])]
        targets = [numbers[l] + j + 1 for j in range(layers[l])]
        # Source-major order, as the blog lists its parameters: w13, w14, w23, w24, ...
        weights = {(i, j): sp.Symbol(f"w{i}_{j}", real=True) for i in sources for j in targets}
        params += weights.values()
        z = []
        for j in targets:
            incoming = [(v, weights[i, j]) for v, i in zip(values, sources)]
            # One Add of all the terms: summing them one by one re-sorts the growing sum at every step.
            if bias == "shared":  # the blog's scheme: w0 added once per incoming edge
                z.append(sp.Add(*(_product(v, w) + params[0] for v, w in incoming)))
            else:
                params.append(sp.Symbol(f"b{j}", real=True))
                z.append(sp.Add(*(_product(v, w) for v, w in incoming), params[-1]))
        if activation is None:  # softmax: normalized exponentials of the whole layer (unevaluated: see _product)
            exps = [sp.exp(zj, evaluate=False) for zj in z]
            inverse = sp.Pow(sp.Add(*exps), -1, evaluate=False)
            values = [_product(e, inverse) for e in exps]
        else:
            values = [activation(zj, evaluate=False) for zj in z]
    return params, inputs, values


def initial_weights(layers, bias, scheme, seed):
    """Seeded initial values in `network`'s order: weights by `scheme`, biases zero.

    One draw per weight, layer by layer (a layer's weights are contiguous; its biases take no draw), so
    the values are those of drawing weight by weight; generated dense modules repeat this code.
    """
    rng = np.random.default_rng(seed)
    parts = [np.zeros(1)] if bias == "shared" else []
    for n_in, n_out in zip(layers, layers[1:]):
        if scheme == "zeros":
            parts.append(np.zeros(n_in * n_out))
        elif scheme == "xavier":
            limit = np.sqrt(6.0 / (n_in + n_out))
            parts.append(rng.uniform(-limit, limit, n_in * n_out))
        else:
            parts.append(rng.normal(0.0, 1.0 / np.sqrt(n_in), n_in * n_out))
        parts += [] if bias == "shared" else [np.zeros(n_out)]
    return np.concatenate(parts)


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
    dtype="float64",
):
    """A `Model` for an MLP. `init` is a scheme name (xavier, normal, zeros) or explicit values. `dtype`:
    "float32" builds dense kernels that compute in float32 (float64 the default).

    The Model keeps the MLP's shape (`Model.network`) for the dense kernels. Its SymPy form, one symbol per
    weight, is made here only for networks small enough for the scalar kernels by default
    (options.DENSE_MIN_PARAMS), and otherwise by `symbolic_form` when a build asks for kernels="scalar":
    a dense build's cost grows with the layers, not with the weights.
    """
    shape = MLPShape(tuple(check_layers(layers)), hidden_activation, output_activation, loss, bias)
    scheme = choose("init", init) if isinstance(init, str) else None
    if scheme is not None:
        init = initial_weights(shape.layers, bias, scheme, seed)
    model = make_network_model(
        name, Network(shape, scheme, seed), input_symbols(shape.layers[0]), target_symbols(shape.layers[-1]),
        init=init, X=X, Y=Y, training=training, description=description or f"A {shape.summary()}.",
        classifier=classifier_kind(loss, output_activation),
    )  # fmt: skip
    check_targets(loss, model.Y)
    model = symbolic_form(model) if shape.n_params <= DENSE_MIN_PARAMS else model
    return replace(model, dtype=choose("dtype", dtype)) if dtype != "float64" else model


def symbolic_form(model):
    """`model` (made by `mlp_model`) with its SymPy form: one symbol per weight, the network's formulas."""
    if model.symbolic:
        return model
    shape = model.network.shape
    check_model_size(shape.n_params, "build it with kernels=dense or auto")  # before the network's expressions
    params, inputs, outputs = network(list(shape.layers), shape.hidden_activation, shape.output_activation, shape.bias)
    return make_model(
        model.name, outputs, LOSSES[shape.loss](outputs, model.targets), params, inputs, model.targets,
        init=model.init, X=model.X, Y=model.Y, training=model.training, description=model.description,
        classifier=model.classifier, network=model.network,
        # The loss stays as written above; these residuals square and sum to it (a residual model, for
        # least_squares).
        residual=mean_squared_error_residuals(outputs, model.targets) if shape.loss == "mean_squared_error" else None,
    )  # fmt: skip


def classifier_kind(loss, output_activation):
    """Which kind of classifier (Model.classifier) a network is: its outputs must be probabilities."""
    if loss == "softmax_cross_entropy":
        return "softmax"
    return "binary" if loss == "binary_cross_entropy" and output_activation == "sigmoid" else ""
