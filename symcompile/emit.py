"""The emit stage (options.STAGES): `Kernel` -> `ModuleSource` (the module's text, its layout and its provenance).

Expressions are printed by `KernelPrinter` (SymPy's Python printer with safe
names); the module's layout lives in the Jinja templates `header.py.j2` and
`module.py.j2`. The header carries provenance and a digest of the body, and no
timestamp, so the same model always gives the same bytes.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np
import sympy as sp

from symcompile import update_rules
from symcompile.runtime import loops
from symcompile.data import target_loss
from symcompile.graph import tree_size
from symcompile.loops import Index, Loop, rolled
from symcompile.options import (
    FORMULA_MAX_NODES, HESSIAN_MAX_PARAMS, INLINE_KERNEL_MAX_NODES, JACOBIAN_MAX_PARAMS, ROLL_ABOVE_NODES,
    SAMPLE_BLOCK, choose,
)  # fmt: skip
from symcompile.printer import KernelPrinter, VectorPrinter
from symcompile.provenance import Provenance, sha256, versions, weights_digest
from symcompile.stable import helper_sources
from symcompile.standalone import package_name
from symcompile.writer import data_digest, data_file
from symcompile.stage_types import Kernel, ModuleSource


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


def _update_rule_template(name):
    """The Jinja text of an update rule's model kernels: `update_rules/<rule>.kernels`."""
    folder, _, file = name.partition("/")
    rule, _, part = file.rpartition(".")
    if folder != "update_rules" or rule not in update_rules.MODEL_KERNELS or part != "kernels":
        return None
    return update_rules.MODEL_KERNELS[rule]


def template_environment():
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(template_folder()), jinja2.FunctionLoader(_update_rule_template)]
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _loads(symbols, used, code_names, array, end="]"):
    """`name = array[...]` for each symbol the block uses."""
    return [f"{code_names[s]} = {array}{i}{end}" for i, s in enumerate(symbols) if s in used]


def program_size(code) -> int:
    """Expression nodes in a program, as trees (what the printer writes out)."""
    sizes = {}
    return sum(tree_size(expr, sizes) for expr in [e for _, e in code.assignments] + list(code.results))


def chosen_layout(kernel: Kernel, layout: str) -> str:
    """`layout`, with "auto" resolved by the program's size (options.ROLL_ABOVE_NODES).

    "unrolled": one line per temporary, which Numba compiles quickly for small programs and runs
    fastest. "rolled": runs of repeated statements become loops (symcompile/loops.py), so the code
    grows with a network's layers, not with its weights. "blocks": unrolled, with the loss and gradient
    computed over blocks of SAMPLE_BLOCK samples, the sample index innermost, so every statement is a
    vectorized loop; chosen where the model's data has that many samples (one sample gains nothing).
    "rolled-blocks": rolled, each loop's statement also a loop over such a block; never chosen by "auto":
    its epochs ran about 2.6x faster than rolled, but it compiled about 10x longer (docs/numerics.md, Blocks of samples).
    """
    if choose("layout", layout) != "auto":
        return layout
    if program_size(kernel.loss_and_grad) > ROLL_ABOVE_NODES:
        return "rolled"
    X = kernel.program.model.X
    return "blocks" if X is not None and len(X) >= SAMPLE_BLOCK else "unrolled"


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


def render_block(code, model, code_names, printer, param_name="", sample="n", in_blocks=False):
    """The template's view of a program in the unrolled layout; `sample` is the sample's row in X and Y:
    the loop variable, or 0 for a one-sample kernel. `in_blocks`: the program runs over a block of samples
    instead, reading sample `_s` of the block's inputs `_xb` and targets `_yb` (one row per column of X and Y)."""
    used = set().union(*(expr.free_symbols for _, expr in code.assignments), *(r.free_symbols for r in code.results))
    printer = printer.for_program(code.assignments)
    inputs, targets = ("_xb[", "_yb[") if in_blocks else (f"X[{sample}, ", f"Y[{sample}, ")
    end = ", _s]" if in_blocks else "]"
    return Block(
        param_loads=_loads(model.params, used, code_names, "w["),
        sample_lines=_loads(model.inputs, used, code_names, inputs, end)
        + _loads(model.targets, used, code_names, targets, end)
        + [f"{printer.doprint(sym)} = {printer.doprint(expr)}" for sym, expr in code.assignments],
        results=[printer.doprint(r) for r in code.results],
        param_name=comment_text(param_name),
    )


LOOP_INDEX = "k"


def _index_text(index: Index) -> str:
    """`base + stride*k` as short as it goes: `7`, `k`, `3 + k`, `12 - 2*k`."""
    base, stride = index.base, index.stride
    if stride == 0:
        return str(base)
    step = LOOP_INDEX if abs(stride) == 1 else f"{abs(stride)}*{LOOP_INDEX}"
    if base == 0 and stride > 0:
        return step
    return f"{base} {'+' if stride > 0 else '-'} {step}"


# The rolled layout's arrays as the rolled-blocks layout addresses them: one column per sample of the block.
BLOCK_ARRAYS = {"t[{}]": "t[{}, _s]", "X[n, {}]": "_xb[{}, _s]", "Y[n, {}]": "_yb[{}, _s]"}


def loop_lines(loop: Loop, printer, in_blocks=False, named=None) -> list[str]:
    """A rolled loop as Python: one statement, or `for k in range(count):` and its statement. `in_blocks`: each
    statement also runs over the block's samples (`for _s in range(_count):`, innermost, so LLVM vectorizes it),
    reading the arrays of BLOCK_ARRAYS and `named` ({symbol: the array element it is read from})."""
    arrays = BLOCK_ARRAYS if in_blocks else {}
    reads = {symbol: sp.Symbol(arrays.get(array, array).format(_index_text(index))) for symbol, array, index in loop.reads}
    index = _index_text(loop.index) if loop.index else None  # "loss +=" has no index
    destination = loop.destination.replace("t[{}]", arrays.get("t[{}]", "t[{}]"))
    line = f"{destination.format(index)} {printer.doprint(loop.expr.xreplace({**(named or {}), **reads}))}"
    if in_blocks:
        line = f"for _s in range(_count):\n    {line}"
    if loop.count == 1:
        return line.splitlines()
    return [f"for {LOOP_INDEX} in range({loop.count}):", *("    " + part for part in line.splitlines())]


def render_rolled_block(code, model, code_names, printer, result_destinations, in_blocks=False):
    """The template's view of a program in the rolled layout; result i goes to `result_destinations[i]`.
    `in_blocks`: the rolled-blocks layout, whose statements run over a block of samples (loop_lines)."""
    layout = rolled(code, model, result_destinations)
    if in_blocks:  # the inputs and targets read by name are read from the block's rows instead
        named = {s: sp.Symbol(f"_xb[{i}, _s]") for i, s in enumerate(model.inputs) if s in layout.named}
        named |= {s: sp.Symbol(f"_yb[{i}, _s]") for i, s in enumerate(model.targets) if s in layout.named}
        sample_loads = []
    else:
        named = {}
        sample_loads = _loads(model.inputs, layout.named, code_names, "X[n, ") + _loads(
            model.targets, layout.named, code_names, "Y[n, "
        )
    return Block(
        param_loads=_loads(model.params, layout.named, code_names, "w["),
        sample_lines=sample_loads + [line for loop in layout.loops for line in loop_lines(loop, printer, in_blocks, named)],
        results=[],
        n_temporaries=layout.n_temporaries,
    )


def kernel_blocks(kernel, printer, layout, vector_printer=None):
    """The forward and loss-and-gradient blocks in the chosen layout; the blocks layouts print their
    loss-and-gradient kernel with `vector_printer`, which records the vectorizable functions it calls."""
    model = kernel.program.model
    if layout == "blocks":  # the forward pass is not what training repeats: it stays one sample at a time
        return (
            render_block(kernel.forward, model, kernel.code_names, printer),
            render_block(kernel.loss_and_grad, model, kernel.code_names, vector_printer, in_blocks=True),
        )
    if layout == "unrolled":
        return (
            render_block(kernel.forward, model, kernel.code_names, printer),
            render_block(kernel.loss_and_grad, model, kernel.code_names, printer),
        )
    outputs = [("out[n, {}] =", i) for i in range(len(kernel.forward.results))]
    forward = render_rolled_block(kernel.forward, model, kernel.code_names, printer, outputs)
    if layout == "rolled-blocks":  # one running sum per sample slot: row 0 of _lanes the loss, row 1 + j grad[j]
        lanes = [("_lanes[0, _s] +=", None)] + [("_lanes[{}, _s] +=", 1 + j) for j in range(len(model.params))]
        return forward, render_rolled_block(kernel.loss_and_grad, model, kernel.code_names, vector_printer, lanes, True)
    loss_and_grad = [("loss +=", None)] + [("grad[{}] +=", j) for j in range(len(model.params))]
    return forward, render_rolled_block(kernel.loss_and_grad, model, kernel.code_names, printer, loss_and_grad)


def _expressions(*blocks):
    return [expr for code in blocks for expr in (*(rhs for _, rhs in code.assignments), *code.results)]


def _float_list(array):
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(array).ravel()) + "]"


def formula_text(label, expr):
    size = tree_size(expr)
    if size > FORMULA_MAX_NODES:
        return f"{label} = (an expression of {size} nodes; too long to show)"
    return f"{label} = {sp.sstr(expr)}"


def formula_lines(model, width=100):
    """The training function as docstring text, wrapped (escaped first, so a line break in a name shows as \\n)."""
    labels = [f"output[{i}]" if len(model.outputs) > 1 else "output" for i in range(len(model.outputs))]
    labels += [f"residual[{k}]" if len(model.residuals) > 1 else "residual" for k in range(len(model.residuals))]
    exprs = model.outputs + model.residuals + (model.loss,)
    equations = [formula_text(label, expr) for label, expr in zip(labels + ["loss"], exprs)]
    # Whole words only: a break inside one could split an escape such as \N across lines.
    wrap = textwrap.TextWrapper(width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
    return [line for text in equations for line in wrap.wrap(docstring_text(text))]


def named_full_batch_loop(model_step: str, name: str = "_train_full_batch_kernel") -> str:
    """The runtime's full-batch loop (symcompile.runtime.loops) as the module's kernel `name`, with the kernels
    it takes as arguments replaced by their names: this module's loss and gradient, plain gradient descent's
    step and `model_step` (a kernel's name, or the runtime's no-op). One source, several compilations."""
    source = inspect.getsource(loops._train_full_batch)
    header, _, body = source.partition('"""')
    body = body.partition('"""')[2]  # the docstring goes: the module's says where the code comes from
    names = {"loss_and_grad": "_loss_and_grad_kernel", "accuracy": "_loops.no_accuracy",
             "step": "_rules.inlined_gradient_descent_step", "model_step": model_step}  # fmt: skip
    names |= {name: f"_loops.{name}" for name in loops._train_full_batch.__code__.co_names if hasattr(loops, name)
              and callable(getattr(loops, name)) and not name.startswith("np")}  # fmt: skip
    names["copy_into"] = "_loops.inlined_copy_into"  # inlined: see symcompile.runtime.arrays
    body = re.sub(r"\b(\w+)\(", lambda m: names.get(m[1], m[1]) + "(", body)
    parameters = ", ".join(inspect.signature(loops._train_full_batch).parameters)
    parameters = parameters.partition("model_step, ")[2]
    return (
        '@numba.njit(cache=True, error_model="numpy")\n'
        f"def {name}({parameters}):\n"
        '    """symcompile.runtime.loops\' full-batch loop, calling this model\'s kernels by name (inlined)."""'
        + body.rstrip()
    )


def _update_rule_fields(model):
    """The template's view of the registered update rules: `train`'s arguments and the slots of the vector the
    model's own steps read.

    Hyperparameters the model's training settings hold (lr) keep their place among `train`'s positional
    arguments, with the module's default; the others are keyword-only, with the registry's default.
    """
    hyperparameters = update_rules.hyperparameters()
    positional = [h for h in hyperparameters if h.name in vars(model.training)]
    keyword = [h for h in hyperparameters if h.name not in vars(model.training)]
    return {
        "positional_hyperparameters": "".join(f'{h.name}=DEFAULTS["{h.name}"], ' for h in positional),
        "keyword_hyperparameters": "".join(f"{h.name}={h.default!r}, " for h in keyword),
        "hyperparameter_dict": ", ".join(f'"{h.name}": {h.name}' for h in hyperparameters),
        "slots": update_rules.slots(),
    }


def model_fields(model, listed=True) -> dict:
    """The template's variables that come from the model alone, whatever its kernels; `listed=False` leaves out
    PARAMS and INIT (for a wide network's module, which computes them)."""
    return {
        "params": repr(tuple(p.name for p in model.params)),
        "inputs": repr(tuple(s.name for s in model.inputs)),
        "targets": repr(tuple(s.name for s in model.targets)),
        "init": f"np.array({_float_list(model.init)}, dtype=np.float64)" if listed else "",
        "X": None if data_file(model) else _float_list(model.X),
        "Y": None if data_file(model) else _float_list(model.Y),
        "data_file": data_file(model),
        "data_digest": data_file(model) and data_digest(model.X, model.Y),
        "cache_name": CACHE_NAME_SLOT,
        "X_shape": f"{model.X.shape[0]}, {model.X.shape[1]}",
        "Y_shape": f"{model.Y.shape[0]}, {model.Y.shape[1]}",
        "defaults": repr(vars(model.training)),
        "standardization": model.standardization
        and {"mean": _float_list(model.standardization.mean), "scale": _float_list(model.standardization.scale)},
        "n_outputs": len(model.targets),
        "network_code": "",  # code the constants above need (dense modules of wide networks)
        "dense": "",  # the dense kernels' source, in place of the scalar kernels
        "sample_blocks": False,  # the scalar loss-and-gradient kernel over blocks of samples (layout "blocks")
        "sample_block": SAMPLE_BLOCK,  # their size
        "vecmath": "",  # the vectorizable functions it calls, imported from the runtime (vecmath.imported_names)
        "classifier": model.classifier,
        # The loss whose targets the runtime checks (symcompile/runtime/targets.py; "" for none)
        "target_loss": target_loss(model),
        "weights_digest": weights_digest(model),
        # What templates/hessian.py.j2 and residuals.py.j2 read for a module without those kernels (a dense
        # module's); `module_fields` replaces them with the scalar kernels' own.
        "n_params": model.n_params,
        "hessian": None,
        "hessian_entries": [],
        "model_step_rules": update_rules.model_step_rules(has_hessian=False),
        "standalone_runtime": "",
        "inline_kernel": False,  # a small scalar kernel, inlined into the module's own full-batch loop  # the runtime copy's package name, for a standalone build (render_module)
        "no_hessian": f"hessian is not available in a module with {NO_SCALAR_KERNELS}",
        "residual_model": residual_model(model),
        "residuals_per_sample": len(model.residuals) or len(model.targets),
        "residual_rows": [],
        "residuals_and_jacobian": None,
        "no_jacobian": f"residuals, jacobian and least_squares are not available in a module with {NO_SCALAR_KERNELS}",
        **_update_rule_fields(model),
    }


def residual_model(model) -> bool:
    """Whether the module has residuals, jacobian and least_squares (a dense module: raising why not). A network
    without its SymPy form has no residual expressions, but one with mean squared error is a residual model."""
    return bool(model.residuals) or (model.network is not None and model.network.shape.loss == "mean_squared_error")


# Why a module of a small model lacks the Hessian: a build emits it only when asked.
NOT_ASKED_HESSIAN = "this module was built without the Hessian: build it with --hessian (BuildOptions(hessian=True))"
# Why a dense module lacks the Hessian and Jacobian kernels (they come from the scalar pipeline's SymPy derivatives).
NO_SCALAR_KERNELS = "dense kernels; build it with --kernels scalar (kernels='scalar') for them"


def module_fields(kernel: Kernel, layout: str) -> dict:
    """Every variable templates/module.py.j2 (and the update rules' templates) read; `layout` resolved."""
    model = kernel.program.model
    printer = KernelPrinter(kernel.code_names)
    vector_printer = VectorPrinter(kernel.code_names)
    forward, loss_and_grad = kernel_blocks(kernel, printer, layout, vector_printer)
    return {
        **model_fields(model),
        "n_outputs": len(model.outputs),
        "helpers": helper_sources(_expressions(*kernel.programs())),
        "forward": forward,
        "loss_and_grad": loss_and_grad,
        "inline_kernel": layout == "unrolled" and program_size(kernel.loss_and_grad) <= INLINE_KERNEL_MAX_NODES,
        "named_full_batch_loop": named_full_batch_loop(
            "_sequential_step_kernel" if "sequential" in update_rules.model_step_rules(bool(kernel.hessian)) else "_rules.no_model_step"
        ),
        # The blog's case (one sample, sequential): a loop calling the straight-line sweep by name, chosen once
        # per run; through the dispatching `_sequential_step_kernel` an iteration took 1.25x as long.
        "one_sample_sweep_loop": named_full_batch_loop("_sequential_sweep_one_sample_kernel", "_train_one_sample_sweep_kernel"),
        "sweep": [render_block(b, model, kernel.code_names, printer, p.name) for b, p in zip(kernel.sweep, model.params)],
        "sweep_param_loads": _loads(model.params, set(model.params), kernel.code_names, "w["),
        "one_sample_sweep": kernel.one_sample_sweep
        and render_block(kernel.one_sample_sweep, model, kernel.code_names, printer, "", "0"),
        **_second_order_fields(kernel, printer),
        **_residual_fields(kernel, printer),
        **_sample_block_fields(vector_printer.used, layout),
    }


def _sample_block_fields(called: set[str], layout: str) -> dict:
    """The blocks layout's flag, and the vectorizable functions (`called`) its kernel calls, as the module imports
    them from the runtime."""
    if layout not in ("blocks", "rolled-blocks"):
        return {}
    from symcompile.vecmath import imported_names

    return {"sample_blocks": True, "vecmath": imported_names(called)}


def _second_order_fields(kernel: Kernel, printer) -> dict:
    """What templates/hessian.py.j2 reads: the loss-gradient-Hessian block, or why there is none."""
    model, n = kernel.program.model, len(kernel.program.model.params)
    hessian = kernel.hessian and render_block(kernel.hessian, model, kernel.code_names, printer)
    upper = [(i, j) for i in range(n) for j in range(i, n)]
    return {
        "n_params": n,
        "hessian": hessian,
        "model_step_rules": update_rules.model_step_rules(has_hessian=bool(hessian)),
        "hessian_entries": list(zip(upper, hessian.results[1 + n :])) if hessian else [],
        "no_hessian": (
            f"hessian was not emitted: this model has {n} parameters, more than HESSIAN_MAX_PARAMS = "
            f"{HESSIAN_MAX_PARAMS} (symcompile/options.py), beyond which its {n * (n + 1) // 2} second derivatives "
            "cost more to build and compile than Newton steps save"
            if n > HESSIAN_MAX_PARAMS else NOT_ASKED_HESSIAN
        ),
    }


def _residual_fields(kernel: Kernel, printer) -> dict:
    """What templates/residuals.py.j2 reads: the residuals-and-Jacobian block, or why there is none."""
    model = kernel.program.model
    k, n = len(model.residuals), len(model.params)
    code = kernel.residuals_and_jacobian
    return {
        "residual_model": bool(model.residuals),
        "residuals_per_sample": k,
        "residual_rows": ["n"] if k == 1 else [f"{k}*n + {i}" for i in range(k)],
        "residuals_and_jacobian": code and render_block(code, model, kernel.code_names, printer),
        "no_jacobian": (
            f"residuals, jacobian and least_squares were not emitted: this model has {n} parameters, more than "
            f"JACOBIAN_MAX_PARAMS = {JACOBIAN_MAX_PARAMS} (symcompile/options.py)"
        ),
    }


def header_fields(model, provenance: Provenance, formula=None, body="") -> dict:
    """Every variable templates/header.py.j2 reads; `formula`: the lines shown as the training function
    (default: the model's formulas); `body`: the module's body, whose public names the header lists."""
    return {
        "name": model.name,
        "description": "\n".join(docstring_text(line) for line in textwrap.wrap(model.description, 100)),
        "rebuild_command": docstring_text(provenance.rebuild_command),
        "formula": formula_lines(model) if formula is None else [docstring_text(line) for line in formula],
        "contract": contract_lines(body),
        **provenance.header_fields(),
    }


# The header's Contract is read from the rendered body, so that it lists what the module defines, not what
# someone remembered to write down. Read line by line, at the top level (and a public class's members), in the
# forms the templates write: `NAME = ...` (and `X, Y = ...`), `def name(...):` on one line, `name = other`,
# `class Name(...):`. tests/test_build.py checks the list against built modules' public names, both ways.
_CONSTANTS = re.compile(r"([A-Z][A-Z0-9_]*(?:, [A-Z][A-Z0-9_]*)*) = ")
_FUNCTION = re.compile(r"def ([a-z]\w*)\((.*)\)(?: -> .*)?:$")
_ALIASES = re.compile(r"((?:[a-z]\w* = )+)([a-z]\w*)$")
_RUNTIME_CLASS = re.compile(r"([A-Z]\w*) = _(\w+)\.([A-Z]\w*)\b")  # `FitResult = _least_squares.FitResult`
_CLASS = re.compile(r"class ([A-Z]\w*)\b(?:\(_(\w+)\.(\w+)\))?")
_FIELD = re.compile(r"    ([a-z]\w*): ")
_METHOD = re.compile(r"    def ([a-z]\w*)\(self,? ?(.*)\)(?: -> .*)?:$")


def _parameters(text: str) -> str:
    """The parameter names of a def line's parameter list, without their defaults: `w, X, *, lr`."""
    arguments = ast.parse(f"def f({text}): pass").body[0].args
    names = [a.arg for a in arguments.posonlyargs + arguments.args]
    if arguments.vararg or arguments.kwonlyargs:
        names.append("*" + (arguments.vararg.arg if arguments.vararg else ""))
    names += [a.arg for a in arguments.kwonlyargs] + (["**" + arguments.kwarg.arg] if arguments.kwarg else [])
    return ", ".join(names)


def contract(body: str) -> tuple[list[str], dict[str, str], dict[str, tuple[list[str], list[str]]]]:
    """The public names `body` defines, in its order: (constants, {function: its parameters}, {class: (its
    fields, its methods with their parameters)})."""
    constants, functions, classes = [], {}, {}
    members = None  # the public class being read
    for line in body.splitlines():
        if line.startswith(" ") or not line:  # most lines: inside functions
            if members is not None and (field := _FIELD.match(line)):
                members[0].append(field[1])
            elif members is not None and (method := _METHOD.match(line)):
                members[1].append(f"{method[1]}({_parameters(method[2])})")
            continue
        members = None
        if names := _CONSTANTS.match(line):
            constants += [name for name in names[1].split(", ") if name not in constants]
        elif function := _FUNCTION.match(line):
            functions.setdefault(function[1], _parameters(function[2]))
        elif aliases := _ALIASES.match(line):
            for name in aliases[1].split(" = ")[:-1]:
                functions.setdefault(name, functions[aliases[2]])
        elif runtime_class := _RUNTIME_CLASS.match(line):
            classes[runtime_class[1]] = _runtime_members(runtime_class[2], runtime_class[3])
        elif cls := _CLASS.match(line):
            members = classes.setdefault(cls[1], ([], []))
            if cls[2]:  # a subclass of a runtime class (`class TrainResult(_training.TrainResult):`): its members
                fields, methods = _runtime_members(cls[2], cls[3])
                members[0].extend(fields)
                members[1].extend(methods)
    return constants, functions, classes


def _runtime_members(module: str, name: str) -> tuple[list[str], list[str]]:
    """The fields and public methods (with their parameters) of the NamedTuple `name` of symcompile.runtime.`module`."""
    cls = getattr(importlib.import_module(f"symcompile.runtime.{module}"), name)
    methods = [
        f"{method}({', '.join(list(inspect.signature(value).parameters)[1:])})"
        for method, value in vars(cls).items() if inspect.isfunction(value) and not method.startswith("_")
    ]  # fmt: skip
    return list(cls._fields), methods


def contract_lines(body: str, width=100) -> list[str]:
    """The header's Contract: the constants on a line, each class with its fields and methods, each function
    with its parameters; wrapped to `width`."""
    constants, functions, classes = contract(body)
    entries = [", ".join(constants)] if constants else []
    entries += [
        f"{name}: {', '.join(fields)}" + (f"; {', '.join(methods)}" if methods else "")
        for name, (fields, methods) in classes.items()
    ]
    entries += [f"{name}({parameters})" for name, parameters in functions.items()]
    wrap = textwrap.TextWrapper(width - 4, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
    return [line for entry in entries for line in wrap.wrap(entry)]


# The name a generated module registers itself under (templates/module.py.j2 says why): rendered into
# this slot, then replaced by a name derived from the body's text, so the same body always gets the same name.
CACHE_NAME_SLOT = "__symcompile_cache_name__"


def module_cache_name(body: str) -> str:
    return f"_symcompile_{sha256(body)[:16]}"


def render_module(model, fields: dict, provenance: Provenance, formula=None, standalone=False) -> ModuleSource:
    """Header and body of a module whose body's variables are `fields` (provenance's body_digest filled in);
    `standalone`: it imports the copy of the runtime that `build --standalone` writes beside it."""
    env = template_environment()
    body = env.get_template("module.py.j2").render(fields | {"standalone_runtime": standalone and package_name()})
    body = body.replace(CACHE_NAME_SLOT, module_cache_name(body))
    provenance = replace(provenance, body_digest=sha256(body))
    header = env.get_template("header.py.j2").render(header_fields(model, provenance, formula, body))
    return ModuleSource(header + body, provenance.layout, provenance)


def emit(kernel: Kernel, layout: str, *, rewrites: tuple[str, ...], rebuild_command: str, model_digest: str,
         standalone: bool = False) -> ModuleSource:  # fmt: skip
    """The module's source; `layout` is "auto" or one of the layouts `chosen_layout` describes."""
    layout = chosen_layout(kernel, layout)
    provenance = Provenance(
        versions=versions(),
        gradient=kernel.program.method,
        layout=layout,
        rewrites=rewrites,
        model_digest=model_digest,
        body_digest="",
        rebuild_command=rebuild_command,
    )
    return render_module(kernel.program.model, module_fields(kernel, layout), provenance, standalone=standalone)
