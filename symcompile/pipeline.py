"""The driver: one call per stage, each timed, so `build` can say where its time went.

    spec or API --model--> Model --rewrite--> Model --differentiate--> Program
        --optimize--> Kernel --emit--> ModuleSource --write--> BuildResult (generated/<name>.py)

Each arrow is one module of symcompile and each name a frozen dataclass;
`stages()` below is the whole compiler, in order.
"""

from __future__ import annotations

import time

from symcompile.data import standardization
from symcompile.dense import chosen_kernels, emit_dense
from symcompile.differentiate import differentiate
from symcompile.emit import ModuleSource, emit
from symcompile.errors import SymcompileError
from symcompile.mlp import symbolic_form
from symcompile.model import Model, make_model
from symcompile.optimize import optimize
from symcompile.options import DEFAULT_OUT_DIR, DENSE_STAGES, STAGES, BuildOptions, training_settings
from symcompile.provenance import model_digest
from symcompile.rewrite import rewrite
from symcompile.standalone import write_runtime
from symcompile.standardize import standardized
from symcompile.stage_types import BuildResult  # noqa: F401 (re-exported)
from symcompile.writer import data_digest, data_file, load_module, write_data, write_module


def stage_names(model: Model, options: BuildOptions = BuildOptions()) -> tuple[str, ...]:
    """The stages a build of `model` runs, the one place that chooses between the two pipelines: options.STAGES,
    or options.DENSE_STAGES for an MLP compiled to the dense kernels (symcompile/dense.py: from its shape
    straight to emit; SymPy derives its per-unit derivatives there)."""
    scalar_options = options.gradient != "auto" or options.layout != "auto"
    dense = chosen_kernels(model, options.kernels, scalar_options=scalar_options) == "dense"
    return DENSE_STAGES if dense else STAGES


def stages(model: Model, options: BuildOptions = BuildOptions()):
    """Run the stages after the model's up to emit (`stage_names`), yielding (stage name, its output) after
    each. The scalar pipeline's stages work on a network's SymPy form, made when needed."""
    command = options.rebuild_command or _api_rebuild_command(model)
    if stage_names(model, options) == DENSE_STAGES:
        yield (
            "emit",
            emit_dense(model, rebuild_command=command, model_digest=model_digest(model), standalone=options.standalone),
        )
        return
    digest = model_digest(model)
    model = symbolic_form(model) if model.network is not None else model
    rewritten, rewrites = rewrite(model)
    yield "rewrite", rewritten
    program = differentiate(rewritten, options.gradient, options.hessian)
    yield "differentiate", program
    kernel = optimize(program)
    yield "optimize", kernel
    yield "emit", emit(kernel, options.layout, rewrites=rewrites.applied, rebuild_command=command, model_digest=digest,
                       standalone=options.standalone)  # fmt: skip


def generate(model: Model, options: BuildOptions | None = None, **choices) -> ModuleSource:
    """Every stage but the write: the module's source (options as for `build`)."""
    *_, (_, source) = stages(model, options or BuildOptions(**choices))
    return source


def build(model: Model, out_dir=DEFAULT_OUT_DIR, options: BuildOptions | None = None, *, model_seconds=None, **choices):
    """Compile `model` into out_dir/<name>.py and report what each stage did.

    Give `options`, or its fields as keywords (`gradient="reverse"`, `layout=...`, `rebuild_command=...`).
    `model_seconds`: the time the caller took to make `model`, reported as the first stage.
    """
    options = options or BuildOptions(**choices)
    seconds = {} if model_seconds is None else {"model": model_seconds}
    outputs = {}
    start = time.perf_counter()
    for stage, output in stages(model, options):
        outputs[stage], seconds[stage] = output, time.perf_counter() - start
        start = time.perf_counter()
    source, kernel = outputs["emit"], outputs.get("optimize")
    if options.standalone:  # first: a module is never without the runtime or the data it reads
        write_runtime(out_dir)
    if data_file(model):
        write_data(model.X, model.Y, out_dir, data_file(model), model.name, data_digest(model.X, model.Y))
    path, changed = write_module(source.text, out_dir, model.name)
    seconds["write"] = time.perf_counter() - start
    return BuildResult(
        path, changed, source.provenance.rewrites, kernel.ops_before if kernel else 0, kernel.ops_after if kernel else 0,
        source.provenance.gradient, source.layout, seconds, source.provenance.kernels,
    )  # fmt: skip


def _api_rebuild_command(model: Model) -> str:
    """What a module built from Python says rebuilds it: the call, since `python -m symcompile build` would build
    the seed instead."""
    return f"symcompile.compile_model(..., name={model.name!r}) from the Python code that built it"


def compile_model(
    output, loss, params, inputs, targets, *, name, init=None, X=None, Y=None, out_dir=DEFAULT_OUT_DIR,
    description="", gradient="auto", layout="auto", residual=None, standardize=False, hessian=False, **train_defaults,
):  # fmt: skip
    """Build a model written in SymPy, write its module, and return the imported module.

    `residual` (one expression or a list) makes a residual model: give `loss=None` and the per-sample loss is
    the sum of their squares; the module then also has residuals, jacobian and least_squares.
    `standardize=True` scales each input to mean 0 and standard deviation 1 inside the model's formulas, with
    the means and standard deviations of X (a spec's `standardize = true`): the module stores them as X_MEAN
    and X_SCALE, and every function of it takes inputs in X's own units. `hessian=True`: the module has the
    exact Hessian (`hessian`, the newton optimizer).
    """
    options = BuildOptions(gradient, layout, kernels="scalar", hessian=hessian)  # checked before the model is made
    if not isinstance(standardize, bool):
        raise SymcompileError(f"standardize must be True or False, not {standardize!r}")
    start = time.perf_counter()
    model = make_model(
        name, output, loss, params, inputs, targets, init=init, X=X, Y=Y,
        training=training_settings(train_defaults), description=description, residual=residual,
    )  # fmt: skip
    if standardize:
        model = standardized(model, standardization(model.X))
    report = build(model, out_dir, options, model_seconds=time.perf_counter() - start)
    return load_module(report.path)
