"""symcompile: compile SymPy models into standalone Numba modules, and train them.

Stages (one module each): model -> rewrite -> differentiate -> optimize -> emit -> writer,
handing on Model -> Program -> Kernel -> ModuleSource -> BuildResult; `pipeline` chains them,
`options` holds every option and threshold, `update_rules` the training loop's rules, and
`cli` is `python -m symcompile`.
"""

__version__ = "0.1.0"

from symcompile.errors import SymcompileError
from symcompile.model import Model, TrainingDefaults, make_model
from symcompile.options import BuildOptions, TrainingSettings
from symcompile.pipeline import build, compile_model
from symcompile.writer import load_module

__all__ = [
    "BuildOptions", "Model", "SymcompileError", "TrainingDefaults", "TrainingSettings", "build", "compile_model",
    "load_module", "make_model",
]  # fmt: skip
