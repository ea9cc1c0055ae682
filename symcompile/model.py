"""Stage 1, model: what the user wrote, checked and frozen.

A `Model` holds everything the later stages need: the ordered parameters, the
per-sample inputs and targets, the training function's output expression(s),
the per-sample loss, and the defaults the generated module ships with (initial
weights, data, training settings). `make_model` is the only constructor and
the place where user input is validated, so every later stage may trust it.
"""

from __future__ import annotations

import functools
import hashlib
import keyword
import os
import site
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from symcompile.errors import SymcompileError

# The loop keeps one loss per iteration: 10^8 of them take 800 MB.
MAX_ITERATIONS = 2**62  # any run's worth (an int64 in compiled code); the loss history grows as a run goes
UPDATE_RULES = ("sequential", "simultaneous")


@dataclass(frozen=True)
class TrainingDefaults:
    lr: float = 0.1
    max_iter: int = 1000
    tol: float = 0.0
    update: str = "simultaneous"


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    params: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]
    targets: tuple[sp.Symbol, ...]
    outputs: tuple[sp.Expr, ...]
    loss: sp.Expr
    init: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    description: str = ""


def model_digest(model: Model) -> str:
    """SHA-256 of everything the model holds, so a module can record what it was built from.

    Symbols and numbers go in as `srepr` (names, assumptions, exact values),
    the arrays with their shapes, so two models share a digest only when they
    are equal.
    """
    from symcompile import __version__

    parts = [
        __version__, model.name, model.description, repr(vars(model.training)),
        *_expression_digests(model.params + model.inputs + model.targets + model.outputs + (model.loss,)),
        *(f"{a.shape}:{a.tobytes().hex()}" for a in (model.init, model.X, model.Y)),
    ]  # fmt: skip
    return _sha256("\n".join(parts))


def _expression_digests(exprs):
    """A digest per expression, computed once per distinct subexpression.

    Networks repeat whole layers inside every neuron after them, so the tree
    (what `srepr` would spell out) can be thousands of times larger than the
    distinct subexpressions this visits.
    """
    memo = {}

    def digest(expr):
        if expr not in memo:
            text = f"{type(expr).__name__}({','.join(map(digest, expr.args))})" if expr.args else sp.srepr(expr)
            memo[expr] = _sha256(text)
        return memo[expr]

    return [digest(e) for e in exprs]


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def make_model(
    name,
    output,
    loss,
    params,
    inputs,
    targets,
    *,
    init=None,
    X=None,
    Y=None,
    training=None,
    description="",
) -> Model:
    """Validate user input and return a `Model`; raise SymcompileError on bad input."""
    _check_module_name(name)
    params = _symbol_tuple(params, "params")
    inputs = _symbol_tuple(inputs, "inputs")
    targets = _symbol_tuple(targets, "targets")
    _check_distinct(params + inputs + targets)
    if not params:
        raise SymcompileError("model has no parameters to train")
    check_model_size(len(params))
    outputs = tuple(_as_expr(o, "output") for o in (output if isinstance(output, (list, tuple)) else [output]))
    if not outputs:
        raise SymcompileError("model has no output expression")
    loss = _as_expr(loss, "loss")
    for expr in outputs:
        _check_free_symbols(expr, set(params + inputs), "output")
    _check_free_symbols(loss, set(params + inputs + targets), "loss")
    params, inputs, targets, outputs, loss = _as_real(params, inputs, targets, outputs, loss)
    init = _init_array(init, len(params))
    X, Y = _data_arrays(X, Y, len(inputs), len(targets))
    training = check_training(training or TrainingDefaults())
    return Model(name, params, inputs, targets, outputs, loss, init, X, Y, training, description)


# A generated module named like these would import itself for `math` or `numpy`, or shadow them.
SHADOWED_MODULES = sys.stdlib_module_names | {"numpy", "numba", "sympy", "symcompile"}


def is_module_name(name) -> bool:
    """Whether `name` can name a generated module: an ASCII Python identifier, not a keyword."""
    return isinstance(name, str) and name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


MAX_NAME_LENGTH = 100  # a module's name is also part of file names (`.<name>.<pid>.<random>.tmp`, Numba's cache)


@functools.cache
def installed_top_level_names() -> frozenset:
    """The top-level import names installed in site-packages (numba's llvmlite, sympy's mpmath, ...).

    Read from the folders' listings: asking importlib.metadata reads every distribution's file list (~1 s).
    """
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    entries = [entry for folder in folders if os.path.isdir(folder) for entry in os.scandir(folder)]
    return frozenset(
        entry.name.split(".")[0]
        for entry in entries
        if (entry.is_dir() and "." not in entry.name) or entry.name.endswith((".py", ".so", ".pyd"))
    )


def _check_module_name(name):
    if not is_module_name(name):
        raise SymcompileError(f"model name {name!r} is not a valid Python module name (letters, digits, underscores)")
    if len(name) > MAX_NAME_LENGTH:
        raise SymcompileError(f"model name {name[:20]!r}... has {len(name)} characters; at most {MAX_NAME_LENGTH}")
    if name.startswith("__") and name.endswith("__"):
        raise SymcompileError(f"model name {name!r} is reserved by Python (a __dunder__ name); choose another")
    if name in SHADOWED_MODULES or name in sys.builtin_module_names or name in installed_top_level_names():
        raise SymcompileError(f"model name {name!r} is the name of a Python module it would shadow; choose another")


def _symbol_tuple(symbols, what):
    symbols = tuple(symbols)
    for s in symbols:
        if not isinstance(s, sp.Symbol):
            raise SymcompileError(f"{what}: {s!r} is not a SymPy Symbol")
    return symbols


def _check_distinct(symbols):
    seen = set()
    for s in symbols:
        if s.name in seen:
            raise SymcompileError(f"symbol {s.name!r} is declared more than once among params, inputs and targets")
        seen.add(s.name)


def _as_expr(value, what):
    try:
        expr = sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError) as exc:
        raise SymcompileError(f"{what} is not a SymPy expression: {value!r}") from exc
    if not isinstance(expr, sp.Expr):
        raise SymcompileError(f"{what} is not a scalar SymPy expression: {value!r}")
    _check_computable(expr, what)
    return expr


# Objects a formula may hold that have no numeric code: SymPy leaves them unevaluated.
UNEVALUATED = (sp.Derivative, sp.Integral, sp.Sum, sp.Product, sp.Limit)


def _check_computable(expr, what):
    """Reject what cannot become real floating-point code, naming it, before any stage sees it."""
    undefined = sorted({str(f.func) for f in expr.atoms(AppliedUndef)})
    if undefined:
        raise SymcompileError(f"{what} uses undefined function(s) {', '.join(undefined)}: give each a formula")
    for kind in UNEVALUATED:
        found = next(iter(expr.atoms(kind)), None)
        if found is not None:
            raise SymcompileError(f"{what} contains an unevaluated {kind.__name__}, {found}: evaluate it (.doit()) first")
    if expr.has(sp.nan, sp.zoo):
        raise SymcompileError(f"{what} contains an undefined value (nan or zoo, as from a division by zero)")
    if expr.has(sp.I):
        raise SymcompileError(f"{what} is complex (contains I); symcompile compiles real-valued models")
    _check_constants(expr, what)


# The scalar pipeline's size limit (README, Limits): build time grows faster than the parameter count
# (2-70-70-1, 5,251 parameters: about 4 minutes to build and compile on our 2-core machines), so a model
# beyond this is refused at once rather than left to run for many minutes.
MAX_PARAMS = 5000


def check_model_size(n_params):
    if n_params > MAX_PARAMS:
        raise SymcompileError(
            f"the model has {n_params:,} parameters; symcompile builds models of at most {MAX_PARAMS:,} "
            "(beyond that a build takes many minutes; see Limits in README.md)"
        )


# Integers beyond this print as literals that compiled code cannot hold exactly (or at all, past int64).
LARGEST_INTEGER = 2**53


def _check_constants(expr, what):
    """Evaluate the constants of `expr` and refuse one that compiled code cannot hold: an integer beyond
    2**53, or a function or power of numbers that is not a finite real float (exp(1000) overflows, acos(2)
    is complex). SymPy evaluates arithmetic on numbers itself, so those are the constants left."""
    for part in expr.atoms(sp.Rational, sp.Function, sp.Pow):  # one walk over the expression
        if isinstance(part, sp.Rational):
            if max(abs(part.p), part.q) > LARGEST_INTEGER:
                raise SymcompileError(f"{what} has the number {_short_number(part)}, too large for compiled code (at most 2**53)")
            continue
        if not part.is_number:  # is_number stops at the first symbol it meets: cheap on large parts
            continue
        try:
            value = complex(part.evalf(20))
        except (TypeError, ValueError):  # not a number SymPy can evaluate to a complex
            continue
        except OverflowError:
            value = complex(math.inf)
        if value.imag != 0 or not math.isfinite(value.real):
            shown = "not a real number" if value.imag != 0 else "not a finite float"
            raise SymcompileError(f"{what} has the constant {_short_number(part)}, which is {shown}")


def _short_number(number, limit=40):
    text = sp.sstr(number)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_free_symbols(expr, allowed, what):
    unknown = sorted(s.name for s in expr.free_symbols if s not in allowed)
    if unknown:
        raise SymcompileError(f"{what} uses undeclared name(s) {', '.join(unknown)}")


def _as_real(params, inputs, targets, outputs, loss):
    """Declare every symbol real, as the numbers it stands for are.

    Without it SymPy differentiates abs(x) and friends as complex functions
    (re(x), im(x), ...), which have no meaning, and no printer, here.
    """
    real = {s: s if s.is_real else sp.Symbol(s.name, real=True) for s in params + inputs + targets}
    if all(s is r for s, r in real.items()):
        return params, inputs, targets, outputs, loss  # nothing to replace (xreplace walks the whole tree)
    return (
        tuple(real[s] for s in params),
        tuple(real[s] for s in inputs),
        tuple(real[s] for s in targets),
        tuple(o.xreplace(real) for o in outputs),
        loss.xreplace(real),
    )


def _float_array(value, what):
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SymcompileError(f"{what} must be numbers: {exc}") from exc
    if not np.all(np.isfinite(array)):
        raise SymcompileError(f"{what} contains NaN or infinity")
    return array


def _init_array(init, n_params):
    if init is None:
        return np.zeros(n_params)
    init = _float_array(init, "init")
    if init.shape != (n_params,):
        raise SymcompileError(f"init has shape {init.shape}, expected ({n_params},): one value per parameter")
    return init


def _data_arrays(X, Y, n_inputs, n_targets):
    """Default data; X is (N, n_inputs), Y is (N, n_targets); no data means no defaults."""
    if X is None and Y is None:
        return np.zeros((0, n_inputs)), np.zeros((0, n_targets))
    if X is None or Y is None:
        raise SymcompileError("give both X and Y, or neither")
    X = _float_array(X, "X")
    Y = _float_array(Y, "Y")
    if X.ndim == 1 and n_inputs == 1:
        X = X[:, None]
    if Y.ndim == 1 and n_targets == 1:
        Y = Y[:, None]
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise SymcompileError(f"X has shape {X.shape}, expected (N, {n_inputs}): one column per input")
    if Y.ndim != 2 or Y.shape[1] != n_targets:
        raise SymcompileError(f"Y has shape {Y.shape}, expected (N, {n_targets}): one column per target")
    if X.shape[0] != Y.shape[0]:
        raise SymcompileError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}")
    return X, Y


def check_training(training: TrainingDefaults) -> TrainingDefaults:
    """Validated training settings (the model's defaults, or a command line's overrides)."""
    if training.update not in UPDATE_RULES:
        raise SymcompileError(f"update must be one of {', '.join(UPDATE_RULES)}, not {training.update!r}")
    if not (isinstance(training.max_iter, int) and 1 <= training.max_iter <= MAX_ITERATIONS):
        raise SymcompileError(f"max_iter must be an integer from 1 to 2**62, not {training.max_iter!r}")
    for key, least in (("lr", "positive"), ("tol", "non-negative")):
        value = getattr(training, key)
        if not (isinstance(value, (int, float)) and np.isfinite(value) and (value > 0 if key == "lr" else value >= 0)):
            raise SymcompileError(f"{key} must be a {least} number, not {value!r}")
    return TrainingDefaults(float(training.lr), training.max_iter, float(training.tol), training.update)
