"""The job of `python -m symcompile train examples/digits.toml`, written as a JAX user would write it.

The peer of benchmarks/startup/bench.py's digits cases: the whole process (import JAX, read the CSV, compile,
train, report) is what the bench times. The same job as the spec asks:

- examples/data/digits.csv (`python examples/make_data.py` writes it): inputs x1..x64, the class in `label`,
  made one-hot;
- validation_split = 0.2 held out as symcompile.data.split_rows holds it out: round(0.2 * 1797) = 359 rows
  drawn by np.random.default_rng(0).permutation, each part in the file's order; no standardization (the spec
  does not ask for it);
- a 64-32-10 MLP, tanh hidden layer, softmax output, softmax cross entropy averaged over the batch, in float64;
  Xavier-uniform weights drawn as symcompile.mlp.initial_weights draws them (one generator seeded 0, layer by
  layer, source-major), biases zero;
- Adam (torch.optim.Adam's rule: lr 0.01, betas 0.9 and 0.999, eps 1e-8 added to the corrected root), through
  optax when it is installed, else the same rule written out here;
- 20 epochs of mini-batches of 32 in a freshly shuffled order (the last batch of an epoch smaller: 44 of 32 and
  one of 30), one jitted function per epoch (`lax.scan` over the full batches, then the remainder), the
  validation loss and accuracy after each epoch.

The shuffled orders come from JAX's generator, not symcompile's, so the final figures agree closely but not bit
for bit with symcompile's.
"""

import csv
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # symcompile trains in float64; so does its peer

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

try:
    import optax
except ImportError:
    optax = None

CSV = Path(__file__).resolve().parents[2] / "examples" / "data" / "digits.csv"
LAYERS = (64, 32, 10)
LR, BETAS, EPS = 0.01, (0.9, 0.999), 1e-8
BATCH_SIZE, EPOCHS = 32, 20
VALIDATION_SPLIT, SEED = 0.2, 0


def read_digits(path):
    """(X, Y): the x1..x64 columns, and the label column as one-hot rows."""
    if not path.is_file():
        sys.exit(f"{path} is missing: `python examples/make_data.py` writes it (needs scikit-learn)")
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    X = table[:, [header.index(f"x{i + 1}") for i in range(LAYERS[0])]]
    labels = table[:, header.index("label")].astype(int)
    return X, np.eye(LAYERS[-1])[labels]


def split_rows(n, fraction, seed):
    """(training rows, validation rows), drawn as symcompile draws them."""
    held_out = np.sort(np.random.default_rng(seed).permutation(n)[: int(round(n * fraction))])
    return np.setdiff1d(np.arange(n), held_out), held_out


def initial_params(seed):
    """Xavier-uniform weights (one generator, layer by layer, weights source-major), zero biases."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(LAYERS, LAYERS[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        W = rng.uniform(-limit, limit, n_in * n_out).reshape(n_in, n_out)
        params.append((jnp.asarray(W), jnp.zeros(n_out)))
    return params


def logits(params, X):
    (W1, b1), (W2, b2) = params
    return jnp.tanh(X @ W1 + b1) @ W2 + b2


def loss_and_accuracy(params, X, Y):
    z = logits(params, X)
    loss = -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(z), axis=1))
    return loss, jnp.mean(jnp.argmax(z, axis=1) == jnp.argmax(Y, axis=1))


def mean_loss(params, X, Y):
    return loss_and_accuracy(params, X, Y)[0]


def written_adam():
    """(init, update) of Adam as torch.optim.Adam (and optax.adam) define it: bias-corrected moments, eps added
    to the corrected root."""

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return jnp.asarray(0), zeros, zeros

    def update(grads, state, params):
        t, m, v = state
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: BETAS[0] * m + (1 - BETAS[0]) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: BETAS[1] * v + (1 - BETAS[1]) * g * g, v, grads)
        c1, c2 = 1 - BETAS[0] ** t, 1 - BETAS[1] ** t
        params = jax.tree_util.tree_map(lambda p, m, v: p - LR * (m / c1) / (jnp.sqrt(v / c2) + EPS), params, m, v)
        return params, (t, m, v)

    return init, update


def optax_adam():
    optimizer = optax.adam(LR, b1=BETAS[0], b2=BETAS[1], eps=EPS)

    def update(grads, state, params):
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return optimizer.init, update


adam_init, adam_update = optax_adam() if optax is not None else written_adam()


def step(carry, batch):
    params, state = carry
    loss, grads = jax.value_and_grad(mean_loss)(params, *batch)
    params, state = adam_update(grads, state, params)
    return (params, state), loss


@jax.jit
def epoch(params, state, key, X, Y, X_val, Y_val):
    """One epoch: the samples in a new order, full batches by lax.scan, then the smaller last batch; returns the
    new weights and optimizer state, the mean of the batches' losses and the validation loss and accuracy."""
    n = X.shape[0]
    full = n // BATCH_SIZE * BATCH_SIZE
    order = jax.random.permutation(key, n)
    X, Y = X[order], Y[order]
    batches = (X[:full].reshape(-1, BATCH_SIZE, X.shape[1]), Y[:full].reshape(-1, BATCH_SIZE, Y.shape[1]))
    (params, state), losses = lax.scan(step, (params, state), batches)
    if full < n:
        (params, state), last = step((params, state), (X[full:], Y[full:]))
        losses = jnp.append(losses, last)
    return params, state, jnp.mean(losses), *loss_and_accuracy(params, X_val, Y_val)


def main():
    start = time.perf_counter()
    X, Y = read_digits(CSV)
    train_rows, val_rows = split_rows(X.shape[0], VALIDATION_SPLIT, SEED)
    X_train, Y_train = jnp.asarray(X[train_rows]), jnp.asarray(Y[train_rows])
    X_val, Y_val = jnp.asarray(X[val_rows]), jnp.asarray(Y[val_rows])
    params = initial_params(SEED)
    state = adam_init(params)
    keys = jax.random.split(jax.random.PRNGKey(SEED), EPOCHS)
    history = []
    for k in range(EPOCHS):
        params, state, loss, val_loss, val_accuracy = epoch(params, state, keys[k], X_train, Y_train, X_val, Y_val)
        history.append((float(loss), float(val_loss), float(val_accuracy)))
    loss, accuracy = loss_and_accuracy(params, X_train, Y_train)
    seconds = time.perf_counter() - start
    print(
        f"digits_jax: JAX {jax.__version__}, Adam from {'optax' if optax else 'this script'}, {len(train_rows)} "
        f"training and {len(val_rows)} validation samples, {EPOCHS} epochs of batches of {BATCH_SIZE}"
    )
    print(
        f"  epoch 1    batches' mean loss {history[0][0]:.6f}, validation loss {history[0][1]:.6f}, "
        f"accuracy {history[0][2]:.1%}"
    )
    print(f"  final      loss {float(loss):.15g}, accuracy {float(accuracy):.1%} of {len(train_rows)} samples")
    print(f"  validation loss {history[-1][1]:.15g}, accuracy {history[-1][2]:.1%} of {len(val_rows)} samples")
    print(f"  data, compile and train: {seconds:.3f} s")


if __name__ == "__main__":
    main()
