"""JAX peers: gradient descent as one `jax.jit` call with `lax.fori_loop`, in float64.

Imported only when JAX is installed (`pip install 'symcompile[bench]'`).
`model_descent` runs any model from its SymPy loss (lambdified for JAX, with
JAX's own autodiff); `mlp_descent` is a sigmoid MLP written with matrices, as
JAX users write one.
"""

import jax

jax.config.update("jax_enable_x64", True)  # the generated module computes in float64; so must its peers

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special  # noqa: E402
import numpy as np  # noqa: E402
import sympy as sp  # noqa: E402
from jax import lax  # noqa: E402

from benchmarks.bench.peer_forms import peer_functions  # noqa: E402


def _descent(mean_loss, lr, iterations):
    """A jitted function: initial weights (any pytree) -> (final weights, loss before each step then final loss)."""
    value_and_grad = jax.value_and_grad(mean_loss)

    def step(i, state):
        w, history = state
        loss, grad = value_and_grad(w)
        w = jax.tree_util.tree_map(lambda p, g: p - lr * g, w, grad)
        return w, history.at[i].set(loss)

    @jax.jit
    def run(w):
        w, history = lax.fori_loop(0, iterations, step, (w, jnp.zeros(iterations + 1)))
        return w, history.at[iterations].set(mean_loss(w))

    return run


# The rewrite stage's stable functions, as JAX provides them.
STABLE_FUNCTIONS = peer_functions("jax", jax)


def model_descent(model, lr, iterations):
    """Simultaneous descent on `model` (a rewritten `Model`) over its default data: numpy weights in and out."""
    args = model.params + model.inputs + model.targets
    per_sample = sp.lambdify(args, model.loss, modules=[STABLE_FUNCTIONS, "jax"])
    columns = [jnp.asarray(c) for c in (*model.X.T, *model.Y.T)]

    def mean_loss(w):
        return jnp.mean(per_sample(*(w[k] for k in range(len(model.params))), *columns))

    run = _descent(mean_loss, lr, iterations)

    def train(w):
        w, history = run(jnp.asarray(w))
        return np.asarray(w), np.asarray(history)

    return train


def _mlp_mean_loss(X, Y):
    def mean_loss(layer_params):
        a = X
        for W, b in layer_params:
            a = jax.nn.sigmoid(a @ W + b)
        return -jnp.mean(jnp.sum(Y * jnp.log(a) + (1.0 - Y) * jnp.log(1.0 - a), axis=1))

    return mean_loss


def mlp_descent(layout, X, Y, lr, epochs):
    """Full-batch descent on a sigmoid MLP: flat numpy weights (in `layout`'s order) in and out."""
    run = _descent(_mlp_mean_loss(jnp.asarray(X), jnp.asarray(Y)), lr, epochs)

    def train(flat):
        layer_params, history = run([(jnp.asarray(W), jnp.asarray(b)) for W, b in layout.unpack(flat)])
        return layout.pack([(np.asarray(W), np.asarray(b)) for W, b in layer_params]), np.asarray(history)

    return train
