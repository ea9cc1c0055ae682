"""symcompile: compile SymPy models into standalone Numba modules, and train them.

Stages (one module each): model -> rewrite -> differentiate -> optimize -> emit -> writer,
handing on Model -> Program -> Kernel -> ModuleSource -> BuildResult; `pipeline` chains them,
`options` holds every option and threshold, `update_rules` the training loop's rules, and
`cli` is `python -m symcompile`.
"""

__version__ = "0.1.0"

# Imported on first use (PEP 562), so that `import symcompile` is light and `python -m symcompile` takes over
# Ctrl-C (symcompile/__main__.py) before SymPy's half second of imports, not after.
_EXPORTS = {
    "SymcompileError": "symcompile.errors", "Model": "symcompile.model", "TrainingDefaults": "symcompile.model",
    "make_model": "symcompile.model", "BuildOptions": "symcompile.options", "TrainingSettings": "symcompile.options",
    "build": "symcompile.pipeline", "compile_model": "symcompile.pipeline", "load_module": "symcompile.writer",
    "curve_fit": "symcompile.curve_fitting", "OptimizeWarning": "symcompile.curve_fitting",
    "curve_fit_report": "symcompile.curve_fitting", "FitReport": "symcompile.fit_report",
    "MLPClassifier": "symcompile.sklearn", "MLPRegressor": "symcompile.sklearn", "ExpressionRegressor": "symcompile.sklearn",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'symcompile' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
