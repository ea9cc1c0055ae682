"""Stage 5, emit: `Kernel` -> Python source text.

Expressions are printed by `KernelPrinter` (SymPy's Python printer with safe
names); the module's layout lives in the Jinja templates `header.py.j2` and
`module.py.j2`. The header carries provenance and a digest of the body, and no
timestamp, so the same model always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import jinja2
import numpy as np
import sympy as sp

from symcompile.names import NameTable
from symcompile.optimize import Kernel
from symcompile.printer import KernelPrinter
from symcompile.stable import helpers_used


@dataclass(frozen=True)
class Block:
    """One straight-line program as the template needs it: printed lines plus what it loads."""

    param_loads: list[str]  # weights into locals, before the sample loop
    sample_lines: list[str]  # one sample's inputs and targets, then the straight-line code
    results: list[str]
    param_name: str = ""


def template_folder() -> Path:
    """The templates: the checkout's templates/ when run from source, else the installed package data.

    The checkout is tried first so that a source tree never renders with the
    templates of some other installed copy of symcompile.
    """
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "templates" / "module.py.j2").is_file():
        return checkout / "templates"
    return Path(str(resources.files("symcompile.templates")))


def template_environment():
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folder()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def versions():
    from symcompile import __version__

    return {"symcompile": __version__} | {pkg: metadata.version(pkg) for pkg in ("sympy", "numba", "numpy")}


def _loads(symbols, used, names, array):
    """`name = array[...]` for each symbol the block uses."""
    return [f"{names.code[s]} = {array}{i}]" for i, s in enumerate(symbols) if s in used]


def docstring_text(text: str) -> str:
    """`text` escaped for a triple-quoted docstring: it reads the same, and cannot end the string early.

    Symbol names, descriptions and spec paths are the user's text; a quote, a
    backslash or a line break in them must never become code.
    """
    return "".join(
        "\\" + char if char in '\\"' else char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def comment_text(text: str) -> str:
    """`text` for a one-line comment: as it is if printable, else its repr (no line breaks)."""
    return text if text.isprintable() else repr(text)


def render_block(code, model, names, printer, param_name="", sample="n"):
    """`sample` is the sample's row in X and Y: the loop variable, or 0 for a one-sample kernel."""
    used = set().union(*(expr.free_symbols for _, expr in code.assignments), *(r.free_symbols for r in code.results))
    return Block(
        param_loads=_loads(model.params, used, names, "w["),
        sample_lines=_loads(model.inputs, used, names, f"X[{sample}, ")
        + _loads(model.targets, used, names, f"Y[{sample}, ")
        + [f"{printer.doprint(sym)} = {printer.doprint(expr)}" for sym, expr in code.assignments],
        results=[printer.doprint(r) for r in code.results],
        param_name=comment_text(param_name),
    )


def _expressions(*blocks):
    return [expr for code in blocks for expr in (*(rhs for _, rhs in code.assignments), *code.results)]


def _float_list(array):
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(array).ravel()) + "]"


def formula_lines(model, width=100):
    """The training function as docstring text, wrapped (escaped first, so a line break in a name shows as \\n)."""
    labels = [f"output[{i}]" if len(model.outputs) > 1 else "output" for i in range(len(model.outputs))]
    equations = [f"{label} = {sp.sstr(expr)}" for label, expr in zip(labels + ["loss"], model.outputs + (model.loss,))]
    # Whole words only: a break inside one could split an escape such as \N across lines.
    wrap = textwrap.TextWrapper(width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
    return [line for text in equations for line in wrap.wrap(docstring_text(text))]


def emit(kernel: Kernel, names: NameTable, options: dict, rebuild_command: str, model_digest: str) -> str:
    model = kernel.program.model
    printer = KernelPrinter(names.code)
    env = template_environment()
    body = env.get_template("module.py.j2").render(
        params=repr(tuple(p.name for p in model.params)),
        inputs=repr(tuple(s.name for s in model.inputs)),
        targets=repr(tuple(s.name for s in model.targets)),
        init=_float_list(model.init),
        X=_float_list(model.X),
        Y=_float_list(model.Y),
        X_shape=f"{model.X.shape[0]}, {model.X.shape[1]}",
        Y_shape=f"{model.Y.shape[0]}, {model.Y.shape[1]}",
        defaults=repr(vars(model.training)),
        helpers=helpers_used(_expressions(*kernel.programs())),
        forward=render_block(kernel.forward, model, names, printer),
        loss_and_grad=render_block(kernel.loss_and_grad, model, names, printer),
        sweep=[render_block(b, model, names, printer, p.name) for b, p in zip(kernel.sweep, model.params)],
        one_sample_sweep=kernel.one_sample_sweep and render_block(kernel.one_sample_sweep, model, names, printer, "", "0"),
    )
    header = env.get_template("header.py.j2").render(
        name=model.name,
        description="\n".join(docstring_text(line) for line in textwrap.wrap(model.description, 100)),
        rebuild_command=docstring_text(rebuild_command),
        formula=formula_lines(model),
        versions=versions(),
        options=", ".join(f"{k}={v}" for k, v in options.items()),
        digest=hashlib.sha256(body.encode()).hexdigest(),
        model_digest=model_digest,
    )
    return header + body
