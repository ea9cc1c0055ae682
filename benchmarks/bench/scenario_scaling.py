"""Scaling benchmark: sigmoid MLPs of growing size, gradient by `diff` and by reverse mode.

For each network, method and layout it builds the module into a fresh folder
and reports the parameters, the symbolic build time of each stage, the
generated lines, Numba's compile time (first call of the fused kernel, then
the rest of the training loop) and the time per gradient (median of repeats
over the default data). Plain `diff` swells with the model (about 40 s for
4-16-16-1), so by default it is skipped above 4-16-16-1; the table says so.

    python -m benchmarks --scenario scaling [--sizes 2-4-1,2-8-8-1] [--methods diff,reverse]
        [--layouts auto,unrolled,rolled] [--diff-max-params N]
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sympy.core.cache import clear_cache

from symcompile import options
from benchmarks.bench.timing import load_average, time_once
from symcompile.mlp import MLPShape, mlp_model, symbolic_form
from symcompile.pipeline import build
from symcompile.writer import load_module

SIZES = ((2, 4, 1), (2, 8, 8, 1), (4, 16, 16, 1), (8, 32, 32, 1))
METHODS = ("diff", "reverse")
# `diff` above this many parameters (4-16-16-1 has 369) would take far longer than the rest of the run.
MAX_PARAMS = {"diff": 369}
N_SAMPLES = 32
STAGES = options.STAGES[1:]  # the model is made before the build


def size_label(layers) -> str:
    return "-".join(map(str, layers))


def scaling_model(layers, name="scaling", seed=0):
    """A sigmoid MLP with binary cross-entropy and a random data set of N_SAMPLES samples, in its SymPy form
    (this scenario measures the scalar pipeline)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, layers[0]))
    Y = (rng.random((N_SAMPLES, layers[-1])) < 0.5).astype(float)
    return symbolic_form(mlp_model(name, list(layers), X=X, Y=Y, seed=seed))


def n_params(layers) -> int:
    return MLPShape(tuple(layers)).n_params  # per-neuron biases, as scaling_model builds


def _warm_up_numba(out_dir):
    """Pay Numba's one-time start-up (LLVM, typing of the module's NumPy calls) before anything is measured."""
    for layout in ("unrolled", "rolled"):
        module = load_module(
            build(scaling_model((1, 1), f"warm_up_{layout}"), out_dir, layout=layout, kernels="scalar").path
        )
        module.loss_and_grad()
        module.train(max_iter=1)


def _forget_cached_kernels(path: Path):
    """Numba's on-disk cache for this module, so that compile times are compile times."""
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]"):
        cached.unlink()


def seconds_per_gradient(module, repeats):
    """Median over `repeats` batches of the fused kernel's time per call (no wrapper checks)."""
    w, X, Y = module.INIT, module.X, module.Y
    grad = np.empty_like(w)
    kernel = module._loss_and_grad_kernel
    once, _ = time_once(lambda: kernel(w, X, Y, grad))
    calls = max(1, int(0.02 / max(once, 1e-7)))  # batches of about 20 ms
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            kernel(w, X, Y, grad)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def measure(layers, method, layout, out_dir, repeats=7) -> dict:
    """Build, compile and time one network with one method and layout."""
    model = scaling_model(layers, f"scaling_{'_'.join(map(str, layers))}_{method}_{layout}")
    clear_cache()  # SymPy caches derivatives: a second build of the same network would look faster than it is
    report = build(model, out_dir, gradient=method, layout=layout, kernels="scalar")
    source = report.path.read_text(encoding="utf-8")
    _forget_cached_kernels(report.path)
    module = load_module(report.path)
    compile_grad, (_, grad) = time_once(module.loss_and_grad)
    steady, _ = time_once(module.loss_and_grad)
    compile_train, _ = time_once(lambda: module.train(max_iter=1))
    return {
        "size": size_label(layers),
        "method": report.gradient,
        "layout": report.layout,
        "params": len(model.params),
        "skipped": "",
        "stage_s": {stage: report.stage_seconds[stage] for stage in STAGES},
        "build_s": sum(report.stage_seconds[stage] for stage in STAGES),
        "ops": report.ops_after,
        "lines": len(source.splitlines()),
        "kernel_lines": kernel_lines(source),
        "compile_grad_s": compile_grad - steady,
        "compile_train_s": compile_train,
        "gradient_s": seconds_per_gradient(module, repeats),
        "grad": grad,
    }


def kernel_lines(source) -> int:
    """Lines of the fused loss-and-gradient kernel, the function whose compile time is measured first."""
    start = source.index("def _loss_and_grad_kernel(")
    return len(source[start : source.index("\n\n\n", start)].splitlines())


def skipped(layers, method, layout, limit) -> dict:
    return {
        "size": size_label(layers),
        "method": method,
        "layout": layout,
        "params": n_params(layers),
        "skipped": f"skipped: {method} above {limit} params",
    }


def run_scaling(
    sizes=SIZES,
    methods=METHODS,
    *,
    layouts=("auto",),
    max_params=None,
    repeats=7,
    out_dir=None,
    progress=None,
    warm_up=True,
):
    """Measure every size with every method and layout; a list of row dicts, in that order.

    `max_params` maps a method to the most parameters it is run for (default MAX_PARAMS); larger
    networks get a row marked skipped. `out_dir` keeps the generated modules (default: a temporary
    folder). `progress(row)` is called after each row. `warm_up` first compiles two tiny modules, so
    that Numba's one-time start-up is not counted against the first network.
    """
    limits = MAX_PARAMS if max_params is None else max_params
    rows = []
    with tempfile.TemporaryDirectory(prefix="symcompile-scaling-") as scratch:
        if warm_up:
            _warm_up_numba(scratch)
        for layers, method, layout in itertools.product(sizes, methods, layouts):
            limit = limits.get(method)
            if limit is not None and n_params(layers) > limit:
                row = skipped(layers, method, layout, limit)
            else:
                row = measure(layers, method, layout, out_dir or scratch, repeats)
            rows.append(row)
            if progress:
                progress(row)
    _compare_gradients(rows)
    return rows


def _compare_gradients(rows):
    """Each row's largest gradient difference from a `diff` row of the same size, where both ran,
    relative to the largest gradient component (as the tests compare them)."""
    reference = {}
    for row in rows:
        if row["method"] == "diff" and "grad" in row:
            reference.setdefault(row["size"], row["grad"])
    for row in rows:
        if "grad" in row and row["size"] in reference and row["method"] != "diff":
            ref = reference[row["size"]]
            row["max_rel_diff_vs_diff"] = float(np.max(np.abs(row["grad"] - ref)) / np.max(np.abs(ref)))


HEADER = (
    "network", "method", "layout", "params", "rewrite s", "differentiate s", "optimize s", "emit s", "build s", "lines",
    "kernel lines", "compile grad s", "compile train s", "us/gradient",
)  # fmt: skip


def table_row(row) -> list[str]:
    if row["skipped"]:
        return [row["size"], row["method"], row["layout"], str(row["params"]), row["skipped"]]
    stages = row["stage_s"]
    return [
        row["size"],
        row["method"],
        row["layout"],
        str(row["params"]),
        f"{stages['rewrite']:.2f}",
        f"{stages['differentiate']:.2f}",
        f"{stages['optimize']:.2f}",
        f"{stages['emit']:.2f}",
        f"{row['build_s']:.2f}",
        str(row["lines"]),
        str(row["kernel_lines"]),
        f"{row['compile_grad_s']:.2f}",
        f"{row['compile_train_s']:.2f}",
        f"{row['gradient_s'] * 1e6:.1f}",
    ]


def format_table(rows) -> str:
    """A Markdown table, one line per size and method."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = table_row(row)
        cells += [""] * (len(HEADER) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class ScalingReport:
    """The scaling rows as a Markdown table, with the gradient cross-check; JSON without the gradients."""

    records: list[dict] = field(default_factory=list)
    load_start: float | None = field(default_factory=load_average)
    load_end: float | None = None

    def finish(self):
        self.load_end = load_average()
        return self

    def print(self, out=print):
        out(f"symcompile bench scaling  (load average {self.load_start} at start, {self.load_end} at end)")
        out(format_table(self.records))
        for row in self.records:
            if "max_rel_diff_vs_diff" in row:
                out(f"{row['size']} {row['method']} {row['layout']}: gradient differs from diff's by at most "
                    f"{row['max_rel_diff_vs_diff']:.1e} of its largest component")  # fmt: skip

    def as_dict(self):
        records = [{k: v for k, v in row.items() if k != "grad"} for row in self.records]
        load = {"start": self.load_start, "end": self.load_end}
        return {"scenario": "scaling", "load_average": load, "records": records}


def print_progress(row):
    done = row["skipped"] or f"built in {row['build_s']:.2f} s, compiled in {row['compile_grad_s']:.2f} s"
    print(f"  {row['size']:<10} {row['method']:<8} {row['layout']:<9} {done}", file=sys.stderr, flush=True)
