"""PyTorch peers: autograd with gradient descent in a Python loop, in float64.

Imported only when PyTorch is installed (`pip install 'symcompile[torch]'`).
`model_descent` runs any model from its SymPy loss (lambdified for torch);
`mlp_descent` is a sigmoid MLP written with matrices, as PyTorch users write one.

PyTorch runs on one thread here, as the compiled module does: with its default
of one thread per core it spin-waits for cores that other processes hold, and
on a busy 2-core machine an epoch of a small MLP then took 48 ms instead of 0.11 ms.
"""

import numpy as np
import sympy as sp
import torch
from sympy.printing.pytorch import TorchPrinter

from benchmarks.bench.peer_forms import peer_functions

torch.set_num_threads(1)


def _descent(mean_loss, parameters, lr, iterations):
    """Descent in place on `parameters` (leaf tensors); returns the loss before each step, then the final loss."""
    history = []
    for _ in range(iterations):
        loss = mean_loss()
        loss.backward()
        with torch.no_grad():
            for p in parameters:
                p -= lr * p.grad
                p.grad = None
        history.append(loss.item())
    with torch.no_grad():
        history.append(mean_loss().item())
    return np.array(history)


# The rewrite stage's stable functions, as PyTorch provides them.
STABLE_FUNCTIONS = peer_functions("torch", torch)


class _Printer(TorchPrinter):
    """SymPy's PyTorch printer, calling the stable functions by name (it refuses functions it does not know)."""

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in STABLE_FUNCTIONS:
            return f"{name}({', '.join(self._print(arg) for arg in expr.args)})"
        return super()._print_Function(expr)


def model_descent(model, lr, iterations):
    """Simultaneous descent on `model` (a rewritten `Model`) over its default data: numpy weights in and out."""
    args = model.params + model.inputs + model.targets
    printer = _Printer({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True})
    per_sample = sp.lambdify(args, model.loss, modules=[STABLE_FUNCTIONS, "torch"], printer=printer)
    columns = [torch.from_numpy(np.ascontiguousarray(c)) for c in (*model.X.T, *model.Y.T)]

    def train(w0):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        history = _descent(lambda: per_sample(*w.unbind(), *columns).mean(), [w], lr, iterations)
        return w.detach().numpy(), history

    return train


def mlp_descent(layout, X, Y, lr, epochs):
    """Full-batch descent on a sigmoid MLP: flat numpy weights (in `layout`'s order) in and out."""
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)

    def train(flat):
        layer_params = [
            (torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in layout.unpack(flat)
        ]

        def mean_loss():
            a = X
            for W, b in layer_params:
                a = torch.sigmoid(a @ W + b)
            return -torch.mean(torch.sum(Y * torch.log(a) + (1.0 - Y) * torch.log(1.0 - a), dim=1))

        history = _descent(mean_loss, [p for pair in layer_params for p in pair], lr, epochs)
        return layout.pack([(W.detach().numpy(), b.detach().numpy()) for W, b in layer_params]), history

    return train
