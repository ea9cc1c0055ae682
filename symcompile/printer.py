"""SymPy expressions to Numba-compatible Python source.

A thin subclass of SymPy's own Python printer: symbols print as their safe
code names, and floats print with all 17 significant digits (SymPy prints 15,
which would change the numbers).

Non-smooth functions need nothing extra: with real symbols (the model stage
declares them so) SymPy prints `Max`/`Min` as `max`/`min`, `Abs` as `abs`,
`sign` with `math.copysign`, and `Heaviside` and `Piecewise` as conditional
expressions, all of which Numba compiles. `DiracDelta`, the derivative of a
step, prints as 0: its value everywhere but at the step itself, the same
convention gradient-based training uses for the kink of relu or abs.
"""

from sympy.printing.pycode import PythonCodePrinter

from symcompile.errors import SymcompileError


class KernelPrinter(PythonCodePrinter):
    def __init__(self, code_names):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.code_names = code_names

    def _print_Symbol(self, symbol):
        return self.code_names.get(symbol, symbol.name)

    def _print_Float(self, number):
        return repr(float(number))

    def _print_DiracDelta(self, expr):
        return "0.0"

    def _print_not_supported(self, expr):
        raise SymcompileError(f"{type(expr).__name__} (in {expr}) cannot be compiled to Python/Numba code")
