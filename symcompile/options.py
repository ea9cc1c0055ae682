"""Every option a user can set, its allowed values, default and thresholds: one table, one `choose()`.

The command line, spec files, the Python API (`compile_model`) and the bench
all check their values here, so a value is allowed, and an error worded, the
same way wherever it is given. Every error is one line.

- `CHOICES`: options that take one of a list of names (a build's gradient
  method and layout, the training's update rule, an MLP's activations, ...).
- `BuildOptions`: how to compile (gradient method, layout, rebuild command).
- `TrainingSettings`: the training loop's defaults a module ships with
  (learning rate, iterations, tolerance, update rule), checked by
  `training_settings()`.
- The thresholds `auto` uses, below, with the reason for each.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace

from symcompile import update_rules
from symcompile.errors import SymcompileError

# --- thresholds ---------------------------------------------------------------------------------------------------

# gradient="auto" differentiates models up to this many parameters with `diff`, whose fused kernel is the most
# compact for them (the seed's 7), and larger ones in reverse mode, whose build time grows linearly.
AUTO_DIFF_MAX_PARAMS = 16
# layout="auto" rolls programs of more than this many expression nodes: Numba's compile time grows faster than
# linearly with the size of a function, so large models compile many times faster rolled (BENCHMARKS.md, Scaling).
ROLL_ABOVE_NODES = 2000
# Above this many parameters the sequential sweep calls the fused kernel instead of unrolling one program per
# parameter: the unrolled sweep's code grows as P * (program size) and Numba compiles it for seconds.
UNROLLED_SWEEP_MAX_PARAMS = 16
# Up to this many parameters the single-sample sweep is built. Its CSE runs over every parameter's derivative at
# once and grows faster than the model: for the 337-parameter 2-16-16-1 network it added 61 s to optimize and 25 s
# to emit.
ONE_SAMPLE_SWEEP_MAX_PARAMS = 32
# Up to this many parameters the module has an exact `hessian` (and `train(update="newton")`): its P(P+1)/2
# second derivatives are built by SymPy and compiled unrolled, which pays for models whose Newton step (a P x P
# Cholesky) is cheap; beyond it the module's `hessian` raises an error that says so.
HESSIAN_MAX_PARAMS = 16
# Up to this many parameters a residual model's module has `jacobian` and `least_squares`: the Jacobian kernel is
# emitted unrolled (N*k rows of P derivatives), and Levenberg-Marquardt's dense QR is meant for small P.
JACOBIAN_MAX_PARAMS = 64
# The loop keeps one loss per iteration: 10^8 of them take 800 MB.
MAX_ITERATIONS = 10**8
# Formulas larger than this (as a tree: about two characters a node) are too long to read in a module's docstring.
FORMULA_MAX_NODES = 1000


# --- choices ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """An option that takes one of `allowed` (a tuple, or a function giving it for registries and tables kept
    beside their code); `what` names it in errors."""

    what: str
    allowed: tuple[str, ...] | object
    default: str | None

    def values(self) -> tuple[str, ...]:
        return self.allowed() if callable(self.allowed) else self.allowed


def _mlp_table(table):
    def allowed():
        from symcompile import mlp  # the network builder owns its formulas; it imports this module

        return tuple(getattr(mlp, table))

    return allowed


CHOICES = {
    "gradient": Choice("gradient method", ("auto", "diff", "reverse"), "auto"),
    "layout": Choice("layout", ("auto", "unrolled", "rolled"), "auto"),
    "update": Choice("update rule", lambda: tuple(update_rules.RULES), "simultaneous"),
    "kind": Choice("spec kind", ("mlp", "expression"), None),
    "hidden_activation": Choice("hidden activation", _mlp_table("ACTIVATIONS"), "sigmoid"),
    "output_activation": Choice("output activation", _mlp_table("OUTPUT_ACTIVATIONS"), "sigmoid"),
    "loss": Choice("loss", _mlp_table("LOSSES"), "binary_cross_entropy"),
    "bias": Choice("bias scheme", ("per-neuron", "shared"), "per-neuron"),
    "init": Choice("init scheme", ("xavier", "normal", "zeros"), "xavier"),
}


def allowed(option: str) -> tuple[str, ...]:
    return CHOICES[option].values()


def choose(option: str, value):
    """`value` if it is allowed for `option`, else a one-line SymcompileError listing what is."""
    choice = CHOICES[option]
    values = choice.values()
    if value is None:
        raise SymcompileError(f"missing {choice.what}; choose one of {', '.join(values)}")
    if value not in values:
        raise SymcompileError(f"unknown {choice.what} {value!r}; choose one of {', '.join(values)}")
    return value


def argument_type(option: str):
    """An argparse `type=` that checks with `choose`, so the command line words its errors the same way."""

    def parse(text):
        try:
            return choose(option, text)
        except SymcompileError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option  # argparse names the type in some messages
    return parse


# --- build options ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """How to compile a model. `gradient` and `layout` may be "auto" (resolved by the stages, by the thresholds
    above); `rebuild_command` is the command the module's docstring tells a reader to run to rebuild it."""

    gradient: str = "auto"
    layout: str = "auto"
    rebuild_command: str | None = None

    def __post_init__(self):
        choose("gradient", self.gradient)
        choose("layout", self.layout)


# --- training settings --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingSettings:
    """The training loop's settings: the defaults a model's module ships with, or a command line's overrides.

    Construct through `training_settings()`, which checks every value; `lr`'s range is the update rules'
    learning-rate hyperparameter's. The fields and their order are part of a module's bytes (`DEFAULTS`).
    """

    lr: float = update_rules.LEARNING_RATE.default
    max_iter: int = 1000
    tol: float = 0.0
    update: str = CHOICES["update"].default


TRAINING_KEYS = tuple(f.name for f in fields(TrainingSettings))


def _check_max_iter(value):
    if isinstance(value, bool) or not (isinstance(value, int) and 0 <= value <= MAX_ITERATIONS):
        raise SymcompileError(f"max_iter must be an integer from 0 to {MAX_ITERATIONS:.0e}, not {value!r}")
    return value


def _check_tol(value):
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and value >= 0 and value != float("inf")):
        raise SymcompileError(f"tol must be a non-negative number, not {value!r}")
    return float(value)


def _check_update(value):
    if not isinstance(value, str):
        raise SymcompileError(f"update must be the name of an update rule, not {value!r}")
    return choose("update", value)


CHECKS = {"lr": update_rules.LEARNING_RATE.check, "max_iter": _check_max_iter, "tol": _check_tol,
          "update": _check_update}  # fmt: skip


def training_settings(values=None, base: TrainingSettings | None = None) -> TrainingSettings:
    """`base` (default: the defaults) with `values` (a mapping, or a TrainingSettings) checked and applied.

    Raises a one-line SymcompileError for an unknown key or a bad value.
    """
    values = vars(values) if isinstance(values, TrainingSettings) else dict(values or {})
    unknown = [key for key in values if key not in CHECKS]
    if unknown:
        raise SymcompileError(f"unknown training setting {unknown[0]!r}; expected one of {', '.join(TRAINING_KEYS)}")
    return replace(base or TrainingSettings(), **{key: CHECKS[key](value) for key, value in values.items()})
