"""The update rules' generated part: the steps that need more of the model than its gradient.

The rules themselves (their hyperparameters, state and compiled steps) are defined once in the runtime,
`symcompile.runtime.rules`, which this module re-exports for the compiler's stages. Two rules take a step that
depends on the model, generated from its SymPy form into the module as kernels of signature
`symcompile.runtime.rules.MODEL_STEP`:

- "sequential" (the blog's): Gauss-Seidel order, each parameter's new value used for the next parameter's
  derivative: one program per parameter (`Kernel.sweep`, built by symcompile/optimize.py) and, for one sample,
  the whole sweep as one straight-line program;
- "newton": a damped Newton step on the exact Hessian (templates/hessian.py.j2), only in modules that have it.

Their kernels are templates (templates/update_rule_<rule>.py.j2, `MODEL_KERNELS`), included by
templates/module.py.j2 as emit chooses (`model_step_templates`).
"""

from __future__ import annotations

from symcompile.runtime.rules import (  # noqa: F401 (the registry, as the compiler's stages use it)
    BETAS, EPS, GD_RULE, LEARNING_RATE, MOMENTUM, NESTEROV, RULES, WEIGHT_DECAY, Hyperparameter, UpdateRule,
    hyperparameters, register, rule_of, slots,
)  # fmt: skip

# The model kernels of each rule that has them: a template under templates/, included by templates/module.py.j2
# like its other parts (the fields it reads: symcompile/emit.py, TEMPLATE_FIELDS).
MODEL_KERNELS = {"sequential": "update_rule_sequential.py.j2", "newton": "update_rule_newton.py.j2"}


def needs_sequential_sweep(default_rule: str) -> bool:
    """Whether a module gets the sequential rule's per-parameter programs: where the model trains with it by
    default (the blog's). Elsewhere the rule takes each weight's component of the full gradient in turn (the same
    steps, one fused pass per weight)."""
    return "sequential" in RULES and default_rule == "sequential"


def model_step_rules(has_hessian: bool) -> list[str]:
    """The rules whose model kernels a module gets: the registered ones of MODEL_KERNELS (newton only with the Hessian)."""
    return [name for name in MODEL_KERNELS if name in RULES and (name != "newton" or has_hessian)]


def model_step_templates(has_hessian: bool) -> list[str]:
    """The templates of those rules' model kernels, in the module's order."""
    return [MODEL_KERNELS[name] for name in model_step_rules(has_hessian)]
