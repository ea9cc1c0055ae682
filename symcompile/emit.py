"""The emit stage (options.STAGES): `Kernel` -> `ModuleSource` (the module's text, its layout and its provenance).

Expressions are printed by `KernelPrinter` (SymPy's Python printer with safe
names); the module's layout lives in the Jinja templates `header.py.j2` and
`module.py.j2`. The header carries provenance and a digest of the body, and no
timestamp, so the same model always gives the same bytes.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from dataclasses import dataclass, replace
from typing import Literal, TypedDict

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
from symcompile.static_code import pasted
from symcompile.standalone import package_name, template_folder
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


def template_environment():
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folder()),
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
    reads = {
        symbol: sp.Symbol(arrays.get(array, array).format(_index_text(index))) for symbol, array, index in loop.reads
    }
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
        sample_lines=sample_loads
        + [line for loop in layout.loops for line in loop_lines(loop, printer, in_blocks, named)],
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
    loop = loops._train_full_batch
    calls = {"loss_and_grad": "_loss_and_grad_kernel", "accuracy": "_loops.no_accuracy",
             "step": "_rules.inlined_gradient_descent_step", "model_step": model_step}  # fmt: skip
    calls |= {called: f"_loops.{called}" for called in loop.__code__.co_names if hasattr(loops, called)
              and callable(getattr(loops, called)) and not called.startswith("np")}  # fmt: skip
    # the helpers called every iteration, inlined where the runtime has an inlined copy (symcompile.runtime.arrays)
    calls |= {called: f"_loops.inlined_{called}" for called in calls if hasattr(loops, f"inlined_{called}")}
    docstring = "symcompile.runtime.loops' full-batch loop, calling this model's kernels by name (inlined)."
    run_slots = {slot: f"_loops.{slot}" for slot in loops.RUN_SLOTS}  # run's slots, named in the runtime
    return pasted(loop, name=name, docstring=docstring, calls=calls, names=run_slots, first_parameter="own_step")


def _update_rule_fields(model):
    """The template's view of the registered update rules: `train`'s arguments and the slots of the vector the
    model's own steps read.

    Hyperparameters the model's training settings hold (lr) keep their place among `train`'s positional
    arguments, with the module's default; the others are keyword-only, with the registry's default.
    """
    hyperparameters = update_rules.hyperparameters()
    positional, keyword = _train_hyperparameters(model)
    return {
        "positional_hyperparameters": "".join(f'{h.name}=DEFAULTS["{h.name}"], ' for h in positional),
        "keyword_hyperparameters": "".join(f"{h.name}={h.default!r}, " for h in keyword),
        "hyperparameter_dict": ", ".join(f'"{h.name}": {h.name}' for h in hyperparameters),
        "slots": update_rules.slots(),
    }


def _train_hyperparameters(model):
    """The update rules' hyperparameters that `train` takes positionally (those the model's training settings hold),
    and those it takes by keyword."""
    hyperparameters = update_rules.hyperparameters()
    return (
        [h for h in hyperparameters if h.name in vars(model.training)],
        [h for h in hyperparameters if h.name not in vars(model.training)],
    )


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
        "X_shape": f"{model.X.shape[0]}, {model.X.shape[1]}",
        "Y_shape": f"{model.Y.shape[0]}, {model.Y.shape[1]}",
        "defaults": repr(vars(model.training)),
        "standardization": model.standardization
        and {"mean": _float_list(model.standardization.mean), "scale": _float_list(model.standardization.scale)},
        "n_outputs": len(model.targets),
        "network_code": "",  # code the constants above need (dense modules of wide networks)
        "dense": "",  # the dense kernels' source, in place of the scalar kernels
        "dtype": model.dtype,
        "loss_and_grad_template": "loss_and_grad_samples.py.j2",  # or over blocks of samples (_sample_block_fields)
        "sample_block": SAMPLE_BLOCK,  # their size
        "vecmath": "",  # the vectorizable functions it calls, imported from the runtime (vecmath.imported_names)
        "classifier": model.classifier,
        "accuracy": ACCURACY.get(model.classifier),
        # The loss whose targets the runtime checks (symcompile/runtime/targets.py; "" for none)
        "target_loss": target_loss(model),
        "weights_digest": weights_digest(model),
        # What templates/hessian.py.j2 and residuals.py.j2 read for a module without those kernels (a dense
        # module's); `module_fields` replaces them with the scalar kernels' own.
        "n_params": model.n_params,
        "hessian": None,
        "hessian_entries": [],
        "model_kernel_templates": update_rules.model_step_templates(has_hessian=False),
        "inline_kernel": False,  # a small scalar kernel, inlined into the module's own full-batch loop
        "full_batch_loops": [],  # that loop's sources, where it is inlined
        "no_hessian": f"hessian is not available in a module with {NO_SCALAR_KERNELS}",
        "residual_model": residual_model(model),
        "residuals_per_sample": len(model.residuals) or len(model.targets),
        "residual_rows": [],
        "residuals_and_jacobian": None,
        "no_jacobian": f"residuals, jacobian and least_squares are not available in a module with {NO_SCALAR_KERNELS}",
        **_update_rule_fields(model),
    }


@dataclass(frozen=True)
class Accuracy:
    """A classifier's accuracy: the runtime's function that counts the samples classified right, and its rule."""

    function: str  # in symcompile.runtime.loops
    rule: str  # for the docstring of the module's `accuracy`


ACCURACY = {
    "binary": Accuracy("threshold_accuracy", "each output on the same side of 0.5 as its target"),
    "softmax": Accuracy("class_accuracy", "the largest output is the target's class"),
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
    """The fields of templates/module.py.j2 and the templates it includes (ModuleContext, less the runtime's import
    and the cache name, which render_module adds) for the scalar kernels; `layout` resolved."""
    model = kernel.program.model
    printer = KernelPrinter(kernel.code_names)
    vector_printer = VectorPrinter(kernel.code_names)
    forward, loss_and_grad = kernel_blocks(kernel, printer, layout, vector_printer)
    inline_kernel = layout == "unrolled" and program_size(kernel.loss_and_grad) <= INLINE_KERNEL_MAX_NODES
    return {
        **model_fields(model),
        "n_outputs": len(model.outputs),
        "helpers": helper_sources(_expressions(*kernel.programs())),
        "forward": forward,
        "loss_and_grad": loss_and_grad,
        "inline_kernel": inline_kernel,
        "full_batch_loops": _full_batch_loops(kernel) if inline_kernel else [],
        "sweep": [
            render_block(b, model, kernel.code_names, printer, p.name) for b, p in zip(kernel.sweep, model.params)
        ],
        "sweep_param_loads": _loads(model.params, set(model.params), kernel.code_names, "w["),
        "one_sample_sweep": kernel.one_sample_sweep
        and render_block(kernel.one_sample_sweep, model, kernel.code_names, printer, "", "0"),
        **_second_order_fields(kernel, printer),
        **_residual_fields(kernel, printer),
        **_sample_block_fields(vector_printer.used, layout),
    }


def _full_batch_loops(kernel: Kernel) -> list[str]:
    """The module's own full-batch loops, calling its inlined loss-and-gradient kernel by name
    (named_full_batch_loop)."""
    sequential = "sequential" in update_rules.model_step_rules(bool(kernel.hessian))
    loops = [named_full_batch_loop("_sequential_step_kernel" if sequential else "_rules.no_model_step")]
    if sequential and kernel.one_sample_sweep:
        # The blog's case (one sample, sequential): a loop calling the straight-line sweep by name, chosen once
        # per run; through the dispatching `_sequential_step_kernel` an iteration took 1.25x as long.
        loops.append(named_full_batch_loop("_sequential_sweep_one_sample_kernel", "_train_one_sample_sweep_kernel"))
    return loops


def _sample_block_fields(called: set[str], layout: str) -> dict:
    """The blocks layouts' loss-and-gradient template, and the vectorizable functions (`called`) its kernel calls,
    as the module imports them from the runtime."""
    if layout not in ("blocks", "rolled-blocks"):
        return {}
    from symcompile.vecmath import imported_names

    return {"loss_and_grad_template": "loss_and_grad_blocks.py.j2", "vecmath": imported_names(called)}


def _second_order_fields(kernel: Kernel, printer) -> dict:
    """What templates/hessian.py.j2 reads: the loss-gradient-Hessian block, or why there is none."""
    model, n = kernel.program.model, len(kernel.program.model.params)
    hessian = kernel.hessian and render_block(kernel.hessian, model, kernel.code_names, printer)
    upper = [(i, j) for i in range(n) for j in range(i, n)]
    hessian_kernel = ["hessian.py.j2"] if hessian else []
    return {
        "n_params": n,
        "hessian": hessian,
        # The kernels that follow the loss and gradient's: the Hessian's, then the update rules'
        "model_kernel_templates": hessian_kernel + update_rules.model_step_templates(bool(hessian)),
        "hessian_entries": list(zip(upper, hessian.results[1 + n :])) if hessian else [],
        "no_hessian": (
            f"hessian was not emitted: this model has {n} parameters, more than HESSIAN_MAX_PARAMS = "
            f"{HESSIAN_MAX_PARAMS} (symcompile/options.py), beyond which its {n * (n + 1) // 2} second derivatives "
            "cost more to build and compile than Newton steps save"
            if n > HESSIAN_MAX_PARAMS
            else NOT_ASKED_HESSIAN
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


def header_fields(model, provenance: Provenance, formula=None, module: dict | None = None) -> HeaderFields:
    """Every variable templates/header.py.j2 reads; `formula`: the lines shown as the training function
    (default: the model's formulas); `module`: the fields module.py.j2 was rendered with, whose public names the
    header lists (none without them)."""
    return {
        "name": model.name,
        "description": "\n".join(docstring_text(line) for line in textwrap.wrap(model.description, 100)),
        "rebuild_command": docstring_text(provenance.rebuild_command),
        "formula": formula_lines(model) if formula is None else [docstring_text(line) for line in formula],
        "contract": contract_lines(module_contract(model, module)) if module is not None else [],
        **provenance.header_fields(),
    }


# --- The header's Contract -------------------------------------------------------------------------------------------
# The public names module.py.j2 (with residuals.py.j2) defines, decided from the same fields it is rendered with:
# which parts a module has is emit's choice, not something read back from the text. Each function is listed with
# its parameters as its def line in the template has them (defaults left out). tests/test_stages.py checks this
# list against rendered modules' definitions and tests/test_build.py against built modules' names, both ways.

# MODEL: the runtime's view of the module (symcompile.runtime.model.Model: its kernels by name, its data and
# defaults), public so that symcompile's own tools (distributed, the estimators, curve_fit) reach no private name
MODEL_CONSTANTS = ["PARAMS", "INPUTS", "TARGETS", "INIT", "X", "Y", "DEFAULTS", "MODEL_DIGEST", "MODEL"]
STANDARDIZATION_CONSTANTS = ["X_MEAN", "X_SCALE"]  # where the inputs are standardized
DATA = "w, X, Y"  # the parameters of most public functions
# train's parameters around the update rules' hyperparameters (each list: the parameters in the def line's order)
TRAIN_DATA, TRAIN_LOOP, TRAIN_OPTIMIZER = ["w", "X", "Y"], ["max_iter", "tol", "update"], ["*", "optimizer"]
TRAIN_RUN = ["batch_size", "shuffle", "seed", "X_val", "Y_val", "patience", "record_every", "progress", "threads"]
LEAST_SQUARES = DATA + ", *, max_iter, xtol, ftol, gtol, fixed, bounds, loss, f_scale, sigma"


@dataclass(frozen=True)
class Contract:
    """The public names of a module, in its order."""

    constants: list[str]
    classes: dict[str, tuple[list[str], list[str]]]  # {class: (its fields, its methods with their parameters)}
    functions: dict[str, str]  # {function: its parameters}


def module_contract(model, fields: dict) -> Contract:
    """What module.py.j2 rendered with `fields` defines for its users."""
    positional, keyword = _train_hyperparameters(model)
    train = TRAIN_DATA + [h.name for h in positional] + TRAIN_LOOP + TRAIN_OPTIMIZER + [h.name for h in keyword]
    functions = {"forward": "w, X", "loss_and_grad": DATA + ", threads", "loss": DATA}
    functions |= {"accuracy": DATA} if fields["accuracy"] else {}
    functions |= {"load_weights": "path", "train": ", ".join(train + TRAIN_RUN), "check_digest": "", "hessian": DATA}
    classes = {"TrainResult": _runtime_members("training", "TrainResult")}
    fitted = fields["residual_model"] and fields["residuals_and_jacobian"]
    if fitted:
        classes["FitResult"] = _runtime_members("least_squares", "FitResult")
    if fields["residual_model"]:  # without the Jacobian kernel: one function raising why, under three names
        functions |= {"residuals": DATA, "jacobian": DATA, "least_squares": LEAST_SQUARES if fitted else DATA}
    constants = MODEL_CONSTANTS + (STANDARDIZATION_CONSTANTS if fields["standardization"] else [])
    return Contract(constants, classes, functions)


def _runtime_members(module: str, name: str) -> tuple[list[str], list[str]]:
    """The fields and public methods (with their parameters) of the NamedTuple `name` of symcompile.runtime.`module`."""
    cls = getattr(importlib.import_module(f"symcompile.runtime.{module}"), name)
    methods = [
        f"{method}({', '.join(list(inspect.signature(value).parameters)[1:])})"
        for method, value in vars(cls).items() if inspect.isfunction(value) and not method.startswith("_")
    ]  # fmt: skip
    return list(cls._fields), methods


def contract_lines(contract: Contract, width=100) -> list[str]:
    """The header's Contract: the constants on a line, each class with its fields and methods, each function
    with its parameters; wrapped to `width`."""
    entries = [", ".join(contract.constants)] if contract.constants else []
    entries += [
        f"{name}: {', '.join(fields)}" + (f"; {', '.join(methods)}" if methods else "")
        for name, (fields, methods) in contract.classes.items()
    ]
    entries += [f"{name}({parameters})" for name, parameters in contract.functions.items()]
    wrap = textwrap.TextWrapper(width - 4, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
    return [line for entry in entries for line in wrap.wrap(entry)]


# --- What each template reads ---------------------------------------------------------------------------------------
# One TypedDict per template: the variables the template itself reads, with their types (an included template's
# are its own). A render call's context is the fields of its template and of every template that one includes
# (RENDER_CONTEXTS). tests/test_stages.py checks both ways, following {% include %} and {% import %}: each template
# reads exactly its fields, and each context is exactly the fields of what its template includes.
# Templates dense_*.j2 are symcompile/dense.py's own.

# The templates of the update rules' model kernels (update_rules.MODEL_KERNELS), as module.py.j2 includes them.
ModelStepTemplate = Literal["update_rule_sequential.py.j2", "update_rule_newton.py.j2"]
# What module.py.j2 includes where emit chooses which: the runtime's import, the loss-and-gradient kernel, the kernels
# that follow it.
RuntimeImportTemplate = Literal["runtime_installed.py.j2", "runtime_beside.py.j2"]
LossAndGradTemplate = Literal["loss_and_grad_samples.py.j2", "loss_and_grad_blocks.py.j2"]
ModelKernelTemplate = Literal["hessian.py.j2", ModelStepTemplate]


class HeaderFields(TypedDict):
    """templates/header.py.j2: the module's docstring and provenance lines (header_fields)."""

    name: str
    description: str  # docstring text (docstring_text), wrapped
    rebuild_command: str
    formula: list[str]  # the training function, as docstring lines
    contract: list[str]  # the public names, as docstring lines (contract_lines)
    versions: dict[str, str]  # symcompile's, SymPy's, Numba's and NumPy's (Provenance.header_fields)
    options: str
    model_digest: str
    digest: str  # of the body below the header


class MacrosFields(TypedDict):
    """templates/macros.py.j2: macros only, whose Blocks come as arguments."""


class HelpersFields(TypedDict):
    """templates/helpers.py.j2: the Numba helpers of the stable functions the kernels call."""

    helpers: list[str]  # their sources (symcompile.stable.helper_sources)


class HessianFields(TypedDict):
    """templates/hessian.py.j2 (_second_order_fields): included only where the Hessian was emitted."""

    hessian: Block | None  # a Block wherever this template is included (module.py.j2 reads the same field)
    hessian_entries: list[tuple[tuple[int, int], str]]  # (i, j) of each upper-triangle result, and the result
    n_params: int


class ResidualsFields(TypedDict):
    """templates/residuals.py.j2 (_residual_fields): a residual model's residuals, Jacobian and least squares."""

    residuals_and_jacobian: Block | None  # None: not emitted (no_jacobian says why)
    residual_rows: list[str]  # the row in r and J of each residual of sample n, as code
    residuals_per_sample: int
    n_params: int
    no_jacobian: str


class SequentialKernelsFields(TypedDict):
    """templates/update_rule_sequential.py.j2: the sequential rule's sweeps."""

    sweep: list[Block]  # one program per parameter; empty: each step takes its component of the full gradient
    sweep_param_loads: list[str]
    one_sample_sweep: Block | None  # the whole sweep for one sample, as one straight-line program
    slots: dict[str, int]  # each hyperparameter's slot in the vector a MODEL_STEP reads (update_rules.slots)


class NewtonKernelsFields(TypedDict):
    """templates/update_rule_newton.py.j2: static code, no fields."""


class RuntimeInstalledFields(TypedDict):
    """templates/runtime_installed.py.j2: static code, no fields."""


class RuntimeBesideFields(TypedDict):
    """templates/runtime_beside.py.j2: the import of the runtime's copy beside a standalone module."""

    standalone_runtime: str  # that copy's package name (symcompile.standalone.package_name)


class LossAndGradSamplesFields(TypedDict):
    """templates/loss_and_grad_samples.py.j2: the loss-and-gradient kernel, one sample at a time."""

    loss_and_grad: Block
    inline_kernel: bool  # small enough to inline into the module's own full-batch loop


class LossAndGradBlocksFields(TypedDict):
    """templates/loss_and_grad_blocks.py.j2: the loss-and-gradient kernel over blocks of samples."""

    loss_and_grad: Block
    sample_block: int  # samples per block
    vecmath: str  # the vectorizable functions it calls, imported from the runtime ("" for none)
    standalone_runtime: str  # the runtime copy's package name for a standalone build; "" for symcompile.runtime


class ModuleFields(TypedDict):
    """templates/module.py.j2's own variables: model_fields (any module) and module_fields (the scalar kernels')."""

    # The model's constants, as code
    params: str  # PARAMS: a tuple, or the call that computes it (a wide network's module)
    inputs: str
    targets: str
    init: str
    X: str | None  # the default data as a list of floats; None when it is read from `data_file`
    Y: str | None
    X_shape: str
    Y_shape: str
    data_file: str | None
    data_digest: str | None
    defaults: str  # DEFAULTS: the training settings' dict
    weights_digest: str
    standardization: dict[str, str] | None  # {"mean": ..., "scale": ...} as lists of floats
    n_outputs: int
    n_params: int
    classifier: str  # "binary", "softmax" or "" (none)
    accuracy: Accuracy | None  # how a classifier's accuracy is counted (ACCURACY); None for other models
    target_loss: str
    cache_name: str  # the name the module registers itself under (render_module)
    runtime_import: RuntimeImportTemplate  # the installed runtime's, or its copy's beside a standalone module
    network_code: str  # code the constants need (a wide network's dense module)
    dense: str  # the dense kernels' source in place of the scalar kernels; "" for the scalar kernels
    dtype: str  # the numbers the kernels compute in: "float64", or "float32" (dense kernels only)
    # The scalar kernels (read where `dense` is "")
    forward: Block
    loss_and_grad_template: LossAndGradTemplate  # one sample at a time, or over blocks of samples (chosen_layout)
    model_kernel_templates: list[ModelKernelTemplate]  # the Hessian's, then the update rules' model kernels
    full_batch_loops: list[str]  # the module's own loops, where its loss-and-gradient kernel is inlined
    # What the update rules add
    positional_hyperparameters: str  # `train`'s parameters, as code (_update_rule_fields)
    keyword_hyperparameters: str
    hyperparameter_dict: str
    # The optional parts
    hessian: Block | None  # None: no Hessian (no_hessian says why)
    no_hessian: str
    residual_model: bool  # the module has residuals, jacobian and least_squares (residuals.py.j2)


TEMPLATE_FIELDS: dict[str, type] = {
    "module.py.j2": ModuleFields,
    "header.py.j2": HeaderFields,
    "macros.py.j2": MacrosFields,
    "helpers.py.j2": HelpersFields,
    "hessian.py.j2": HessianFields,
    "residuals.py.j2": ResidualsFields,
    "update_rule_sequential.py.j2": SequentialKernelsFields,
    "update_rule_newton.py.j2": NewtonKernelsFields,
    "runtime_installed.py.j2": RuntimeInstalledFields,
    "runtime_beside.py.j2": RuntimeBesideFields,
    "loss_and_grad_samples.py.j2": LossAndGradSamplesFields,
    "loss_and_grad_blocks.py.j2": LossAndGradBlocksFields,
}


class ModuleContext(
    ModuleFields,
    RuntimeBesideFields,
    HelpersFields,
    LossAndGradSamplesFields,
    LossAndGradBlocksFields,
    HessianFields,
    ResidualsFields,
    SequentialKernelsFields,
):
    """What render_module renders module.py.j2 with: its fields and those of every template it includes."""


RENDER_CONTEXTS: dict[str, type] = {"module.py.j2": ModuleContext, "header.py.j2": HeaderFields}


def field_names(fields: type) -> frozenset[str]:
    """The keys of a TypedDict of fields."""
    return fields.__required_keys__ | fields.__optional_keys__


def _checked_context(template: str, context: dict) -> dict:
    """`context`, after checking it holds no field that `template` and its includes do not declare (a misspelt or
    stale field would otherwise go unread; a missing one fails the render: StrictUndefined)."""
    unknown = set(context) - field_names(RENDER_CONTEXTS[template])
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TypeError(f"{template} declares no field {names} (symcompile/emit.py, TEMPLATE_FIELDS)")
    return context


# The name a generated module registers itself under (templates/module.py.j2 says why): derived from the body
# rendered with this in its place, so the same body always gets the same name; the body is then rendered with it.
CACHE_NAME_SLOT = "__symcompile_cache_name__"


def module_cache_name(body: str) -> str:
    return f"_symcompile_{sha256(body)[:16]}"


def render_module(model, fields: dict, provenance: Provenance, formula=None, standalone=False) -> ModuleSource:
    """Header and body of a module whose body's variables are `fields` (provenance's body_digest filled in);
    `standalone`: it imports the copy of the runtime that `build --standalone` writes beside it."""
    env = template_environment()
    module = env.get_template("module.py.j2")
    runtime = {"standalone_runtime": package_name(), "runtime_import": "runtime_beside.py.j2"} if standalone else {
        "standalone_runtime": "", "runtime_import": "runtime_installed.py.j2"}  # fmt: skip
    context = _checked_context("module.py.j2", fields | runtime)
    cache_name = module_cache_name(module.render(context | {"cache_name": CACHE_NAME_SLOT}))
    body = module.render(context | {"cache_name": cache_name})  # rendered twice, edited never
    provenance = replace(provenance, body_digest=sha256(body))
    header_context = _checked_context("header.py.j2", header_fields(model, provenance, formula, context))
    header = env.get_template("header.py.j2").render(header_context)
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
