"""The mini-batch scenario: a 64-32-10 classifier of scikit-learn's digits trained with Adam on batches of 32,
time per epoch.

The compiled module's `train(optimizer="adam", batch_size=32)` against the same
training in PyTorch (float64, one thread, `torch.optim.Adam`, a Python loop over
the batches) and JAX (float64; Adam written out; one `jit`-compiled epoch: a
`lax.scan` over the full batches, then the last, shorter one), each where
installed. All start from the module's initial weights and see each epoch's
samples in an order drawn from a seeded generator; the `check` column gives each
one's training loss after the timed epochs, which should agree closely (the
orders differ between the module and the peers, not the algorithm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from references.numpy_mlp import MlpLayout
from benchmarks.bench.report import Report, Row
from benchmarks.bench.timing import Timing, measure, time_once
from symcompile.mlp import mlp_model
from symcompile.pipeline import build
from symcompile.writer import load_module

LAYERS = [64, 32, 10]


@dataclass(frozen=True)
class MinibatchSettings:
    lr: float = 0.01
    batch_size: int = 32
    epochs: int = 20  # per timed call
    repeats: int = 5
    seed: int = 0
    out_dir: str = "generated"


def digits_data():
    """(X, labels, source): the digits' pixels scaled to [0, 1] and their labels, or synthetic data of the same
    shape (1,797 samples, 64 inputs, 10 classes) when scikit-learn is not installed."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        X = rng.uniform(0, 1, (1797, 64))
        return X, (X @ rng.normal(size=(64, 10))).argmax(axis=1), "synthetic digits-shaped data (no scikit-learn)"
    digits = load_digits()
    return digits.data / 16.0, digits.target, "scikit-learn's digits"


def minibatch_model(X, labels):
    return mlp_model("bench_digits_adam", LAYERS, hidden_activation="tanh", output_activation="softmax",
                     loss="softmax_cross_entropy", X=X, Y=labels)  # fmt: skip


def epoch_orders(n, epochs, seed):
    """Each epoch's order of the samples, from one seeded generator (the peers share it)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def torch_adam(layout, X, labels, settings):
    """PyTorch: the network in float64, Adam, a Python loop over each epoch's batches (one thread)."""
    import torch

    torch.set_num_threads(1)
    X_t, labels_t = torch.tensor(X), torch.tensor(labels)

    def train(flat):
        params = [torch.tensor(a.copy(), requires_grad=True) for W, b in layout.unpack(flat) for a in (W, b)]
        optimizer = torch.optim.Adam(params, lr=settings.lr)
        for order in epoch_orders(len(X), settings.epochs, settings.seed):
            for start in range(0, len(X), settings.batch_size):
                batch = torch.from_numpy(order[start : start + settings.batch_size])
                optimizer.zero_grad()
                hidden = torch.tanh(X_t[batch] @ params[0] + params[1])
                loss = torch.nn.functional.cross_entropy(hidden @ params[2] + params[3], labels_t[batch])
                loss.backward()
                optimizer.step()
        return [p.detach().numpy() for p in params]

    return train


def jax_adam(layout, X, labels, settings):
    """JAX: Adam written out (as torch.optim.Adam computes it), one jit-compiled call per epoch."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, settings.lr
    onehot = np.eye(LAYERS[-1])[labels]

    def mean_loss(params, Xb, Yb):
        hidden = jnp.tanh(Xb @ params[0] + params[1])
        return -jnp.mean(jnp.sum(Yb * jax.nn.log_softmax(hidden @ params[2] + params[3]), axis=1))

    def step(state, batch):
        params, m, v, t = state
        grads = jax.grad(mean_loss)(params, *batch)
        t = t + 1
        m = [beta1 * mi + (1 - beta1) * g for mi, g in zip(m, grads)]
        v = [beta2 * vi + (1 - beta2) * g * g for vi, g in zip(v, grads)]
        params = [p - lr * (mi / (1 - beta1**t)) / (jnp.sqrt(vi / (1 - beta2**t)) + eps)
                  for p, mi, vi in zip(params, m, v)]  # fmt: skip
        return (params, m, v, t), None

    full = (len(X) // settings.batch_size) * settings.batch_size

    @jax.jit
    def epoch(state, Xe, Ye):
        shape = (-1, settings.batch_size)
        batches = (Xe[:full].reshape(*shape, Xe.shape[1]), Ye[:full].reshape(*shape, Ye.shape[1]))
        state, _ = jax.lax.scan(step, state, batches)
        if full < len(X):  # the last, shorter batch
            state, _ = step(state, (Xe[full:], Ye[full:]))
        return state

    def train(flat):
        params = [jnp.asarray(a) for W, b in layout.unpack(flat) for a in (W, b)]
        state = (params, [jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params], 0)
        for order in epoch_orders(len(X), settings.epochs, settings.seed):
            state = epoch(state, X[order], onehot[order])
        return [np.asarray(p) for p in jax.block_until_ready(state[0])]

    return train


def run_minibatch(settings: MinibatchSettings = MinibatchSettings()) -> Report:
    X, labels, source = digits_data()
    model = minibatch_model(X, labels)
    report = Report("minibatch", f"{model.name} (64-32-10 tanh/softmax MLP, {model.n_params} params, "
                    f"{len(X)} samples of {source}; Adam, lr {settings.lr}, batch {settings.batch_size})")  # fmt: skip
    per_epoch = report.table(f"{model.name}: time per epoch (Adam, mini-batches of {settings.batch_size})", "epoch")
    once = report.table(f"{model.name}: one-time costs")
    built = build(model, settings.out_dir)
    once.add(Row("build (all stages)", Timing.of([sum(built.stage_seconds.values())])))
    module = load_module(built.path)
    layout = MlpLayout(LAYERS, module.PARAMS)
    n = settings.epochs

    def compiled():
        return module.train(module.INIT, module.X, module.Y, lr=settings.lr, max_iter=n, optimizer="adam",
                            batch_size=settings.batch_size, seed=settings.seed)  # fmt: skip

    seconds, result = time_once(compiled)
    once.add(Row("compiled module: first train() (Numba compile or cache load)", Timing.of([seconds])))
    timing = measure(compiled, repeats=settings.repeats, per=n, warmup=0)
    baseline = per_epoch.add(Row("compiled module train()", timing, note=_loss_note(module, result.w, n)))

    for framework, label, make in (
        ("torch", "PyTorch autograd + torch.optim.Adam (1 thread), Python loop over batches", torch_adam),
        ("jax", "JAX jit: lax.scan over an epoch's batches, Adam written out", jax_adam),
    ):
        try:
            train = make(layout, module.X, labels, settings)
        except ImportError:
            per_epoch.add(Row(label, None, note=f"{framework} not installed"))
            continue
        seconds, layers = time_once(lambda: train(module.INIT))
        once.add(Row(f"{framework}: first call", Timing.of([seconds])))
        timing = measure(lambda: train(module.INIT), repeats=settings.repeats, per=n, warmup=0)
        w = layout.pack([(layers[k], layers[k + 1]) for k in range(0, len(layers), 2)])
        per_epoch.add(Row(label, timing, note=_loss_note(module, w, n)))

    per_epoch.compare_to({"": baseline})
    return report.finish()


def _loss_note(module, w, epochs):
    return f"training loss {module.loss(w, module.X, module.Y):.4g} after {epochs} epochs"
