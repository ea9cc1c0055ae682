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

The step sees the loop's locals `w`, `X`, `Y`, `grad`, `steps`, `previous`,
the hyperparameters and the state by name, and must set `loss` (the mean loss
at the weights the iteration started from), `steps` (what each weight moved,
for the `tol` test) and `finite`, and leave in `previous` the weights it
started from (they are restored when `finite` is false).

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
    """A number a rule reads: its name (a keyword of `train`), default and valid range, bounds included
    (the low bound excluded when `above_low`: a learning rate of 0 would never move)."""

    name: str
    default: float
    low: float = 0.0
    high: float = math.inf
    description: str = ""
    above_low: bool = False

    def describe(self) -> str:
        if self.low == 0 and self.high == math.inf:
            return "a positive number" if self.above_low else "a non-negative number"
        return f"a number {'above' if self.above_low else 'from'} {self.low:g} {'and up ' if self.above_low else ''}to {self.high:g}"

    def fits(self, value) -> bool:
        return math.isfinite(value) and (self.low < value if self.above_low else self.low <= value) and value <= self.high

    def test_code(self, var: str) -> str:
        """`fits` as a Python expression in `var`, for the generated module's own check of `train`'s arguments."""
        low = f"{self.low!r} {'<' if self.above_low else '<='} {var}"
        high = f"{var} < math.inf" if self.high == math.inf else f"{var} <= {self.high!r}"
        return f"{low} and {high}"

    def check(self, value) -> float:
        """`value` as a float, or a one-line SymcompileError saying what is allowed."""
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and self.fits(value)):
            raise SymcompileError(f"{self.name} must be {self.describe()}, not {value!r}")
        return float(value)


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

RULES: dict[str, UpdateRule] = {}


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
        hyperparameters=(LEARNING_RATE,),
        needs_sequential_sweep=True,
        # Gauss-Seidel order: each parameter's new value is used for the next parameter's derivative.
        kernels='''\
{%- from "macros.py.j2" import load_params, load_sample -%}
@numba.njit(cache=True, error_model="numpy")
def _sequential_sweep_kernel(w, X, Y, lr, steps):
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
    steps[{{ loop.index0 }}] = lr * slope * scale
    w[{{ loop.index0 }}] -= steps[{{ loop.index0 }}]
{% endfor %}
    return loss * scale
{% else %}
    grad = np.empty_like(w)
    loss = _loss_and_grad_kernel(w, X, Y, grad)
    for j in range(w.shape[0]):
        if j > 0:  # the gradient at the weights updated so far
            _loss_and_grad_kernel(w, X, Y, grad)
        steps[j] = lr * grad[j]
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
previous[:] = w
{% if one_sample_sweep %}
if X.shape[0] == 1:  # one sample, as in the blog: the sweep as one straight-line program
    loss = _sequential_sweep_one_sample_kernel(w, X, Y, lr, steps)
else:
    loss = _sequential_sweep_kernel(w, X, Y, lr, steps)
{% else %}
loss = _sequential_sweep_kernel(w, X, Y, lr, steps)
{% endif %}
finite = np.isfinite(loss) and _all_finite(w)
""",
    )
)

register(
    UpdateRule(
        name="simultaneous",
        description="Gradient descent, simultaneous update",
        hyperparameters=(LEARNING_RATE,),
        step="""\
loss = _loss_and_grad_kernel(w, X, Y, grad)
finite = np.isfinite(loss)
for j in range(w.shape[0]):  # one pass: step, keep, update and check each weight
    steps[j] = lr * grad[j]
    previous[j] = w[j]
    w[j] -= steps[j]
    finite = finite and np.isfinite(w[j])
""",
    )
)
