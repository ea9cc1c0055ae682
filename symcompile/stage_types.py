"""The types the stages hand on, in one place: Model -> Program -> Kernel -> ModuleSource -> BuildResult.

Each is frozen: a stage reads the one before and makes a new one. `Model` (symcompile/model.py) is the
stage types' first, defined with the checks that make one; these are the compiler's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    import sympy as sp

    from symcompile.model import Model
    from symcompile.provenance import Provenance


@dataclass(frozen=True)
class StraightLine:
    """`assignments` run in order, then `results` are evaluated."""

    assignments: tuple[tuple[sp.Symbol, sp.Expr], ...]
    results: tuple[sp.Expr, ...]


@dataclass(frozen=True)
class Program:
    """The model's numeric work as straight-line code, and the gradient method that derived it."""

    model: Model
    forward: StraightLine
    loss_and_grad: StraightLine  # results: (loss, dloss/dparam for each param)
    method: str  # "diff" or "reverse"
    # results: (loss, gradient..., H[i, j] for i <= j row by row); None above options.HESSIAN_MAX_PARAMS
    hessian: StraightLine | None = None
    # results: (r_k for each residual, then dr_k/dparam_j residual by residual); None for a model without
    # residuals, or above options.JACOBIAN_MAX_PARAMS
    residuals_and_jacobian: StraightLine | None = None


@dataclass(frozen=True)
class Kernel:
    """The programs the module runs, after CSE, with everything emit needs to print them.

    `code_names` maps every symbol the programs use (the model's, the
    temporaries, the compiler's own locals) to its identifier in generated
    code; it is a read-only copy, so a Kernel can be emitted on its own.
    """

    program: Program
    forward: StraightLine
    loss_and_grad: StraightLine
    # One program per parameter for the sequential sweep: sweep[j].results is
    # (dloss/dparam_j,), and sweep[0] also yields the loss, since it runs at
    # the weights the iteration started from. Empty when the model has more
    # than UNROLLED_SWEEP_MAX_PARAMS parameters: the sweep then calls the
    # fused kernel once per parameter (same values, code that does not grow
    # with the square of the model).
    sweep: tuple[StraightLine, ...]
    # The whole sweep over one sample as one program: results are the loss at
    # the starting weights, then each parameter's step and new value in turn.
    # None for models too large for it to be worth its build time.
    one_sample_sweep: StraightLine | None
    # Loss, gradient and Hessian in one pass, and a residual model's residuals with their Jacobian
    # (see differentiate.Program); None where the Program has none.
    hessian: StraightLine | None
    residuals_and_jacobian: StraightLine | None
    ops_before: int
    ops_after: int
    code_names: Mapping[sp.Symbol, str]

    def programs(self):
        """Every straight-line program the module runs."""
        extra = (self.one_sample_sweep, self.hessian, self.residuals_and_jacobian)
        return (self.forward, self.loss_and_grad, *self.sweep, *(code for code in extra if code))


@dataclass(frozen=True)
class ModuleSource:
    """The generated module's text, the layout its kernels were laid out in, and what its header records."""

    text: str
    layout: str  # "unrolled", "rolled", "blocks" or "rolled-blocks" ("auto" resolved)
    provenance: Provenance


@dataclass(frozen=True)
class BuildResult:
    """What a build did: the module's path, whether its bytes changed, the rewrites applied, the operation counts
    before and after CSE, the gradient method and layout used ("auto" resolved), and the seconds of each stage
    (model making included when the caller timed it)."""

    path: Path
    changed: bool
    rewrites: tuple[str, ...]
    ops_before: int
    ops_after: int
    gradient: str
    layout: str
    stage_seconds: dict[str, float]
    kernels: str = "scalar"  # or "dense" (symcompile/dense.py): then no rewrite, differentiate or optimize stage
