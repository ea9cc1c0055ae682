"""The dataset scenario: a sigmoid MLP on thousands of samples, time per epoch (one full-batch gradient step).

The compiled module's `train(update="simultaneous")` against a hand-written
NumPy backprop, JAX `jit` + `lax.fori_loop` and PyTorch autograd (when
installed). The data are synthetic and seeded; every peer starts from the
module's initial weights, and its weights after the run are compared with the
module's after the same number of epochs (the `check` column).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symcompile.bench import numpy_mlp
from symcompile.bench.peers import missing_note, optional_peer
from symcompile.bench.report import Report, Row, WeightCheck
from symcompile.bench.timing import Timing, format_seconds, measure, time_once
from symcompile.mlp import mlp_model
from symcompile.model import TrainingDefaults
from symcompile.pipeline import build
from symcompile.writer import load_module


@dataclass(frozen=True)
class DatasetSettings:
    layers: list[int] = field(default_factory=lambda: [2, 16, 16, 1])
    samples: int = 4096
    lr: float = 0.5
    epochs: int = 20  # per timed call of a compiled loop (compiled module, JAX)
    python_epochs: int = 20  # per timed call of a Python-driven loop (NumPy, PyTorch)
    repeats: int = 5
    seed: int = 0
    out_dir: str = "generated"


def synthetic_data(n_inputs, n_outputs, samples, seed):
    """Inputs uniform in [-1, 1]; each target is 1 on one side of a wavy boundary, about half the samples."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (samples, n_inputs))
    directions = rng.normal(size=(n_inputs, n_outputs))
    Y = (np.sin(3.0 * X @ directions) > 0).astype(np.float64)
    return X, Y


def dataset_model(settings: DatasetSettings):
    layers = settings.layers
    X, Y = synthetic_data(layers[0], layers[-1], settings.samples, settings.seed)
    training = TrainingDefaults(lr=settings.lr, max_iter=settings.epochs, update="simultaneous")
    name = "bench_mlp_" + "_".join(map(str, layers))
    return mlp_model(name, layers, X=X, Y=Y, training=training, seed=settings.seed)


def _compiled_or_loaded(module):
    kernels = [k for k in vars(module).values() if hasattr(k, "stats") and hasattr(k.stats, "cache_misses")]
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    return f"Numba compiled {misses} kernels" if misses else "loaded from Numba's cache (built before)"


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


def run_dataset(settings: DatasetSettings = DatasetSettings()) -> Report:
    model = dataset_model(settings)
    sizes = "-".join(map(str, settings.layers))
    report = Report("dataset", f"{model.name} ({sizes} sigmoid MLP, {len(model.params)} params, {settings.samples} samples)")
    per_epoch = report.table(f"{model.name}: time per epoch (full-batch gradient step), median of repeats", "epoch")
    once = report.table(f"{model.name}: one-time costs")

    sp.core.cache.clear_cache()  # build from cold, as a user's first build does
    built = build(model, settings.out_dir)
    for stage, seconds in built.stage_seconds.items():
        once.add(Row(f"build: {stage}", Timing.of([seconds])))
    module = load_module(built.path)
    lr, n = settings.lr, settings.epochs

    def compiled():
        return module.train(lr=lr, max_iter=n, tol=0.0, update="simultaneous")

    seconds, _ = time_once(compiled)
    once.add(Row("compiled module: first train()", Timing.of([seconds]), note=_compiled_or_loaded(module)))
    baseline = per_epoch.add(Row("compiled module train()", measure(compiled, repeats=settings.repeats, per=n)))
    check = WeightCheck(module, "epochs", lr=lr)
    layout = numpy_mlp.MlpLayout(settings.layers, module.PARAMS)

    m = settings.python_epochs
    blas_threads, blas_note = one_blas_thread()
    with blas_threads:
        w, _ = numpy_mlp.train(layout.unpack(module.INIT), module.X, module.Y, lr, m)
        numpy_timing = measure(
            lambda: numpy_mlp.train(layout.unpack(module.INIT), module.X, module.Y, lr, m), repeats=settings.repeats, per=m
        )
    per_epoch.add(Row("hand-written NumPy backprop", numpy_timing, **check(layout.pack(w), m), note=blas_note))

    for framework, label, epochs, threads in (
        ("jax", "JAX jit + lax.fori_loop", n, "XLA's default threads"),
        ("torch", "PyTorch autograd (1 thread), Python loop", m, ""),
    ):
        peer = optional_peer(framework)
        if peer is None:
            per_epoch.add(Row(label, None, note=missing_note(framework)))
            continue
        train = peer.mlp_descent(layout, module.X, module.Y, lr, epochs)
        seconds, (w, _) = time_once(lambda: train(module.INIT))
        once.add(Row(f"{label}: first call", Timing.of([seconds])))
        timing = measure(lambda: train(module.INIT), repeats=settings.repeats, per=epochs, warmup=0)
        per_epoch.add(Row(label, timing, **check(w, epochs), note=threads))

    per_epoch.compare_to({"": baseline})
    jax_row = next((r for r in per_epoch.rows if r.name.startswith("JAX") and r.timing), None)
    if jax_row:
        report.notes.append(
            f"target: an epoch no slower than JAX jit on the CPU; compiled {format_seconds(baseline.timing.median)},"
            f" JAX {format_seconds(jax_row.timing.median)} ({jax_row.ratio:.3g} x the compiled time)"
        )
    return report.finish()
