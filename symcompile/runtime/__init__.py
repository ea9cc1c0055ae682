"""symcompile's runtime: everything a generated module runs that does not depend on its model.

A generated module holds its model's compiled kernels (the fused forward, loss-and-gradient, residual and
Jacobian functions) and thin public functions; the training loops, the update rules, the least-squares
solver, the argument checks, chunked runs, Ctrl-C and progress live here, written once as real Python and
compiled once per machine (Numba's on-disk cache), whichever model calls them. The compiled loops take
the model's kernels as first-class functions (`numba.types.FunctionType`, signatures in
`symcompile.runtime.signatures`): the kernel is a pointer at run time, so the cached loop does not depend
on the model (BENCHMARKS.md, "Issue 20 groundwork", design D1).

This package imports NumPy and Numba only, and its modules import each other relatively: `build --standalone`
copies it beside a module, under another name, for machines without symcompile (symcompile/standalone.py).
"""
