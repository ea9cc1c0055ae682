"""`python -m benchmarks`: the compiled loop measured against the subs loop and the alternatives.

Scenarios, one module each:
    seed      a model on its own data (the blog's network, or SPEC), per iteration  scenario_seed.py
    dataset   MLPs on thousands of samples (2-16-16-1, digits), per epoch            scenario_dataset.py
    wide      784-1000-1000-10 on 10,000 samples: build, first call, epoch       scenario_dataset.py
    scaling   build and compile costs as networks grow, diff against reverse      scenario_scaling.py
    minibatch digits 64-32-10, Adam on batches of 32, per epoch                  scenario_minibatch.py
    fitting   NIST StRD curve fits: compiled Levenberg-Marquardt against SciPy's  lm_bench.py
    blocks    any SymPy model's kernels per sample against blocks of samples      scenario_blocks.py
    distributed  many fits and partitioned training on a Dask LocalCluster        scenario_distributed.py
                 (the `dask` extra; not part of `all`, since it starts a cluster)
Shared pieces: `timing` (medians of repeats, the machine), `report` (tables,
JSON), `fresh_process` (costs only a new interpreter shows), and the peers
(`numba_seed`, `numpy_mlp`, `jax_peer`, `torch_peer`).

The seed scenario here is the full one: `python -m symcompile bench` (installed,
symcompile/seed_comparison.py) times the subs loop against the compiled loop
only, and this scenario adds the other peers and the one-time costs. The NumPy
network, NIST's data and the blog's loop are the tests' references
(tests/references/, on the path through benchmarks/__init__.py).

Benchmarks measure and print; they never assert a speed. This module stays
light: scenarios are imported only when run.
"""

from __future__ import annotations

import argparse
import dataclasses

from symcompile.options import DEFAULT_OUT_DIR, argument_type, positive_count

SCENARIOS = ("seed", "dataset", "scaling", "minibatch", "fitting", "wide", "blocks", "distributed")
# --quick: enough to check that every row runs, far too little to measure.
QUICK_SEED = {
    "iterations": 1000, "python_iterations": 20, "subs_iterations": 1, "repeats": 3, "python_repeats": 2,
    "fresh_processes": 1, "build_repeats": 1,
}  # fmt: skip
QUICK_DATASET = {"epochs": 3, "python_epochs": 3, "repeats": 2, "fresh_processes": 0}


def _layers(text):
    try:
        layers = [int(size) for size in text.split("-")]
    except ValueError:
        layers = []
    if len(layers) < 2 or min(layers) < 1:
        raise argparse.ArgumentTypeError(f"layer sizes like 2-16-16-1 expected, got {text!r}")
    return layers


def _workload(text):
    if text not in ("small", "digits"):
        raise argparse.ArgumentTypeError(f"workloads are small and digits, not {text!r}")
    return text


def _list_of(parse_one):
    return lambda text: [parse_one(item) for item in text.split(",")]


def add_arguments(parser):
    parser.add_argument(
        "--scenario", choices=SCENARIOS + ("all",), default="seed", help="what to measure (default: %(default)s)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="few repeats and iterations: checks the setup only")
    seed = parser.add_argument_group("seed scenario")
    seed.add_argument("--subs-iterations", type=positive_count, help="subs-loop iterations (default: 3)")
    seed.add_argument(
        "--full-subs", action="store_true", help="run all the model's subs iterations (seed: 999, minutes)"
    )
    seed.add_argument(
        "--iterations", type=positive_count, help="iterations per timed compiled-loop call (default: 20000)"
    )
    parser.add_argument("--repeats", type=positive_count, help="timed calls per row (default: 15 seed, 5 dataset)")
    dataset = parser.add_argument_group("dataset scenario")
    dataset.add_argument("--layers", type=_layers, default=[2, 16, 16, 1], help="MLP layer sizes (default: 2-16-16-1)")
    dataset.add_argument("--samples", type=positive_count, default=4096, help="training samples (default: %(default)s)")
    dataset.add_argument("--epochs", type=positive_count, help="epochs per timed call (default: 20; also minibatch)")
    dataset.add_argument(
        "--workloads", type=_list_of(_workload), help="small (--layers, --samples), digits (default: both)"
    )
    dataset.add_argument(
        "--fresh-processes", type=int, help="runs of the one-time costs in new processes (default: 1; 0: none)"
    )
    dataset.add_argument(
        "--one-time-only", action="store_true", help="only the one-time costs (build, compile, cache load)"
    )
    scaling = parser.add_argument_group("scaling scenario")
    scaling.add_argument(
        "--sizes",
        type=_list_of(_layers),
        help="comma-separated layer sizes (default: 2-4-1,2-8-8-1,4-16-16-1,8-32-32-1)",
    )
    scaling.add_argument(
        "--methods", type=_list_of(argument_type("gradient")), help="gradient methods (default: diff,reverse)"
    )
    scaling.add_argument(
        "--layouts",
        type=_list_of(argument_type("layout")),
        help="kernel layouts: auto, unrolled, rolled (default: auto)",
    )
    scaling.add_argument(
        "--diff-max-params",
        type=positive_count,
        help="skip diff above this many parameters (default: 369, that is up to 4-16-16-1)",
    )


def _run_seed(model, rebuild_command, args):
    from benchmarks.bench.scenario_seed import SeedSettings, run_seed

    settings = SeedSettings(out_dir=args.out_dir, rebuild_command=rebuild_command)
    if args.quick:
        settings = _replace(settings, QUICK_SEED)
    overrides = {
        "iterations": args.iterations,
        "repeats": args.repeats,
        "subs_iterations": model.training.max_iter if args.full_subs else args.subs_iterations,
    }
    return run_seed(model, _replace(settings, overrides))


def _run_dataset(model, rebuild_command, args):
    from benchmarks.bench.scenario_dataset import DatasetSettings, run_dataset

    settings = DatasetSettings(layers=args.layers, samples=args.samples, out_dir=args.out_dir)
    if args.quick:
        settings = _replace(settings, QUICK_DATASET)
    workloads = tuple(args.workloads) if args.workloads else None
    overrides = {"epochs": args.epochs, "repeats": args.repeats, "workloads": workloads,
                 "fresh_processes": args.fresh_processes, "one_time_only": args.one_time_only or None}  # fmt: skip
    return run_dataset(_replace(settings, overrides))


def _run_wide(model, rebuild_command, args):
    from benchmarks.bench.scenario_dataset import DatasetSettings, run_dataset

    settings = DatasetSettings(out_dir=args.out_dir, workloads=("wide",), repeats=args.repeats or 3)
    return run_dataset(settings)


def _run_scaling(model, rebuild_command, args):
    from benchmarks.bench import scenario_scaling as scaling

    report = scaling.ScalingReport()
    sizes = [tuple(layers) for layers in args.sizes] if args.sizes else scaling.SIZES
    max_params = {"diff": args.diff_max_params} if args.diff_max_params else None
    repeats = args.repeats or (1 if args.quick else 7)
    methods, layouts = args.methods or scaling.METHODS, args.layouts or ("auto",)
    out_dir = None if args.out_dir == DEFAULT_OUT_DIR else args.out_dir  # by default in a temporary folder
    report.records = scaling.run_scaling(sizes, methods, layouts=layouts, max_params=max_params,
                                      repeats=repeats, out_dir=out_dir, progress=scaling.print_progress)  # fmt: skip
    return report.finish()


def _run_minibatch(model, rebuild_command, args):
    from benchmarks.bench.scenario_minibatch import MinibatchSettings, run_minibatch

    settings = MinibatchSettings(out_dir=args.out_dir)
    if args.quick:
        settings = _replace(settings, {"epochs": 2, "repeats": 1})
    return run_minibatch(_replace(settings, {"epochs": args.epochs, "repeats": args.repeats}))


def _run_distributed(model, rebuild_command, args):
    from symcompile.distributed import require_dask

    require_dask()  # a one-line error without the extra
    from benchmarks.bench.scenario_distributed import QUICK, DistributedSettings, run_distributed

    settings = DistributedSettings()
    if args.quick:
        settings = _replace(settings, QUICK)
    return run_distributed(_replace(settings, {"repeats": args.repeats}))


def _replace(settings, overrides):
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _run_fitting(model, rebuild_command, args):
    from benchmarks.bench.lm_bench import run_fitting

    return run_fitting(repeats=args.repeats or (1 if args.quick else 20))


def _run_blocks(model, rebuild_command, args):
    from benchmarks.bench.scenario_blocks import BlocksSettings, run_blocks

    settings = BlocksSettings(out_dir=args.out_dir)
    if args.quick:
        settings = _replace(settings, {"samples": 1000, "epochs": 2, "repeats": 1})
    return run_blocks(_replace(settings, {"epochs": args.epochs, "repeats": args.repeats}))


RUNNERS = {
    "seed": _run_seed,
    "dataset": _run_dataset,
    "scaling": _run_scaling,
    "minibatch": _run_minibatch,
    "fitting": _run_fitting,
    "wide": _run_wide,
    "blocks": _run_blocks,
    "distributed": _run_distributed,
}


def _chosen(scenario):
    return SCENARIOS[:3] if scenario == "all" else (scenario,)  # "all" leaves out the slow and the cluster ones


def main(argv=None):
    """The command line: the scenario(s) chosen, on the seed or a spec's model (the seed scenario only)."""
    from symcompile.cli import check_writable, require_data, resolve_model
    from symcompile.errors import SymcompileError

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", help="model spec file, TOML, for the seed scenario (default: the seed)")
    parser.add_argument(
        "--out-dir", default=DEFAULT_OUT_DIR, help="folder for generated modules (default: %(default)s)"
    )
    parser.add_argument("--data-root", help="folder the spec's data files may be read from")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.spec and args.scenario not in ("seed", "all"):
            raise SymcompileError(f"a spec file applies to the seed scenario only, not to --scenario {args.scenario}")
        model, rebuild_command = resolve_model(args.spec, args.data_root)
        require_data(model)
        if args.json:
            check_writable(args.json)
    except SymcompileError as exc:
        parser.error(str(exc))
    return run(model, rebuild_command, args)


def run(model, rebuild_command, args):
    """Run the chosen scenario(s), print each table, write JSON if asked.

    `model` is the seed scenario's model; its module is built with `rebuild_command` in its header,
    so that building the seed into generated/ writes the same bytes as `build` does.
    """
    from benchmarks.bench.report import write_json

    reports = []
    for name in _chosen(args.scenario):
        report = RUNNERS[name](model, rebuild_command, args)
        report.print()
        print()
        reports.append(report)
    if args.json:
        write_json(reports, args.json)
        print(f"wrote {args.json}")
    return 0
