"""The update rules' generated part: the steps that need more of the model than its gradient.

The rules themselves (their hyperparameters, state and compiled steps) are defined once in the runtime,
`symcompile.runtime.rules`, which this module re-exports for the compiler's stages. Two rules take a step that
depends on the model, generated from its SymPy form into the module as kernels of signature
`symcompile.runtime.rules.MODEL_STEP`:

- "sequential" (the blog's): Gauss-Seidel order, each parameter's new value used for the next parameter's
  derivative: one program per parameter (`Kernel.sweep`, built by symcompile/optimize.py) and, for one sample,
  the whole sweep as one straight-line program;
- "newton": a damped Newton step on the exact Hessian (templates/hessian.py.j2), only in modules that have it.

`MODEL_KERNELS` holds their Jinja text, rendered into templates/module.py.j2 (`model_step_rules`).
"""

from __future__ import annotations

from symcompile.runtime.rules import (  # noqa: F401 (the registry, as the compiler's stages use it)
    BETAS, EPS, GD_RULE, LEARNING_RATE, MOMENTUM, NESTEROV, RULES, WEIGHT_DECAY, Hyperparameter, UpdateRule,
    hyperparameters, register, rule_of, slots,
)  # fmt: skip

SEQUENTIAL_KERNELS = '''\
{%- from "macros.py.j2" import load_params, load_sample -%}
@numba.njit(cache=True, error_model="numpy")
def _sequential_sweep_kernel(w, X, Y, lr, weight_decay, steps):
    """One iteration of sequential (Gauss-Seidel) descent, in parameter order: each parameter's new value is used
    for the next parameter's derivative. Writes the steps into `steps`; returns the loss at the starting weights.{% if not sweep %}

    Each step takes its component of the full gradient at the current weights
    (this model has too many parameters for one program per parameter).{% endif %}"""
{% if sweep %}
    scale = 1.0 / X.shape[0]
{{ sweep_param_loads|join("\\n")|indent(4, first=True) }}
{% for block in sweep %}

    slope = {% if loop.first %}loss = {% endif %}0.0  # dloss/d{{ block.param_name }}
    for n in range(X.shape[0]):
{{ load_sample(block) }}
        slope += {{ block.results[0] }}
{% if loop.first %}
        loss += {{ block.results[1] }}
{% endif %}
    steps[{{ loop.index0 }}] = lr * slope * scale + lr * weight_decay * w[{{ loop.index0 }}]
    w[{{ loop.index0 }}] -= steps[{{ loop.index0 }}]
{% if not loop.last %}
    {{ sweep_param_loads[loop.index0] }}  # its new value, for the derivatives below
{% endif %}
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
def _sequential_sweep_one_sample_kernel(w, X, Y, hyperparameters, previous, steps):
    """The same sweep for a single sample and no weight decay, as one straight-line program: each updated weight
    is a new local, so work that does not depend on it is done once, not once per parameter. A MODEL_STEP, so
    that a run that qualifies calls it from its own loop (`_train_one_sample_sweep_kernel`), chosen once."""
    lr = hyperparameters[{{ slots.lr }}]
{{ load_params(one_sample_sweep) }}
{{ one_sample_sweep.sample_lines|join("\\n")|indent(4, first=True) }}
{% for step, new_weight in one_sample_sweep.results[1:]|batch(2) %}
    steps[{{ loop.index0 }}] = {{ step }}
    w[{{ loop.index0 }}] = {{ new_weight }}
{% endfor %}
    return {{ one_sample_sweep.results[0] }}


{% endif %}
@numba.njit(cache=True, error_model="numpy")
def _sequential_step_kernel(w, X, Y, hyperparameters, previous, steps):
    """The sequential rule's step (symcompile.runtime.rules: MODEL_STEP); returns the loss at the starting weights."""
    lr, weight_decay = hyperparameters[{{ slots.lr }}], hyperparameters[{{ slots.weight_decay }}]
{% if one_sample_sweep %}
    if X.shape[0] == 1 and weight_decay == 0.0:  # one sample, as in the blog: the sweep as one straight-line program
        return _sequential_sweep_one_sample_kernel(w, X, Y, hyperparameters, previous, steps)
{% endif %}
    return _sequential_sweep_kernel(w, X, Y, lr, weight_decay, steps)


'''

# Each iteration: the exact Hessian, a Newton direction by Cholesky where the Hessian is positive definite, else
# the gradient's, then halve the step from 1 until the loss falls by Armijo's sufficient decrease. All in
# compiled code, no LAPACK: the Hessian is at most HESSIAN_MAX_PARAMS square.
NEWTON_KERNELS = '''\
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
        for j in range(n):
            direction[j] = grad[j]
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


@numba.njit(cache=True, error_model="numpy")
def _newton_step_kernel(w, X, Y, hyperparameters, previous, steps):
    """The Newton rule's step (symcompile.runtime.rules: MODEL_STEP); returns the loss at the starting weights."""
    return _newton_step(w, X, Y, np.empty_like(w), steps)


'''

MODEL_KERNELS = {"sequential": SEQUENTIAL_KERNELS, "newton": NEWTON_KERNELS}


def needs_sequential_sweep(default_rule: str) -> bool:
    """Whether a module gets the sequential rule's per-parameter programs: where the model trains with it by
    default (the blog's). Elsewhere the rule takes each weight's component of the full gradient in turn (the same
    steps, one fused pass per weight)."""
    return "sequential" in RULES and default_rule == "sequential"


def model_step_rules(has_hessian: bool) -> list[str]:
    """The rules whose model kernels a module gets: the registered ones of MODEL_KERNELS (newton only with the Hessian)."""
    return [name for name in MODEL_KERNELS if name in RULES and (name != "newton" or has_hessian)]
