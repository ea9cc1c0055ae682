"""The stable functions (symcompile.stable) as the benchmarks' peers compute them: in `math`, NumPy, JAX, PyTorch.

FORMS[name][library] takes the library's module and returns the function, so
that only a peer that runs loads its library. Each form equals the exact mpmath
value to 1e-14 over the range the tests check (tests/test_stable_registry.py);
the `math` forms compute as the generated module's Numba helpers do.
"""

FORMS = {
    "sigmoid": {
        "math": lambda math: lambda z: 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z)),
        "numpy": lambda np: lambda z: _numpy_sigmoid(np, z),
        "jax": lambda jax: jax.nn.sigmoid,
        "torch": lambda torch: torch.sigmoid,
    },
    "softplus": {
        "math": lambda math: lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
        "numpy": lambda np: lambda z: np.logaddexp(0.0, z),
        "jax": lambda jax: jax.nn.softplus,
        # Not torch.nn.functional.softplus: above its threshold (20) it returns z itself, off by up to 2e-9.
        "torch": lambda torch: lambda z: torch.logaddexp(z, torch.zeros_like(z)),
    },
    "logsumexp": {
        "math": lambda math: lambda *zs: _math_logsumexp(math, zs),
        "numpy": lambda np: lambda *zs: np.logaddexp.reduce(np.broadcast_arrays(*zs), axis=0),
        "jax": lambda jax: lambda *zs: jax.scipy.special.logsumexp(jax.numpy.stack(zs), axis=0),
        "torch": lambda torch: lambda *zs: torch.logsumexp(torch.stack(zs), 0),
    },
}


def _numpy_sigmoid(np, z):
    e = np.exp(-np.abs(z))  # as the Numba helper computes it, element by element
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _math_logsumexp(math, zs):
    top = max(zs)
    return top + math.log(sum(math.exp(z - top) for z in zs))


def peer_functions(library: str, module) -> dict:
    """{name: function} of every stable function with a form in `library`, for `sympy.lambdify`'s `modules`.

    `module` is the library's module (`math`, `numpy`, `jax`, `torch`): the
    caller imports it.
    """
    return {name: forms[library](module) for name, forms in FORMS.items() if library in forms}
