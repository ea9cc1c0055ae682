"""SymPy expressions to Numba-compatible Python source.

A thin subclass of SymPy's own Python printer: symbols print as their safe
code names, floats print with all 17 significant digits (SymPy prints 15,
which would change the numbers), and the stable functions of
`symcompile.stable` print as calls to the generated module's helpers.

Non-smooth functions need nothing extra: with real symbols (the model stage
declares them so) SymPy prints `Max`/`Min` as `max`/`min`, `Abs` as `abs`,
`sign` with `math.copysign`, and `Heaviside` and `Piecewise` as conditional
expressions, all of which Numba compiles. `DiracDelta`, the derivative of a
step in a parameter, has no printer and is refused: such a parameter's
gradient is zero wherever it exists, so descent could never move it.

Within a program, a product's factors and a sum's terms print in the order
their values become ready (`ready_times`), latest last. Python evaluates
`a*b*c*d` as `((a*b)*c)*d`, and Numba may not reorder floating-point
arithmetic, so the order printed is the order run: with the factor computed
last (a sigmoid of the output layer, say) at the end, the rest of the product
is done while it is still being computed, and one multiplication follows it
instead of several. On the seed's training loop that is about a tenth of an
iteration.
"""

import copy

from sympy import Add, Function, Mul, Pow
from sympy.printing.precedence import precedence
from sympy.printing.pycode import PythonCodePrinter

from symcompile.errors import SymcompileError
from symcompile.stable import StableFunction


# Rough latencies in cycles, of an operation after its last operand is ready: enough to tell what is computed
# late (a function call's result) from what is ready early (a weight, an input, a product of them).
_ARITHMETIC_LATENCY = 4
_FUNCTION_LATENCY = 30


def ready_time(expr, ready) -> int:
    """When the value of `expr` is ready, given `ready`: {symbol: when its value is ready} (others: 0)."""
    if not expr.args:
        return ready.get(expr, 0)
    latest = max(ready_time(arg, ready) for arg in expr.args)
    if isinstance(expr, Function):
        return latest + _FUNCTION_LATENCY
    return latest + _ARITHMETIC_LATENCY * max(len(expr.args) - 1, 1)


def ready_times(assignments) -> dict:
    """{temporary: when its value is ready}, for a program's (symbol, expression) pairs in order."""
    ready = {}
    for symbol, expr in assignments:
        ready[symbol] = ready_time(expr, ready)
    return ready


class KernelPrinter(PythonCodePrinter):
    def __init__(self, code_names):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.code_names = code_names
        self.ready = {}  # see for_program

    def for_program(self, assignments):
        """This printer, ordering products and sums by when the values of `assignments` are ready."""
        printer = copy.copy(self)  # shares what it records (VectorPrinter.used)
        printer.ready = ready_times(assignments)
        return printer

    def _ready(self, expr):
        return ready_time(expr, self.ready)

    def _print_Add(self, expr, order=None):
        if not self.ready:
            return super()._print_Add(expr, order=order)
        terms = sorted(self._as_ordered_terms(expr, order=order), key=self._ready)  # stable: ties as before
        return super()._print_Add(Add(*terms, evaluate=False), order="none")

    def _print_Mul(self, expr):
        coefficient, product = expr.as_coeff_Mul()
        factors = self._ready_factors(product)
        if factors is None or not (coefficient.is_Integer or coefficient.is_Float):
            return super()._print_Mul(expr)
        sign = "-" if coefficient < 0 else ""
        number = [] if abs(coefficient) == 1 else [self._print(abs(coefficient))]
        return sign + "*".join(number + [self.parenthesize(f, precedence(expr), strict=False) for f in factors])

    def _ready_factors(self, product):
        """The factors of `product` latest-ready last, or None where SymPy's own printing is kept: no
        ready times, fewer than three factors (their order changes nothing), or a division among them."""
        factors = Mul.make_args(product)
        if not self.ready or len(factors) < 3 or any(f.is_Pow and f.exp.is_negative for f in factors):
            return None
        return sorted(product.as_ordered_factors(), key=self._ready)

    def _print_not_supported(self, expr):
        # Reached only for parts of the user's formula that have no Numba form (a Bessel function, say).
        raise SymcompileError(f"cannot generate code for {expr}: {type(expr).__name__} has no Numba-compatible form")

    _print_factorial = _print_not_supported  # math.factorial exists in Python, not in Numba

    def _print_Symbol(self, symbol):
        return self.code_names.get(symbol, symbol.name)

    _print_Dummy = _print_Symbol  # the compiler's own locals are Dummies with code names

    def _print_Pow(self, expr, rational=False):
        # Numba raises ZeroDivisionError for 0.0**-2 whatever the error model; 1/0.0**2 follows NumPy's
        # (inf), with the same bits elsewhere (Numba computes x**-n as 1/x**n).
        if expr.exp.is_Integer and expr.exp < -1:
            return f"(1/{self._print(Pow(expr.base, -expr.exp))})"
        return super()._print_Pow(expr, rational=rational)

    def _print_Float(self, number):
        return repr(float(number))

    def _print_Function(self, call):
        if isinstance(call, StableFunction):
            return self._print_helper_call(call)
        return super()._print_Function(call)

    def _print_helper_call(self, call):
        """A stable function as a call of the generated module's helper (`_sigmoid(z)`, ...)."""
        if call.helper_takes_tuple:
            # One tuple, of floats: Numba iterates only over tuples of one type.
            args = [repr(float(arg)) if arg.is_Number else self._print(arg) for arg in call.args]
            return f"{call.helper}(({', '.join(args)}))"
        return f"{call.helper}({', '.join(self._print(arg) for arg in call.args)})"


class VectorPrinter(KernelPrinter):
    """KernelPrinter with exp, log and the stable functions as the vectorizable `_v...` functions; `single`: exp,
    tanh and sigmoid to float32's accuracy (`_vexp_single`, ...), for values a float32 module stores in float32."""

    SINGLE = ("_vexp", "_vtanh", "_vsigmoid")  # the functions symcompile.vecmath has to float32's accuracy too

    def __init__(self, code_names, single=False):
        super().__init__(code_names)
        self.used = set()
        self.single = single

    def _vector_call(self, name, args):
        if self.single and name in self.SINGLE:
            name += "_single"
        self.used.add(name)
        return f"{name}({', '.join(self._print(arg) for arg in args)})"

    def _print_exp(self, expr):
        return self._vector_call("_vexp", expr.args)

    def _print_log(self, expr):
        return self._vector_call("_vlog", expr.args)

    def _print_tanh(self, expr):
        return self._vector_call("_vtanh", expr.args)

    def _print_sigmoid(self, expr):
        return self._vector_call("_vsigmoid", expr.args)

    def _print_softplus(self, expr):
        return self._vector_call("_vsoftplus", expr.args)
