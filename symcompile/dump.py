"""`python -m symcompile build --dump-after STAGE`: a stage's output as text, and nothing written.

For reading what the compiler did to a model, one stage at a time: the model
as checked, after the rewrites, the straight-line programs the gradient
method produced, the programs after CSE with their code names, and the
module's source.
"""

from __future__ import annotations

import sympy as sp

from symcompile.differentiate import StraightLine
from symcompile.options import DUMP_STAGES  # noqa: F401 (re-exported)
from symcompile.errors import SymcompileError
from symcompile.pipeline import stage_names, stages


def model_text(model) -> str:
    if not model.symbolic:  # an MLP too wide for its SymPy form by default (symcompile.mlp)
        return f"model {model.name}\n  network {model.network}\n  training {vars(model.training)}"
    lines = [
        f"model {model.name}",
        f"  params  {', '.join(p.name for p in model.params)}",
        f"  inputs  {', '.join(s.name for s in model.inputs)}",
        f"  targets {', '.join(s.name for s in model.targets)}",
    ]
    lines += [f"  output[{i}] = {sp.sstr(o)}" for i, o in enumerate(model.outputs)]
    lines += [f"  loss = {sp.sstr(model.loss)}", f"  training {vars(model.training)}"]
    return "\n".join(lines)


def program_text(title, code: StraightLine, names=None) -> str:
    """One straight-line program: its assignments, then its results, one per line."""

    def name(symbol):
        return names.get(symbol, symbol.name) if names else symbol.name

    lines = [f"{title}: {len(code.assignments)} assignments, {len(code.results)} results"]
    lines += [f"  {name(sym)} = {sp.sstr(expr)}" for sym, expr in code.assignments]
    lines += [f"  result[{i}] = {sp.sstr(r)}" for i, r in enumerate(code.results)]
    return "\n".join(lines)


def dump_after(model, options, stage: str) -> str:
    """The text of `stage`'s output for `model` (stages after it are not run)."""
    if stage not in stage_names(model, options):
        raise SymcompileError(
            f"{model.name} is built on dense kernels, whose stages are {' -> '.join(stage_names(model, options))}: "
            f"no {stage} stage to show (--kernels scalar builds it through every stage)"
        )
    if stage == "model":
        return model_text(model)
    for name, output in stages(model, options):
        if name == stage:
            return _text(name, output)
    raise ValueError(stage)


def _text(stage, output) -> str:
    if stage == "rewrite":
        return model_text(output)
    if stage == "differentiate":
        return "\n".join(
            [f"gradient by {output.method}", program_text("forward", output.forward),
             program_text("loss_and_grad", output.loss_and_grad), *_second_order_texts(output)]
        )  # fmt: skip
    if stage == "optimize":
        parts = [f"{output.ops_before} -> {output.ops_after} operations after CSE"]
        parts += [program_text("forward", output.forward, output.code_names),
                  program_text("loss_and_grad", output.loss_and_grad, output.code_names)]  # fmt: skip
        parts += [program_text(f"sweep[{j}]", code, output.code_names) for j, code in enumerate(output.sweep)]
        if output.one_sample_sweep:
            parts.append(program_text("one_sample_sweep", output.one_sample_sweep, output.code_names))
        return "\n".join(parts + _second_order_texts(output, output.code_names))
    return output.text.rstrip("\n")


def _second_order_texts(output, code_names=None) -> list[str]:
    """The Hessian and residual-Jacobian programs of a Program or Kernel, where it has them."""
    programs = (("hessian", output.hessian), ("residuals_and_jacobian", output.residuals_and_jacobian))
    return [program_text(name, code, code_names) for name, code in programs if code is not None]
