"""The driver: one call per stage, each timed, so `build` can say where its time went.

    model --rewrite--> Model --differentiate--> Program --optimize--> Kernel
          --emit--> source --write--> generated/<name>.py --load--> module
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from symcompile.differentiate import differentiate
from symcompile.emit import chosen_layout, data_file, emit
from symcompile.model import Model, TrainingDefaults, make_model, model_digest
from symcompile.names import NameTable
from symcompile.optimize import optimize
from symcompile.rewrite import rewrite
from symcompile.writer import data_digest, load_module, write_data, write_module

DEFAULT_OUT_DIR = "generated"


@dataclass
class BuildReport:
    path: Path
    changed: bool
    ops_before: int
    ops_after: int
    rewrites: tuple[str, ...]
    gradient: str  # the method used: "diff" or "reverse" (`auto` resolved)
    layout: str  # the kernels' layout: "unrolled" or "rolled" (`auto` resolved)
    stage_seconds: dict[str, float] = field(default_factory=dict)


class _Stopwatch:
    def __init__(self):
        self.seconds = {}

    def run(self, stage, function, *args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[stage] = time.perf_counter() - start
        return result


def generate(model: Model, *, gradient="auto", layout="auto", rebuild_command=None):
    """Every stage but the write: returns (source text, kernel, rewrites, stage times, layout)."""
    watch = _Stopwatch()
    rewritten, rewrites = watch.run("rewrite", rewrite, model)
    program = watch.run("differentiate", differentiate, rewritten, gradient)
    names = NameTable(model.params + model.inputs + model.targets)
    kernel = watch.run("optimize", optimize, program, names)
    layout = chosen_layout(kernel, layout)
    options = {"gradient": program.method, "cse": "on", "rewrites": "+".join(rewrites.applied) or "none"}
    if layout != "unrolled":  # the original layout goes unmentioned, so existing modules keep their bytes
        options["layout"] = layout
    command = rebuild_command or f"python -m symcompile build  # model {model.name}"
    source = watch.run("emit", emit, kernel, names, options, command, model_digest(model), layout)
    return source, kernel, rewrites, watch, layout


def build(
    model: Model, out_dir=DEFAULT_OUT_DIR, *, gradient="auto", layout="auto", rebuild_command=None
) -> BuildReport:
    """Compile `model` into out_dir/<name>.py and report what each stage did."""
    source, kernel, rewrites, watch, layout = generate(
        model, gradient=gradient, layout=layout, rebuild_command=rebuild_command
    )
    if data_file(model):  # first: a module is never without the data it reads
        digest = data_digest(model.X, model.Y)
        watch.run("write data", write_data, model.X, model.Y, out_dir, data_file(model), model.name, digest)
    path, changed = watch.run("write", write_module, source, out_dir, model.name)
    return BuildReport(
        path, changed, kernel.ops_before, kernel.ops_after, rewrites.applied, kernel.program.method, layout,
        watch.seconds,
    )  # fmt: skip


def compile_model(
    output, loss, params, inputs, targets, *, name, init=None, X=None, Y=None, out_dir=DEFAULT_OUT_DIR,
    description="", gradient="auto", layout="auto", **train_defaults,
):  # fmt: skip
    """Build a model written in SymPy, write its module, and return the imported module."""
    training = TrainingDefaults(**train_defaults) if train_defaults else None
    model = make_model(
        name, output, loss, params, inputs, targets, init=init, X=X, Y=Y, training=training, description=description
    )
    report = build(model, out_dir, gradient=gradient, layout=layout)
    return load_module(report.path)
