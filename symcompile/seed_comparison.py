"""`python -m symcompile bench`: the seed comparison, the blog's `subs` loop against the compiled loop.

The mission's own measurement: one model from its initial weights, one
gradient-descent iteration at a time, the blog's way (SymPy `subs` on each
parameter's derivative, each new value feeding the next derivative) and the
compiled module's `train()`, per iteration (the median of repeats, with the
range), their ratio, and how far the weights end apart after the same
iterations. The model is the blog's network unless a spec is given.

The other workloads (dataset, wide, scaling, minibatch, fitting, blocks,
distributed) and the other peers (lambdify, hand-written Numba, JAX, PyTorch)
are in the checkout's benchmarks/ folder, which is not installed:
`python -m benchmarks --scenario NAME` from the checkout (benchmarks/README.md).
Figures are measured and printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, replace

from symcompile.errors import SymcompileError
from symcompile.options import positive_count

BENCHMARKS = "python -m benchmarks from a checkout (benchmarks/README.md)"
# The options of the scenarios that moved to benchmarks/: `bench` names them and says where they went.
MOVED_OPTIONS = ("--layers", "--samples", "--epochs", "--workloads", "--fresh-processes", "--one-time-only",
                 "--sizes", "--methods", "--layouts", "--diff-max-params")  # fmt: skip


@dataclass(frozen=True)
class SeedSettings:
    iterations: int = 20_000  # per timed call of the compiled loop
    subs_iterations: int = 3  # the subs loop takes ~0.15 s an iteration on the seed
    repeats: int = 15
    out_dir: str = "generated"
    rebuild_command: str | None = None  # for the module's header, as `build` writes it


# --quick: enough to check that every row runs, far too little to measure.
QUICK = {"iterations": 1000, "subs_iterations": 1, "repeats": 3}


class SubsLoop:
    """The blog's method for any model: each sample's numbers put into the loss first (as the blog writes its
    formula), each parameter's derivative by `diff`; an iteration evaluates them with `subs` in the parameters'
    order, each new value feeding the next derivative (the sequential update), averaged over the samples.
    On the seed this is the blog's own loop, value for value (tests/test_seed.py checks it)."""

    def __init__(self, model):
        import sympy as sp

        self.model = model
        columns = model.inputs + model.targets
        at_samples = [model.loss.subs(dict(zip(columns, [*map(float, x), *map(float, y)]))) for x, y in
                      zip(model.X, model.Y)]  # fmt: skip
        self.derivatives = [[sp.diff(loss, p) for p in model.params] for loss in at_samples]

    def iterate(self, values):
        """One iteration from `values`: the parameters after it, as floats."""
        params, lr = self.model.params, self.model.training.lr
        values = [float(v) for v in values]
        for j in range(len(params)):
            point = dict(zip(params, values))
            slope = sum(float(derivatives[j].subs(point)) for derivatives in self.derivatives)
            values[j] -= lr * slope / len(self.derivatives)
        return values


@dataclass
class Row:
    name: str
    update: str
    seconds: list  # per unit (iteration or run), one per repeat
    difference: float | None = None  # largest relative weight difference to the compiled module's
    ratio: float | None = None  # median seconds over the compiled loop's, same update

    @property
    def median(self):
        return statistics.median(self.seconds)

    def line(self):
        low, high = min(self.seconds), max(self.seconds)
        timing = f"{format_seconds(self.median)} ({format_seconds(low)}-{format_seconds(high)})"
        ratio = "" if self.ratio is None else f"{self.ratio:.3g} x"
        check = "" if self.difference is None else f"{self.difference:.1e}"
        return f"  {self.name:<36} {self.update:<12} {timing:>30} {ratio:>11} {check:>10}"


def format_seconds(seconds):
    """A time with the unit that keeps it readable: 253 ns, 4.71 us, 12.3 ms, 2.95 s (the benchmarks' too)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def timed_runs(run, repeats, per=1, warmup=1):
    """Seconds per unit of `run()`, `repeats` times after `warmup` untimed calls (the benchmarks' timings too)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / per)
    return times


def with_progress(iterations, name):
    """A progress bar over the subs loop's seconds-long iterations, where tqdm is installed (the bench extra)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterations
    return tqdm(iterations, desc=name, unit="it", leave=False)


def _difference(values, module, iterations):
    """The largest relative difference of `values` to the module's weights after as many sequential iterations."""
    import numpy as np

    want = module.train(max_iter=iterations, tol=0.0, update="sequential", record_every=0).w
    return float(np.max(np.abs(np.asarray(values) - want)) / np.max(np.abs(want)))


def _subs_row(model, module, settings):
    loop, values, times = SubsLoop(model), list(model.init), []
    for _ in with_progress(range(settings.subs_iterations), "subs loop"):
        start = time.perf_counter()
        values = loop.iterate(values)
        times.append(time.perf_counter() - start)
    return Row("SymPy subs loop (the blog's method)", "sequential", times,
               _difference(values, module, settings.subs_iterations))  # fmt: skip


def _compiled_row(module, settings, update):
    n = settings.iterations
    times = timed_runs(lambda: module.train(max_iter=n, tol=0.0, update=update), settings.repeats, per=n)
    return Row("compiled module train()", update, times)


def compare(model, settings: SeedSettings) -> dict:
    """Build the model's module and time both loops: {"per_iteration": [Row], "runs": [Row], "notes": [str]}."""
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    module = load_module(build(model, settings.out_dir, rebuild_command=settings.rebuild_command).path)
    subs = _subs_row(model, module, settings)
    compiled = {update: _compiled_row(module, settings, update) for update in ("sequential", "simultaneous")}
    subs.ratio = subs.median / compiled["sequential"].median
    for row in compiled.values():
        row.ratio = 1.0
    defaults = module.DEFAULTS
    runs = [Row(f"compiled train(): {defaults['max_iter']} iterations", defaults["update"],
                timed_runs(lambda: module.train(), settings.repeats))]  # fmt: skip
    if settings.subs_iterations == defaults["max_iter"] and defaults["update"] == "sequential":
        runs.append(
            Row(subs.name, "sequential", [sum(subs.seconds)], subs.difference, sum(subs.seconds) / runs[0].median)
        )
    notes = [
        f"target: compiled sequential >= 1e6 x faster than subs per iteration; measured {subs.ratio:.3g} x",
        f"target: the model's {defaults['max_iter']} iterations under 1 ms; measured {format_seconds(runs[0].median)}",
    ]
    return {"per_iteration": [subs, compiled["sequential"], compiled["simultaneous"]], "runs": runs, "notes": notes}


def print_comparison(name, result):
    header = f"  {'':<36} {'update':<12} {'median (min-max)':>30} {'x compiled':>11} {'weights':>10}"
    print(f"{name}: time per iteration, median of repeats (weights: largest relative difference to the module's)")
    print(header)
    for row in result["per_iteration"]:
        print(row.line())
    print(f"\n{name}: whole runs with the model's defaults")
    for row in result["runs"]:
        print(row.line())
    print()
    for note in result["notes"]:
        print(note)


def write_json(name, result, path):
    rows = [
        {"table": table, "name": row.name, "update": row.update, "median": row.median, "low": min(row.seconds),
         "high": max(row.seconds), "repeats": len(row.seconds), "ratio": row.ratio, "difference": row.difference}
        for table in ("per_iteration", "runs") for row in result[table]
    ]  # fmt: skip
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"scenario": "seed", "model": name, "load": _load(), "rows": rows, "notes": result["notes"]}, file,
                  indent=1)  # fmt: skip


def _load():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class _MovedOption(argparse.Action):
    """An option of a scenario that moved to benchmarks/: parsed, then refused in one line by `check_options`."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.moved_option = option_string


def add_arguments(parser):
    parser.add_argument("--scenario", default="seed", help="seed, the only one here (the others: benchmarks/)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="few repeats and iterations: checks the setup only")
    parser.add_argument("--subs-iterations", type=positive_count, help="subs-loop iterations (default: 3)")
    parser.add_argument("--full-subs", action="store_true", help="all the model's subs iterations (seed: 999, minutes)")
    parser.add_argument(
        "--iterations", type=positive_count, help="iterations per timed compiled-loop call (default: 20000)"
    )
    parser.add_argument("--repeats", type=positive_count, help="timed calls per row (default: 15)")
    parser.set_defaults(moved_option=None)
    for option in MOVED_OPTIONS:
        parser.add_argument(option, action=_MovedOption, nargs="?", dest="moved_option", help=argparse.SUPPRESS)


def check_options(args):
    """One-line errors for what moved to benchmarks/."""
    if args.scenario != "seed":
        raise SymcompileError(f"--scenario {args.scenario}: `bench` runs the seed comparison only; "
                              f"the other scenarios are {BENCHMARKS}")  # fmt: skip
    if args.moved_option:
        raise SymcompileError(f"{args.moved_option} belongs to the scenarios of {BENCHMARKS}")


def run(model, rebuild_command, args):
    """Compare, print, and write JSON if asked. `model`'s module is built with `rebuild_command` in its header,
    so that building the seed into generated/ writes the same bytes as `build` does."""
    settings = SeedSettings(out_dir=args.out_dir, rebuild_command=rebuild_command)
    if args.quick:
        settings = replace(settings, **QUICK)
    subs_iterations = model.training.max_iter if args.full_subs else args.subs_iterations
    overrides = {"iterations": args.iterations, "repeats": args.repeats, "subs_iterations": subs_iterations}
    settings = replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    result = compare(model, settings)
    print_comparison(model.name, result)
    if args.json:
        write_json(model.name, result, args.json)
        print(f"wrote {args.json}")
    return 0
