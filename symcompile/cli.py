"""`python -m symcompile build|train|fit|bench`: the command line.

Every user-facing failure is a SymcompileError, printed as one line
(`symcompile: error: ...`) with exit status 2; argparse does the same for bad
arguments. Settings are checked here, before the generated module sees them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from symcompile import cli_dask, plotting
from symcompile.dump import DUMP_STAGES, dump_after
from symcompile.errors import SymcompileError
from symcompile.metrics import accuracy
from symcompile.options import TRAINING_KEYS, BuildOptions, allowed, argument_type, training_settings
from symcompile.pipeline import DEFAULT_OUT_DIR, build
from symcompile.provenance import why_rebuild
from symcompile.seed import seed_model
from symcompile.spec import load_spec
from symcompile.writer import load_module


def resolve_model(spec):
    """The model a command works on, and the command that rebuilds it: the built-in seed when no spec is given."""
    if spec is None:
        return seed_model(), "python -m symcompile build"
    return load_spec(spec), f"python -m symcompile build {shlex.quote(spec)}"


def module_path(model, out_dir):
    return Path(out_dir) / f"{model.name}.py"


def command_build(args):
    start = time.perf_counter()
    model, rebuild_command = resolve_model(args.spec)
    model_seconds = time.perf_counter() - start
    options = BuildOptions(args.gradient, args.layout, rebuild_command)
    if args.dump_after:
        print(dump_after(model, options, args.dump_after))
        return 0
    describe = f"{len(model.params)} params, {len(model.inputs)} inputs, {len(model.targets)} targets"
    print(f"symcompile build: {model.name} ({describe}, {model.X.shape[0]} default samples)")
    report = build(model, args.out_dir, options, model_seconds=model_seconds)
    notes = {
        "model": "spec read and model checked" if args.spec else "built-in seed model",
        "rewrite": ", ".join(report.rewrites) or "nothing to rewrite",
        "differentiate": f"gradient by {report.gradient}",
        "optimize": f"{report.ops_before} -> {report.ops_after} operations after CSE",
        "emit": f"{report.layout} layout",
        "write": f"{report.path} ({'written' if report.changed else 'unchanged'})",
    }
    for stage, seconds in report.stage_seconds.items():
        print(f"  {stage:<14} {seconds:8.3f} s  {notes.get(stage, '')}".rstrip())
    print(f"  {'total':<14} {sum(report.stage_seconds.values()):8.3f} s")
    return 0


def require_data(model):
    if model.X.shape[0] == 0:
        raise SymcompileError(f"{model.name} has no default data to train on")


def command_train(args):
    model, rebuild_command = resolve_model(args.spec)
    # Check everything the user gave before building, so bad input never writes a module.
    require_data(model)
    overrides = {k: v for k, v in vars(args).items() if k in TRAINING_KEYS and v is not None}
    settings = vars(training_settings(overrides, base=model.training))
    module = built_module(model, args.out_dir, rebuild_command)
    print(f"symcompile train: {model.name} with " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if args.dask:
        return cli_dask.train_on_dask(args, module, settings, _print_state)
    start = time.perf_counter()
    result = module.train(module.INIT, module.X, module.Y, **settings)
    first_call = time.perf_counter() - start
    start = time.perf_counter()
    module.train(module.INIT, module.X, module.Y, **settings)
    loop = time.perf_counter() - start
    _print_state(module, "initial", module.INIT, result.loss_history[0])
    _print_state(module, "final", result.w, result.loss_history[-1])
    print(f"  iterations {result.iterations} ({result.status})")
    print("  weights    " + ", ".join(f"{n}={v:.10g}" for n, v in zip(module.PARAMS, result.w)))
    print(f"  wall time  {loop * 1e3:.3f} ms for the loop; first call {first_call:.3f} s (Numba compile or cache load)")
    return 0


def built_module(model, out_dir, rebuild_command):
    """The model's module, imported; built first when it is missing or was built from a different model."""
    path = module_path(model, out_dir)
    reason = why_rebuild(path, model)
    if reason:
        print(f"{path} {reason}; building it")
        build(model, out_dir, BuildOptions(rebuild_command=rebuild_command))
    return load_module(path)


def command_fit(args):
    model, rebuild_command = resolve_model(args.spec)
    if args.many:  # one fit per CSV file of a folder, optionally on Dask (cli_dask.py)
        return cli_dask.fit_many_command(args, built_module(model, args.out_dir, rebuild_command))
    # Everything checked before building, so bad input never writes a module.
    if not model.residuals:
        raise SymcompileError(
            f"{model.name} is not a residual model: least squares needs residual = \"...\" in an expression spec "
            "(or an MLP with loss = \"mean_squared_error\")"
        )
    require_data(model)
    if args.plot:
        plotting.check_can_plot(model, args.plot)
    settings = {"max_iter": args.max_iter, "xtol": args.tol, "ftol": args.tol, "gtol": args.tol}
    for name, value in settings.items():
        if not (value >= 1 if name == "max_iter" else value >= 0):
            raise SymcompileError(f"--{name.replace('_', '-')} must be {'at least 1' if name == 'max_iter' else '>= 0'}, not {value}")
    module = built_module(model, args.out_dir, rebuild_command)
    if not hasattr(module, "least_squares"):
        raise SymcompileError(f"{module.__file__} has no least_squares; rebuild it")
    start = time.perf_counter()
    fit = module.least_squares(**settings)
    first_call = time.perf_counter() - start
    start = time.perf_counter()
    module.least_squares(**settings)
    seconds = time.perf_counter() - start
    n_residuals = module.X.shape[0] * module._RESIDUALS_PER_SAMPLE
    print(f"symcompile fit: {model.name} by Levenberg-Marquardt, {len(model.params)} parameters, {n_residuals} residuals")
    width = max(len(name) for name in module.PARAMS)
    for name, value, error in zip(module.PARAMS, fit.w, fit.stderr):
        print(f"  {name:<{width}}  {value:<22.15g} +- {error:.6g} (standard error)")
    print(f"  residual sum of squares {2 * fit.cost:.15g}")
    print(f"  iterations {fit.iterations} ({fit.status})")
    print(f"  wall time  {seconds * 1e3:.3f} ms for the fit; first call {first_call:.3f} s (Numba compile or cache load)")
    if args.plot:
        plotting.plot_fit(module, fit.w, args.plot)
        print(f"  plot       {args.plot}")
    return 0


def command_bench(args):
    if args.spec and args.scenario not in ("seed", "all"):
        raise SymcompileError(f"a spec file applies to the seed scenario only, not to --scenario {args.scenario}")
    model, rebuild_command = resolve_model(args.spec)
    require_data(model)
    if args.json:
        _check_writable(args.json)
    from symcompile import bench  # the benchmark stays out of build and train

    return bench.run(model, rebuild_command, args)


def _check_writable(path):
    """Fail before minutes of measuring, not after, when the JSON cannot be written."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise SymcompileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _print_state(module, label, w, loss):
    line = f"  {label:<10} loss {loss:.15g}"
    outputs = module.forward(w, module.X)
    if outputs.size == 1:
        line += f", output {float(outputs.ravel()[0]):.15g}"
    right = accuracy(outputs, module.Y)
    if right is not None and outputs.size > 1:
        line += f", accuracy {right:.1%} of {len(module.Y)} samples"
    print(line)


def parser():
    top = argparse.ArgumentParser(prog="python -m symcompile", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)

    build_cmd = commands.add_parser("build", help="compile a model into a Python/Numba module")
    build_cmd.set_defaults(run=command_build)
    build_cmd.add_argument(
        "--gradient",
        type=argument_type("gradient"),
        default="auto",
        help="how the gradient is derived: diff (one SymPy derivative per parameter), reverse (reverse mode, "
        "linear in the model's size), or auto (diff for small models such as the seed, else reverse)",
    )
    build_cmd.add_argument(
        "--layout",
        type=argument_type("layout"),
        default="auto",
        help="kernel code: unrolled (one line per value; fastest to run), rolled (loops over repeated "
        "statements; fastest to compile for large models), or auto (rolled for large models)",
    )
    build_cmd.add_argument(
        "--dump-after",
        choices=DUMP_STAGES,
        help="print what that stage produced and stop; nothing is written",
    )

    train_cmd = commands.add_parser("train", help="run the compiled training loop (builds first if needed)")
    train_cmd.set_defaults(run=command_train)
    train_cmd.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    train_cmd.add_argument("--max-iter", type=int, dest="max_iter", help="iterations at most")
    train_cmd.add_argument("--tol", type=float, help="stop once every |step| is below this")
    train_cmd.add_argument("--update", type=argument_type("update"), help=f"update rule: {', '.join(allowed('update'))}")
    cli_dask.add_train_arguments(train_cmd)

    fit_cmd = commands.add_parser("fit", help="fit a residual model to its data by least squares (builds first if needed)")
    fit_cmd.set_defaults(run=command_fit)
    fit_cmd.add_argument("--max-iter", type=int, dest="max_iter", default=200, help="evaluations of the residuals at most (default: %(default)s)")
    fit_cmd.add_argument("--tol", type=float, default=1e-10, help="xtol = ftol = gtol of Levenberg-Marquardt (default: %(default)s)")
    fit_cmd.add_argument("--plot", metavar="PNG", help="draw the data and the fitted curve (one-input models; needs matplotlib)")
    cli_dask.add_fit_many_arguments(fit_cmd)

    bench_cmd = commands.add_parser("bench", help="time the compiled loop against the subs loop and the alternatives")
    bench_cmd.set_defaults(run=command_bench)
    from symcompile.bench import add_arguments as add_bench_arguments  # light: scenarios load when run

    add_bench_arguments(bench_cmd)

    for cmd in (build_cmd, train_cmd, fit_cmd, bench_cmd):
        cmd.add_argument("spec", nargs="?", help="model spec file, TOML (default: the built-in seed network)")
        cmd.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help="folder for generated modules (default: %(default)s)")
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SymcompileError as exc:
        # Only problems with the user's input are SymcompileErrors (the stages translate what SymPy raises
        # on a user's formula); anything else is a bug in symcompile and keeps its traceback.
        print(f"symcompile: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2


def _one_line(message):
    return " ".join(message.split())
