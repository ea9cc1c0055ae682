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
"""

from sympy import Pow
from sympy.printing.pycode import PythonCodePrinter

from symcompile.errors import SymcompileError
from symcompile.stable import StableFunction


class KernelPrinter(PythonCodePrinter):
    def __init__(self, code_names):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.code_names = code_names

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
    """KernelPrinter with exp, log and the stable functions as the vectorizable `_v...` functions."""

    def __init__(self, code_names):
        super().__init__(code_names)
        self.used = set()

    def _vector_call(self, name, args):
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
