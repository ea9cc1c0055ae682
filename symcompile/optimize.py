"""The optimize stage (options.STAGES): `Program` -> `Kernel`.

Common-subexpression elimination over each straight-line program, so that the
loss and all partial derivatives share their work in one fused pass. For the
sequential (Gauss-Seidel) update each partial derivative also gets a program
of its own, since there each one is evaluated at different weights: P programs
for P parameters, so only small models get them, and larger ones run the sweep
through the fused kernel. For a single sample the whole sweep is also one
program, each updated weight a new symbol, so that work a weight does not feed
is shared rather than recomputed.
Operation counts before and after are kept for the build report.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType

import sympy as sp

from symcompile import update_rules
from symcompile.stage_types import Kernel, Program, StraightLine
from symcompile.names import NameTable
from symcompile.options import ONE_SAMPLE_SWEEP_MAX_PARAMS, UNROLLED_SWEEP_MAX_PARAMS


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


def one_sample_sweep(code: StraightLine, params, names: NameTable) -> StraightLine:
    """The sequential sweep over one sample, unrolled into one straight-line program.

    Parameter j's step is its derivative at the weights updated so far:
    `step_w13 = lr*(...)`, then `w13_new = w13 - step_w13`, and later
    derivatives read `w13_new`. Assignments of `code` that depend on an updated
    weight are evaluated again under a new name; the rest are shared. The CSE
    that follows then computes, say, a hidden neuron that w35 does not feed
    once for the whole sweep instead of once per parameter.
    """
    lr = names.module_symbol("lr")
    loss, grads = code.results[0], code.results[1:]
    assignments = list(code.assignments)  # at the starting weights, where the loss is taken
    latest = {}  # symbol -> the symbol holding its value at the weights updated so far
    updates = []  # step, new value; for each parameter in turn
    for j, (param, grad) in enumerate(zip(params, grads)):
        if j > 0:
            changed = {params[j - 1]}
            for sym, expr in code.assignments:
                if expr.free_symbols & changed:
                    latest[sym] = names.local_symbol(f"{names.code_name(sym)}_{j}")
                    changed.add(sym)
                    assignments.append((latest[sym], expr.xreplace(latest)))
        step = names.local_symbol(f"step_{names.code_name(param)}")
        new_weight = names.local_symbol(f"{names.code_name(param)}_new")
        assignments += [(step, lr * grad.xreplace(latest)), (new_weight, param - step)]
        latest[param] = new_weight
        updates += [step, new_weight]
    program = StraightLine(tuple(assignments), (loss, *updates))
    return eliminate_common_subexpressions(program, names.new_temporaries)


def optimize(program: Program) -> Kernel:
    """CSE over each program the module runs; the sweep's programs only for a rule that needs them."""
    model = program.model
    names = NameTable(model.params + model.inputs + model.targets)
    code = numbered(program.loss_and_grad, (names.local_symbol(f"v{i}") for i in itertools.count()))
    new_temporaries = names.new_temporaries
    fused = optimized(code, new_temporaries)
    n_params = len(model.params)
    sequential = update_rules.needs_sequential_sweep(model.training.update)
    # A model whose own data is one sample (the blog's) runs the straight-line sweep below; its per-parameter
    # programs would serve only runs on other data (there the fused kernel per weight does), at 120 module lines.
    unrolled_sweep = sequential and n_params <= UNROLLED_SWEEP_MAX_PARAMS and model.X.shape[0] > 1
    return Kernel(
        program=program,
        forward=optimized(program.forward, new_temporaries),
        loss_and_grad=fused,
        sweep=per_parameter_programs(code, new_temporaries) if unrolled_sweep else (),
        one_sample_sweep=(
            one_sample_sweep(code, model.params, names)
            if sequential and n_params <= ONE_SAMPLE_SWEEP_MAX_PARAMS
            else None
        ),
        hessian=program.hessian and optimized(program.hessian, new_temporaries),
        residuals_and_jacobian=program.residuals_and_jacobian
        and optimized(program.residuals_and_jacobian, new_temporaries),
        ops_before=count_ops(code),
        ops_after=count_ops(fused),
        code_names=MappingProxyType(dict(names.code)),
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
    """Rename the assigned symbols, in the order they are assigned, to the symbols `temporaries` yields."""
    names = {sym: next(temporaries) for sym, _ in code.assignments}
    return StraightLine(
        tuple((names[sym], expr.xreplace(names)) for sym, expr in code.assignments),
        tuple(r.xreplace(names) for r in code.results),
    )
