"""Independent references for compiled losses and gradients.

- `mlp_mean_loss`: an MLP's mean loss in plain NumPy. It reads the weights in
  the order `symcompile.mlp` documents (the shared bias w0 first; then per
  layer the weights source-major, w1_3, w1_4, w2_3, ..., followed by that
  layer's biases) and computes the network with matrix products, not SymPy.
- `central_differences`: of any scalar function.
- `sympy_loss_and_grad`: a model's loss and SymPy `diff` gradient, evaluated
  exactly as SymPy evaluates (no code generation, no Numba).
- `sympy_evaluated`: an expression as SymPy's evaluation writes it, for code
  that builds expressions unevaluated to save time.
"""

import numpy as np
import sympy as sp

ACTIVATIONS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "identity": lambda z: z,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
}
LOSSES = {  # per sample, from outputs f and targets y of shape (N, outputs)
    "binary_cross_entropy": lambda f, y: -(y * np.log(f) + (1 - y) * np.log(1 - f)).sum(axis=1),
    "mean_squared_error": lambda f, y: ((f - y) ** 2).mean(axis=1),
    "softmax_cross_entropy": lambda f, y: -(y * np.log(f)).sum(axis=1),
}


def mlp_forward(w, X, layers, hidden_activation, output_activation, bias):
    w = np.asarray(w, dtype=float)
    k = 1 if bias == "shared" else 0
    values = np.asarray(X, dtype=float)
    for l in range(1, len(layers)):
        n_in, n_out = layers[l - 1], layers[l]
        W = w[k : k + n_in * n_out].reshape(n_in, n_out)
        k += n_in * n_out
        if bias == "shared":  # the blog's scheme: w0 once per incoming edge
            z = values @ W + n_in * w[0]
        else:
            z = values @ W + w[k : k + n_out]
            k += n_out
        values = ACTIVATIONS[output_activation if l == len(layers) - 1 else hidden_activation](z)
    assert k == len(w), "weights left over: the parameter layout differs"
    return values


def mlp_mean_loss(w, X, Y, layers, hidden_activation, output_activation, loss, bias):
    outputs = mlp_forward(w, X, layers, hidden_activation, output_activation, bias)
    return float(LOSSES[loss](outputs, np.asarray(Y, dtype=float).reshape(outputs.shape)).mean())


def central_differences(f, w, h=1e-6):
    """Central finite differences of the scalar function f at w, step h scaled to each weight."""
    w = np.asarray(w, dtype=float)
    grad = np.empty_like(w)
    for j in range(len(w)):
        step = h * max(1.0, abs(w[j]))
        up, down = w.copy(), w.copy()
        up[j] += step
        down[j] -= step
        grad[j] = (f(up) - f(down)) / (2 * step)
    return grad


def sympy_loss_and_grad(model, w, X, Y):
    """Mean loss and gradient by SymPy: each partial derivative is `diff` of the model's loss along that parameter.

    The other numbers are put in first (xreplace evaluates what they fix), which
    keeps SymPy's work small; the derivative is the same.
    """
    weights = {p: sp.Float(v) for p, v in zip(model.params, w)}
    loss, grad = 0.0, np.zeros(len(w))
    for x, y in zip(X, Y):
        at_sample = model.loss.xreplace({s: sp.Float(v) for s, v in zip(model.inputs + model.targets, [*x, *y])})
        loss += float(at_sample.xreplace(weights)) / len(X)
        for j, p in enumerate(model.params):
            along_p = at_sample.xreplace({q: v for q, v in weights.items() if q != p})
            grad[j] += float(sp.diff(along_p, p).xreplace({p: weights[p]})) / len(X)
    return loss, grad


def sympy_evaluated(expr):
    """`expr` rebuilt bottom-up with SymPy's evaluation at every node: the form SymPy itself would write."""
    rebuilt = {}
    stack = [expr]
    while stack:  # each distinct node after its arguments, without recursion (networks are deep)
        node = stack[-1]
        pending = [arg for arg in node.args if arg not in rebuilt]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        rebuilt[node] = node.func(*(rebuilt[arg] for arg in node.args)) if node.args else node
    return rebuilt[expr]
