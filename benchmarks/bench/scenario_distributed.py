"""The distributed scenario: symcompile.distributed on a LocalCluster, against the same work in one process.

Three tables:
- many fits: 10,000 synthetic decay curves y = a exp(-b x) + c, fitted by the module's compiled
  Levenberg-Marquardt in a Python loop, by `fit_many` on the cluster (its default batch, and smaller
  batches, so that the cost of a task shows), and by `scipy.optimize.least_squares(method="lm")` in a
  loop given the same analytic Jacobian (SymPy's, lambdified). Fits per second; the check column is
  the largest |w - compiled w| over the curves. `fit_many`'s first call on fresh workers (shipping
  the module with the client's Numba cache, the workers importing Numba and loading the kernels) is a
  one-time cost, reported apart from the steady state.
- full-batch training: time per step of an MLP on many samples, `module.train` in memory against
  `distributed.train` with 1, 2, 4 and 8 partitions (the per-step overhead is the difference).
- mini-batch training: time per epoch of the same, Adam on batches, in memory against
  `distributed.train` (one visit per partition per epoch).

The client compiles every kernel before anything is timed, so the workers load them from the Numba
cache files shipped with the module.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import sympy as sp

from benchmarks.bench.report import Report, Row
from benchmarks.bench.timing import Timing, measure, time_once


@dataclass(frozen=True)
class DistributedSettings:
    curves: int = 10_000
    points: int = 20  # samples per curve
    scipy_curves: int = 1_000  # SciPy's loop is timed on the first curves only (its rate is per fit)
    batches: tuple = (0, 100, 10)  # fit_many's batch sizes (0: its default, about four tasks per worker)
    workers: int = 2
    samples: int = 200_000  # training data rows
    layers: tuple = (2, 16, 16, 1)
    steps: int = 10
    partitions: tuple = (1, 2, 4, 8)
    epochs: int = 2  # mini-batch epochs per timed run
    batch_size: int = 1024
    minibatch_partitions: tuple = (1, 2, 4)
    repeats: int = 3
    seed: int = 0


QUICK = {"curves": 200, "scipy_curves": 50, "batches": (0,), "samples": 4000, "steps": 3, "partitions": (1, 2),
         "epochs": 1, "batch_size": 256, "minibatch_partitions": (2,), "repeats": 1}  # fmt: skip


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
    import distributed

    from symcompile import distributed as sd
    from benchmarks.bench.scenario_dataset import synthetic_data
    from symcompile.mlp import mlp_model
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    report = Report("distributed", f"{settings.workers} worker processes, 1 thread each (LocalCluster)")
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault(sd.WORKER_DIR_VARIABLE, os.path.join(folder, "workers"))
        fits = decay_module(folder)
        curves = decay_curves(settings.curves, settings.points, settings.seed)
        seconds, _ = time_once(lambda: fits.least_squares(X=curves[0][0], Y=curves[0][1]))
        report.notes.append(f"the solver's first call in this process (Numba compiling it): {seconds:.1f} s")
        layers = list(settings.layers)
        # A few default samples in the module (its source holds them); the training data apart.
        model = mlp_model("bench_distributed_mlp", layers, seed=settings.seed,
                          X=np.zeros((16, layers[0])), Y=np.zeros((16, layers[-1])))  # fmt: skip
        mlp = load_module(build(model, folder).path)
        data = synthetic_data(layers[0], layers[-1], settings.samples, settings.seed)
        cluster = distributed.LocalCluster(n_workers=settings.workers, threads_per_worker=1, dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            _many_fits(report, settings, client, fits, curves)
            _training(report, settings, client, mlp, data)
            _mini_batches(report, settings, client, mlp, data)
    return report.finish()


def _many_fits(report, settings, client, module, curves):
    from symcompile import distributed as sd

    table = report.table(f"{settings.curves} decay curves of {settings.points} points, least squares", "fit")
    loop = [None]

    def python_loop():
        loop[0] = [module.least_squares(X=x, Y=y) for x, y in curves]

    timing = measure(python_loop, repeats=settings.repeats, per=len(curves))
    base = table.add(Row("compiled least_squares, Python loop", timing, note=_rate(timing)))
    reference = np.array([r.w for r in loop[0]])
    found = [None]
    for batch in settings.batches:

        def many():
            found[0] = sd.fit_many(module, curves, client=client, batch=batch or None)

        if batch == settings.batches[0]:  # the first call on these workers: shipping, importing, loading
            seconds, _ = time_once(many)
            report.notes.append(f"fit_many's first call on fresh workers ({settings.curves} fits): {seconds:.2f} s, "
                                f"against {seconds / max(base.timing.median * len(curves), 1e-12):.1f} times the loop")  # fmt: skip
        timing = measure(many, repeats=settings.repeats, per=len(curves))
        difference = float(np.max(np.abs(np.array([r.w for r in found[0]]) - reference)))
        size = batch or sd._default_batch(client, len(curves))
        tasks = -(-len(curves) // size)
        table.add(Row(f"fit_many, {settings.workers} processes, batch {size} ({tasks} tasks)", timing,
                      difference=difference, compared_after="each fit", note=_rate(timing)))  # fmt: skip
    fit = scipy_fitter()
    if fit is None:
        table.add(Row("scipy least_squares (lm), loop", None, note="SciPy is not installed"))
    else:
        subset = curves[: settings.scipy_curves]
        weights = [None]

        def scipy_loop():
            weights[0] = [fit(x, y, module.INIT) for x, y in subset]

        timing = measure(scipy_loop, repeats=settings.repeats, per=len(subset))
        difference = float(np.max(np.abs(np.array(weights[0]) - reference[: len(subset)])))
        table.add(Row(f"scipy least_squares (lm), loop ({len(subset)} curves)", timing, difference=difference,
                      compared_after="each fit", note=_rate(timing)))  # fmt: skip
    table.compare_to({"": base})


def _rate(timing: Timing | None):
    return "" if timing is None else f"{1 / timing.median:,.0f} fits/s"


def _partitioned(data, partitions):
    import dask.array as da

    X, Y = data
    rows = math.ceil(len(X) / partitions)
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(Y, chunks=(rows, Y.shape[1]))


def _per_unit(client, module, data, partitions, settings, kwargs, units):
    """(Timing per unit, start-up seconds, the last result): a run of 1 + `units` iterations less a run of 1, per
    unit. Both runs place the partitions in the workers' memory and compute the final loss, which a long run pays
    once (the start-up: the run of 1 less its one iteration)."""
    from symcompile import distributed as sd

    X, Y = _partitioned(data, partitions)
    result = [None]

    def run(iterations):
        result[0] = sd.train(module, X, Y, client=client, **kwargs, max_iter=iterations)

    one = measure(lambda: run(1), repeats=settings.repeats)
    many = measure(lambda: run(1 + units), repeats=settings.repeats)
    per = Timing(*((t - one.median) / units for t in (many.median, many.low, many.high)), many.repeats)
    return per, one.median - per.median, result[0]


def _training(report, settings, client, module, data):
    X, Y = data
    table = report.table(
        f"full-batch training, MLP {'-'.join(map(str, settings.layers))} on {len(X):,} samples", "step"
    )
    kwargs = {"lr": 0.5, "tol": 0.0, "update": "simultaneous"}
    steps = settings.steps
    in_memory = measure(
        lambda: module.train(module.INIT, X, Y, max_iter=steps, **kwargs), repeats=settings.repeats, per=steps
    )
    base = table.add(Row("module.train, in memory", in_memory, note="one process, Numba's default threads"))
    reference = module.train(module.INIT, X, Y, max_iter=1 + steps, **kwargs).w
    for partitions in settings.partitions:
        per_step, start_up, result = _per_unit(client, module, data, partitions, settings, kwargs, steps)
        table.add(Row(f"distributed.train, {partitions} partitions", per_step,
                      difference=float(np.max(np.abs(result.w - reference))), compared_after=f"{1 + steps} steps",
                      note=f"{(per_step.median - in_memory.median) * 1e3:+.1f} ms per step against memory; "
                           f"start-up {start_up:.2f} s"))  # fmt: skip
    table.compare_to({"": base})


def _mini_batches(report, settings, client, module, data):
    X, Y = data
    size = settings.batch_size
    table = report.table(
        f"mini-batch training, Adam on batches of {size} ({math.ceil(len(X) / size)} per epoch)", "epoch"
    )
    kwargs = {"optimizer": "adam", "lr": 0.01, "tol": 0.0, "batch_size": size, "seed": 1}
    epochs = settings.epochs
    in_memory = measure(
        lambda: module.train(module.INIT, X, Y, max_iter=epochs, **kwargs), repeats=settings.repeats, per=epochs
    )
    base = table.add(Row("module.train, in memory", in_memory, note="one process, Numba's default threads"))
    reference = module.train(module.INIT, X, Y, max_iter=1 + epochs, **kwargs)
    base.note += f"; loss {reference.loss_history[-1]:.4f} after {1 + epochs} epochs"
    for partitions in settings.minibatch_partitions:
        per_epoch, start_up, result = _per_unit(client, module, data, partitions, settings, kwargs, epochs)
        # One partition is the in-memory run; more draw their batches within partitions: another run, compared by
        # its loss.
        check = {"difference": float(np.max(np.abs(result.w - reference.w))), "compared_after": f"{1 + epochs} epochs"}
        table.add(Row(f"distributed.train, {partitions} partitions", per_epoch, **(check if partitions == 1 else {}),
                      note=f"{(per_epoch.median - in_memory.median) * 1e3:+.1f} ms per epoch against memory; "
                           f"start-up {start_up:.2f} s; loss {result.loss_history[-1]:.4f}"))  # fmt: skip
    table.compare_to({"": base})
