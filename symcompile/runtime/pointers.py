"""A model's kernel as the value a compiled runtime function takes for a `numba.types.FunctionType` argument.

Numba also takes the kernel's dispatcher itself there, but converts it again on every call: 35-55 us on the
shared 2-core machine, against 14 us for a whole misra1a fit. `function_value` converts once per kernel: Numba
types the value from its `_numba_type_` without calling back into Python, and reads the compiled code's address
from it.
"""

import functools

from numba.core import types


class _KernelValue(types.CompileResultWAP):
    """A compiled kernel (a Numba compile result) as a first-class function of the given type."""

    def __init__(self, compile_result, function_type):
        super().__init__(compile_result)
        self._numba_type_ = function_type


@functools.cache
def function_value(kernel, function_type):
    """`kernel` (a Numba dispatcher) compiled for `function_type`'s signature, or loaded from its cache, as a
    value for a `function_type` argument; made once per kernel and type."""
    signature = function_type.signature
    # Compiled for the argument types alone, as a call from Python compiles it, so that both find one entry in
    # Numba's cache (its key is the signature as given: with a return type it would be a second entry).
    if tuple(signature.args) not in kernel.overloads:  # (a kernel with an explicit signature has it already)
        kernel.compile(tuple(signature.args))
    return _KernelValue(kernel.get_compile_result(signature), function_type)
