"""The training loop's update rules, each defined once: its hyperparameters, its state and its compiled step.

A rule is an `init`/`step` pair in the Optax style, on arrays: the state is `n_state` arrays like the weights
(rows of one matrix, zeros at the start: a momentum's velocity, Adam's moments), and the step

    step(w, grad, state, t, hyperparameters, previous, steps)

updates `w` and `state` in place from the gradient `grad` at `w`, where `t` counts the updates before this one
(Adam's bias correction needs it) and `hyperparameters` is a vector holding every registered hyperparameter at
its slot (`slots()`); it leaves in `previous` the weights it started from and in `steps` what each weight moved
(the `tol` test). The compiled training loops (`symcompile.runtime.loops`) call it through a function pointer
(`STEP`), so one compiled loop serves every rule and every model, and `symcompile.distributed` calls the same
step from Python between its partitions' gradients.

Two rules need more of the model than its gradient: "sequential" (each weight's new value feeds the next
weight's derivative) and "newton" (the exact Hessian). Their step is a kernel of the generated module
(`model_kernel`, signature `MODEL_STEP`), generated from SymPy (symcompile/update_rules.py has its text).

The formulas of `momentum`, `adam` and `adamw` are those of `torch.optim.SGD`, `Adam` and `AdamW` (tests compare
them step for step with PyTorch). Every rule takes `weight_decay`, added to the gradient as `weight_decay * w`
(L2, as torch's SGD and Adam do), except `adamw`, which decays the weights apart from the gradient.

Adding a rule is one step function and one `register(UpdateRule(...))` (tests/test_update_rules.py registers a
toy one): every module, built before or after, can train with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import types

from .errors import SymcompileError
from .signatures import MATRIX, VECTOR

# step(w, grad, state, t, hyperparameters, previous, steps)
STEP = types.FunctionType(types.void(VECTOR, VECTOR, MATRIX, types.int64, VECTOR, VECTOR, VECTOR))
# A model's own step: model_step(w, X, Y, hyperparameters, previous, steps) -> the loss at the starting weights
MODEL_STEP = types.FunctionType(types.float64(VECTOR, MATRIX, MATRIX, VECTOR, VECTOR, VECTOR))


@dataclass(frozen=True)
class Hyperparameter:
    """A setting a rule reads: its name (a keyword of `train`), default and valid values.

    `kind` is "number" (a real number from `low` to `high`, bounds included, except `low` when `above_low` (a
    learning rate of 0 would never move) and `high` unless `includes_high`), "flag" (True or False) or "pair"
    (two such numbers, as torch's `betas`).
    """

    name: str
    default: float | bool | tuple[float, float]
    low: float = 0.0
    high: float = math.inf
    description: str = ""
    kind: str = "number"
    above_low: bool = False
    includes_high: bool = True

    def describe(self) -> str:
        """What the value must be, as the error messages say it."""
        if self.kind == "flag":
            return "True or False"
        if self.low == 0 and self.high == math.inf:
            number = "positive number" if self.above_low else "non-negative number"
        else:
            number = (
                f"number {'above' if self.above_low else 'from'} {self.low:g} {'and up ' if self.above_low else ''}"
                f"to {self.high:g}" + ("" if self.includes_high else " (excluded)")
            )
        return f"two numbers, each a {number}" if self.kind == "pair" else f"a {number}"

    def fits(self, value) -> bool:
        """Whether a real number `value` is in range."""
        low = self.low < value if self.above_low else self.low <= value
        return math.isfinite(value) and low and (value <= self.high if self.includes_high else value < self.high)

    def _allows(self, value) -> bool:
        return is_real(value) and self.fits(value)

    def value(self, value):
        """`value` as a rule reads it (a float, a bool, a pair of floats); TypeError for a wrong type, ValueError
        for a value out of range, each one line saying what is allowed."""
        if self.kind == "flag" and isinstance(value, (bool, np.bool_)):
            return bool(value)
        if (
            self.kind == "pair"
            and isinstance(value, (tuple, list))
            and len(value) == 2
            and all(map(self._allows, value))
        ):
            return tuple(float(v) for v in value)
        if self.kind == "number" and self._allows(value):
            return float(value)
        wrong_type = self.kind == "number" and not is_real(value) or self.kind == "flag" and not is_real(value, True)
        raise (TypeError if wrong_type else ValueError)(f"{self.name} must be {self.describe()}, not {value!r}")

    def check(self, value):
        """`value` checked as the CLI and spec files check it: a one-line SymcompileError."""
        try:
            return self.value(value)
        except (TypeError, ValueError) as exc:
            raise SymcompileError(str(exc)) from None

    @property
    def width(self) -> int:
        """The slots it takes in the hyperparameters' vector."""
        return 2 if self.kind == "pair" else 1


def is_real(value, integer=False) -> bool:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class UpdateRule:
    """One way of updating the weights (see the module docstring)."""

    name: str  # the value of `optimizer`; an identifier
    description: str
    hyperparameters: tuple[Hyperparameter, ...]
    step: object = None  # the compiled step (signature STEP); None for a rule whose step is the model's
    n_state: int = 0  # arrays like `w` the rule keeps, zeros at the start
    model_kernel: str = ""  # the generated module's kernel that takes the step (signature MODEL_STEP)


LEARNING_RATE = Hyperparameter(
    "lr", 0.1, description="learning rate: the step is lr times the gradient", above_low=True
)
WEIGHT_DECAY = Hyperparameter("weight_decay", 0.0, description="L2 penalty: weight_decay * w is added to the gradient")
MOMENTUM = Hyperparameter("momentum", 0.0, description="the velocity's decay: v = momentum * v + gradient")
NESTEROV = Hyperparameter("nesterov", False, kind="flag", description="Nesterov's momentum (torch's formulation)")
BETAS = Hyperparameter(
    "betas", (0.9, 0.999), 0.0, 1.0, "decay rates of Adam's running means of the gradient and its square",
    kind="pair", includes_high=False,
)  # fmt: skip
EPS = Hyperparameter("eps", 1e-8, description="added to the root of Adam's second moment, after the square root")

# Where each hyperparameter sits in the vector the steps read: fixed, so that the compiled steps read constants.
LR, DECAY, MOMENTUM_SLOT, NESTEROV_SLOT, BETA1, BETA2, EPS_SLOT = range(7)
_BUILT_IN = (LEARNING_RATE, WEIGHT_DECAY, MOMENTUM, NESTEROV, BETAS, EPS)

RULES: dict[str, UpdateRule] = {}
# The optimizer "gd" is this rule: ordinary gradient descent. (`optimizer` names the rule; `update`, its older
# name, takes the rules' own names.)
GD_RULE = "simultaneous"


def rule_of(optimizer: str) -> str:
    """The registered rule an optimizer's name stands for ("gd" is GD_RULE; every other is the rule's own name)."""
    return GD_RULE if optimizer == "gd" else optimizer


def register(rule: UpdateRule) -> UpdateRule:
    """Add `rule` to the registry: `train(optimizer=rule.name)` runs it from then on."""
    if not rule.name.isidentifier():
        raise SymcompileError(f"update rule name {rule.name!r} must be an identifier")
    if (rule.step is None) == (not rule.model_kernel):
        raise SymcompileError(f"update rule {rule.name!r} needs either a compiled step or a model kernel")
    RULES[rule.name] = rule
    return rule


def hyperparameters() -> tuple[Hyperparameter, ...]:
    """Every registered rule's hyperparameters, each once: the built-in ones first (in their slots), then the
    others in registration order."""
    seen = {h.name: h for h in _BUILT_IN}
    for registered in RULES.values():
        for h in registered.hyperparameters:
            seen.setdefault(h.name, h)
    return tuple(seen.values())


def slots() -> dict[str, int]:
    """Each hyperparameter's first slot in the vector the steps read."""
    found, slot = {}, 0
    for h in hyperparameters():
        found[h.name] = slot
        slot += h.width
    return found


def vector(values: dict) -> np.ndarray:
    """The steps' vector of hyperparameters: `values` (checked values by name) at their slots, the others at
    their defaults."""
    flat = []
    for h in hyperparameters():
        value = values.get(h.name, h.default)
        flat += list(value) if h.kind == "pair" else [float(value)]
    return np.array(flat, dtype=np.float64)


def init(rule: UpdateRule, n_params: int) -> np.ndarray:
    """The rule's state at the start: zeros, one row per array it keeps."""
    return np.zeros((rule.n_state, n_params))


_njit = numba.njit(cache=True, error_model="numpy")


@_njit
def gradient_descent_step(w, grad, state, t, hyperparameters, previous, steps):
    """w -= lr * (grad + weight_decay * w), weight decay added only where it is set, as torch.optim.SGD."""
    lr, weight_decay = hyperparameters[LR], hyperparameters[DECAY]
    for j in range(w.shape[0]):
        step = lr * grad[j] if weight_decay == 0.0 else lr * (grad[j] + weight_decay * w[j])
        steps[j] = step
        previous[j] = w[j]
        w[j] -= step


# The same step for a module's own full-batch loop (symcompile/emit.py: named_full_batch_loop), inlined there by
# Numba: LLVM does not inline a call into the runtime's cached code, which on the seed took 72 ns an iteration
# against 47 ns inlined (hand-written backprop: 54 ns; BENCHMARKS.md, issue 20).
inlined_gradient_descent_step = numba.njit(inline="always", error_model="numpy")(gradient_descent_step.py_func)


@_njit
def momentum_step(w, grad, state, t, hyperparameters, previous, steps):
    """torch.optim.SGD with momentum: g = grad + wd*w; b = momentum*b + g (b = g at the first step, from zero);
    Nesterov: g = g + momentum*b, else g = b; w = w - lr*g."""
    lr, weight_decay, momentum = hyperparameters[LR], hyperparameters[DECAY], hyperparameters[MOMENTUM_SLOT]
    nesterov = hyperparameters[NESTEROV_SLOT] != 0.0
    velocity = state[0]
    for j in range(w.shape[0]):
        g = grad[j] + weight_decay * w[j]
        velocity[j] = momentum * velocity[j] + g
        g = g + momentum * velocity[j] if nesterov else velocity[j]
        steps[j] = lr * g
        previous[j] = w[j]
        w[j] -= steps[j]


@_njit
def _adam(w, grad, state, t, hyperparameters, previous, steps, decoupled):
    """One step of torch.optim.Adam (L2 weight decay in the gradient) or, `decoupled`, of AdamW."""
    lr, weight_decay, eps = hyperparameters[LR], hyperparameters[DECAY], hyperparameters[EPS_SLOT]
    beta1, beta2 = hyperparameters[BETA1], hyperparameters[BETA2]
    m, v = state[0], state[1]
    count = float(t + 1)  # torch's step count; a float power, as torch's Python float arithmetic takes it
    step_size = lr / (1.0 - beta1**count)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**count)
    for j in range(w.shape[0]):
        g = grad[j] if decoupled else grad[j] + weight_decay * w[j]
        m[j] += (1.0 - beta1) * (g - m[j])  # = beta1*m + (1 - beta1)*g, written as torch's lerp computes it
        v[j] = v[j] * beta2 + (1.0 - beta2) * g * g
        previous[j] = w[j]
        start = w[j] * (1.0 - lr * weight_decay) if decoupled else w[j]
        w[j] = start - step_size * (m[j] / (math.sqrt(v[j]) / bias_correction2_sqrt + eps))
        steps[j] = previous[j] - w[j]


@_njit
def adam_step(w, grad, state, t, hyperparameters, previous, steps):
    _adam(w, grad, state, t, hyperparameters, previous, steps, False)


@_njit
def adamw_step(w, grad, state, t, hyperparameters, previous, steps):
    _adam(w, grad, state, t, hyperparameters, previous, steps, True)


@_njit
def no_step(w, grad, state, t, hyperparameters, previous, steps):
    """Passed as the step where a rule's step is the model's own (never called)."""


@_njit
def no_model_step(w, X, Y, hyperparameters, previous, steps):
    """Passed as the model's step where the rule has its own (never called)."""
    return np.nan


# The blog's rule first: the registry's order is the order the rules are listed in.
register(UpdateRule(
    "sequential", "Gradient descent, sequential update: the parameters one by one, each new value feeding the "
    "next derivative (Gauss-Seidel order)", (LEARNING_RATE, WEIGHT_DECAY), model_kernel="_sequential_step_kernel",
))  # fmt: skip
register(UpdateRule(
    "simultaneous", "Gradient descent, simultaneous update", (LEARNING_RATE, WEIGHT_DECAY), gradient_descent_step,
))  # fmt: skip
register(UpdateRule(
    "momentum", "Gradient descent with momentum (torch.optim.SGD: heavy ball, or Nesterov's)",
    (LEARNING_RATE, WEIGHT_DECAY, MOMENTUM, NESTEROV), momentum_step, n_state=1,
))  # fmt: skip
register(UpdateRule(
    "adam", "Adam (torch.optim.Adam: bias-corrected, eps added after the square root)",
    (LEARNING_RATE, WEIGHT_DECAY, BETAS, EPS), adam_step, n_state=2,
))  # fmt: skip
register(UpdateRule(
    "adamw", "AdamW (torch.optim.AdamW: Adam with decoupled weight decay, w = w * (1 - lr*weight_decay) first)",
    (LEARNING_RATE, WEIGHT_DECAY, BETAS, EPS), adamw_step, n_state=2,
))  # fmt: skip
register(UpdateRule(
    "newton", "Damped Newton's method with a backtracking line search", (), model_kernel="_newton_step_kernel",
))  # fmt: skip
