"""The MLP's mean loss in JAX, as the benchmarks' JAX peers write it (matrices, JAX's own autodiff).

Imports JAX only when called, and sets nothing: each caller chooses x64 and threads before it calls.
"""


def mlp_mean_loss(hidden_activation, output_activation):
    """mean_loss(params, X, Y) over params [(W, b), ...]: softmax cross-entropy for a softmax output, else binary
    cross-entropy on the logits, averaged over the samples."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    hidden = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[hidden_activation]

    def mean_loss(params, X, Y):
        a = X
        for W, b in params[:-1]:
            a = hidden(a @ W + b)
        z = a @ params[-1][0] + params[-1][1]
        if output_activation == "softmax":
            per_sample = jnp.sum(Y * (logsumexp(z, axis=1, keepdims=True) - z), axis=1)
        else:
            per_sample = jnp.sum(Y * jax.nn.softplus(-z) + (1 - Y) * jax.nn.softplus(z), axis=1)
        return jnp.mean(per_sample)

    return mean_loss
