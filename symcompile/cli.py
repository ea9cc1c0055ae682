"""`python -m symcompile build|train|fit|predict|show|bench`: the command line.

Every user-facing failure is a SymcompileError, printed as one line
(`symcompile: error: ...`) with exit status 2; argparse does the same for bad
arguments. Settings are checked here, before the generated module sees them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from symcompile import __version__, cli_dask, plotting
from symcompile.data import split_rows
from symcompile.errors import SymcompileError, names_text
from symcompile.interrupts import EXIT_INTERRUPTED, CtrlC
from symcompile.metrics import accuracy
from symcompile.options import (
    DEFAULT_OUT_DIR, DUMP_STAGES, HESSIAN_MAX_PARAMS, RUN_KEYS, TRAINING_KEYS, BuildOptions, RunSettings, allowed,
    argument_type, check_rule_fits, chosen_rule, positive_count, run_settings, train_keywords, training_settings,
)  # fmt: skip
from symcompile.outputs import (
    check_plot_path, check_writable, plot_history, predictions_text, write_file, write_history, write_text,
)  # fmt: skip
from symcompile import current_module
from symcompile.runtime.errors import StaleModule
from symcompile.runtime.fit_options import LOSSES
from symcompile.writer import load_module

# The model's stages (SymPy, half a second of imports) are imported by the functions that use them: `train` on
# a module that is current needs none of them (symcompile/current_module.py).


def resolve_model(spec, data_root=None):
    """The model a command works on, and the command that rebuilds it: the built-in seed when no spec is given."""
    return resolve_model_settings(spec, data_root)[:2]


def resolve_model_settings(spec, data_root=None, split=None):
    """As `resolve_model`, and the run settings of the spec's [training] table (the defaults for the seed).
    `split`: train's --validation-split and --seed, given to the model too (its standardization's rows)."""
    from symcompile.seed import seed_model
    from symcompile.spec import load_spec_settings

    if spec is None:
        return seed_model(), build_command(spec, data_root), RunSettings()
    model, run = load_spec_settings(spec, data_root, split)
    return model, build_command(spec, data_root), run


def build_command(spec, data_root=None):
    """The command that builds the module of `spec` (None: the built-in seed), as a module's header shows it."""
    if spec is None:
        return "python -m symcompile build"
    command = f"python -m symcompile build {shlex.quote(spec)}"
    if data_root is not None:
        command += f" --data-root {shlex.quote(data_root)}"
    return command


def with_dtype(model, rebuild_command, dtype):
    """(the model with --dtype's numbers, its rebuild command with the flag); as they are without the flag (the
    spec's dtype). The check that float32 applies (dense networks only) is the build's."""
    if dtype is None:
        return model, rebuild_command
    return replace(model, dtype=dtype), f"{rebuild_command} --dtype {dtype}"


def module_path(model, out_dir):
    return Path(out_dir) / f"{model.name}.py"


def command_build(args):
    from symcompile.dump import dump_after
    from symcompile.pipeline import build

    start = time.perf_counter()
    model, rebuild_command = resolve_model(args.spec, args.data_root)
    model, rebuild_command = with_dtype(model, rebuild_command, args.dtype)
    model_seconds = time.perf_counter() - start
    if args.standalone:
        rebuild_command += " --standalone"
    if args.hessian:
        rebuild_command += " --hessian"
    options = BuildOptions(args.gradient, args.layout, rebuild_command, args.kernels, args.standalone, args.hessian)
    if args.dump_after:
        print(dump_after(model, options, args.dump_after))
        return 0
    describe = f"{model.n_params} params, {len(model.inputs)} inputs, {len(model.targets)} targets"
    print(f"symcompile build: {model.name} ({describe}, {model.X.shape[0]} default samples)")
    report = build(model, args.out_dir, options, model_seconds=model_seconds)
    notes = {
        "model": "spec read and model checked" if args.spec else "built-in seed model",
        "emit": f"dense kernels, {report.layout}" if report.kernels == "dense" else f"{report.layout} layout",
        "rewrite": ", ".join(report.rewrites) or "nothing to rewrite",
        "differentiate": f"gradient by {report.gradient}",
        "optimize": f"{report.ops_before} -> {report.ops_after} operations after CSE",
        "write": f"{report.path} ({'written' if report.changed else 'unchanged'})",
    }
    stage_seconds = report.stage_seconds
    if args.startup_seconds is not None:
        stage_seconds = {"startup": args.startup_seconds, **stage_seconds}
        notes["startup"] = "Python started; symcompile, SymPy, NumPy and Jinja imported"
    for stage, seconds in stage_seconds.items():
        print(f"  {stage:<14} {seconds:8.3f} s  {notes.get(stage, '')}".rstrip())
    print(f"  {'total':<14} {sum(stage_seconds.values()):8.3f} s")
    return 0


def require_data(model):
    if model.X.shape[0] == 0:
        raise SymcompileError(f"{model.name} has no default data to train on")


def ensure_built(model, rebuild_command, out_dir, hessian=False):
    """The model's module, imported; built first when missing or built from a different model, or without the
    Hessian that `hessian` asks for (the newton optimizer's)."""
    from symcompile.pipeline import build

    path = module_path(model, out_dir)
    module, reason = current(path, model, hessian)
    if reason:
        print(f"{path} {reason}; building it")
        build(
            model,
            out_dir,
            BuildOptions(rebuild_command=rebuild_command + (" --hessian" if hessian else ""), hessian=hessian),
        )
        module = load_module(path)
    return module


def current(path, model=None, hessian=False):
    """(the module at `path`, imported, None) where it is current for `model` (None: known to be, by
    current_module's record), with the Hessian if `hessian`; else (None, why it must be built): missing, built
    from another model, or one this runtime cannot run as built (other dense loops, a changed data file)."""
    reason = None
    if model is not None:  # (the shortcut's call makes no model, and imports no SymPy)
        from symcompile.provenance import why_rebuild

        reason = why_rebuild(path, model)
    if not reason and hessian and "def _loss_grad_hessian_kernel(" not in path.read_text(encoding="utf-8"):
        reason = "has no Hessian (optimizer newton)"
    if reason:
        return None, reason
    try:
        return load_module(path), None
    except StaleModule as exc:
        return None, f"cannot be imported by this symcompile ({exc})"


@dataclass(frozen=True)
class TrainTarget:
    """What `train` needs of the model: from the spec's model (`model`, to build from), or from its module where
    that was found current for the same inputs before (`module`; current_module.py), without making the model."""

    name: str
    n_samples: int
    n_params: int
    training: object  # options.TrainingSettings: the model's defaults
    spec_run: RunSettings  # the spec's [training] table (the defaults for the seed)
    inputs_key: str | None  # current_module's key of the spec, data and versions
    module: object = None
    model: object = None
    rebuild_command: str = ""


def _train_target(args, split, shortcut=True):
    # --dtype is one of train's inputs (its module differs): in the key where given, so the key is as before without
    key = current_module.inputs_key(args.spec, args.data_root, split | ({"dtype": args.dtype} if args.dtype else {}))
    found = current_module.recorded(args.out_dir, key) if shortcut else None
    module = found and current(found[0])[0]
    if module is not None:
        path, run = found
        training = training_settings(module.DEFAULTS)
        spec_run = RunSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in run.items()})
        return TrainTarget(path.stem, len(module.X), len(module.PARAMS), training, spec_run, key, module=module)
    model, rebuild_command, spec_run = resolve_model_settings(args.spec, args.data_root, split)
    model, rebuild_command = with_dtype(model, rebuild_command, args.dtype)
    require_data(model)
    return TrainTarget(model.name, model.X.shape[0], model.n_params, model.training, spec_run, key, model=model,
                       rebuild_command=rebuild_command)  # fmt: skip


def _module_to_train(args, target, split, newton):
    """The target's module: as found current, or built from its model when missing, changed or without the
    Hessian that newton needs (and then recorded as current for the target's inputs)."""
    if target.module is not None and (not newton or hasattr(target.module, "_loss_grad_hessian_kernel")):
        return target.module
    if target.model is None:  # found current, but without the Hessian
        target = _train_target(args, split, shortcut=False)
    module = ensure_built(target.model, target.rebuild_command, args.out_dir, hessian=newton)
    path = module_path(target.model, args.out_dir)
    current_module.record(args.out_dir, target.inputs_key, path, asdict(target.spec_run))
    return module


def command_train(args):
    # The split comes first: a standardized model takes its means and scales from the rows the run trains on
    split = {key: getattr(args, key) for key in ("validation_split", "seed") if getattr(args, key) is not None}
    target = _train_target(args, split)
    # Check everything the user gave before building, so bad input never writes a module.
    overrides = {k: v for k, v in vars(args).items() if k in TRAINING_KEYS and k != "update" and v is not None}
    training = training_settings(overrides, base=target.training)
    spec_run = target.spec_run
    if args.max_iter is not None:
        spec_run = replace(spec_run, epochs=None)  # --max-iter on the command line outranks the spec's epochs
    given = {k: v for k, v in vars(args).items() if k in RUN_KEYS and v is not None}
    rule = chosen_rule(args.optimizer, args.update, names=("--optimizer", "--update"))  # either outranks the spec's
    run = run_settings(given | ({"optimizer": rule} if rule else {}), base=spec_run, default_rule=training.update)
    check_rule_fits(run.optimizer or training.update, target.n_params)
    for path in (args.save, args.history):
        if path:
            check_writable(path)
    if args.plot:
        check_plot_path(args.plot)
    cli_dask.check_train_arguments(args, run)
    train_rows, val_rows = split_rows(target.n_samples, run.validation_split, run.seed)
    args.ctrl_c.doing = f"building {target.name} (no iterations run)"
    module = _module_to_train(args, target, split, newton=(run.optimizer or training.update) == "newton")
    args.ctrl_c.doing = f"compiling {target.name}'s training loop (no iterations run)"  # the warm-up's work
    data = TrainingData(module.X[train_rows], module.Y[train_rows], module.X[val_rows], module.Y[val_rows])
    keywords = train_keywords(training, run) | data.validation_keywords() | _threads(module, args.threads)
    print(f"symcompile train: {target.name} with " + ", ".join(f"{k}={v}" for k, v in _shown(keywords).items()))
    if len(val_rows):
        print(f"  data       {len(train_rows)} training samples, {len(val_rows)} validation samples "
              f"(validation_split {run.validation_split:g}, seed {run.seed})")  # fmt: skip
    if args.dask:
        with args.ctrl_c.python():  # Ctrl-C: a KeyboardInterrupt, which closes the cluster on its way out
            result, seconds = cli_dask.train_on_dask(args, module, data, keywords)
    else:
        progress = sys.stdout.isatty() if args.progress is None else args.progress
        result, seconds = _timed_training(module, data, keywords, progress, args.ctrl_c)
    with args.ctrl_c.finishing("writing the report and the files of the run"):
        _report_training(module, data, result, seconds)
        _write_outputs(args, target.name, result, _history_start(module, data, run))
    if result.status == "interrupted":
        print(f"symcompile: interrupted after {result.iterations} iterations; the weights reached are above"
              + (f" and in {args.save}" if args.save else ""), file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    if result.status in FAILED_RUNS:
        print(f"symcompile: training {FAILED_RUNS[result.status]}; lower the learning rate", file=sys.stderr)
        return EXIT_FAILED
    return 0


# A run that failed exits with EXIT_FAILED, after its report and files: a script must not take it for a result.
EXIT_FAILED = 1
FAILED_RUNS = {
    "diverged": "diverged: the loss grew far above where it started (docs/cli.md, train)",
    "non-finite": "stopped at a loss or weight that is not finite (the weights above are the last finite ones)",
}


def _history_start(module, data, run):
    """What --history and --plot need beyond the result: the loss at the start, and whether the run was in
    mini-batches (whose recorded loss of an epoch is its batches' mean, written on the row of its end)."""
    return module.loss(module.INIT, data.X, data.Y), run.batch_size is not None and run.batch_size < len(data.X)


@dataclass(frozen=True)
class TrainingData:
    """The rows a run trains on, and the rows it validates on (none when there is no validation split)."""

    X: np.ndarray
    Y: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray

    def validation_keywords(self):
        return {"X_val": self.X_val, "Y_val": self.Y_val} if len(self.X_val) else {}


def _shown(keywords):
    """The settings as the header line shows them (the validation arrays are summarized on their own line)."""
    return {k: v for k, v in keywords.items() if k not in ("X_val", "Y_val")}


def _timed_training(module, data, keywords, progress, ctrl_c):
    """(result, loop seconds). A 1-iteration warm-up call first compiles the loop (or loads Numba's cache), so
    the run is timed alone and trained once; its time is printed before the run starts. Ctrl-C during the
    warm-up ends the command there (`ctrl_c` is in its at_once mode: no iterations run, nothing to keep);
    during the run, the module's loop stops and returns the weights reached."""
    start = time.perf_counter()
    module.train(module.INIT, data.X, data.Y, **(keywords | {"max_iter": min(1, keywords["max_iter"])}))
    print(f"  compile    {time.perf_counter() - start:.3f} s (a 1-iteration warm-up: Numba compile or cache load)",
          flush=True)  # fmt: skip
    ctrl_c.doing = "starting the run (no iterations run)"
    with ctrl_c.python():  # the module's train takes over Ctrl-C where Python's handler is in place
        start = time.perf_counter()
        result = module.train(module.INIT, data.X, data.Y, **keywords, **({"progress": True} if progress else {}))
        return result, time.perf_counter() - start


def _report_training(module, data, result, seconds):
    _print_state(module, "initial", module.INIT, data.X, data.Y)
    _print_state(module, "final", result.w, data.X, data.Y)
    if len(data.X_val):
        _print_state(module, "validation", result.w, data.X_val, data.Y_val)
    print(f"  iterations {result.iterations} ({result.status})")
    print("  weights    " + _weights_text(module.PARAMS, result.w))
    per = f", {seconds / result.iterations * 1e3:.4g} ms per iteration" if result.iterations else ""
    print(f"  wall time  {seconds * 1e3:.3f} ms for the loop{per}")
    if result.status == "interrupted":
        print("  interrupted by Ctrl-C: the weights above are those reached so far")


SHOWN_WEIGHTS = 16  # more than this: the first ones, and a pointer to --save for all


def _weights_text(names, w):
    shown = ", ".join(f"{n}={v:.10g}" for n, v in list(zip(names, w))[:SHOWN_WEIGHTS])
    return shown if len(w) <= SHOWN_WEIGHTS else f"{shown}, ... ({len(w)} weights; --save writes them all)"


def _write_outputs(args, name, result, history_start):
    """--save, --history and --plot, each written whole under the name given (a file object to NumPy, which
    would add .npz to a name)."""
    if args.save:
        write_file(args.save, result.save)
        print(f"  saved      weights to {args.save}")
    if args.history:
        write_history(args.history, result, *history_start)
        print(f"  saved      loss history to {args.history}")
    if args.plot:
        plot_history(args.plot, result, f"{name}: loss per epoch", *history_start)
        print(f"  saved      loss plot to {args.plot}")


def command_predict(args):
    # The spec is read once (it may be a pipe, `<(cat spec.toml)`): for the model and for its X_columns.
    from symcompile.seed import seed_model
    from symcompile.spec import read_toml, spec_input_columns, spec_model

    spec = read_toml(Path(args.spec)) if args.spec else None
    model = spec_model(spec, Path(args.spec), args.data_root) if spec else seed_model()
    if args.out:
        check_writable(args.out)
    X = spec_input_columns(spec, args.spec, model, args.data)
    module = ensure_built(model, build_command(args.spec, args.data_root), args.out_dir)
    try:
        w = module.load_weights(args.weights)
    except (OSError, ValueError) as exc:  # missing, not an .npz of weights, or another model's
        raise SymcompileError(
            f"cannot load weights from {args.weights}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        outputs = module.forward(w, X)
    except ValueError as exc:  # NaN or infinity in the data
        raise SymcompileError(f"{args.data}: {exc}") from None
    text = predictions_text(outputs, [t.name for t in model.targets])
    if args.out:
        with args.ctrl_c.finishing(f"writing {args.out}"):
            write_text(args.out, text)
        print(f"symcompile predict: {len(X)} predictions from {args.data} written to {args.out}")
    else:
        print(text, end="")
    return 0


def command_show(args):
    from symcompile.emit import formula_lines
    from symcompile.pipeline import stages
    from symcompile.provenance import why_rebuild

    model, rebuild_command = resolve_model(args.spec, args.data_root)
    options = BuildOptions(args.gradient, args.layout, rebuild_command, args.kernels)
    outputs = dict(stages(model, options))
    path = module_path(model, args.out_dir)
    print(f"symcompile show: {model.name}" + (f" ({model.description})" if model.description else ""))
    if "optimize" not in outputs:  # dense kernels: the stages went from the network's shape straight to emit
        _show_dense(model, outputs["emit"], path)
        return 0
    rewritten, kernel, source = outputs["rewrite"], outputs["optimize"], outputs["emit"]
    rewrites = ", ".join(source.provenance.rewrites) or "none applied"
    print(f"  formula after rewrites ({rewrites}):")
    for line in formula_lines(rewritten):
        print(f"    {line}")
    print(f"  parameters {len(model.params)}")
    print(f"  inputs     {len(model.inputs)}, targets {len(model.targets)}, default samples {model.X.shape[0]}")
    print(f"  operations {kernel.ops_before} before CSE, {kernel.ops_after} after")
    print(f"  gradient   {source.provenance.gradient}")
    print(f"  layout     {source.layout}")
    print(f"  module     {path} ({why_rebuild(path, model) or 'built and current'})")
    return 0


def _show_dense(model, source, path):
    """show for an MLP with dense kernels: SymPy sees one unit (no formula of the whole network), so the per-unit
    code it derived, and where each layer's weights sit in the flat parameter vector."""
    from symcompile import dense
    from symcompile.provenance import why_rebuild

    shape = model.network.shape
    print("  formula, per unit (from SymPy, after the stable rewrites):")
    for line in dense.formula_lines(shape, dense.dense_kernels(shape)):
        print(f"    {line}")
    print(f"  parameters {model.n_params}")
    print(f"  weights    {dense.parameter_layout(shape)}")
    print(f"  inputs     {len(model.inputs)}, targets {len(model.targets)}, default samples {model.X.shape[0]}")
    print(f"  gradient   {source.provenance.gradient}")
    print(f"  layout     dense kernels, {source.layout} samples")
    print(f"  module     {path} ({why_rebuild(path, model) or 'built and current'})")


def command_fit(args):
    # The spec is read once (it may be a pipe, `<(cat spec.toml)`): for the model and for its [fit] table.
    from symcompile.seed import seed_model
    from symcompile.spec import read_toml, spec_model

    spec = read_toml(Path(args.spec)) if args.spec else None
    model = spec_model(spec, Path(args.spec), args.data_root) if spec else seed_model()
    rebuild_command = build_command(args.spec, args.data_root)
    # Everything checked before building, so bad input never writes a module.
    cli_dask.check_fit_arguments(args)
    if args.method == "least_squares":
        _check_least_squares(model)
    settings = _least_squares_settings(args) if args.method == "least_squares" else _train_settings(args)
    options = _fit_options(args, spec, model)
    if args.many:  # one fit per CSV file of a folder, optionally on Dask (cli_dask.py)
        _check_many_options(args, options)
        check_writable(args.out)
        build_for_fit = _least_squares_module if args.method == "least_squares" else ensure_built
        module = build_for_fit(model, rebuild_command, args.out_dir)
        with args.ctrl_c.python():  # fit_many_command stops at Ctrl-C and writes the fits reached
            return cli_dask.fit_many_command(args, module, settings | options.solver_keywords(model))
    require_data(model)
    if args.plot:
        plotting.check_can_plot(model, args.plot)
    args.ctrl_c.doing = f"building {model.name} (no fit reached)"
    module = _least_squares_module(model, rebuild_command, args.out_dir)
    if not hasattr(module, "least_squares"):
        raise SymcompileError(f"{module.__file__} has no least_squares; rebuild it")
    keywords = settings | options.solver_keywords(model)
    args.ctrl_c.doing = f"compiling and fitting {model.name} (no fit reached)"
    start = time.perf_counter()
    fit = module.least_squares(**keywords)
    first_call = time.perf_counter() - start
    start = time.perf_counter()
    module.least_squares(**keywords)
    seconds = time.perf_counter() - start
    with args.ctrl_c.finishing("writing the fit's report" + (f" and {args.plot}" if args.plot else "")):
        _report_fit(args, model, module, fit, first_call, seconds, options, settings)
    return 0


def _report_fit(args, model, module, fit, first_call, seconds, options, settings):
    """fit's lines: the parameters with their standard errors, the residual sum of squares, the stop; with
    --report lmfit's report in their place; --plot (with the confidence band where the model has one)."""
    from symcompile.fit_report import from_least_squares

    n_residuals = module.X.shape[0] * module.MODEL.residuals_per_sample
    print(f"symcompile fit: {model.name} by Levenberg-Marquardt, {model.n_params} parameters, {n_residuals} residuals")
    if options.described():
        print(f"  options    {options.described()}")
    report = from_least_squares(module, fit, fixed=options.fixed_mask(model), absolute_sigma=options.absolute_sigma,
                                init=options.start(model), settings=settings, model=_model_line(model))  # fmt: skip
    if args.report:
        print("\n".join("  " + line for line in report.fit_report().splitlines()))
    else:
        kind = "standard error, absolute sigma" if options.absolute_sigma else "standard error"
        width = max(len(name) for name in module.PARAMS)
        errors = report.stderr if options.absolute_sigma else fit.stderr  # fit's: curve_fit's pcov, also robust
        for name, value, error, free in zip(module.PARAMS, fit.w, errors, report.vary):
            print(f"  {name:<{width}}  {value:<22.15g} " + (f"+- {error:.6g} ({kind})" if free else "(fixed)"))
        print(f"  residual sum of squares {2 * fit.cost:.15g}" if options.loss == "linear" else
              f"  residual sum of squares {report.chisqr:.15g}; robust cost {fit.cost:.15g}")  # fmt: skip
        print(f"  iterations {fit.iterations} ({fit.status})")
    print(
        f"  wall time  {seconds * 1e3:.3f} ms for the fit; first call {first_call:.3f} s (Numba compile or cache load)"
    )
    if args.plot:
        band, why_not = _band(report, module)
        plotting.plot_fit(module, fit.w, args.plot, model.name, band=band, sigma=options.sigma)
        drawn = " (with the 1-sigma confidence band)" if band else f" (no band: {why_not})"
        print(f"  plot       {args.plot}{drawn}")


def _band(report, module):
    """(a function of the plot's x giving the 1-sigma band, None) or (None, why the model has none)."""
    grid_check = np.ascontiguousarray(module.X[:1], dtype=np.float64)
    try:
        report.eval_uncertainty(grid_check)
    except ValueError as exc:
        return None, str(exc)
    return (lambda x: report.eval_uncertainty(x.reshape(-1, 1))), None


def _model_line(model, longest=200):
    """The report's [[Model]] line: the residual formula(s), or the model's name where they are long."""
    text = ", ".join(str(r) for r in model.residuals)
    return f"{model.name}: residual {text}" if text and len(text) <= longest else model.name


@dataclass(frozen=True)
class FitOptions:
    """fit's options beyond the solver's settings, merged from the spec's [fit] table and the flags (the flags
    outrank the spec, setting by setting, and parameter by parameter for bounds and fixed). bounds: {name:
    (lower, upper)}; fixed: {name: value, None for the spec's init}; sigma: one standard deviation per sample;
    sources: where each came from, for messages and the options line."""

    bounds: dict
    fixed: dict
    sigma: np.ndarray | None
    loss: str
    f_scale: float | None
    absolute_sigma: bool
    sources: dict

    def start(self, model):
        """The starting weights: the model's init, fixed parameters at their values."""
        w0 = np.array(model.init, dtype=np.float64)
        for name, value in self.fixed.items():
            if value is not None:
                w0[_param_names(model).index(name)] = value
        return w0

    def fixed_mask(self, model):
        return np.array([name in self.fixed for name in _param_names(model)], dtype=bool)

    def solver_keywords(self, model):
        """least_squares's keywords for these options, only those that are not its defaults (so a fit without
        options takes the plain solver's path, as before)."""
        names, keywords = _param_names(model), {}
        if self.fixed:
            keywords["w"], keywords["fixed"] = self.start(model), self.fixed_mask(model)
        if self.bounds:
            lower, upper = np.full(len(names), -np.inf), np.full(len(names), np.inf)
            for name, (low, high) in self.bounds.items():
                lower[names.index(name)], upper[names.index(name)] = low, high
            keywords["bounds"] = (lower, upper)
        if self.sigma is not None:  # every residual of a sample gets the sample's sigma
            keywords["sigma"] = np.repeat(self.sigma, len(model.residuals) or len(model.targets))
        if self.loss != "linear":
            keywords["loss"] = self.loss
        if self.f_scale is not None:
            keywords["f_scale"] = self.f_scale
        return keywords

    def described(self):
        """The options line: each option given, and where from ("" where none)."""
        parts = [f"{name} in [{low:g}, {high:g}]" for name, (low, high) in self.bounds.items()]
        parts += [f"{name} fixed" + ("" if value is None else f" at {value:g}") for name, value in self.fixed.items()]
        if self.sigma is not None:
            parts.append(f"sigma from {self.sources['sigma']}")
        if self.loss != "linear":
            parts.append(f"loss {self.loss}" + ("" if self.f_scale is None else f" (f_scale {self.f_scale:g})"))
        if self.absolute_sigma:
            parts.append("absolute sigma")
        return "; ".join(parts)


def _param_names(model):
    """The parameters' names, also for a network without its SymPy form (symcompile.mlp makes it when built)."""
    if model.symbolic:
        return [p.name for p in model.params]
    from symcompile.mlp import param_names

    return param_names(model.network.shape.layers, model.network.shape.bias)


def _fit_options(args, spec, model):
    """The merged [fit] table and flags as FitOptions, checked against the model: one-line SymcompileErrors for
    unknown names, a setting given twice, a fixed parameter with bounds (they would never be read), a start
    outside its bounds, f_scale without a robust loss, every parameter fixed, a bad sigma."""
    from symcompile.spec import fit_table

    names = _param_names(model)
    table = fit_table(spec, args.spec, names)
    spec_where = f"{args.spec}: fit." if args.spec else ""
    bounds, bound_from = _merged(table.get("bounds", {}), _bound_flags(args.bound, names), spec_where, "bounds")
    fixed, fixed_from = _merged(table.get("fixed", {}), _fix_flags(args.fix, names), spec_where, "fixed")
    both = [name for name in names if name in bounds and name in fixed]
    if both:
        raise SymcompileError(f"{both[0]} is both fixed ({fixed_from[both[0]]}) and bounded ({bound_from[both[0]]}): "
                              "a fixed parameter's bounds are never used")  # fmt: skip
    if fixed and len(fixed) == len(names):
        raise SymcompileError(f"every parameter is fixed ({names_text(names)}): nothing left to fit")
    for name, (low, high) in bounds.items():
        if not low < high:
            raise SymcompileError(f"{bound_from[name]}: {name}'s lower bound {low:g} is not below its upper bound "
                                  f"{high:g}")  # fmt: skip
    options = FitOptions(bounds, fixed, None, *_loss(args, table, spec_where), _absolute_sigma(args, table), {})
    w0 = options.start(model)
    for name, (low, high) in bounds.items():
        value = w0[names.index(name)]
        if not low <= value <= high:
            raise SymcompileError(f"{bound_from[name]}: {name} starts at {value:g} (the spec's init), outside "
                                  f"[{low:g}, {high:g}]")  # fmt: skip
    sigma, sigma_from = _sigma(args, spec, table, model, spec_where)
    return replace(options, sigma=sigma, sources={"sigma": sigma_from})


def _merged(from_spec, from_flags, spec_where, key):
    """{name: setting} of the spec's table `key` with the flags' on top, and {name: where it came from}."""
    merged, flag = dict(from_spec) | from_flags, {"bounds": "--bound", "fixed": "--fix"}[key]
    return merged, {name: f"{flag} {name}" if name in from_flags else f"{spec_where}{key}.{name}" for name in merged}


def _flag_name(text, flag, names):
    """The parameter name before '=' in a flag's NAME=... (or the whole text), checked to be a parameter."""
    name = text.partition("=")[0].strip()
    if name not in names:
        raise SymcompileError(f"{flag} {text}: {name!r} is not a parameter (parameters: {names_text(names)})")
    return name


def _bound_flags(given, names):
    """{name: (lower, upper)} from --bound NAME=LOWER:UPPER flags (an empty side, inf or -inf: no bound)."""
    bounds = {}
    for text in given or ():
        name = _flag_name(text, "--bound", names)
        _, equals, pair = text.partition("=")
        low, colon, high = pair.partition(":")
        if not equals or not colon:
            raise SymcompileError(f"--bound {text}: give NAME=LOWER:UPPER (an empty side for no bound), such as a=0:10")
        if name in bounds:
            raise SymcompileError(f"--bound {text}: {name} is bounded twice on the command line")
        bounds[name] = (_flag_number(low, -np.inf, f"--bound {text}"), _flag_number(high, np.inf, f"--bound {text}"))
    return bounds


def _fix_flags(given, names):
    """{name: value, or None to hold the spec's init} from --fix NAME[=VALUE] flags."""
    fixed = {}
    for text in given or ():
        name = _flag_name(text, "--fix", names)
        if name in fixed:
            raise SymcompileError(f"--fix {text}: {name} is fixed twice on the command line")
        _, equals, value = text.partition("=")
        fixed[name] = _flag_number(value, None, f"--fix {text}") if equals else None
        if equals and not np.isfinite(fixed[name]):
            raise SymcompileError(f"--fix {text}: the value must be a finite number")
    return fixed


def _flag_number(text, empty, where):
    if not text.strip():
        if empty is None:
            raise SymcompileError(f"{where}: give a number after '='")
        return empty
    try:
        value = float(text)
    except ValueError:
        raise SymcompileError(f"{where}: {text!r} is not a number") from None
    if np.isnan(value):
        raise SymcompileError(f"{where}: NaN is not a bound or a value")
    return value


def _loss(args, table, spec_where):
    """(loss, f_scale): the flags', else the spec's; f_scale only with a robust loss (it is never read else)."""
    loss = args.loss if args.loss is not None else table.get("loss", "linear")
    if loss not in LOSSES:
        raise SymcompileError(f"{spec_where}loss: must be one of {', '.join(LOSSES)}, not {loss!r}")
    f_scale = args.f_scale if args.f_scale is not None else table.get("f_scale")
    where = "--f-scale" if args.f_scale is not None else f"{spec_where}f_scale"
    if f_scale is not None and not (np.isfinite(f_scale) and f_scale > 0):
        raise SymcompileError(f"{where}: must be a finite number > 0, not {f_scale:g}")
    if f_scale is not None and loss == "linear":
        raise SymcompileError(f"{where}: f_scale applies to a robust loss (--loss soft_l1, huber, cauchy or arctan); "
                              "the linear loss never reads it")  # fmt: skip
    return loss, f_scale


def _absolute_sigma(args, table):
    return args.absolute_sigma if args.absolute_sigma is not None else table.get("absolute_sigma", False)


def _sigma(args, spec, table, model, spec_where):
    """(one standard deviation per sample, where from) from --sigma-column, else the spec's sigma or sigma_column;
    (None, None) where none is given."""
    from symcompile.spec import csv_column

    if args.sigma_column is not None:
        column, where = args.sigma_column, f"--sigma-column {args.sigma_column}"
    elif "sigma_column" in table:
        column, where = table["sigma_column"], f"{spec_where}sigma_column"
    elif "sigma" in table:
        column, where = None, f"{spec_where}sigma"
    else:
        return None, None
    if column is not None and spec is None:
        raise SymcompileError(f"{where}: the built-in seed has no CSV file to read a sigma column from")
    sigma = np.asarray(table["sigma"] if column is None else csv_column(spec, args.spec, args.data_root, column))
    n_samples = model.X.shape[0]
    if sigma.shape != (n_samples,):
        raise SymcompileError(f"{where}: {sigma.size} values for the data's {n_samples} samples")
    if not (np.isfinite(sigma).all() and (sigma > 0).all()):
        bad = int(np.argmax(~(np.isfinite(sigma) & (sigma > 0))))
        raise SymcompileError(f"{where}: sigma must be finite and > 0 (a standard deviation per sample); "
                              f"sample {bad} has {sigma[bad]:g}")  # fmt: skip
    return sigma, (f"column {column!r}" if column is not None else "fit.sigma")


def _check_many_options(args, options):
    """fit --many: bounds, fixed and the loss apply to every file's least_squares; a sigma (one per sample of
    the spec's data), --report and --absolute-sigma would not be read (fits.csv has the values and errors)."""
    unread = [
        what
        for what, given in (
            ("a sigma (--sigma-column or fit.sigma)", options.sigma is not None),
            ("--report", args.report),
            ("absolute_sigma", options.absolute_sigma),
        )
        if given
    ]
    if unread:
        raise SymcompileError(f"{unread[0]} applies to a single fit, not to fit --many")
    if args.method == "train" and (options.bounds or options.fixed or options.loss != "linear"):
        raise SymcompileError("bounds, fixed parameters and losses apply to --method least_squares, not train")


LEAST_SQUARES_MAX_ITER = 200  # fit's defaults for --max-iter and --tol with least_squares
LEAST_SQUARES_TOL = 1e-10


def _checked_fit_limits(args):
    """fit's --max-iter and --tol (None where not given), checked under the flags' names."""
    if args.max_iter is not None and not 1 <= args.max_iter <= 2**62:  # the solvers' int64 counts
        raise SymcompileError(f"--max-iter must be an integer from 1 to 2**62, not {args.max_iter}")
    if args.tol is not None and not (np.isfinite(args.tol) and args.tol >= 0):
        raise SymcompileError(f"--tol must be a finite number >= 0, not {args.tol}")
    return args.max_iter, args.tol


def _least_squares_settings(args):
    """least_squares's keywords from fit's --max-iter and --tol (xtol = ftol = gtol)."""
    max_iter, tol = _checked_fit_limits(args)
    max_iter = LEAST_SQUARES_MAX_ITER if max_iter is None else max_iter
    tol = LEAST_SQUARES_TOL if tol is None else tol
    return {"max_iter": max_iter, "xtol": tol, "ftol": tol, "gtol": tol}


def _train_settings(args):
    """train's keywords for fit --many --method train: --max-iter and --tol where given (else the model's)."""
    max_iter, tol = _checked_fit_limits(args)
    return {key: value for key, value in (("max_iter", max_iter), ("tol", tol)) if value is not None}


def _least_squares_module(model, rebuild_command, out_dir):
    """The module least squares runs on. Only scalar kernels have the Jacobian, so an MLP that `auto` builds with
    dense kernels (train's choice above options.DENSE_MIN_PARAMS parameters) is built with scalar ones for fit;
    train then runs those too."""
    from symcompile.dense import chosen_kernels
    from symcompile.pipeline import build

    if chosen_kernels(model, "auto") == "scalar":
        return ensure_built(model, rebuild_command, out_dir)
    path = module_path(model, out_dir)
    module, reason = current(path, model)
    if module is not None and "_residuals_and_jacobian" in module.MODEL.kernels:
        return module
    print(
        f"{path} {reason or 'has dense kernels, without the Jacobian least squares needs'}; building it with scalar kernels"
    )
    build(model, out_dir, BuildOptions(rebuild_command=rebuild_command, kernels="scalar"))
    return load_module(path)


def _check_least_squares(model):
    """A one-line error unless the model's module will have least_squares (built by _least_squares_module).
    A network above options.DENSE_MIN_PARAMS parameters has no formulas yet (mlp.symbolic_form): its loss says."""
    network_residuals = model.network is not None and model.network.shape.loss == "mean_squared_error"
    if not (model.residuals or network_residuals):
        raise SymcompileError(
            f'{model.name} is not a residual model: least squares needs residual = "..." in an expression spec '
            '(or an MLP with loss = "mean_squared_error")'
        )


def _threads(module, threads):
    """train()'s keyword for --threads: only modules with dense kernels take it."""
    if threads is None:
        return {}
    if module.MODEL.call_on_threads is None:  # every module's train() takes threads=; only dense kernels use it
        raise SymcompileError("--threads applies to modules with dense kernels (build --kernels dense)")
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise SymcompileError(f"--threads {threads}: Numba started {numba.config.NUMBA_NUM_THREADS} threads at most")
    return {"threads": threads}


def command_bench(args):
    from symcompile import seed_comparison  # the measuring stays out of build and train

    seed_comparison.check_options(args)
    model, rebuild_command = resolve_model(args.spec, args.data_root)
    require_data(model)
    if args.json:
        check_writable(args.json)
    return seed_comparison.run(model, rebuild_command, args)


def _print_state(module, label, w, X, Y):
    line = f"  {label:<10} loss {module.loss(w, X, Y):.15g}"
    outputs = module.forward(w, X)
    if outputs.size == 1:
        line += f", output {float(outputs.ravel()[0]):.15g}"
    right = accuracy(outputs, Y)
    if right is not None and outputs.size > 1:
        line += f", accuracy {right:.1%} of {len(Y)} samples"
    print(line)


def _add_build_options(cmd):
    cmd.add_argument(
        "--gradient",
        type=argument_type("gradient"),
        default="auto",
        help="how the gradient is derived: diff (one SymPy derivative per parameter), reverse (reverse mode, "
        "linear in the model's size), or auto (diff for small models such as the seed, else reverse)",
    )
    cmd.add_argument(
        "--layout",
        type=argument_type("layout"),
        default="auto",
        help="kernel code: unrolled (one line per value; fastest to run), rolled (loops over repeated "
        "statements; fastest to compile for large models), blocks (unrolled, the loss and gradient over "
        "blocks of 64 samples that vectorize), rolled-blocks (rolled, each statement over blocks of 64 "
        "samples: faster epochs, longer compile), or auto (rolled for large models, blocks where the data "
        "has 64 samples or more, else unrolled)",
    )


def _add_training_options(cmd):
    """train's settings; each defaults to the spec's [training] value, else the module's default."""
    cmd.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    cmd.add_argument("--max-iter", type=int, dest="max_iter", help="iterations (epochs, with --batch-size) at most")
    cmd.add_argument("--epochs", type=int, help="another name for --max-iter")
    cmd.add_argument("--tol", type=float, help="stop once every |step| is below this")
    cmd.add_argument("--optimizer", type=argument_type("optimizer"),
                     help=f"the update rule: {', '.join(allowed('optimizer'))} (gd is simultaneous)")  # fmt: skip
    cmd.add_argument("--update", type=argument_type("update"),
                     help=f"--optimizer's older name, which must agree with it: {', '.join(allowed('update'))}")  # fmt: skip
    cmd.add_argument("--momentum", type=float, help="momentum factor (optimizer momentum), as torch.optim.SGD's")
    cmd.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum (optimizer momentum)")
    cmd.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"), help="Adam's betas (0.9 0.999)")
    cmd.add_argument("--eps", type=float, help="Adam's eps, added after the square root (1e-8)")
    cmd.add_argument("--weight-decay", type=float, dest="weight_decay", help="L2 weight decay (decoupled for adamw)")
    cmd.add_argument("--batch-size", type=int, dest="batch_size", help="samples per mini-batch (default: all)")
    cmd.add_argument("--validation-split", type=float, dest="validation_split",
                     help="fraction of the data held out for validation, drawn with --seed")  # fmt: skip
    cmd.add_argument("--patience", type=int, help="stop after this many epochs without a better validation loss")
    cmd.add_argument("--seed", type=int, help="seed of the shuffling and of the validation split (default 0)")
    cmd.add_argument("--record-every", type=int, dest="record_every", help="record the loss every N iterations")
    cmd.add_argument("--progress", action=argparse.BooleanOptionalAction,
                     help="a progress bar (default: when the output is a terminal)")  # fmt: skip
    cmd.add_argument("--save", metavar="WEIGHTS.npz", help="save the trained weights (for predict --weights)")
    cmd.add_argument("--history", metavar="LOSS.csv", help="write the loss per epoch (and validation) as CSV")
    cmd.add_argument("--plot", metavar="LOSS.png", help="plot the loss per epoch (needs matplotlib: the plot extra)")


def _add_dtype_option(cmd):
    cmd.add_argument(
        "--dtype",
        type=argument_type("dtype"),
        help="the numbers an MLP's dense kernels compute in: float64 (the default) or float32 (twice the SIMD "
        "width; the loss is summed in float64); default: the spec's dtype",
    )


def _add_kernels_option(cmd):
    cmd.add_argument(
        "--kernels",
        type=argument_type("kernels"),
        default="auto",
        help="scalar (one sample at a time, straight-line code from SymPy), dense (MLPs: layers as loops over "
        "weight matrices, samples in vectorized blocks, threads), or auto (dense for MLPs larger than the seed, "
        "where the dense kernels take them)",
    )


def parser():
    top = argparse.ArgumentParser(
        prog="python -m symcompile",
        description="Compile a SymPy model (the built-in seed network, or a TOML spec) into a standalone "
        "Python/Numba module, and train it.",
    )
    top.add_argument("--version", action="version", version=f"symcompile {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build_cmd = commands.add_parser("build", help="compile a model into a Python/Numba module")
    build_cmd.set_defaults(run=command_build)
    _add_build_options(build_cmd)
    _add_kernels_option(build_cmd)
    _add_dtype_option(build_cmd)
    build_cmd.add_argument(
        "--hessian",
        action="store_true",
        help=f"emit the exact Hessian too: the module's hessian() and the newton optimizer (models of at most "
        f"{HESSIAN_MAX_PARAMS} parameters)",
    )
    build_cmd.add_argument(
        "--standalone",
        action="store_true",
        help="write symcompile's runtime beside the module, which then imports it: for machines without symcompile",
    )
    build_cmd.add_argument(
        "--dump-after",
        choices=DUMP_STAGES,
        help="print what that stage produced and stop; nothing is written",
    )

    train_cmd = commands.add_parser("train", help="train the model's module (building it first if needed)")
    train_cmd.set_defaults(run=command_train)
    _add_training_options(train_cmd)
    train_cmd.add_argument(
        "--threads", type=positive_count, help="threads for a module with dense kernels (default: Numba's)"
    )
    _add_dtype_option(train_cmd)
    cli_dask.add_train_arguments(train_cmd)

    predict_cmd = commands.add_parser("predict", help="the model's outputs for new data at saved weights")
    predict_cmd.set_defaults(run=command_predict)
    predict_cmd.add_argument("--weights", required=True, metavar="WEIGHTS.npz", help="weights from train --save")
    predict_cmd.add_argument("--data", required=True, metavar="DATA.csv", help="CSV with the model's input columns")
    predict_cmd.add_argument("--out", metavar="PREDICTIONS.csv", help="write the predictions here (default: print)")

    show_cmd = commands.add_parser("show", help="the formula, parameter and operation counts, layout, module")
    show_cmd.set_defaults(run=command_show)
    _add_build_options(show_cmd)
    _add_kernels_option(show_cmd)

    fit_cmd = commands.add_parser("fit", help="fit a residual model by Levenberg-Marquardt")
    fit_cmd.set_defaults(run=command_fit)
    fit_cmd.add_argument("--max-iter", type=int, dest="max_iter",
                         help=f"evaluations of the residuals at most (default: {LEAST_SQUARES_MAX_ITER}); "
                              "with --method train, its iterations (default: the model's)")  # fmt: skip
    fit_cmd.add_argument("--tol", type=float,
                         help=f"xtol = ftol = gtol of Levenberg-Marquardt (default: {LEAST_SQUARES_TOL}); "
                              "with --method train, its tol (default: the model's)")  # fmt: skip
    fit_cmd.add_argument("--plot", metavar="PNG", help="draw the data and the fitted curve with its 1-sigma confidence "
                         "band (one-input models; needs matplotlib)")  # fmt: skip
    fit_cmd.add_argument("--report", action="store_true",
                         help="print lmfit's fit report: values, standard and relative errors, correlations above "
                              "0.1, chi-square, reduced chi-square, AIC, BIC, R-squared, the stop reason")  # fmt: skip
    fit_cmd.add_argument(
        "--bound",
        action="append",
        metavar="NAME=LOWER:UPPER",
        help="bounds of a parameter (an empty side for none), such as a=0:10 or b=0:; repeatable",
    )
    fit_cmd.add_argument(
        "--fix",
        action="append",
        metavar="NAME[=VALUE]",
        help="hold a parameter at VALUE (default: its init); repeatable",
    )
    fit_cmd.add_argument(
        "--sigma-column",
        dest="sigma_column",
        metavar="COLUMN",
        help="the standard deviation of each sample's target: a column of the spec's CSV file",
    )
    fit_cmd.add_argument("--absolute-sigma", dest="absolute_sigma", action=argparse.BooleanOptionalAction,
                         help="standard errors from sigma as it is (SciPy's absolute_sigma), not scaled by the "
                              "reduced chi-square")  # fmt: skip
    fit_cmd.add_argument("--loss", choices=LOSSES, help="a robust loss, as SciPy's least_squares (default: linear)")
    fit_cmd.add_argument(
        "--f-scale",
        dest="f_scale",
        type=float,
        metavar="C",
        help="the robust loss's soft margin between inliers and outliers (default: 1)",
    )
    cli_dask.add_fit_many_arguments(fit_cmd)

    bench_cmd = commands.add_parser("bench", help="time the compiled loop against the blog's subs loop")
    bench_cmd.set_defaults(run=command_bench)
    from symcompile.seed_comparison import add_arguments as add_bench_arguments  # light: SymPy loads when run

    add_bench_arguments(bench_cmd)

    for cmd in (build_cmd, train_cmd, fit_cmd, predict_cmd, show_cmd, bench_cmd):
        cmd.add_argument("spec", nargs="?", help="model spec file, TOML (default: the built-in seed network)")
        cmd.add_argument(
            "--out-dir", default=DEFAULT_OUT_DIR, help="folder for generated modules (default: %(default)s)"
        )
        cmd.add_argument(
            "--data-root", help="folder the spec's data files may be read from (default: the spec's own folder)"
        )
    return top


def main(argv=None, *, report_startup=False):
    """Run one command. `report_startup`: this process is the command (`python -m symcompile`), so `build` also
    reports the seconds from the process's start to the command's (interpreter start and imports)."""
    ctrl_c = CtrlC()  # what Ctrl-C does, phase by phase (symcompile/interrupts.py): here, end at once
    with ctrl_c.at_once("starting"):
        args = parser().parse_args(argv)
        args.startup_seconds = seconds_since_process_start() if report_startup else None
        args.ctrl_c = ctrl_c
        ctrl_c.doing = f"running {args.command}"
        try:
            status = args.run(args)
        except SymcompileError as exc:
            # Only problems with the user's input are SymcompileErrors (the stages translate what SymPy raises
            # on a user's formula); anything else is a bug in symcompile and keeps its traceback.
            print(f"symcompile: error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # where a command lets Python's handler raise it (ctrl_c.python())
            print("symcompile: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # stdout closed early (`... | head -3`): end quietly, as a command killed by SIGPIPE
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would fail again
            return EXIT_BROKEN_PIPE
    if ctrl_c.interrupted and status != EXIT_INTERRUPTED:  # Ctrl-C once the work was done: it was finished first
        print(f"symcompile: interrupted while {ctrl_c.doing}, which was finished first", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


EXIT_BROKEN_PIPE = 141  # a shell's code for a command killed by SIGPIPE (128 + 13)


def _one_line(message):
    return " ".join(message.split())


def seconds_since_process_start():
    """Seconds since this process started, as the OS counts them (Linux's /proc), or None where it does not say."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()  # after the command's name, which may hold spaces
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: clock ticks after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc, or no CLOCK_BOOTTIME (not Linux)
        return None
    return age if age >= 0 else None
