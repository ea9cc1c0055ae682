"""The dataset scenario: MLPs on thousands of samples, time per epoch (one full-batch gradient step).

Workloads: `small` (a sigmoid MLP, 2-16-16-1 by default, on synthetic data), `digits` (scikit-learn's
8x8 digits, 64-32-10 tanh/softmax; skipped with a line when scikit-learn is missing) and `wide`
(784-1000-1000-10 on 10,000 synthetic samples; slow, so only when asked: `--scenario wide`).

Per epoch: the compiled module's `train(update="simultaneous")` at Numba's default threads and on
one thread, against JAX `jit` + `lax.fori_loop` at its default threads and pinned to one thread (in a
subprocess: XLA reads its thread flags at start-up), a hand-written NumPy backprop on one BLAS thread,
and PyTorch autograd (sigmoid workloads). The implementations run in interleaved rounds, so they see
the same machine load; every one starts from the module's initial weights, and its weights after the
run are compared with the module's (the `check` column).

One-time costs, in new processes with an empty Numba cache: the build and the first train(), then a
second process that imports the module and trains, loading the kernels from Numba's cache.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.bench import dense_bench
from references import numpy_mlp
from benchmarks.bench.peers import missing_note, optional_peer
from benchmarks.bench.report import Report, Row, WeightCheck
from benchmarks.bench.timing import Timing, format_seconds
from symcompile.mlp import MLPShape, mlp_model
from symcompile.model import TrainingDefaults

WORKLOADS = ("small", "digits")


@dataclass(frozen=True)
class DatasetSettings:
    layers: list[int] = field(default_factory=lambda: [2, 16, 16, 1])
    samples: int = 4096
    lr: float = 0.5
    epochs: int = 20  # per timed call (every implementation)
    python_epochs: int = 20  # kept for the command line's --quick; the rounds interleave every implementation
    repeats: int = 5  # interleaved rounds
    seed: int = 0
    out_dir: str = "generated"
    workloads: tuple[str, ...] = WORKLOADS
    fresh_processes: int = (
        1  # (0: none) runs of the one-time costs (each: a build on an empty cache, then a cache load)
    )
    one_time_only: bool = False  # no per-epoch tables


def synthetic_data(n_inputs, n_outputs, samples, seed):
    """Inputs uniform in [-1, 1]; each target is 1 on one side of a wavy boundary, about half the samples."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (samples, n_inputs))
    directions = rng.normal(size=(n_inputs, n_outputs))
    Y = (np.sin(3.0 * X @ directions) > 0).astype(np.float64)
    return X, Y


def workload_data(key, settings: DatasetSettings):
    """(shape, X, Y, lr, epochs) of a workload, or None (with a printed line) when its data cannot be had."""
    if key == "small":
        X, Y = synthetic_data(settings.layers[0], settings.layers[-1], settings.samples, settings.seed)
        return MLPShape(tuple(settings.layers)), X, Y, settings.lr, settings.epochs
    workload = dense_bench.load_workload(key)  # digits: None (printed) without scikit-learn
    if workload is None:
        return None
    epochs = workload.epochs if key == "wide" else settings.epochs
    return workload.shape, workload.X, workload.Y, workload.lr, epochs


def workload_model(key, settings: DatasetSettings, data):
    """The Model of a workload: its data as the module's defaults, except the wide one's (7.8 million numbers)."""
    shape, X, Y, lr, epochs = data
    training = TrainingDefaults(lr=lr, max_iter=epochs, update="simultaneous")
    name = "bench_mlp_" + "_".join(map(str, shape.layers)) if key == "small" else f"bench_{key}"
    defaults = {} if key == "wide" else {"X": X, "Y": Y}
    return mlp_model(
        name, list(shape.layers), hidden_activation=shape.hidden_activation, output_activation=shape.output_activation,
        loss=shape.loss, training=training, seed=settings.seed, **defaults,
    )  # fmt: skip


def one_blas_thread():
    """(context, note): NumPy's BLAS limited to one thread, as the compiled module runs on one.

    With one thread per core, OpenBLAS spin-waits for cores other processes
    hold: on a busy 2-core machine an epoch of the 2-16-16-1 network took
    12-38 ms instead of 2-4 ms. The limit needs threadpoolctl (in the bench extra).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), "BLAS threads: library default (threadpoolctl not installed)"
    return threadpool_limits(limits=1, user_api="blas"), "1 BLAS thread"


# --- one-time costs, in new processes -------------------------------------------------------------------------------

CHILD = r"""
import json, sys, time
start, start_cpu = time.perf_counter(), time.process_time()
sys.path.insert(0, sys.argv[1])
from benchmarks.bench.scenario_dataset import DatasetSettings, workload_data, workload_model
from symcompile.pipeline import build
from symcompile.writer import load_module
settings = DatasetSettings(**json.loads(sys.argv[3]))
data = workload_data(sys.argv[2], settings)
if sys.argv[4] == "build":
    report = build(workload_model(sys.argv[2], settings, data), settings.out_dir)
    path = str(report.path)
else:
    path = sys.argv[5]
built, built_cpu = time.perf_counter(), time.process_time()
module = load_module(path)
module.train(X=data[1], Y=data[2], max_iter=1)
done, done_cpu = time.perf_counter(), time.process_time()
kernels = [k for k in vars(module).values() if hasattr(k, "stats") and hasattr(k.stats, "cache_misses")]
misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
print(json.dumps({"path": path, "build": built - start, "first_train": done - built, "misses": misses, "hits": hits,
                  "build_cpu": built_cpu - start_cpu, "first_train_cpu": done_cpu - built_cpu}))
"""


def fresh_process(key, settings, what, cache_dir, path=""):
    """Run CHILD: `what` is "build" (model, build, first train) or "load" (import `path`, first train)."""
    root = str(Path(__file__).resolve().parents[2])
    options = json.dumps({"layers": settings.layers, "samples": settings.samples, "lr": settings.lr,
                          "epochs": settings.epochs, "seed": settings.seed, "out_dir": settings.out_dir})  # fmt: skip
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, root, key, options, what, path],
                          capture_output=True, text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the one-time-cost process for {key} failed:\n{done.stderr}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def one_time_rows(key, settings):
    """Build + first train() on an empty cache, then import + first train() loading from Numba's cache."""
    cold, warm = [], []
    for _ in range(settings.fresh_processes):
        with tempfile.TemporaryDirectory(prefix="symcompile-bench-cache-") as cache_dir:
            cold.append(fresh_process(key, settings, "build", cache_dir))
            warm.append(fresh_process(key, settings, "load", cache_dir, cold[-1]["path"]))

    def row(name, runs, part, note):
        return Row(name, Timing.of(r[part] for r in runs), note=note)

    def cpu(runs, part):  # on a shared machine the process's CPU seconds say more than its wall time
        return f"CPU {min(r[part + '_cpu'] for r in runs):.2f} s (least)"

    compiled = f"{cold[-1]['misses']} kernels compiled; {cpu(cold, 'first_train')}"
    loaded = f"{warm[-1]['hits']} cache hits, {warm[-1]['misses']} misses"
    return [
        row(
            "new process: build (imports, model, stages, write)",
            cold,
            "build",
            f"empty Numba cache; {cpu(cold, 'build')}",
        ),
        row("  then first train() (Numba compiles)", cold, "first_train", compiled),
        row("  the whole process", cold, "wall", "what `symcompile build` + a first train() cost"),
        row("second process: import + first train()", warm, "first_train", loaded),
        row("  the whole process", warm, "wall", "Python, NumPy, Numba and symcompile imports included"),
    ]


# --- per epoch, interleaved -------------------------------------------------------------------------------------


def _compiled_runner(module, X, Y, lr, epochs, threads):
    """run(w0) -> (weights, seconds): `train(max_iter=epochs)` timed, less one timed loss-and-gradient pass, since
    train ends by computing the loss at the weights it returns (epochs + 1 passes) and the peers' loops do not."""
    extra = {} if threads is None else {"threads": threads}
    pass_extra = extra if "threads" in inspect.signature(module.loss_and_grad).parameters else {}  # dense modules

    def run(w0):
        start = time.perf_counter()
        w = module.train(w0, X, Y, lr=lr, max_iter=epochs, tol=0.0, update="simultaneous", **extra).w
        trained = time.perf_counter() - start
        start = time.perf_counter()
        module.loss_and_grad(w0, X, Y, **pass_extra)
        return w, trained - (time.perf_counter() - start)

    return run


def _runners(key, model, module, data, folder):
    """{row name: (run(w0) -> final weights, or (weights, seconds), note)}, and the JAX subprocess to close."""
    shape, X, Y, lr, epochs = data
    workload = dense_bench.Workload(key, shape, X, Y, lr, epochs)
    threaded = "threads" in inspect.signature(module.train).parameters
    final_pass = "less its final-loss pass"
    runners = {
        "compiled module train(), default threads": (_compiled_runner(module, X, Y, lr, epochs, None), final_pass)
    }
    if threaded:
        runners["compiled module train(threads=1)"] = (_compiled_runner(module, X, Y, lr, epochs, 1), final_pass)
    blas_threads, blas_note = one_blas_thread()
    numpy_run = dense_bench.numpy_runner(workload)

    def numpy_one_thread(w0):
        with blas_threads:
            return numpy_run(w0)

    if shape.hidden_activation in ("sigmoid", "tanh"):
        runners["hand-written NumPy backprop"] = (numpy_one_thread, blas_note)
    child = None
    if optional_peer("jax") is None:
        runners["JAX jit + lax.fori_loop"] = (None, missing_note("jax"))
    else:
        runners["JAX jit + lax.fori_loop, default threads"] = (dense_bench.jax_runner(workload), "XLA's default")
        child = dense_bench.JaxOneThread(key, module.INIT, folder, workload=workload)
        runners["JAX jit + lax.fori_loop, 1 thread"] = (
            lambda w0: child.run_and_result(),
            "XLA on one thread, own process",
        )
    torch = optional_peer("torch")
    if shape.hidden_activation == "sigmoid" and shape.output_activation == "sigmoid":
        if torch is None:
            runners["PyTorch autograd (1 thread), Python loop"] = (None, missing_note("torch"))
        else:
            layout = numpy_mlp.MlpLayout(list(shape.layers), module.PARAMS)
            train = torch.mlp_descent(layout, X, Y, lr, epochs)
            runners["PyTorch autograd (1 thread), Python loop"] = (lambda w0: train(w0)[0], "")
    return runners, child


def measure_epochs(key, model, module, data, settings, table, folder):
    runners, child = _runners(key, model, module, data, folder)
    epochs = data[4]
    seconds = {name: [] for name, (run, _) in runners.items() if run}
    finals = {}
    try:
        for name, (run, _) in runners.items():  # a first call: compiles, traces, warms caches
            if run:
                run(module.INIT)
        for _ in range(settings.repeats):
            for name in seconds:
                # Once untimed, then timed: no row pays for the state the row before it left. The first row of
                # each round (after JAX's one-thread process) measured 15-25% slower than the same code second.
                runners[name][0](module.INIT)
                start = time.perf_counter()
                result = runners[name][0](module.INIT)
                elapsed = time.perf_counter() - start
                if isinstance(result, tuple):  # (weights, seconds the subprocess measured)
                    result, elapsed = result
                finals[name] = result
                seconds[name].append(elapsed / epochs)
    finally:
        if child:
            child.close()
    check = WeightCheck(module, "epochs", lr=data[3], X=data[1], Y=data[2])
    rows = {}
    for name, (run, note) in runners.items():
        if run is None:
            rows[name] = table.add(Row(name, None, note=note))
            continue
        rows[name] = table.add(Row(name, Timing.of(seconds[name]), **check(finals[name], epochs), note=note))
    table.compare_to({"": rows["compiled module train(), default threads"]})
    return rows


def run_dataset(settings: DatasetSettings = DatasetSettings()) -> Report:
    report = Report("dataset", ", ".join(settings.workloads))
    with tempfile.TemporaryDirectory(prefix="symcompile-bench-dataset-") as folder:
        for key in settings.workloads:
            data = workload_data(key, settings)
            if data is None:
                report.notes.append(f"{key}: skipped, scikit-learn is not installed (pip install scikit-learn)")
                continue
            run_workload(key, workload_model(key, settings, data), data, settings, report, folder)
    return report.finish()


def run_workload(key, model, data, settings, report, folder):
    from symcompile.pipeline import build
    from symcompile.writer import load_module

    shape = model.network.shape
    title = f"{model.name} ({shape.summary()}; {model.n_params} params, {len(data[1])} samples)"
    if settings.fresh_processes:
        once = report.table(f"{title}: one-time costs")
        for row in one_time_rows(key, settings):
            once.add(row)
    if settings.one_time_only:
        return
    built = build(model, settings.out_dir)
    module = load_module(built.path)
    per_epoch = report.table(
        f"{title}: time per epoch ({built.kernels} kernels), median of interleaved rounds", "epoch"
    )
    rows = measure_epochs(key, model, module, data, settings, per_epoch, folder)
    compiled = rows["compiled module train(), default threads"].timing.median
    for name, row in rows.items():
        if name.startswith("JAX") and row.timing:
            report.notes.append(
                f"{key}: compiled {format_seconds(compiled)}/epoch, {name} {format_seconds(row.timing.median)}"
                f" ({row.ratio:.3g} x the compiled time; target >= 1, aim 2)"
            )
