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


def layer_params(layers, flat):
    """[(W, b)] per layer from symcompile's flat MLP weights (per layer: W source-major, then its biases), as NumPy
    views: the JAX peers' starting weights, the same as the symcompile module's."""
    params, at = [], 0
    for n_in, n_out in zip(layers, layers[1:]):
        W = flat[at : at + n_in * n_out].reshape(n_in, n_out)
        params.append((W, flat[at + n_in * n_out : at + (n_in + 1) * n_out]))
        at += (n_in + 1) * n_out
    return params


def flat_weights(params):
    """symcompile's flat MLP weights from [(W, b)] per layer (JAX or NumPy arrays), in float64."""
    import numpy as np

    return np.concatenate([np.concatenate([np.asarray(W, float).ravel(), np.asarray(b, float)]) for W, b in params])
