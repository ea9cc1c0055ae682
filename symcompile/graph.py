"""Expressions as graphs: SymPy shares equal subexpressions, so a tree can be far larger than its graph.

Walking a large model's expression as a tree (as `count_ops`, `free_symbols`
or printing do) visits a shared node once per path to it; these helpers visit
each distinct node once.
"""

from __future__ import annotations


def graph_nodes(expr, known=()):
    """The distinct nodes of `expr` that are not in `known`, each after its arguments.

    Iterative (graphs can be deeper than Python's recursion limit); `known`
    may be a dict the caller fills as the walk goes.
    """
    emitted = set()
    stack = [expr]
    while stack:
        node = stack[-1]
        if node in emitted or node in known:
            stack.pop()
            continue
        pending = [arg for arg in node.args if arg not in emitted and arg not in known]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        emitted.add(node)
        yield node


def tree_size(expr, sizes=None) -> int:
    """Nodes of `expr` written out as a tree, counted over its graph.

    `sizes` (a dict) carries counts between calls, so sizing many expressions
    that share parts costs each distinct node once.
    """
    sizes = {} if sizes is None else sizes
    for node in graph_nodes(expr, sizes):
        sizes[node] = 1 + sum(sizes[arg] for arg in node.args)
    return sizes[expr]


def replace_bottom_up(expr, replacement):
    """`expr` with each node, once its arguments are replaced, replaced by `replacement(node)` unless that is None.

    The same walk as SymPy's `expr.replace(query, value)` (bottom-up, not
    descending into a replacement), over the graph: a shared node is rebuilt
    once and stays shared, where `replace` rebuilds it once per path to it.
    """
    done = {}
    for node in graph_nodes(expr):
        args = tuple(done[arg] for arg in node.args)
        rebuilt = node.func(*args) if args != node.args else node
        replaced = replacement(rebuilt)
        done[node] = rebuilt if replaced is None else replaced
    return done[expr]
