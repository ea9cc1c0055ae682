"""symcompile: compile SymPy models into standalone Numba modules, and train them.

Stages (one module each): model -> rewrite -> differentiate -> optimize -> emit -> writer;
`pipeline` chains them, `cli` is `python -m symcompile`.
"""

__version__ = "0.1.0"

from symcompile.errors import SymcompileError
from symcompile.model import Model, TrainingDefaults, make_model
from symcompile.pipeline import build, compile_model
from symcompile.writer import load_module

__all__ = ["Model", "SymcompileError", "TrainingDefaults", "build", "compile_model", "load_module", "make_model"]
