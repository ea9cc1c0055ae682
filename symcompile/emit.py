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

from symcompile.errors import SymcompileError
from symcompile.graph import tree_size
from symcompile.loops import rolled
from symcompile.names import NameTable
from symcompile.optimize import Kernel
from symcompile.printer import KernelPrinter
from symcompile.writer import data_digest
from symcompile.stable import helpers_used


# The layout switch. "unrolled": one line per temporary, which Numba compiles quickly for small
# programs and runs fastest. "rolled": runs of repeated statements become loops (symcompile/loops.py),
# so the code grows with a network's layers, not with its weights; Numba's compile time grows faster
# than linearly with the size of a function, so large models compile many times faster this way
# (BENCHMARKS.md, Scaling). "auto" rolls programs of more than ROLL_ABOVE_NODES expression nodes.
LAYOUTS = ("auto", "unrolled", "rolled")
ROLL_ABOVE_NODES = 2000


@dataclass(frozen=True)
class Block:
    """One straight-line program as the template needs it: printed lines plus what it loads."""

    param_loads: list[str]  # weights into locals, before the sample loop
    sample_lines: list[str]  # one sample's inputs and targets, then the straight-line code
    results: list[str]  # the results' expressions; empty when rolled (sample_lines then write them)
    param_name: str = ""
    n_temporaries: int = 0  # rolled layout: the size of the temporaries array `t`; 0 when unrolled


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


def program_size(code) -> int:
    """Expression nodes in a program, as trees (what the printer writes out)."""
    sizes = {}
    return sum(tree_size(expr, sizes) for expr in [e for _, e in code.assignments] + list(code.results))


def chosen_layout(kernel: Kernel, layout: str) -> str:
    if layout not in LAYOUTS:
        raise SymcompileError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        return "rolled" if program_size(kernel.loss_and_grad) > ROLL_ABOVE_NODES else "unrolled"
    return layout


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
    """The template's view of a program in the unrolled layout; `sample` is the sample's row in X and Y:
    the loop variable, or 0 for a one-sample kernel."""
    used = set().union(*(expr.free_symbols for _, expr in code.assignments), *(r.free_symbols for r in code.results))
    return Block(
        param_loads=_loads(model.params, used, names, "w["),
        sample_lines=_loads(model.inputs, used, names, f"X[{sample}, ")
        + _loads(model.targets, used, names, f"Y[{sample}, ")
        + [f"{printer.doprint(sym)} = {printer.doprint(expr)}" for sym, expr in code.assignments],
        results=[printer.doprint(r) for r in code.results],
        param_name=comment_text(param_name),
    )


def render_rolled_block(code, model, names, printer, result_destinations):
    """The template's view of a program in the rolled layout; result i goes to `result_destinations[i]`."""
    layout = rolled(code, model, printer, result_destinations)
    return Block(
        param_loads=_loads(model.params, layout.named, names, "w["),
        sample_lines=_loads(model.inputs, layout.named, names, "X[n, ")
        + _loads(model.targets, layout.named, names, "Y[n, ")
        + layout.lines,
        results=[],
        n_temporaries=layout.n_temporaries,
    )


def kernel_blocks(kernel, names, printer, layout):
    """The forward and loss-and-gradient blocks in the chosen layout."""
    model = kernel.program.model
    if layout == "unrolled":
        return (
            render_block(kernel.forward, model, names, printer),
            render_block(kernel.loss_and_grad, model, names, printer),
        )
    outputs = [("out[n, {}] =", i) for i in range(len(kernel.forward.results))]
    loss_and_grad = [("loss +=", None)] + [("grad[{}] +=", j) for j in range(len(model.params))]
    return (
        render_rolled_block(kernel.forward, model, names, printer, outputs),
        render_rolled_block(kernel.loss_and_grad, model, names, printer, loss_and_grad),
    )


def _expressions(*blocks):
    return [expr for code in blocks for expr in (*(rhs for _, rhs in code.assignments), *code.results)]


def _float_list(array):
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(array).ravel()) + "]"


# Formulas larger than this (as a tree: about two characters a node) are too long to read in a comment.
FORMULA_MAX_NODES = 1000


def formula_text(label, expr):
    size = tree_size(expr)
    if size > FORMULA_MAX_NODES:
        return f"{label} = (an expression of {size} nodes; too long to show)"
    return f"{label} = {sp.sstr(expr)}"


def formula_lines(model, width=100):
    """The training function as docstring text, wrapped (escaped first, so a line break in a name shows as \\n)."""
    labels = [f"output[{i}]" if len(model.outputs) > 1 else "output" for i in range(len(model.outputs))]
    equations = [formula_text(label, expr) for label, expr in zip(labels + ["loss"], model.outputs + (model.loss,))]
    # Whole words only: a break inside one could split an escape such as \N across lines.
    wrap = textwrap.TextWrapper(width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
    return [line for text in equations for line in wrap.wrap(docstring_text(text))]


# Default data of more values than this goes to a file beside the module (<name>.npz) rather than into
# its text as literals: a million rows would make a module of tens of MiB that is slow to write and read.
INLINE_DATA_VALUES = 4096


def data_file(model) -> str | None:
    """The name of the module's data file, or None when its default data is written into the module."""
    return f"{model.name}.npz" if model.X.size + model.Y.size > INLINE_DATA_VALUES else None


# The name a generated module registers itself under (templates/module.py.j2 says why): rendered into
# this slot, then replaced by a name derived from the body's text, so the same body always gets the same name.
CACHE_NAME_SLOT = "__symcompile_cache_name__"


def module_cache_name(body: str) -> str:
    return f"_symcompile_{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def emit(
    kernel: Kernel, names: NameTable, options: dict, rebuild_command: str, model_digest: str, layout: str = "unrolled"
) -> str:
    """The module's source; `layout` is "unrolled" or "rolled" (see `chosen_layout`)."""
    model = kernel.program.model
    printer = KernelPrinter(names.code)
    forward, loss_and_grad = kernel_blocks(kernel, names, printer, layout)
    env = template_environment()
    body = env.get_template("module.py.j2").render(
        params=repr(tuple(p.name for p in model.params)),
        inputs=repr(tuple(s.name for s in model.inputs)),
        targets=repr(tuple(s.name for s in model.targets)),
        init=_float_list(model.init),
        X=None if data_file(model) else _float_list(model.X),
        Y=None if data_file(model) else _float_list(model.Y),
        data_file=data_file(model),
        data_digest=data_file(model) and data_digest(model.X, model.Y),
        X_shape=f"{model.X.shape[0]}, {model.X.shape[1]}",
        Y_shape=f"{model.Y.shape[0]}, {model.Y.shape[1]}",
        defaults=repr(vars(model.training)),
        helpers=helpers_used(_expressions(*kernel.programs())),
        n_outputs=len(model.outputs),
        forward=forward,
        loss_and_grad=loss_and_grad,
        sweep=[render_block(b, model, names, printer, p.name) for b, p in zip(kernel.sweep, model.params)],
        one_sample_sweep=kernel.one_sample_sweep and render_block(kernel.one_sample_sweep, model, names, printer, "", "0"),
        cache_name=CACHE_NAME_SLOT,
    )
    body = body.replace(CACHE_NAME_SLOT, module_cache_name(body))
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
