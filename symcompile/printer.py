"""SymPy expressions to Numba-compatible Python source.

A thin subclass of SymPy's own Python printer: symbols print as their safe
code names, and floats print with all 17 significant digits (SymPy prints 15,
which would change the numbers).
"""

from sympy.printing.pycode import PythonCodePrinter


class KernelPrinter(PythonCodePrinter):
    def __init__(self, code_names):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.code_names = code_names

    def _print_Symbol(self, symbol):
        return self.code_names.get(symbol, symbol.name)

    _print_Dummy = _print_Symbol  # the compiler's own locals are Dummies with code names

    def _print_Float(self, number):
        return repr(float(number))
