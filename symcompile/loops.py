"""The rolled layout: straight-line code regrouped into loops over its repeated statements.

A network repeats one statement per neuron, such as
`t12 = 1/(exp(-b5 - w1_5*x1 - w2_5*x2) + 1)`, differing only in the weights and
values it reads. Numba's compile time grows with the amount of code, and faster
than linearly with the size of one function (BENCHMARKS.md, Scaling), so for
large models the emitter rolls such runs back into loops:

1. statements are scheduled by dependency level (any order within a level is
   valid), and statements of the same shape within a level become neighbours;
2. a run of neighbours of one shape whose reads and writes all advance by
   fixed strides becomes one loop:

        for k in range(16):
            t[32 + k] = 1/(math.exp(-w[24 + k] - w[k]*x1 - w[16 + k]*x2) + 1)

Temporaries live in an array `t` so that a loop can address them; results
(loss, gradient or outputs) go to their own arrays the same way. A loop runs
its statements in their order, so rolling never changes what is computed.

This module is analysis only: it returns `Loop`s, plain data (counts, array
patterns, base indices and strides, SymPy expressions). Turning them into a
backend's text is the emitter's job (`emit.loop_lines` for Python/Numba).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sympy as sp

from symcompile.differentiate import StraightLine

TEMPORARIES = "t[{}]"


@dataclass(frozen=True)
class Statement:
    """`destination` (a pattern such as "grad[{}] +=", with `index` for its `{}`, or None) receives `expr`."""

    destination: str
    index: int | None
    expr: sp.Expr


@dataclass(frozen=True)
class Index:
    """The index of the i-th pass of a loop: base + i*stride (stride 0: the same element every pass)."""

    base: int
    stride: int


@dataclass(frozen=True)
class Loop:
    """`count` passes (1: a single statement) of `destination` (a pattern with `{}` at `index`) receiving `expr`,
    in which each symbol of `reads` is read from its array (a pattern with `{}`) at its index."""

    count: int
    destination: str
    index: Index | None
    expr: sp.Expr
    reads: tuple[tuple[sp.Symbol, str, Index], ...]


@dataclass(frozen=True)
class RolledCode:
    """A program in the rolled layout: its loops, the size of the temporaries array `t`, and the model symbols
    read by name."""

    loops: tuple[Loop, ...]  # one sample's code, results included, in order
    n_temporaries: int
    named: frozenset  # model symbols read by name: parameters loaded before the sample loop, inputs per sample


class _Addresses:
    """Where each symbol lives: parameters in `w`, inputs in `X[n, ...]`, targets in `Y[n, ...]`, the rest in `t`."""

    def __init__(self, model):
        self.array, self.index = {}, {}
        for symbols, array in ((model.params, "w[{}]"), (model.inputs, "X[n, {}]"), (model.targets, "Y[n, {}]")):
            for i, s in enumerate(symbols):
                self.array[s], self.index[s] = array, i
        self.n_temporaries = 0

    def add_temporary(self, symbol):
        self.array[symbol], self.index[symbol] = TEMPORARIES, self.n_temporaries
        self.n_temporaries += 1

    def kind(self, symbol):
        return self.array.get(symbol, TEMPORARIES)


def shape(destination, expr, addresses):
    """A statement's form with its symbols abstracted, and its distinct symbols in the order the form reads them.

    Statements of equal shape differ only in what they read: a symbol is abstracted to its array, plus
    which earlier leaf holds the same symbol, so `a*b + a` matches `c*d + c` but not `c*d + d`. The
    terms of sums and products are put in a canonical order (by form, then by address), since SymPy
    orders them by name, which would make `t3*w9` and `t12*w10` look different.
    """
    form, leaf_addresses, leaves = _canonical(expr, addresses)
    first = {}
    pattern = tuple(first.setdefault(leaf, len(first)) for leaf in leaves)
    return (destination, form, pattern), tuple(first), leaf_addresses


def _canonical(expr, addresses):
    """(form, addresses of its leaves, leaf symbols), with commutative arguments sorted."""
    if expr.is_Symbol:
        kind = addresses.kind(expr)
        return ("symbol", kind), ((kind, addresses.index.get(expr, -1)),), (expr,)
    if not expr.args:
        return ("number", type(expr).__name__, str(expr)), (), ()  # 2 and 2.0 are equal in SymPy, not in print
    children = [_canonical(arg, addresses) for arg in expr.args]
    if expr.is_Add or expr.is_Mul:
        children.sort(key=lambda child: child[:2])
    form = ("function", expr.func.__name__) + tuple(child[0] for child in children)
    return form, sum((child[1] for child in children), ()), sum((child[2] for child in children), ())


def schedule(assignments, addresses):
    """The assignments in a valid order that puts statements of one dependency level and one shape together,
    each given its slot in `t` in that order.

    Within such a group no statement reads another, so they are sorted by the addresses they read,
    which puts them in the order of the weights and values they use: neuron 9 before neuron 10.
    """
    level, levels = {}, defaultdict(list)
    for sym, expr in assignments:
        level[sym] = 1 + max((level[s] for s in expr.free_symbols if s in level), default=-1)
        levels[level[sym]].append((sym, expr))
    ordered = []
    for group in (levels[k] for k in sorted(levels)):  # earlier levels first: their slots are known here
        rank, order = {}, []
        for sym, expr in group:
            key, _, leaf_addresses = shape(TEMPORARIES, expr, addresses)
            order.append((rank.setdefault(key, len(rank)), leaf_addresses))
        for i in sorted(range(len(group)), key=order.__getitem__):
            addresses.add_temporary(group[i][0])
            ordered.append(group[i])
    return ordered


class _Run:
    """Neighbouring statements of one shape whose indices advance by fixed strides: one loop."""

    def __init__(self, key, statement, symbols, addresses):
        self.key, self.first, self.symbols = key, statement, symbols
        self.base = self._indices(statement, symbols, addresses)
        self.stride, self.count = None, 1

    @staticmethod
    def _indices(statement, symbols, addresses):
        return (statement.index,) + tuple(addresses.index[s] for s in symbols)

    def extend(self, key, statement, symbols, addresses) -> bool:
        """Take the statement into the run if it continues every stride; say whether it did."""
        if key != self.key or statement.index is None:
            return False
        indices = self._indices(statement, symbols, addresses)
        if self.stride is None:
            self.stride = tuple(i - b for i, b in zip(indices, self.base))
        elif any(i != b + self.count * d for i, b, d in zip(indices, self.base, self.stride)):
            return False
        self.count += 1
        return True

    def loop(self, addresses, named) -> Loop:
        """The run as a `Loop`; model symbols it reads at the same index every pass are added to `named`."""
        stride = self.stride or (0,) * len(self.base)
        reads = []
        for symbol, base, step in zip(self.symbols, self.base[1:], stride[1:]):
            array = addresses.kind(symbol)
            if step == 0 and array != TEMPORARIES:
                named.add(symbol)  # loop-invariant model symbol: read by its name
            else:
                reads.append((symbol, array, Index(base, step)))
        index = None if self.base[0] is None else Index(self.base[0], stride[0])
        return Loop(self.count, self.first.destination, index, self.first.expr, tuple(reads))


def rolled(code: StraightLine, model, result_destinations) -> RolledCode:
    """Lay out `code` as loops; result i goes to `result_destinations[i]`, a (pattern, index) pair."""
    addresses = _Addresses(model)
    assignments = schedule(code.assignments, addresses)
    statements = [Statement(TEMPORARIES + " =", addresses.index[sym], expr) for sym, expr in assignments]
    results = [Statement(pattern, index, expr) for (pattern, index), expr in zip(result_destinations, code.results)]
    shaped = [shape(s.destination, s.expr, addresses) for s in results]
    rank = {}
    for key, _, _ in shaped:
        rank.setdefault(key, len(rank))
    order = sorted(range(len(results)), key=lambda i: rank[shaped[i][0]])  # results are independent: group them
    runs = []
    for statement, (key, symbols, _) in [(s, shape(s.destination, s.expr, addresses)) for s in statements] + [
        (results[i], shaped[i]) for i in order
    ]:
        if not (runs and runs[-1].extend(key, statement, symbols, addresses)):
            runs.append(_Run(key, statement, symbols, addresses))
    named = set()
    loops = tuple(run.loop(addresses, named) for run in runs)
    return RolledCode(loops, len(assignments), frozenset(named))
