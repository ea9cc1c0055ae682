"""Expression strings from spec files -> SymPy, without running them.

The text is parsed by Python's `ast` (which only builds a tree, it executes
nothing) and the tree is walked with a whitelist: numbers, the names the
caller declares, `+ - * / **`, unary minus and plus, and calls to the
functions in `FUNCTIONS`. Anything else (attribute access, subscripts,
strings, lambdas, comparisons, `__import__`, unknown names) is rejected with
a `SymcompileError` that says what was found. No `eval` and no `sympify` of
user text ever runs.
"""

from __future__ import annotations

import ast
import math
import warnings

import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.mlp import ACTIVATIONS

# name -> (SymPy builder, allowed argument counts: exact, or (minimum, None) for "at least")
FUNCTIONS = {
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "tan": (sp.tan, 1),
    "asin": (sp.asin, 1),
    "acos": (sp.acos, 1),
    "atan": (sp.atan, 1),
    "sinh": (sp.sinh, 1),
    "cosh": (sp.cosh, 1),
    "tanh": (sp.tanh, 1),
    "erf": (sp.erf, 1),
    "abs": (sp.Abs, 1),
    "sigmoid": (ACTIVATIONS["sigmoid"], 1),
    "softplus": (ACTIVATIONS["softplus"], 1),
    "relu": (ACTIVATIONS["relu"], 1),
    "max": (sp.Max, (2, None)),
    "min": (sp.Min, (2, None)),
}
# `e` is Euler's number (so the blog's `e**(-z)` reads as written), `pi` is pi.
CONSTANTS = {"e": sp.E, "pi": sp.pi}
RESERVED = set(FUNCTIONS) | set(CONSTANTS)

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}

# What users may have meant by the constructs we refuse, for the error message.
_REFUSED = {
    ast.Attribute: "attribute access ('.')",
    ast.Subscript: "subscripts ('[...]')",
    ast.Lambda: "lambda",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'if ... else'",
    ast.JoinedStr: "f-strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Await: "await",
    ast.Yield: "yield",
}
# Integers beyond this are not exact in float64 and would not compile as literals.
_LARGEST_INTEGER = 2**53


class ExpressionParser:
    """Parses expression strings over a fixed set of names (symbols and earlier definitions)."""

    def __init__(self, names: dict[str, sp.Expr]):
        self.names = dict(names)
        self.text = ""

    def define(self, name: str, value: sp.Expr) -> None:
        self.names[name] = value

    def parse(self, text) -> sp.Expr:
        if not isinstance(text, str):
            raise SymcompileError(f"expected an expression string, got {type(text).__name__} {text!r}")
        self.text = text.strip()
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like: the error below says enough
                warnings.simplefilter("ignore")
                tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise SymcompileError(f"invalid expression {_short(text)}: {exc.msg} at column {exc.offset}") from None
        except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
            raise SymcompileError(f"cannot parse expression {_short(text)}") from None
        try:
            return self._convert(tree.body)
        except RecursionError:
            raise SymcompileError(f"expression nested too deeply: {_short(text)}") from None

    def _refuse(self, node, problem):
        """The error for `node`, quoting the part of the text it came from."""
        return SymcompileError(f"{problem}: {_short(ast.get_source_segment(self.text, node) or self.text)}")

    def _convert(self, node):
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return self._operator_chain(node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._convert(node.operand))
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            raise self._refuse(node, f"operator {type(node.op).__name__} not allowed (only + - * / ** and unary minus)")
        raise self._refuse(node, f"{_REFUSED.get(type(node), type(node).__name__)} not allowed in expressions")

    def _operator_chain(self, node):
        """`a + b - c * d ...`: Python parses a chain of binary operators one level deeper per term (the left
        operand holds the terms before), so it is folded here in a loop, left to right as Python evaluates it:
        a flat sum of thousands of terms is not nesting, only parentheses and calls recurse."""
        chain = []
        while isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            chain.append(node)
            node = node.left
        value, terms = self._convert(node), []  # terms: a run of + and - links, added at once (pairwise is quadratic)
        for link in reversed(chain):
            right = self._convert(link.right)
            if isinstance(link.op, (ast.Add, ast.Sub)):
                terms.append(right if isinstance(link.op, ast.Add) else -right)
                continue
            if terms:
                value, terms = _finite(sp.Add(value, *terms)), []
            value = self._binary(link, value, right)
        return _finite(sp.Add(value, *terms)) if terms else value

    def _binary(self, node, left, right):
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise self._refuse(node, "division by zero")
        return _finite(_OPERATORS[type(node.op)](left, right))

    def _name(self, name):
        if name in self.names:
            return self.names[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise SymcompileError(f"function {name!r} used without arguments")
        declared = ", ".join(self.names) or "none"
        raise SymcompileError(f"unknown name {name!r} (declared: {declared})")

    def _call(self, node):
        if not isinstance(node.func, ast.Name):
            self._convert(node.func)  # refuses attribute access, lambdas, ... with their own message
            raise self._refuse(node, "only the named functions can be called, as in exp(x)")
        name = node.func.id
        if name not in FUNCTIONS:
            raise SymcompileError(f"unknown function {name!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self._refuse(node, f"{name}() takes plain positional arguments only")
        build, arity = FUNCTIONS[name]
        low, high = (arity, arity) if isinstance(arity, int) else arity
        if len(node.args) < low or (high is not None and len(node.args) > high):
            wanted = f"{low}" if low == high else f"at least {low}"
            raise self._refuse(node, f"{name}() takes {wanted} argument(s), got {len(node.args)}")
        return build(*(self._convert(a) for a in node.args))


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SymcompileError(f"{value!r} is not a number; only numbers and names may appear in expressions")
    if isinstance(value, int):
        if abs(value) > _LARGEST_INTEGER:
            raise SymcompileError(f"integer {value} is too large (at most 2**53)")
        return sp.Integer(value)
    if not math.isfinite(value):
        raise SymcompileError(f"number {value!r} is not finite")
    return sp.Float(value)


def _check_power(base, exponent):
    """Refuse constant powers whose exact value would be astronomically large (SymPy would compute it)."""
    if base.is_Number and exponent.is_Number:
        try:
            result = float(base) ** float(exponent)
        except (OverflowError, ZeroDivisionError):
            result = math.inf
        if isinstance(result, complex) or not math.isfinite(result):
            raise SymcompileError(f"{base}**{exponent} is not a finite real number")


def _finite(value):
    """Arithmetic on constants must stay a finite real number (generated code could not hold it otherwise)."""
    if value.is_Number and not (value.is_real and math.isfinite(float(value))):
        raise SymcompileError(f"constant arithmetic gives {value}, which is not a finite real number")
    return value


def _short(text, limit=60):
    return repr(text if len(text) <= limit else text[:limit] + "...")
