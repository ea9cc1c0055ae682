"""Reverse-mode differentiation over the expression graph: loss -> straight-line forward and adjoint code.

Differentiating a composed network with `diff` copies every shared
subexpression into every partial derivative, so the work swells with the
model. Reverse mode keeps shared values shared (Laue, arXiv 1904.02990): it
names each node of the loss's expression graph once, walking the graph as a
DAG (a node reached twice is visited once), then runs the chain rule
backwards, node by node. Each node's local rule comes from SymPy's own `diff`
of a small local expression such as `exp(t3)` or `t1*t2`, so every function
SymPy can differentiate is supported, and the cost grows with the number of
graph nodes, that is, linearly with the model.

The result is ordinary straight-line code: forward values, then adjoints,
then (loss, dloss/dparam for each param). A last pass inlines values used only
once, so the code reads like hand-written backpropagation
(`t9 = 1/(t8 + 1)`, ..., `grad = t12*x1`) rather than one line per operator.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.graph import tree_size


@dataclass(frozen=True)
class Node:
    """One operation of the forward pass: `value = local`, whose arguments are other nodes' values."""

    value: sp.Symbol
    local: sp.Expr  # the operation applied to its arguments' values (symbols or atoms)
    arguments: tuple[sp.Expr, ...]  # the arguments' values that depend on a parameter


def _is_leaf(expr):
    return expr.is_Atom or not expr.args


def _is_opaque(expr):
    """Nodes not split further (Piecewise, relations...): their non-expression arguments have no adjoint."""
    return not all(isinstance(arg, sp.Expr) for arg in expr.args)


class _Graph:
    """The loss's expression DAG as a list of `Node`s in evaluation order."""

    def __init__(self, params, new_symbol):
        self.params = set(params)
        self.new_symbol = new_symbol
        self.value = {}  # expression -> the symbol or atom that holds its value
        self.active = {}  # expression -> whether it depends on a parameter
        self.nodes = []

    def add(self, root):
        """Name every node below `root` once, children first; iterative, since graphs can be deep."""
        stack = [(root, False)]
        while stack:
            expr, children_done = stack.pop()
            if expr in self.value:
                continue
            if _is_leaf(expr) or _is_opaque(expr):
                self._add_leaf(expr)
            elif expr.is_Add and -expr in self.value:
                self._add_negation(expr, -expr)
            elif children_done:
                self._add_operation(expr)
            else:
                stack.append((expr, True))
                stack.extend((arg, False) for arg in reversed(expr.args) if arg not in self.value)
        return self.value[root]

    def parameters_under(self, value):
        """The parameters that `value` (a node's value, or a parameter) depends on, for messages."""
        expr = next((e for e, v in self.value.items() if v == value), value)
        return sorted(expr.free_symbols & self.params, key=sp.default_sort_key)

    def _add_leaf(self, expr):
        if expr.is_Atom:
            self.value[expr] = expr
            self.active[expr] = expr in self.params
            return
        # An opaque node: evaluated as written, differentiated by `diff` with respect to the parameters inside.
        active = sorted(expr.free_symbols & self.params, key=sp.default_sort_key)
        self._append(expr, expr, tuple(active))

    def _add_operation(self, expr):
        arguments = [self.value[arg] for arg in expr.args]
        active = tuple(dict.fromkeys(v for arg, v in zip(expr.args, arguments) if self.active[arg]))
        self._append(expr, expr.func(*arguments), active)

    def _add_negation(self, expr, negated):
        """`expr` is -(a sum already in the graph): SymPy writes `-z` as a new sum with each term negated
        (the stable rewrites make sigmoid(z) next to sigmoid(-z) common), but it is one negation of z."""
        value = self.value[negated]
        self._append(expr, -value, (value,) if self.active[negated] else ())

    def _append(self, expr, local, active):
        if not active:  # constant with respect to the parameters: no adjoint, kept whole in its users
            self.value[expr] = local
            self.active[expr] = False
            return
        value = self.new_symbol()
        self.value[expr] = value
        self.active[expr] = True
        self.nodes.append(Node(value, local, active))


def local_partial(node: Node, argument: sp.Expr) -> sp.Expr:
    """d(node.local)/d(argument), written with the node's own value where that saves work."""
    local = node.local
    # Sums and products of many terms first: `diff` would differentiate every term for every argument,
    # which is quadratic in a neuron's fan-in. An argument of a node occurs in it once (SymPy gathers
    # repeats into coefficients and powers, and every other argument is a distinct value or a constant).
    if local.is_Add and argument in local.args:
        return sp.S.One
    if local.is_Mul and argument in local.args:
        return sp.Mul(*(factor for factor in local.args if factor != argument))
    if local.is_Pow and local.exp == -1:  # d(1/u)/du = -(1/u)**2, not -1/u**2: a square, no division
        return -(node.value**2)
    derivative = real_derivative(local, argument)
    if derivative.has(sp.Derivative):  # no rule: left for `check_closed_form` to report as written
        return derivative
    return derivative.xreplace({local: node.value})  # d exp(u)/du = exp(u) is the node itself


def real_derivative(expr, symbol):
    """d expr/d symbol with every symbol taken as real, as it stands for a float.

    With SymPy's default complex symbols, d|w|/dw comes out in terms of re(w),
    im(w) and their unevaluated derivatives. The user's formula is the only
    input here, so whatever SymPy raises (a function without a derivative rule,
    a bad argument) is reported as a problem with the model.
    """
    real = {s: sp.Dummy(s.name, real=True) for s in expr.free_symbols if not s.is_real}
    try:
        derivative = sp.diff(expr.xreplace(real), real.get(symbol, symbol))
    except Exception as exc:  # noqa: BLE001 (SymPy raises many types; see the docstring)
        raise SymcompileError(f"cannot differentiate the loss: {type(expr).__name__} fails in SymPy: {exc}") from exc
    return derivative.xreplace({dummy: s for s, dummy in real.items()})


def check_closed_form(derivative, parameters):
    """Raise a SymcompileError if `derivative` holds an unevaluated Derivative (SymPy has no rule).

    `parameters` (text, or a function giving it) names what the derivative was taken with respect to.
    """
    unevaluated = next(iter(derivative.atoms(sp.Derivative)), None)
    if unevaluated is not None:
        what = parameters() if callable(parameters) else parameters
        raise SymcompileError(
            f"the loss has no closed-form derivative with respect to {what}: "
            f"SymPy has no derivative rule for {unevaluated.expr.func}"
        )


def _new_value():
    return sp.Dummy(real=True)


def reverse_gradient(loss, params, new_symbol=_new_value):
    """Straight-line code computing (loss, dloss/dp for p in params) by reverse accumulation.

    Returns (assignments, results): `assignments` is a tuple of (symbol, expression) pairs to run in
    order, `results` the tuple (loss, gradient...). The symbols are `new_symbol()`s (real SymPy Dummies
    by default), for a later stage to name. Each local derivative is taken with real symbols, and a
    missing derivative rule is a SymcompileError, as with `diff` (symcompile/differentiate.py).
    """
    graph = _Graph(params, new_symbol)
    loss_value = graph.add(loss)
    assignments = [(node.value, node.local) for node in graph.nodes]
    contributions = defaultdict(list)  # value -> terms of its adjoint, gathered from the nodes that use it
    contributions[loss_value].append(sp.S.One)
    for node in reversed(graph.nodes):  # every user of a node comes after it, so its adjoint is complete here
        terms = contributions.pop(node.value, None)
        if not terms:
            continue
        adjoint = new_symbol()
        assignments.append((adjoint, sp.Add(*terms)))
        for argument in node.arguments:
            partial = local_partial(node, argument)
            check_closed_form(partial, lambda: ", ".join(p.name for p in graph.parameters_under(argument)))
            contributions[argument].append(adjoint * partial)
    grads = tuple(sp.Add(*contributions.get(p, ())) for p in params)
    return inline_single_uses(assignments, (loss_value,) + grads)


def forward_values(outputs, params, new_symbol=_new_value):
    """The outputs as straight-line code over their shared subexpressions: (assignments, results)."""
    graph = _Graph(params, new_symbol)
    results = tuple(graph.add(output) for output in outputs)
    return inline_single_uses([(node.value, node.local) for node in graph.nodes], results)


# A value used once is written into its user unless the user's expression would grow beyond
# INLINE_MAX_NODES nodes (as a tree) by taking in values of more than INLINE_SMALL_NODES each: statements
# stay about a line or two long, one neuron's worth for a network, and small terms such as `w*h` are
# always written in place, however long the sum that uses them.
INLINE_MAX_NODES = 100
INLINE_SMALL_NODES = 16


def inline_single_uses(assignments, results, max_nodes=INLINE_MAX_NODES):
    """Substitute values used exactly once (and plain copies) into their one user; drop unused ones.

    A value waits in `pending` until its user comes; if the user would grow beyond `max_nodes`, the
    largest pending values are written out as statements of their own, just before it.
    """
    defined = {sym: i for i, (sym, _) in enumerate(assignments)}
    uses = Counter()
    for expr in [rhs for _, rhs in assignments] + list(results):
        uses.update(s for s in sp.preorder_traversal(expr) if s in defined)
    sizes, copies, pending, kept = {}, {}, {}, []

    def substituted(expr):
        expr = expr.xreplace(copies)
        waiting = sorted((s for s in expr.free_symbols if s in pending), key=defined.get)
        total = tree_size(expr, sizes) + sum(tree_size(pending[s], sizes) - 1 for s in waiting)
        for s in sorted(waiting, key=lambda s: -tree_size(pending[s], sizes)):
            if total <= max_nodes or tree_size(pending[s], sizes) <= INLINE_SMALL_NODES:
                break
            total -= tree_size(pending[s], sizes) - 1
            kept.append((s, pending.pop(s)))
        return expr.xreplace({s: pending.pop(s) for s in waiting if s in pending})

    for sym, rhs in assignments:
        if uses[sym] == 0:
            continue
        rhs = substituted(rhs)
        if rhs.is_Atom:
            copies[sym] = rhs
        elif uses[sym] == 1 and tree_size(rhs, sizes) <= max_nodes:
            pending[sym] = rhs
        else:
            kept.append((sym, rhs))
    results = tuple(substituted(r) for r in results)
    return tuple(kept), results
