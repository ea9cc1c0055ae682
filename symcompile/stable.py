"""Numerically stable functions that the rewrite stage introduces: sigmoid, softplus, logsumexp.

Written out, `1/(1 + exp(-z))`, `log(1 + exp(z))` and `log(sum(exp(z_k)))`
overflow or cancel in double precision once |z| passes a few hundred (or
merely 37, for `log(1 - sigmoid(z))`). As SymPy functions they stay opaque:
`diff` uses each one's `fdiff`, which is written in the same stable functions
(d softplus = sigmoid, d sigmoid = sigmoid(z)*sigmoid(-z), d logsumexp =
exp(z_k - logsumexp)), so the gradient is as stable as the value, and `cse`
shares the calls like any other. `evalf` computes them with mpmath at any
precision. Generated code calls small helpers of the same names
(`templates/helpers.py.j2`) that never overflow.
"""

from __future__ import annotations

import mpmath
import sympy as sp


class StableFunction(sp.Function):
    """A function with an exact mpmath evaluation and a Numba helper in the generated module."""

    @staticmethod
    def _mpmath_value(*args):
        raise NotImplementedError

    def _eval_mpmath(self):
        # SymPy's evalf calls this hook at the requested precision.
        return self._mpmath_value, self.args

    @property
    def helper(self) -> str:
        """The generated module's function that computes this one."""
        return "_" + type(self).__name__


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
    def _mpmath_value(z):
        return 1 / (1 + mpmath.exp(-z))


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
    def _mpmath_value(z):
        return mpmath.log1p(mpmath.exp(z))


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
    def _mpmath_value(*zs):
        return mpmath.log(mpmath.fsum(mpmath.exp(z) for z in zs))


STABLE_FUNCTIONS = (sigmoid, softplus, logsumexp)


def helpers_used(expressions) -> list[str]:
    """Names of the generated helpers that `expressions` call, sorted."""
    return sorted({f.helper for expr in expressions for f in expr.atoms(*STABLE_FUNCTIONS)})
