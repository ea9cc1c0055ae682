"""Numerically stable functions that the rewrite stage introduces: sigmoid, softplus, logsumexp.

Written out, `1/(1 + exp(-z))`, `log(1 + exp(z))` and `log(sum(exp(z_k)))`
overflow or cancel in double precision once |z| passes a few hundred (or
merely 37, for `log(1 - sigmoid(z))`). As SymPy functions they stay opaque:
`diff` uses each one's `fdiff`, which is written in the same stable functions
(d softplus = sigmoid, d sigmoid = sigmoid(z)*sigmoid(-z), d logsumexp =
exp(z_k - logsumexp)), so the gradient is as stable as the value, and `cse`
shares the calls like any other.

Each function is declared once, as one subclass of `StableFunction` that
holds every form of it symcompile uses: the SymPy class itself (special
values in `eval`, the derivative in `fdiff`), the exact value in mpmath (for
`evalf` and the tests), and the generated module's Numba helper as a plain
function. Defining the subclass registers it; nothing else in symcompile names the
functions one by one. (The forms in `math`, NumPy, JAX and PyTorch that the
benchmarks' peers compute with are in the checkout's
benchmarks/bench/peer_forms.py.)
"""

from __future__ import annotations

import math

import mpmath
import sympy as sp

from symcompile.graph import graph_nodes
from symcompile.static_code import pasted

# Every declared stable function, in declaration order (the order of the generated module's helpers).
DECLARED: list[type[StableFunction]] = []


class StableFunction(sp.Function):
    """A function that never overflows, with all its forms; subclass it to declare one.

    A subclass gives, besides SymPy's `nargs`, `eval` (special values) and
    `fdiff` (the derivative, in stable functions again):

    - `mpmath_value(*args)`: the exact value, at mpmath's working precision;
    - `numba_helper`: the generated module's Numba function `_<name>`, which
      must never overflow: a plain Python function named so, without a
      decorator, whose source the module gets (symcompile.static_code);
    - `helper_takes_tuple`: True when that helper takes its arguments as one
      tuple of floats (for any number of arguments: Numba iterates only over
      tuples of one type).
    """

    numba_helper = None  # a plain function, named _<name>
    helper_takes_tuple: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        DECLARED.append(cls)

    @staticmethod
    def mpmath_value(*args):
        raise NotImplementedError

    def _eval_mpmath(self):
        # SymPy's evalf calls this hook at the requested precision.
        return self.mpmath_value, self.args

    @property
    def helper(self) -> str:
        """The generated module's function that computes this one."""
        return "_" + type(self).__name__


def _sigmoid(z):
    """1/(1 + exp(-z)), with exp of a negative number only, so it never overflows."""
    # exp(-|z|) on both sides: once inlined, sigmoid(z), sigmoid(-z) and softplus(+-z)
    # of one z share a single exp (the gradient of a sigmoid network calls all four).
    e = math.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


class sigmoid(StableFunction):  # noqa: N801 (SymPy functions are lower case, like exp and log)
    """The logistic function 1/(1 + exp(-z))."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return sp.S.Half

    def fdiff(self, argindex=1):
        z = self.args[0]
        # Not exp(-z)/(1 + exp(-z))**2, which is inf/inf for z < -355.
        return sigmoid(z) * sigmoid(-z)

    @staticmethod
    def mpmath_value(z):
        return 1 / (1 + mpmath.exp(-z))

    numba_helper = _sigmoid


def _softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): no overflow, and exact where it is tiny."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


class softplus(StableFunction):  # noqa: N801
    """log(1 + exp(z)); log(sigmoid(z)) = -softplus(-z)."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return sp.log(2)

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    @staticmethod
    def mpmath_value(z):
        return mpmath.log1p(mpmath.exp(z))

    numba_helper = _softplus


def _logsumexp(values):
    """log(sum(exp(values))) for a tuple of floats, with the largest value factored out."""
    top = max(values)
    if math.isinf(top):  # all -inf, or one +inf: the naive sum says the same, minus the inf - inf
        return top
    total = 0.0
    for value in values:
        total += math.exp(value - top)
    return top + math.log(total)


class logsumexp(StableFunction):  # noqa: N801
    """log(exp(z_1) + ... + exp(z_n)); log of a softmax is z_k - logsumexp(z_1, ..., z_n)."""

    @classmethod
    def eval(cls, *zs):
        if len(zs) == 0:
            raise TypeError("logsumexp needs at least one argument")
        if len(zs) == 1:
            return zs[0]

    def fdiff(self, argindex=1):
        # The softmax weight of argument k, never above 1 and so never overflowing.
        return sp.exp(self.args[argindex - 1] - self)

    @staticmethod
    def mpmath_value(*zs):
        return mpmath.log(mpmath.fsum(mpmath.exp(z) for z in zs))

    numba_helper = _logsumexp
    helper_takes_tuple = True


def used_functions(expressions) -> set[type[StableFunction]]:
    """The stable functions that `expressions` call (a walk over their graphs, each shared node once)."""
    seen, used = set(), set()
    for expr in expressions:
        for node in graph_nodes(expr, seen):
            seen.add(node)
            if isinstance(node, StableFunction):
                used.add(type(node))
    return used


def helper_sources(expressions) -> list[str]:
    """The Numba helpers that `expressions` call, as the module's source text, in declaration order."""
    used = used_functions(expressions)
    return [pasted(function.numba_helper) for function in DECLARED if function in used]


def mpmath_functions() -> dict:
    """{name: exact mpmath value} of every stable function, for `sympy.lambdify(..., [this, "mpmath"])`."""
    return {function.__name__: function.mpmath_value for function in DECLARED}
