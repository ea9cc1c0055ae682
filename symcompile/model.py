"""The model stage (options.STAGES): what the user wrote, checked and frozen.

A `Model` holds everything the later stages need: the ordered parameters, the
per-sample inputs and targets, the training function's output expression(s),
the per-sample loss, and the defaults the generated module ships with (initial
weights, data, training settings). `make_model` is the only constructor and
the place where user input is validated, so every later stage may trust it.
"""

from __future__ import annotations

import functools
import keyword
import math
import os
import site
import sys
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from symcompile.data import Standardization, is_label_vector, one_hot
from symcompile.errors import SymcompileError
from symcompile.graph import graph_nodes, replace_bottom_up
from symcompile.options import TrainingSettings, training_settings

# The name the public API has always used for a model's training settings.
TrainingDefaults = TrainingSettings


@dataclass(frozen=True, eq=False)
class Model:
    """A checked model: what every later stage reads (see the module docstring). Built only by `make_model`."""

    name: str
    params: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]
    targets: tuple[sp.Symbol, ...]
    outputs: tuple[sp.Expr, ...]
    loss: sp.Expr
    init: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    training: TrainingSettings = field(default_factory=TrainingSettings)
    description: str = ""
    # "binary": outputs are probabilities of the targets being 1 (binary cross-entropy); "softmax": outputs are
    # class probabilities (softmax cross-entropy); "": not a classifier. Classifiers get `accuracy`.
    classifier: str = ""
    standardization: Standardization | None = None  # set by data.standardized(): the formulas scale the inputs
    # A residual model's per-sample residuals: its loss is their sum of squares (an MLP's mean squared error
    # divides each by sqrt(outputs)). Empty for other models. They give the module residuals, jacobian and
    # least_squares (Levenberg-Marquardt).
    residuals: tuple[sp.Expr, ...] = ()
    # An MLP's shape, init scheme and seed (symcompile.mlp.Network), for the dense kernels; None for other models.
    # A network too wide for one symbol per weight has no SymPy form: params, outputs are () and loss is 0.
    network: object = None
    # The numbers the module computes in: "float64", or "float32" for an MLP on the dense kernels (a spec's dtype).
    dtype: str = "float64"

    @property
    def symbolic(self) -> bool:
        """Whether the model has its SymPy form (every model but the widest networks)."""
        return bool(self.params)

    @property
    def n_params(self) -> int:
        return len(self.params) if self.symbolic else self.network.shape.n_params


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
    classifier="",
    residual=None,
    network=None,
) -> Model:
    """Validate user input and return a `Model`; raise SymcompileError on bad input.

    `residual`: one expression or a list (several residuals per sample) in the params, inputs and targets.
    With `loss=None` the per-sample loss is their sum of squares; a caller giving both (the MLP builder)
    vouches that the loss is that sum.
    """
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
    residuals = _residual_exprs(residual)
    if loss is None:
        if not residuals:
            raise SymcompileError("model has no loss: give a loss, or residuals whose sum of squares is the loss")
        loss = sp.Add(*(r**2 for r in residuals))
    loss = _as_expr(loss, "loss")
    _check_formulas(outputs, loss, set(params + inputs), set(params + inputs + targets), residuals)
    params, inputs, targets, outputs, (loss, *residuals) = _as_real(
        params, inputs, targets, outputs, (loss, *residuals)
    )
    init = _init_array(init, len(params))
    X, Y = _data_arrays(X, Y, len(inputs), len(targets))
    training = training_settings(training)
    return Model(
        name, params, inputs, targets, outputs, loss, init, X, Y, training, description, classifier,
        residuals=tuple(residuals), network=network,
    )  # fmt: skip


CLASSIFIERS = ("", "binary", "softmax")


def _residual_exprs(residual):
    """The residuals as a tuple of checked expressions: () for None, one for an expression, or a list's."""
    if residual is None:
        return ()
    residuals = tuple(
        _as_expr(r, "residual") for r in (residual if isinstance(residual, (list, tuple)) else [residual])
    )
    if not residuals:
        raise SymcompileError("residual is an empty list: give one expression per residual of a sample")
    return residuals


def make_network_model(
    name, network, inputs, targets, *, init, X=None, Y=None, training=None, description="", classifier=""
):
    """A Model of an MLP without its SymPy form (symcompile.mlp builds it for networks too wide for one symbol
    per weight): name, data, init and settings checked as `make_model` checks them."""
    _check_module_name(name)
    init = _init_array(init, network.shape.n_params)
    X, Y = _data_arrays(X, Y, len(inputs), len(targets))
    return Model(
        name, (), tuple(inputs), tuple(targets), (), sp.S.Zero, init, X, Y, training_settings(training), description,
        classifier, network=network,
    )  # fmt: skip


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
    return expr


def _check_formulas(outputs, loss, output_names, loss_names, residuals=()):
    """Check every formula (what it computes, then the names it uses), walking each graph once.

    `atoms()`, `has()` and `free_symbols` walk a formula as a tree, once per
    path to a shared node; a network repeats each layer inside every neuron
    after it, so for a 64-32-10 MLP that walk took seconds where the graph's
    distinct nodes take milliseconds. The loss holds the outputs: their nodes,
    already checked against the stricter names, are not visited again.
    """
    seen = set()
    formulas = [(_new_nodes(o, seen), "output", output_names) for o in outputs]
    formulas.append((_new_nodes(loss, seen), "loss", loss_names))
    formulas += [(_new_nodes(r, seen), "residual", loss_names) for r in residuals]
    for nodes, what, _ in formulas:
        _check_computable(nodes, what)
    for nodes, what, allowed in formulas:
        _check_free_symbols(nodes, allowed, what)


def _new_nodes(expr, seen):
    """The distinct nodes of `expr` that are not in `seen`, which gains them."""
    nodes = list(graph_nodes(expr, seen))
    seen.update(nodes)
    return nodes


# Objects a formula may hold that have no numeric code: SymPy leaves them unevaluated.
UNEVALUATED = (sp.Derivative, sp.Integral, sp.Sum, sp.Product, sp.Limit, sp.Subs)


def _check_computable(nodes, what):
    """Reject what cannot become real floating-point code, naming it, before any stage sees it."""
    undefined = sorted({str(node.func) for node in nodes if isinstance(node, AppliedUndef)})
    if undefined:
        raise SymcompileError(f"{what} uses undefined function(s) {', '.join(undefined)}: give each a formula")
    for kind in UNEVALUATED:
        found = next((node for node in nodes if isinstance(node, kind)), None)
        if found is not None:
            raise SymcompileError(
                f"{what} contains an unevaluated {kind.__name__}, {found}: evaluate it (.doit()) first"
            )
    if any(node is sp.nan or node is sp.zoo for node in nodes):
        raise SymcompileError(f"{what} contains an undefined value (nan or zoo, as from a division by zero)")
    if any(node is sp.I for node in nodes):
        raise SymcompileError(f"{what} is complex (contains I); symcompile compiles real-valued models")
    _check_constants(nodes, what)


# The scalar pipeline's size limit (docs/limits.md): build time grows faster than the parameter count
# (2-70-70-1, 5,251 parameters: about 4 minutes to build and compile on our 2-core machines), so a model
# beyond this is refused at once rather than left to run for many minutes.
MAX_PARAMS = 5000


def check_model_size(n_params, remedy="see docs/limits.md"):
    """Refuse a SymPy form of more than MAX_PARAMS parameters (MLPs have the dense kernels beyond it)."""
    if n_params > MAX_PARAMS:
        raise SymcompileError(
            f"the model has {n_params:,} parameters; symcompile builds models of at most {MAX_PARAMS:,} "
            f"with the scalar kernels (beyond that a build takes many minutes; {remedy})"
        )


# Integers beyond this print as literals that compiled code cannot hold exactly (or at all, past int64).
LARGEST_INTEGER = 2**53


def _check_constants(nodes, what):
    """Evaluate the constants among a formula's `nodes` and refuse one that compiled code cannot hold: an integer
    beyond 2**53, or a function or power of numbers that is not a finite real float (exp(1000) overflows, acos(2)
    is complex). SymPy evaluates arithmetic on numbers itself, so those are the constants left."""
    for part in nodes:
        if not isinstance(part, (sp.Rational, sp.Function, sp.Pow)):
            continue
        if isinstance(part, sp.Rational):
            if max(abs(part.p), part.q) > LARGEST_INTEGER:
                raise SymcompileError(
                    f"{what} has the number {_short_number(part)}, too large for compiled code (at most 2**53)"
                )
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


def _check_free_symbols(nodes, allowed, what):
    # Every Symbol node is free: the binding objects (Integral, Sum, Subs, ...) were refused above.
    unknown = sorted(node.name for node in nodes if isinstance(node, sp.Symbol) and node not in allowed)
    if unknown:
        raise SymcompileError(f"{what} uses undeclared name(s) {', '.join(unknown)}")


def _as_real(params, inputs, targets, outputs, losses):
    """Declare every symbol real, as the numbers it stands for are.

    Without it SymPy differentiates abs(x) and friends as complex functions
    (re(x), im(x), ...), which have no meaning, and no printer, here.
    """
    real = {s: s if s.is_real else sp.Symbol(s.name, real=True) for s in params + inputs + targets}
    if all(s is r for s, r in real.items()):
        return params, inputs, targets, outputs, losses  # nothing to replace
    return (
        tuple(real[s] for s in params),
        tuple(real[s] for s in inputs),
        tuple(real[s] for s in targets),
        tuple(replace_bottom_up(o, real.get) for o in outputs),
        tuple(replace_bottom_up(loss, real.get) for loss in losses),
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
    """Default data; X is (N, n_inputs), Y is (N, n_targets) or N integer class labels (made one-hot); no data
    means no defaults."""
    if X is None and Y is None:
        return np.zeros((0, n_inputs)), np.zeros((0, n_targets))
    if X is None or Y is None:
        raise SymcompileError("give both X and Y, or neither")
    X = _float_array(X, "X")
    Y = one_hot(Y, n_targets, "Y") if is_label_vector(Y, n_targets) else _float_array(Y, "Y")
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
