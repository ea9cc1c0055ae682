"""Stage 4, optimize: `Program` -> `Kernel`.

Common-subexpression elimination over each straight-line program, so that the
loss and all partial derivatives share their work in one fused pass. For the
sequential (Gauss-Seidel) update each partial derivative also gets a program
of its own, since there each one is evaluated at different weights; that is
P programs for P parameters, so it is done only for small models (the seed),
and larger ones run the sweep through the fused kernel instead.
Operation counts before and after are kept for the build report.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symcompile.differentiate import Program, StraightLine


@dataclass(frozen=True)
class Kernel:
    program: Program
    forward: StraightLine
    loss_and_grad: StraightLine
    # One program per parameter for the sequential sweep: sweep[j].results is
    # (dloss/dparam_j,), and sweep[0] also yields the loss, since it runs at
    # the weights the iteration started from. Empty when the model has more
    # than UNROLLED_SWEEP_MAX_PARAMS parameters: the sweep then calls the
    # fused kernel once per parameter (same values, code that does not grow
    # with the square of the model).
    sweep: tuple[StraightLine, ...]
    ops_before: int
    ops_after: int


def count_ops(code: StraightLine) -> int:
    return sp.count_ops([expr for _, expr in code.assignments] + list(code.results))


def eliminate_common_subexpressions(code: StraightLine, new_temporaries) -> StraightLine:
    """CSE over the whole program.

    `new_temporaries()` returns a fresh iterator of symbols that clash with no
    model name, so every kernel numbers its temporaries from the start.
    """
    n_assigned = len(code.assignments)
    replaced, reduced = sp.cse(
        [expr for _, expr in code.assignments] + list(code.results), symbols=new_temporaries(), order="none"
    )
    assigned = [(sym, rhs) for (sym, _), rhs in zip(code.assignments, reduced[:n_assigned])]
    return StraightLine(in_dependency_order(assigned + list(replaced)), tuple(reduced[n_assigned:]))


def in_dependency_order(definitions):
    """Order (symbol, expr) pairs so each comes after the definitions it uses; stable otherwise."""
    by_symbol = dict(definitions)
    position = {sym: i for i, (sym, _) in enumerate(definitions)}
    emitted, ordered = set(), []
    for root, _ in definitions:
        stack = [(root, False)]
        while stack:  # iterative depth-first search: programs can be deeper than Python's recursion limit
            sym, children_done = stack.pop()
            if sym in emitted:
                continue
            if children_done:
                emitted.add(sym)
                ordered.append((sym, by_symbol[sym]))
                continue
            stack.append((sym, True))
            deps = [d for d in by_symbol[sym].free_symbols if d in by_symbol and d not in emitted]
            stack.extend((d, False) for d in sorted(deps, key=position.__getitem__, reverse=True))
    return tuple(ordered)


# Above this many parameters the sweep calls the fused kernel instead of unrolling one program per
# parameter: the unrolled sweep's code grows as P * (program size) and Numba compiles it for seconds.
UNROLLED_SWEEP_MAX_PARAMS = 16


def optimize(program: Program, new_temporaries) -> Kernel:
    code = program.loss_and_grad
    fused = optimized(code, new_temporaries)
    unrolled = len(program.model.params) <= UNROLLED_SWEEP_MAX_PARAMS
    return Kernel(
        program=program,
        forward=optimized(program.forward, new_temporaries),
        loss_and_grad=fused,
        sweep=per_parameter_programs(code, new_temporaries) if unrolled else (),
        ops_before=count_ops(code),
        ops_after=count_ops(fused),
    )


def optimized(code: StraightLine, new_temporaries) -> StraightLine:
    return numbered(without_copies(eliminate_common_subexpressions(code, new_temporaries)), new_temporaries())


def without_copies(code: StraightLine) -> StraightLine:
    """Drop assignments `a = b`, reading b for a: CSE leaves them when a whole right-hand side is shared."""
    copies, kept = {}, []
    for sym, expr in code.assignments:
        expr = expr.xreplace(copies)
        if expr.is_Symbol:
            copies[sym] = expr
        else:
            kept.append((sym, expr))
    return StraightLine(tuple(kept), tuple(r.xreplace(copies) for r in code.results))


def per_parameter_programs(code: StraightLine, new_temporaries) -> tuple[StraightLine, ...]:
    loss, grads = code.results[0], code.results[1:]
    return tuple(
        optimized(without_unused(StraightLine(code.assignments, (g, loss) if j == 0 else (g,))), new_temporaries)
        for j, g in enumerate(grads)
    )


def without_unused(code: StraightLine) -> StraightLine:
    """Drop the assignments that no result depends on."""
    needed = set().union(*(r.free_symbols for r in code.results))
    kept = []
    for sym, expr in reversed(code.assignments):
        if sym in needed:
            kept.append((sym, expr))
            needed |= expr.free_symbols
    return StraightLine(tuple(reversed(kept)), code.results)


def numbered(code: StraightLine, temporaries) -> StraightLine:
    """Rename the assigned symbols to t0, t1, ... in the order they are assigned."""
    names = {sym: next(temporaries) for sym, _ in code.assignments}
    return StraightLine(
        tuple((names[sym], expr.xreplace(names)) for sym, expr in code.assignments),
        tuple(r.xreplace(names) for r in code.results),
    )
