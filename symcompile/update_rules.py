"""The training algorithm's update rules: one registry entry each.

An `UpdateRule` says everything the compiler and the generated module need to
know about one way of stepping the weights:

- its hyperparameters (name, default, valid range), which become arguments of
  the compiled loop and of the module's `train(...)`;
- the state it keeps between iterations (arrays shaped like the weights,
  zeros at the start, allocated in the compiled loop), such as a momentum's
  velocity;
- its compiled step: Jinja text for one iteration of the loop, rendered inside
  `templates/module.py.j2`'s `train_kernel` macro, plus optional compiled
  helpers (`kernels`) rendered before the loops;
- whether it needs the per-parameter programs of the sequential sweep
  (`optimize` builds them only then).

The step is one update on one batch of samples. It sees the loop's locals `w`,
`X`, `Y` (the batch: all the training samples when training full-batch),
`grad`, `steps`, `previous`, `step` (how many updates came before this one,
counted across the whole run: Adam's bias correction needs it), the
hyperparameters and the state by name, and must set `loss` (the batch's mean
loss at the weights the update started from), `steps` (what each weight moved,
for the `tol` test) and `finite`, and leave in `previous` the weights it
started from (they are restored when `finite` is false). `finite` is checked
after the update loop (`_weights_finite(w)`), not inside it: a test inside kept
LLVM from vectorizing the loop (Adam on digits: 9% of an epoch, BENCHMARKS.md).

The formulas of `momentum`, `adam` and `adamw` are those of `torch.optim.SGD`,
`Adam` and `AdamW` (tests compare them step for step with PyTorch), and every
rule takes `weight_decay`, added to the gradient as `weight_decay * w` (L2, as
torch's SGD and Adam do) except by `adamw`, which decays the weights apart
from the gradient.

Adding a rule is one `register(UpdateRule(...))` (tests/test_update_rules.py
registers a toy one); the module built after it has a `train(update=...)` for
it. The registry's order is the order of the compiled loops in the module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symcompile.errors import SymcompileError


@dataclass(frozen=True)
class Hyperparameter:
    """A setting a rule reads: its name (a keyword of `train`), default and valid values.

    `kind` is "number" (a real number from `low` to `high`, bounds included,
    except `low` when `above_low` (a learning rate of 0 would never move) and
    `high` unless `includes_high`), "flag" (True or False) or "pair" (two such
    numbers, as torch's `betas`). The compiled loop receives a float, a bool or
    a tuple of two floats.
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
        """What the value must be, as the error messages (here and in the module) say it."""
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
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.fits(value)

    def check(self, value):
        """`value` as the loop takes it, or a one-line SymcompileError saying what is allowed."""
        if self.kind == "flag" and isinstance(value, bool):
            return value
        if self.kind == "pair" and isinstance(value, (tuple, list)) and len(value) == 2 and all(map(self._allows, value)):
            return tuple(float(v) for v in value)
        if self.kind == "number" and self._allows(value):
            return float(value)
        raise SymcompileError(f"{self.name} must be {self.describe()}, not {value!r}")


@dataclass(frozen=True)
class UpdateRule:
    """One way of updating the weights in the compiled training loop (see the module docstring)."""

    name: str  # the value of `update`; an identifier, since it names the compiled loop `_train_<name>_kernel`
    description: str  # the compiled loop's docstring starts with it
    hyperparameters: tuple[Hyperparameter, ...]
    step: str  # Jinja text: one iteration (see the module docstring for what it must set)
    state: tuple[str, ...] = ()  # arrays like `w`, zeros at the start, kept across iterations
    kernels: str = ""  # Jinja text: compiled helpers the step calls, each followed by two blank lines
    needs_sequential_sweep: bool = False  # optimize builds the per-parameter programs (Kernel.sweep) for it

    def names(self) -> set[str]:
        """The identifiers the rule adds to the generated module's compiled loop."""
        return {h.name for h in self.hyperparameters} | set(self.state)


LEARNING_RATE = Hyperparameter("lr", 0.1, description="learning rate: the step is lr times the gradient", above_low=True)
WEIGHT_DECAY = Hyperparameter("weight_decay", 0.0, description="L2 penalty: weight_decay * w is added to the gradient")
MOMENTUM = Hyperparameter("momentum", 0.0, description="the velocity's decay: v = momentum * v + gradient")
NESTEROV = Hyperparameter("nesterov", False, kind="flag", description="Nesterov's momentum (torch's formulation)")
BETAS = Hyperparameter(
    "betas", (0.9, 0.999), 0.0, 1.0, "decay rates of Adam's running means of the gradient and its square",
    kind="pair", includes_high=False,
)  # fmt: skip
EPS = Hyperparameter("eps", 1e-8, description="added to the root of Adam's second moment, after the square root")

RULES: dict[str, UpdateRule] = {}
# The optimizer "gd" is this rule: ordinary gradient descent. (`optimizer` names the rule; `update`, its older name,
# takes the rules' own names.)
GD_RULE = "simultaneous"


def rule_of(optimizer: str) -> str:
    """The registered rule an optimizer's name stands for ("gd" is GD_RULE; every other is the rule's own name)."""
    return GD_RULE if optimizer == "gd" else optimizer


def register(rule: UpdateRule) -> UpdateRule:
    """Add `rule` to the registry; modules built afterwards offer `train(update=rule.name)`."""
    if not rule.name.isidentifier():
        raise SymcompileError(f"update rule name {rule.name!r} must be an identifier")
    RULES[rule.name] = rule
    return rule


def rule(name: str) -> UpdateRule:
    return RULES[name]


def hyperparameters() -> tuple[Hyperparameter, ...]:
    """Every registered rule's hyperparameters, each once, in registration order: the compiled loops' arguments."""
    seen = {}
    for registered in RULES.values():
        for h in registered.hyperparameters:
            seen.setdefault(h.name, h)
    return tuple(seen.values())


def needs_sequential_sweep() -> bool:
    return any(r.needs_sequential_sweep for r in RULES.values())


# The blog's rule first: the registry's order is the order of the loops in the module (and so its bytes).
register(
    UpdateRule(
        name="sequential",
        description="Gradient descent, sequential update",
        hyperparameters=(LEARNING_RATE, WEIGHT_DECAY),
        needs_sequential_sweep=True,
        # Gauss-Seidel order: each parameter's new value is used for the next parameter's derivative.
        kernels='''\
{%- from "macros.py.j2" import load_params, load_sample -%}
@numba.njit(cache=True, error_model="numpy")
def _sequential_sweep_kernel(w, X, Y, lr, weight_decay, steps):
    """One iteration of sequential (Gauss-Seidel) descent, in parameter order:
    each parameter's new value is used for the next parameter's derivative.
    Writes the steps taken into `steps`; returns the loss at the starting weights.{% if not sweep %}

    Each step takes its component of the full gradient at the current weights
    (this model has too many parameters for one program per parameter).{% endif %}"""
{% if sweep %}
    scale = 1.0 / X.shape[0]
{% for block in sweep %}

    # {{ block.param_name }}
{{ load_params(block) }}
    slope = 0.0
{% if loop.first %}
    loss = 0.0
{% endif %}
    for n in range(X.shape[0]):
{{ load_sample(block) }}
        slope += {{ block.results[0] }}
{% if loop.first %}
        loss += {{ block.results[1] }}
{% endif %}
    steps[{{ loop.index0 }}] = lr * slope * scale + lr * weight_decay * w[{{ loop.index0 }}]
    w[{{ loop.index0 }}] -= steps[{{ loop.index0 }}]
{% endfor %}
    return loss * scale
{% else %}
    grad = np.empty_like(w)
    loss = _loss_and_grad_kernel(w, X, Y, grad)
    for j in range(w.shape[0]):
        if j > 0:  # the gradient at the weights updated so far
            _loss_and_grad_kernel(w, X, Y, grad)
        steps[j] = lr * grad[j] + lr * weight_decay * w[j]
        w[j] -= steps[j]
    return loss
{% endif %}


{% if one_sample_sweep %}
@numba.njit(cache=True, error_model="numpy")
def _sequential_sweep_one_sample_kernel(w, X, Y, lr, steps):
    """The same sweep for a single sample, as one straight-line program: each updated weight
    is a new local, so work that does not depend on it is done once, not once per parameter."""
{{ load_params(one_sample_sweep) }}
{{ one_sample_sweep.sample_lines|join("\\n")|indent(4, first=True) }}
{% for step, new_weight in one_sample_sweep.results[1:]|batch(2) %}
    steps[{{ loop.index0 }}] = {{ step }}
    w[{{ loop.index0 }}] = {{ new_weight }}
{% endfor %}
    return {{ one_sample_sweep.results[0] }}


{% endif %}
''',
        step="""\
_copy_into(previous, w)
{% if one_sample_sweep %}
if X.shape[0] == 1 and weight_decay == 0.0:  # one sample, as in the blog: the sweep as one straight-line program
    loss = _sequential_sweep_one_sample_kernel(w, X, Y, lr, steps)
else:
    loss = _sequential_sweep_kernel(w, X, Y, lr, weight_decay, steps)
{% else %}
loss = _sequential_sweep_kernel(w, X, Y, lr, weight_decay, steps)
{% endif %}
finite = np.isfinite(loss) and _weights_finite(w)
""",
    )
)

register(
    UpdateRule(
        name="simultaneous",
        description="Gradient descent, simultaneous update",
        hyperparameters=(LEARNING_RATE, WEIGHT_DECAY),
        step="""\
loss = _loss_and_grad_kernel(w, X, Y, grad)
if weight_decay == 0.0:  # as torch.optim.SGD, which adds weight_decay*w only where it is set
    for j in range(_N_PARAMS):
        steps[j] = lr * grad[j]
else:
    for j in range(_N_PARAMS):
        steps[j] = lr * (grad[j] + weight_decay * w[j])
for j in range(_N_PARAMS):
    previous[j] = w[j]
    w[j] -= steps[j]
finite = np.isfinite(loss) and _weights_finite(w)
""",
    )
)

register(
    UpdateRule(
        name="momentum",
        description="Gradient descent with momentum (torch.optim.SGD: heavy ball, or Nesterov's)",
        hyperparameters=(LEARNING_RATE, WEIGHT_DECAY, MOMENTUM, NESTEROV),
        state=("velocity",),
        # torch: g = grad + wd*w; b = momentum*b + g (b = g at the first step: b starts at zero);
        # Nesterov: g = g + momentum*b, else g = b; w = w - lr*g.
        step="""\
loss = _loss_and_grad_kernel(w, X, Y, grad)
for j in range(_N_PARAMS):
    g = grad[j] + weight_decay * w[j]
    velocity[j] = momentum * velocity[j] + g
    g = g + momentum * velocity[j] if nesterov else velocity[j]
    steps[j] = lr * g
    previous[j] = w[j]
    w[j] -= steps[j]
finite = np.isfinite(loss) and _weights_finite(w)
""",
    )
)


def _adam_step(decoupled: bool) -> str:
    """One step of torch.optim.Adam (L2 weight decay in the gradient) or, `decoupled`, of AdamW."""
    gradient, new_weight = (
        ("grad[j]", "w[j] * (1.0 - lr * weight_decay)") if decoupled else ("grad[j] + weight_decay * w[j]", "w[j]")
    )
    return f"""\
loss = _loss_and_grad_kernel(w, X, Y, grad)
beta1, beta2 = betas
t = float(step + 1)  # torch's step count; a float power, as torch's Python float arithmetic takes it
step_size = lr / (1.0 - beta1**t)
bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
for j in range(_N_PARAMS):
    g = {gradient}
    m[j] += (1.0 - beta1) * (g - m[j])  # = beta1*m + (1 - beta1)*g, written as torch's lerp computes it
    v[j] = v[j] * beta2 + (1.0 - beta2) * g * g
    previous[j] = w[j]
    w[j] = {new_weight} - step_size * (m[j] / (math.sqrt(v[j]) / bias_correction2_sqrt + eps))
    steps[j] = previous[j] - w[j]
finite = np.isfinite(loss) and _weights_finite(w)
"""


register(
    UpdateRule(
        name="adam",
        description="Adam (torch.optim.Adam: bias-corrected, eps added after the square root)",
        hyperparameters=(LEARNING_RATE, WEIGHT_DECAY, BETAS, EPS),
        state=("m", "v"),
        step=_adam_step(decoupled=False),
    )
)

register(
    UpdateRule(
        name="adamw",
        description="AdamW (torch.optim.AdamW: Adam with decoupled weight decay, w = w * (1 - lr*weight_decay) first)",
        hyperparameters=(LEARNING_RATE, WEIGHT_DECAY, BETAS, EPS),
        state=("m", "v"),
        step=_adam_step(decoupled=True),
    )
)


register(
    UpdateRule(
        name="newton",
        description="Damped Newton's method with a backtracking line search",
        hyperparameters=(),
        # Each iteration: the exact Hessian (templates/hessian.py.j2), a Newton direction by Cholesky where the
        # Hessian is positive definite, else the gradient's, then halve the step from 1 until the loss falls by
        # Armijo's sufficient decrease. All in compiled code, no LAPACK: the Hessian is at most
        # HESSIAN_MAX_PARAMS square.
        kernels='''\
@numba.njit(cache=True, error_model="numpy")
def _cholesky_solve(A, b, x):
    """Solve A x = b for a symmetric A by Cholesky (A = L L^T); False, x untouched, where A is not positive
    definite to working precision."""
    n = A.shape[0]
    L = np.zeros((n, n))
    for j in range(n):
        pivot = A[j, j]
        for k in range(j):
            pivot -= L[j, k] * L[j, k]
        if not pivot > 1e-14 * abs(A[j, j]) or not pivot > 0.0:
            return False
        L[j, j] = math.sqrt(pivot)
        for i in range(j + 1, n):
            total = A[i, j]
            for k in range(j):
                total -= L[i, k] * L[j, k]
            L[i, j] = total / L[j, j]
    for i in range(n):  # L y = b
        total = b[i]
        for k in range(i):
            total -= L[i, k] * x[k]
        x[i] = total / L[i, i]
    for i in range(n - 1, -1, -1):  # L^T x = y
        total = x[i]
        for k in range(i + 1, n):
            total -= L[k, i] * x[k]
        x[i] = total / L[i, i]
    return True


@numba.njit(cache=True, error_model="numpy")
def _newton_step(w, X, Y, grad, steps):
    """One damped Newton step from w, in place; the steps taken go to `steps`. Returns the loss at the
    starting weights. The direction is H^-1 g where H is positive definite, else g (a gradient step); the
    step is 2^-k times it for the first k from 0 to 59 at which the loss falls by at least 1e-4 of what
    the slope promises (Armijo). When none does (at a minimum, to rounding), no step is taken."""
    n = w.shape[0]
    H = np.empty((n, n))
    loss = _loss_grad_hessian_kernel(w, X, Y, grad, H)
    direction = np.empty(n)
    if not _cholesky_solve(H, grad, direction):
        _copy_into(direction, grad)
    slope = 0.0
    for j in range(n):
        slope += grad[j] * direction[j]
    trial = np.empty(n)
    trial_grad = np.empty(n)
    steps[:] = 0.0
    alpha = 1.0
    for _ in range(60):
        for j in range(n):
            trial[j] = w[j] - alpha * direction[j]
        if _loss_and_grad_kernel(trial, X, Y, trial_grad) <= loss - 1e-4 * alpha * slope:
            for j in range(n):
                steps[j] = alpha * direction[j]
                w[j] = trial[j]
            break
        alpha *= 0.5
    return loss


''',
        step="""\
_copy_into(previous, w)
loss = _newton_step(w, X, Y, grad, steps)
finite = np.isfinite(loss) and _weights_finite(w)
""",
    )
)
