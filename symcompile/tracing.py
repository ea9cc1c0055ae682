"""Python model functions -> SymPy, by calling them once on symbols.

curve_fit users write `def f(x, a, b): return a * np.exp(-b * x)`. Calling f with `Traced` values in place of x and
the parameters records the formula: Python's operators and NumPy's ufuncs (np.exp, np.sin, np.power, ...,
scipy.special.erf: NumPy hands any ufunc to `__array_ufunc__`) build SymPy expressions. What needs a value
rather than a formula cannot be traced and is refused in one line naming the call and the line of f: an `if` on
a traced value, float()/math.* on it, np.where/np.sum and other array functions, indexing a scalar.
Only the user's function runs; no text is evaluated.
"""

from __future__ import annotations

import inspect
import math
import sys

import numpy as np
import sympy as sp

from symcompile.errors import SymcompileError
from symcompile.mlp import ACTIVATIONS

# NumPy (and scipy.special) ufunc name -> SymPy builder.
UFUNCS = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
    "true_divide": lambda a, b: a / b, "divide": lambda a, b: a / b, "power": lambda a, b: a**b,
    "float_power": lambda a, b: a**b, "negative": lambda a: -a, "positive": lambda a: a,
    "reciprocal": lambda a: 1 / a, "square": lambda a: a**2, "sqrt": sp.sqrt, "cbrt": sp.cbrt,
    "exp": sp.exp, "exp2": lambda a: 2**a, "expm1": lambda a: sp.exp(a) - 1, "log": sp.log,
    "log2": lambda a: sp.log(a, 2), "log10": lambda a: sp.log(a, 10), "log1p": lambda a: sp.log(1 + a),
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
    "arctan2": sp.atan2, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "arcsinh": sp.asinh,
    "arccosh": sp.acosh, "arctanh": sp.atanh, "absolute": sp.Abs, "fabs": sp.Abs,
    "hypot": lambda a, b: sp.sqrt(a**2 + b**2),
    "maximum": sp.Max, "minimum": sp.Min, "fmax": sp.Max, "fmin": sp.Min, "deg2rad": lambda a: a * sp.pi / 180,
    "rad2deg": lambda a: a * 180 / sp.pi, "radians": lambda a: a * sp.pi / 180, "degrees": lambda a: a * 180 / sp.pi,
    "erf": sp.erf, "erfc": sp.erfc, "expit": ACTIVATIONS["sigmoid"],
}  # fmt: skip

# Object arrays (np.asarray(x) on a traced x) apply ufuncs by calling the element's method of the ufunc's name.
_METHODS = ("exp", "log", "sqrt", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
            "arcsinh", "arccosh", "arctanh", "log10", "log2", "log1p", "expm1", "exp2", "cbrt", "square", "deg2rad",
            "rad2deg")  # fmt: skip


class TracingError(SymcompileError):
    """A model function that cannot be traced; the message names the construct and the line of the function."""


class Traced:
    """A value of the traced function: its SymPy expression, carried through Python's and NumPy's arithmetic."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = expr

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc.__name__ not in UFUNCS:
            call = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise _refused(f"{call}() is not supported" + (" with keyword arguments" if kwargs else ""))
        return _apply(UFUNCS[ufunc.__name__], *inputs)

    def __array_function__(self, func, types, args, kwargs):
        raise _refused(f"np.{func.__name__}() needs values, not a formula (write the formula with arithmetic "
                       "and ufuncs such as np.exp; no np.where, sums or array building)")  # fmt: skip

    def __bool__(self):
        raise _refused("a branch ('if', 'and', 'or', a comparison's truth) on a traced value")

    def __float__(self):
        raise _refused("float() or a math.* function of a traced value (use np.exp, np.sin, ... instead of math.*)")

    __int__ = __index__ = __complex__ = __float__

    def __getitem__(self, index):
        raise _refused("indexing a scalar traced value (x is one value per data point here)")

    def __iter__(self):
        raise _refused("a loop over a traced value (the function must be one formula for every data point)")

    def __len__(self):
        raise _refused("len() of a traced value")

    def _compare(self, other):
        raise _refused("a comparison of traced values (the formula cannot branch on the data)")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __repr__(self):
        return f"Traced({self.expr})"


def _binary(builder, swapped=False):
    def operator(self, other):
        return _apply(builder, other, self) if swapped else _apply(builder, self, other)

    return operator


for _operator, _builder in (("add", UFUNCS["add"]), ("sub", UFUNCS["subtract"]), ("mul", UFUNCS["multiply"]),
                        ("truediv", UFUNCS["true_divide"]), ("pow", UFUNCS["power"])):  # fmt: skip
    setattr(Traced, f"__{_operator}__", _binary(_builder))
    setattr(Traced, f"__r{_operator}__", _binary(_builder, swapped=True))
Traced.__neg__ = lambda self: Traced(-self.expr)
Traced.__pos__ = lambda self: self
Traced.__abs__ = lambda self: Traced(sp.Abs(self.expr))
for _method in _METHODS:
    setattr(Traced, _method, (lambda builder: lambda self: _apply(builder, self))(UFUNCS[_method]))


class TracedVector:
    """xdata of shape (k, N) as the function sees it: x[0], x[1], ... or `x1, x2 = x`."""

    def __init__(self, items):
        self.items = tuple(items)
        self.shape = (len(self.items),)

    def __getitem__(self, index):
        if isinstance(index, tuple) or not isinstance(index, (int, np.integer)):
            raise _refused(f"x[{index!r}]: only x[0] ... x[{len(self.items) - 1}] (one row per variable)")
        if not -len(self.items) <= index < len(self.items):
            raise _refused(f"x[{index}] with {len(self.items)} independent variables (xdata's first axis)")
        return self.items[index]

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def __array_function__(self, func, types, args, kwargs):
        raise _refused(f"np.{func.__name__}() of x (use x[0], x[1], ...)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise _refused(f"np.{ufunc.__name__}() of the whole x (use x[0], x[1], ...)")


def _apply(builder, *operands):
    values = []
    for operand in operands:
        if isinstance(operand, Traced):
            values.append(operand.expr)
        elif isinstance(operand, (int, float, np.integer, np.floating)) and not isinstance(operand, (bool, np.bool_)):
            values.append(_constant(operand))
        elif isinstance(operand, np.ndarray) and operand.dtype == object and operand.shape == ():
            values.append(_as_expr(operand.item()))
        else:
            what = type(operand).__name__
            raise _refused(f"an operand of type {what} (only numbers and the traced x and parameters)")
    return Traced(builder(*values))


def _constant(number):
    value = float(number)
    if not math.isfinite(value):
        raise _refused(f"the constant {value} (not finite)")
    return sp.Integer(int(value)) if value.is_integer() and abs(value) <= 2**53 else sp.Float(value)


def _as_expr(value):
    if isinstance(value, Traced):
        return value.expr
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return _constant(value)
    raise _refused(f"a value of type {type(value).__name__}")


# The function being traced, so that errors can name its line.
_TRACING = []


def _refused(what) -> TracingError:
    function = _TRACING[-1] if _TRACING else None
    where = ""
    if function is not None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not getattr(function, "__code__", None):
            frame = frame.f_back
        if frame is not None:
            where = f" at line {frame.f_lineno} of {_name(function)}"
            try:
                line = inspect.getsourcelines(function)
                where += f" ({line[0][frame.f_lineno - line[1]].strip()})"
            except (OSError, TypeError, IndexError):
                pass
    return TracingError(f"cannot trace {_name(function)}{where}: {what}")


def _name(function):
    return getattr(function, "__name__", "the model function")


def signature_parameters(function) -> tuple[list[str], bool]:
    """(the names of f(x, a, b, ...)'s parameters after x, whether f also takes *args), as curve_fit counts them."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise SymcompileError(f"cannot read the signature of {function!r}: pass a formula string instead") from None
    kinds = [p.kind for p in signature.parameters.values()]
    names = [p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = inspect.Parameter.VAR_POSITIONAL in kinds
    if not names or (len(names) < 2 and not variadic):
        raise ValueError("Unable to determine number of fit parameters.")
    return names[1:], variadic


def trace(function, independent: list[sp.Symbol], params: list[sp.Symbol]) -> sp.Expr:
    """f(x, *params)'s formula: x a traced value for one independent variable, a TracedVector for several."""
    x = Traced(independent[0]) if len(independent) == 1 else TracedVector(Traced(s) for s in independent)
    _TRACING.append(function)
    try:
        result = function(x, *(Traced(p) for p in params))
    except TracingError:
        raise
    except Exception as exc:  # noqa: BLE001 -- whatever f raised on symbols, said in one line
        raise _refused_from(function, exc) from None
    finally:
        _TRACING.pop()
    if isinstance(result, np.ndarray) and result.dtype == object and result.shape == ():
        result = result.item()
    if isinstance(result, Traced):
        return result.expr
    if isinstance(result, (int, float, np.integer, np.floating)):
        return _constant(result)
    raise TracingError(f"cannot trace {_name(function)}: it returned {type(result).__name__}, not a formula")


def _refused_from(function, exc) -> TracingError:
    """A one-line TracingError for an exception f raised while traced, naming f's line where it was raised."""
    line = ""
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code is getattr(function, "__code__", None):
            line = f" at line {traceback.tb_lineno} of {_name(function)}"
        traceback = traceback.tb_next
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return TracingError(f"cannot trace {_name(function)}{line}: {type(exc).__name__}: {message}")
