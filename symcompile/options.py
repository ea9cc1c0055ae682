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
- `RunSettings`: how `python -m symcompile train` calls the module's `train()`
  beyond those defaults (optimizer, mini-batches, validation, early stopping),
  from a spec's [training] table and the command line, checked by
  `run_settings()`. They are not part of a module's bytes: changing them needs
  no rebuild.
- The thresholds `auto` uses, below, with the reason for each.
"""

from __future__ import annotations

import argparse
import math
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
# layout="auto" lays out the loss-and-gradient kernel of smaller programs in blocks of this many samples (the
# sample index innermost, so that LLVM vectorizes every statement) when the model's data has at least this many
# samples; fewer (the seed's one) keep the per-sample loop. Measured: a decay curve fit on 100,000 samples, 0.58
# ms per loss and gradient per sample loop, 0.26 ms in blocks of 64 (BENCHMARKS.md, "Blocks of samples").
SAMPLE_BLOCK = 64
# The loss-and-gradient kernel of unrolled programs up to this many expression nodes is inlined where the training
# loops call it (Numba's forceinline): a call passes the four arrays' descriptors, about thirty words, and keeps the
# gradient in memory. On the seed (157 nodes) the compiled loop went from 77 to 55 ns per iteration; a larger
# kernel would be compiled once more into every loop that calls it, for little gain.
INLINE_KERNEL_MAX_NODES = 500
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
# kernels="auto" compiles MLPs with more parameters than this into the dense kernels (layers as loops over weight
# matrices, samples in blocks); smaller ones, the seed's 7 among them, keep the scalar kernels, whose
# straight-line code reads as the formula and runs fastest on a handful of samples. The dense kernels have no
# parameter limit; the scalar ones stop at symcompile.model.MAX_PARAMS.
DENSE_MIN_PARAMS = 16
# Any run's worth (an int64 in compiled code): the loop's loss history grows as the run goes, not sized by this.
MAX_ITERATIONS = 2**62
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


CHOICES = {
    "gradient": Choice("gradient method", ("auto", "diff", "reverse"), "auto"),
    "layout": Choice("layout", ("auto", "unrolled", "rolled", "blocks", "rolled-blocks"), "auto"),
    "kernels": Choice("kernels", ("auto", "scalar", "dense"), "auto"),
    # `update` is the older name of `optimizer` (below): it takes the rules' own names, and must agree with it.
    "update": Choice("update rule", lambda: tuple(update_rules.RULES), "simultaneous"),
    "kind": Choice("spec kind", ("mlp", "expression"), None),
    "bias": Choice("bias scheme", ("per-neuron", "shared"), "per-neuron"),
    "init": Choice("init scheme", ("xavier", "normal", "zeros"), "xavier"),
    # The update rule a run trains with: "gd" (the rule GD_RULE, ordinary gradient descent), or any registered rule.
    "optimizer": Choice("optimizer", lambda: ("gd", *update_rules.RULES), "gd"),
    # The numbers an MLP's dense kernels compute in: float32 runs the layer products at twice the SIMD width
    # (symcompile/runtime/dense.py says what stays float64); any other model computes in float64.
    "dtype": Choice("dtype", ("float64", "float32"), "float64"),
}


def add_choices(**choices: Choice) -> None:
    """Options whose values are the keys of a table kept beside its code: the network builder adds its
    activations and losses (symcompile/mlp.py, on import; only it and the spec reader, which imports it, ask)."""
    CHOICES.update(choices)


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


def positive_count(text):
    """argparse's `type=` for a count of 1 or more (threads, partitions, iterations, repeats)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a positive integer expected, not {text!r}")
    return int(text)


# Where modules are written unless told otherwise, and the stages' names: a build's timing reports them, and
# `build --dump-after` shows any before the write. Here, with the other options, so that the command line reads
# them without importing the stages (and SymPy). An MLP on dense kernels goes from its shape straight to emit.
DEFAULT_OUT_DIR = "generated"
STAGES = ("model", "rewrite", "differentiate", "optimize", "emit", "write")
DENSE_STAGES = ("model", "emit", "write")
DUMP_STAGES = STAGES[:-1]

# --- build options ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """How to compile a model. `gradient`, `layout` and `kernels` may be "auto" (resolved by the stages, by the
    thresholds above); `rebuild_command` is the command the module's docstring tells a reader to run to rebuild
    it. kernels="dense" applies to MLPs (symcompile.dense); gradient and layout then have nothing to choose.
    `standalone`: the module imports a copy of the runtime written beside it (symcompile/standalone.py).
    `hessian`: the module has the exact Hessian (its `hessian` function and the "newton" optimizer), for
    models of at most HESSIAN_MAX_PARAMS parameters; a module without it is smaller and builds faster."""

    gradient: str = "auto"
    layout: str = "auto"
    rebuild_command: str | None = None
    kernels: str = "auto"
    standalone: bool = False
    hessian: bool = False

    def __post_init__(self):
        choose("gradient", self.gradient)
        choose("layout", self.layout)
        choose("kernels", self.kernels)


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
    if isinstance(value, bool) or not (isinstance(value, int) and 1 <= value <= MAX_ITERATIONS):
        raise SymcompileError(f"max_iter must be an integer from 1 to 2**62, not {value!r}")
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


# --- run settings -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    """How the command line trains, beyond the module's defaults: the keywords of the module's `train()` (the
    update rules' hyperparameters follow torch.optim's SGD, Adam and AdamW; their defaults and ranges are the
    registry's, symcompile/update_rules.py), plus `epochs` (another name for max_iter, which counts epochs when
    batch_size is set) and `validation_split` (the fraction of the data held out, by a split seeded with
    `seed`). Given in a spec's [training] table or on the command line; checked by `run_settings()`."""

    optimizer: str | None = None  # the update rule (a registry name, "gd" given as GD_RULE); None: the module's default
    momentum: float = update_rules.MOMENTUM.default
    nesterov: bool = update_rules.NESTEROV.default
    betas: tuple[float, float] = update_rules.BETAS.default
    eps: float = update_rules.EPS.default
    weight_decay: float = update_rules.WEIGHT_DECAY.default
    batch_size: int | None = None  # None: the full batch
    epochs: int | None = None  # None: the model's max_iter
    validation_split: float = 0.0
    patience: int | None = None  # None: no early stopping
    seed: int = 0
    record_every: int = 1


RUN_KEYS = tuple(f.name for f in fields(RunSettings))


def _number_in(name, low, high, *, low_open=False, high_open=False):
    """A check for a number from `low` to `high` (bounds included unless open)."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value):
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < low or value > high or (low_open and value == low) or (high_open and value == high):
            raise SymcompileError(f"{name} must be a number in {shown}, not {value!r}")
        return float(value)

    return check


def _whole_number(name, least, optional=False, most=None):
    """A check for an integer of at least `least`, and at most `most` if given (or None when `optional`)."""

    def check(value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SymcompileError(f"{name} must be an integer of at least {least}, not {value!r}")
        if most is not None and value > most:
            raise SymcompileError(f"{name} must be an integer from {least} to {most}, not {value!r}")
        return value

    return check


def _check_optimizer(value):
    if not isinstance(value, str):
        raise SymcompileError(f"optimizer must be the name of an optimizer, not {value!r}")
    return update_rules.rule_of(choose("optimizer", value))


def chosen_rule(optimizer=None, update=None, names=("optimizer", "update")):
    """The update rule that `optimizer`, or its older name `update`, names (None when neither is given), each
    checked; a one-line error when both are given and name different rules. `names`: how the error calls them
    (a spec's keys, the command line's flags)."""
    rules = {_check_optimizer(optimizer) if optimizer is not None else None,
             _check_update(update) if update is not None else None} - {None}  # fmt: skip
    if len(rules) > 1:
        raise SymcompileError(
            f"{names[0]} {optimizer!r} and {names[1]} {update!r} name different update rules; give {names[0]} alone "
            f"({names[1]} is its older name)"
        )
    return rules.pop() if rules else None


RUN_CHECKS = {
    "optimizer": _check_optimizer,
    **{
        h.name: h.check
        for h in (
            update_rules.MOMENTUM,
            update_rules.NESTEROV,
            update_rules.BETAS,
            update_rules.EPS,
            update_rules.WEIGHT_DECAY,
        )
    },  # fmt: skip
    "batch_size": _whole_number("batch_size", 1, optional=True),
    "epochs": lambda value: None if value is None else _check_max_iter(value),
    "validation_split": _number_in("validation_split", 0, 1, high_open=True),
    "patience": _whole_number("patience", 1, optional=True),
    "seed": _whole_number("seed", 0, most=2**64 - 1),  # the module's generator takes a uint64 seed
    "record_every": _whole_number("record_every", 1),
}


def run_setting(key, value):
    """One run setting checked alone (the settings' agreement with each other is run_settings()'s to check)."""
    if key not in RUN_CHECKS:
        raise SymcompileError(f"unknown training setting {key!r}; expected one of {', '.join(RUN_KEYS)}")
    return RUN_CHECKS[key](value)


def run_settings(values=None, base: RunSettings | None = None, default_rule=update_rules.GD_RULE) -> RunSettings:
    """`base` (default: the defaults) with `values` (a mapping) checked and applied; one-line errors as for
    `training_settings()`, and for settings that contradict each other. `default_rule`: the rule a run whose
    optimizer is None trains with (the module's default), whose hyperparameters it may set."""
    values = dict(values or {})
    settings = replace(base or RunSettings(), **{key: run_setting(key, value) for key, value in values.items()})
    _check_applies(settings, settings.optimizer or default_rule)
    if settings.patience is not None and settings.validation_split == 0:
        raise SymcompileError("patience needs validation data: set validation_split above 0")
    return settings


def _check_applies(settings: RunSettings, rule_name):
    """Refuse a hyperparameter the rule would not read (as the module's train() does), and Nesterov without
    momentum."""
    reads = [h.name for h in update_rules.RULES[rule_name].hyperparameters]
    for h in update_rules.hyperparameters():
        if h.name in vars(settings) and h.name not in reads and getattr(settings, h.name) != h.default:
            shown = "gd" if rule_name == update_rules.GD_RULE else rule_name  # the optimizer's name for it
            reading = ", ".join(reads) or "none"
            raise SymcompileError(f"{h.name} does not apply to optimizer {shown!r} (it reads {reading})")
    if settings.nesterov and settings.momentum == 0:
        raise SymcompileError("nesterov needs a momentum above 0")


def check_rule_fits(rule_name, n_params):
    """A one-line error for a rule the model's module will not have: Newton's needs the exact Hessian."""
    if rule_name == "newton" and n_params > HESSIAN_MAX_PARAMS:
        raise SymcompileError(
            f"optimizer newton needs the exact Hessian, which a module has for at most HESSIAN_MAX_PARAMS = "
            f"{HESSIAN_MAX_PARAMS} parameters, not {n_params}"
        )


def train_keywords(training: TrainingSettings, run: RunSettings) -> dict:
    """The keywords of the module's `train()` for these settings: the module's defaults, the rule by its one name
    (`optimizer`: the run's, else the module's default rule), and each other run setting that differs from its
    default (so a module built before the newer keywords still trains with the old ones)."""
    keywords = {k: v for k, v in vars(training).items() if k != "update"}
    keywords["optimizer"] = run.optimizer or training.update
    keywords |= {"max_iter": run.epochs} if run.epochs is not None else {}
    defaults = RunSettings()
    skipped = ("optimizer", "epochs", "validation_split")  # handled above, and by the caller (X_val and Y_val)
    changed = {k: v for k, v in vars(run).items() if k not in skipped and v != getattr(defaults, k)}
    return keywords | changed
