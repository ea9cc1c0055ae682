"""The rewrite stage (options.STAGES): algebraically equal forms that compute better.

Each rewrite is a small named function from expression to expression; the
stage applies them in order and reports which ones changed something, so the
build report shows what was done to the user's formula.

Most of them trade textbook formulas that overflow or cancel in double
precision for the stable functions of `symcompile.stable`: the logistic
function becomes `sigmoid`, log(sigmoid) and log(1 - sigmoid) become
`softplus`, and softmax and its log go through `logsumexp`. The stage runs
before `differentiate`, so the gradient is derived from the stable forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import sympy as sp

from symcompile.graph import replace_bottom_up
from symcompile.model import Model
from symcompile.stable import logsumexp, sigmoid, softplus


def float_e_powers_to_exp(expr):
    """`e**z` with a float `e` (as NumPy's `e`) becomes `exp(z)`.

    `float(e)**z == exp(z * log(float(e)))`, and `log(float(e))` rounds to 1.0
    in double precision, so this is exact to the last bit of the base.
    """
    return replace_bottom_up(
        expr,
        lambda node: sp.exp(node.exp) if node.is_Pow and node.base.is_Float and float(node.base) == math.e else None,
    )


def _replace_matches(expr, match, build):
    """Replace, bottom-up, each node where `match(node)` finds parts, by `build(node, parts)`.

    Over the expression's graph (symcompile.graph): SymPy's own `replace` walks it as a tree, which for a
    network costs the square of its width per layer (26 s of a 30 s build at 16-64-64-1).
    """

    def replaced(node):
        parts = match(node)
        return None if parts is None else build(node, parts)

    return replace_bottom_up(expr, replaced)


def _one_plus_exp(node):
    """u when node is 1 + exp(u)."""
    if node.is_Add and len(node.args) == 2 and node.args[0] == 1 and isinstance(node.args[1], sp.exp):
        return node.args[1].args[0]
    return None


def _exp_ratio(node):
    """(u, the factor 1/(1 + exp(u))) when node is exp(u)/(1 + exp(u)) times anything."""
    if node.is_Mul:
        for factor in node.args:
            if factor.is_Pow and factor.exp == -1:
                u = _one_plus_exp(factor.base)
                if u is not None and factor.base.args[1] in node.args:  # that exp(u), not a new one to compare
                    return u, factor
    return None


def _logistic(node):
    """(u, k) when node is 1/(1 + exp(u))**k, k a positive integer."""
    if node.is_Pow and node.exp.is_Integer and node.exp < 0:
        u = _one_plus_exp(node.base)
        if u is not None:
            return u, -node.exp
    return None


def _one_minus_sigmoid(node):
    """The term -sigmoid(u) when node is a sum 1 - sigmoid(u) + ..."""
    if node.is_Add and sp.S.One in node.args:
        for term in node.args:
            if term.is_Mul and len(term.args) == 2 and term.args[0] == -1 and isinstance(term.args[1], sigmoid):
                return term
    return None


def _log_of(kind, node):
    return node.args[0] if isinstance(node, sp.log) and isinstance(node.args[0], kind) else None


def _softmax(node):
    """For exp(a_1)*...*exp(a_m)*rest/(exp(z_1) + ... + exp(z_n)): (a_1 + ... + a_m, [z_k], rest)."""
    if node.is_Mul:
        for factor in node.args:
            if factor.is_Pow and factor.exp == -1 and factor.base.is_Add:
                if all(isinstance(t, sp.exp) for t in factor.base.args):
                    numerator = sp.Add(*(f.args[0] for f in node.args if isinstance(f, sp.exp)))
                    rest = [f for f in node.args if f is not factor and not isinstance(f, sp.exp)]
                    return numerator, [t.args[0] for t in factor.base.args], rest
    return None


def _log_softmax(node):
    parts = _softmax(node.args[0]) if isinstance(node, sp.log) else None
    return parts if parts is not None and not parts[2] else None


def _exponent(term):
    """z when term is exp(z), c*exp(z) (exp(z + log c)) or a constant c > 0 (exp(log c)); else None."""
    if isinstance(term, sp.exp):
        return term.args[0]
    if term.is_Number and term.is_positive:
        return sp.log(term)
    if term.is_Mul and len(term.args) == 2:
        c, power = term.args
        if c.is_Number and c.is_positive and isinstance(power, sp.exp):
            return power.args[0] + sp.log(c)
    return None


def _log_of_exp_sum(node):
    """[z_k] when node is log(exp(z_1) + ... + exp(z_n)), a term also c*exp(z) or c > 0 (SymPy adds up the
    constants, so at least one term is an exp)."""
    if isinstance(node, sp.log) and node.args[0].is_Add:
        exponents = [_exponent(term) for term in node.args[0].args]
        if None not in exponents:
            return exponents
    return None


def _tanh_ratio(node):
    """(the exponent of tanh, the numerator and denominator factors) when node is (exp(a) - exp(b))/(exp(a) +
    exp(b)) times anything, either exp possibly 1 = exp(0): tanh written out, = tanh((a - b)/2)."""
    if not node.is_Mul:
        return None
    for factor in node.args:
        if factor.is_Pow and factor.exp == -1 and factor.base.is_Add and len(factor.base.args) == 2:
            p, q = factor.base.args
            a, b = (0 if t == 1 else t.args[0] if isinstance(t, sp.exp) else None for t in (p, q))
            if a is None or b is None:
                continue
            for numerator, (high, low) in ((p - q, (a, b)), (q - p, (b, a))):
                if numerator in node.args:
                    return (high - low) / 2, numerator, factor
    return None


def exp_ratio_to_tanh(expr):
    """(exp(a) - exp(b))/(exp(a) + exp(b)) -> tanh((a - b)/2): tanh written with exp is inf/inf once |a - b|
    passes 1419 (and so are (exp(2z) - 1)/(exp(2z) + 1) and (1 - exp(-2z))/(1 + exp(-2z)) at 355). Runs
    before the sigmoid and softmax rewrites, which would take its denominator apart."""

    def to_tanh(node, parts):
        z, numerator, denominator = parts
        return sp.Mul(sp.tanh(z), *(f for f in node.args if f not in (numerator, denominator)))

    return _replace_matches(expr, _tanh_ratio, to_tanh)


def log_sum_exp_to_logsumexp(expr):
    """log(exp(z_1) + ... + exp(z_n)) -> logsumexp(z_1, ..., z_n) (a constant c > 0 as exp(log c)): the sum
    overflows once a z_k passes 709, and underflows to log(0) once all pass -745."""
    return _replace_matches(expr, _log_of_exp_sum, lambda node, exponents: logsumexp(*exponents))


def exp_ratio_to_sigmoid(expr):
    """exp(u)/(1 + exp(u)) -> sigmoid(u) (inf/inf for u > 709 as written)."""

    def to_sigmoid(node, parts):
        u, denominator = parts
        return sp.Mul(sigmoid(u), *(f for f in node.args if f not in (denominator, denominator.base.args[1])))

    return _replace_matches(expr, _exp_ratio, to_sigmoid)


def logistic_to_sigmoid(expr):
    """1/(1 + exp(u))**k -> sigmoid(-u)**k, whose derivative stays finite at any u."""
    return _replace_matches(expr, _logistic, lambda node, parts: sigmoid(-parts[0]) ** parts[1])


def sigmoid_complement(expr):
    """1 - sigmoid(u) -> sigmoid(-u): no cancellation to 0 once sigmoid(u) rounds to 1 (u > 37)."""
    return _replace_matches(
        expr, _one_minus_sigmoid, lambda node, term: node - 1 - term + sigmoid(-term.args[1].args[0])
    )


def log_sigmoid_to_softplus(expr):
    """log(sigmoid(u)) -> -softplus(-u): finite where sigmoid(u) underflows to 0."""
    return _replace_matches(expr, lambda node: _log_of(sigmoid, node), lambda node, s: -softplus(-s.args[0]))


def log_one_plus_exp_to_softplus(expr):
    """log(1 + exp(u)) -> softplus(u): finite for u > 709, and exact for u < -37."""
    return _replace_matches(
        expr,
        lambda node: _one_plus_exp(node.args[0]) if isinstance(node, sp.log) else None,
        lambda node, u: softplus(u),
    )


def log_softmax_to_logsumexp(expr):
    """log(exp(a)/(exp(z_1) + ... + exp(z_n))) -> a - logsumexp(z_1, ..., z_n): no inf/inf, no log(0)."""
    return _replace_matches(expr, _log_softmax, lambda node, parts: parts[0] - logsumexp(*parts[1]))


def softmax_to_logsumexp(expr):
    """exp(a)/(exp(z_1) + ... + exp(z_n)) -> exp(a - logsumexp(z_1, ..., z_n)), never inf/inf."""
    return _replace_matches(
        expr, _softmax, lambda node, parts: sp.Mul(sp.exp(parts[0] - logsumexp(*parts[1]), evaluate=False), *parts[2])
    )


# In order: each rule may rely on the forms the earlier ones produce.
REWRITES = (
    float_e_powers_to_exp,
    exp_ratio_to_tanh,
    exp_ratio_to_sigmoid,
    logistic_to_sigmoid,
    sigmoid_complement,
    log_sigmoid_to_softplus,
    log_one_plus_exp_to_softplus,
    log_softmax_to_logsumexp,
    log_sum_exp_to_logsumexp,
    softmax_to_logsumexp,
)


@dataclass(frozen=True)
class RewriteReport:
    """The names of the rewrites that changed something, in the order they ran."""

    applied: tuple[str, ...]


def rewrite(model: Model) -> tuple[Model, RewriteReport]:
    """Apply every rewrite to the model's outputs and loss."""
    outputs, loss, applied = model.outputs, model.loss, []
    for rule in REWRITES:
        new_outputs = tuple(rule(o) for o in outputs)
        new_loss = rule(loss)
        if new_outputs != outputs or new_loss != loss:
            applied.append(rule.__name__)
        outputs, loss = new_outputs, new_loss
    return replace(model, outputs=outputs, loss=loss), RewriteReport(tuple(applied))
