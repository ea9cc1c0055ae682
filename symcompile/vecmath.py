"""The vectorizable elementary functions as generated kernels name them, and the line that imports them.

The functions are symcompile.runtime.vecmath's (exp, log, log1p, sigmoid, softplus, tanh, logaddexp,
logsumexp), written once and compiled once per machine. The printers write calls to them under names of
their own, `_vexp`, `_vtanh`, ... (symcompile/printer.py), and a module whose kernels call some imports
those from the runtime (`imported_names`): nothing of them is pasted into the module, so a new model compiles
only its own kernels, into which LLVM inlines and vectorizes them.
"""

from __future__ import annotations

from symcompile.runtime import vecmath as _runtime

# The name in generated code: the runtime's function.
FUNCTIONS = {
    "_vexp": "exp",
    "_vlog": "log",
    "_vlog1p": "log1p",
    "_vsigmoid": "sigmoid",
    "_vsoftplus": "softplus",
    "_vtanh": "tanh",
    "_vlogaddexp": "logaddexp",
    "_vlogsumexp_finish": "logsumexp_finish",
    "_vlogsumexp": "logsumexp",
    # To float32's accuracy, for a float32 module's hidden activations (VectorPrinter(single=True) names them)
    "_vexp_single": "exp_single",
    "_vtanh_single": "tanh_single",
    "_vsigmoid_single": "sigmoid_single",
}

# The same functions under those names here (for the benchmarks and tests that call them by them).
_vexp, _vlog, _vlog1p = _runtime.exp, _runtime.log, _runtime.log1p
_vsigmoid, _vsoftplus, _vtanh = _runtime.sigmoid, _runtime.softplus, _runtime.tanh
_vlogaddexp, _vlogsumexp_finish, _vlogsumexp = _runtime.logaddexp, _runtime.logsumexp_finish, _runtime.logsumexp
_vexp_single, _vtanh_single, _vsigmoid_single = _runtime.exp_single, _runtime.tanh_single, _runtime.sigmoid_single


def imported_names(names) -> str:
    """What a module imports from the runtime's vecmath for the functions `names` (`_vexp`, ...), under those
    names: "exp as _vexp, tanh as _vtanh" ("" for none). The templates write the import line, from the
    runtime package or a standalone build's copy of it."""
    unknown = sorted(set(names) - set(FUNCTIONS))
    if unknown:
        raise ValueError(f"vecmath has no function {', '.join(unknown)}; it has {', '.join(FUNCTIONS)}")
    return ", ".join(f"{FUNCTIONS[name]} as {name}" for name in sorted(set(names)))
