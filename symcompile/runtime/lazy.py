"""Compiled functions of one exact signature, compiled (or loaded from Numba's cache) at their first call.

A runtime function that takes kernels as `numba.types.FunctionType` arguments needs an explicit signature (typed
from the dispatcher instead, it would be compiled again for every kernel, in every process). Numba compiles an
explicit signature when the decorator runs, at import: every loop and solver of the runtime, whichever the
process uses. `njit_on_first_call` defers that to the first call, so a process compiles only what it runs.
"""

import functools

import numba


class _OnFirstCall:
    def __init__(self, function, signature, options):
        self.py_func, self.signature, self.options = function, signature, options
        self._dispatcher = None
        functools.update_wrapper(self, function)

    @property
    def dispatcher(self):
        """The Numba dispatcher, compiled for the signature (or loaded from the cache), compiling nothing else."""
        if self._dispatcher is None:
            dispatcher = numba.njit(cache=True, **self.options)(self.py_func)
            dispatcher.compile(self.signature)
            dispatcher.disable_compile()
            self._dispatcher = dispatcher
        return self._dispatcher

    def __call__(self, *arguments):
        return self.dispatcher(*arguments)


def njit_on_first_call(signature, **options):
    """Like `numba.njit(signature, cache=True, **options)`, compiled at the first call instead of at import."""
    return lambda function: _OnFirstCall(function, signature, options)
