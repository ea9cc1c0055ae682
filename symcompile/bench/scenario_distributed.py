"""The distributed scenario: symcompile.distributed on a LocalCluster, against the same work in one process.

Two tables:
- many fits: 10,000 synthetic decay curves y = a exp(-b x) + c, fitted by the module's compiled
  Levenberg-Marquardt in a Python loop, by `fit_many` on the cluster, and by
  `scipy.optimize.least_squares(method="lm")` in a loop given the same analytic Jacobian (SymPy's,
  lambdified). Fits per second; the check column is the largest |w - compiled w| over the curves.
- training: time per full-batch step of an MLP on many samples, `module.train` in memory against
  `distributed.train` with 1, 2, 4 and 8 partitions (per-step overhead = the difference).

The cluster's workers compile the module once each before anything is timed (the first `fit_many`
and `train` are warm-ups); shipping and compiling are one-time costs, reported apart.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symcompile.bench.report import Report, Row
from symcompile.bench.timing import Timing, measure, time_once


@dataclass(frozen=True)
class DistributedSettings:
    curves: int = 10_000
    points: int = 20  # samples per curve
    scipy_curves: int = 1_000  # SciPy's loop is timed on the first curves only (its rate is per fit)
    workers: int = 2
    samples: int = 200_000  # training data rows
    layers: tuple = (2, 16, 16, 1)
    steps: int = 10
    partitions: tuple = (1, 2, 4, 8)
    repeats: int = 3
    seed: int = 0


QUICK = {"curves": 200, "scipy_curves": 50, "samples": 4000, "steps": 3, "partitions": (1, 2), "repeats": 1}


def decay_curves(count, points, seed):
    """(x, y) pairs: a exp(-b x) + c with a in [0.5, 2], b in [0.3, 1.5], c in [-0.2, 0.2], noise 0.01."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 4.0, points)
    a, b, c = rng.uniform(0.5, 2, count), rng.uniform(0.3, 1.5, count), rng.uniform(-0.2, 0.2, count)
    return [(x, a[i] * np.exp(-b[i] * x) + c[i] + 0.01 * rng.standard_normal(points)) for i in range(count)]


def decay_module(folder):
    from symcompile import compile_model

    a, b, c, x, y = sp.symbols("a b c x y")
    f = a * sp.exp(-b * x) + c
    return compile_model(f, None, [a, b, c], [x], [y], name="bench_decay", init=[1.0, 1.0, 0.0], residual=f - y,
                         out_dir=folder)  # fmt: skip


def scipy_fitter():
    """fit(x, y, w0) -> weights, by SciPy's MINPACK lmder with SymPy's Jacobian; None without SciPy."""
    try:
        from scipy.optimize import least_squares
    except ImportError:
        return None
    a, b, c, x = sp.symbols("a b c x")
    f = a * sp.exp(-b * x) + c
    model = sp.lambdify((a, b, c, x), f, "numpy", cse=True)
    columns = [sp.lambdify((a, b, c, x), sp.diff(f, p), "numpy", cse=True) for p in (a, b, c)]

    def fit(xs, ys, w0):
        def jacobian(w):
            return np.column_stack([np.broadcast_to(col(*w, xs), xs.shape) for col in columns])

        return least_squares(lambda w: model(*w, xs) - ys, w0, jac=jacobian, method="lm",
                             xtol=1e-10, ftol=1e-10, gtol=1e-10).x  # fmt: skip

    return fit


def run_distributed(settings: DistributedSettings) -> Report:
    import dask.array as da
    import distributed

    from symcompile import distributed as sd
    from symcompile.bench.scenario_dataset import DatasetSettings, dataset_model, synthetic_data
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    report = Report("distributed", f"{settings.workers} worker processes, 1 thread each (LocalCluster)")
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault(sd.WORKER_DIR_VARIABLE, os.path.join(folder, "workers"))
        cluster = distributed.LocalCluster(n_workers=settings.workers, threads_per_worker=1, dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            _many_fits(report, settings, client, decay_module(folder))
            layers = list(settings.layers)
            # A few default samples in the module (its source holds them); the training data apart.
            model = dataset_model(DatasetSettings(layers=layers, samples=16, seed=settings.seed))
            data = synthetic_data(layers[0], layers[-1], settings.samples, settings.seed)
            _training(report, settings, client, load_module(build(model, folder).path), data, da, sd)
    return report.finish()


def _many_fits(report, settings, client, module):
    from symcompile import distributed as sd

    curves = decay_curves(settings.curves, settings.points, settings.seed)
    table = report.table(f"{settings.curves} decay curves of {settings.points} points, least squares", "fit")
    seconds, _ = time_once(lambda: module.least_squares(X=curves[0][0], Y=curves[0][1]))
    report.notes.append(f"the solver's first call in this process (Numba compiling it): {seconds:.1f} s")
    seconds, _ = time_once(lambda: sd.fit_many(module, curves[:10], client=client))
    report.notes.append(f"fit_many's first call (shipping the module and its Numba cache, loading): {seconds:.2f} s")
    loop = [None]

    def python_loop():
        loop[0] = [module.least_squares(X=x, Y=y) for x, y in curves]

    timing = measure(python_loop, repeats=settings.repeats, per=len(curves))
    base = table.add(Row("compiled least_squares, Python loop", timing, note=_rate(timing)))
    reference = np.array([r.w for r in loop[0]])
    found = [None]

    def many():
        found[0] = sd.fit_many(module, curves, client=client)

    timing = measure(many, repeats=settings.repeats, per=len(curves), warmup=0)
    difference = float(np.max(np.abs(np.array([r.w for r in found[0]]) - reference)))
    table.add(Row(f"fit_many, {settings.workers} processes", timing, difference=difference,
                  compared_after="each fit", note=_rate(timing)))  # fmt: skip
    fit = scipy_fitter()
    if fit is None:
        table.add(Row("scipy least_squares (lm), loop", None, note="SciPy is not installed"))
    else:
        subset = curves[: settings.scipy_curves]
        weights = [None]

        def scipy_loop():
            weights[0] = [fit(x, y, module.INIT) for x, y in subset]

        timing = measure(scipy_loop, repeats=settings.repeats, per=len(subset), warmup=0)
        difference = float(np.max(np.abs(np.array(weights[0]) - reference[: len(subset)])))
        table.add(Row(f"scipy least_squares (lm), loop ({len(subset)} curves)", timing, difference=difference,
                      compared_after="each fit", note=_rate(timing)))  # fmt: skip
    table.compare_to({"": base})


def _rate(timing: Timing | None):
    return "" if timing is None else f"{1 / timing.median:,.0f} fits/s"


def _training(report, settings, client, module, data, da, sd):
    X, Y = data
    table = report.table(f"training an MLP {'-'.join(map(str, settings.layers))} on {len(X):,} samples", "step")
    kwargs = {"lr": 0.5, "max_iter": settings.steps, "tol": 0.0, "update": "simultaneous"}
    in_memory = measure(lambda: module.train(module.INIT, X, Y, **kwargs), repeats=settings.repeats, per=settings.steps)
    base = table.add(Row("module.train, in memory", in_memory, note="one process, one thread"))
    reference = module.train(module.INIT, X, Y, **kwargs).w
    for partitions in settings.partitions:
        rows = math.ceil(len(X) / partitions)
        X_parts = da.from_array(X, chunks=(rows, X.shape[1]))
        Y_parts = da.from_array(Y, chunks=(rows, Y.shape[1]))
        result = [None]

        def run(steps):
            result[0] = sd.train(module, X_parts, Y_parts, client=client, **{**kwargs, "max_iter": steps})

        # A step's cost is the difference between `steps` steps and none: both place the partitions in the
        # workers' memory and compute the final loss, which a long run pays once.
        start_up = measure(lambda: run(0), repeats=settings.repeats)
        timing = measure(lambda: run(settings.steps), repeats=settings.repeats)
        per_step = Timing(*((t - start_up.median) / settings.steps for t in (timing.median, timing.low, timing.high)),
                          timing.repeats)  # fmt: skip
        overhead = per_step.median - in_memory.median
        table.add(Row(f"distributed.train, {partitions} partitions", per_step,
                      difference=float(np.max(np.abs(result[0].w - reference))), compared_after=f"{settings.steps} steps",
                      note=f"{overhead * 1e3:+.1f} ms per step against memory; start-up {start_up.median:.2f} s"))  # fmt: skip
    table.compare_to({"": base})
